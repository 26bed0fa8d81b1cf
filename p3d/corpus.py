"""A corpus of talking-head clips on disk, synthetic or real, read through one interface.

Layout (the processed-VOCASET layout the baselines use, plus p3d's extras; ``p3d data synth`` writes
it, and a real processed VOCASET folder is read with :meth:`Corpus.open` too)::

    ROOT/
      meta.json           corpus description (see below; optional for real data)
      clips.csv           one row per clip: stem, identity, split[, level, sentence, speech_rms, ...]
      templates.pkl       {identity: (V, 3) neutral mesh}
      topology.npz        the mesh family (p3d.topology.Topology.save_npz), or meta["topology"] names one
      vertices_npy/<stem>.npy   (T, V*3) float32 at meta["fps"]
      wav/<stem>.wav            speech, 16 kHz mono
      labels/<stem>.npz         frame labels at meta["fps"]: "phoneme" (T,) int16 ids into meta["phonemes"],
                                "viseme" (T,) int16 ids into meta["visemes"]  (synthetic corpora only)
      lipvideo/<stem>.npy       (T, H, W) uint8 mouth crops at meta["fps"] (LRS3 stand-in only)

``meta.json`` keys: ``name``, ``kind`` (``vocaset`` | ``mead`` | ``lrs3``), ``fps`` (vertex files),
``model_fps`` (what models see; VOCASET: 30 from 60 by taking every second frame), ``sample_rate``,
``topology``, ``n_vertices``, ``splits`` ({split: [identities]}), ``phonemes``, ``visemes``, ``seed``,
``preset``, ``generator`` (version and parameters).

A processed VOCASET without ``meta.json`` gets the official FaceFormer/CodeTalker/SelfTalk split: 8 train
subjects (sentences 1-40), 2 validation and 2 test subjects (sentences 21-40), 60 fps, FLAME.

A processed BIWI (CodeTalker's ``BIWI/`` layout: ``vertices_npy/F2_e01.npy`` (T, 70110) at 25 fps,
``wav/F2_e01.wav`` (44.1 kHz), ``templates.pkl`` {subject: (23370, 3)}, and ``regions/lve.txt`` /
``regions/fdd.txt``, comma-space separated vertex indices of the lips and the upper face) is recognised
by its names ``<F|M><n>_eNN`` when no VOCASET clip is there. It gets the official split of the emotional
subset (40 sentences per subject): train subjects F2 F3 F4 M3 M4 M5 with sentences e01-e32, ``val`` the
same subjects e33-e36, ``test`` (BIWI-Test-A) the same subjects e37-e40, and ``test_b`` (BIWI-Test-B)
the unseen subjects F1 F5 F6 F7 F8 M1 M2 M6, e37-e40; 25 fps; topology ``biwi`` (23 370 vertices, the
regions read from ``regions/`` when present).

``sample_rate`` is the rate :meth:`Corpus.audio` returns (16 kHz for both processed datasets, whatever the
files hold: VOCASET's wav files are 22 kHz, BIWI's 44.1 kHz).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError

VOCASET_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA",
              "FaceTalk_170915_00223_TA", "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA",
              "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA"),
    "val": ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA"),
    "test": ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA"),
}
#: Sentences used per split in the official VOCASET protocol (1-based, inclusive).
VOCASET_SENTENCES: dict[str, tuple[int, int]] = {"train": (1, 40), "val": (21, 40), "test": (21, 40)}
#: The official BIWI split (FaceFormer / CodeTalker ``data_loader.py``): Test-A (``test``) holds the training
#: subjects' last sentences, Test-B (``test_b``) the unseen subjects'.
BIWI_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("F2", "F3", "F4", "M3", "M4", "M5"),
    "val": ("F2", "F3", "F4", "M3", "M4", "M5"),
    "test": ("F2", "F3", "F4", "M3", "M4", "M5"),
    "test_b": ("F1", "F5", "F6", "F7", "F8", "M1", "M2", "M6"),
}
#: Sentences (``eNN``, 1-based, inclusive) per split of the official BIWI protocol.
BIWI_SENTENCES: dict[str, tuple[int, int]] = {"train": (1, 32), "val": (33, 36), "test": (37, 40),
                                              "test_b": (37, 40)}
#: Frame rate of BIWI's vertex files (and of the models trained on them).
BIWI_FPS = 25
#: Processed file stems of the two datasets.
VOCASET_STEM = re.compile(r"^(?P<subject>.+)_sentence(?P<n>\d+)$")
BIWI_STEM = re.compile(r"^(?P<subject>[FM]\d+)_e(?P<n>\d+)$")


@dataclasses.dataclass(frozen=True)
class Clip:
    stem: str
    identity: str
    split: str
    level: int | None = None
    sentence: str | None = None
    speech_rms: float | None = None


class Corpus:
    """Read access to one corpus folder (see module docstring)."""

    def __init__(self, root: str | os.PathLike[str], meta: dict[str, Any], clips: list[Clip]):
        self.root = Path(root)
        self.meta = meta
        self.clips = clips

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Corpus:
        """Open a corpus written by ``p3d data synth`` or a processed VOCASET folder."""
        import pandas as pd

        from p3d.io import load_json

        root = Path(root)
        if root.exists() and not root.is_dir():
            raise InputError(f"{root}: a file, not a corpus folder (give the folder that holds vertices_npy/)")
        if not root.is_dir():
            raise InputError(f"{root}: corpus folder not found")
        if not (root / "vertices_npy").is_dir():
            from p3d.io import raw_vocaset_hint

            raise InputError(f"{root}: not a corpus (no vertices_npy/ folder){raw_vocaset_hint(root)}")
        meta_path = root / "meta.json"
        if meta_path.exists():
            meta = load_json(meta_path)
            for key, what in (("fps", "the vertex files' frame rate"), ("model_fps", "the models' frame rate")):
                rate = meta.get(key)
                if key == "model_fps" and rate is None:  # optional: the models see the files' rate
                    continue
                if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
                    # 0, negative or NaN (json reads NaN) would surface later as a stride of nan or a division
                    # by zero, far from the file that holds it
                    raise InputError(f"{meta_path}: {key!r} ({what}) is "
                                     f"{'missing' if rate is None else repr(rate)}; expected a number > 0")
            csv_path = root / "clips.csv"
            if not csv_path.exists():
                raise InputError(f"{csv_path}: missing (the corpus was not completely written)")
            df = pd.read_csv(csv_path, dtype={"stem": str, "identity": str, "split": str})
            absent = [col for col in ("stem", "identity", "split") if col not in df]
            if absent:
                raise InputError(f"{csv_path}: no {', '.join(absent)} column (each row needs stem, identity, split)")
            twice = df["stem"][df["stem"].duplicated()]
            if len(twice):  # one clip in train and test would be trained on and scored as held out
                stem = twice.iloc[0]
                rows = df[df["stem"] == stem]
                raise InputError(f"{csv_path}: clip {stem!r} is listed {len(rows)} times (splits "
                                 f"{', '.join(map(str, rows['split']))}); each clip belongs to one split")
            clips = [
                Clip(stem=r.stem, identity=r.identity, split=r.split,
                     level=None if "level" not in df or pd.isna(r.level) else int(r.level),
                     sentence=None if "sentence" not in df or pd.isna(r.sentence) else str(r.sentence),
                     speech_rms=None if "speech_rms" not in df or pd.isna(r.speech_rms) else float(r.speech_rms))
                for r in df.itertuples(index=False)
            ]
            return cls(root, meta, clips)
        return cls._open_vocaset(root)

    @classmethod
    def _open_vocaset(cls, root: Path) -> Corpus:
        """A processed VOCASET, or a processed BIWI when no VOCASET clip is there (module docstring)."""
        stems = sorted(f.stem for f in (root / "vertices_npy").glob("*.npy"))
        clips = _official_clips(stems, VOCASET_STEM, VOCASET_SPLITS, VOCASET_SENTENCES)
        if clips:
            meta = {"name": "vocaset", "kind": "vocaset", "fps": 60, "model_fps": 30, "sample_rate": 16000,
                    "topology": "flame", "n_vertices": 5023,
                    "splits": {k: list(v) for k, v in VOCASET_SPLITS.items()}}
            return cls(root, meta, clips)
        clips = _official_clips(stems, BIWI_STEM, BIWI_SPLITS, BIWI_SENTENCES)
        if clips:
            from p3d.topology import BIWI_N_VERTICES

            meta = {"name": "biwi", "kind": "biwi", "fps": BIWI_FPS, "model_fps": BIWI_FPS, "sample_rate": 16000,
                    "topology": "biwi", "n_vertices": BIWI_N_VERTICES,
                    "splits": {k: list(v) for k, v in BIWI_SPLITS.items()}}
            return cls(root, meta, clips)
        raise InputError(f"{root}: no VOCASET clips (<subject>_sentenceNN.npy of the official subjects) and no BIWI "
                         f"clips (<F|M><n>_eNN.npy of the official subjects) found in vertices_npy/")

    # -- description ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.root.name))

    @property
    def fps(self) -> float:
        """Frame rate of the vertex files."""
        return float(self.meta["fps"])

    @property
    def model_fps(self) -> float:
        """Frame rate models train on (vertex files are subsampled by ``stride``)."""
        return float(self.meta.get("model_fps", self.meta["fps"]))

    @property
    def stride(self) -> int:
        """Vertex-file frames per model frame: ``fps / model_fps``, a whole number >= 1 (VOCASET: 60 / 30 = 2,
        the baselines' ``[::2]``). Any other ratio is refused: every ``stride``-th frame would be a rate other
        than ``model_fps`` (60 -> 25 fps would give 30 fps frames), and the speech windows paired with them at
        ``model_fps`` (Sec. 4, C.2: 5 frames per window) would drift off them along the clip."""
        ratio = self.fps / self.model_fps if self.fps > 0 and self.model_fps > 0 else float("nan")
        stride = int(round(ratio)) if math.isfinite(ratio) else 0
        if stride < 1 or abs(ratio - stride) > 1e-6:
            raise InputError(f"{self.root / 'meta.json'}: model_fps {self.model_fps:g} does not divide the vertex "
                             f"files' fps {self.fps:g} into a whole number of frames (taking every n-th frame gives "
                             f"fps / n: {self.fps:g} fps -> {self.fps:g}, {self.fps / 2:g}, {self.fps / 3:g}, ...)")
        return stride

    @cached_property
    def topology(self) -> Any:
        from p3d.topology import load_topology

        local = self.root / "topology.npz"
        if local.exists():
            return load_topology(local)
        name = self.meta.get("topology", "flame")
        if name == "biwi":
            return biwi_topology(self.root)
        return load_topology(name)

    @cached_property
    def templates(self) -> dict[str, np.ndarray]:
        from p3d.io import load_templates

        return load_templates(self.root / "templates.pkl", self.topology.n_vertices)

    def identities(self, split: str | None = None) -> list[str]:
        return sorted({c.identity for c in self.select(split)})

    def select(self, split: str | None = None, identities: list[str] | None = None) -> list[Clip]:
        """Clips of a split (``None``: all), optionally restricted to identities."""
        if split is not None and split not in {c.split for c in self.clips}:
            raise InputError(f"{self.root}: no clips in split {split!r} (have {sorted({c.split for c in self.clips})})")
        return [c for c in self.clips if (split is None or c.split == split)
                and (identities is None or c.identity in identities)]

    # -- per-clip data ------------------------------------------------------------------------------
    def vertices_path(self, clip: Clip | str) -> Path:
        return self.root / "vertices_npy" / f"{_stem(clip)}.npy"

    def wav_path(self, clip: Clip | str) -> Path:
        return self.root / "wav" / f"{_stem(clip)}.wav"

    def vertices(self, clip: Clip | str, model_rate: bool = True) -> np.ndarray:
        """(T, V, 3) float32 vertices; at ``model_fps`` (every ``stride``-th frame) unless ``model_rate=False``."""
        from p3d.io import load_vertices

        v = load_vertices(self.vertices_path(clip), self.topology)
        return v[:: self.stride] if model_rate else v

    def n_frames(self, clip: Clip | str, model_rate: bool = True) -> int:
        """The clip's vertex frame count from its ``.npy`` header alone (as ``len(self.vertices(clip,
        model_rate))``, without reading the vertices)."""
        from p3d.io import npy_header

        (n, *_), _ = npy_header(self.vertices_path(clip), "vertices")
        return len(range(0, n, self.stride)) if model_rate else n

    def audio(self, clip: Clip | str) -> tuple[np.ndarray, int]:
        """(mono samples, rate): the channel mean resampled to ``meta["sample_rate"]`` (the talkers' input)."""
        from p3d.io import load_audio

        return load_audio(self.wav_path(clip), sr=int(self.meta.get("sample_rate", 16000)))

    def speech_audio(self, clip: Clip | str) -> tuple[np.ndarray, int]:
        """(channel 0, the file's own rate) for the speech windows (:func:`p3d.audio.speech_windows`
        resamples it once, as the official front-end; :meth:`audio` would make that a second resampling)."""
        from p3d.audio import load_speech_audio

        return load_speech_audio(self.wav_path(clip))

    def labels(self, clip: Clip | str, model_rate: bool = True) -> dict[str, np.ndarray]:
        """Frame labels (``phoneme``, ``viseme`` int arrays) at ``model_fps`` unless ``model_rate=False``."""
        path = self.root / "labels" / f"{_stem(clip)}.npz"
        if not path.exists():
            raise InputError(f"{path}: no frame labels (only synthetic corpora have them)")
        from p3d.io import load_npz

        out = load_npz(path, "frame-label .npz")
        step = self.stride if model_rate else 1
        return {k: (v[::step] if v.ndim >= 1 and len(v) and k in {"phoneme", "viseme"} else v) for k, v in out.items()}

    def lip_video(self, clip: Clip | str) -> np.ndarray:
        """(T, H, W) uint8 mouth crops at the vertex frame rate (LRS3 stand-in)."""
        path = self.root / "lipvideo" / f"{_stem(clip)}.npy"
        if not path.exists():
            raise InputError(f"{path}: no lip video for this clip (only the LRS3 stand-in has one)")
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:  # ValueError (not an .npy / object arrays), OSError, EOFError
            raise InputError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, {len(self.clips)} clips, fps={self.fps:g}, root={str(self.root)!r})"


def _stem(clip: Clip | str) -> str:
    return clip.stem if isinstance(clip, Clip) else str(clip)


def _official_clips(stems: list[str], pattern: re.Pattern[str], splits: dict[str, tuple[str, ...]],
                    sentences: dict[str, tuple[int, int]]) -> list[Clip]:
    """The clips of the official protocol among ``stems``: subject and sentence number from ``pattern``."""
    clips = []
    for stem in stems:
        m = pattern.match(stem)
        if not m:
            continue
        n = int(m["n"])
        for split, subjects in splits.items():
            lo, hi = sentences[split]
            if m["subject"] in subjects and lo <= n <= hi:
                clips.append(Clip(stem=stem, identity=m["subject"], split=split))
    return clips


def biwi_topology(root: str | os.PathLike[str]) -> Any:
    """BIWI's topology for a processed BIWI folder: its ``regions/`` (``lve.txt``, ``fdd.txt``) when present,
    else the 23 370 vertices without regions (training needs none; LVE/FDD then need ``--topology``)."""
    from p3d.topology import BIWI_N_VERTICES, Topology, load_topology

    regions = Path(root) / "regions"
    if (regions / "lve.txt").exists():
        return load_topology(regions)
    return Topology(name="biwi", n_vertices=BIWI_N_VERTICES)


def corpus_root(folder: str | os.PathLike[str]) -> Path:
    """The corpus folder of ``folder``: itself, or its parent when it is a corpus' ``vertices_npy/`` or ``wav/``
    (a GT or audio folder given by its files' folder)."""
    folder = Path(folder)
    if folder.name in ("vertices_npy", "wav") and (folder.parent / "vertices_npy").is_dir():
        return folder.parent
    return folder


#: The files of a corpus that :func:`corpus_fingerprint` hashes by content, by field: the neutral templates (FDD,
#: the lip amplitude and every prediction start from them) and the clip table (the split of each clip).
FINGERPRINT_FILES = {"templates": "templates.pkl", "clips": "clips.csv"}


def corpus_fingerprint(root: str | os.PathLike[str]) -> dict[str, str | None]:
    """What a corpus folder holds, without reading a clip: ``fingerprint``, a short hash of its ``meta.json`` (the
    synthetic corpora's preset, seed, spec and generator version) and of the names and sizes of its
    ``vertices_npy/`` and ``wav/`` files (a stat per file), and ``meta``, a short hash of ``meta.json`` alone
    (None without one: real data), and per field of :data:`FINGERPRINT_FILES`, a short hash of that file's
    content (``templates``: ``templates.pkl``; ``clips``: ``clips.csv``, the split assignment; None without the
    file). A corpus regenerated with other settings or clips at the same path, a corrected template or a clip
    moved to another split changes it; the same corpus written again, or copied, does not. Compare two with
    :func:`fingerprint_changes` (records written before the file fields existed lack them)."""
    import hashlib

    root = Path(root)
    whole = hashlib.sha256()
    meta = None
    if (root / "meta.json").is_file():
        text = (root / "meta.json").read_bytes()
        whole.update(text)
        meta = hashlib.sha256(text).hexdigest()[:16]
    for sub in ("vertices_npy", "wav"):
        if (root / sub).is_dir():
            for f in sorted(p for p in (root / sub).iterdir() if p.is_file()):
                whole.update(f"{sub}/{f.name}:{f.stat().st_size}\n".encode())
    files = {field: hashlib.sha256((root / name).read_bytes()).hexdigest()[:16] if (root / name).is_file() else None
             for field, name in FINGERPRINT_FILES.items()}
    return {"fingerprint": whole.hexdigest()[:16], "meta": meta, **files}


def fingerprint_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a recorded :func:`corpus_fingerprint` and ``current`` (the same folder's now, or
    another's): ``"meta.json or clip files"`` (their names and sizes: ``fingerprint``) and the file of each
    :data:`FINGERPRINT_FILES` field (``"templates.pkl"``, ``"clips.csv"``); empty for the same corpus.
    ``fingerprint`` is always compared; a file field only where both hold it, so a record written before the
    field existed (an older p3d's ``predictions.json`` or experiment cache) still matches on the others instead
    of being refused (it cannot tell whether that file changed since)."""
    changes = ["meta.json or clip files"] if recorded.get("fingerprint") != current.get("fingerprint") else []
    return changes + [name for field, name in FINGERPRINT_FILES.items()
                      if field in recorded and field in current and recorded[field] != current[field]]
