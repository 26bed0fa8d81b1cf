"""Window datasets: the paired 5-frame items every representation of the paper trains on (Sec. 4, C.2).

A *window* ``i`` of a clip pairs speech window ``i`` (:func:`p3d.audio.speech_windows` at the
corpus' model frame rate: 3200 samples at ``640 * fps`` Hz, i.e. 0.2 s at 25 fps and the 19.2 kHz
rule at 30 fps) with frames ``[i, i + 5)`` of the clip's visual stream:

- :class:`AVWindows` (stage 1): the 2D lip video (``lipvideo/<stem>.npy``, (T, H, W) uint8 mouth
  crops), as a float tensor (C, 5, S, S): pixels ``/ 255``, normalised with the grayscale lip-ROI
  statistics of visual speech recognition (mean 0.421, std 0.165, as Auto-AVSR's mouth crops),
  resized to the stage-1 config's ``video_size`` (once per clip when it is loaded:
  ``torch.nn.functional.interpolate``, bilinear with antialiasing, rounded back to uint8) and
  repeated to its ``video_channels`` (the paper's video is RGB; the synthetic crops
  are grayscale). The speech window (20 fbank frames) is padded to the config's ``speech_frames``
  (:func:`p3d.audio.pad_frames`: the paper's stage 1 uses 64-frame spectrograms; how it padded is
  NOT FOUND, AudioMAE's zero-energy padding is used) or centre-cropped if shorter.
- :class:`SpeechMeshWindows` (stage 2, 3D SyncNet, w/o 2D prior, fine-tuning, PLRS evaluator): the
  absolute vertex positions (5, V*3) at the model frame rate (``Corpus.vertices``; VOCASET's 60 fps
  files are taken every second frame).

Both index *all* windows of all clips of a split: ``n = min(#speech windows, T - 4)`` per clip (the
official ``clip_num``), optionally every ``stride``-th start and at most ``max_per_clip`` evenly
spaced starts per clip (the ``cpu`` preset's budget). Per-clip arrays (the compact clip fbank, the
vertices or the lip video) are computed once when the dataset is built, with ``workers`` threads,
and kept in memory; with ``cache_dir`` the fbanks are also cached on disk
(:class:`p3d.audio.FeatureCache`). Memory per frame: 2 KiB of fbank plus ``12 V`` bytes of vertices
(60 KiB for FLAME) or ``H W`` bytes of lip video: fine for the synthetic corpora and VOCASET, not for
all of LRS3-3D (train on a subset there).

A dataset is a ``p3d.train.trainer`` batch source: ``len(ds)`` items and ``ds.collate(indices) ->
dict`` with tensors ``speech`` (B, T_a, 128) and ``mesh`` (B, 5, V*3) or ``video`` (B, C, 5, S, S),
and per item ``clip`` (stems), ``identity``, ``start`` (first frame), ``level`` (-1 if none),
``phoneme`` / ``viseme`` (label id of the window's centre frame ``start + 2``; -1 without labels).
"""
from __future__ import annotations

import abc
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from p3d.audio import (
    FBANK_FRAMES_PER_HOP, FBANK_FRAMES_PER_WINDOW, FRAMES_PER_WINDOW, FeatureCache, clip_fbank, pad_frames,
)
from p3d.corpus import Clip, Corpus
from p3d.errors import InputError, whole_number
from p3d.progress import show_progress

log = logging.getLogger(__name__)

#: Grayscale lip-ROI pixel statistics (after ``/ 255``) used to normalise the lip video.
LIP_MEAN = 0.421
LIP_STD = 0.165
#: Identity subsets for independently trained models (e.g. the PLRS evaluator): sorted identities,
#: ``half1`` = positions 0, 2, 4, ..., ``half2`` = positions 1, 3, 5, ...
IDENTITY_SUBSETS = ("all", "half1", "half2")


def identity_subset(corpus: Corpus, split: str, which: str = "all") -> list[str] | None:
    """The identities of ``split`` in subset ``which`` (``None`` for ``all``: no restriction)."""
    if which not in IDENTITY_SUBSETS:
        raise InputError(f"identities: expected one of {', '.join(IDENTITY_SUBSETS)}, got {which!r}")
    if which == "all":
        return None
    ids = corpus.identities(split)
    if len(ids) < 2:
        raise InputError(f"{corpus.root}: split {split!r} has {len(ids)} identity; {which} needs at least 2")
    return ids[0::2] if which == "half1" else ids[1::2]


def _positive_int(x: object) -> bool:
    """Whether ``x`` is a whole number >= 1 (an int, a numpy integer, or an integral float; not a bool)."""
    return whole_number(x, 1) is not None


def open_corpus(corpus: Corpus | str | os.PathLike[str]) -> Corpus:
    return corpus if isinstance(corpus, Corpus) else Corpus.open(corpus)


class ClipWindows(abc.ABC):
    """Indexing, per-clip caching and speech features shared by the window datasets.

    Subclasses implement :meth:`_load_stream` (the clip's visual stream and its frame count) and
    :meth:`_stream_batch` (the stream windows of a batch).
    """

    stream_key = "stream"

    def __init__(
        self,
        corpus: Corpus | str | os.PathLike[str],
        split: str | None,
        *,
        identities: Sequence[str] | None = None,
        clips: Sequence[Clip] | None = None,
        stride: int = 1,
        max_per_clip: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int = 1,
        progress: bool = False,
    ) -> None:
        self.corpus = open_corpus(corpus)
        self.split = split
        if not _positive_int(stride):
            raise InputError(f"stride: expected a positive whole window stride, got {stride!r}")
        if max_per_clip is not None and not _positive_int(max_per_clip):
            raise InputError(f"max_per_clip: expected a positive whole count, got {max_per_clip!r}")
        self.stride = int(stride)
        self.max_per_clip = None if max_per_clip is None else int(max_per_clip)
        self.fps = self.corpus.model_fps
        if clips is not None:
            chosen = list(clips)
        else:
            chosen = self.corpus.select(split, list(identities) if identities else None)
        if not chosen:
            raise InputError(f"{self.corpus.root}: no clips in split {split!r}"
                             + (f" for identities {list(identities)}" if identities else ""))
        self._features = FeatureCache(cache_dir) if cache_dir is not None else None
        loaded = self._load_all(chosen, max(1, int(workers)), progress)
        self.clips: list[Clip] = []
        self._fbank: list[np.ndarray] = []
        self._stream: list[np.ndarray] = []
        self._labels: list[dict[str, np.ndarray]] = []
        self.n_pairs: list[int] = []  # windows of each clip (all starts, before stride / max_per_clip)
        index = []
        skipped = 0
        for clip, (fbank, stream, n_frames, labels) in zip(chosen, loaded):
            rows = fbank.shape[0]
            n_speech = 0 if rows == 0 else 1 + (rows - FBANK_FRAMES_PER_WINDOW) // FBANK_FRAMES_PER_HOP
            n = min(n_speech, n_frames - (FRAMES_PER_WINDOW - 1))
            if n <= 0:
                skipped += 1
                continue
            ci = len(self.clips)
            self.clips.append(clip)
            self._fbank.append(fbank)
            self._stream.append(stream)
            self._labels.append(labels)
            self.n_pairs.append(n)
            index.extend((ci, s) for s in self.starts(n))
        if skipped:
            log.warning("%s: %d clip(s) shorter than one 5-frame window skipped", self.corpus.root, skipped)
        if not index:
            raise InputError(f"{self.corpus.root}: split {split!r} has no complete 5-frame window")
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 2)

    # -- indexing -----------------------------------------------------------------------------
    def starts(self, n: int) -> list[int]:
        """Window starts of a clip with ``n`` pairs: every ``stride``-th, at most ``max_per_clip`` evenly spaced."""
        s = list(range(0, n, self.stride))
        if self.max_per_clip is not None and len(s) > self.max_per_clip:
            pick = np.unique(np.linspace(0, len(s) - 1, self.max_per_clip).round().astype(int))
            s = [s[i] for i in pick]
        return s

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_clips(self) -> int:
        return len(self.clips)

    def collate(self, indices: Sequence[int]) -> dict[str, Any]:
        """The batch of dataset items ``indices`` (see the module docstring for its keys)."""
        pairs = [(int(c), int(s)) for c, s in self.index[np.asarray(list(indices), dtype=np.int64)]]
        return self.batch(pairs)

    def batch(self, pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """A batch from explicit ``(clip index, start frame)`` pairs (any start < ``n_pairs[clip]``)."""
        import torch

        out: dict[str, Any] = {
            "speech": self.speech_batch(pairs),
            self.stream_key: self._stream_batch(pairs),
            "clip": [self.clips[ci].stem for ci, _ in pairs],
            "identity": [self.clips[ci].identity for ci, _ in pairs],
            "start": torch.tensor([s for _, s in pairs], dtype=torch.long),
            "level": torch.tensor([-1 if self.clips[ci].level is None else self.clips[ci].level for ci, _ in pairs],
                                  dtype=torch.long),
        }
        for key in ("phoneme", "viseme"):
            out[key] = torch.tensor([self._label(ci, s + FRAMES_PER_WINDOW // 2, key) for ci, s in pairs],
                                    dtype=torch.long)
        return out

    def speech_batch(self, pairs: Sequence[tuple[int, int]]) -> Any:
        """The speech windows alone of explicit ``(clip index, start frame)`` pairs: the ``speech`` entry of
        :meth:`batch` (without stacking the visual stream)."""
        import torch

        for ci, s in pairs:
            if not (0 <= ci < len(self.clips) and 0 <= s < self.n_pairs[ci]):
                raise IndexError(f"window ({ci}, {s}) out of range")
        speech = np.stack([self._fbank[ci][FBANK_FRAMES_PER_HOP * s: FBANK_FRAMES_PER_HOP * s + FBANK_FRAMES_PER_WINDOW]
                           for ci, s in pairs])
        return torch.from_numpy(self._speech(speech))

    def clip_pairs(self, ci: int) -> list[tuple[int, int]]:
        """All ``n_pairs[ci]`` windows of clip ``ci`` (stride 1), for per-clip analyses."""
        return [(ci, s) for s in range(self.n_pairs[ci])]

    # -- per-clip data ------------------------------------------------------------------------
    def _speech(self, windows: np.ndarray) -> np.ndarray:
        return windows

    def _label(self, ci: int, frame: int, key: str) -> int:
        labels = self._labels[ci].get(key)
        if labels is None or frame >= len(labels):
            return -1
        return int(labels[frame])

    def _load_all(self, clips: list[Clip], workers: int, progress: bool | None) -> list[tuple]:
        from tqdm.auto import tqdm

        desc = f"windows {self.corpus.name}/{self.split}"
        if workers == 1:
            bar = tqdm(clips, desc=desc, unit="clip", disable=not show_progress(progress))
            return [self._load_clip(c) for c in bar]
        with ThreadPoolExecutor(workers) as pool:
            return list(tqdm(pool.map(self._load_clip, clips), total=len(clips), desc=desc, unit="clip",
                             disable=not show_progress(progress)))

    def _load_clip(self, clip: Clip) -> tuple[np.ndarray, np.ndarray, int, dict[str, np.ndarray]]:
        if self._features is not None:
            fbank = self._features.fbank(self.corpus.wav_path(clip), self.fps)
        else:
            samples, sr = self.corpus.speech_audio(clip)  # resampled once, as the official front-end
            fbank = clip_fbank(samples, sr, self.fps)
        stream, n_frames = self._load_stream(clip)
        labels: dict[str, np.ndarray] = {}
        if (self.corpus.root / "labels" / f"{clip.stem}.npz").exists():
            labels = {k: v for k, v in self.corpus.labels(clip).items() if k in ("phoneme", "viseme")}
            for key, value in labels.items():  # one label per frame: another length pairs windows with wrong labels
                if np.shape(value) != (n_frames,):
                    raise InputError(f"{self.corpus.root / 'labels' / (clip.stem + '.npz')}: {np.shape(value)[:1]} "
                                     f"{key} labels for {n_frames} frames")
        return fbank, stream, n_frames, labels

    @abc.abstractmethod
    def _load_stream(self, clip: Clip) -> tuple[np.ndarray, int]:
        """The clip's per-frame stream (mesh or lip video) at the model fps, and its frame count."""

    @abc.abstractmethod
    def _stream_batch(self, pairs: Sequence[tuple[int, int]]) -> Any:
        """The stream windows of (clip, start) pairs as one batch tensor."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.corpus.name!r}, split={self.split!r}, {self.n_clips} clips, "
                f"{len(self)} windows, stride={self.stride}, max_per_clip={self.max_per_clip})")


class SpeechMeshWindows(ClipWindows):
    """(speech window (20, 128), mesh window (5, V*3) absolute vertices at the model frame rate)."""

    stream_key = "mesh"

    @property
    def n_vertices(self) -> int:
        return int(self.corpus.topology.n_vertices)

    def vertex_statistics(self) -> tuple[np.ndarray, float]:
        """``(mean (V*3,), scale)`` over every frame of the loaded clips: the average frame and the RMS
        of the centred coordinates (the mesh encoder's input standardisation). float64 sums."""
        frames = sum(len(v) for v in self._stream)
        if frames == 0:
            raise InputError("vertex statistics: the dataset holds no frames")
        mean = sum(v.sum(0, dtype=np.float64) for v in self._stream) / frames
        sq = sum(((v - mean) ** 2).sum(dtype=np.float64) for v in self._stream)
        scale = float(np.sqrt(sq / (frames * mean.size)))
        if not scale > 0:
            raise InputError("vertex statistics: every training frame is identical (scale 0)")
        return mean.astype(np.float32), scale

    def _load_stream(self, clip: Clip) -> tuple[np.ndarray, int]:
        v = self.corpus.vertices(clip)  # (T, V, 3) at model fps, validated
        v = np.ascontiguousarray(v.reshape(v.shape[0], -1), dtype=np.float32)
        return v, v.shape[0]

    def _stream_batch(self, pairs: Sequence[tuple[int, int]]) -> Any:
        import torch

        return torch.from_numpy(np.stack([self._stream[ci][s:s + FRAMES_PER_WINDOW] for ci, s in pairs]))


class AVWindows(ClipWindows):
    """(speech window padded to ``speech_frames``, lip video window (C, 5, S, S) normalised)."""

    stream_key = "video"

    def __init__(self, corpus: Corpus | str | os.PathLike[str], split: str | None, *, speech_frames: int = 20,
                 video_size: int | None = None, video_channels: int = 1, **kwargs: Any) -> None:
        if not _positive_int(speech_frames):
            raise InputError(f"speech_frames: expected a positive whole frame count, got {speech_frames!r}")
        if video_size is not None and not _positive_int(video_size):  # 0 read as "native size", < 0 a torch error
            raise InputError(f"video_size: expected a positive whole size in pixels (or None: the crops' own), "
                             f"got {video_size!r}")
        if whole_number(video_channels) not in (1, 3):  # True is not 1 channel, "3" not 3
            raise InputError(f"video_channels: expected 1 (grayscale) or 3 (RGB), got {video_channels!r}")
        self.speech_frames = int(speech_frames)
        self.video_size = None if video_size is None else int(video_size)
        self.video_channels = int(video_channels)
        corpus = open_corpus(corpus)
        if not (corpus.root / "lipvideo").is_dir():
            raise InputError(f"{corpus.root}: stage 1 needs a corpus with 2D lip video (lipvideo/<stem>.npy), "
                             f"e.g. synth-lrs3; this one has none")
        super().__init__(corpus, split, **kwargs)

    @classmethod
    def for_config(cls, config: Any, corpus: Corpus | str | os.PathLike[str], split: str | None,
                   **kwargs: Any) -> AVWindows:
        """Windows shaped for a :class:`p3d.models.stage1.Stage1Config`."""
        return cls(corpus, split, speech_frames=config.speech_frames, video_size=config.video_size,
                   video_channels=config.video_channels, **kwargs)

    def _speech(self, windows: np.ndarray) -> np.ndarray:
        n = windows.shape[1]
        if self.speech_frames > n:
            return pad_frames(windows, self.speech_frames)
        lo = (n - self.speech_frames) // 2
        return np.ascontiguousarray(windows[:, lo:lo + self.speech_frames])

    def _load_stream(self, clip: Clip) -> tuple[np.ndarray, int]:
        path = self.corpus.root / "lipvideo" / f"{clip.stem}.npy"
        if not path.exists():
            raise InputError(f"{path}: lip video missing for clip {clip.stem}")
        try:
            video = self.corpus.lip_video(clip)
        except ValueError as exc:
            raise InputError(f"{path}: not a readable .npy array ({exc})") from None
        if video.ndim != 3 or video.dtype != np.uint8 or min(video.shape) == 0:
            raise InputError(f"{path}: expected (T, H, W) uint8 mouth crops, got {video.dtype} {video.shape}")
        video = np.ascontiguousarray(video[:: self.corpus.stride])
        size = self.video_size or video.shape[1]
        if video.shape[1:] != (size, size):  # resized once per clip, kept as uint8
            import torch
            import torch.nn.functional as F

            x = torch.from_numpy(video).float()[:, None]
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            video = x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
        return video, video.shape[0]

    def _stream_batch(self, pairs: Sequence[tuple[int, int]]) -> Any:
        import torch

        raw = np.stack([self._stream[ci][s:s + FRAMES_PER_WINDOW] for ci, s in pairs])  # (B, 5, S, S) uint8
        x = (torch.from_numpy(raw).float() / 255.0 - LIP_MEAN) / LIP_STD
        b, t, h, w = x.shape
        return x[:, None].expand(b, self.video_channels, t, h, w).contiguous()


def windows_for_model(model: Any, corpus: Corpus | str | os.PathLike[str], split: str | None,
                      **kwargs: Any) -> ClipWindows:
    """The window dataset a model reads: :class:`AVWindows` for a stage-1 model, else :class:`SpeechMeshWindows`."""
    if getattr(model, "kind", None) == "stage1":
        return AVWindows.for_config(model.config, corpus, split, **kwargs)
    ds = SpeechMeshWindows(corpus, split, **kwargs)
    expected = getattr(model, "n_vertices", None)
    if expected is not None and expected != ds.n_vertices:
        raise InputError(f"{ds.corpus.root}: meshes have {ds.n_vertices} vertices, the model expects {expected}")
    return ds


__all__ = ["AVWindows", "ClipWindows", "IDENTITY_SUBSETS", "SpeechMeshWindows", "identity_subset",
           "open_corpus", "windows_for_model"]
