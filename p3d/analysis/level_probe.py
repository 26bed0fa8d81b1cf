"""Does a speech feature carry the intensity level? A linear probe with held-out identities.

The level-wise expressiveness claims (paper Table 4, Fig. 6: lips should open more for louder
speech) need audio features that still tell soft from loud speech once loudness is normalised away,
as the talkers' front-ends do (per-utterance log-mel normalisation, wav2vec2's waveform
normalisation). :func:`level_probe` fits a linear classifier (``sklearn`` logistic regression on
standardised features) from per-clip features to levels and scores it on identities it never saw
(leave-one-identity-out, or 5 identity folds for more than 10 identities), against the majority-class
rate. Any per-clip features plug in: :func:`logmel_statistics` (loudness-normalised log-mel means and
standard deviations) or pooled encoder features of a talker.

:func:`front_end_level_probe` probes a talker's own audio front-end (:func:`talker_front_end_features`:
the clip resampled and normalised exactly as in training), before any learned layer or the whole encoder,
at initialisation or trained (a run folder). Measured on synth-mead (cpu preset, test split: 6 held-out
identities, 504 clips; FaceFormer's cpu front-end, which CodeTalker and SelfTalk share): the normalised
log-mel (correlation pooling) tells the three levels apart at 0.47 (chance 0.33), 0.48 with every clip
at one RMS; the untrained encoder (moments) at 0.39. The gain-only control (normal clips at the levels'
gains) is at chance, 0.33: the mel front-end's log floor is relative to the clip's peak mel energy
(:data:`p3d.models.audio_encoder.LOG_MEL_FLOOR`), so it is gain-invariant as wav2vec2's waveform
normalisation is, and what it tells apart is vocal effort (spectral tilt, pitch, rate). (With the former
absolute floor ``log(mel + 1e-6)`` the gain-only control scored 0.48 and the as-is probe 0.53.)

:func:`held_out_level_probe` is the one-fit form for a corpus with its own held-out identities (fit on the train
split, score the test split); :func:`corpus_level_probe` probes the corpus' audio itself
(:func:`logmel_statistics`), and :func:`level_probe_table` gathers both for notebook 07. Measured there at cpu
(fit on synth-mead's 6 train identities, 144 clips; scored on the 6 test identities, 504 clips; every clip at one
RMS): the corpus' log-mel statistics 0.58 [0.53, 0.62], the talkers' shared fixed front-end 0.44 [0.39, 0.48],
its gain-only control 0.33 [0.29, 0.38], chance 0.33 (95 % Wilson intervals over clips, as then computed).

**Intervals.** The clips of one speaker are not independent (a speaker's voice makes all of them easy or hard),
so every accuracy CI here is a percentile bootstrap over the held-out *identities* (:func:`accuracy_ci`), not a
binomial interval over clips: with 6 test identities it is wide and honest.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.stats import cluster_bootstrap_ci

#: Bootstrap resamples (and seed) of the accuracy CI over held-out identities.
CI_RESAMPLES = 2000


def logmel_statistics(audio: np.ndarray, sample_rate: int, n_mels: int = 40, floor_db: float = 40.0) -> np.ndarray:
    """(2 n_mels,) float64: mean and std over frames of the log-mel energies of loudness-normalised speech.

    The clip is first scaled to unit RMS (per-utterance loudness normalisation), then a Kaldi
    filterbank (:func:`p3d.audio.kaldi_fbank`: 25 ms Hanning frames every 10 ms, ``n_mels`` bins) is
    taken; frames more than ``floor_db`` dB below the loudest frame (silence) are left out.
    """
    from p3d.audio import FbankOptions, kaldi_fbank

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"audio: expected a non-empty mono 1-D signal, got shape {x.shape}")
    rms = np.sqrt(np.mean(x ** 2))
    if rms == 0:
        raise InputError("audio: silent clip (RMS 0) has no level to probe")
    opts = FbankOptions(sample_frequency=float(sample_rate), frame_length_ms=25.0, num_mel_bins=int(n_mels))
    fb = kaldi_fbank(x / rms, opts).astype(np.float64)
    if len(fb) == 0:
        raise InputError("audio: shorter than one 25 ms frame")
    energy = np.log(np.sum(np.exp(fb), axis=1))
    keep = energy >= energy.max() - floor_db / (10 * np.log10(np.e))
    fb = fb[keep]
    return np.concatenate([fb.mean(axis=0), fb.std(axis=0)])


def level_probe(features: np.ndarray, levels: Sequence[Hashable] | np.ndarray,
                identities: Sequence[Hashable] | np.ndarray, *, center_by_identity: bool = True,
                c: float = 1.0) -> dict[str, Any]:
    """Held-out-identity accuracy of a linear probe from per-clip ``features`` to ``levels``.

    Args:
        features: (N, F) per-clip features.
        levels: N level labels (two or more classes).
        identities: N speaker labels; every fold holds out whole identities.
        center_by_identity: subtract each identity's mean feature vector first (speaker normalisation
            as SLCC's identity-wise z-scores; label-free, so also done for held-out identities).
        c: inverse L2 regularisation strength of the logistic regression.
    Returns:
        ``{"accuracy", "chance" (majority-class rate), "ci_low", "ci_high" (95 % bootstrap interval over the
        identities, :func:`accuracy_ci`; each clip predicted once by the fold that held out its identity), "n",
        "n_folds", "fold_accuracy" (list)}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(levels, dtype=object)
    g = np.asarray(identities, dtype=object)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(g):
        raise InputError(f"level_probe: features (N, F), levels (N,), identities (N,) must agree; got "
                         f"{x.shape}, {y.shape}, {g.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("level_probe: features contain NaN or infinite values")
    classes, y_codes = np.unique(y.astype(str), return_inverse=True)
    groups = np.unique(g.astype(str), return_inverse=True)[1]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if len(classes) < 2 or n_groups < 2:
        raise InputError(f"level_probe: need at least 2 levels and 2 identities, got {len(classes)} and {n_groups}")
    if center_by_identity:
        x = x.copy()
        for k in range(n_groups):
            x[groups == k] -= x[groups == k].mean(axis=0)
    splitter = LeaveOneGroupOut() if n_groups <= 10 else GroupKFold(n_splits=5)
    fold_acc = []
    hits = np.zeros(len(y_codes), dtype=bool)
    for train, test in splitter.split(x, y_codes, groups):
        if len(np.unique(y_codes[train])) < 2:
            raise InputError("level_probe: a training fold holds a single level; give every identity several levels")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(x[train], y_codes[train])
        hit = model.predict(x[test]) == y_codes[test]
        hits[test] = hit
        fold_acc.append(float(hit.mean()))
    chance = float(np.bincount(y_codes).max() / len(y_codes))
    ci_low, ci_high = accuracy_ci(hits, groups)
    return {"accuracy": float(hits.mean()), "chance": chance, "ci_low": ci_low, "ci_high": ci_high,
            "n": int(len(y_codes)), "n_folds": len(fold_acc), "fold_accuracy": fold_acc}


def accuracy_ci(hits: np.ndarray, identities: Sequence[Hashable] | np.ndarray) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the accuracy (mean of ``hits``) resampling whole identities
    (:func:`p3d.stats.cluster_bootstrap_ci`, :data:`CI_RESAMPLES` resamples, seed 0): a speaker's clips move
    together. With a single identity there is no interval: (NaN, NaN) (resampling it would give the point, a
    zero-width interval that a reading would take for certainty)."""
    ids = np.asarray(identities).astype(str)
    low, high = cluster_bootstrap_ci(np.asarray(hits, dtype=np.float64), list(ids), n_resamples=CI_RESAMPLES, seed=0)
    if low is None:
        raise InputError("accuracy_ci: no scored clip")
    if len(np.unique(ids)) < 2:
        return math.nan, math.nan
    return float(low), float(high)


def _check_probe_input(features: np.ndarray, levels: Any, identities: Any, name: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(levels, dtype=object).astype(str)
    g = np.asarray(identities, dtype=object).astype(str)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(g) or len(x) == 0:
        raise InputError(f"{name}: features (N, F), levels (N,), identities (N,) must agree and N > 0; got "
                         f"{x.shape}, {y.shape}, {g.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name}: features contain NaN or infinite values")
    return x, y, g


def _center_by_identity(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    x = x.copy()
    for ident in np.unique(g):
        x[g == ident] -= x[g == ident].mean(axis=0)
    return x


def held_out_level_probe(train: tuple[np.ndarray, Any, Any], test: tuple[np.ndarray, Any, Any], *,
                         center_by_identity: bool = True, c: float = 1.0) -> dict[str, Any]:
    """Accuracy on ``test`` of a linear probe from features to levels fitted on ``train`` (other identities).

    The one-fit form of :func:`level_probe` for a corpus with its own held-out identities (synth-mead's train
    and test splits): the same classifier (logistic regression on standardised features, inverse L2 strength
    ``c``) and the same label-free speaker normalisation (``center_by_identity``: each identity's mean feature
    vector subtracted, test identities included).

    Args:
        train, test: ``(features (N, F), levels (N,), identities (N,))``; no identity in both.
    Returns:
        ``{"accuracy", "chance" (the test set's majority-class rate), "ci_low", "ci_high" (95 % bootstrap interval
        of the accuracy over the test identities, :func:`accuracy_ci`), "n" (test clips), "n_train",
        "per_identity" ({identity: accuracy})}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_tr, y_tr, g_tr = _check_probe_input(*train, "held_out_level_probe train")
    x_te, y_te, g_te = _check_probe_input(*test, "held_out_level_probe test")
    if x_tr.shape[1] != x_te.shape[1]:
        raise InputError(f"held_out_level_probe: train has {x_tr.shape[1]} features per clip, test {x_te.shape[1]}")
    shared = sorted(str(ident) for ident in set(g_tr) & set(g_te))  # plain names in the message, not np.str_('x')
    if shared:
        raise InputError(f"held_out_level_probe: identities {shared} are in both train and test; hold them out")
    if len(np.unique(y_tr)) < 2:
        raise InputError("held_out_level_probe: the training clips hold a single level; give it two or more")
    if center_by_identity:
        x_tr, x_te = _center_by_identity(x_tr, g_tr), _center_by_identity(x_te, g_te)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(x_tr, y_tr)
    hit = model.predict(x_te) == y_te
    ci_low, ci_high = accuracy_ci(hit, g_te)
    chance = float(np.unique(y_te, return_counts=True)[1].max() / len(y_te))
    return {"accuracy": float(hit.mean()), "chance": chance, "ci_low": ci_low, "ci_high": ci_high,
            "n": int(len(y_te)), "n_train": int(len(y_tr)),
            "per_identity": {ident: float(hit[g_te == ident].mean()) for ident in np.unique(g_te)}}


# -- the talkers' audio front-ends ---------------------------------------------------------------------

#: What of a talker's audio front-end :func:`talker_front_end_features` returns.
STAGES = ("fixed", "encoder")


def talker_audio_encoder(source: Any, *, seed: int = 0) -> Any:
    """The audio encoder (:mod:`p3d.models.audio_encoder`) of a talker, in eval mode.

    ``source``: a talker model (FaceFormer, CodeTalker, SelfTalk, e.g. from :func:`p3d.models.load_model`;
    its trained encoder is returned), a talker config (its ``audio`` field), an
    :class:`~p3d.models.audio_encoder.AudioEncoderConfig`, or ``(talker_name, preset)`` (e.g.
    ``("faceformer", "cpu")``). From a config the encoder is built as the talker builds it
    (:func:`~p3d.models.audio_encoder.build_audio_encoder`) with torch's RNG seeded by ``seed``: a draw of its
    weights at initialisation (wav2vec2: the pretrained folder ``wav2vec2_path``; without one, the
    architecture ``wav2vec2_config`` with random weights). At smoke and cpu the three talkers share one
    audio-encoder config per preset, so their encoders at initialisation differ only by the seed.
    """
    import torch

    from p3d.models.audio_encoder import AudioEncoderConfig, MelEncoder, Wav2Vec2Encoder, build_audio_encoder

    if isinstance(source, torch.nn.Module):
        found = [m for m in source.modules() if isinstance(m, (MelEncoder, Wav2Vec2Encoder))]
        if len(found) != 1:
            raise InputError(f"model: expected one audio encoder in a {type(source).__name__}, found {len(found)}")
        return found[0].eval()
    if isinstance(source, tuple) and len(source) == 2 and all(isinstance(s, str) for s in source):
        from p3d.models.talker import talker_class

        from p3d.registry import model_preset

        source = talker_class(source[0]).config_class.from_preset(model_preset(source[1]))
    config = source if isinstance(source, AudioEncoderConfig) else getattr(source, "audio", None)
    if not isinstance(config, AudioEncoderConfig):
        raise InputError(f"model: expected a talker, a talker config, an AudioEncoderConfig or (name, preset), "
                         f"got {type(source).__name__}")
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        encoder = build_audio_encoder(config, pretrained=config.wav2vec2_path is not None
                                      or config.wav2vec2_config is None)
    finally:
        torch.random.set_rng_state(state)
    return encoder.eval()


def talker_front_end_features(source: Any, audio: np.ndarray, sample_rate: int, *, stage: str = "encoder",
                              n_frames: int | None = None, fps: float | None = None, seed: int = 0) -> np.ndarray:
    """(T, D) float32 features of one clip from a talker's audio front-end, as in training.

    The clip is taken as the talkers' clip datasets take it (:mod:`p3d.talker_data`): mono float32,
    resampled to 16 kHz as :func:`p3d.io.load_audio` does (:func:`p3d.io.resample`, as the official loaders); then
    the encoder's own normalisation (the mel encoder: log-mel normalised per utterance and bin; wav2vec2: the waveform
    normalised per utterance) in eval mode (no SpecAugment masking).

    Args:
        source: a talker, a talker config, an audio-encoder config or ``(name, preset)``
            (:func:`talker_audio_encoder`).
        stage: ``"fixed"``: the part of the front-end that training does not change, i.e. the information
            available to the model: the mel encoder's normalised log-mel, (L, n_mels) at 100 Hz; wav2vec2's
            frozen CNN feature extractor on the normalised waveform, (L, 512) at 50 Hz (refused when the
            config trains it). ``"encoder"``: the whole audio encoder, (n_frames, dim) at the motion rate.
        n_frames: motion frames for ``"encoder"`` (default ``floor(duration * fps)``, the prediction rule).
        fps: the motion frame rate for that default (default: the talker config's ``fps``, else 30).
    """
    import torch

    from p3d.talker_data import AUDIO_RATE

    if stage not in STAGES:
        raise InputError(f"stage: choose {' or '.join(STAGES)}, got {stage!r}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise InputError(f"audio: expected a non-empty finite mono 1-D signal, got shape {x.shape}")
    if int(sample_rate) != AUDIO_RATE:
        from p3d.io import resample

        x = resample(x, int(sample_rate), AUDIO_RATE)
    encoder = talker_audio_encoder(source, seed=seed)
    wave = torch.from_numpy(x)[None]
    with torch.no_grad():
        if stage == "fixed":
            if hasattr(encoder, "log_mel"):
                out = encoder.log_mel(wave)[0].T
            else:
                if not encoder.config.freeze_feature_extractor:
                    raise InputError("stage fixed: this wav2vec2 encoder trains its CNN feature extractor; "
                                     "use stage encoder")
                norm = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + 1e-7)
                out = encoder.model.feature_extractor(norm)[0].T
        else:
            if n_frames is None:
                rate = float(fps if fps is not None else getattr(getattr(source, "config", source), "fps", 30.0))
                n_frames = max(1, int(x.size * rate // AUDIO_RATE))
            out = encoder(wave, int(n_frames))[0]
    return out.float().numpy()


#: Per-clip pooling of (T, D) front-end features for :func:`front_end_level_probe`.
POOLINGS = ("moments", "correlation", "moments+correlation")


def pool_frames(frames: np.ndarray, pooling: str = "moments") -> np.ndarray:
    """(F,) float64 summary of (T, D) features over time.

    ``"moments"``: the mean and standard deviation of every dimension (2 D values). ``"correlation"``:
    the upper triangle of the D x D correlation matrix between dimensions (D (D - 1) / 2 values; a
    dimension constant over the clip counts as uncorrelated). ``"moments+correlation"``: both.
    Note that the mel encoder's log-mel is normalised per utterance and bin, so its moments are 0 and
    ``s / (s + 1e-3)`` (``s`` the bin's log-mel spread) by construction: what is left of it after the
    normalisation is its correlation structure (spectral shape within frames, co-modulation of bands).
    """
    if pooling not in POOLINGS:
        raise InputError(f"pooling: choose one of {', '.join(POOLINGS)}, got {pooling!r}")
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise InputError(f"frames: expected (T >= 2, D) features, got shape {f.shape}")
    parts = []
    if pooling in ("moments", "moments+correlation"):
        parts += [f.mean(axis=0), f.std(axis=0)]
    if pooling in ("correlation", "moments+correlation"):
        z = f - f.mean(axis=0)
        sd = np.sqrt(np.mean(z ** 2, axis=0))
        z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
        corr = z.T @ z / len(z)
        parts.append(corr[np.triu_indices(f.shape[1], 1)])
    return np.concatenate(parts)


def _equal_rms(audio: np.ndarray, rms: float = 0.05) -> np.ndarray:
    level = float(np.sqrt(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))
    if level == 0:
        raise InputError("audio: silent clip (RMS 0) cannot be brought to a common RMS")
    return (np.asarray(audio, dtype=np.float64) * (rms / level)).astype(np.float32)


#: The input of a level probe: the clips as they are, every clip at one RMS, or the gain-only control
#: (:func:`front_end_level_probe`).
INPUT_GAINS = ("as-is", "equal-rms", "gain-only")


def _open_levelled(corpus: Any, splits: Sequence[str | None], levels: Sequence[int] | None
                   ) -> tuple[Any, dict[str | None, list[Any]], list[int]]:
    """The corpus, its clips per split and the levels to tell apart, checked."""
    from p3d.corpus import Corpus

    corpus = corpus if isinstance(corpus, Corpus) else Corpus.open(corpus)
    clips = {}
    for split in splits:
        clips[split] = corpus.select(split) if split is not None else list(corpus.clips)
        if not clips[split]:
            raise InputError(f"split {split!r}: no clips in {corpus.root}")
        if any(clip.level is None for clip in clips[split]):
            raise InputError(f"{corpus.root}: clips without an intensity level (a MEAD-layout corpus has them)")
    present = set.intersection(*({clip.level for clip in c} for c in clips.values()))
    wanted = sorted(present) if levels is None else sorted(int(x) for x in levels)
    if len(wanted) < 2 or not set(wanted) <= present:
        raise InputError(f"levels: need two or more of the levels {sorted(present)} that every probed split of "
                         f"{corpus.root} has, got {wanted}")
    return corpus, clips, wanted


def _level_items(corpus: Any, clips: Sequence[Any], wanted: Sequence[int], input_gain: str
                 ) -> list[tuple[Any, int, np.ndarray, int]]:
    """``(clip, level label, audio, sample rate)`` of every probed clip, as ``input_gain`` asks."""
    if input_gain not in INPUT_GAINS:
        raise InputError(f"input_gain: choose {', '.join(INPUT_GAINS)}, got {input_gain!r}")
    items: list[tuple[Any, int, np.ndarray, int]] = []
    if input_gain == "gain-only":
        volumes = list(corpus.meta.get("spec", {}).get("level_volume") or [])
        all_levels = sorted({clip.level for clip in corpus.clips})
        if len(volumes) != len(all_levels) or 2 not in all_levels:
            raise InputError(f"{corpus.root / 'meta.json'}: no spec.level_volume per level (a synth-mead corpus "
                             f"has it); the gain-only control needs the levels' gains")
        gain = {lv: volumes[all_levels.index(lv)] / volumes[all_levels.index(2)] for lv in wanted}
        for clip in clips:
            if clip.level == 2:
                audio, rate = corpus.audio(clip)
                items += [(clip, lv, audio * np.float32(gain[lv]), rate) for lv in wanted]
    else:
        for clip in clips:
            if clip.level in wanted:
                audio, rate = corpus.audio(clip)
                items.append((clip, clip.level, _equal_rms(audio) if input_gain == "equal-rms" else audio, rate))
    return items


def _probe(per_split: dict[str | None, tuple[np.ndarray, list, list]], split: str | None,
           train_split: str | None, c: float) -> dict[str, Any]:
    """:func:`level_probe` on ``split`` (identity folds) or :func:`held_out_level_probe` from ``train_split``."""
    if train_split is None:
        out = level_probe(*per_split[split], c=c)
        return {**out, "per_fold": out["fold_accuracy"], "n_train": None}
    out = held_out_level_probe(per_split[train_split], per_split[split], c=c)
    return {**out, "per_fold": [out["accuracy"]]}


def front_end_level_probe(corpus: Any, talker_name: str, preset: str = "cpu", split: str | None = "test", *,
                          train_split: str | None = None, run: str | Any | None = None, model: Any = None,
                          stage: str = "encoder", pooling: str = "moments", levels: Sequence[int] | None = None,
                          input_gain: str = "as-is", seed: int = 0, c: float = 1.0) -> dict[str, Any]:
    """Can a talker's audio front-end tell a corpus' intensity levels apart? :func:`level_probe` on its
    pooled features (:func:`talker_front_end_features`, :func:`pool_frames`), holding out whole identities.

    Args:
        corpus: a :class:`p3d.corpus.Corpus` (or its folder) with levels (synth-mead, MEAD-3D).
        talker_name, preset: the talker (``faceformer``, ``codetalker``, ``selftalk``) and preset whose
            audio encoder is built at initialisation (torch seeded with ``seed``; ``full`` builds the
            models of :func:`p3d.registry.model_preset`).
        split: the corpus split to probe (None: every clip).
        train_split: None: identity folds within ``split`` (:func:`level_probe`); a split name (``"train"``):
            the probe is fitted once on that split's clips and scored on ``split``'s, whose identities it never
            saw (:func:`held_out_level_probe`).
        run: a ``p3d train talker`` run folder: its trained ``final.pt`` is probed instead (the run must
            be of ``talker_name``; ``preset`` is then the run's).
        model: instead of ``(talker_name, preset)``, a talker or config to take the encoder from
            (:func:`talker_audio_encoder`); not with ``run``.
        stage: ``"fixed"`` or ``"encoder"`` (:func:`talker_front_end_features`).
        pooling: per-clip pooling over time (:data:`POOLINGS`).
        levels: the levels to tell apart (default all, e.g. ``(1, 3)`` for soft vs loud).
        input_gain: the clips as they are (``"as-is"``, the talker's input in training); ``"equal-rms"``:
            every clip scaled to one RMS first, so gain carries no information; ``"gain-only"``: a control
            in which every level of an identity is its level-2 (normal) clips scaled by the corpus'
            level gains (the espeak volume ratios, ``meta.json`` ``spec.level_volume``), so the levels
            differ by gain alone.
    Returns:
        ``{"accuracy", "chance", "ci_low", "ci_high" (95 % bootstrap interval over the scored identities,
        :func:`accuracy_ci`), "n_clips" (scored), "n_train_clips" (None without ``train_split``), "n_identities"
        (scored), "per_fold" (held-out accuracies; one with ``train_split``), "talker", "preset", "stage", "pooling", "input_gain", "levels",
        "train_split", "trained" (bool)}``.
    """
    if input_gain not in INPUT_GAINS:
        raise InputError(f"input_gain: choose {', '.join(INPUT_GAINS)}, got {input_gain!r}")
    if stage not in STAGES:
        raise InputError(f"stage: choose {' or '.join(STAGES)}, got {stage!r}")
    if pooling not in POOLINGS:
        raise InputError(f"pooling: choose one of {', '.join(POOLINGS)}, got {pooling!r}")
    splits = [split] if train_split is None else [train_split, split]
    corpus, clips, wanted = _open_levelled(corpus, splits, levels)
    if run is not None and model is not None:
        raise InputError("model and run: give one source of the audio encoder")
    if run is not None:
        from pathlib import Path

        from p3d.models import load_model
        from p3d.predict import read_run

        cfg = read_run(run)
        if cfg.get("model") != talker_name:
            raise InputError(f"--run {run}: a {cfg.get('model')!r} run, not {talker_name!r}")
        preset = str(cfg.get("preset", preset))
        source: Any = load_model(Path(run) / "final.pt")
        fps = float(cfg.get("fps", corpus.model_fps))
    else:
        source = model if model is not None else (talker_name, preset)
        fps = float(corpus.model_fps)
    encoder = talker_audio_encoder(source, seed=seed)

    per_split = {}
    for name in splits:
        feats, labels, ids = [], [], []
        for clip, label, audio, rate in _level_items(corpus, clips[name], wanted, input_gain):
            n_frames = int(corpus.vertices(clip).shape[0]) if corpus.vertices_path(clip).exists() else None
            frames = talker_front_end_features(encoder, audio, rate, stage=stage, n_frames=n_frames, fps=fps)
            feats.append(pool_frames(frames, pooling))
            labels.append(label)
            ids.append(clip.identity)
        per_split[name] = (np.stack(feats), labels, ids)
    out = _probe(per_split, split, train_split, c)
    return {"accuracy": out["accuracy"], "chance": out["chance"], "ci_low": out["ci_low"], "ci_high": out["ci_high"],
            "n_clips": out["n"], "n_train_clips": out["n_train"], "n_identities": len(set(per_split[split][2])),
            "per_fold": out["per_fold"], "talker": talker_name, "preset": preset, "stage": stage,
            "pooling": pooling, "input_gain": input_gain, "levels": wanted, "train_split": train_split,
            "trained": run is not None}


def corpus_level_probe(corpus: Any, split: str | None = "test", *, train_split: str | None = None,
                       levels: Sequence[int] | None = None, input_gain: str = "as-is", n_mels: int = 40,
                       c: float = 1.0) -> dict[str, Any]:
    """The corpus side of :func:`front_end_level_probe`: the same probe on :func:`logmel_statistics` of the
    clips (unit RMS, Kaldi log-mel means and standard deviations over speech frames), no talker involved.

    Does the audio itself carry the level once loudness is normalised away? (A front-end cannot hear more.)
    Arguments as :func:`front_end_level_probe`; ``n_mels``: the filterbank's bins. Returns its keys less the
    talker's (``features`` names the statistic).
    """
    splits = [split] if train_split is None else [train_split, split]
    corpus, clips, wanted = _open_levelled(corpus, splits, levels)
    per_split = {}
    for name in splits:
        items = _level_items(corpus, clips[name], wanted, input_gain)
        per_split[name] = (np.stack([logmel_statistics(audio, rate, n_mels=n_mels) for _, _, audio, rate in items]),
                           [label for _, label, _, _ in items], [clip.identity for clip, _, _, _ in items])
    out = _probe(per_split, split, train_split, c)
    return {"accuracy": out["accuracy"], "chance": out["chance"], "ci_low": out["ci_low"], "ci_high": out["ci_high"],
            "n_clips": out["n"], "n_train_clips": out["n_train"], "n_identities": len(set(per_split[split][2])),
            "per_fold": out["per_fold"], "features": f"log-mel mean + std ({n_mels} bins)", "input_gain": input_gain,
            "levels": wanted, "train_split": train_split}


#: How :func:`level_probe_table` names each input of the probe.
#: The ``features`` text of :func:`level_probe_table`'s rows for trained encoders.
TRAINED_FEATURES = "the trained audio encoder's output"

INPUT_LABELS = {"as-is": "as the talker gets it", "equal-rms": "loudness-normalised (one RMS)",
                "gain-only": "gain-only control (normal clips at the levels' gains)"}


def front_end_description(config: Any, stage: str = "fixed", pooling: str = "correlation") -> str:
    """One line naming what :func:`talker_front_end_features` returns for an audio-encoder ``config``."""
    if stage not in STAGES:
        raise InputError(f"stage: choose {' or '.join(STAGES)}, got {stage!r}")
    if stage == "encoder":
        what = f"{config.kind} encoder output ({config.dim or 'checkpoint'} dims)"
    elif config.kind == "mel":
        what = f"log-mel, {config.n_mels} bins, normalised per utterance and bin"
    else:
        what = "wav2vec2's frozen CNN features of the normalised waveform"
    return f"{what}; {pooling} pooling"


def level_probe_table(corpus: Any, models: Sequence[str], preset: str, split: str = "test",
                      train_split: str | None = "train", *, stage: str = "fixed", pooling: str = "correlation",
                      inputs: Sequence[str] = ("equal-rms", "gain-only"), levels: Sequence[int] | None = None,
                      seed: int = 0, trained: Mapping[str, Any] | None = None,
                      trained_inputs: Sequence[str] = ("as-is", "gain-only"), corpus_row: bool = True) -> Any:
    """Can each talker's audio front-end hear the intensity level? One row per probe (a ``pandas.DataFrame``).

    Rows: the corpus' own loudness-normalised audio (:func:`corpus_level_probe`), then for every distinct
    audio front-end of ``models`` at ``preset`` (talkers whose encoder configs are equal share a row: built with
    the same ``seed`` they are the same front-end) one row per ``inputs`` (:func:`front_end_level_probe`, at
    initialisation: with ``stage="fixed"`` the part training does not change). Fitted on ``train_split``'s
    identities, scored on ``split``'s (or identity folds within ``split`` when ``train_split`` is None).
    ``trained``: ``{label: (talker name, run folder)}`` adds, for each trained run, its whole trained audio encoder
    (``stage="encoder"``, mean and std pooling) on ``trained_inputs``: what training taught the front-end to hear.
    ``corpus_row=False`` leaves out the corpus' own row (when adding trained rows to an earlier table).

    Columns: ``front_end, features, input, accuracy, chance, ci_low, ci_high, n_clips, n_train_clips,
    n_identities`` (``n_clips``, ``n_identities``: scored; ``ci_*``: 95 % bootstrap interval over identities).
    """
    import pandas as pd

    from p3d.models.talker import talker_class
    from p3d.registry import MODEL_LABELS, model_preset

    corpus, _, _ = _open_levelled(corpus, [split] if train_split is None else [train_split, split], levels)
    shared: list[tuple[Any, list[str]]] = []
    for m in models:
        config = talker_class(m).config_class.from_preset(model_preset(preset)).audio
        for known, names in shared:
            if known == config:
                names.append(m)
                break
        else:
            shared.append((config, [m]))
    keys = ("accuracy", "chance", "ci_low", "ci_high", "n_clips", "n_train_clips", "n_identities")
    rows = []
    if corpus_row:
        out = corpus_level_probe(corpus, split, train_split=train_split, levels=levels, input_gain="equal-rms")
        rows.append({"front_end": "corpus audio (no talker)", "features": out["features"] + " over speech frames",
                     "input": INPUT_LABELS["equal-rms"], **{k: out[k] for k in keys}})
    for config, names in shared:
        label = " / ".join(MODEL_LABELS.get(m, m) for m in names)
        part = "fixed part" if stage == "fixed" else "encoder at initialisation"
        for input_gain in inputs:
            out = front_end_level_probe(corpus, names[0], preset, split, train_split=train_split, stage=stage,
                                        pooling=pooling, levels=levels, input_gain=input_gain, seed=seed)
            rows.append({"front_end": f"{label}: {part} ({preset})", "features": front_end_description(config, stage, pooling),
                         "input": INPUT_LABELS[input_gain], **{k: out[k] for k in keys}})
    for label, (name, run) in (trained or {}).items():
        for input_gain in trained_inputs:
            out = front_end_level_probe(corpus, name, preset, split, train_split=train_split, run=run,
                                        stage="encoder", pooling="moments", levels=levels, input_gain=input_gain,
                                        seed=seed)
            rows.append({"front_end": label, "features": TRAINED_FEATURES + "; mean + std over frames",
                         "input": INPUT_LABELS[input_gain], **{k: out[k] for k in keys}})
    return pd.DataFrame(rows)


def level_probe_reading(table: Any) -> str:
    """A plain reading of a :func:`level_probe_table`: each row against chance, then what it means.

    A row is *above chance* when its 95 % interval's lower end exceeds the chance rate; a gain-only control is
    *at chance* when its interval holds the chance rate; a row without an interval (one test identity) is neither.
    The conclusion (for the paper's level-wise claims,
    Table 4 and Fig. 6) is drawn from the talker rows on loudness-normalised audio and their controls.
    """
    lines = []
    heard, control_ok = [], []
    trained_heard, trained_control = [], []
    for row in table.itertuples(index=False):
        above = row.ci_low > row.chance
        control = row.input == INPUT_LABELS["gain-only"]
        verdict = (("at chance, as it should be" if row.ci_low <= row.chance <= row.ci_high else
                    "away from chance: the front-end keeps gain") if control
                   else ("above chance" if above else "not distinguishable from chance"))
        if not (math.isfinite(row.ci_low) and math.isfinite(row.ci_high)):
            verdict = "no interval (fewer than two test identities), no reading"
        lines.append(f"- {row.front_end}, {row.input}: {row.accuracy:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}] "
                     f"vs chance {row.chance:.2f} ({row.n_clips} test clips): {verdict}.")
        if row.front_end.startswith("corpus"):
            continue
        if str(getattr(row, "features", "")).startswith(TRAINED_FEATURES):
            (trained_control if control else trained_heard).append(
                row.ci_low <= row.chance <= row.ci_high if control else above)
            continue
        (control_ok if control else heard).append(row.ci_low <= row.chance <= row.ci_high if control else above)
    if heard and all(heard) and all(control_ok):
        lines.append("Reading: the talkers' fixed front-end carries the level after loudness normalisation, as vocal "
                     "effort rather than gain; a flat level-wise SLCC (Table 4) or no soft/loud contrast (Fig. 6) is "
                     "then the model's own, not a deaf input's.")
    elif heard and all(heard):
        lines.append("Reading: the talkers' front-end tells the levels apart, but its gain-only control is off "
                     "chance: part of what it hears may be loudness rather than vocal effort.")
    else:
        lines.append("Reading: this probe does not show that the talkers' front-end hears the level (too few test "
                     "clips, or the level is lost in it); Table 4's level-wise SLCC and Fig. 6 then cannot tell "
                     "'the model ignores the level' from 'the model never receives it'.")
    if trained_heard:
        lines.append("Trained encoders: " + (
            "above chance with the gain-only control at chance: training taught them to hear vocal effort."
            if all(trained_heard) and all(trained_control) else
            "not every trained encoder tells the levels apart above chance with its gain-only control at chance."))
    return "\n".join(lines)


def level_probe_caption(preset: str, *, trained: bool = False) -> tuple[str, str]:
    """The title and note of notebook 07's ``level_probe`` table (:func:`level_probe_table` on synth-mead, train ->
    test identities): the probe, chance, the interval and which front-ends it reads; with ``trained``, the table
    also holds the trained audio encoders of the runs without the loss (Table 2's; Table 4's), and the note says so."""
    title = (f"Can the talkers hear the intensity level? Linear probe, synth-mead train -> test identities "
             f"(preset `{preset}`)")
    note = ("Logistic regression on standardised, identity-centred per-clip features (p3d.analysis.level_probe), "
            "fitted on the train identities' clips, scored on the test identities'. chance: the test clips' "
            "majority-level rate; ci: 95% percentile bootstrap over the test identities (a speaker's clips resampled "
            "together). Front-ends: the fixed part (no trainable weights) of each talker's audio encoder at this "
            "preset")
    if trained:
        note += ", and the trained audio encoders of the runs without the loss (Table 2; Table 4)"
    return title, note + "."
