"""Test helpers: a tiny corpus in the ``p3d.corpus`` layout with a learnable speech-mesh relation, and
a talking synthetic face (:func:`talking_face`).

Each clip has syllables: a loudness envelope e(t) in [0, 1] (raised-cosine bumps every 0.1-0.45 s)
and a vowel quality r in [0, 1] per syllable. The speech is noise scaled by e(t), mixing a band
below 1 kHz and one above 3 kHz in proportions (1 - r, r). The mesh is the identity's template (one
random face plus a few mm of per-identity variation) plus e times a fixed "lip opening" displacement
(up to 1 cm) of the first 10 vertices plus e (2 r - 1) times a "spread / round" displacement. The
lip video is a dark ellipse whose height follows e and width r; the frame labels are e quantised to
3 classes. So speech, mesh and video windows share one signal a contrastive model can learn.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from p3d.topology import Topology

SR = 16000


def envelope(t: np.ndarray, rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Syllables: (loudness e(t) in [0, 1], vowel quality r(t) in [0, 1], constant per syllable)."""
    e, r = np.zeros_like(t), np.zeros_like(t)
    onset = rng.uniform(0.0, 0.15)
    while onset < seconds:
        dur, amp = rng.uniform(0.08, 0.25), rng.uniform(0.3, 1.0)
        inside = (t >= onset) & (t < onset + dur)
        e[inside] += amp * 0.5 * (1 - np.cos(2 * np.pi * (t[inside] - onset) / dur))
        r[inside] = rng.uniform()
        onset += dur + rng.uniform(0.03, 0.2)
    return np.clip(e, 0.0, 1.0), r


def _bands(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """White noise low-passed at 1 kHz and high-passed at 3 kHz, unit RMS."""
    from scipy.signal import butter, sosfilt

    noise = rng.standard_normal(n)
    low = sosfilt(butter(4, 1000, "low", fs=SR, output="sos"), noise)
    high = sosfilt(butter(4, 3000, "high", fs=SR, output="sos"), noise)
    return low / low.std(), high / high.std()


def write_tiny_corpus(
    root: str | Path,
    *,
    kind: str = "lrs3",
    fps: int = 25,
    model_fps: int | None = None,
    identities: dict[str, int] | None = None,
    clips_per_identity: int = 3,
    prefix: str = "",
    seconds: float = 2.0,
    n_vertices: int = 30,
    lip_size: int = 24,
    levels: bool = False,
    lip_video: bool = True,
    labels: bool = True,
    seed: int = 0,
) -> Path:
    """Write the corpus and return its root. ``identities``: split -> number of identities, named
    ``<prefix><split><k>``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    identities = identities or {"train": 4, "test": 2}
    for sub in ("vertices_npy", "wav", "labels", "lipvideo"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lips = np.arange(10)
    opening = np.zeros((n_vertices, 3), np.float32)
    opening[lips, 1] = np.linspace(-1, 1, len(lips)) * 0.01
    opening[lips, 2] = 0.004
    spread = np.zeros((n_vertices, 3), np.float32)
    spread[lips, 0] = np.sign(np.arange(len(lips)) - 4.5) * 0.008
    Topology(name="tiny", n_vertices=n_vertices, regions={"lips": lips, "upper_face": np.arange(20, n_vertices)},
             mtm_upper=0, mtm_lower=9, eye_pair=(20, 21)).save_npz(root / "topology.npz")
    base = (0.1 * rng.standard_normal((n_vertices, 3))).astype(np.float32)  # one face, per-identity variation
    templates, rows, splits = {}, [], {}
    yy, xx = np.mgrid[0:lip_size, 0:lip_size] - (lip_size - 1) / 2
    for split, n_ids in identities.items():
        splits[split] = []
        for k in range(n_ids):
            ident = f"{prefix}{split}{k:02d}"
            splits[split].append(ident)
            templates[ident] = (base + 0.004 * rng.standard_normal((n_vertices, 3))).astype(np.float32)
            style = rng.uniform(0.7, 1.3)
            for c in range(clips_per_identity):
                level = int(c % 3 + 1) if levels else None
                gain = {None: 1.0, 1: 0.5, 2: 1.0, 3: 1.5}[level]
                stem = f"{ident}_level_{level}_{c:03d}" if levels else f"{ident}_sentence{c + 1:02d}"
                t_audio = np.arange(int(seconds * SR)) / SR
                e_audio, r_audio = envelope(t_audio, np.random.default_rng(rng.integers(1 << 31)), seconds)
                low, high = _bands(t_audio.size, rng)
                audio = 0.15 * gain * (e_audio + 0.01) * ((1 - r_audio) * low + r_audio * high)
                audio = audio.clip(-0.99, 0.99).astype(np.float32)
                sf.write(root / "wav" / f"{stem}.wav", audio, SR, subtype="PCM_16")
                n_frames = int(seconds * fps)
                e = np.interp(np.arange(n_frames) / fps, t_audio, e_audio)
                r = np.interp(np.arange(n_frames) / fps, t_audio, r_audio)
                verts = templates[ident][None] + (gain * style * e)[:, None, None] * opening[None]
                verts += (gain * style * e * (2 * r - 1))[:, None, None] * spread[None]
                verts += 1e-4 * rng.standard_normal(verts.shape)
                np.save(root / "vertices_npy" / f"{stem}.npy", verts.reshape(n_frames, -1).astype(np.float32))
                if labels:
                    lab = np.minimum((e * 3).astype(np.int16), 2)
                    np.savez(root / "labels" / f"{stem}.npz", phoneme=lab, viseme=lab)
                if lip_video:
                    h, w = 1 + e * lip_size * 0.35, lip_size * (0.3 + 0.1 * r)
                    inside = (xx[None] / w[:, None, None]) ** 2 + (yy[None] / h[:, None, None]) ** 2 <= 1
                    video = np.where(inside, 40, 180) + rng.integers(-10, 10, (n_frames, lip_size, lip_size))
                    np.save(root / "lipvideo" / f"{stem}.npy", video.clip(0, 255).astype(np.uint8))
                rows.append({"stem": stem, "identity": ident, "split": split, "level": level,
                             "sentence": f"s{c}", "speech_rms": float(np.sqrt(np.mean(audio ** 2)))})
    if not lip_video:
        (root / "lipvideo").rmdir()
    pd.DataFrame(rows).to_csv(root / "clips.csv", index=False)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh)
    meta = {"name": f"tiny-{kind}", "kind": kind, "fps": fps, "model_fps": model_fps or fps, "sample_rate": SR,
            "topology": "tiny", "n_vertices": n_vertices, "splits": splits, "phonemes": ["sil", "mid", "open"],
            "visemes": ["sil", "mid", "open"], "seed": seed, "preset": "test"}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def prefix_identities(root: Path, prefix: str, *, clips: bool = False) -> Path:
    """Prefix every identity of a tiny corpus with ``prefix`` (clips.csv, templates.pkl, meta.json); with
    ``clips`` also the clip stems and their files (corpora trained together need distinct names)."""
    root = Path(root)
    df = pd.read_csv(root / "clips.csv")
    if clips:
        for stem in df["stem"]:
            for sub, ext in (("vertices_npy", "npy"), ("wav", "wav"), ("labels", "npz")):
                (root / sub / f"{stem}.{ext}").rename(root / sub / f"{prefix}{stem}.{ext}")
        df["stem"] = prefix + df["stem"]
    df["identity"] = prefix + df["identity"]
    df.to_csv(root / "clips.csv", index=False)
    with open(root / "templates.pkl", "rb") as fh:
        templates = pickle.load(fh)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump({prefix + k: v for k, v in templates.items()}, fh)
    meta = json.loads((root / "meta.json").read_text())
    meta["splits"] = {k: [prefix + i for i in v] for k, v in meta["splits"].items()}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def talking_face(n_frames: int, shift: int = 0) -> np.ndarray:
    """(T, 468, 3) float64: the synthetic face (:mod:`p3d.synth.face`) opening and closing its jaw once over
    the clip (a sin^2 cycle, up to 8 mm), phase-shifted by ``shift`` frames (a late copy: ``shift > 0``)."""
    from p3d.synth import face

    tpl, w = face.template(), face.jaw_weights()
    phase = np.sin(np.linspace(0, 2 * np.pi, n_frames, endpoint=False) - 2 * np.pi * shift / n_frames) ** 2
    seq = np.repeat(tpl[None], n_frames, axis=0)
    seq[:, :, 1] -= 0.008 * phase[:, None] * w[None]
    return seq
