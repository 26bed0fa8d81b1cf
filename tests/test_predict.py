"""``p3d predict``: official file names (one file per test clip and training identity), shapes, then ``p3d eval``."""
import json

import numpy as np
import pytest
import torch

from p3d.cli import main
from p3d.errors import InputError
from p3d.predict import predict_split


@pytest.fixture(scope="module")
def run(voca_short, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "ff"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "talker", "--model", "faceformer", "--train", str(voca_short), "--preset", "smoke",
                     "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_predict_names_shapes_and_eval(voca_short, run, tmp_path):
    pred = tmp_path / "pred"
    assert main(["predict", "--run", str(run), "--split", "test", "--out", str(pred), "--no-progress"]) == 0
    names = sorted(p.name for p in pred.glob("*.npy"))
    expected = sorted(f"test00_sentence{k:02d}_condition_train{c:02d}.npy" for k in (1, 2) for c in (0, 1))
    assert names == expected
    for name in names:
        arr = np.load(pred / name, allow_pickle=False)
        gt = np.load(voca_short / "vertices_npy" / (name.split("_condition_")[0] + ".npy"))
        assert arr.dtype == np.float32 and arr.shape == (gt.shape[0] // 2, 30, 3)
    ev = tmp_path / "eval"
    assert main(["eval", "--pred", str(pred), "--gt", str(voca_short), "--audio", str(voca_short), "--fps", "30",
                 "--gt-fps", "60", "--topology", str(voca_short / "topology.npz"), "--metrics", "lve,mtm",
                 "--out", str(ev), "--no-progress"]) == 0
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 4 and summary["counts"]["skipped"] == 0


def test_predict_without_vertices_uses_audio_length(voca_short, run, tmp_path):
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(voca_short, data)
    stem = "test00_sentence01"
    (data / "vertices_npy" / f"{stem}.npy").unlink()
    files = predict_split(run, tmp_path / "p", data=[data], progress=False)
    arr = np.load(tmp_path / "p" / f"{stem}_condition_train00.npy")
    assert len(files) == 4 and arr.shape == (18, 30, 3)  # floor(0.6 s * 30 fps)


def test_predict_resumes_and_checks(voca_short, run, tmp_path):
    out = tmp_path / "p"
    predict_split(run, out, progress=False)
    target = out / "test00_sentence01_condition_train00.npy"
    mtime = target.stat().st_mtime_ns
    predict_split(run, out, progress=False)
    assert target.stat().st_mtime_ns == mtime  # kept
    with pytest.raises(InputError, match="config.json"):
        predict_split(tmp_path, out, progress=False)
    with pytest.raises(InputError, match="val"):
        predict_split(run, out, split="val", data=[voca_short], progress=False)


def test_predict_official_faceformer_checkpoint(voca_short, tmp_path):
    """``p3d predict --checkpoint vocaset.pth --model faceformer``: an official-layout FaceFormer file (tiny
    sizes) predicts every test sentence once per official training subject, length from the audio."""
    from test_baseline_checkpoints import faceformer_state_dict

    from p3d.models.official_baselines import VOCASET_TRAIN_SUBJECTS

    ckpt = tmp_path / "vocaset.pth"
    torch.save(faceformer_state_dict(), ckpt)
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "faceformer", "--data", str(voca_short),
                 "--out", str(pred), "--device", "cpu", "--no-progress"]) == 0
    names = sorted(p.name for p in pred.glob("*.npy"))
    assert names == sorted(f"test00_sentence{k:02d}_condition_{s}.npy" for k in (1, 2) for s in VOCASET_TRAIN_SUBJECTS)
    arr = np.load(pred / names[0], allow_pickle=False)
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[1:] == (30, 3) and 15 <= arr.shape[0] <= 18
    other = np.load(pred / names[1], allow_pickle=False)
    assert not np.allclose(arr, other)  # another style condition, another prediction
    # wrong model name, missing --data, --styles of the wrong length: one-line errors (exit 2)
    assert main(["predict", "--checkpoint", str(ckpt), "--model", "selftalk", "--data", str(voca_short),
                 "--out", str(pred)]) == 2
    assert main(["predict", "--checkpoint", str(ckpt), "--out", str(pred)]) == 2
    assert main(["predict", "--checkpoint", str(ckpt), "--data", str(voca_short), "--styles", "a,b", "--out",
                 str(pred)]) == 2
    assert main(["predict", "--run", str(tmp_path), "--model", "faceformer", "--out", str(pred)]) == 2
