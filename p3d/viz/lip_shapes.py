"""Rendered lip shapes at chosen phoneme moments: paper Fig. 3 (lip readability) and Fig. 6 (expressiveness).

**Choosing the moments.** The synthetic corpora store a phoneme label per frame (``labels/<stem>.npz``,
ids into ``meta["phonemes"]``, espeak-ng mnemonics), not word timings. :func:`pick_frames` takes a clip's
frame labels and *target groups* of phonemes (:data:`FIG3_TARGETS`: a bilabial closure /p b m/, a
labiodental /f v/, a rounded vowel) and, per group, picks the **longest run** of frames labelled with
one phoneme of the group (ties: the earliest) and its **middle frame** (the articulation target: lips
closed for /p b m/, lower lip tucked for /f v/). The word the phoneme belongs to comes from
:func:`word_timings`: the clip's sentence is re-synthesised with the parameters in its record (espeak-ng
is deterministic) and, only if the audio matches the corpus' wav sample for sample (within PCM16
rounding), its exact word intervals are used; otherwise (no espeak-ng, a real corpus, a mismatch) the
caption names the phoneme alone. :func:`pick_clip` finds a clip of a split in which every target occurs.

Fig. 6 needs one identity saying the same thing softly and loudly. The synthetic MEAD stand-in has no
sentence repeated across levels, so :func:`pick_intensity_pair` takes, for one identity, a level-1 and
a level-3 clip that share a **word** containing a target phoneme (default :data:`FIG6_TARGETS`, the open
and rounded vowels, as the paper's "go" [goU]) when word timings are available, else the **same
phoneme** (longest runs at both levels); the returned :class:`IntensityPair` says which.

**Rendering.** Off-screen pyvista through :func:`p3d.viz.render.render_frames`: one frontal camera
framed on the mouth region of the first (reference, ground-truth) sequence at the chosen frames, shared
by every row and column, so shapes are directly comparable; a dark quad behind the inner lip contour
(``cavity``) makes an open mouth look dark. A blank or empty render raises
:class:`p3d.viz.render.BlankFrameError` naming the row and frame (nothing is drawn silently black).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError

log = logging.getLogger(__name__)

#: Fig. 3 targets: caption -> espeak-ng phoneme mnemonics of the group.
FIG3_TARGETS: dict[str, tuple[str, ...]] = {
    "bilabial /p b m/": ("p", "b", "m", "m-"),
    "labiodental /f v/": ("f", "v", "v#"),
    "rounded vowel": ("u:", "U", "u", "oU", "O:", "o:", "O", "o"),
}
#: Fig. 6 targets (intensity shows in the mouth opening): open and rounded vowels, "go" [goU] included.
FIG6_TARGETS: dict[str, tuple[str, ...]] = {
    "open / rounded vowel": ("A:", "a", "aa", "aI", "aU", "V", "0", "A@", "oU", "O:", "O"),
}
#: Tolerance of the audio check in :func:`word_timings` (PCM16 rounding is 1/32768 = 3.1e-5).
AUDIO_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class FrameChoice:
    """A chosen moment: ``frame`` (model frame rate) in the run ``[start, stop)`` of ``phoneme``, picked for
    ``target``; ``word`` the word it belongs to, or None when word timings are unknown."""

    target: str
    frame: int
    phoneme: str
    run: tuple[int, int]
    word: str | None = None

    @property
    def caption(self) -> str:
        """e.g. ``'"some" [m], frame 42'`` or ``'[m], frame 42'``."""
        head = f'"{self.word}" [{self.phoneme}]' if self.word else f"[{self.phoneme}]"
        return f"{head}, frame {self.frame}"


@dataclasses.dataclass(frozen=True)
class IntensityPair:
    """Fig. 6's pair: the same word (``same_word``) or phoneme of one ``identity`` at two intensity levels."""

    identity: str
    low: Any  # p3d.corpus.Clip
    high: Any
    low_choice: FrameChoice
    high_choice: FrameChoice
    same_word: bool


# -- choosing frames ---------------------------------------------------------------------------------------
def _target_groups(targets: Mapping[str, Sequence[str]] | Sequence[str | Sequence[str]]
                   ) -> list[tuple[str, tuple[str, ...]]]:
    if isinstance(targets, Mapping):
        groups = [(str(k), tuple(v)) for k, v in targets.items()]
    else:
        groups = []
        for t in targets:
            names = (t,) if isinstance(t, str) else tuple(t)
            groups.append(("/" + " ".join(names) + "/", names))
    if not groups or any(not names for _, names in groups):
        raise InputError("targets: give at least one non-empty group of phoneme names")
    return groups


def _runs(labels: np.ndarray, ids: set[int]) -> list[tuple[int, int]]:
    """Maximal ``[start, stop)`` runs of one repeated label that is in ``ids``."""
    runs, t, n = [], 0, len(labels)
    while t < n:
        stop = t + 1
        while stop < n and labels[stop] == labels[t]:
            stop += 1
        if int(labels[t]) in ids:
            runs.append((t, stop))
        t = stop
    return runs


def _check_labels(labels: Any, phoneme_names: Sequence[str]) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size == 0 or not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels: expected (T,) integer phoneme ids, got shape {lab.shape}, dtype {lab.dtype}")
    if lab.min() < 0 or lab.max() >= len(phoneme_names):
        raise InputError(f"labels: ids must be in [0, {len(phoneme_names)}) (the phoneme inventory), "
                         f"got {lab.min()}..{lab.max()}")
    return lab.astype(np.int64)


def _group_ids(label: str, names: Sequence[str], phoneme_names: Sequence[str]) -> set[int]:
    index = {p: i for i, p in enumerate(phoneme_names)}
    ids = {index[p] for p in names if p in index}
    if not ids:
        raise InputError(f"targets[{label!r}]: none of {list(names)} is in the phoneme inventory")
    return ids


def word_at(words: Sequence[tuple[str, float, float]] | None, seconds: float) -> str | None:
    """The word whose ``[start, end)`` interval (s) holds ``seconds``, or None."""
    for word, start, end in words or ():
        if start <= seconds < end:
            return word
    return None


def pick_frames(labels: Any, phoneme_names: Sequence[str],
                targets: Mapping[str, Sequence[str]] | Sequence[str | Sequence[str]] = FIG3_TARGETS, *,
                words: Sequence[tuple[str, float, float]] | None = None, fps: float | None = None
                ) -> list[FrameChoice]:
    """One frame per target group: the middle of the longest run of one of its phonemes (ties: earliest).

    Args:
        labels: (T,) int phoneme ids per frame at the model frame rate (``corpus.labels(clip)["phoneme"]``).
        phoneme_names: the inventory (``corpus.meta["phonemes"]``).
        targets: ``{caption: phoneme names}`` or a list of names / name groups (:data:`FIG3_TARGETS`).
        words: ``(word, start_s, end_s)`` intervals (:func:`word_timings`) to name the word; needs ``fps``.
        fps: the labels' frame rate (frame ``k`` is at ``(k + 0.5) / fps`` s).

    Raises:
        InputError: bad labels, a group none of whose phonemes is in the inventory, or a target that does
            not occur in the clip.
    """
    lab = _check_labels(labels, phoneme_names)
    if words is not None and not (fps and fps > 0):
        raise InputError("fps: needed (> 0) to place frames in the word timings")
    out = []
    for label, names in _target_groups(targets):
        runs = _runs(lab, _group_ids(label, names, phoneme_names))
        if not runs:
            raise InputError(f"targets[{label!r}]: none of {list(names)} occurs in this clip")
        start, stop = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
        frame = (start + stop - 1) // 2
        word = word_at(words, (frame + 0.5) / fps) if words is not None and fps else None
        out.append(FrameChoice(label, frame, phoneme_names[lab[frame]], (start, stop), word))
    return out


def clip_record(corpus: Any, clip: Any) -> dict[str, Any] | None:
    """The synthetic clip's generation record (``labels/<stem>.npz`` ``record``), or None."""
    path = corpus.root / "labels" / f"{clip.stem}.npz"
    if not path.exists():
        return None
    from p3d.io import load_npz

    data = load_npz(path, "frame-label .npz", {"record"})
    if "record" not in data:
        return None
    record = str(data["record"])
    try:
        return json.loads(record)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: corrupt clip record ({exc})") from None


def word_timings(corpus: Any, clip: Any) -> list[tuple[str, float, float]] | None:
    """Exact ``(word, start_s, end_s)`` of a synthetic clip, or None where they cannot be recovered.

    The sentence is re-synthesised from the record (:func:`p3d.synth.corpus.resynthesize`); the timings are used
    only if the audio equals the corpus' wav (same length, max difference <= :data:`AUDIO_TOLERANCE`).
    """
    from p3d.synth.corpus import resynthesize
    from p3d.synth.speech import EspeakNotFoundError

    rec = clip_record(corpus, clip)
    if not rec or not rec.get("sentence"):
        return None
    sr = int(corpus.meta.get("sample_rate", 16000))
    try:
        utt = resynthesize(rec, sr)  # espeak-ng plus the clip's vocal-effort filter
    except (EspeakNotFoundError, InputError, KeyError, OSError) as exc:
        log.warning("%s: no word timings (%s); captions name the phoneme only", clip.stem, exc)
        return None
    audio, _ = corpus.audio(clip)
    if len(audio) != len(utt.audio) or float(np.abs(audio - utt.audio).max()) > AUDIO_TOLERANCE:
        log.warning("%s: re-synthesised audio differs from the corpus wav; captions name the phoneme only",
                    clip.stem)
        return None
    return [(str(w), float(a), float(b)) for w, a, b in utt.words]


def pick_clip(corpus: Any, split: str = "test",
              targets: Mapping[str, Sequence[str]] | Sequence[str | Sequence[str]] = FIG3_TARGETS, *,
              identity: str | None = None, level: int | None = None) -> Any:
    """The clip of ``split`` (optionally of one ``identity`` / ``level``) in which every target occurs with
    the longest shortest run (ties: the first stem); :class:`InputError` if no clip has them all."""
    names = corpus.meta.get("phonemes")
    if not names:
        raise InputError(f"{corpus.root}: meta.json has no phoneme inventory (frame labels are needed)")
    groups = _target_groups(targets)
    ids = [_group_ids(label, g, names) for label, g in groups]
    best, best_score = None, 0
    for clip in sorted(corpus.select(split), key=lambda c: c.stem):
        if (identity is not None and clip.identity != identity) or (level is not None and clip.level != level):
            continue
        lab = _check_labels(corpus.labels(clip)["phoneme"], names)
        score = min(max((b - a for a, b in _runs(lab, g)), default=0) for g in ids)
        if score > best_score:
            best, best_score = clip, score
    if best is None:
        raise InputError(f"{corpus.root}: no {split} clip contains every target ({', '.join(l for l, _ in groups)})")
    return best


def _tokens(sentence: str | None) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", (sentence or "").lower()) if len(w) > 1}


def pick_intensity_pair(corpus: Any, identity: str | None = None, *, split: str = "test",
                        levels: tuple[int, int] = (1, 3),
                        targets: Mapping[str, Sequence[str]] | Sequence[str | Sequence[str]] = FIG6_TARGETS,
                        use_words: bool = True) -> IntensityPair:
    """A low- and a high-intensity clip of one identity and the frame to compare in each (module docstring).

    Same word (preferred; longest words first, then the longest shortest run of a target phoneme inside
    the word) when word timings can be recovered (``use_words``), else the same target phoneme with the
    longest shortest run over the identity's clips at the two levels.
    """
    names = corpus.meta.get("phonemes")
    if not names:
        raise InputError(f"{corpus.root}: meta.json has no phoneme inventory (frame labels are needed)")
    lo_level, hi_level = levels
    clips = corpus.select(split)
    ids_with = sorted({c.identity for c in clips if c.level == lo_level} & {c.identity for c in clips
                                                                             if c.level == hi_level})
    if identity is None:
        if not ids_with:
            raise InputError(f"{corpus.root}: no {split} identity has clips at levels {lo_level} and {hi_level}")
        identity = ids_with[0]
    elif identity not in ids_with:
        raise InputError(f"identity {identity!r}: no {split} clips at both levels {lo_level} and {hi_level}")
    lows = sorted((c for c in clips if c.identity == identity and c.level == lo_level), key=lambda c: c.stem)
    highs = sorted((c for c in clips if c.identity == identity and c.level == hi_level), key=lambda c: c.stem)
    (label, group), *_ = _target_groups(targets)
    target_ids = _group_ids(label, group, names)
    labels = {c.stem: _check_labels(corpus.labels(c)["phoneme"], names) for c in lows + highs}
    fps = corpus.model_fps

    if use_words:
        shared = [(w, lo, hi) for lo in lows for hi in highs
                  for w in sorted(_tokens(lo.sentence) & _tokens(hi.sentence))]
        timings: dict[str, Any] = {}
        best = None
        for word, lo, hi in shared:
            choices = []
            for clip in (lo, hi):
                if clip.stem not in timings:
                    timings[clip.stem] = word_timings(corpus, clip)
                choice = _word_choice(labels[clip.stem], names, target_ids, label, timings[clip.stem], word, fps)
                choices.append(choice)
            if None in choices:
                continue
            runs = min(c.run[1] - c.run[0] for c in choices)
            key = (len(word), runs)
            if best is None or key > best[0]:
                best = (key, lo, hi, choices)
        if best is not None:
            _, lo, hi, (c_lo, c_hi) = best
            return IntensityPair(identity, lo, hi, c_lo, c_hi, True)

    best = None
    for pid in sorted(target_ids):
        lo_best = max(((b - a, -a, c) for c in lows for a, b in _runs(labels[c.stem], {pid})),
                      key=lambda r: r[:2], default=None)
        hi_best = max(((b - a, -a, c) for c in highs for a, b in _runs(labels[c.stem], {pid})),
                      key=lambda r: r[:2], default=None)
        if lo_best is None or hi_best is None:
            continue
        score = min(lo_best[0], hi_best[0])
        if best is None or score > best[0]:
            best = (score, lo_best[2], hi_best[2], pid)
    if best is None:
        raise InputError(f"identity {identity!r}: no phoneme of {list(group)} occurs at both levels "
                         f"{lo_level} and {hi_level}")
    _, lo, hi, pid = best
    c_lo, c_hi = (pick_frames(labels[c.stem], names, {label: (names[pid],)}, fps=fps)[0] for c in (lo, hi))
    return IntensityPair(identity, lo, hi, c_lo, c_hi, False)


def _word_choice(lab: np.ndarray, names: Sequence[str], target_ids: set[int], label: str,
                 words: Sequence[tuple[str, float, float]] | None, word: str, fps: float) -> FrameChoice | None:
    """The longest target-phoneme run inside the first occurrence of ``word``, as a :class:`FrameChoice`."""
    if not words:
        return None
    span = next(((a, b) for w, a, b in words if w.lower().strip("'") == word.strip("'")), None)
    if span is None:
        return None
    centres = (np.arange(len(lab)) + 0.5) / fps
    inside = np.flatnonzero((centres >= span[0]) & (centres < span[1]))
    if inside.size == 0:
        return None
    masked = np.full_like(lab, -1)
    masked[inside] = lab[inside]
    runs = _runs(masked, target_ids)
    if not runs:
        return None
    start, stop = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
    frame = (start + stop - 1) // 2
    return FrameChoice(label, frame, names[lab[frame]], (start, stop), word_at(words, (frame + 0.5) / fps))


def common_condition(pred_dirs: Mapping[str, Any], stem: str) -> str:
    """The first training identity (sorted) under which every ``p3d predict`` folder (``{label: DIR}``) predicted
    clip ``stem`` (``DIR/<stem>_condition_<identity>.npy``): the one speaking-style condition all rows of a figure
    share. Refuses a folder without a prediction of the clip, or folders that share no condition."""
    from pathlib import Path

    common: set[str] | None = None
    for label, d in pred_dirs.items():
        d = Path(d)
        found = {f.name[len(stem) + len("_condition_"):-len(".npy")] for f in d.glob(f"{stem}_condition_*.npy")}
        if not found:
            raise InputError(f"{label}: no prediction {d}/{stem}_condition_*.npy (run p3d predict)")
        common = found if common is None else common & found
    if not common:
        raise InputError(f"{stem}: the prediction folders share no condition identity")
    return sorted(common)[0]


def prediction_sequences(pred_dirs: Mapping[str, Any], stem: str, condition: str | None = None,
                         n_vertices: int | None = None) -> dict[str, np.ndarray]:
    """``{label: (T, V, 3)}`` predictions of clip ``stem`` from ``p3d predict`` folders (``{label: DIR}``).

    Reads ``DIR/<stem>_condition_<condition>.npy``; with ``condition=None`` the first training identity
    (sorted) that every folder has, so all rows share one speaking-style condition.
    """
    from pathlib import Path

    from p3d.io import load_vertices

    dirs = {str(k): Path(v) for k, v in pred_dirs.items()}
    if condition is None:
        condition = common_condition(dirs, stem)
    out = {}
    for label, d in dirs.items():
        path = d / f"{stem}_condition_{condition}.npy"
        if not path.exists():
            raise InputError(f"{label}: {path} not found (run p3d predict)")
        out[label] = load_vertices(path, n_vertices=n_vertices)
    return out


# -- rendering ---------------------------------------------------------------------------------------------
def mouth_regions(topology: Any) -> dict[str, Any]:
    """``{"mouth": lip vertices (crop), "cavity": inner-lip vertices (dark backdrop) or None,
    "lip_pair": (upper, lower) vertices of the opening trace}`` for a topology.

    The synthetic face: its ``lips`` region, the inner lip contours and the inner lip centres (13, 14);
    others (FLAME): ``lips``, no backdrop, and the MTM vertices (outer lip midline); :class:`InputError` when
    such a topology defines none (e.g. BIWI).
    """
    regions = getattr(topology, "regions", {}) or {}
    lips = regions.get("lips")
    if lips is None or len(lips) < 2:
        raise InputError(f"topology {getattr(topology, 'name', topology)!r}: no 'lips' region to frame the mouth")
    name = str(getattr(topology, "name", ""))
    if name.startswith("synth-face"):
        from p3d.synth.face import inner_lip_contours

        variant = name.removeprefix("synth-face-") or "base"
        up, lo = inner_lip_contours(variant)
        pair = tuple(int(i) for i in regions.get("inner_lip_centres", (13, 14)))
        return {"mouth": np.asarray(lips), "cavity": np.union1d(up, lo), "lip_pair": pair}
    upper, lower = getattr(topology, "mtm_upper", None), getattr(topology, "mtm_lower", None)
    if upper is None or lower is None:
        raise InputError(f"topology {name or topology!r} defines no MTM lip vertices (mtm_upper/mtm_lower) to "
                         "measure the lip opening")
    return {"mouth": np.asarray(lips), "cavity": None, "lip_pair": (int(upper), int(lower))}


def _check_lip_pair(lip_pair: Any, n_vertices: int) -> tuple[int, int]:
    pair = np.asarray(lip_pair)
    if pair.shape != (2,) or pair.dtype.kind not in "iu" or pair.min() < 0 or pair.max() >= n_vertices:
        raise InputError(f"lip_pair: expected two vertex indices in [0, {n_vertices}), got {lip_pair!r}")
    return int(pair[0]), int(pair[1])


def lip_opening(vertices: Any, lip_pair: tuple[int, int], scale: float = 1000.0) -> np.ndarray:
    """(T,) distance between the two ``lip_pair`` vertices of (T, V, 3) ``vertices``, times ``scale``
    (metres -> mm by default)."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 3 or v.shape[-1] != 3:
        raise InputError(f"vertices: expected (T, V, 3), got shape {v.shape}")
    lip_pair = _check_lip_pair(lip_pair, v.shape[1])
    return np.linalg.norm(v[:, lip_pair[0]] - v[:, lip_pair[1]], axis=-1) * scale


def mouth_camera(points: Any, size: int, pad: float = 0.35) -> Any:
    """A frontal :class:`~p3d.viz.render.Camera` framing the (N, 3) mouth ``points`` with ``pad`` times their
    largest extent on every side (a square crop)."""
    from p3d.viz.render import frontal_camera

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    extent = float(np.ptp(pts[:, :2], axis=0).max())
    if not np.isfinite(extent) or extent <= 0:
        raise InputError("mouth: the mouth vertices span no area; check the region indices")
    box = np.stack([pts.min(axis=0) - pad * extent, pts.max(axis=0) + pad * extent])
    return frontal_camera(box, (size, size), margin=1.0)


def _sequences(sequences: Mapping[str, Any], faces: Any, frames: Sequence[int]) -> dict[str, np.ndarray]:
    if not sequences:
        raise InputError("sequences: give at least one {label: (T, V, 3) vertices}")
    out = {}
    n_vertices = None
    for label, seq in sequences.items():
        arr = np.asarray(seq, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] % 3 == 0:
            arr = arr.reshape(arr.shape[0], -1, 3)
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise InputError(f"sequences[{label!r}]: expected (T, V, 3) vertices, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise InputError(f"sequences[{label!r}]: holds NaN or inf")
        if n_vertices is not None and arr.shape[1] != n_vertices:
            raise InputError(f"sequences[{label!r}]: {arr.shape[1]} vertices, the first sequence has {n_vertices}")
        n_vertices = arr.shape[1]
        bad = [f for f in frames if not 0 <= f < arr.shape[0]]
        if bad:
            raise InputError(f"sequences[{label!r}]: frames {bad} outside its {arr.shape[0]} frames")
        out[str(label)] = arr
    f = None if faces is None else np.asarray(faces)
    if f is None or f.ndim != 2 or f.shape[1:] != (3,) or not f.size:  # a FLAME topology has no faces (None)
        raise InputError(f"faces: expected (F, 3) triangles, got {None if f is None else f.shape} (a FLAME topology "
                         "has none: give the template mesh's, e.g. FLAME_sample.ply via p3d.io.load_ply)")
    if int(np.max(f)) >= n_vertices:
        raise InputError(f"faces: index vertex {int(np.max(f))}, the sequences have {n_vertices} vertices")
    return out


def _frames_and_captions(frames: Sequence[int | FrameChoice], captions: Sequence[str] | None
                         ) -> tuple[list[int], list[str]]:
    if not len(frames):
        raise InputError("frames: give at least one frame")
    idx = [f.frame if isinstance(f, FrameChoice) else int(f) for f in frames]
    if captions is None:
        captions = [f.caption if isinstance(f, FrameChoice) else f"frame {f}" for f in frames]
    if len(captions) != len(idx):
        raise InputError(f"captions: {len(captions)} captions for {len(idx)} frames")
    return idx, list(captions)


def _render(label: str, vertices: np.ndarray, frames: Sequence[int], faces: Any, camera: Any, size: int,
            cavity: Any) -> np.ndarray:
    from p3d.viz.render import BlankFrameError, render_frames

    try:
        return render_frames(vertices[list(frames)], faces, size=(size, size), camera=camera, mouth_vertices=cavity,
                             min_coverage=0.05)
    except BlankFrameError as exc:
        raise BlankFrameError(f"{label}: rendering frames {list(frames)} gave an empty image ({exc}); "
                              f"check the mouth region, the camera and the off-screen OpenGL set-up") from None


def _image_axis(ax: Any, img: np.ndarray) -> None:
    ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def lip_shape_grid(sequences: Mapping[str, Any], frames: Sequence[int | FrameChoice], faces: Any, mouth: Any,
                   captions: Sequence[str] | None = None, *, cavity: Any = None,
                   lip_pair: tuple[int, int] | None = None, size: int = 192, pad: float = 0.35,
                   camera: Any = None, title: str | None = None, unit: str = "mm", scale: float = 1000.0) -> Any:
    """Fig. 3: mouth crops, rows = ``sequences`` (GT first, then each model without / with the loss),
    columns = ``frames`` (e.g. :func:`pick_frames` choices).

    Args:
        sequences: ``{row label: (T, V, 3) vertices}``, all of one clip (same frames); the first is the
            reference the camera is framed on.
        frames: frame indices or :class:`FrameChoice` objects (their captions head the columns).
        faces: (F, 3) triangles. ``mouth``: vertex indices of the lips (the crop). ``cavity``: inner-lip
            vertices for the dark backdrop (:func:`mouth_regions`).
        lip_pair: (upper, lower) vertices; each crop is labelled with their distance (``unit``, ``scale``).
        size: pixels per crop. ``pad``: margin around the mouth, in mouth extents. ``camera``: override.

    Returns:
        A matplotlib Figure. Raises :class:`~p3d.viz.render.BlankFrameError` on an empty render.
    """
    from matplotlib.figure import Figure

    idx, caps = _frames_and_captions(frames, captions)
    seqs = _sequences(sequences, faces, idx)
    mouth = np.asarray(mouth, dtype=np.int64)
    ref = next(iter(seqs.values()))
    if mouth.size < 2 or mouth.min() < 0 or mouth.max() >= ref.shape[1]:
        raise InputError(f"mouth: expected >= 2 vertex indices in [0, {ref.shape[1]})")
    if lip_pair is not None:
        lip_pair = _check_lip_pair(lip_pair, ref.shape[1])
    cam = camera if camera is not None else mouth_camera(ref[idx][:, mouth], size, pad)
    rows = list(seqs)
    fig = Figure(figsize=(1.9 * len(idx) + 0.6, 1.9 * len(rows) + 0.5), constrained_layout=True)
    axes = np.asarray(fig.subplots(len(rows), len(idx), squeeze=False))
    for r, label in enumerate(rows):
        images = _render(label, seqs[label], idx, faces, cam, size, cavity)
        opening = lip_opening(seqs[label][idx], lip_pair, scale) if lip_pair is not None else None
        for c, img in enumerate(images):
            ax = axes[r, c]
            _image_axis(ax, img)
            if r == 0:
                ax.set_title(caps[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if opening is not None:
                ax.set_xlabel(f"opening {opening[c]:.1f} {unit}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def intensity_comparison(low: Mapping[str, Any], high: Mapping[str, Any], low_frame: int | FrameChoice,
                         high_frame: int | FrameChoice, faces: Any, mouth: Any, *, cavity: Any = None,
                         lip_pair: tuple[int, int] | None = None, fps: float = 30.0, trace_s: float = 0.5,
                         level_labels: tuple[str, str] = ("low (level 1)", "high (level 3)"), size: int = 192,
                         pad: float = 0.35, camera: Any = None, title: str | None = None, unit: str = "mm",
                         scale: float = 1000.0) -> Any:
    """Fig. 6: the same word / phoneme at low vs high intensity, columns = GT and the training settings.

    Args:
        low, high: ``{column label: (T, V, 3) vertices}`` of the low- and the high-intensity clip, the same
            labels in the same order (e.g. ``GT``, ``VOCASET only``, ``+ MEAD``, ``+ MEAD + ours``); the
            first column is the reference the shared camera is framed on (both clips: one identity).
        low_frame, high_frame: the compared frame of each clip (:func:`pick_intensity_pair`).
        lip_pair: (upper, lower) vertices: adds a row of small plots under the renders, one per column,
            with the lip opening (``unit``) of the low (dashed) and high (solid) clip over ``+-trace_s``
            seconds around the compared frame (time 0), on one y-scale.
        fps: the sequences' frame rate (trace time axis).

    Returns:
        A matplotlib Figure. Raises :class:`~p3d.viz.render.BlankFrameError` on an empty render.
    """
    from matplotlib.figure import Figure

    if list(low) != list(high):
        raise InputError(f"low / high: the same column labels are needed, got {list(low)} and {list(high)}")
    if not (fps > 0 and trace_s > 0):
        raise InputError(f"fps / trace_s: expected positive values, got {fps}, {trace_s}")
    (f_lo,), (cap_lo,) = _frames_and_captions([low_frame], None)
    (f_hi,), (cap_hi,) = _frames_and_captions([high_frame], None)
    lows, highs = _sequences(low, faces, [f_lo]), _sequences(high, faces, [f_hi])
    cols = list(lows)
    mouth = np.asarray(mouth, dtype=np.int64)
    ref_lo, ref_hi = lows[cols[0]], highs[cols[0]]
    if mouth.size < 2 or mouth.min() < 0 or mouth.max() >= ref_lo.shape[1]:
        raise InputError(f"mouth: expected >= 2 vertex indices in [0, {ref_lo.shape[1]})")
    if lip_pair is not None:
        lip_pair = _check_lip_pair(lip_pair, ref_lo.shape[1])
    cam = camera if camera is not None else mouth_camera(
        np.concatenate([ref_lo[f_lo, mouth], ref_hi[f_hi, mouth]]), size, pad)
    n_rows = 3 if lip_pair is not None else 2
    fig = Figure(figsize=(2.0 * len(cols) + 0.6, 2.0 * 2 + (1.5 if lip_pair is not None else 0) + 0.5),
                 constrained_layout=True)
    grid = fig.add_gridspec(n_rows, len(cols), height_ratios=[1, 1, 0.8][:n_rows])
    for c, label in enumerate(cols):
        for r, (seqs, frame, cap, level) in enumerate(((lows, f_lo, cap_lo, level_labels[0]),
                                                       (highs, f_hi, cap_hi, level_labels[1]))):
            img = _render(f"{label} ({level})", seqs[label], [frame], faces, cam, size, cavity)[0]
            ax = fig.add_subplot(grid[r, c])
            _image_axis(ax, img)
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{level}\n{cap}", fontsize=7)
    if lip_pair is not None:
        half = int(round(trace_s * fps))
        traces = []
        for label in cols:
            pair = []
            for seqs, frame in ((lows, f_lo), (highs, f_hi)):
                seq = seqs[label]
                a, b = max(0, frame - half), min(seq.shape[0], frame + half + 1)
                pair.append(((np.arange(a, b) - frame) / fps, lip_opening(seq[a:b], lip_pair, scale)))
            traces.append(pair)
        values = np.concatenate([y for pair in traces for _, y in pair])
        lo_y, hi_y = float(values.min()), float(values.max())
        margin = 0.05 * (hi_y - lo_y) + 1e-9
        for c, (label, pair) in enumerate(zip(cols, traces)):
            ax = fig.add_subplot(grid[2, c])
            for (t, y), style, level in zip(pair, ("--", "-"), level_labels):
                ax.plot(t, y, style, color="C3" if style == "-" else "C0", lw=1.2, label=level)
            ax.axvline(0.0, color="0.5", lw=0.8)
            ax.set_ylim(lo_y - margin, hi_y + margin)
            ax.tick_params(labelsize=6)
            ax.set_xlabel("time from the frame (s)", fontsize=6)
            if c == 0:
                ax.set_ylabel(f"lip opening ({unit})", fontsize=7)
                ax.legend(fontsize=5, loc="upper left", frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
