"""Convert the raw VOCASET release into the processed layout the baselines and p3d read.

Input: the four files of the VOCASET "Training Data" download (voca.is.tue.mpg.de, registration
required), as they are, in one folder ``RAW``:

- ``data_verts.npy``: every registered frame of every sequence, (N, 5023, 3), FLAME topology, 60 fps,
  read memory-mapped (``np.load(mmap_mode='r')``, no pickles); only one sequence is ever in memory;
- ``raw_audio_fixed.pkl``: a Python 2 pickle ``{subject: {sequence: {'audio': array, 'sample_rate':
  int}}}``. A third-party description of the file gives 1-D int16 audio at 22000 Hz; nothing here
  assumes it: the stored samples are written at the stored rate, in a WAV subtype of the stored
  dtype (int16 -> PCM_16, int32 -> PCM_32, float32 -> FLOAT, float64 -> DOUBLE, uint8 -> PCM_U8: 8-bit WAV
  is unsigned, so the bytes are kept and readers scale them as ``(x - 128) / 128``, as scipy and soundfile do);
  float samples are on [-1, 1]: a peak beyond :data:`p3d.io.FLOAT_PEAK_LIMIT` (integer PCM cast to float
  unscaled) is refused (:func:`p3d.io.check_float_peak`), as every reader refuses such a wav;
- ``subj_seq_to_idx.pkl``: ``{subject: {sequence: {frame: global index into data_verts}}}``;
- ``templates.pkl``: ``{subject: (5023, 3) neutral mesh}`` (a Python 2 pickle).

The pickles are read by :func:`p3d.io.load_pickle`: the restricted unpickler (numpy arrays and plain
builtins only, never code) with ``encoding='latin1'``, which Python 2 pickles of numpy arrays need.

Output (what ``vocaset/process_voca_data.py`` of FaceFormer / CodeTalker / SelfTalk writes, plus a
template copy and a split manifest)::

    OUT/vertices_npy/<subject>_<sequence>.npy   (T, 15069), T frames at 60 fps, dtype of data_verts.npy
    OUT/wav/<subject>_<sequence>.wav            the stored samples at the stored rate
    OUT/templates.pkl                           {subject: (5023, 3) array} (protocol-2 pickle of arrays)
                                                (OUT = RAW: the release's own file, kept as it is)
    OUT/splits.json                             the official train/val/test subjects and sentences

``<sequence>`` is the key of the raw files unchanged (VOCASET's are ``sentence01`` ... ``sentence40``),
so the names are those of the official script, e.g. ``FaceTalk_170725_00137_TA_sentence01.npy``.

Frame order: the official script takes frames in the iteration order of the index dict; VOCA's own
data handler walks ``frame = 0, 1, ..., max`` (``utils/data_handler.py``). Here the frame keys are
sorted numerically, which is the time order and equals the dict order of the released pickle
(Python 2 iterates a dict of small consecutive int keys in ascending order); a dict stored in any
other order therefore still gives frames in time order. Gaps in the frame keys are kept as they are
(frames are concatenated, as the official script does) and reported with a warning, as are sequences whose audio
and meshes (at 60 fps) differ in duration beyond ``p3d eval``'s rule (a factor apart, or by more than
``max(2 frames, 10 %)``; :func:`p3d.evaluate.config.length_mismatch`), which are converted all the same.

Pairing: like the official script, every sequence of the index gets a vertex file and every sequence
of the audio pickle a wav file; a sequence present in only one of the two is written and named in a
warning (the baselines' loaders drop clips without both). A *subject* of the index with no audio at
all is an error (the audio file is likely the wrong one).

Every input is checked before anything is written: a missing or corrupt file, a pickle holding
anything but arrays and builtins, a subject without audio or template, an index out of the range of
``data_verts.npy``, bad audio or templates each raise one :class:`p3d.errors.InputError` line.

Resuming: each file is written atomically (:mod:`p3d.atomic`), so a file under its final name is
complete. ``raw_release.json`` records the raw release the folder's files come from
(:func:`raw_release_fingerprint`: the four files' sizes, the index's and templates' SHA-256, the modification
times of data_verts.npy and raw_audio_fixed.pkl); a folder of
another release, or holding files without that record, is refused unless ``overwrite=True``, which rewrites
every file of the subjects converted (and is refused if files of other subjects would stay behind). Within
the same release a rerun keeps an existing vertex file whose header has the expected shape and dtype, and an
existing wav whose rate, length, channel count and subtype match; anything else is rewritten
(``overwrite=True`` rewrites everything). ``templates.pkl`` is always rewritten, with the converted subjects'
templates and those of subjects converted into the same folder earlier (``--subjects``) whose vertex files are
still there, except in the raw folder itself (``OUT`` = ``RAW``, where the baselines keep ``vertices_npy/`` and
``wav/`` beside the raw files): there ``templates.pkl`` is the release's own, holding every subject, and is never
written. ``splits.json`` is written last (with the clips of those earlier subjects still there), so its
presence marks a finished conversion.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.io import check_float_peak
from p3d.progress import show_progress

log = logging.getLogger(__name__)

VERTS_FILE = "data_verts.npy"
AUDIO_FILE = "raw_audio_fixed.pkl"
INDEX_FILE = "subj_seq_to_idx.pkl"
TEMPLATES_FILE = "templates.pkl"
RAW_FILES: tuple[str, ...] = (VERTS_FILE, AUDIO_FILE, INDEX_FILE, TEMPLATES_FILE)
#: In a converted folder: the raw release its files come from (:func:`raw_release_fingerprint`).
RELEASE_RECORD = "raw_release.json"
#: Capture rate of the VOCASET meshes (the baselines subsample ``[::2]`` to 30 fps when loading).
VOCASET_FPS = 60
#: WAV subtype for each stored audio dtype, each written sample-exactly (uint8 through :func:`_writable`).
WAV_SUBTYPES: dict[str, str] = {"int16": "PCM_16", "int32": "PCM_32", "float32": "FLOAT", "float64": "DOUBLE",
                                "uint8": "PCM_U8"}
#: The most channels libsndfile writes to a WAV file.
MAX_WAV_CHANNELS = 1024
_SENTENCE = re.compile(r"sentence(\d+)$")


@dataclasses.dataclass(frozen=True)
class RawSequence:
    """One (subject, sequence) of the raw release.

    ``frame_indices``: global indices into ``data_verts.npy`` in frame order (None: no meshes);
    ``audio``: the stored samples (None: no audio); ``sample_rate``: their rate in Hz.
    """

    subject: str
    sequence: str
    frame_indices: np.ndarray | None
    audio: np.ndarray | None
    sample_rate: int | None

    @property
    def stem(self) -> str:
        return f"{self.subject}_{self.sequence}"


@dataclasses.dataclass
class RawVocaset:
    """The raw release, validated: vertices memory-mapped, audio and indices in memory."""

    root: Path
    verts: np.ndarray  # np.memmap (N, V, 3)
    sequences: list[RawSequence]
    templates: dict[str, np.ndarray]

    @property
    def n_vertices(self) -> int:
        return int(self.verts.shape[1])


@dataclasses.dataclass
class ConversionSummary:
    """What :func:`convert_raw_vocaset` did; ``kept`` lists files left from an earlier run."""

    out_dir: Path
    written: list[Path]
    kept: list[Path]
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading and validating the raw files
# ---------------------------------------------------------------------------------------------
def read_raw_vocaset(raw_dir: str | os.PathLike[str], *, subjects: str | Iterable[str] | None = None) -> RawVocaset:
    """Open and validate the raw release in ``raw_dir`` (see module docstring); writes nothing.

    ``subjects``: convert only these (default: every subject of the index and of the audio pickle); one name
    (``"FaceTalk_170725_00137_TA"``) is that subject alone.
    """
    from p3d.io import load_pickle, load_templates

    root = Path(raw_dir)
    if not root.is_dir():
        raise InputError(f"{root}: raw VOCASET folder not found (it should hold {', '.join(RAW_FILES)})")
    missing = [name for name in RAW_FILES if not (root / name).is_file()]
    if missing:
        raise InputError(f"{root}: missing {', '.join(missing)} (the VOCASET 'Training Data' download holds "
                         f"{', '.join(RAW_FILES)})")

    verts = _open_verts(root / VERTS_FILE)
    n_frames, n_vertices = int(verts.shape[0]), int(verts.shape[1])
    index = _check_index(load_pickle(root / INDEX_FILE), root / INDEX_FILE, n_frames)
    audio = _check_audio_dict(load_pickle(root / AUDIO_FILE), root / AUDIO_FILE)
    templates = load_templates(root / TEMPLATES_FILE, n_vertices=n_vertices)

    everyone = sorted(set(index) | set(audio))
    if subjects is None:
        chosen = everyone
    else:
        # one name is one subject (iterated, a string was its characters: "--subjects: F, a, c, e, ...")
        chosen = list(dict.fromkeys(str(s) for s in ([subjects] if isinstance(subjects, str) else subjects)))
        unknown = [s for s in chosen if s not in everyone]
        if unknown:
            raise InputError(f"--subjects: {', '.join(unknown)} not in {root / INDEX_FILE} "
                             f"(subjects: {', '.join(everyone)})")
    for subject in chosen:
        if subject in index and subject not in audio:
            raise InputError(f"{root / AUDIO_FILE}: no audio for subject {subject!r} of {INDEX_FILE} "
                             f"(audio subjects: {', '.join(sorted(audio)) or 'none'}); is it the file of this release?")
        if subject in index and subject not in templates:
            raise InputError(f"{root / TEMPLATES_FILE}: no template for subject {subject!r} of {INDEX_FILE}")

    sequences: list[RawSequence] = []
    for subject in chosen:
        seq_index, seq_audio = index.get(subject, {}), audio.get(subject, {})
        for seq in sorted(set(seq_index) | set(seq_audio)):
            entry = seq_audio.get(seq)
            sequences.append(RawSequence(
                subject, seq, seq_index.get(seq),
                None if entry is None else entry[0], None if entry is None else entry[1]))
    if not sequences:
        raise InputError(f"{root}: no sequences to convert")
    only_verts = [s.stem for s in sequences if s.audio is None]
    only_audio = [s.stem for s in sequences if s.frame_indices is None]
    if only_verts:
        log.warning("%d sequence(s) have meshes but no audio (vertex files only): %s", len(only_verts),
                    _shorten(only_verts))
    if only_audio:
        log.warning("%d sequence(s) have audio but no meshes (wav files only): %s", len(only_audio),
                    _shorten(only_audio))
    _warn_durations(sequences)
    kept_templates = {s: t for s, t in templates.items() if subjects is None or s in chosen}
    return RawVocaset(root, verts, sequences, kept_templates)


def _warn_durations(sequences: Iterable[RawSequence]) -> None:
    """Warn about sequences whose audio and meshes are not one recording: durations at :data:`VOCASET_FPS` a factor
    apart or differing by more than ``max(2 frames, 10 %)`` (:func:`p3d.evaluate.config.length_mismatch`, the rule by
    which ``p3d eval`` and the talkers' loader later refuse the clip). They are converted all the same, as the
    official script does, but named here, where the audio pickle or the index is the cause."""
    from p3d.evaluate.config import length_mismatch

    bad = []
    for s in sequences:
        if s.frame_indices is None or s.audio is None or not s.sample_rate:
            continue
        seconds = s.audio.shape[0] / s.sample_rate
        why = length_mismatch(int(round(seconds * VOCASET_FPS)), len(s.frame_indices))
        if why is not None:
            bad.append(f"{s.stem} ({len(s.frame_indices)} frames at {VOCASET_FPS} fps, {seconds:.3f} s of audio: {why})")
    if bad:
        log.warning("%d sequence(s) have audio and meshes of different durations (p3d eval and training refuse "
                    "them): %s", len(bad), _shorten(bad))


def _open_verts(path: Path) -> np.ndarray:
    try:
        verts = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: corrupt or not a plain .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(verts, np.ndarray):
        raise InputError(f"{path}: expected a single .npy array")
    if verts.ndim != 3 or verts.shape[2] != 3 or verts.dtype.kind != "f":
        raise InputError(f"{path}: expected float vertices of shape (frames, V, 3), found {verts.dtype} {verts.shape}")
    if verts.shape[0] == 0:
        raise InputError(f"{path}: holds no frames")
    return verts


def _check_index(data: Any, path: Path, n_frames: int) -> dict[str, dict[str, np.ndarray]]:
    """``{subject: {sequence: global indices in numerical frame order}}``, validated against ``n_frames``."""
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{path}: expected a non-empty dict subject -> sequence -> frame -> index")
    out: dict[str, dict[str, np.ndarray]] = {}
    gaps: list[str] = []
    for subject, seqs in data.items():
        if not isinstance(seqs, Mapping):
            raise InputError(f"{path}[{subject!r}]: expected a dict sequence -> frame -> index")
        out[str(subject)] = {}
        for seq, frames in seqs.items():
            where = f"{path}[{subject!r}][{seq!r}]"
            if not isinstance(frames, Mapping) or not frames:
                raise InputError(f"{where}: expected a non-empty dict frame -> index into {VERTS_FILE}")
            if not all(_is_int(k) and _is_int(v) for k, v in frames.items()):
                raise InputError(f"{where}: frame numbers and indices must be integers")
            keys = np.fromiter((int(k) for k in frames), dtype=np.int64, count=len(frames))
            values = np.fromiter((int(v) for v in frames.values()), dtype=np.int64, count=len(frames))
            order = np.argsort(keys, kind="stable")
            keys, values = keys[order], values[order]
            if values.min() < 0 or values.max() >= n_frames:
                raise InputError(f"{where}: indices in [{values.min()}, {values.max()}] fall outside "
                                 f"{VERTS_FILE}, which holds {n_frames} frames (index and vertex file "
                                 "of different releases?)")
            if keys[-1] - keys[0] + 1 != len(keys):
                gaps.append(f"{subject}_{seq}")
            out[str(subject)][str(seq)] = values
    if gaps:
        log.warning("%d sequence(s) skip frame numbers (frames are concatenated as stored): %s",
                    len(gaps), _shorten(gaps))
    return out


def _check_audio_dict(data: Any, path: Path) -> dict[str, dict[str, tuple[np.ndarray, int]]]:
    """``{subject: {sequence: (samples, sample_rate)}}``; samples (n,) or (n, channels)."""
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{path}: expected a non-empty dict subject -> sequence -> {{'audio', 'sample_rate'}}")
    out: dict[str, dict[str, tuple[np.ndarray, int]]] = {}
    for subject, seqs in data.items():
        if not isinstance(seqs, Mapping):
            raise InputError(f"{path}[{subject!r}]: expected a dict sequence -> {{'audio', 'sample_rate'}}")
        out[str(subject)] = {}
        for seq, entry in seqs.items():
            where = f"{path}[{subject!r}][{seq!r}]"
            if not isinstance(entry, Mapping) or "audio" not in entry or "sample_rate" not in entry:
                raise InputError(f"{where}: expected a dict with 'audio' and 'sample_rate'")
            audio, rate = np.asarray(entry["audio"]), entry["sample_rate"]
            if not _is_int(rate) or int(rate) <= 0:
                raise InputError(f"{where}: sample_rate must be a positive integer, found {rate!r}")
            if audio.dtype.name not in WAV_SUBTYPES:
                raise InputError(f"{where}: audio dtype {audio.dtype} cannot be written as WAV "
                                 f"(supported: {', '.join(WAV_SUBTYPES)})")
            if audio.ndim not in (1, 2) or audio.shape[0] == 0 or (audio.ndim == 2 and audio.shape[1] == 0):
                raise InputError(f"{where}: audio must be non-empty (samples,) or (samples, channels), "
                                 f"found shape {audio.shape}")
            if audio.ndim == 2 and audio.shape[1] > min(audio.shape[0], MAX_WAV_CHANNELS):
                # a (channels, samples) array (librosa's layout) was written as a wav of thousands of channels and
                # a few samples, or crashed libsndfile after other files were written
                raise InputError(f"{where}: audio of shape {audio.shape} has {audio.shape[1]} channels of "
                                 f"{audio.shape[0]} samples (a WAV holds at most {MAX_WAV_CHANNELS}); expected "
                                 "(samples,) or (samples, channels), not (channels, samples)")
            if audio.dtype.kind == "f" and not np.isfinite(audio).all():
                raise InputError(f"{where}: audio holds NaN or inf samples")
            # else written as a FLOAT wav that every reader of audio refuses (p3d.io.load_audio)
            check_float_peak(audio, where, "int16 values divided by 32768")
            out[str(subject)][str(seq)] = (audio, int(rate))
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _shorten(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------
def sentence_number(sequence: str) -> int | None:
    """The number of a VOCASET sequence name (``sentence07`` -> 7); None for other names."""
    m = _SENTENCE.search(sequence)
    return int(m[1]) if m else None


def vocaset_split(subject: str, sequence: str) -> str | None:
    """``train``/``val``/``test`` under the official protocol (FaceFormer/CodeTalker/SelfTalk
    ``data_loader.py``), or None when the clip belongs to no split."""
    from p3d.corpus import VOCASET_SENTENCES, VOCASET_SPLITS

    n = sentence_number(sequence)
    if n is None:
        return None
    for split, subjects in VOCASET_SPLITS.items():
        lo, hi = VOCASET_SENTENCES[split]
        if subject in subjects and lo <= n <= hi:
            return split
    return None


def split_manifest(sequences: Iterable[RawSequence], earlier: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The ``splits.json`` content: the official protocol and the clips of the conversion in each split.

    A split lists the clips with both meshes and audio; ``clips`` describes every converted sequence, and the
    ``earlier`` clip entries (of subjects converted into the same folder before, :func:`_earlier_clips`), in
    (subject, sequence) order.
    """
    from p3d.corpus import VOCASET_SENTENCES, VOCASET_SPLITS

    clips = sorted([*earlier, *({
        "stem": s.stem, "subject": s.subject, "sequence": s.sequence,
        "split": vocaset_split(s.subject, s.sequence),
        "frames": None if s.frame_indices is None else int(len(s.frame_indices)),
        "audio_samples": None if s.audio is None else int(s.audio.shape[0]),
        "sample_rate": s.sample_rate,
    } for s in sequences)], key=lambda c: (c["subject"], c["sequence"]))
    splits: dict[str, Any] = {}
    for split, subjects in VOCASET_SPLITS.items():
        lo, hi = VOCASET_SENTENCES[split]
        splits[split] = {
            "subjects": list(subjects),
            "sentences": [lo, hi],
            "clips": [c["stem"] for c in clips if c["frames"] is not None and c["audio_samples"] is not None
                      and c["split"] == split],
        }
    return {
        "dataset": "vocaset",
        "fps": VOCASET_FPS,
        "protocol": "official VOCASET split of FaceFormer / CodeTalker / SelfTalk data_loader.py",
        "splits": splits,
        "unassigned": [c["stem"] for c in clips if c["split"] is None],
        "clips": clips,
    }


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------
def convert_raw_vocaset(
    raw_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    subjects: str | Iterable[str] | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert the raw VOCASET release in ``raw_dir`` into ``out_dir`` (layout: module docstring); ``subjects``:
    only these (one name: that subject; :func:`read_raw_vocaset`).

    All inputs are validated first; nothing is written if any is bad. Existing complete outputs are
    kept unless ``overwrite`` (see "Resuming" in the module docstring). ``progress``: a tqdm bar.
    """
    from tqdm import tqdm

    from p3d.atomic import atomic_open, atomic_path, check_out_dir, save_npy, write_json

    out = Path(out_dir)
    check_out_dir(out)  # before the raw release (gigabytes) is read
    raw = read_raw_vocaset(raw_dir, subjects=subjects)
    release = _check_release(out, raw, overwrite)
    write_json(out / RELEASE_RECORD, {"raw": release})  # before any clip: the files that follow come from it
    v = raw.n_vertices
    written: list[Path] = []
    kept: list[Path] = []
    for seq in tqdm(raw.sequences, desc="vocaset", unit="seq", disable=not show_progress(progress)):
        if seq.frame_indices is not None:
            path = out / "vertices_npy" / f"{seq.stem}.npy"
            shape = (len(seq.frame_indices), v * 3)
            if not overwrite and _npy_matches(path, shape, raw.verts.dtype):
                kept.append(path)
            else:
                frames = np.ascontiguousarray(raw.verts[seq.frame_indices]).reshape(shape)
                save_npy(path, frames)
                written.append(path)
                del frames
        if seq.audio is not None:
            path = out / "wav" / f"{seq.stem}.wav"
            assert seq.sample_rate is not None
            subtype = WAV_SUBTYPES[seq.audio.dtype.name]
            if not overwrite and _wav_matches(path, seq.audio, seq.sample_rate, subtype):
                kept.append(path)
            else:
                import soundfile as sf

                with atomic_path(path) as tmp:
                    sf.write(tmp, _writable(seq.audio), seq.sample_rate, subtype=subtype, format="WAV")
                written.append(path)
    if not _is_raw_templates(out, raw):
        templates = {**_earlier_templates(out, raw), **{s: np.asarray(t) for s, t in raw.templates.items()}}
        with atomic_open(out / TEMPLATES_FILE, "wb") as fh:
            pickle.dump(dict(sorted(templates.items())), fh, protocol=2)
    manifest = split_manifest(raw.sequences, _earlier_clips(out, raw))
    write_json(out / "splits.json", manifest)  # last: marks the conversion complete
    return ConversionSummary(out, written, kept, manifest)


def _writable(audio: np.ndarray) -> np.ndarray:
    """``audio`` in a dtype soundfile writes: unsigned 8-bit samples (which it refuses) as the int16
    ``(x - 128) * 256``, which libsndfile writes to PCM_U8 as ``x`` again (the same bytes; any reader then gives
    ``(x - 128) / 128``)."""
    if audio.dtype == np.uint8:
        return (audio.astype(np.int16) - 128) * 256
    return audio


#: The raw files identified by size and modification time, not by content (:func:`raw_release_fingerprint`).
LARGE_RAW_FILES: tuple[str, ...] = (VERTS_FILE, AUDIO_FILE)


def raw_release_fingerprint(raw_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies a raw VOCASET release without hashing its large files: the size of each of
    :data:`RAW_FILES`, the SHA-256 of the (small) index and templates pickles, and the modification time (ns) of
    the large :data:`LARGE_RAW_FILES` (data_verts.npy ~4 GB, raw_audio_fixed.pkl ~1-2 GB).

    Sizes alone missed an edit that keeps a size (corrected audio or meshes of the same lengths): a rerun kept every
    file converted before. Any write updates a file's ``st_mtime_ns``, so size + mtime detects an edit at no cost;
    a content hash would read ~5-6 GB on every rerun (SHA-256 at ~0.85 GB/s here, plus the disk), where a rerun that
    keeps every file reads none of data_verts.npy. The price: a release copied without its times (``cp`` without
    ``-p``, ``touch``) reads as changed, and its folder is refused until ``--overwrite`` rewrites it (never kept
    stale)."""
    import hashlib

    root = Path(raw_dir)
    return {"sizes": {name: (root / name).stat().st_size for name in RAW_FILES},
            "sha256": {name: hashlib.sha256((root / name).read_bytes()).hexdigest()
                       for name in (INDEX_FILE, TEMPLATES_FILE)},
            "mtime_ns": {name: (root / name).stat().st_mtime_ns for name in LARGE_RAW_FILES}}


def _release_difference(recorded: Any, release: dict[str, Any]) -> str:
    """Why the ``recorded`` fingerprint of a converted folder is not ``release`` (for the one-line refusal)."""
    if not isinstance(recorded, dict):
        return "without a record of the raw release they were converted from"
    if "mtime_ns" not in recorded:
        return ("converted by an older p3d, whose record of the raw release (file sizes only) cannot tell whether "
                f"{AUDIO_FILE} or {VERTS_FILE} changed since")

    def differ(keys: tuple[str, ...]) -> list[str]:
        return [name for name in RAW_FILES
                if any(name in release[k] and (recorded.get(k) or {}).get(name) != release[k][name] for k in keys)]

    content = differ(("sizes", "sha256"))
    if content:
        return f"converted from another raw VOCASET release ({', '.join(content)} differ)"
    touched = differ(("mtime_ns",))
    if touched:
        return (f"converted from raw files modified since ({', '.join(touched)}: same sizes, other modification "
                "times: edited, or copied without their times)")
    return "converted from another raw VOCASET release (its record differs)"


def _check_release(out: Path, raw: RawVocaset, overwrite: bool) -> dict[str, Any]:
    """``raw``'s fingerprint, after refusing an ``out`` whose clip files may not come from it: files of another
    release (or of no recorded release) unless ``overwrite``, and with ``overwrite`` files of subjects this
    conversion would not rewrite (they would stay from the other release)."""
    from p3d.io import load_json

    release = raw_release_fingerprint(raw.root)
    from p3d.io import is_ignored_name

    # hidden names are not clips: a killed run's atomic temporaries (.<name>.tmp-XXXX.npy) made a later --overwrite
    # refuse them as files of another release that it would not rewrite
    present = [p for sub in ("vertices_npy", "wav") if (out / sub).is_dir()
               for p in sorted((out / sub).iterdir()) if p.suffix in (".npy", ".wav") and not is_ignored_name(p.name)]
    record = out / RELEASE_RECORD
    recorded = load_json(record).get("raw") if record.is_file() else None
    if not present or recorded == release:
        return release
    if not overwrite:
        why = _release_difference(recorded, release)
        raise InputError(f"--out {out}: holds files {why}; --overwrite rewrites them, or give another --out")
    stems = {seq.stem for seq in raw.sequences}
    others = [p for p in present if p.stem not in stems]
    if others:
        raise InputError(f"--out {out}: holds {len(others)} file(s) of another raw release that this conversion "
                         f"would not rewrite (e.g. {others[0].name}); convert every subject, or give another --out")
    return release


def _is_raw_templates(out: Path, raw: RawVocaset) -> bool:
    """Whether ``out``'s ``templates.pkl`` is the raw release's own file (``out`` is the raw folder, the baselines'
    layout): it holds every subject's template already and is part of the release (:func:`raw_release_fingerprint`),
    so it is never rewritten."""
    try:
        return os.path.samefile(out / TEMPLATES_FILE, raw.root / TEMPLATES_FILE)
    except OSError:  # no templates.pkl in out yet
        return False


def _earlier_templates(out: Path, raw: RawVocaset) -> dict[str, np.ndarray]:
    """The templates in ``out``'s ``templates.pkl`` of subjects not in ``raw`` whose vertex files are in ``out``
    (an earlier conversion of other ``--subjects``); none if the file is missing or not a valid templates file."""
    from p3d.io import load_templates

    path = out / TEMPLATES_FILE
    if not path.is_file():
        return {}
    try:
        earlier = load_templates(path, raw.n_vertices)
    except InputError:
        return {}
    return {s: t for s, t in earlier.items()
            if s not in raw.templates and any((out / "vertices_npy").glob(f"{s}_*.npy"))}


def _earlier_clips(out: Path, raw: RawVocaset) -> list[dict[str, Any]]:
    """The clip entries of ``out``'s ``splits.json`` of subjects not in ``raw`` whose files are all still in
    ``out`` (an earlier conversion of other ``--subjects`` of the same release, :func:`_check_release`); none if
    the file is missing or not a manifest."""
    from p3d.io import load_json

    try:
        earlier = load_json(out / "splits.json").get("clips")
    except (InputError, OSError):
        return []
    if not isinstance(earlier, list):
        return []
    converted = {seq.subject for seq in raw.sequences}

    def present(c: dict[str, Any]) -> bool:
        return ((c.get("frames") is None or (out / "vertices_npy" / f"{c['stem']}.npy").is_file())
                and (c.get("audio_samples") is None or (out / "wav" / f"{c['stem']}.wav").is_file()))

    return [c for c in earlier if isinstance(c, dict) and {"stem", "subject", "sequence", "split"} <= set(c)
            and c["subject"] not in converted and present(c)]


def _npy_matches(path: Path, shape: tuple[int, int], dtype: np.dtype) -> bool:
    if not path.is_file():
        return False
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:  # unreadable: rewrite it
        return False
    ok = isinstance(arr, np.ndarray) and arr.shape == shape and arr.dtype == dtype
    del arr
    return ok


def _wav_matches(path: Path, audio: np.ndarray, rate: int, subtype: str) -> bool:
    if not path.is_file():
        return False
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # unreadable: rewrite it
        return False
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    return (info.samplerate == rate and info.frames == audio.shape[0] and info.channels == channels
            and info.subtype == subtype)


# ---------------------------------------------------------------------------------------------
# Command line: `p3d data vocaset`
# ---------------------------------------------------------------------------------------------
def add_vocaset_parser(data_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``vocaset`` to the subcommands of ``p3d data`` (``data_subparsers``: its subparsers object)."""
    p = data_subparsers.add_parser(
        "vocaset", help="convert the raw VOCASET release to vertices_npy/ + wav/ + splits.json",
        description="Convert the raw VOCASET download (data_verts.npy, raw_audio_fixed.pkl, subj_seq_to_idx.pkl, "
                    "templates.pkl) into OUT/vertices_npy/<subject>_<sentence>.npy (T, 15069) at 60 fps, "
                    "OUT/wav/<subject>_<sentence>.wav at the stored rate, OUT/templates.pkl and OUT/splits.json "
                    "(the official train/val/test split), as the baselines' vocaset/process_voca_data.py does. "
                    "Reruns keep complete files of the same raw release (OUT/raw_release.json); a folder of "
                    "another release is refused unless --overwrite.")
    p.add_argument("--raw", type=Path, required=True, help="folder holding the four raw VOCASET files")
    p.add_argument("--out", type=Path, required=True, help="output folder (e.g. data/vocaset)")
    p.add_argument("--subjects", nargs="+", metavar="SUBJECT", help="convert only these subjects")
    p.add_argument("--overwrite", action="store_true", help="rewrite files already converted")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_vocaset_cli)
    return p


def run_vocaset_cli(args: argparse.Namespace) -> int:
    summary = convert_raw_vocaset(args.raw, args.out, subjects=args.subjects, progress=not args.no_progress,
                                  overwrite=args.overwrite)
    splits = summary.manifest["splits"]
    counts = ", ".join(f"{k} {len(v['clips'])}" for k, v in splits.items())
    print(f"vocaset: {len(summary.written)} file(s) written, {len(summary.kept)} kept from an earlier run -> "
          f"{summary.out_dir}\nclips per split: {counts}; manifest {summary.out_dir / 'splits.json'}")
    return 0
