"""p3d.experiments.merge_seed_tables and scripts/merge_seed_tables.py: Tables 3 and 4 at several seeds, merged over
the models, and the claims they decide."""
import json
import shutil

import pandas as pd
import pytest

from p3d import experiments as ex
from p3d.errors import InputError
from script_module import load_script


def _script():
    return load_script("merge_seed_tables")


def _row(comparison, metric, change, half=1.0, verdict="no clear change"):
    return {"comparison": comparison, "metric": metric, "n_seeds": 1, "without": 1.0, "with": 1.0 + change,
            "change": change, "change CI low": change - half, "change CI high": change + half, "verdict": verdict}


def _model_folder(root, table, model, comparisons, pooled, per_seed, preset="full"):
    """A folder as scripts/table_seeds.py writes it: pooled effects (``"<Model>, seeds 0-2: ..."``), each seed's
    (``"seed <s>: ..."``) and its provenance."""
    out = root / f"table{table}_seeds" / model
    out.mkdir(parents=True)
    label = ex.MODEL_LABELS[model]
    pd.DataFrame([{**_row(f"{label}, seeds 0-2: {c}", m, ch, *rest), "n_seeds": 3}
                  for c in comparisons for m, (ch, *rest) in pooled.items()]).to_csv(out / "effects.csv", index=False)
    pd.DataFrame([_row(f"seed {s}: {c}", m, ch[s]) for s in range(3) for c in comparisons
                  for m, ch in per_seed.items()]).to_csv(out / "per_seed.csv", index=False)
    (out / "provenance.json").write_text(json.dumps({"git_commit": f"c{table}{model}", "preset": preset,
                                                     "seeds": 3, "grid_wall_s": 10.0}))
    return out


def test_merge_relabels_each_models_effects_as_the_notebooks_do(tmp_path):
    """Values copied as they are; labels '<Model>: <comparison>'; each seed's row gets its seed; a model without
    both files is left out; a label in neither form, or no model at all, is refused."""
    comps = ("ours vs 3D SyncNet", "ours vs Ours w/o 2D prior")
    _model_folder(tmp_path, 3, "faceformer", comps, {"MTM (ms)": (-1.5,)}, {"MTM (ms)": (-1, -2, 0.5)})
    _model_folder(tmp_path, 3, "selftalk", comps, {"PLRS-e": (0.01, 0.005)}, {"PLRS-e": (0.02, 0.0, 0.01)})
    (tmp_path / "table3_seeds" / "codetalker").mkdir()
    (tmp_path / "table3_seeds" / "codetalker" / "effects.csv").write_text("comparison\n")  # no per_seed.csv
    effects, per_seed, models = ex.merge_seed_tables(tmp_path / "table3_seeds")
    assert models == ["faceformer", "selftalk"]
    assert effects["comparison"].tolist() == ["FaceFormer: ours vs 3D SyncNet", "FaceFormer: ours vs Ours w/o 2D prior",
                                              "SelfTalk: ours vs 3D SyncNet", "SelfTalk: ours vs Ours w/o 2D prior"]
    assert effects["change"].tolist() == [-1.5, -1.5, 0.01, 0.01] and effects["n_seeds"].eq(3).all()
    assert effects.loc[2, "change CI low"] == pytest.approx(0.005)
    ff = per_seed[per_seed["comparison"] == "FaceFormer: ours vs 3D SyncNet"]
    assert ff["seed"].tolist() == [0, 1, 2] and ff["change"].tolist() == [-1, -2, 0.5]
    assert list(per_seed.columns[:2]) == ["comparison", "seed"]
    bad = tmp_path / "bad" / "faceformer"
    bad.mkdir(parents=True)
    pd.DataFrame([_row("FaceFormer, seeds 0-2: x", "LVE", 1.0)]).to_csv(bad / "effects.csv", index=False)
    pd.DataFrame([_row("seedling: x", "LVE", 1.0)]).to_csv(bad / "per_seed.csv", index=False)
    with pytest.raises(InputError, match="not labelled as scripts/table_seeds.py labels it"):
        ex.merge_seed_tables(tmp_path / "bad")
    with pytest.raises(InputError, match="no <model>/effects.csv"):
        ex.merge_seed_tables(tmp_path / "nothing")
    # another model's output in a model's folder, and a seed's row twice: refused (were relabelled / kept)
    pd.DataFrame([_row("SelfTalk, seeds 0-4: x", "LVE", 1.0)]).to_csv(bad / "effects.csv", index=False)
    pd.DataFrame([_row(f"seed {s}: x", "LVE", 1.0) for s in (0, 1)]).to_csv(bad / "per_seed.csv", index=False)
    with pytest.raises(InputError, match="not FaceFormer's"):
        ex.merge_seed_tables(tmp_path / "bad")
    pd.DataFrame([_row("FaceFormer, seeds 0-1: x", "LVE", 1.0)]).to_csv(bad / "effects.csv", index=False)
    pd.DataFrame([_row(f"seed {s}: x", "LVE", 1.0) for s in (0, 0, 1)]).to_csv(bad / "per_seed.csv", index=False)
    with pytest.raises(InputError, match="appear twice .*seed 0"):
        ex.merge_seed_tables(tmp_path / "bad")
    # each row keeps the seed its own label names, whatever the rows' order
    pd.DataFrame([_row(f"seed {s}: x", "LVE", float(s)) for s in (12, 0, 1)]).to_csv(bad / "per_seed.csv", index=False)
    merged = ex.merge_seed_tables(tmp_path / "bad")[1]
    assert merged["seed"].tolist() == [12, 0, 1] and merged["change"].tolist() == [12.0, 0.0, 1.0]


def test_script_writes_the_merged_tables_and_judges_the_claims_they_decide(tmp_path, capsys):
    """Both tables for every model, the referee table copied: the Table-3 and Table-4 claims only, numbered as in
    results/claims.md, with each case's seed count; the inputs' commits and the copy's hash in provenance.json."""
    mead = {"SLCC Δ": (-0.2, 0.1), "PLRS-e": (-0.02, 0.005)}
    for m in ex.MODELS:
        _model_folder(tmp_path, 3, m, ("ours vs 3D SyncNet", "ours vs Ours w/o 2D prior"),
                      {"MTM (ms)": (-1.0, 2.0), "PLRS-e": (0.01, 0.02), "SLCC Δ": (0.0, 0.1)},
                      {"MTM (ms)": (-1, -2, 0.5), "PLRS-e": (0.02, 0.0, 0.01), "SLCC Δ": (0.1, -0.1, 0.0)})
        folder = _model_folder(tmp_path, 4, m, ("+ synth-mead",), mead,
                               {"SLCC Δ": (-0.3, -0.1, -0.2), "PLRS-e": (-0.01, -0.03, 0.01)})
        ours = pd.DataFrame([_row(f"{ex.MODEL_LABELS[m]}, seeds 0-2: + ours", "PLRS-e", 0.001, 0.01)])
        pd.concat([pd.read_csv(folder / "effects.csv"), ours]).to_csv(folder / "effects.csv", index=False)
    referees = tmp_path / "referees"
    referees.mkdir()
    from p3d.analysis.referee_validity import BATTERY_DEGRADATIONS

    pd.DataFrame([{"variant": "enrolled", "degradation": d, "mean_minus_gt": -1, "ci_low": -2, "ci_high": -0.5,
                   "n_clips": 24} for d in BATTERY_DEGRADATIONS]).to_csv(referees / "plrs_validity.csv", index=False)
    out = tmp_path / "seeds"
    script = _script()
    assert script.main(["--results", str(tmp_path), "--referee-tables", str(referees), "--out", str(out)]) == 0
    for stem in ("table3_critic_effects", "table3_critic_effects_per_seed", "table4_effects",
                 "table4_effects_per_seed", "plrs_validity"):
        assert (out / f"{stem}.csv").is_file(), stem
    t4 = pd.read_csv(out / "table4_effects.csv")["comparison"].tolist()
    assert t4[:3] == ["FaceFormer: + synth-mead"] * 2 + ["FaceFormer: + ours"] and len(t4) == 9
    report = (out / "claims.md").read_text()
    numbers = [line.split(" | ")[0] for line in report.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert numbers == ["| 6", "| 7", "| 11", "| 12", "| 13"]
    assert "## 11. Adding MEAD-3D to training raises expressiveness (SLCC Δ falls).\n\n- **Verdict: reproduced**" \
        in report
    assert "## 12. Adding MEAD-3D to training lowers lip readability (PLRS).\n\n- **Verdict: reproduced**" in report
    assert "per seed: 3 of 3 changes share its sign" in report
    assert "PLRS referees passing the validity battery: enrolled" in report
    assert "from Tables 3 and 4 at several seeds" in report
    assert ("- Tables: stage2_retrieval_ours, stage2_retrieval_no2d, fig_s6_s7_medians, table3_critic_effects, "
            "table3_critic_effects_per_seed, plrs_validity\n") in report    # claim 6 names what its loss part read
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["claims"] == [6, 7, 11, 12, 13] and prov["preset"] == "full"
    assert prov["tables"]["table4_effects"]["selftalk"]["git_commit"] == "c4selftalk"
    copied = prov["referee_tables"]
    assert set(copied) == {"plrs_validity.csv"} and len(copied["plrs_validity.csv"]["sha256"]) == 64
    assert "| 11 |" in capsys.readouterr().out
    assert not (out / "claims_vs_full.md").exists()               # no <results>/tables to set beside them
    (tmp_path / "tables").mkdir()
    pd.DataFrame([_row("FaceFormer: + synth-mead", "SLCC Δ", 0.5, half=0.1)]).to_csv(
        tmp_path / "tables" / "table4_effects.csv", index=False)
    assert script.main(["--results", str(tmp_path), "--referee-tables", str(referees), "--out", str(out)]) == 0
    versus = (out / "claims_vs_full.md").read_text()
    assert "| 11 | Adding MEAD-3D to training raises expressiveness (SLCC Δ falls). | reproduced | contradicted |" \
        in versus and versus.count("\n| ") == 6                     # the header and claims 6, 7, 11, 12, 13
    # merged again without Table 4: the folder is replaced as one unit, no Table-4 output of the first merge stays
    shutil.rmtree(tmp_path / "table4_seeds")
    assert script.main(["--results", str(tmp_path), "--out", str(out)]) == 0
    assert not (out / "table4_effects.csv").exists() and not (out / "plrs_validity.csv").exists()
    assert (out / "table3_critic_effects_per_seed.csv").is_file()
    assert "| 11 |" not in (out / "claims.md").read_text() and "official PLRS" in (out / "claims.md").read_text()
    assert "| 11 |" not in (out / "claims_vs_full.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []   # no staging left behind


def test_script_refuses_bad_input_with_one_line_before_writing(tmp_path, capsys):
    script = _script()
    out = tmp_path / "seeds"
    assert script.main(["--results", str(tmp_path), "--out", str(out)]) == 2
    assert "neither table3_seeds/ nor table4_seeds/" in capsys.readouterr().err
    _model_folder(tmp_path, 3, "faceformer", ("ours vs 3D SyncNet",), {"MTM (ms)": (-1.0,)}, {"MTM (ms)": (1, 2, 3)})
    assert script.main(["--results", str(tmp_path), "--referee-tables", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no plrs_validity.csv" in err[0]
    _model_folder(tmp_path, 4, "faceformer", ("+ synth-mead",), {"MTM (ms)": (-1.0,)}, {"MTM (ms)": (1, 2, 3)},
                  preset="cpu")
    assert script.main(["--results", str(tmp_path), "--out", str(out)]) == 2
    assert "several presets" in capsys.readouterr().err
    assert not out.exists()


def test_referee_run_record_lists_the_executions_that_ran_and_finished(tmp_path):
    """make figures records a failed execution with ``failed`` (and ``skipped`` False): it made no table."""
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps({"machine": {"cpus": 2}, "notebooks": [
        {"executed": "06.ipynb", "git_commit": "a", "wall_s": 1.0, "skipped": False},
        {"executed": "07.ipynb", "git_commit": "a", "wall_s": 2.0, "skipped": True},
        {"executed": "08.ipynb", "git_commit": "a", "wall_s": 3.0, "skipped": False, "failed": "ValueError: x"}]}))
    record = _script()._run_record(path)
    assert [r["executed"] for r in record["notebooks"]] == ["06.ipynb"] and record["machine"] == {"cpus": 2}
