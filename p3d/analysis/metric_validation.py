"""Do the metrics measure what they claim? (paper Figs. S4, S5; beyond the paper: PLRS against an oracle).

**Temporal synchronisation (Fig. S5).** :func:`shift_sequence` makes the lips lag the speech by a known
number of frames (``pred[t] = gt[t - offset]``, the first frame repeated), and :func:`mtm_offset_curve`
measures MTM (paper Algorithm 1, :func:`p3d.metrics.mtm`) of every shifted GT sequence against its
original, per offset: the mean over clips in milliseconds with a 95 % bootstrap interval over clips. A
metric of misalignment should grow with the offset, ideally with slope 1 (ms of MTM per ms of offset);
:func:`offset_slope` fits that slope with a clip bootstrap.

**Lip readability.** On the synthetic corpora the spoken visemes are known frame by frame, so a
*viseme oracle* can stand in for a lip reader: :func:`train_viseme_oracle` fits a scikit-learn
classifier on ground-truth meshes of the training split (features: the lip vertices' displacement from
the speaker's template over ``2 * context + 1`` frames, :func:`lip_features`), and
:func:`viseme_accuracy` applies it to any sequence of the same speaker. Predictions of known quality
(:func:`p3d.analysis.degradations.degradations`: timing shifts, under-articulation, jitter,
over-smoothing, wrong content, no motion) are scored by :func:`metric_rows`, and :func:`validate_plrs`
asks whether a metric ranks sequences as the oracle does: Spearman's rho between the metric (sign flipped
for LVE and MTM, so higher = better for all) and the oracle's accuracy, pooled over all sequences and
within clips, with bootstrap intervals that resample *clips* (all sequences of a clip stay together);
:func:`compare_metrics` tests whether one metric agrees better than another (paired over clips), and
:func:`validation_findings` states the findings in words. The
referee validity battery (does every referee score the GT above every degradation?) is
:mod:`p3d.analysis.referee_validity`.

The oracle is not a human judge: it reads only the lip vertices, frame labels come from the same
synthetic rig that made the meshes, and it inherits what a linear read-out of 5 frames can see. It is a
check that is independent of the PLRS evaluator (no speech, no learned speech-mesh space), nothing more.

Figures (matplotlib :class:`~matplotlib.figure.Figure` objects, no pyplot state):
:func:`plot_offset_curve` (Fig. S5) and :func:`plot_metric_scatter` (metric vs oracle).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from p3d.errors import InputError, whole_number
from p3d.metrics._checks import as_template, as_vertices, check_finite
from p3d.progress import show_progress
from p3d.stats import bootstrap_ci, cluster_bootstrap, spearman, spearman_cluster_ci

log = logging.getLogger(__name__)

#: Offsets of Fig. S5, in frames (speech leading: the lips lag).
DEFAULT_OFFSETS: tuple[int, ...] = tuple(range(11))

#: Metrics of :func:`validate_plrs` and their sign (+1: higher is better; -1: lower is better, flipped).
METRIC_SIGNS: dict[str, int] = {"plrs": 1, "lve": -1, "mtm": -1}


# -- temporal shifts and MTM (Fig. S5) ----------------------------------------------------------------------
def _offset(offset: object, name: str = "offset") -> int:
    if isinstance(offset, (bool, np.bool_)) or not isinstance(offset, (int, np.integer)):
        raise InputError(f"{name}: expected an integer number of frames, got {offset!r}")
    return int(offset)


def shift_sequence(vertices: Any, offset: int) -> np.ndarray:
    """The sequence with the lips lagging the speech by ``offset`` frames.

    ``pred[t] = gt[t - offset]`` for t >= offset and ``gt[0]`` before (the first frame repeated); the
    length is kept. A negative offset makes the lips lead (``pred[t] = gt[t + |offset|]``, the last
    frame repeated). ``vertices``: (T, V, 3) or (T, V*3); returns (T, V, 3) in the input dtype.
    """
    v = as_vertices(vertices, "vertices")
    offset = _offset(offset)
    idx = np.clip(np.arange(len(v)) - offset, 0, len(v) - 1)
    return v[idx]


def _lip_pair(topology: Any) -> tuple[int, int]:
    """(upper, lower) MTM lip vertices of a :class:`p3d.topology.Topology` or an (upper, lower) pair."""
    if isinstance(topology, (tuple, list)) and len(topology) == 2:
        return int(topology[0]), int(topology[1])
    if hasattr(topology, "mtm_upper") and hasattr(topology, "mtm_lower"):
        return int(topology.mtm_upper), int(topology.mtm_lower)
    raise InputError(f"topology: expected a Topology (mtm_upper, mtm_lower) or an (upper, lower) pair, "
                     f"got {type(topology).__name__}")


def _names(n: int, names: Sequence[str] | None, what: str = "gts") -> list[str]:
    if names is None:
        return [f"clip {k}" for k in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise InputError(f"names: {len(names)} names for {n} {what}")
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:  # the per-clip tables are keyed by name (offset_slope pivots on it)
        raise InputError(f"names: each clip needs its own name, {dup[:3]} repeat")
    return names


def _per_clip(per_clip: Any) -> Any:
    """:func:`mtm_offsets` rows, checked: the columns present and one row per (clip, offset)."""
    cols = ("clip", "offset", "mtm_frames")
    if not hasattr(per_clip, "columns") or not set(cols) <= set(per_clip.columns):
        have = list(per_clip.columns) if hasattr(per_clip, "columns") else type(per_clip).__name__
        raise InputError(f"per_clip: expected mtm_offsets rows with columns {', '.join(cols)}, got {have}")
    if per_clip.duplicated(["clip", "offset"]).any():
        raise InputError("per_clip: more than one row for a (clip, offset); give every clip its own name")
    return per_clip


def mtm_offsets(gts: Sequence[Any], offsets: Iterable[int] = DEFAULT_OFFSETS, *, topology: Any,
                names: Sequence[str] | None = None, sigma: float = 2.0) -> Any:
    """MTM of every GT sequence against itself shifted by every offset (:func:`shift_sequence`).

    Args:
        gts: (T, V, 3) GT sequences at one frame rate.
        offsets: injected lags in frames.
        topology: a Topology (its ``mtm_upper`` / ``mtm_lower`` lip vertices) or an (upper, lower) pair.
        names: clip names (default ``"clip k"``).
        sigma: MTM's Gaussian smoothing, frames.

    Returns:
        Long DataFrame, one row per (clip, offset): ``clip``, ``offset`` (frames), ``mtm_frames`` (NaN when
        no extremum matched), ``n_matches``.
    """
    import pandas as pd

    from p3d.metrics import mtm

    upper, lower = _lip_pair(topology)
    offsets = [_offset(o, "offsets") for o in offsets]
    if not offsets:
        raise InputError("offsets: expected at least one offset")
    if len(set(offsets)) != len(offsets):
        raise InputError(f"offsets: each offset once, got {offsets}")
    if len(gts) == 0:
        raise InputError("gts: expected at least one GT sequence")
    names = _names(len(gts), names)
    rows = []
    for name, gt in zip(names, gts):
        g = as_vertices(gt, f"gts[{name}]")
        for o in offsets:
            res = mtm(pred=shift_sequence(g, o), gt=g, upper=upper, lower=lower, sigma=sigma)
            rows.append({"clip": name, "offset": o,
                         "mtm_frames": np.nan if res.mean_frames is None else res.mean_frames,
                         "n_matches": res.n_matches})
    return pd.DataFrame(rows)


def _fps(fps: object) -> float:
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps: expected a positive frame rate, got {fps!r}")
    return float(fps)


def summarise_offsets(per_clip: Any, fps: float, *, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> Any:
    """Per offset: mean MTM over clips (ms) with a bootstrap CI over clips, from :func:`mtm_offsets` rows.

    Returns columns ``offset``, ``offset_ms``, ``mtm_ms``, ``ci_low``, ``ci_high`` (ms; percentile
    bootstrap of the mean, degenerate when all clips agree), ``mtm_frames``, ``n_clips`` (clips with a
    matched extremum), ``n_total``.
    """
    import pandas as pd

    ms = 1000.0 / _fps(fps)
    per_clip = _per_clip(per_clip)
    rows = []
    for o, grp in per_clip.groupby("offset", sort=True):
        vals = grp["mtm_frames"].to_numpy(dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if len(vals):
            lo, hi = bootstrap_ci(vals * ms, confidence=confidence, n_resamples=n_resamples, seed=seed,
                                  method="percentile")
            mean = float(vals.mean())
        else:
            lo = hi = mean = np.nan
        rows.append({"offset": int(o), "offset_ms": o * ms, "mtm_ms": mean * ms, "ci_low": lo, "ci_high": hi,
                     "mtm_frames": mean, "n_clips": len(vals), "n_total": len(grp)})
    return pd.DataFrame(rows)


def mtm_offset_curve(gts: Sequence[Any], offsets: Iterable[int] = DEFAULT_OFFSETS, *, fps: float, topology: Any,
                     names: Sequence[str] | None = None, sigma: float = 2.0, confidence: float = 0.95,
                     n_resamples: int = 2000, seed: int = 0) -> Any:
    """Fig. S5: mean MTM (ms) against an injected lag of the lips (speech leading), with bootstrap CIs.

    ``gts``: (T, V, 3) GT sequences at ``fps``. See :func:`mtm_offsets` and :func:`summarise_offsets`
    (this is the two in a row).
    """
    per_clip = mtm_offsets(gts, offsets, topology=topology, names=names, sigma=sigma)
    return summarise_offsets(per_clip, fps, confidence=confidence, n_resamples=n_resamples, seed=seed)


def offset_slope(per_clip: Any, fps: float, *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> dict[str, float]:
    """Least-squares slope of mean MTM (ms) on the injected offset (ms), with a clip-bootstrap interval.

    ``per_clip``: :func:`mtm_offsets` rows. Each bootstrap resample draws clips with replacement, averages
    their MTM per offset (ignoring clips without a match at that offset) and refits the line. A perfect
    detector of lag has slope 1 and intercept 0. Returns ``slope``, ``ci_low``, ``ci_high``,
    ``intercept_ms``, ``r`` (Pearson r of the mean curve), ``n_clips``.
    """
    ms = 1000.0 / _fps(fps)
    table = _per_clip(per_clip).pivot(index="clip", columns="offset", values="mtm_frames").sort_index(axis=1)
    x = table.columns.to_numpy(dtype=np.float64) * ms
    y = table.to_numpy(dtype=np.float64) * ms  # (clips, offsets)
    if len(x) < 2:
        raise InputError("per_clip: the slope needs at least two offsets")

    def fit(mat: np.ndarray) -> tuple[float, float, float]:
        with np.errstate(invalid="ignore"), _quiet():
            mean = np.nanmean(mat, axis=0)
        ok = np.isfinite(mean)
        if ok.sum() < 2:
            return np.nan, np.nan, np.nan
        slope, intercept = np.polyfit(x[ok], mean[ok], 1)
        r = float(np.corrcoef(x[ok], mean[ok])[0, 1]) if np.ptp(mean[ok]) > 0 else np.nan
        return float(slope), float(intercept), r

    slope, intercept, r = fit(y)
    # percentile interval of the defined resamples, however few (NaN when none is)
    _, lo, hi = cluster_bootstrap(lambda idx: fit(y[idx])[0], len(y), confidence=confidence,
                                  n_resamples=n_resamples, seed=seed, min_defined=0.0, min_count=1)
    return {"slope": slope, "ci_low": _nan_if_none(lo), "ci_high": _nan_if_none(hi), "intercept_ms": intercept,
            "r": r, "n_clips": int(len(y))}


def _nan_if_none(x: float | None) -> float:
    return float("nan") if x is None else float(x)


class _quiet:
    """Silence numpy's "mean of empty slice" warnings (an offset with no matched clip is NaN, by design)."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


# -- the viseme oracle ---------------------------------------------------------------------------------------
def lip_features(vertices: Any, template: Any, lips: Any, context: int = 2) -> np.ndarray:
    """Per-frame lip features: displacement of the ``lips`` vertices from ``template``, in mm, over a window
    of ``2 * context + 1`` frames centred on the frame (edge frames repeated).

    ``vertices``: (T, V, 3) or (T, V*3) in metres; ``template``: (V, 3). Returns (T, (2 context + 1) * L * 3)
    float32, frames ordered t - context .. t + context.
    """
    v = as_vertices(vertices, "vertices")
    tpl = as_template(template, v.shape[1])
    lips = np.asarray(lips)
    if lips.ndim != 1 or lips.size == 0 or lips.dtype.kind not in "iu" or lips.min() < 0 or lips.max() >= v.shape[1]:
        raise InputError(f"lips: expected 1-D vertex indices in [0, {v.shape[1]}), got {lips!r:.80}")
    context = _offset(context, "context")
    if context < 0:
        raise InputError(f"context: expected >= 0 frames, got {context}")
    d = (v[:, lips, :].astype(np.float64) - tpl[lips][None]) * 1000.0
    check_finite(d, "vertices (lip vertices)")
    d = d.reshape(len(v), -1)
    idx = np.clip(np.arange(len(v))[:, None] + np.arange(-context, context + 1)[None], 0, len(v) - 1)
    return d[idx].reshape(len(v), -1).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class VisemeOracle:
    """A classifier of the frame's viseme from lip motion (:func:`lip_features`); fitted on GT meshes."""

    model: Any
    """scikit-learn pipeline (PCA, standardise, multinomial logistic regression)."""
    lips: np.ndarray
    """Lip vertex indices the features read."""
    context: int
    """Frames of context on each side."""
    visemes: tuple[str, ...]
    """Viseme names; label ids index this."""
    n_vertices: int
    train_accuracy: float
    """Accuracy on its own training frames (all visemes)."""
    n_train_frames: int

    def predict(self, vertices: Any, template: Any) -> np.ndarray:
        """(T,) predicted viseme ids of a (T, V, 3) sequence of the speaker with ``template``."""
        v = as_vertices(vertices, "vertices")
        if v.shape[1] != self.n_vertices:
            raise InputError(f"vertices: {v.shape[1]} vertices per frame, the oracle was fitted on {self.n_vertices}")
        return self.model.predict(lip_features(v, template, self.lips, self.context)).astype(np.int64)


def _viseme_labels(labels: Any, n_visemes: int, name: str) -> np.ndarray:
    if isinstance(labels, Mapping):
        if "viseme" not in labels:
            raise InputError(f"{name}: a labels dict without a 'viseme' entry (keys {sorted(labels)})")
        labels = labels["viseme"]
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise InputError(f"{name}: expected (T,) integer viseme ids, got shape {lab.shape}, dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_visemes):
        raise InputError(f"{name}: viseme ids must lie in [0, {n_visemes}), found [{lab.min()}, {lab.max()}]")
    return lab.astype(np.int64)


def train_viseme_oracle(corpus: Any, split: str = "train", *, context: int = 2, n_components: int = 24,
                        C: float = 1.0, max_frames: int | None = 40000, seed: int = 0,
                        progress: bool = False) -> VisemeOracle:
    """Fit the viseme oracle on the GT meshes of ``split`` of a corpus with frame labels.

    Frames at the model frame rate; features :func:`lip_features` of the topology's ``lips`` region
    against each speaker's template; labels ``labels(clip)["viseme"]``. Model: PCA of the raw features
    (mm) to ``n_components`` -> standardise -> multinomial logistic regression (``C``), fitted on all
    frames (silence included). PCA comes *before* standardising on purpose: standardised lip coordinates
    would give the barely moving vertices the same weight as the moving ones, and the read-out would
    then collapse under small vertex noise (measured at cpu: GT accuracy similar, accuracy under
    ``jitter_0.5`` 0.04 instead of 0.48). At most ``max_frames`` frames, drawn at random with ``seed``
    (None: all).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tqdm.auto import tqdm

    from p3d.corpus import Corpus

    corpus = corpus if isinstance(corpus, Corpus) else Corpus.open(corpus)
    visemes = tuple(corpus.meta.get("visemes") or ())
    if not visemes:
        raise InputError(f"{corpus.root}: meta.json lists no visemes (the oracle needs a synthetic corpus)")
    lips = np.asarray(corpus.topology.regions.get("lips", ()), dtype=np.int64)
    if lips.size == 0:
        raise InputError(f"{corpus.root}: topology {corpus.topology.name!r} has no 'lips' region")
    clips = corpus.select(split)
    feats, labs = [], []
    for clip in tqdm(clips, desc=f"oracle features ({split})", disable=not show_progress(progress)):
        v = corpus.vertices(clip)
        lab = _viseme_labels(corpus.labels(clip), len(visemes), f"labels of {clip.stem}")
        if len(lab) != len(v):
            raise InputError(f"{clip.stem}: {len(lab)} frame labels for {len(v)} frames")
        feats.append(lip_features(v, corpus.templates[clip.identity], lips, context))
        labs.append(lab)
    x, y = np.concatenate(feats), np.concatenate(labs)
    if max_frames is not None and len(y) > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), int(max_frames), replace=False))
        x, y = x[keep], y[keep]
    if len(np.unique(y)) < 2:
        raise InputError(f"{corpus.root} ({split}): fewer than two visemes among the labels; nothing to classify")
    n_comp = int(min(n_components, x.shape[1], len(y) - 1))
    model = make_pipeline(PCA(n_components=n_comp, random_state=seed), StandardScaler(),
                          LogisticRegression(C=C, max_iter=1000))
    model.fit(x, y)
    acc = float(np.mean(model.predict(x) == y))
    log.info("viseme oracle: %d frames, %d classes, train accuracy %.3f", len(y), len(np.unique(y)), acc)
    return VisemeOracle(model=model, lips=lips, context=context, visemes=visemes, n_vertices=corpus.topology.n_vertices,
                        train_accuracy=acc, n_train_frames=int(len(y)))


def _scored(oracle: VisemeOracle, labels: np.ndarray, exclude: Sequence[str]) -> np.ndarray:
    bad = [e for e in exclude if e not in oracle.visemes]
    if bad:
        raise InputError(f"exclude: {bad} are not visemes of the oracle ({', '.join(oracle.visemes)})")
    skip = [oracle.visemes.index(e) for e in exclude]
    return ~np.isin(labels, skip)


def viseme_accuracy(oracle: VisemeOracle, vertices: Any, labels: Any, template: Any, *,
                    exclude: Sequence[str] = ("sil",)) -> float:
    """Share of frames whose viseme the oracle reads correctly from ``vertices``.

    ``labels``: (T,) viseme ids of the *spoken* visemes (or a corpus labels dict), as long as
    ``vertices`` (T, V, 3). Frames labelled with a viseme in ``exclude`` (default silence, where any
    closed mouth is right) are not scored. NaN if no frame is scored.
    """
    v = as_vertices(vertices, "vertices")
    lab = _viseme_labels(labels, len(oracle.visemes), "labels")
    if len(lab) != len(v):
        raise InputError(f"labels: {len(lab)} frame labels for {len(v)} frames (they must be aligned)")
    mask = _scored(oracle, lab, exclude)
    if not mask.any():
        return float("nan")
    return float(np.mean(oracle.predict(v, template)[mask] == lab[mask]))


def majority_rate(oracle: VisemeOracle, labels: Sequence[Any], *, exclude: Sequence[str] = ("sil",)) -> float:
    """Chance level of :func:`viseme_accuracy`: the share of the most frequent scored viseme in ``labels``
    (a list of (T,) id arrays, pooled)."""
    lab = np.concatenate([_viseme_labels(x, len(oracle.visemes), "labels") for x in labels])
    lab = lab[_scored(oracle, lab, exclude)]
    if not lab.size:
        return float("nan")
    return float(np.bincount(lab).max() / lab.size)


# -- rank agreement with the oracle (Spearman's rho, p3d.stats) ------------------------------------------------
def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho; NaN for fewer than 3 pairs or a constant input."""
    return spearman(x, y, min_pairs=3)


def check_sign(sign: object, name: str) -> int:
    """``sign`` as +1 or -1 (a metric's orientation: +1 higher is better); InputError for anything else, a boolean or
    a fraction included (``True`` compared equal to 1 and passed; 0.5 scaled instead of orienting)."""
    if whole_number(sign) not in (1, -1):
        raise InputError(f"{name}: sign must be +1 or -1, got {sign!r}")
    return int(sign)


def validate_plrs(rows: Any, *, oracle: str = "oracle_accuracy", clip: str = "clip",
                  metrics: Mapping[str, int] | None = None, confidence: float = 0.95, n_resamples: int = 2000,
                  seed: int = 0) -> Any:
    """Spearman rank correlation of each metric with the oracle's accuracy, with clip-bootstrap CIs.

    Args:
        rows: one row per sequence, with a ``clip`` column (the GT clip it was made from), the oracle
            accuracy column and the metric columns (e.g. ``plrs``, ``lve``, ``mtm``).
        metrics: ``{column: sign}``; default :data:`METRIC_SIGNS` restricted to the columns present. The
            metric is multiplied by its sign first, so rho > 0 means "agrees with the oracle".
        n_resamples, confidence, seed: percentile bootstrap over clips.

    Two scopes per metric:

    - ``pooled``: rho over all sequences with finite values. Resamples draw clips with replacement and
      take all their sequences.
    - ``within clip``: rho over the sequences of each clip (how well the metric ranks versions of the same
      sentence; clip-level differences such as sentence content cancel), averaged over clips with a
      defined rho; resamples draw clips.

    Returns columns ``metric``, ``scope``, ``rho``, ``ci_low``, ``ci_high``, ``n_sequences``, ``n_clips``.
    """
    import pandas as pd

    for col in (clip, oracle):
        if col not in rows:
            raise InputError(f"rows: no {col!r} column (have {list(rows.columns)})")
    if metrics is None:
        metrics = {m: s for m, s in METRIC_SIGNS.items() if m in rows}
    if not metrics:
        raise InputError(f"rows: none of the metric columns {list(METRIC_SIGNS)} (have {list(rows.columns)})")
    rng_seed = np.random.SeedSequence(seed)
    out = []
    for metric, sign in metrics.items():
        if metric not in rows:
            raise InputError(f"rows: no {metric!r} column")
        sign = check_sign(sign, f"metrics[{metric!r}]")
        sub = rows[[clip, oracle, metric]].astype({oracle: float, metric: float})
        sub = sub[np.isfinite(sub[oracle]) & np.isfinite(sub[metric])]
        draws = rng_seed.spawn(1)[0]  # one seed per metric: both scopes see the same clip draws
        for scope, name in (("pooled", "pooled"), ("within", "within clip")):
            est = spearman_cluster_ci(sign * sub[metric].to_numpy(), sub[oracle].to_numpy(), sub[clip].to_numpy(),
                                      scope=scope, confidence=confidence, n_resamples=n_resamples, seed=draws)
            out.append({"metric": metric, "scope": name, "rho": est.value, "ci_low": _nan_if_none(est.low),
                        "ci_high": _nan_if_none(est.high), "n_sequences": len(sub), "n_clips": est.n_clusters})
    return pd.DataFrame(out)


def compare_metrics(rows: Any, a: str = "plrs", b: str = "lve", *, scope: str = "within clip",
                    oracle: str = "oracle_accuracy", clip: str = "clip", signs: Mapping[str, int] | None = None,
                    confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Does metric ``a`` agree with the oracle better than metric ``b``? rho(a) - rho(b), paired clip bootstrap.

    Both rhos are computed as in :func:`validate_plrs` (``scope`` ``"pooled"`` or ``"within clip"``) on the
    rows where the oracle, ``a`` and ``b`` are all finite, and every resample draws the same clips for
    both. Returns ``rho_a``, ``rho_b``, ``difference``, ``ci_low``, ``ci_high``, ``n_sequences``, ``n_clips``.
    """
    signs = {m: check_sign(s, f"signs[{m!r}]") for m, s in {**METRIC_SIGNS, **(signs or {})}.items()}
    for col in (clip, oracle, a, b):
        if col not in rows:
            raise InputError(f"rows: no {col!r} column (have {list(rows.columns)})")
    if scope not in ("pooled", "within clip"):
        raise InputError(f"scope: expected 'pooled' or 'within clip', got {scope!r}")
    sub = rows[[clip, oracle, a, b]].astype({oracle: float, a: float, b: float})
    sub = sub[np.isfinite(sub[[oracle, a, b]]).all(axis=1)]
    groups = [(signs.get(a, 1) * g[a].to_numpy(), signs.get(b, 1) * g[b].to_numpy(), g[oracle].to_numpy())
              for _, g in sub.groupby(clip, sort=True)]
    if len(groups) < 2:
        raise InputError(f"rows: {len(groups)} clip(s) with finite {a}, {b} and {oracle}; need at least 2")
    per_clip = np.array([[_spearman(x, o), _spearman(y, o)] for x, y, o in groups])

    def stat(idx: np.ndarray) -> tuple[float, float]:
        if scope == "within clip":
            vals = per_clip[idx]
            vals = vals[np.isfinite(vals).all(axis=1)]
            return tuple(vals.mean(axis=0)) if len(vals) else (np.nan, np.nan)
        o = np.concatenate([groups[i][2] for i in idx])
        return (_spearman(np.concatenate([groups[i][0] for i in idx]), o),
                _spearman(np.concatenate([groups[i][1] for i in idx]), o))

    rho_a, rho_b = stat(np.arange(len(groups)))
    # paired: every resample draws the same clips for both metrics; interval of the defined resamples
    _, lo, hi = cluster_bootstrap(lambda idx: float(np.subtract(*stat(idx))), len(groups), confidence=confidence,
                                  n_resamples=n_resamples, seed=seed, min_defined=0.0, min_count=1)
    return {"rho_a": float(rho_a), "rho_b": float(rho_b), "difference": float(rho_a - rho_b),
            "ci_low": _nan_if_none(lo), "ci_high": _nan_if_none(hi), "n_sequences": int(len(sub)), "n_clips": len(groups)}


def metric_rows(clips: Sequence[Any], sequences: Callable[[Any], Mapping[str, np.ndarray]], *,
                corpus: Any, oracle: VisemeOracle | None, plrs_model: Any | None = None, calibrated: bool = False,
                progress: bool = False) -> Any:
    """Score every (clip, sequence) pair with PLRS, LVE, MTM and the oracle: the input of :func:`validate_plrs`.

    Args:
        clips: GT clips of ``corpus`` (:class:`p3d.corpus.Clip`).
        sequences: ``clip -> {name: (T, V, 3) prediction at the model frame rate}``, e.g.
            ``lambda c: degradations(corpus.vertices(c), template, rng)``
            (:func:`p3d.analysis.degradations.degradations`).
        corpus: the corpus (GT vertices, audio, viseme labels, templates, topology).
        oracle: from :func:`train_viseme_oracle`; None leaves ``oracle_accuracy`` out.
        plrs_model: the PLRS evaluator (``encode_speech`` / ``encode_mesh``); None leaves ``plrs`` out.
        calibrated: also score the hubness-corrected companions of PLRS (:func:`p3d.metrics.plrs.plrs_scores`):
            columns ``plrs_calibrated`` (PLRS-c), ``plrs_mrr``, ``plrs_r1`` and ``plrs_mrr_chance``. The
            background bank of a clip is the speech of all *other* ``clips`` (:func:`~p3d.metrics.plrs.
            background_windows`), so at least two clips are needed. ``plrs`` is unchanged.

    Each clip's speech side is encoded once and shared by all its sequences (``speech_bank=`` of
    :func:`p3d.metrics.plrs_from_features`: the same windows, equal up to float32 rounding of the batch shape).

    Returns:
        One row per sequence: ``clip``, ``identity``, ``sequence``, ``n_frames``, ``oracle_accuracy``,
        ``plrs``, ``lve`` (CodeTalker's max-squared lip error in mm^2), ``mtm`` (ms; NaN when no extremum
        matched, e.g. a motionless mouth), ``mtm_matches`` and ``lip_amplitude`` (:func:`p3d.metrics.lip_amplitude`,
        corpus length units: the input of PLRS-e's enrolment) (and the calibrated columns when asked).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from p3d.audio import speech_windows
    from p3d.metrics import lip_amplitude, lve, mtm

    fps = corpus.model_fps
    lips = corpus.topology.regions["lips"]
    upper, lower = _lip_pair(corpus.topology)
    calibrated = bool(calibrated) and plrs_model is not None
    banks: dict[str, np.ndarray] = {}
    if calibrated:
        from p3d.metrics.plrs import SpeechBackground, speech_banks

        if len(clips) < 2:
            raise InputError("calibrated: the background bank is the other clips' speech; score at least two clips")
        banks = speech_banks({clip.stem: speech_windows(*corpus.speech_audio(clip), fps) for clip in clips}, plrs_model)
    backgrounds = SpeechBackground(banks) if calibrated else None  # stacked and normalised once for every clip
    rows = []
    for clip in tqdm(clips, desc="scoring sequences", disable=not show_progress(progress)):
        gt = corpus.vertices(clip).astype(np.float64)
        template = corpus.templates[clip.identity]
        labels = corpus.labels(clip)["viseme"] if oracle is not None else None
        windows = own = None
        if plrs_model is not None:
            windows = speech_windows(*corpus.speech_audio(clip), fps)  # the official front-end, as p3d eval
            # the clip's speech side, encoded once for all its sequences (the calibrated banks hold it already)
            own = _clip_speech(banks, clip.stem, windows, plrs_model)
        bank = backgrounds.excluding(clip.stem) if backgrounds is not None else None
        for name, seq in sequences(clip).items():
            seq = as_vertices(seq, f"sequence {name!r} of {clip.stem}")
            if len(seq) != len(gt):
                raise InputError(f"sequence {name!r} of {clip.stem}: {len(seq)} frames, the GT has {len(gt)}")
            res = mtm(pred=seq, gt=gt, upper=upper, lower=lower)
            row = {"clip": clip.stem, "identity": clip.identity, "sequence": name, "n_frames": len(seq)}
            if oracle is not None:
                row["oracle_accuracy"] = viseme_accuracy(oracle, seq, labels, template)
            row.update({"lve": lve(seq * 1000.0, gt * 1000.0, lips),
                        "mtm": np.nan if res.mean_frames is None else res.ms(fps), "mtm_matches": res.n_matches,
                        "lip_amplitude": lip_amplitude(seq, lips, template)})
            if windows is not None and calibrated:
                from p3d.metrics.plrs import plrs_scores

                sc = plrs_scores(windows, seq, plrs_model, bank, speech_bank=own)
                row.update(plrs=sc.official, plrs_calibrated=sc.calibrated, plrs_mrr=sc.mrr, plrs_r1=sc.recall_at_1,
                           plrs_mrr_chance=sc.mrr_chance)
            elif windows is not None:
                from p3d.metrics import plrs_from_features

                row["plrs"] = plrs_from_features(windows, seq, plrs_model, speech_bank=own)
            rows.append(row)
    return pd.DataFrame(rows)


def _clip_speech(banks: Mapping[str, np.ndarray], clip: str, windows: np.ndarray, model: Any) -> np.ndarray | None:
    """A clip's speech embeddings of its PLRS windows (every 5th speech window), for ``speech_bank=``: from the
    calibrated scores' banks when they hold the clip, else encoded here. (None would encode it per sequence.)"""
    from p3d.metrics.plrs import background_windows, speech_bank

    return banks[clip] if clip in banks else speech_bank(background_windows(windows), model)


def oracle_accuracy_by_split(oracle: VisemeOracle, corpus: Any, splits: Sequence[str] = ("train", "test"), *,
                             exclude: Sequence[str] = ("sil",), confidence: float = 0.95, n_resamples: int = 2000,
                             seed: int = 0) -> Any:
    """The viseme oracle's accuracy on the GT of each split: mean over clips, bootstrap CI over clips, chance.

    The oracle is fitted on ``"train"`` GT (its speakers are seen; in-sample frames), so ``"train"`` is an
    upper reference and the held-out speakers' splits (``"val"``, ``"test"``) measure what it reads on new
    faces. Returns ``split``, ``speakers``, ``n_clips``, ``accuracy``, ``ci_low``, ``ci_high``, ``chance``
    (majority scored viseme of the split).
    """
    import pandas as pd

    rows = []
    for split in splits:
        clips = corpus.select(split)
        if not clips:
            raise InputError(f"{corpus.root}: split {split!r} has no clips")
        labels = [corpus.labels(c)["viseme"] for c in clips]
        acc = np.array([viseme_accuracy(oracle, corpus.vertices(c), lab, corpus.templates[c.identity], exclude=exclude)
                        for c, lab in zip(clips, labels)])
        acc = acc[np.isfinite(acc)]
        lo = hi = np.nan
        if acc.size:
            lo, hi = bootstrap_ci(acc, confidence=confidence, n_resamples=n_resamples, seed=seed, method="percentile")
        rows.append({"split": split, "speakers": len({c.identity for c in clips}), "n_clips": int(acc.size),
                     "accuracy": float(acc.mean()) if acc.size else np.nan, "ci_low": lo, "ci_high": hi,
                     "chance": majority_rate(oracle, labels, exclude=exclude)})
    return pd.DataFrame(rows)


def oracle_summary(oracle: VisemeOracle, corpus: Any, split: str = "test", *, exclude: Sequence[str] = ("sil",),
                   confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Any:
    """The one-row table of the viseme oracle on the held-out speakers' GT that :func:`validation_findings` reads:
    ``train frames`` and ``train accuracy (all frames)`` (its fit), ``test GT accuracy (mean over clips)`` with its
    percentile-bootstrap ``CI low`` / ``CI high`` over clips, ``chance (majority viseme)`` and ``test clips`` (the
    clips with a scored frame), all of ``split`` as :func:`oracle_accuracy_by_split` computes them."""
    import pandas as pd

    r = oracle_accuracy_by_split(oracle, corpus, (split,), exclude=exclude, confidence=confidence,
                                 n_resamples=n_resamples, seed=seed).iloc[0]
    return pd.DataFrame([{"train frames": oracle.n_train_frames, "train accuracy (all frames)": oracle.train_accuracy,
                          "test GT accuracy (mean over clips)": r["accuracy"], "CI low": r["ci_low"],
                          "CI high": r["ci_high"], "chance (majority viseme)": r["chance"],
                          "test clips": int(r["n_clips"])}])


def find_talker_predictions(talkers: Any, clips: Sequence[str], *, corpus: str = "synth-voca", split: str = "test",
                            condition: str | None = None, runs: Iterable[str] | None = None
                            ) -> dict[str, dict[str, Any]]:
    """Trained talkers' predictions of ``clips``, if any: ``{run name: {clip stem: path}}``.

    ``talkers``: ``runs/<preset>/talkers`` (:mod:`p3d.experiments` layout: ``<run>/pred_<corpus>_<split>/``, or
    ``pred_<corpus>_<split>_c<k>/`` when each clip was predicted under k training identities,
    ``<clip>_condition_<identity>.npy``; the every-identity folder is preferred). Per clip, one speaking-style
    condition: ``condition``, or the first (sorted) one found for that clip. Only runs with a prediction of
    *every* clip are returned (a run still being predicted is skipped); runs are in name order. ``runs``: only
    these run folders (None: every folder found, whatever trained it; a preset's planned runs, each in its own
    prediction folder, are :func:`talker_predictions` of :func:`p3d.experiments.metric_validation_talkers`). A
    missing folder gives ``{}``.
    """
    from pathlib import Path

    root = Path(talkers)
    if not root.is_dir():
        return {}
    clips = _clip_stems(clips)
    wanted = None if runs is None else {str(r) for r in runs}
    out: dict[str, dict[str, Any]] = {}
    for run in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        if wanted is not None and run.name not in wanted:
            continue
        folders = [run / f"pred_{corpus}_{split}", *sorted(run.glob(f"pred_{corpus}_{split}_c*"))]
        for pred in folders:
            paths = _clip_predictions(pred, clips, condition)
            if paths is not None:
                out[run.name] = paths
                break
    return out


def talker_predictions(folders: Mapping[str, Any], clips: Sequence[str], *, condition: str | None = None
                       ) -> dict[str, dict[str, Any]]:
    """The predictions of ``clips`` in named prediction folders: ``{run name: {clip stem: path}}``.

    ``folders``: ``{run name: its prediction folder}`` (``<clip>_condition_<identity>.npy``, e.g.
    :meth:`p3d.experiments.RunLayout.predictions` of each planned run). Per clip, ``condition`` or the first
    (sorted) condition found; only folders with a prediction of *every* clip are returned (a missing folder or a
    run still being predicted is skipped), in name order.
    """
    from pathlib import Path

    clips = _clip_stems(clips)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(folders):
        paths = _clip_predictions(Path(folders[name]), clips, condition)
        if paths is not None:
            out[str(name)] = paths
    return out


def _clip_stems(clips: Sequence[str]) -> list[str]:
    clips = [str(c) for c in clips]
    if not clips:
        raise InputError("clips: expected at least one clip stem")
    return clips


def _clip_predictions(pred: Any, clips: Sequence[str], condition: str | None) -> dict[str, Any] | None:
    """``{clip: prediction file}`` of the folder ``pred`` when it holds one of every clip, else None."""
    if not pred.is_dir():
        return None
    paths = {}
    for c in clips:
        found = [pred / f"{c}_condition_{condition}.npy"] if condition is not None else \
            sorted(pred.glob(f"{c}_condition_*.npy"))
        if found and found[0].is_file():
            paths[c] = found[0]
    return paths if len(paths) == len(clips) else None


def metric_means(rows: Any) -> Any:
    """Notebook 08's ``metric_validation_by_sequence``: the mean of ``oracle_accuracy``, ``plrs``, ``lve`` and ``mtm``
    per sequence of :func:`metric_rows` over its clips (NaN left out: MTM of a clip without a matched extremum),
    sorted by the oracle's accuracy, best first (ties in the rows' order); one row per sequence."""
    return (rows.groupby("sequence", sort=False)[["oracle_accuracy", "plrs", "lve", "mtm"]].mean()
            .sort_values("oracle_accuracy", ascending=False, kind="stable").reset_index())


#: The arms (model, critic) whose trained talkers Figs. S4 and S8 draw first, in this order: the baselines without
#: the perceptual loss, the "existing models" of the paper's Fig. S8 (FaceFormer, then CodeTalker).
FIGURE_TALKERS: tuple[tuple[str, str], ...] = (("faceformer", "none"), ("codetalker", "none"))


def figure_talkers(names: Iterable[str], prefer: Sequence[tuple[str, str]] = FIGURE_TALKERS) -> list[str]:
    """The trained talkers the qualitative figures draw, in order (Fig. S4 the first, Fig. S8 the first two):
    one run per arm, so that no arm fills two places with its seeds. ``names``: run names
    (:func:`find_talker_predictions`' keys; a run of :mod:`p3d.experiments` is named ``<model>_<critic>_..._seed<N>``,
    :attr:`p3d.experiments.TalkerExperiment.name`).

    First one run of each arm of ``prefer`` (``(model, critic)``, every run whose name begins ``<model>_<critic>_``),
    in ``prefer``'s order; then one run of each other arm (:func:`p3d.experiments.spec.arm_name`: the run name
    without its seeds), the arms in name order. An arm's run is its lowest talker seed (a name without
    ``_seed<N>`` counts as seed 0), ties in name order. Empty without runs."""
    import re

    from p3d.experiments.spec import arm_name

    prefixes = [f"{model}_{critic}_" for model, critic in prefer]

    def seed(name: str) -> int:
        m = re.search(r"_seed(\d+)$", name)
        return int(m.group(1)) if m else 0

    first: dict[tuple[int, str], str] = {}
    for name in sorted(set(names), key=lambda n: (seed(n), n)):
        i = next((i for i, p in enumerate(prefixes) if name.startswith(p)), len(prefixes))
        first.setdefault((i, arm_name(name) if i == len(prefixes) else ""), name)
    return [first[k] for k in sorted(first)]


# -- findings ------------------------------------------------------------------------------------------------
def _verdict_word(row: Any) -> str:
    return "agrees" if row["ci_low"] > 0 else ("disagrees" if row["ci_high"] < 0 else "inconclusive")


def validation_findings(*, curve: Any, slope: Mapping[str, float], oracle: Any, stats: Any, rows: Any,
                        validity: Any, verdicts: Any, n_resamples: int = 2000, seed: int = 0) -> Any:
    """The metric-validation findings in words, one per line, from the tables the analysis writes.

    ``curve`` and ``slope``: :func:`summarise_offsets` and :func:`offset_slope` (Fig. S5); ``oracle``: the
    one-row table of the viseme oracle on held-out GT (columns ``test GT accuracy (mean over clips)``,
    ``CI low``, ``CI high``, ``chance (majority viseme)``); ``stats``: :func:`validate_plrs`; ``rows``:
    :func:`metric_rows` (PLRS minus LVE is recomputed from them, :func:`compare_metrics` with ``n_resamples``
    and ``seed``); ``validity`` and ``verdicts``: :func:`p3d.analysis.referee_validity.referee_differences`
    and ``referee_validity`` (``failing`` a list or its comma-joined string). Each argument may be read back
    from its CSV: the lines are the same. Returns a one-column DataFrame ``finding``.
    """
    import pandas as pd

    from p3d import paper

    s = stats.set_index(["metric", "scope"])

    def fmt(metric: str, scope: str) -> str:
        r = s.loc[(metric, scope)]
        return f"{r['rho']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    o = oracle.iloc[0]
    last = curve.loc[curve["offset"].idxmax()]  # the largest injected offset (10 frames in Fig. S5)
    lines = [
        f"MTM vs injected offset: slope {slope['slope']:.2f} [{slope['ci_low']:.2f}, {slope['ci_high']:.2f}] ms per ms "
        f"over {int(curve['offset'].min())}-{int(last['offset'])} frames; MTM at {int(last['offset'])} frames "
        f"{last['mtm_ms']:.0f} ms (offset {last['offset_ms']:.0f} ms).",
        f"Oracle on held-out GT: {o['test GT accuracy (mean over clips)']:.2f} [{o['CI low']:.2f}, {o['CI high']:.2f}] "
        f"vs chance {o['chance (majority viseme)']:.2f}.",
    ]
    for metric in [m for m in ("plrs", "lve", "mtm") if m in rows]:
        lines.append(f"{metric.upper()} vs oracle: pooled rho {fmt(metric, 'pooled')} "
                     f"({_verdict_word(s.loc[(metric, 'pooled')])}), within clip {fmt(metric, 'within clip')} "
                     f"({_verdict_word(s.loc[(metric, 'within clip')])}).")
    if "plrs" in rows and "lve" in rows:
        for scope in ("within clip", "pooled"):
            d = compare_metrics(rows, "plrs", "lve", scope=scope, n_resamples=n_resamples, seed=seed)
            lines.append(f"PLRS minus LVE, rho with the oracle ({scope}, same rows, paired clip bootstrap): "
                         f"{d['difference']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}].")
        rho = paper.TABLE_S3.rho
        lines.append(f"For reference, the paper's Table S3 (people, not an oracle): Spearman {rho['plrs']} "
                     f"for PLRS vs {rho['lve']} for LVE (the paper's numbers).")
    v = validity.set_index(["variant", "degradation"])
    ok = verdicts.set_index("variant")
    for variant in ("official", "calibrated", "partial", "enrolled", "retrieval_mrr", "oracle"):
        if (variant, "amp_0.5") not in v.index or variant not in ok.index:
            continue
        r, failing = v.loc[(variant, "amp_0.5")], ok.loc[variant, "failing"]
        failing = failing if isinstance(failing, str) else ", ".join(failing)
        lines.append(f"Battery, {variant}: damped to 50 % minus GT {r['mean_minus_gt']:+.3f} [{r['ci_low']:+.3f}, "
                     f"{r['ci_high']:+.3f}] (< 0: GT better); " + ("valid (GT above every degradation)."
                     if bool(ok.loc[variant, "valid"]) else f"not valid, fails {failing}."))
    return pd.DataFrame({"finding": lines})


# -- figures ---------------------------------------------------------------------------------------------------
def plot_offset_curve(curve: Any, *, slope: Mapping[str, float] | None = None, title: str | None = None) -> Any:
    """Fig. S5: mean MTM (ms) with its CI band against the injected offset (frames below, ms on top), and
    the identity line (MTM = offset) for reference."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    x, y = curve["offset"].to_numpy(), curve["mtm_ms"].to_numpy()
    # ms per frame (Fig. S5's axes) from any non-zero offset: the last one is 0 when the lips lead
    moved = curve["offset"] != 0
    ms = float(curve["offset_ms"][moved].iloc[0] / curve["offset"][moved].iloc[0]) if moved.any() else 1.0
    ax.fill_between(x, curve["ci_low"], curve["ci_high"], color="tab:blue", alpha=0.25, label="95% CI (clips)")
    ax.plot(x, y, "o-", color="tab:blue", label="mean MTM over clips")
    ax.plot(x, x * ms, "--", color="0.5", label="MTM = offset")
    ax.set_xlabel("injected offset (frames; speech leading)")
    ax.set_ylabel("MTM (ms)")
    top = ax.secondary_xaxis("top", functions=(lambda f: f * ms, lambda t: t / ms))
    top.set_xlabel("offset (ms)")
    if title is None:
        title = "MTM vs injected offset"
        if slope is not None:
            title += f": slope {slope['slope']:.2f} [{slope['ci_low']:.2f}, {slope['ci_high']:.2f}]"
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return fig


#: Most legend rows per column in :func:`plot_metric_scatter` (what fits its 4-inch height at the small font size).
LEGEND_ROWS = 14


def plot_metric_scatter(rows: Any, *, oracle: str = "oracle_accuracy", metrics: Sequence[str] | None = None,
                        hue: str = "sequence", stats: Any | None = None, labels: Mapping[str, str] | None = None) -> Any:
    """One panel per metric: the metric (y) against the oracle's accuracy (x), one point per sequence,
    coloured by ``hue`` (the degradation, or :func:`p3d.analysis.degradations.sequence_group`); the title carries
    rho and its CI from ``stats`` (:func:`validate_plrs`, pooled scope) when given. Beyond 20 kinds the colours
    repeat with another marker, and the legend takes a column per :data:`LEGEND_ROWS` kinds (it fits the height)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    metrics = [m for m in (metrics or METRIC_SIGNS) if m in rows]
    if not metrics:
        raise InputError("rows: no metric column to plot")
    labels = {"plrs": "PLRS (higher = better)", "lve": "LVE, mm$^2$ (lower = better)",
              "mtm": "MTM, ms (lower = better)", **(labels or {})}
    kinds = list(dict.fromkeys(rows[hue])) if hue in rows else [None]
    cmap = colormaps["tab20"]
    fig = Figure(figsize=(4.6 * len(metrics) + 1.8, 4.0), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for k, kind in enumerate(kinds):
            sub = rows if kind is None else rows[rows[hue] == kind]
            ax.scatter(sub[oracle], sub[metric], s=12, alpha=0.75, color=cmap(k % 20), marker="o^sD"[k // 20 % 4],
                       label=kind)
        ax.set_xlabel("oracle viseme accuracy")
        ax.set_ylabel(labels.get(metric, metric))
        if metric == "lve":
            ax.set_yscale("symlog", linthresh=max(float(np.nanmin(rows[metric][rows[metric] > 0])), 1e-6)
                          if (rows[metric] > 0).any() else 1e-6)
        title = metric.upper()
        if stats is not None:
            hit = stats[(stats["metric"] == metric) & (stats["scope"] == "pooled")]
            if len(hit):
                r = hit.iloc[0]
                title += f": Spearman {r['rho']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        ax.set_title(title, fontsize="medium")
        ax.grid(True, alpha=0.3)
    if kinds != [None]:
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside right center", fontsize="small", markerscale=1.5,
                   ncols=-(-len(names) // LEGEND_ROWS))
    return fig
