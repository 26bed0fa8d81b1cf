"""Does a speech feature carry the intensity level? A linear probe with held-out identities.

The level-wise expressiveness claims (paper Table 4, Fig. 6: lips should open more for louder
speech) need audio features that still tell soft from loud speech once loudness is normalised away,
as the talkers' front-ends do (per-utterance log-mel normalisation, wav2vec2's waveform
normalisation). :func:`level_probe` fits a linear classifier (``sklearn`` logistic regression on
standardised features) from per-clip features to levels and scores it on identities it never saw
(leave-one-identity-out, or 5 identity folds for more than 10 identities), against the majority-class
rate. Any per-clip features plug in: :func:`logmel_statistics` (loudness-normalised log-mel means and
standard deviations) or pooled encoder features of a talker.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError


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
        ``{"accuracy", "chance" (majority-class rate), "n", "n_folds", "fold_accuracy" (list)}``.
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
    correct = 0
    fold_acc = []
    for train, test in splitter.split(x, y_codes, groups):
        if len(np.unique(y_codes[train])) < 2:
            raise InputError("level_probe: a training fold holds a single level; give every identity several levels")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(x[train], y_codes[train])
        hit = model.predict(x[test]) == y_codes[test]
        correct += int(hit.sum())
        fold_acc.append(float(hit.mean()))
    chance = float(np.bincount(y_codes).max() / len(y_codes))
    return {"accuracy": correct / len(y_codes), "chance": chance, "n": int(len(y_codes)),
            "n_folds": len(fold_acc), "fold_accuracy": fold_acc}
