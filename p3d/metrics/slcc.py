"""SLCC, the Speech-Lip intensity Correlation Coefficient (paper Sec. 5 Eq. (7), Sec. E.1 Eqs. (b)-(e)).

Reproduces the official ``extract_rms.py``, ``extract_lip_intensity.py`` and ``evaluate_SLCC.py``:

- :func:`speech_intensity`: RMS of the clip's samples, channels averaged first (Eq. (b) before the
  z-normalisation). The official code reads raw int16 samples; any fixed scale (int16 or float in
  [-1, 1]) gives the same SLCC, because the z-normalisation per identity removes it. Samples are
  converted to float64 first (the official code would overflow on mono int16).
- :func:`lip_intensity`: per frame, the mean over lip vertices of the displacement magnitude between
  consecutive frames; then aggregated over the T - 1 frames by RMS (``"rms"``, the official code) or
  by the mean (``"mean"``, the paper's Eq. (c)).
- :func:`slcc`: z-normalise both intensities per identity with the sample std (ddof=1, the pandas
  default), drop rows whose z-score is undefined, Pearson r (``scipy.stats.pearsonr``) (Eq. (e)).
  A z-score is undefined for an identity with a single row or with all-equal values (zero std); the
  official code gets NaN for these from pandas and drops them (except where floating-point rounding
  makes pandas' std of equal values a tiny non-zero number: here all-equal always means undefined).
  Values equal up to rounding count as equal (:data:`CONSTANT_RTOL`): their z-scores would be rounding
  noise blown up to unit variance, and would enter r as if they were intensities.
- :func:`slcc_by_level`: the official level-wise table (Table 4): z-normalise over ALL rows per
  identity, drop undefined rows, then Pearson r within each level, plus ``"all"``, the pooled r.
- :func:`slcc_delta`: Delta = |SLCC(model) - SLCC(data)| of Tables 2 and 4.
- :func:`slcc_rows_used`: which rows r is taken over (those with a defined z-score), to count them.

One row per prediction: several predictions of the same clip (one per conditioning identity) share
that clip's speech intensity. Pearson r needs at least 3 valid rows, otherwise :class:`InputError`.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from p3d.errors import InputError
from p3d.metrics._checks import (IndexLike, _asarray, as_1d_finite, as_indices, as_real_array, as_vertices,
                                check_finite, flame_lips_or, squared_norm)

MIN_ROWS = 3
#: An identity's intensities are constant (z-score undefined) when their spread, max - min, is at most this
#: fraction of their largest magnitude: 16 float32 ulps. Lip intensities are computed in the vertex dtype
#: (float32 for the datasets, :func:`p3d.io.vertex_dtype`), and one motion summed in another order differs by
#: about one ulp (measured: up to 1.2 eps32 reversing the frames or the lip list); intensities of different
#: clips differ by far more (the smoke evaluations: 9e-4 relative at the least). The price: SLCC is invariant
#: to a per-identity shift only while the shift stays below about 5e5 times the identity's spread.
CONSTANT_RTOL = 16 * float(np.finfo(np.float32).eps)
#: Rows whose z-scores (in units of their identity's std) all lie within this of each other have one z-score:
#: Pearson r over them is undefined. Rows at the same place in their identities' spreads (the louder of two
#: equally loud clips, in every identity) have mathematically equal z-scores that differ by rounding, about
#: eps64 * |x| / std (measured: up to 5e-9 for 2000 rows of an identity whose spread is 2 :data:`CONSTANT_RTOL`);
#: z-scores of different clips differ by tenths. r of such a level was r of the rounding (-0.98 for equal values).
CONSTANT_Z_ATOL = 1e-6
LIP_AGGREGATES = ("rms", "mean")


def lip_intensity(vertices: np.ndarray, lip_vertices: IndexLike | None = None, aggregate: str = "rms") -> float:
    """Lip intensity of one clip (paper Eq. (c), before z-normalisation), in input units per frame.

    ``vertices``: (T, V, 3) or (T, V*3), T >= 2; ``lip_vertices``: 1-D indices (duplicates kept: the
    FLAME list weights four vertices twice, as the official code does); None (default) is FLAME's
    official lip list, accepted on 5023-vertex FLAME meshes only.
    """
    if aggregate not in LIP_AGGREGATES:
        raise InputError(f"aggregate: expected one of {', '.join(LIP_AGGREGATES)}; got {aggregate!r}")
    v = as_vertices(vertices, "vertices")
    if v.shape[0] < 2:
        raise InputError(f"vertices: lip intensity needs at least 2 frames, got {v.shape[0]}")
    lips = v[:, as_indices(flame_lips_or(lip_vertices, v.shape[1]), v.shape[1], "lip_vertices")]
    check_finite(lips, "vertices (lip vertices)")
    step = lips[1:] - lips[:-1]  # (T-1, L, 3)
    per_frame = np.mean(np.sqrt(squared_norm(step)), axis=1)  # (T-1,)
    if aggregate == "rms":
        return float(np.sqrt(np.mean(per_frame ** 2)))
    return float(np.mean(per_frame))


def speech_intensity(audio: np.ndarray) -> float:
    """RMS of the samples of one clip; ``audio`` is (n,) or (n, channels), channels averaged first.

    Units: those of the samples (int16 PCM or floats in [-1, 1]). Unsigned integer PCM (8-bit WAV, e.g. from
    ``scipy.io.wavfile``) is centred at half its range; that offset is removed first (it is silence, not speech).
    """
    raw = _asarray(audio, "audio", "a real-valued numeric array")
    arr = as_real_array(raw, "audio")
    if raw.dtype.kind == "u":
        arr = arr - (np.iinfo(raw.dtype).max + 1) / 2
    if arr.size == 0:
        raise InputError(f"audio: no samples (shape {arr.shape})")
    if arr.ndim == 2:
        if arr.shape[1] > arr.shape[0]:
            raise InputError(f"audio: expected (n_samples, n_channels), got shape {arr.shape} "
                             f"(transpose a (channels, samples) array)")
        arr = arr.astype(np.float64).mean(axis=1)
    elif arr.ndim != 1:
        raise InputError(f"audio: expected (n_samples,) or (n_samples, n_channels), got shape {arr.shape}")
    check_finite(arr, "audio")
    x = arr.astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


def _is_missing(label: object) -> bool:
    """Whether a speaker or level label is missing: None, a NaN of any float type (numpy's float32 NaN is no
    Python float), pandas' NA (its comparisons are NA, whose truth value raises TypeError) or NaT."""
    if label is None:
        return True
    try:
        return bool(label != label)
    except TypeError:
        return True
    except ValueError:  # an array of several values: no missing label (unhashable: refused as such)
        return False


def _codes(identity: Sequence[Hashable] | np.ndarray, n: int) -> np.ndarray:
    """Integer group codes (in order of first appearance) for ``n`` identity labels. A missing label
    (:func:`_is_missing`: a row whose speaker is unknown) is an :class:`InputError`: each NaN would be a speaker
    of its own (NaN != NaN), all the None (or pandas NA) rows one speaker."""
    labels = np.asarray(identity, dtype=object)
    if labels.ndim != 1 or labels.size != n:
        raise InputError(f"identity: expected {n} labels (one per row), got shape {labels.shape}")
    missing = [i for i, x in enumerate(labels.tolist()) if _is_missing(x)]
    if missing:
        raise InputError(f"identity: {len(missing)} row(s) without a speaker label (e.g. row {missing[0]}: "
                         f"{labels[missing[0]]!r})")
    mapping: dict[Hashable, int] = {}
    try:
        return np.array([mapping.setdefault(x, len(mapping)) for x in labels.tolist()], dtype=np.int64)
    except TypeError as exc:
        raise InputError(f"identity: labels must be hashable ({exc})") from None


def zscore_by_group(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-group z-scores with the sample std (ddof=1); NaN for groups of one row or of values equal up to
    rounding (spread at most :data:`CONSTANT_RTOL` times the largest magnitude)."""
    n_groups = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty groups (codes unused) and n = 1
        mean = np.bincount(codes, weights=x, minlength=n_groups) / counts
        dev = x - mean[codes]
        std = np.sqrt(np.bincount(codes, weights=dev * dev, minlength=n_groups) / (counts - 1))
    hi = np.full(n_groups, -np.inf)
    lo = np.full(n_groups, np.inf)
    np.maximum.at(hi, codes, x)
    np.minimum.at(lo, codes, x)
    # a spread within rounding is constant: 0.1 + 0.2, 0.3, 0.3 gave the z-scores 1.15, -0.58, -0.58 (noise)
    flat = (hi - lo) <= CONSTANT_RTOL * np.maximum(np.abs(hi), np.abs(lo))
    std[(counts < 2) | flat] = np.nan
    return dev / std[codes]


def _prepare(speech: object, lip: object, identity: object) -> tuple[np.ndarray, np.ndarray]:
    s = as_1d_finite(speech, "speech_intensity")
    li = as_1d_finite(lip, "lip_intensity")
    if s.shape != li.shape:
        raise InputError(f"speech_intensity has {s.size} rows but lip_intensity has {li.size}")
    codes = _codes(identity, s.size)  # type: ignore[arg-type]
    zs = zscore_by_group(s.astype(np.float64), codes)
    zl = zscore_by_group(li.astype(np.float64), codes)
    return zs, zl


def _pearson(zs: np.ndarray, zl: np.ndarray, what: str) -> float:
    from scipy.stats import pearsonr

    if zs.size < MIN_ROWS:
        raise InputError(f"{what}: Pearson r needs at least {MIN_ROWS} rows with a defined identity-wise "
                         f"z-score, got {zs.size} (identities with one row or constant values are dropped)")
    if np.ptp(zs) <= CONSTANT_Z_ATOL or np.ptp(zl) <= CONSTANT_Z_ATOL:  # one z-score (up to rounding)
        raise InputError(f"{what}: Pearson r is undefined because one intensity is constant after "
                         f"z-normalisation")
    return float(pearsonr(zs, zl).statistic)


def slcc(speech_intensity: np.ndarray, lip_intensity: np.ndarray,
         identity: Sequence[Hashable] | np.ndarray) -> float:
    """SLCC r_SL (paper Eq. (7)): Pearson r of identity-wise z-scored speech and lip intensities.

    All three are 1-D with one entry per row (prediction). Rows with an undefined z-score are dropped.
    """
    zs, zl = _prepare(speech_intensity, lip_intensity, identity)
    ok = np.isfinite(zs) & np.isfinite(zl)
    return _pearson(zs[ok], zl[ok], "slcc")


def slcc_rows_used(speech_intensity: np.ndarray, lip_intensity: np.ndarray,
                   identity: Sequence[Hashable] | np.ndarray) -> np.ndarray:
    """(N,) bool: the rows :func:`slcc` takes its r over, for counting what an r rests on.

    Same inputs and checks as :func:`slcc`. A row is False when its identity-wise z-score is undefined (Eq. (d)):
    its identity has a single row, or speech or lip intensities equal up to rounding (:data:`CONSTANT_RTOL`);
    the official code gets NaN for these and drops them. :func:`slcc_by_level` drops the same rows.
    """
    zs, zl = _prepare(speech_intensity, lip_intensity, identity)
    return np.isfinite(zs) & np.isfinite(zl)


def slcc_by_level(speech_intensity: np.ndarray, lip_intensity: np.ndarray,
                  identity: Sequence[Hashable] | np.ndarray,
                  level: Sequence[Hashable] | np.ndarray) -> dict[Hashable, float]:
    """Level-wise SLCC as the official ``evaluate_SLCC.py`` (Table 4).

    z-scores are computed per identity over ALL rows, undefined rows dropped, then Pearson r within
    each level. Returns {level: r} for the levels in sorted order (first-appearance order if the
    labels do not sort), then ``"all"``: the pooled r over every valid row (the table's "Avg").
    A level with fewer than 3 valid rows gets NaN (its r is undefined); fewer than 3 valid rows in
    total raises :class:`InputError`. A missing label (None, NaN, pandas' NA: :func:`_is_missing`, as a
    pandas level column holds it) is a missing level: its row counts in ``"all"`` only (each NaN became a
    level of its own, NaN unequal to itself; None was a level ``None``, pandas' NA a TypeError). Boolean
    labels beside numbers are refused (True equals 1 in Python, so the two levels were merged under one key).
    """
    zs, zl = _prepare(speech_intensity, lip_intensity, identity)
    level_arr = np.asarray(level, dtype=object)
    if level_arr.ndim != 1 or level_arr.size != zs.size:
        raise InputError(f"level: expected {zs.size} labels (one per row), got shape {level_arr.shape}")
    levels = level_arr.tolist()
    ok = np.isfinite(zs) & np.isfinite(zl)
    missing = [_is_missing(x) for x in levels]
    given = [x for x, m in zip(levels, missing) if not m]
    # None (a copy: the caller's array is left alone) compares unequal to every level; pandas' NA compares as NA
    level_arr = np.where(np.array(missing, dtype=bool), None, level_arr)
    if "all" in given:
        raise InputError("level: the label 'all' is reserved for the pooled correlation")
    flags = [isinstance(x, (bool, np.bool_)) for x in given]
    if any(flags) and any(isinstance(x, (int, float, np.number)) and not b for x, b in zip(given, flags)):
        raise InputError("level: labels mix booleans and numbers (True equals 1, False 0); give levels of one kind")
    unique = list(dict.fromkeys(given))
    try:
        unique = sorted(unique)
    except TypeError:
        pass
    out: dict[Hashable, float] = {}
    for lv in unique:
        sel = ok & (level_arr == lv)
        try:
            out[lv] = _pearson(zs[sel], zl[sel], f"slcc level {lv!r}")
        except InputError:
            out[lv] = float("nan")
    out["all"] = _pearson(zs[ok], zl[ok], "slcc (all levels)")
    return out


def slcc_delta(model_r: float, data_r: float) -> float:
    """Delta of Tables 2 and 4: |SLCC(model) - SLCC(ground-truth data)|."""
    values = []
    for name, r in (("model_r", model_r), ("data_r", data_r)):
        try:
            if isinstance(r, (bool, np.bool_, str, bytes)):  # True would read as r = 1, "0.3" as 0.3
                raise TypeError
            value = float(r)
        except (TypeError, ValueError):  # None, a bool, text, an array of several correlations
            raise InputError(f"{name}: expected a correlation in [-1, 1], got {r!r}") from None
        if not np.isfinite(value) or not -1.0 <= value <= 1.0:
            raise InputError(f"{name}: expected a correlation in [-1, 1], got {r!r}")
        values.append(value)
    return abs(values[0] - values[1])
