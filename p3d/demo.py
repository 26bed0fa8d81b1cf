"""Small demo datasets in the real file layouts, generated deterministically in seconds.

They exist so that ``p3d eval``, the tests and ``notebooks/00_quickstart.ipynb`` can be tried without
VOCASET or MEAD-3D (which need registration). Geometry is FLAME-sized (5023 vertices, metres) but
*synthetic*: a dome-shaped surface (one triangulation for every subject, :func:`demo_surface`,
written as ``FLAME_sample.ply`` so ``p3d render`` can draw it) scaled per subject, whose lip
vertices (the official 254-entry list, around a mouth opening) open and close with a syllable-like
signal; predictions are the ground truth with a known time shift,
amplitude change and noise per conditioning identity. Audio is a noise carrier whose loudness follows
the same signal. Nothing here is a real face or real speech: for those see :mod:`p3d.synth`.

Layouts written under ``root``:

- ``vocaset/``: ``vertices_npy/<subject>_sentenceNN.npy`` (T, 15069) at 60 fps, ``wav/<same>.wav``
  (16 kHz), ``templates.pkl``, ``FLAME_masks.pkl`` (a fixture with made-up masks in the real format),
  ``FLAME_sample.ply`` (the demo surface's triangles, in the place of FLAME's mesh file),
  and ``pred/<subject>_sentenceNN_condition_<train_subject>.npy`` at 30 fps plus one SelfTalk-style
  suffix-less prediction and one prediction whose GT does not exist;
- ``mead/``: ``vertices_npy/{id}_{emotion}_level_{n}_{clip}.npy`` at 30 fps, ``wav/``,
  ``templates.pkl`` and ``pred/{...}_condition_<train_subject>.npy``.
"""
from __future__ import annotations

import math
import numbers
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p3d.atomic import atomic_open, atomic_path, check_out_dir, save_npy
from p3d.errors import InputError
from p3d.topology import FLAME_LIPS, FLAME_MTM_LOWER, FLAME_MTM_UPPER, FLAME_N_VERTICES

SR = 16000
TRAIN_SUBJECTS = ("FaceTalk_170728_03272_TA", "FaceTalk_170725_00137_TA")
TEST_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
MEAD_IDS = ("M003", "W009")
DEMO_VERSION = 2
"""Bumped when the files change, so an older demo folder is rewritten (2: the surface and its PLY)."""
MIN_SECONDS = 0.1
"""The shortest demo clip (seconds): 3 frames at 30 fps, enough for the predictions' lag of up to 2 frames."""
DEMO_MARKER = ".p3d-demo"
"""Written in ``root`` before any demo file (``.complete`` after the last): a folder with either holds a demo."""


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def vocaset(self) -> Path:
        return self.root / "vocaset"

    @property
    def mead(self) -> Path:
        return self.root / "mead"


MOUTH_CENTRE = (0.0, -0.033)
"""x, y of the mouth opening's centre (metres): the MTM lip vertices sit 3 mm above and below it."""
MOUTH_HALF_WIDTH, MOUTH_HALF_HEIGHT = 0.024, 0.003
MTM_REST = np.array([[0.0, -0.030, 0.092], [0.0, -0.036, 0.092]])
"""Rest positions (metres) of the MTM upper / lower lip vertices in every demo template (6 mm apart)."""
LIP_RING_STEP = 0.0022
"""Distance (metres) between the rings of lip vertices around the mouth."""


def _lip_sets() -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) lip vertex indices: the lower ones follow the jaw in :func:`_animate`."""
    lips = np.unique(np.asarray(FLAME_LIPS))
    lower = np.setdiff1d(lips[lips < 3700], [FLAME_MTM_UPPER])  # an arbitrary half follows the jaw
    upper = np.setdiff1d(lips, lower)  # holds the MTM upper-lip vertex; the lower one is in ``lower``
    return upper, lower


def _lip_rings(indices: np.ndarray, mtm: int, side: float) -> dict[int, tuple[float, float]]:
    """x, y of lip ``indices`` on half-ellipse rings around the mouth (``side`` +1 above, -1 below);
    ``mtm`` at the middle of the innermost ring, i.e. 3 mm from the mouth centre."""
    per_ring = 31
    rest = [int(i) for i in indices if i != mtm]
    order = rest[:per_ring // 2] + [mtm] + rest[per_ring // 2:]
    out = {}
    for k, idx in enumerate(order):
        ring, slot = divmod(k, per_ring)
        n_slots = min(per_ring, len(order) - ring * per_ring)
        theta = np.pi * (slot + 0.5) / n_slots
        a = MOUTH_HALF_WIDTH + 0.6 * LIP_RING_STEP * ring
        b = MOUTH_HALF_HEIGHT + LIP_RING_STEP * ring
        out[idx] = (float(a * np.cos(theta)), float(MOUTH_CENTRE[1] + side * b * np.sin(theta)))
    return out


def _dome_z(xy: np.ndarray) -> np.ndarray:
    """Depth (metres) of the demo face at ``xy`` (N, 2): a dome, 0.09 m in front at the mouth."""
    r2 = (xy[:, 0] / 0.11) ** 2 + ((xy[:, 1] + 0.01) / 0.15) ** 2
    return 0.1 * np.sqrt(np.clip(1.0 - r2, 0.0, None)) + 0.09 - 0.1 * np.sqrt(1.0 - ((MOUTH_CENTRE[1] + 0.01) / 0.15) ** 2)


def demo_surface(upper_face: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The demo's neutral surface: (vertices (V, 3) float64 metres, faces (F, 3) int64), V = 5023.

    Not a face: a dome (an elliptic patch 15 x 20 cm) with a mouth opening. The lip vertices (the
    official FLAME lip list) lie on rings around the opening, the MTM vertices 3531 / 3504 in the
    middle of the upper / lower edge (6 mm apart); the other vertices on a sunflower layout, the
    ``upper_face`` indices (if given) on its topmost points. Triangles: a Delaunay triangulation
    of x, y without those inside the mouth opening. Deterministic: the same for every subject.
    """
    from scipy.spatial import Delaunay

    upper, lower = _lip_sets()
    xy = np.full((FLAME_N_VERTICES, 2), np.nan)
    for ring in (_lip_rings(upper, FLAME_MTM_UPPER, +1.0), _lip_rings(lower, FLAME_MTM_LOWER, -1.0)):
        for idx, pos in ring.items():
            xy[idx] = pos
    is_lip = np.isfinite(xy[:, 0])
    lip_xy = xy[is_lip]
    # sunflower points in the face ellipse, outside the lip rings (with a gap of one ring step)
    n_free = int((~is_lip).sum())
    k = np.arange(int(n_free * 1.4))
    r = np.sqrt((k + 0.5) / len(k))
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    cand = np.stack([0.075 * r * np.cos(phi), 0.10 * r * np.sin(phi)], axis=1)
    from scipy.spatial import cKDTree

    far = cKDTree(lip_xy).query(cand)[0] > 1.2 * LIP_RING_STEP
    cy, lip_bottom = MOUTH_CENTRE[1], float(lip_xy[:, 1].min())
    half_w = float(np.abs(lip_xy[:, 0]).max())
    inside = (np.abs(cand[:, 0]) < half_w) & (cand[:, 1] > lip_bottom) & (cand[:, 1] < cy + MOUTH_HALF_HEIGHT + LIP_RING_STEP)
    cand = cand[far & ~inside][:n_free]
    if len(cand) < n_free:  # pragma: no cover - fixed layout
        raise RuntimeError("demo surface layout: too few free points")
    free = np.flatnonzero(~is_lip)
    if upper_face is not None:  # upper-face vertices on the topmost points
        top = np.isin(free, upper_face)
        free = np.concatenate([free[top], free[~top]])
        cand = cand[np.argsort(-cand[:, 1], kind="stable")]
    xy[free] = cand
    verts = np.column_stack([xy, _dome_z(xy)])
    verts[is_lip, 2] += 0.002  # the lips stand out a little
    verts[[FLAME_MTM_UPPER, FLAME_MTM_LOWER]] = MTM_REST
    tri = Delaunay(xy).simplices
    centre = xy[tri].mean(axis=1)
    in_mouth = ((centre[:, 0] / MOUTH_HALF_WIDTH) ** 2 + ((centre[:, 1] - cy) / MOUTH_HALF_HEIGHT) ** 2) < 1.0
    tri = tri[~in_mouth]
    # consistent orientation: normals towards +z (the camera)
    d1, d2 = xy[tri[:, 1]] - xy[tri[:, 0]], xy[tri[:, 2]] - xy[tri[:, 0]]
    e = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    tri[e < 0] = tri[e < 0][:, [0, 2, 1]]
    return verts, tri.astype(np.int64)


def _template(rng: np.random.Generator, surface: np.ndarray) -> np.ndarray:
    """One subject's neutral mesh (V, 3) float32: ``surface`` scaled by about +-5 % per axis."""
    noise = rng.normal(0.0, 0.04, size=(FLAME_N_VERTICES, 3))  # one draw per vertex, as the stream expects
    scale = 1.0 + 0.05 * np.tanh(noise[0] / 0.04)
    centre = np.array([*MOUTH_CENTRE, 0.09])
    t = centre + (surface - centre) * scale
    t[FLAME_MTM_UPPER] = MTM_REST[0]
    t[FLAME_MTM_LOWER] = MTM_REST[1]
    return t.astype(np.float32)


def write_ply(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray) -> None:
    """A binary little-endian PLY triangle mesh (float32 vertices, int32 faces), written atomically."""
    v = np.ascontiguousarray(vertices, dtype="<f4")
    f = np.zeros(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    f["n"], f["idx"] = 3, faces
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(v)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n")
    with atomic_open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(v.tobytes())
        fh.write(f.tobytes())


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
    upper, lower = _lip_sets()
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
    """Write the demo VOCASET- and MEAD-layout datasets under ``root`` (idempotent: skips if complete), clips of
    ``seconds`` each (at least :data:`MIN_SECONDS`).

    A ``root`` that holds anything but an earlier demo (:data:`DEMO_MARKER`) is refused before any file is
    written: the demo's ``vocaset/`` (``templates.pkl``, ``FLAME_masks.pkl``, ``vertices_npy/`` of real
    VOCASET subject names) would overwrite or join a real dataset's files, e.g. with ``root`` = ``data``."""
    paths = DemoPaths(Path(root))
    done = paths.root / ".complete"
    stamp = f"{DEMO_VERSION} {seed} {seconds}"
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed {seed}: expected an integer >= 0")
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not MIN_SECONDS <= seconds < math.inf:
        raise InputError(f"seconds {seconds!r}: expected a clip duration of at least {MIN_SECONDS} s")
    check_out_dir(paths.root)  # a file, or a folder under one, was a FileExistsError / NotADirectoryError traceback
    if paths.root.is_dir() and any(paths.root.iterdir()) and not (
            (paths.root / DEMO_MARKER).exists() or done.exists()):
        raise InputError(f"--out {paths.root}: holds files other than an earlier demo's; the demo would write its "
                         "vocaset/ and mead/ among them, so give an empty or new folder (default data/demo)")
    if done.exists() and done.read_text().strip() == stamp:
        return paths
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / DEMO_MARKER).touch()
    done.unlink(missing_ok=True)  # rewriting: an interrupted rewrite must not pass for the earlier, complete one
    rng = np.random.default_rng(seed)
    masks = fixture_masks(seed)
    upper_face = np.unique(np.concatenate([masks[k] for k in ("eye_region", "forehead", "nose")]))

    # -- VOCASET layout: GT at 60 fps, predictions at 30 fps -----------------------------------
    voca = paths.vocaset
    surface, faces = demo_surface(upper_face)
    templates = {s: _template(rng, surface) for s in TRAIN_SUBJECTS + TEST_SUBJECTS}
    _write_pickle(voca / "templates.pkl", templates)
    _write_pickle(voca / "FLAME_masks.pkl", masks)
    write_ply(voca / "FLAME_sample.ply", surface, faces)
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
    mtemplates = {s: _template(rng, surface) for s in MEAD_IDS}
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
    done.write_text(stamp + "\n")
    return paths


def demo_commands(paths: DemoPaths, program: str = ".venv/bin/p3d", out: str = "results") -> dict[str, str]:
    """Shell commands that try p3d on the demo data at ``paths``: ``{"eval": ..., "render": ...}``.

    ``program`` is how to start p3d (:func:`p3d.cli.invocation`); outputs go under ``out``
    (``OUT/eval_demo/``, ``OUT/demo_render.mp4``). Paths are quoted for a POSIX shell.
    """
    import shlex

    v = paths.vocaset
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    stem = f"{TEST_SUBJECTS[0]}_sentence21"
    eval_cmd = (f"{program} eval --pred {q(v / 'pred')} --gt {q(v)} --audio {q(v / 'wav')} "
                f"--templates {q(v / 'templates.pkl')} --topology {q(v / 'FLAME_masks.pkl')} --gt-fps 60 "
                f"--out {q(Path(out) / 'eval_demo')} --plots")
    render_cmd = (f"{program} render --seq {q(v / 'vertices_npy' / f'{stem}.npy')} "
                  f"{q(v / 'pred' / f'{stem}_condition_{TRAIN_SUBJECTS[0]}.npy')} --labels GT,prediction "
                  f"--fps 60,30 --topology {q(v / 'FLAME_masks.pkl')} --faces {q(v / 'FLAME_sample.ply')} "
                  f"--audio {q(v / 'wav' / f'{stem}.wav')} --out {q(Path(out) / 'demo_render.mp4')}")
    return {"eval": eval_cmd, "render": render_cmd}
