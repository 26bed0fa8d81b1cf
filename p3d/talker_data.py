"""Clip datasets for the talking-head baselines: one :class:`~p3d.models.talker.TalkerBatch` per clip.

:class:`TalkerClips` reads the clips of one split of one or more corpora (e.g. ``synth-voca`` train, or
``synth-voca`` + ``synth-mead`` train for the paper's config 2) and serves them to
:func:`p3d.train.trainer.train` (``len(ds)`` and ``ds.collate(indices)``: one index -> a
:class:`~p3d.models.talker.TalkerBatch`, as the official code's batch size 1; several -> a
:class:`~p3d.models.talker.ClipBatch` of those clips, each keeping its own length).

Per clip it holds, in memory, computed once when the dataset is built:

- ``audio``: (S,) float32 at 16 kHz (resampled if the file is not);
- ``vertices``: (T, V, 3) float32 at the corpus' model frame rate (VOCASET's 60 fps taken every second
  frame), and the speaker's ``template`` (V, 3) from ``templates.pkl``;
- ``phonemes``: (T,) int64 frame phoneme labels where the corpus has ``labels/`` (the synthetic corpora),
  else None;
- ``speech``, only when a perceptual loss (:class:`p3d.losses.PerceptualLoss`) is given: the frozen
  critic's speech embeddings (N, D) of the clip's speech windows (:func:`p3d.audio.speech_windows` at the
  model frame rate, ``N = min(#windows, T - 4)``), computed **once** (the audio never changes, so the
  loss costs one mesh-encoder pass per step); with ``cache_speech=False`` the (N, 20, 128) fbank windows
  instead, which the loss embeds at every step (same value, Table S8's "without cache" column);
- ``audio_features``, after :meth:`TalkerClips.cache_audio_features`: the talker's fixed audio front-end
  of the clip (the ``mel`` encoder's normalised log-mel; the encoder's convolutions train, so only this
  parameter-free part is cached), computed once instead of at every step (same value).

**The critic's speech front-end** is the official one (``perceptual_loss/data_loader.py``,
``load_audio_mel``): the file's own samples, channel 0 (:func:`p3d.audio.load_speech_audio`), resampled
**once** with torchaudio's sinc resampler (:func:`p3d.audio.resample`) to ``640 * fps`` Hz (19.2 kHz at
30 fps). It is not derived from the 16 kHz ``audio`` above: that would resample a second time (file rate
-> 16 kHz -> 19.2 kHz) and average the channels. (At 25 fps, BIWI, the rate is 16 kHz, one mesh frame per
640-sample hop; the official script hard-codes 19.2 kHz whatever the frame rate.)

**Styles.** FaceFormer, CodeTalker and SelfTalk condition on a one-hot over the *training* identities.
:func:`style_identities` lists them: the sorted union of the corpora's ``train`` identities (stable: a
sorted list of names, saved in the run config). A clip of a listed identity gets its index; a clip of
an unseen identity (validation/test) gets ``default_style`` (prediction conditions on every training
identity instead: :mod:`p3d.predict`). An identity name present in two corpora is refused (two
different people would silently share one style).

Memory: ``12 V`` bytes per frame of vertices plus 64 KB per second of audio (plus 2 KiB per window of
fbank without the cache, or ``4 D`` bytes per window with it): a few MB for the synthetic corpora,
about 3 GB for VOCASET's 320 training clips at FLAME resolution.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from p3d.corpus import Clip, Corpus
from p3d.errors import InputError
from p3d.progress import show_progress

log = logging.getLogger(__name__)

#: Sample rate of the audio the talkers take.
AUDIO_RATE = 16000
#: Fewest frames a clip needs for one contrastive group of the perceptual loss (2 windows of 5 frames).
MIN_FRAMES_WITH_CRITIC = 6


def open_corpora(corpora: Sequence[Corpus | str | os.PathLike[str]] | Corpus | str | os.PathLike[str]
                 ) -> list[Corpus]:
    """Open one corpus or several; check they share the vertex count and model frame rate."""
    if isinstance(corpora, (Corpus, str, os.PathLike)):
        corpora = [corpora]
    opened = [c if isinstance(c, Corpus) else Corpus.open(c) for c in corpora]
    if not opened:
        raise InputError("--train/--data: no corpus given")
    roots = [c.root.resolve() for c in opened]
    if len(set(roots)) != len(roots):
        raise InputError(f"--train/--data: a corpus is given twice ({', '.join(str(r) for r in roots)})")
    first = opened[0]
    for c in opened[1:]:
        if c.topology.n_vertices != first.topology.n_vertices:
            raise InputError(f"{c.root}: {c.topology.n_vertices} vertices per frame, but {first.root} has "
                             f"{first.topology.n_vertices}; corpora trained together need one mesh topology")
        if c.meta.get("phonemes") and first.meta.get("phonemes") and c.meta["phonemes"] != first.meta["phonemes"]:
            raise InputError(f"{c.root}: its phoneme inventory (meta.json 'phonemes') differs from {first.root}'s; "
                             f"their frame labels would mean different phonemes")
        if c.model_fps != first.model_fps:
            raise InputError(f"{c.root}: model frame rate {c.model_fps:g} fps, but {first.root} has "
                             f"{first.model_fps:g} fps; corpora trained together need one frame rate")
    return opened


def style_identities(corpora: Sequence[Corpus], split: str = "train") -> list[str]:
    """The speaking styles: sorted identities of ``split`` over all corpora (names must not collide)."""
    owner: dict[str, str] = {}
    for c in corpora:
        for ident in c.identities(split):
            if ident in owner and owner[ident] != str(c.root):
                raise InputError(f"identity {ident!r} is in both {owner[ident]} and {c.root}; rename one (styles are "
                                 f"one-hot over identity names)")
            owner[ident] = str(c.root)
    if not owner:
        raise InputError(f"split {split!r}: no identities in {', '.join(str(c.root) for c in corpora)}")
    return sorted(owner)


@dataclasses.dataclass
class _Item:
    corpus: Corpus
    clip: Clip
    audio: np.ndarray
    vertices: np.ndarray
    phonemes: np.ndarray | None
    speech: Any = None
    audio_features: Any = None


def check_durations(wav: Path, seconds: float, vertices_path: Path, n_frames: int, fps: float,
                    stored_fps: float | None = None) -> None:
    """Refuse a clip whose audio and vertices are not one recording: durations a factor apart or differing by more
    than ``max(2 frames, 10 %)`` (:func:`p3d.evaluate.config.length_mismatch`, the rule of ``p3d eval``), e.g. a
    truncated or replaced wav. The talkers stretch the audio features to the frame count, so such a clip would
    train (or be predicted) silently on misaligned speech. ``stored_fps``: the rate the vertex file is read at
    (``n_frames`` counts it subsampled to ``fps``); a factor apart, the message names the frame rates, since vertex
    files at another rate than the corpus layout's (a processed VOCASET's ``vertices_npy`` is the 60 fps capture)
    are the usual cause."""
    from p3d.evaluate.config import length_mismatch

    audio_frames = int(round(seconds * fps))
    why = length_mismatch(audio_frames, n_frames)
    if why is not None:
        cause = "a truncated or replaced file?"
        if why.startswith("differ by a factor"):
            read = fps if stored_fps is None else stored_fps
            taken = f" and taken [::{round(read / fps)}] to {fps:g} fps" if round(read / fps) > 1 else ""
            cause = (f"a wrong frame rate, or a truncated file? the vertex files are read as {read:g} fps{taken}: "
                     "a processed VOCASET's "
                     "vertices_npy holds the 60 fps capture, BIWI's 25 fps")
        raise InputError(f"{wav}: {seconds:.3f} s of audio = {audio_frames} frames at {fps:g} fps, but "
                         f"{Path(vertices_path).name} has {n_frames}; the durations {why} ({cause})")


class TalkerClips:
    """The clips of ``split`` of ``corpora`` as :class:`~p3d.models.talker.TalkerBatch` items.

    Args:
        corpora: corpus folders or opened :class:`~p3d.corpus.Corpus` objects (one topology, one fps).
        split: the split to serve (``train``, ``val``, ``test``).
        styles: the style identities (default: :func:`style_identities` of the corpora's ``train`` split).
        default_style: style index of clips whose identity is not in ``styles``.
        perceptual: a :class:`p3d.losses.PerceptualLoss`; its critic embeds each clip's speech once.
        cache_speech: keep the critic's speech embeddings (True) or the fbank windows (False).
        workers: threads loading the clips.
        progress: a tqdm bar while loading.
    """

    def __init__(
        self,
        corpora: Sequence[Corpus | str | os.PathLike[str]] | Corpus | str | os.PathLike[str],
        split: str = "train",
        *,
        styles: Sequence[str] | None = None,
        default_style: int = 0,
        perceptual: Any = None,
        cache_speech: bool = True,
        workers: int = 1,
        progress: bool = False,
    ) -> None:
        from tqdm.auto import tqdm

        self.corpora = open_corpora(corpora)
        self.split = split
        self.styles = list(styles) if styles is not None else style_identities(self.corpora)
        if not self.styles:
            raise InputError("styles: at least one style identity is needed")
        self.style_index = {name: i for i, name in enumerate(self.styles)}
        if not 0 <= default_style < len(self.styles):
            raise InputError(f"default_style: {default_style} outside [0, {len(self.styles)})")
        self.default_style = default_style
        self.cache_speech = cache_speech
        self.fps = self.corpora[0].model_fps
        self.n_vertices = self.corpora[0].topology.n_vertices
        pairs = [(c, clip) for c in self.corpora for clip in c.select(split)]
        if not pairs:
            raise InputError(f"split {split!r}: no clips in {', '.join(str(c.root) for c in self.corpora)}")
        with ThreadPoolExecutor(max(1, workers)) as pool:
            items = list(tqdm(pool.map(lambda p: self._load(*p), pairs), total=len(pairs),
                              disable=not show_progress(progress), desc=f"clips {split}", unit="clip"))
        if perceptual is not None:
            # the loss needs 2 (speech window, 5 frames) pairs, min(#windows, T - 4) >= 2: a clip with fewer (under
            # MIN_FRAMES_WITH_CRITIC frames, or a little less speech than frames) is skipped, with a warning
            short = []
            for it in tqdm(items, disable=not show_progress(progress), desc="speech embeddings", unit="clip"):
                windows = self._speech_windows(it) if it.vertices.shape[0] >= MIN_FRAMES_WITH_CRITIC else None
                if windows is None or windows.shape[0] < 2:
                    short.append(it)
                else:
                    it.speech = self._speech(windows, perceptual)
            if short:
                log.warning("skipping %d clips with fewer than 2 speech-mesh windows (under %d frames, or speech "
                            "shorter than that; no contrastive group): %s", len(short), MIN_FRAMES_WITH_CRITIC,
                            ", ".join(it.clip.stem for it in short[:5]))
            items = [it for it in items if it.speech is not None]
            if not items:
                raise InputError(f"split {split!r}: no clip has 2 speech-mesh windows (at least "
                                 f"{MIN_FRAMES_WITH_CRITIC} frames and as much speech)")
        self.items = items

    # -- loading -----------------------------------------------------------------------------------
    def _load(self, corpus: Corpus, clip: Clip) -> _Item:
        from p3d.io import FaceFrame, load_audio

        wav = corpus.wav_path(clip)
        if not wav.exists():
            raise InputError(f"{wav}: audio file missing for clip {clip.stem}")
        audio, _ = load_audio(wav, sr=AUDIO_RATE)
        if audio.size == 0:
            raise InputError(f"{wav}: empty audio")
        vertices = corpus.vertices(clip).astype(np.float32, copy=False)
        if vertices.shape[0] < 2:
            raise InputError(f"{corpus.vertices_path(clip)}: {vertices.shape[0]} frame(s) at {corpus.model_fps:g} "
                             f"fps; a talker needs at least 2")
        check_durations(wav, audio.size / AUDIO_RATE, corpus.vertices_path(clip), vertices.shape[0], corpus.model_fps,
                        corpus.fps)
        if clip.identity not in corpus.templates:
            raise InputError(f"{corpus.root / 'templates.pkl'}: no template for identity {clip.identity!r}")
        # the talkers learn the vertices minus the template: both must be positions in one coordinate frame
        FaceFrame.of(vertices).check(
            corpus.templates[clip.identity][None], f"{corpus.root / 'templates.pkl'}[{clip.identity!r}]",
            corpus.vertices_path(clip), "A template in another unit, normalisation or alignment, or vertex files "
            "holding offsets from the template? The talkers learn the vertices minus the template")
        phonemes = None
        if (corpus.root / "labels" / f"{clip.stem}.npz").exists():
            labels = corpus.labels(clip)
            if "phoneme" in labels:
                phonemes = np.asarray(labels["phoneme"], dtype=np.int64)
                if phonemes.shape != (vertices.shape[0],):
                    raise InputError(f"{corpus.root / 'labels' / (clip.stem + '.npz')}: {phonemes.shape[0]} phoneme "
                                     f"labels for {vertices.shape[0]} frames")
        return _Item(corpus, clip, audio, vertices, phonemes)

    def _speech_windows(self, item: _Item) -> np.ndarray:
        """(N, 20, 128) fbank windows of the clip's speech, ``N = min(#windows, T - 4)`` (window i: frames [i, i+5))."""
        from p3d.audio import speech_windows

        # the official front-end: the file's channel 0 at its own rate, resampled once (module docstring)
        samples, rate = item.corpus.speech_audio(item.clip)
        return speech_windows(samples, rate, self.fps, n_frames=item.vertices.shape[0])

    def _speech(self, windows: np.ndarray, perceptual: Any) -> Any:
        import torch

        if self.cache_speech:
            return perceptual.speech_embeddings(windows).cpu()
        return torch.from_numpy(windows)

    # -- BatchSource -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    @property
    def stems(self) -> list[str]:
        return [it.clip.stem for it in self.items]

    def style_of(self, identity: str) -> int:
        return self.style_index.get(identity, self.default_style)

    def __getitem__(self, index: int) -> Any:
        import torch

        from p3d.models.talker import TalkerBatch

        it = self.items[index]
        return TalkerBatch(
            audio=torch.from_numpy(it.audio),
            template=torch.from_numpy(np.asarray(it.corpus.templates[it.clip.identity], dtype=np.float32)),
            style=self.style_of(it.clip.identity),
            vertices=torch.from_numpy(it.vertices),
            phonemes=None if it.phonemes is None else torch.from_numpy(it.phonemes),
            speech=it.speech,
            stem=it.clip.stem,
            audio_features=it.audio_features,
        )

    def cache_audio_features(self, front_end: Any) -> None:
        """Compute every clip's audio front-end once: ``front_end((S,) float32 tensor) -> tensor`` (e.g.
        :meth:`p3d.models.audio_encoder.MelEncoder.front_end`, from ``Talker.audio_front_end()``); None clears
        the cache. The batches then carry it as ``audio_features``."""
        import torch

        for it in self.items:
            it.audio_features = None if front_end is None else front_end(torch.from_numpy(it.audio)).detach().cpu()

    def collate(self, indices: list[int]) -> Any:
        """The trainer's per-process batch: one index -> that clip's :class:`~p3d.models.talker.TalkerBatch`;
        several -> a :class:`~p3d.models.talker.ClipBatch` of them, in order."""
        from p3d.models.talker import ClipBatch

        if not indices:
            raise ValueError("collate: no clip indices")
        if len(indices) == 1:
            return self[indices[0]]
        return ClipBatch([self[i] for i in indices])
