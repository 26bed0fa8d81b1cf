"""Test helpers for the official-release paths: processed VOCASET / BIWI folders, a tiny local wav2vec2 and a
tiny official-layout critic checkpoint (``model_loss.pth``), all written to a temporary folder (no download).

- :func:`write_processed_vocaset`: ``vertices_npy/<subj>_sentenceNN.npy`` (T60, 5023*3) at 60 fps,
  ``wav/<subj>_sentenceNN.wav`` (22.05 kHz, two channels that differ: the critic reads channel 0),
  ``templates.pkl``; official subject names, no ``meta.json``.
- :func:`write_processed_biwi`: ``vertices_npy/F2_e01.npy`` (T25, 23370*3) at 25 fps, ``wav/F2_e01.wav``
  (44.1 kHz), ``templates.pkl``, ``regions/lve.txt`` / ``regions/fdd.txt`` (comma-space separated).
"""
from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from official_model import official_state_dict


def tiny_wav2vec2(path: str | Path, hidden: int = 32) -> Path:
    """A randomly initialised tiny ``Wav2Vec2Model`` saved with ``save_pretrained`` (hidden size ``hidden``)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
                         conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                         mask_time_prob=0.05, mask_time_length=2)
    Wav2Vec2Model(cfg).save_pretrained(path)
    return Path(path)


def official_critic_checkpoint(path: str | Path, n_vertices: int, seed: int = 0) -> tuple[Path, dict]:
    """An official-layout ``model_loss.pth`` (``{"model": state_dict, "epoch": ...}``); returns (path, state dict)."""
    sd = official_state_dict(seed=seed, n_vertices=n_vertices)
    torch.save({"model": sd, "epoch": 99}, path)
    return Path(path), sd


def _speech(seconds: float, sr: int, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Syllable-like amplitude-modulated noise, (n, channels) float32 in [-1, 1]."""
    t = np.arange(int(round(seconds * sr))) / sr
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3.0 * t)) + 0.05
    out = 0.2 * envelope[:, None] * rng.standard_normal((t.size, channels))
    return out.clip(-0.99, 0.99).astype(np.float32)


def _write_clip(root: Path, stem: str, template: np.ndarray, n_frames: int, seconds: float, sr: int,
                rng: np.random.Generator, channels: int) -> None:
    motion = 0.002 * np.sin(np.linspace(0, 6, n_frames))[:, None, None] * rng.standard_normal((1,) + template.shape)
    verts = (template[None] + motion).astype(np.float32)
    np.save(root / "vertices_npy" / f"{stem}.npy", verts.reshape(n_frames, -1))
    sf.write(root / "wav" / f"{stem}.wav", _speech(seconds, sr, rng, channels), sr, subtype="PCM_16")


def _layout(root: Path) -> Path:
    root = Path(root)
    (root / "vertices_npy").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    return root


def write_processed_vocaset(root: str | Path, clips: Sequence[tuple[str, int, float]], *, sr: int = 22050,
                            seed: int = 0) -> Path:
    """A processed VOCASET folder with ``clips`` = [(subject, sentence number, seconds)]; 60 fps vertices."""
    root, rng = _layout(root), np.random.default_rng(seed)
    templates = {}
    for subject, sentence, seconds in clips:
        if subject not in templates:
            templates[subject] = (0.1 * rng.standard_normal((5023, 3))).astype(np.float32)
        _write_clip(root, f"{subject}_sentence{sentence:02d}", templates[subject], int(round(60 * seconds)),
                    seconds, sr, rng, channels=2)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    return root


BIWI_LIPS = np.arange(100, 400)
BIWI_UPPER = np.arange(10000, 10600)


def write_processed_biwi(root: str | Path, clips: Sequence[tuple[str, int, float]], *, sr: int = 44100,
                         seed: int = 0, regions: bool = True) -> Path:
    """A processed BIWI folder with ``clips`` = [(subject, sentence number eNN, seconds)]; 25 fps vertices."""
    root, rng = _layout(root), np.random.default_rng(seed)
    templates = {}
    for subject, sentence, seconds in clips:
        if subject not in templates:
            templates[subject] = (0.1 * rng.standard_normal((23370, 3))).astype(np.float32)
        _write_clip(root, f"{subject}_e{sentence:02d}", templates[subject], int(round(25 * seconds)), seconds, sr,
                    rng, channels=1)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    if regions:
        (root / "regions").mkdir(exist_ok=True)
        (root / "regions" / "lve.txt").write_text(", ".join(str(i) for i in BIWI_LIPS))
        (root / "regions" / "fdd.txt").write_text(", ".join(str(i) for i in BIWI_UPPER))
    return root
