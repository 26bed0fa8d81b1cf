"""The FLAME path of the official release: FaceFormer at the paper preset on a processed-VOCASET folder with
the official loss critic (``model_loss.pth`` layout), the loss checked against the official formula.

The official ``perceptual_loss/`` script (``data_loader.py``, ``faceformer.py``, ``main.py``) is re-stated
here in plain torch, independently of :mod:`p3d.losses`: the critic's speech input is the wav file's
channel 0 resampled once to 19.2 kHz, cut into 3200-sample windows at hop 640, each mean-subtracted,
Kaldi fbank and normalised; the model's prediction is cut into stride-1 5-frame windows; consecutive
batches of 80 windows (a remainder batch kept when it holds >= 2), symmetric InfoNCE at temperature 0.07
over each batch, mean over batches; total = MSE + 1e-7 * that.
"""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from official_model import official_features
from p3d.audio import FbankOptions, kaldi_fbank, normalise_fbank, resample, speech_windows
from p3d.cli import main
from p3d.losses.perceptual_loss import PerceptualLoss
from p3d.models import load_model
from p3d.models.speech_mesh import load_critic
from p3d.talker_data import AUDIO_RATE, TalkerClips
from p3d.train.talker import TalkerStep, build
from release_fixtures import official_critic_checkpoint, tiny_wav2vec2, write_processed_vocaset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test

TRAIN_A, TRAIN_B, TEST = "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170809_00138_TA"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(VOCASET folder, wav2vec2 folder, model_loss.pth, its state dict). Clip lengths: 90 frames at 30 fps
    (86 windows: a batch of 80 and a kept remainder of 6) and 85 frames (81 windows: the single leftover
    window dropped); a test clip, which training ignores."""
    tmp = tmp_path_factory.mktemp("release")
    root = write_processed_vocaset(tmp / "vocaset", [(TRAIN_A, 1, 3.0), (TRAIN_B, 2, 85 / 30), (TEST, 21, 1.0)])
    ckpt, sd = official_critic_checkpoint(tmp / "model_loss.pth", 5023)
    return root, tiny_wav2vec2(tmp / "wav2vec2"), ckpt, sd


# -- the official loss, re-stated -------------------------------------------------------------------
def official_fbank_windows(wav_path) -> torch.Tensor:
    """``load_audio_mel``: channel 0, resampled once to 19 200 Hz, per-window fbank (told 16 kHz)."""
    samples, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    audio = resample(samples[:, 0], sr, 19200)
    out, i = [], 0
    while i * 640 + 3200 <= audio.size:
        window = audio[i * 640: i * 640 + 3200].astype(np.float64)
        out.append(normalise_fbank(kaldi_fbank(window - window.mean(), FbankOptions())))
        i += 1
    return torch.from_numpy(np.stack(out))


def official_total_loss(sd, fbank_windows, pred, gt):
    """MSE + 1e-7 * the mean over batches of 80 of the symmetric InfoNCE (tau 0.07), in float64."""
    pred = pred.double().reshape(pred.shape[0], -1)
    n = min(fbank_windows.shape[0], pred.shape[0] - 4)
    mesh = torch.stack([pred[i:i + 5] for i in range(n)])  # stride-1 windows
    batches = [(s, s + 80) for s in range(0, n - n % 80, 80)]
    if n % 80 >= 2:
        batches.append((n - n % 80, n))
    losses = []
    for a, b in batches:
        speech_f, mesh_f = official_features(sd, fbank_windows[a:b], mesh[a:b])
        logits = speech_f @ mesh_f.T / 0.07
        target = torch.arange(b - a)
        losses.append(0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)))
    percp = torch.stack(losses).mean()
    mse = ((pred - gt.double().reshape(gt.shape[0], -1)) ** 2).mean()
    return mse + 1e-7 * percp, percp, len(batches)


# -- tests --------------------------------------------------------------------------------------------
def test_critic_speech_windows_are_the_file_resampled_once(release):
    root, _, ckpt, _ = release
    data = TalkerClips(root, "train", perceptual=PerceptualLoss(load_critic(ckpt)), cache_speech=False)
    assert data.fps == 30 and data.n_vertices == 5023 and data.styles == sorted([TRAIN_A, TRAIN_B])
    item = data[data.stems.index(f"{TRAIN_A}_sentence01")]
    reference = official_fbank_windows(root / "wav" / f"{TRAIN_A}_sentence01.wav")
    assert item.vertices.shape == (90, 5023, 3) and tuple(item.speech.shape) == (86, 20, 128)
    np.testing.assert_allclose(item.speech.numpy(), reference.numpy(), atol=2e-5)
    # what p3d did before: the 16 kHz channel mean resampled a second time; measurably different
    twice = speech_windows(item.audio.numpy(), AUDIO_RATE, 30, n_frames=90)
    assert np.abs(twice - reference.numpy()).max() > 1e-2


@pytest.mark.parametrize("stem, n_batches", [(f"{TRAIN_A}_sentence01", 2), (f"{TRAIN_B}_sentence02", 1)])
def test_loss_equals_the_official_loss(release, stem, n_batches):
    root, w2v, ckpt, sd = release
    job = build("faceformer", "paper", root, critic="ours", critic_checkpoint=ckpt, wav2vec2=w2v, device="cpu")
    assert isinstance(job.step_fn, TalkerStep) and job.step_fn.perceptual.weight == 1e-7
    assert job.step_fn.perceptual.batch_size == 80 and job.step_fn.perceptual.temperature == 0.07
    net, batch = job.model, job.data[job.data.stems.index(stem)]
    with torch.no_grad():  # a trained-looking head: the zero-initialised one predicts the template only
        net.vertice_map_r.weight.normal_(0, 1e-3)
    net.eval()  # no dropout / time masking: the step and the re-statement see the same prediction
    loss, logs = job.step_fn(net, batch, torch.Generator())
    with torch.no_grad():
        pred = net(batch).vertices
    fbank = official_fbank_windows(root / "wav" / f"{stem}.wav")
    total, percp, batches = official_total_loss(sd, fbank, pred, batch.vertices)
    assert batches == n_batches
    np.testing.assert_allclose(logs["percp"], float(percp), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(loss.detach()), float(total), rtol=1e-5, atol=0)


@pytest.mark.slow
def test_cli_trains_faceformer_paper_with_the_official_critic(release, tmp_path):
    root, w2v, ckpt, _ = release
    out = tmp_path / "run"
    assert main(["train", "talker", "--model", "faceformer", "--preset", "paper", "--data", str(root),
                 "--critic", "ours", "--critic-checkpoint", str(ckpt), "--wav2vec2", str(w2v), "--out", str(out),
                 "--steps", "2", "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fps"] == 30 and cfg["n_vertices"] == 5023 and cfg["loss_weight"] == 1e-7
    assert cfg["critic_checkpoint"] == str(ckpt.resolve()) and cfg["corpora"] == ["vocaset"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert "percp" in rows[0] and rows[-1].startswith("2,")
    model = load_model(out / "final.pt")
    assert model.kind == "faceformer" and model.n_vertices == 5023 and model.config.d_model == 64
