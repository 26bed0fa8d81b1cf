"""p3d.evaluate.report on hand-made reports: what per_clip.csv and summary.json hold, and that summary.json never
stands beside a per_clip.csv of another run."""
import hashlib
import json
import os

import pandas as pd
import pytest

from p3d.evaluate.config import EvalReport
from p3d.evaluate.report import write_report


def _report(n):
    per_clip = pd.DataFrame({"pred": [f"p{i}.npy" for i in range(n)], "gt": [f"g{i}.npy" for i in range(n)],
                             "lve": [0.5 * i for i in range(n)]})
    return EvalReport(per_clip=per_clip, summary={"metrics": {}, "counts": {"n_predictions": n}}, mtm_results={})


def test_per_clip_and_summary_hold_the_reports_rows_and_the_csvs_hash(tmp_path):
    rep = _report(3)
    write_report(rep, tmp_path / "out")
    back = pd.read_csv(tmp_path / "out" / "per_clip.csv")
    pd.testing.assert_frame_equal(back, rep.per_clip)    # no index column
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"n_predictions": 3}
    assert summary["outputs"] == {"per_clip": "per_clip.csv", "plots": 0, "per_clip_sha256": hashlib.sha256(
        (tmp_path / "out" / "per_clip.csv").read_bytes()).hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]            # no staging folder left


def test_a_run_that_fails_before_its_commit_leaves_no_summary_beside_its_per_clip(tmp_path, monkeypatch):
    """The old summary.json is withdrawn before the new per_clip.csv moves in: a run that fails before moving its
    summary.json (the commit) leaves no summary.json describing another run's per_clip.csv."""
    out = tmp_path / "out"
    write_report(_report(3), out)
    real = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == "summary.json" and os.path.dirname(os.path.abspath(dst)) == str(out):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        write_report(_report(2), out)
    assert len(pd.read_csv(out / "per_clip.csv")) == 2
    assert not (out / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_name_taken_during_the_run_is_refused_before_anything_is_replaced(tmp_path, monkeypatch):
    """The folder is checked again just before the commit: a folder named summary.json that appeared while the
    report was staged is refused (one-line InputError), the previous run's per_clip.csv left as it was."""
    import p3d.atomic
    from p3d.errors import InputError

    out = tmp_path / "out"
    write_report(_report(3), out)
    (out / "summary.json").unlink()
    before = (out / "per_clip.csv").read_bytes()
    real = p3d.atomic.write_json

    def write_json(path, data):
        real(path, data)
        (out / "summary.json").mkdir()   # taken meanwhile

    monkeypatch.setattr(p3d.atomic, "write_json", write_json)
    with pytest.raises(InputError, match="is a folder where p3d eval writes its summary.json"):
        write_report(_report(2), out)
    assert (out / "per_clip.csv").read_bytes() == before
