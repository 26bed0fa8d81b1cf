"""Small demo datasets in the real file layouts, generated deterministically in seconds.

They exist so that ``p3d eval``, the tests and ``notebooks/00_quickstart.ipynb`` can be tried without
VOCASET or MEAD-3D (which need registration). Geometry is FLAME-sized (5023 vertices, metres) but
*synthetic*: a random smooth template per subject whose lip vertices (the official 254-entry list)
open and close with a syllable-like signal; predictions are the ground truth with a known time shift,
amplitude change and noise per conditioning identity. Audio is a noise carrier whose loudness follows
the same signal. Nothing here is a real face or real speech: for those see :mod:`p3d.synth`.

Layouts written under ``root``:

- ``vocaset/``: ``vertices_npy/<subject>_sentenceNN.npy`` (T, 15069) at 60 fps, ``wav/<same>.wav``
  (16 kHz), ``templates.pkl``, ``FLAME_masks.pkl`` (a fixture with made-up masks in the real format),
  and ``pred/<subject>_sentenceNN_condition_<train_subject>.npy`` at 30 fps plus one SelfTalk-style
  suffix-less prediction and one prediction whose GT does not exist;
- ``mead/``: ``vertices_npy/{id}_{emotion}_level_{n}_{clip}.npy`` at 30 fps, ``wav/``,
  ``templates.pkl`` and ``pred/{...}_condition_<train_subject>.npy``.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p3d.atomic import atomic_open, atomic_path, save_npy
from p3d.topology import FLAME_LIPS, FLAME_MTM_LOWER, FLAME_MTM_UPPER, FLAME_N_VERTICES

SR = 16000
TRAIN_SUBJECTS = ("FaceTalk_170728_03272_TA", "FaceTalk_170725_00137_TA")
TEST_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
MEAD_IDS = ("M003", "W009")


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def vocaset(self) -> Path:
        return self.root / "vocaset"

    @property
    def mead(self) -> Path:
        return self.root / "mead"


def _template(rng: np.random.Generator) -> np.ndarray:
    """A smooth random 'face' point cloud of FLAME size (metres), float32 (V, 3)."""
    t = rng.normal(0.0, 0.04, size=(FLAME_N_VERTICES, 3))
    t[FLAME_MTM_UPPER] = [0.0, -0.030, 0.09]
    t[FLAME_MTM_LOWER] = [0.0, -0.036, 0.09]
    return t.astype(np.float32)


def _lip_signal(n: int, fps: float, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A syllable-like mouth-opening signal in metres: positive bumps at ~4 Hz with random timing."""
    t = np.arange(n) / fps
    sig = np.zeros(n)
    onset = rng.uniform(0.05, 0.2)
    while onset < t[-1]:
        width = rng.uniform(0.06, 0.12)
        sig += rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((t - onset) / width) ** 2)
        onset += rng.uniform(0.18, 0.35)
    return amplitude * sig


def _animate(template: np.ndarray, opening: np.ndarray, brow: np.ndarray, upper_face: np.ndarray) -> np.ndarray:
    """(T, V*3) float32: lower-lip vertices move down with ``opening``, upper lips up a little."""
    lips = np.asarray(FLAME_LIPS)
    lower = np.setdiff1d(lips[lips < 3700], [FLAME_MTM_UPPER])  # an arbitrary half follows the jaw
    upper = np.setdiff1d(lips, lower)  # holds the MTM upper-lip vertex; the lower one is in ``lower``
    frames = np.repeat(template[None], len(opening), axis=0).astype(np.float64)
    frames[:, lower, 1] -= opening[:, None]
    frames[:, upper, 1] += 0.2 * opening[:, None]
    frames[:, upper_face, 1] += brow[:, None]
    return frames.reshape(len(opening), -1).astype(np.float32)


def _audio(opening: np.ndarray, fps: float, rng: np.random.Generator, gain: float) -> np.ndarray:
    """A noise carrier whose envelope follows the opening signal (leading it by 40 ms), int16."""
    n = int(round(len(opening) / fps * SR))
    t_audio = np.arange(n) / SR
    env = np.interp(t_audio + 0.04, np.arange(len(opening)) / fps, opening / max(opening.max(), 1e-9))
    carrier = rng.normal(0.0, 1.0, n) * np.sin(2 * np.pi * 140 * t_audio) ** 2
    wav = gain * env * carrier
    return np.clip(wav * 8000, -32767, 32767).astype(np.int16)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(tmp, samples, SR, subtype="PCM_16", format="WAV")


def _write_pickle(path: Path, obj: object) -> None:
    with atomic_open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def fixture_masks(seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up FLAME-style masks (real key names, random disjoint-from-lips indices) for tests."""
    rng = np.random.default_rng(seed)
    free = np.setdiff1d(np.arange(FLAME_N_VERTICES), np.asarray(FLAME_LIPS))
    pick = rng.permutation(free)
    sizes = {"eye_region": 751, "forehead": 133, "nose": 379, "left_eye_region": 287, "right_eye_region": 287}
    out, start = {}, 0
    for key, size in sizes.items():
        out[key] = np.sort(pick[start:start + size]).astype(np.int64)
        start += size
    out["lips"] = np.unique(np.asarray(FLAME_LIPS)).astype(np.int64)
    return out


def write_demo_dataset(root: str | os.PathLike[str], seed: int = 0, seconds: float = 2.0) -> DemoPaths:
    """Write the demo VOCASET- and MEAD-layout datasets under ``root`` (idempotent: skips if complete)."""
    paths = DemoPaths(Path(root))
    done = paths.root / ".complete"
    if done.exists() and done.read_text().strip() == f"{seed} {seconds}":
        return paths
    rng = np.random.default_rng(seed)
    masks = fixture_masks(seed)
    upper_face = np.unique(np.concatenate([masks[k] for k in ("eye_region", "forehead", "nose")]))

    # -- VOCASET layout: GT at 60 fps, predictions at 30 fps -----------------------------------
    voca = paths.vocaset
    templates = {s: _template(rng) for s in TRAIN_SUBJECTS + TEST_SUBJECTS}
    _write_pickle(voca / "templates.pkl", templates)
    _write_pickle(voca / "FLAME_masks.pkl", masks)
    n60 = int(seconds * 60)
    for subject in TEST_SUBJECTS:
        for sentence in ("sentence21", "sentence22"):
            stem = f"{subject}_{sentence}"
            amp = rng.uniform(0.004, 0.012)
            opening = _lip_signal(n60, 60.0, rng, amp)
            brow = 0.0005 * np.sin(np.arange(n60) / 60.0 * 2 * np.pi * rng.uniform(0.3, 1.0))
            gt = _animate(templates[subject], opening, brow, upper_face)
            save_npy(voca / "vertices_npy" / f"{stem}.npy", gt)
            _write_wav(voca / "wav" / f"{stem}.wav", _audio(opening, 60.0, rng, gain=amp / 0.008))
            for k, cond in enumerate(TRAIN_SUBJECTS):
                shift = k + 1  # frames at 30 fps: the prediction lags the GT
                o30 = opening[::2]
                lagged = np.concatenate([np.full(shift, o30[0]), o30[:-shift]])
                pred_open = lagged * rng.uniform(0.7, 1.1) + rng.normal(0, amp * 0.02, len(o30))
                pred = _animate(templates[subject], pred_open, brow[::2] * 0.5, upper_face)
                save_npy(voca / "pred" / f"{stem}_condition_{cond}.npy", pred)
    # a SelfTalk-style prediction without the _condition_ suffix, and one whose GT does not exist
    selftalk_stem = f"{TEST_SUBJECTS[0]}_sentence21"
    gt = np.load(voca / "vertices_npy" / f"{selftalk_stem}.npy")[::2]
    save_npy(voca / "pred" / f"{selftalk_stem}.npy", gt + rng.normal(0, 2e-4, gt.shape).astype(np.float32))
    save_npy(voca / "pred" / f"{TEST_SUBJECTS[1]}_sentence40_condition_{TRAIN_SUBJECTS[0]}.npy", gt)

    # -- MEAD layout: 30 fps, three intensity levels --------------------------------------------
    mead = paths.mead
    mtemplates = {s: _template(rng) for s in MEAD_IDS}
    _write_pickle(mead / "templates.pkl", mtemplates)
    n30 = int(seconds * 30)
    for ident in MEAD_IDS:
        style = rng.uniform(0.8, 1.2)
        for level in (1, 2, 3):
            for clip in ("001", "002", "003"):
                stem = f"{ident}_neutral_level_{level}_{clip}"
                loud = (0.6 + 0.4 * level) * rng.lognormal(0, 0.15)
                amp = 0.005 * style * loud * rng.lognormal(0, 0.2)
                opening = _lip_signal(n30, 30.0, rng, amp)
                gt = _animate(mtemplates[ident], opening, np.zeros(n30), upper_face)
                save_npy(mead / "vertices_npy" / f"{stem}.npy", gt)
                _write_wav(mead / "wav" / f"{stem}.wav", _audio(opening, 30.0, rng, gain=loud))
                for cond in TRAIN_SUBJECTS[:1]:
                    damp = rng.uniform(0.5, 0.9)  # models under-articulate loud speech
                    pred = _animate(mtemplates[ident], opening * damp + rng.normal(0, 1e-4, n30), np.zeros(n30), upper_face)
                    save_npy(mead / "pred" / f"{stem}_condition_{cond}.npy", pred)
    done.write_text(f"{seed} {seconds}\n")
    return paths
