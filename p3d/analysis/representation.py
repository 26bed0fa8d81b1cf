"""Analyses of a learned representation space (paper Sec. 4, B, G.4; Figs. 4, 5, S1, S6, S7).

Every function takes a trained model (a stage-1 :class:`p3d.models.stage1.Stage1Model`, whose
speech and *video* encoders are compared, or any speech-mesh critic: stage 2, "w/o 2D prior",
3D SyncNet) and window data (:mod:`p3d.windows`), runs the model in eval mode without gradients, and
returns NumPy arrays, dicts or pandas DataFrames. Embeddings are the models' final-layer,
mean-pooled, L2-normalised features (``encode_speech`` / ``encode_mesh``, ``embed``), so a dot product
is a cosine similarity.

- :func:`embed_windows`: embeddings of dataset windows with their labels and provenance.
- :func:`retrieval_at_k`: speech->mesh and mesh->speech recall@k among N held-out windows (chance k/N);
  :func:`retrieval_summary`: the same as a one-row table for a model and a corpus split.
- :func:`offset_similarity`: cosine similarity of speech window i and mesh/video window i + offset
  (Fig. 5a, S1a: temporal sensitivity).
- :func:`gt_pair_stats`: per-window InfoNCE loss and GT-pair cosine similarity (Figs. S6/S7).
- :func:`tsne`: 2-D t-SNE (scikit-learn) of features (Figs. 4, S1b); :func:`speech_tsne_panel`: Fig. S1b's panel.
- :func:`intensity_direction`: level means, the low->high direction, and whether it is consistent
  across identities (Fig. 5b).
- :func:`raw_features`: a no-learning control (flattened fbank / centred vertices) with a critic's interface.
- :func:`phoneme_groups`: the paper's Fig. 4 phoneme groups for frame-label ids;
  :func:`phoneme_separability`: cross-validated k-NN accuracy of those groups from features.
- Fig. 1b (the three properties in one picture): :func:`fit_projection` (a 2-D PCA of the shared space,
  :class:`Projection2D`), :func:`group_centroids`, :func:`projected_separation` (2-D silhouette),
  :func:`level_means` (per level and identity), :func:`offset_trajectories` (mesh windows shifted
  against one speech window).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from p3d.device import eval_mode
from p3d.errors import InputError, whole_number


# -- model adapters ---------------------------------------------------------------------------------
def _encoders(model: Any) -> tuple[Any, Any, str, float]:
    """(speech embed fn, other embed fn, batch key of the other modality, temperature)."""
    if getattr(model, "kind", None) == "stage1":
        return model.speech_encoder.embed, model.video_encoder.embed, "video", float(model.config.temperature)
    if hasattr(model, "encode_speech") and hasattr(model, "encode_mesh"):
        return model.encode_speech, model.encode_mesh, "mesh", float(model.temperature)
    raise InputError(f"model: expected a stage-1 model or a speech-mesh critic, got {type(model).__name__}")


def raw_features(n_vertices: int, vertex_mean: Any = None) -> Any:
    """A no-learning control with a critic's interface (:class:`p3d.models.dual_encoder.DualEncoder`):
    ``encode_speech`` = the L2-normalised flattened fbank window, ``encode_mesh`` = the L2-normalised
    flattened 5-frame vertex window minus ``vertex_mean`` ((V*3,), e.g. the training mean frame).

    The two "embeddings" live in different spaces (cross-modal similarity is meaningless), but
    per-modality analyses (phoneme separability, intensity direction) on them show what the raw
    inputs already carry, which a learned space must be compared against."""
    import torch
    import torch.nn.functional as F

    from p3d.models.dual_encoder import DualEncoder

    class RawFeatures(DualEncoder):
        kind = "raw"

        def __init__(self) -> None:
            super().__init__()
            mean = torch.zeros(3 * n_vertices) if vertex_mean is None else torch.as_tensor(
                np.asarray(vertex_mean, dtype=np.float32).reshape(-1))
            if mean.numel() != 3 * n_vertices:
                raise InputError(f"vertex_mean: expected {3 * n_vertices} values, got {mean.numel()}")
            self.register_buffer("mean", mean)
            self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)  # gives a device

        @property
        def n_vertices(self) -> int:
            return n_vertices

        def encode_speech(self, fbank: torch.Tensor) -> torch.Tensor:
            return F.normalize(fbank.flatten(1), dim=1)

        def encode_mesh(self, vertices: torch.Tensor) -> torch.Tensor:
            v = vertices.reshape(vertices.shape[0], -1, 3 * n_vertices) - self.mean
            return F.normalize(v.flatten(1), dim=1)

    return RawFeatures()


def _embed_batch(model: Any, batch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    speech_fn, other_fn, key, _ = _encoders(model)
    device = next(model.parameters()).device
    s = speech_fn(batch["speech"].to(device))
    o = other_fn(batch[key].to(device))
    return s.float().cpu().numpy(), o.float().cpu().numpy()


def _subset(n: int, max_items: int | None) -> np.ndarray:
    """All indices, or ``max_items`` evenly spaced ones (deterministic, covers every clip)."""
    if max_items is None or max_items >= n:
        return np.arange(n)
    if max_items < 1:
        raise InputError(f"max_items: expected a positive count, got {max_items}")
    return np.unique(np.linspace(0, n - 1, max_items).round().astype(np.int64))


# -- embeddings and retrieval -----------------------------------------------------------------------
def embed_windows(model: Any, dataset: Any, max_items: int | None = None, batch_size: int = 256) -> dict[str, Any]:
    """Embed dataset windows.

    Args:
        model: a stage-1 model (speech + video) or a speech-mesh critic (speech + mesh).
        dataset: the matching :class:`p3d.windows.AVWindows` / :class:`p3d.windows.SpeechMeshWindows`
            (:func:`p3d.windows.windows_for_model`).
        max_items: embed at most this many evenly spaced windows (default all).

    Returns:
        ``speech`` (N, D) and ``mesh`` or ``video`` (N, D) float32 unit rows; ``labels``
        ({``phoneme``, ``viseme``: (N,) int, -1 where the corpus has no labels}); ``clip``,
        ``identity`` ((N,) str); ``start``, ``level`` ((N,) int; level -1 if none); ``index`` (N,)
        dataset indices.
    """
    _, _, key, _ = _encoders(model)
    idx = _subset(len(dataset), max_items)
    out: dict[str, list[Any]] = {k: [] for k in ("speech", key, "phoneme", "viseme", "clip", "identity", "start",
                                                 "level")}
    import torch

    with eval_mode(model), torch.no_grad():
        for a in range(0, len(idx), batch_size):
            batch = dataset.collate(idx[a:a + batch_size].tolist())
            s, o = _embed_batch(model, batch)
            out["speech"].append(s)
            out[key].append(o)
            for k in ("phoneme", "viseme", "start", "level"):
                out[k].append(batch[k].numpy())
            out["clip"].extend(batch["clip"])
            out["identity"].extend(batch["identity"])
    res: dict[str, Any] = {k: np.concatenate(out[k]) for k in ("speech", key, "start", "level")}
    res["labels"] = {k: np.concatenate(out[k]) for k in ("phoneme", "viseme")}
    res["clip"] = np.asarray(out["clip"])
    res["identity"] = np.asarray(out["identity"])
    res["index"] = idx
    return res


def retrieval_at_k(a: Any, b: Any, ks: Sequence[int] = (1, 5), names: tuple[str, str] = ("speech", "mesh")
                   ) -> dict[str, Any]:
    """Cross-modal retrieval among N paired rows (row i of ``a`` pairs with row i of ``b``).

    For query ``a_i`` the candidates are all N rows of ``b`` ranked by cosine similarity; the query
    is a hit at k if ``b_i`` is among the top k. Ties count against the query (rank = number of
    other candidates scoring >= the true one), so constant embeddings score 0, not 1.

    Returns:
        ``{"n": N, "<a>_to_<b>": {k: R@k}, "<b>_to_<a>": {k: R@k}, "chance": {k: min(k, N) / N}}``
        with the names from ``names`` (default ``speech_to_mesh`` / ``mesh_to_speech``).
    """
    x, y = _unit_rows(a, "a"), _unit_rows(b, "b")
    if x.shape != y.shape:
        raise InputError(f"a, b: expected paired (N, D) arrays of equal shape, got {x.shape} and {y.shape}")
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise InputError(f"ks: expected positive ranks, got {ks}")
    sim = x @ y.T
    diag = np.diag(sim)
    rank_ab = (sim >= diag[:, None]).sum(axis=1) - 1  # other candidates at least as similar
    rank_ba = (sim >= diag[None, :]).sum(axis=0) - 1
    n = x.shape[0]
    first, second = names
    return {
        "n": n,
        f"{first}_to_{second}": {k: float(np.mean(rank_ab < k)) for k in ks},
        f"{second}_to_{first}": {k: float(np.mean(rank_ba < k)) for k in ks},
        "chance": {k: min(k, n) / n for k in ks},
    }


def retrieval_summary(model: Any, corpus: Any, split: str = "test", stride: int = 5, name: str = "",
                      **windows_kwargs: Any) -> Any:
    """One-row DataFrame of cross-modal R@1 / R@5 (both directions) and chance on a corpus split.

    Windows every ``stride`` frames (5: disjoint windows) of :func:`p3d.windows.windows_for_model`;
    columns ``model``, ``<a>-><b> R@k`` for both directions (``speech``/``mesh`` or ``video``),
    ``chance R@k``, ``windows``.
    """
    import pandas as pd

    from p3d.windows import windows_for_model

    _, _, key, _ = _encoders(model)
    ds = windows_for_model(model, corpus, split, stride=stride, **windows_kwargs)
    emb = embed_windows(model, ds)
    ret = retrieval_at_k(emb["speech"], emb[key], names=("speech", key))
    row: dict[str, Any] = {"model": name}
    for a, b in (("speech", key), (key, "speech")):
        for k in (1, 5):
            row[f"{a}->{b} R@{k}"] = ret[f"{a}_to_{b}"][k]
    row.update({"chance R@1": ret["chance"][1], "chance R@5": ret["chance"][5], "windows": ret["n"]})
    return pd.DataFrame([row])


def _unit_rows(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise InputError(f"{name}: expected an (N, D) array with N >= 1, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: holds NaN or inf values")
    norm = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.where(norm > 0, norm, 1.0)


# -- temporal sensitivity -----------------------------------------------------------------------------
def offset_similarity(model: Any, corpus: Any, split: str | None = "test", offsets: Iterable[int] = range(-10, 11),
                      *, max_clips: int | None = None, confidence: float = 0.95, batch_size: int = 256,
                      far: int = 5, **windows_kwargs: Any) -> Any:
    """Cosine similarity between speech window i and mesh (stage 1: video) window i + offset.

    Fig. 5a / S1a: a temporally sensitive space peaks at offset 0 and falls off on both sides.
    Every clip contributes all its windows (stride 1) with ``0 <= i, i + offset < n``. The
    per-clip mean similarity is averaged over clips; the interval is a Student-t interval over
    clips (NaN for one clip), which respects that windows of one clip are not independent.

    ``vs_far`` is the contrast Property 2 is judged on (Fig. 5a: the peak at 0 against the far offsets): per
    clip, its similarity at the offset minus its own mean similarity over the offsets with ``|offset| >= far``,
    averaged over the clips that have both, with the same Student-t interval. The far mean is measured on the
    same clips, so it is not a constant: the per-clip difference carries both variances and their correlation
    (an interval of the offset's mean alone, compared with the far mean, treats the latter as fixed).

    Args:
        corpus: a corpus folder / :class:`p3d.corpus.Corpus`, or a ready window dataset of the model.
        split: the corpus split (ignored for a dataset).
        max_clips: use at most this many evenly spaced clips.
        windows_kwargs: passed to :func:`p3d.windows.windows_for_model` (e.g. ``cache_dir``).

    Returns:
        DataFrame with columns ``offset``, ``offset_ms`` (at the model frame rate), ``mean``,
        ``ci_low``, ``ci_high``, ``std`` (over clips), ``n_pairs``, ``n_clips``, ``vs_far``,
        ``vs_far_ci_low``, ``vs_far_ci_high`` (NaN where no clip has an offset with ``|offset| >= far``).
    """
    import pandas as pd
    from scipy import stats

    from p3d.windows import ClipWindows, windows_for_model

    ds = corpus if isinstance(corpus, ClipWindows) else windows_for_model(model, corpus, split, **windows_kwargs)
    offsets = [int(o) for o in offsets]
    if not offsets:
        raise InputError("offsets: expected at least one offset")
    clip_ids = _subset(ds.n_clips, max_clips)
    if far < 1:
        raise InputError(f"far: expected an offset of at least 1 frame, got {far}")
    per_clip: dict[int, list[float]] = {o: [] for o in offsets}
    vs_far: dict[int, list[float]] = {o: [] for o in offsets}
    n_pairs = {o: 0 for o in offsets}
    import torch

    with eval_mode(model), torch.no_grad():
        for ci in clip_ids:
            pairs = ds.clip_pairs(int(ci))
            s_list, o_list = [], []
            for a in range(0, len(pairs), batch_size):
                s, o = _embed_batch(model, ds.batch(pairs[a:a + batch_size]))
                s_list.append(s)
                o_list.append(o)
            s_all, o_all = np.concatenate(s_list), np.concatenate(o_list)
            n = len(pairs)
            clip_sims: dict[int, float] = {}
            for off in offsets:
                i = np.arange(max(0, -off), min(n, n - off))
                if i.size == 0:
                    continue
                sims = np.sum(s_all[i] * o_all[i + off], axis=1)
                clip_sims[off] = float(sims.mean())
                per_clip[off].append(clip_sims[off])
                n_pairs[off] += int(i.size)
            far_sims = [v for off, v in clip_sims.items() if abs(off) >= far]
            if far_sims:
                clip_far = float(np.mean(far_sims))
                for off, v in clip_sims.items():
                    vs_far[off].append(v - clip_far)

    def t_interval(vals: np.ndarray) -> tuple[float, float, float, float]:
        mean = float(vals.mean()) if vals.size else math.nan
        std = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
        if vals.size > 1:
            half = stats.t.ppf(0.5 + confidence / 2, vals.size - 1) * std / math.sqrt(vals.size)
            return mean, mean - half, mean + half, std
        return mean, math.nan, math.nan, std

    rows = []
    for off in offsets:
        vals = np.asarray(per_clip[off])
        mean, lo, hi, std = t_interval(vals)
        d_mean, d_lo, d_hi, _ = t_interval(np.asarray(vs_far[off]))
        rows.append({"offset": off, "offset_ms": 1000.0 * off / ds.fps, "mean": mean, "ci_low": lo, "ci_high": hi,
                     "std": std, "n_pairs": n_pairs[off], "n_clips": int(vals.size), "vs_far": d_mean,
                     "vs_far_ci_low": d_lo, "vs_far_ci_high": d_hi})
    return pd.DataFrame(rows)



def offset_summary(curves: Mapping[str, Any], far: int = 5) -> Any:
    """Property 2's table (``fig5a_offset_summary``), one row per critic of ``curves`` ({name:
    :func:`offset_similarity` DataFrame}): the peak offset, the similarity at 0 with its CI over clips, the mean
    similarity at ``|offset| >= far``, and the per-clip difference of the two (``vs_far`` at offset 0) with its CI,
    on which the property is judged (:func:`p3d.analysis.properties.temporal_verdict`, the claims' judge)."""
    import pandas as pd

    rows = []
    for name, c in curves.items():
        at0 = c.loc[c["offset"] == 0].iloc[0]
        rows.append({"critic": name, "peak offset": int(c.loc[c["mean"].idxmax(), "offset"]),
                     "sim at 0": at0["mean"], "sim at 0 CI low": at0["ci_low"], "sim at 0 CI high": at0["ci_high"],
                     f"mean sim at |offset| >= {far}": c.loc[c["offset"].abs() >= far, "mean"].mean(),
                     "sim at 0 minus far": at0["vs_far"], "sim at 0 minus far CI low": at0["vs_far_ci_low"],
                     "sim at 0 minus far CI high": at0["vs_far_ci_high"]})
    return pd.DataFrame(rows)

# -- ground-truth pairs (Figs. S6 / S7) ----------------------------------------------------------------
def gt_pair_stats(model: Any, dataset: Any, batch_size: int = 80, seed: int = 0, max_items: int | None = None) -> Any:
    """Per-window InfoNCE loss and cosine similarity of the ground-truth (speech, mesh) pairs.

    The windows are shuffled (``seed``) into contrastive batches of ``batch_size`` (the paper's 80; a
    last partial batch of >= 2 windows is kept, a single leftover dropped, as the official loss).
    Window i's loss is its share of the symmetric InfoNCE (Eq. 5, final layer):
    ``0.5 * (CE(row i of S M^T / tau) + CE(column i))``, so the batch's InfoNCE is the mean over its
    windows. Run it on the train and on the test split to compare (Figs. S6/S7 box plots).

    Returns:
        DataFrame with ``index``, ``clip``, ``identity``, ``start``, ``level``, ``loss``, ``cosine``
        and ``batch_size`` (the size of the window's contrastive batch).
    """
    import pandas as pd

    if batch_size < 2:
        raise InputError(f"batch_size: InfoNCE needs batches of at least 2, got {batch_size}")
    emb = embed_windows(model, dataset, max_items=max_items)
    _, _, key, tau = _encoders(model)
    s, o = emb["speech"].astype(np.float64), emb[key].astype(np.float64)
    n = s.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    loss = np.full(n, np.nan)
    size = np.zeros(n, dtype=np.int64)
    for a in range(0, n, batch_size):
        group = order[a:a + batch_size]
        if group.size < 2:
            continue
        logits = s[group] @ o[group].T / tau
        row = _logsumexp(logits, axis=1) - np.diag(logits)
        col = _logsumexp(logits, axis=0) - np.diag(logits)
        loss[group] = 0.5 * (row + col)
        size[group] = group.size
    keep = size > 0
    return pd.DataFrame({
        "index": emb["index"][keep], "clip": emb["clip"][keep], "identity": emb["identity"][keep],
        "start": emb["start"][keep], "level": emb["level"][keep], "loss": loss[keep],
        "cosine": np.sum(s * o, axis=1)[keep], "batch_size": size[keep],
    })


def pair_stats_by_split(critics: Mapping[str, Any], corpus: Any, splits: Sequence[str] = ("train", "test"), *,
                        stride: int = 5, seed: int = 0, max_items: int | None = None,
                        cache_dir: str | None = None) -> tuple[dict[str, Any], Any]:
    """Figs. S6/S7 (notebook 04): :func:`gt_pair_stats` of each critic on each of ``splits`` of ``corpus`` (its
    windows every ``stride`` frames, :func:`p3d.windows.windows_for_model` with ``cache_dir``; up to ``max_items``
    per split, ``seed``), and their medians. Returns (``{critic: the splits' rows, column split}``, a DataFrame of
    the median ``loss`` and ``cosine`` per critic and split: columns split, loss, cosine, critic)."""
    import pandas as pd

    from p3d.windows import windows_for_model

    pairs = {}
    for name, m in critics.items():
        parts = [gt_pair_stats(m, windows_for_model(m, corpus, split, stride=stride, cache_dir=cache_dir), seed=seed,
                               max_items=max_items).assign(split=split) for split in splits]
        pairs[name] = pd.concat(parts, ignore_index=True)
    medians = pd.concat([df.groupby("split")[["loss", "cosine"]].median().assign(critic=name).reset_index()
                         for name, df in pairs.items()], ignore_index=True)
    return pairs, medians


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    from scipy.special import logsumexp

    return logsumexp(x, axis=axis)


# -- t-SNE ---------------------------------------------------------------------------------------------
def tsne(features: Any, seed: int = 0, perplexity: float = 30.0, max_iter: int = 750) -> np.ndarray:
    """2-D t-SNE of (N, D) features (scikit-learn, PCA initialisation, Euclidean distances on the
    given vectors; unit-norm features make them monotone in cosine similarity).

    ``perplexity`` is lowered to ``(N - 1) / 3`` for small N. Returns (N, 2) float64. Runs on one
    OpenMP thread: on a busy 2-core machine scikit-learn's threaded gradient was 40x slower.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 4:
        raise InputError(f"features: t-SNE needs an (N, D) array with N >= 4, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("features: hold NaN or inf values")
    perp = float(min(perplexity, (x.shape[0] - 1) / 3))
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                    max_iter=max(250, max_iter)).fit_transform(x)


def speech_tsne_panel(embedding: Mapping[str, Any], phoneme_names: Sequence[str], *, max_points: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """Fig. S1b's panel (notebook 02): a :func:`tsne` of the speech embeddings of up to ``max_points`` windows of an
    :func:`embed_windows` result, the first ``max_points`` of one ``default_rng(seed)`` permutation (all windows
    when there are fewer), coloured by the paper's Fig. 4 groups of the windows' centre phonemes
    (:func:`phoneme_groups`). Returns ``{"points", "group", "modality"}`` (all ``"speech"``), a panel of
    :func:`p3d.viz.representation.plot_tsne_groups`."""
    if int(max_points) < 4:
        raise InputError(f"max_points: t-SNE needs at least 4 points, got {max_points}")
    groups = phoneme_groups(embedding["labels"]["phoneme"], phoneme_names)
    pick = np.random.default_rng(seed).permutation(len(groups))[:int(max_points)]
    return {"points": tsne(embedding["speech"][pick], seed=seed), "group": groups[pick],
            "modality": np.full(len(pick), "speech")}


# -- intensity (Fig. 5b) -------------------------------------------------------------------------------
def intensity_direction(speech_feats: Any, levels: Any, identities: Any = None) -> dict[str, Any]:
    """Do speech features move in one consistent direction as intensity rises? (Fig. 5b)

    Args:
        speech_feats: (N, D) speech embeddings (e.g. :func:`embed_windows` on synth-mead).
        levels: (N,) intensity level of each window (e.g. 1 = low, 2 = medium, 3 = high); entries < 0
            (no level) are ignored.
        identities: optional (N,) identity of each window, for the per-identity statistics.

    Returns a dict:
        ``levels`` (L,) sorted levels; ``level_means`` (L, D); ``direction`` (D,) unit vector from the
        lowest to the highest level's mean; ``projection`` (N,) features on it (NaN for ignored
        rows); ``level_projection`` {level: mean projection}; ``spearman`` (rho, p) of level vs
        projection (in-sample: the direction was fitted on the same data, so this is optimistic);
        ``plane`` (N, 2): (projection, projection on the first principal axis orthogonal to the
        direction), for a scatter plot.
        With ``identities`` (at least 2 with the lowest and highest level): ``loio_ordered_fraction``,
        the fraction of identities whose level means are strictly increasing along the direction
        fitted *without* them (leave-one-identity-out; chance ``loio_chance``: the mean over identities of 1 / m!, m
        the levels an identity has, 1 / L! when every identity has all L), and
        ``direction_cosine_mean``, the mean pairwise cosine between the identities' own low->high
        directions (about 0 for unrelated directions in D dimensions, 1 for one shared direction),
        ``n_identities``.
    """
    from scipy import stats

    x = np.asarray(speech_feats, dtype=np.float64)
    lv = _levels(levels)
    if x.ndim != 2 or lv.shape != (x.shape[0],):
        raise InputError(f"speech_feats / levels: expected (N, D) and (N,), got {x.shape} and {lv.shape}")
    if not np.isfinite(x).all():
        raise InputError("speech_feats: hold NaN or inf values")
    valid = lv >= 0
    uniq = np.unique(lv[valid])
    if uniq.size < 2:
        raise InputError(f"levels: need at least two intensity levels, got {uniq.tolist()}")
    means = np.stack([x[lv == u].mean(axis=0) for u in uniq])
    direction = _unit(means[-1] - means[0])
    proj = np.where(valid, x @ direction, np.nan)
    resid = x[valid] - np.outer(x[valid] @ direction, direction)
    resid = resid - resid.mean(axis=0)
    _, _, vt = np.linalg.svd(resid, full_matrices=False)
    plane = np.full((x.shape[0], 2), np.nan)
    plane[valid, 0] = proj[valid]
    plane[valid, 1] = x[valid] @ vt[0]
    rho = stats.spearmanr(lv[valid], proj[valid])
    out: dict[str, Any] = {
        "levels": uniq, "level_means": means, "direction": direction, "projection": proj,
        "level_projection": {int(u): float(np.nanmean(proj[lv == u])) for u in uniq},
        "spearman": (float(rho.statistic), float(rho.pvalue)), "plane": plane,
    }
    if identities is not None:
        ids = np.asarray(identities)
        if ids.shape != lv.shape:
            raise InputError(f"identities: expected shape {lv.shape}, got {ids.shape}")
        out.update(_per_identity(x, lv, ids, uniq))
    return out


def intensity_table(results: Mapping[str, Mapping[str, Any]]) -> Any:
    """Property (3)'s table (notebook 04, ``fig5b_intensity_summary``): one row per name of ``results``
    (:func:`intensity_direction` results): the mean projection per level, the leave-one-identity-out ordered fraction
    and its chance, the mean cosine between identities' own directions (NaN without identities) and the number of
    identities (0 without)."""
    import pandas as pd

    return pd.DataFrame([{"critic": name, **{f"level {lv} mean projection": v for lv, v in r["level_projection"].items()},
                          "LOIO ordered fraction": r.get("loio_ordered_fraction", np.nan),
                          "LOIO chance": r.get("loio_chance", np.nan),
                          "direction cosine (identities)": r.get("direction_cosine_mean", np.nan),
                          "identities": r.get("n_identities", 0)}
                         for name, r in results.items()])


def intensity_directions(models: Mapping[str, Any], corpus: Any, split: str | None = None, *, stride: int = 15,
                         cache_dir: str | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Property (3) (paper Fig. 5b; notebook 04) for each of ``models``: its speech embeddings of ``corpus``'
    windows every ``stride`` frames (``split``; None: every clip; :func:`p3d.windows.windows_for_model` with
    ``cache_dir``) and :func:`intensity_direction` of them by level, per identity. Returns
    (``{name: intensity_direction result}``, ``{name: embed_windows result}``), both in the order of ``models``;
    :func:`intensity_table` takes the first."""
    from p3d.windows import windows_for_model

    directions, embeddings = {}, {}
    for name, m in models.items():
        e = embeddings[name] = embed_windows(m, windows_for_model(m, corpus, split, stride=stride, cache_dir=cache_dir))
        directions[name] = intensity_direction(e["speech"], e["level"], e["identity"])
    return directions, embeddings


def _levels(levels: Any) -> np.ndarray:
    """Intensity levels as numbers (< 0: no level); InputError for anything else (text, None, booleans)."""
    lv = np.asarray(levels)
    if lv.dtype.kind not in "iuf":
        raise InputError(f"levels: expected numbers (intensity levels, < 0 for none), got dtype {lv.dtype}")
    if lv.dtype.kind == "f" and not np.isfinite(lv).all():
        raise InputError("levels: hold NaN or inf values (use a negative level for windows without one)")
    return lv


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _per_identity(x: np.ndarray, lv: np.ndarray, ids: np.ndarray, uniq: np.ndarray) -> dict[str, Any]:
    lo, hi = uniq[0], uniq[-1]
    usable = [i for i in np.unique(ids) if np.any((ids == i) & (lv == lo)) and np.any((ids == i) & (lv == hi))]
    if len(usable) < 2:
        return {"n_identities": len(usable), "loio_ordered_fraction": math.nan,
                "loio_chance": 1 / math.factorial(len(uniq)), "direction_cosine_mean": math.nan}
    ordered = []
    chances = []  # an identity with m of the levels is ordered by chance with probability 1 / m!
    own = []
    for ident in usable:
        mine, others = ids == ident, (ids != ident) & (lv >= 0)
        d = _unit(x[others & (lv == hi)].mean(axis=0) - x[others & (lv == lo)].mean(axis=0))
        present = [u for u in uniq if np.any(mine & (lv == u))]
        proj = [float(x[mine & (lv == u)].mean(axis=0) @ d) for u in present]
        ordered.append(bool(np.all(np.diff(proj) > 0)))
        chances.append(1 / math.factorial(len(present)))
        own.append(_unit(x[mine & (lv == hi)].mean(axis=0) - x[mine & (lv == lo)].mean(axis=0)))
    own_arr = np.stack(own)
    cos = own_arr @ own_arr.T
    pairs = cos[np.triu_indices(len(own), k=1)]
    return {"n_identities": len(usable), "loio_ordered_fraction": float(np.mean(ordered)),
            "loio_chance": float(np.mean(chances)), "direction_cosine_mean": float(pairs.mean())}


# -- phoneme groups (Fig. 4) ----------------------------------------------------------------------------
def phoneme_separability(features: Any, groups: Any, *, k: int = 10, folds: int = 5, seed: int = 0,
                         clusters: Any = None) -> dict[str, Any]:
    """How well do features cluster by phoneme group? (Fig. 4's property, as a number.)

    Cross-validated accuracy of a k-nearest-neighbour classifier (cosine metric, scikit-learn) that
    predicts the group of each labelled row (``groups != ""``) from the others, against the majority-
    class rate. With ``clusters`` (e.g. the clip or identity of each row) the folds keep a cluster's
    rows together (``GroupKFold``), so neighbouring windows of one clip cannot vouch for each other, the
    accuracy is that of every row's out-of-fold prediction, and its 95 % CI resamples the clusters
    (:func:`p3d.stats.cluster_bootstrap_ci`): the windows of one clip are not independent trials.

    ``k`` is lowered to the rows of the smallest training fold when there are fewer (a small set of rows: k-NN
    cannot ask for more neighbours than it was fitted on).

    Returns ``accuracy``, ``chance`` (majority share), ``n`` rows, ``n_groups``, ``folds`` used, and with
    ``clusters`` ``ci_low``, ``ci_high`` and ``n_clusters``.
    """
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from p3d.stats import cluster_bootstrap_ci

    for value, name, low in ((k, "k", 1), (folds, "folds", 2)):
        if whole_number(value, low) is None:
            raise InputError(f"{name}: expected a whole number >= {low}, got {value!r}")
    k, folds = int(k), int(folds)
    x = np.asarray(features, dtype=np.float32)
    g = np.asarray(groups, dtype=object)
    if x.ndim != 2 or len(x) != len(g):
        raise InputError(f"features / groups: expected (N, D) and (N,), got {x.shape} and {g.shape}")
    keep = g != ""
    x, y = x[keep], g[keep].astype(str)
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2 or len(y) < 2 * folds:
        raise InputError(f"groups: need >= 2 groups and >= {2 * folds} labelled rows, got {len(labels)} groups, "
                         f"{len(y)} rows")
    def knn(splits: Any) -> Any:  # k at most the smallest training fold (it was len(y) - 1: NaN or a traceback)
        fit = min(len(train) for train, _ in splits)
        return KNeighborsClassifier(n_neighbors=min(k, fit), metric="cosine")

    if clusters is not None:
        c = np.asarray(clusters)[keep]
        n_folds = min(folds, len(np.unique(c)))
        if n_folds < 2:
            raise InputError("clusters: need at least 2 distinct clusters for grouped folds")
        cv = GroupKFold(n_splits=n_folds)
        clf = knn(cv.split(x, y, c))
        correct = (cross_val_predict(clf, x, y, cv=cv, groups=c) == y).astype(np.float64)
        low, high = cluster_bootstrap_ci(correct, c, seed=seed)
        return {"accuracy": float(correct.mean()), "chance": float(counts.max() / counts.sum()), "n": int(len(y)),
                "n_groups": int(len(labels)), "folds": int(n_folds), "ci_low": low, "ci_high": high,
                "n_clusters": int(len(np.unique(c)))}
    n_folds = min(folds, int(counts.min())) if counts.min() >= 2 else 2
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(knn(cv.split(x, y)), x, y, cv=cv)
    return {"accuracy": float(np.mean(scores)), "chance": float(counts.max() / counts.sum()), "n": int(len(y)),
            "n_groups": int(len(labels)), "folds": int(n_folds)}


def phoneme_views(embeddings: Mapping[str, Mapping[str, Any]], phoneme_names: Sequence[str], *,
                  tsne_of: Sequence[str] = (), max_points: int = 1200, seed: int = 0) -> tuple[dict[str, Any], Any]:
    """Fig. 4's t-SNE panels and property (1)'s table (notebook 04) from :func:`embed_windows` results by name.

    Each name in ``tsne_of`` (in ``embeddings``' order) gets a panel: a joint :func:`tsne` of the speech and mesh
    embeddings of up to ``max_points`` windows, drawn by one ``default_rng(seed)`` over the panels in turn
    (``{"points", "group", "modality"}``, :func:`p3d.viz.representation.plot_tsne_groups`); every name gets a
    :func:`phoneme_separability` row per modality (speech, mesh) of the paper's Fig. 4 groups
    (:func:`phoneme_groups` of the windows' centre phonemes), clusters = clips. Returns (panels, the rows as a
    DataFrame: ``critic``, ``features`` and the separability columns)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    panels, rows = {}, []
    for name, e in embeddings.items():
        groups = phoneme_groups(e["labels"]["phoneme"], phoneme_names)
        if name in tsne_of:
            pick = rng.permutation(len(groups))[:max_points]
            pts = tsne(np.concatenate([e["speech"][pick], e["mesh"][pick]]), seed=seed)
            panels[name] = {"points": pts, "group": np.concatenate([groups[pick]] * 2),
                            "modality": np.repeat(["speech", "mesh"], len(pick))}
        for modality in ("speech", "mesh"):
            r = phoneme_separability(e[modality], groups, clusters=e["clip"], seed=seed)
            rows.append({"critic": name, "features": modality, **r})
    return panels, pd.DataFrame(rows)


def phoneme_groups(phoneme_ids: Any, phoneme_names: Sequence[str],
                   groups: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """Map frame phoneme ids to the paper's Fig. 4 groups (/aj æ ɑ ej i/, /s,z tʃ f,v m p/).

    Args:
        phoneme_ids: (N,) ids into ``phoneme_names`` (-1: no label).
        phoneme_names: the corpus' phoneme symbols (``corpus.meta["phonemes"]``).
        groups: group name -> phoneme symbols; default
            :data:`p3d.synth.visemes.PAPER_PHONEME_GROUPS` (espeak-ng symbols of the synthetic corpora).
            A symbol matches with its stress marks (``' , % =``) removed.

    Returns:
        (N,) object array of group names, ``""`` for phonemes outside every group.
    """
    if groups is None:
        from p3d.synth.visemes import PAPER_PHONEME_GROUPS as groups  # type: ignore[no-redef]
    lookup = {sym: name for name, syms in groups.items() for sym in syms}
    names = [lookup.get(str(p).lstrip("',%="), "") for p in phoneme_names]
    ids = np.asarray(phoneme_ids, dtype=np.int64)
    out = np.full(ids.shape, "", dtype=object)
    ok = (ids >= 0) & (ids < len(names))
    out[ok] = np.asarray(names, dtype=object)[ids[ok]]
    return out


# -- Fig. 1b: one 2-D picture of the space -------------------------------------------------------------
@dataclass(frozen=True)
class Projection2D:
    """A linear 2-D projection of a shared embedding space (Fig. 1b).

    ``transform(x, modality) = (x - centers[modality]) @ components.T``: each modality's rows are
    centred by that modality's mean (removing the constant speech-mesh offset, the "modality gap",
    which otherwise takes the first principal axis), then projected on the first two principal axes
    of the pooled centred rows.

    Attributes:
        centers: {modality: (D,) mean row subtracted before projecting}.
        components: (2, D) orthonormal principal axes.
        explained_variance_ratio: (2,) share of the pooled centred variance on each axis.
    """

    centers: dict[str, np.ndarray]
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def transform(self, features: Any, modality: str) -> np.ndarray:
        """(..., D) features of ``modality`` -> (..., 2) coordinates."""
        if modality not in self.centers:
            raise InputError(f"modality: expected one of {sorted(self.centers)}, got {modality!r}")
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != self.components.shape[1]:
            raise InputError(f"features: expected {self.components.shape[1]} columns, got shape {x.shape}")
        return (x - self.centers[modality]) @ self.components.T


def fit_projection(features: Mapping[str, Any], *, center_each: bool = True, seed: int = 0) -> Projection2D:
    """Fit a :class:`Projection2D` (PCA, scikit-learn, one thread) on the rows of every modality.

    Args:
        features: {modality: (N_m, D) embeddings}, e.g. ``{"speech": ..., "mesh": ...}`` of the same windows.
        center_each: centre each modality by its own mean (default); otherwise all by the pooled mean.
        seed: PCA random state (the full SVD is deterministic anyway).
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    if not features:
        raise InputError("features: expected at least one modality")
    arrays = {}
    for name, f in features.items():
        x = np.asarray(f, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(f"features[{name!r}]: expected an (N, D) array with N >= 2, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise InputError(f"features[{name!r}]: holds NaN or inf values")
        arrays[name] = x
    dims = {x.shape[1] for x in arrays.values()}
    if len(dims) != 1 or dims.pop() < 2:
        raise InputError(f"features: expected one dimension D >= 2 for all modalities, got "
                         f"{ {k: v.shape for k, v in arrays.items()} }")
    pooled_mean = np.concatenate(list(arrays.values())).mean(axis=0)
    centers = {k: (x.mean(axis=0) if center_each else pooled_mean) for k, x in arrays.items()}
    pooled = np.concatenate([x - centers[k] for k, x in arrays.items()])
    with threadpool_limits(1):
        pca = PCA(n_components=2, svd_solver="full", random_state=seed).fit(pooled)
    # fold PCA's own (near-zero) mean into the centres so that transform is one affine map
    centers = {k: c + pca.mean_ for k, c in centers.items()}
    return Projection2D(centers, pca.components_.copy(), pca.explained_variance_ratio_.copy())


def projected_cloud(projection: Projection2D, speech: Any, mesh: Any, groups: Any) -> dict[str, np.ndarray]:
    """Fig. 1b (a)'s point cloud: the speech and the mesh embeddings of the same N windows projected into
    ``projection``'s plane, each modality centred by its own mean (:meth:`Projection2D.transform`).

    Returns ``points`` (2N, 2): the N speech rows, then the N mesh rows; ``group`` (2N,): each window's phoneme
    group (``groups``, :func:`phoneme_groups`), repeated for the mesh rows; ``modality`` (2N,): ``"speech"`` then
    ``"mesh"`` (the dict :func:`p3d.viz.representation.plot_fig1b` and :func:`group_centroids` take)."""
    speech, mesh = np.asarray(speech), np.asarray(mesh)
    groups = np.asarray(groups)
    if not (len(speech) == len(mesh) == len(groups)):
        raise InputError(f"speech / mesh / groups: expected one row per window in each, got {len(speech)}, "
                         f"{len(mesh)} and {len(groups)}")
    return {"points": np.concatenate([projection.transform(speech, "speech"), projection.transform(mesh, "mesh")]),
            "group": np.concatenate([groups, groups]), "modality": np.repeat(["speech", "mesh"], len(groups))}


def group_centroids(points: Any, groups: Any) -> dict[str, np.ndarray]:
    """{group: (2,) mean of its rows} for the non-empty groups of (N,) ``groups`` (sorted by name)."""
    pts = np.asarray(points, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    if pts.ndim != 2 or len(pts) != len(g):
        raise InputError(f"points / groups: expected (N, K) and (N,), got {pts.shape} and {g.shape}")
    return {str(name): pts[g == name].mean(axis=0) for name in sorted(set(g.tolist()) - {""})}


def projected_separation(points: Any, groups: Any) -> float:
    """Silhouette score (Euclidean, scikit-learn) of the non-empty ``groups`` in the 2-D ``points``:
    1 = tight separated clusters, about 0 = overlapping, < 0 = rows nearer another group."""
    from sklearn.metrics import silhouette_score

    pts = np.asarray(points, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    keep = g != ""
    if len(set(g[keep].tolist())) < 2:
        raise InputError("groups: need at least two non-empty groups")
    return float(silhouette_score(pts[keep], g[keep].astype(str)))


def level_means(features: Any, levels: Any, identities: Any) -> dict[str, Any]:
    """Mean feature of every intensity level, overall and per identity (Fig. 1b's intensity arrows).

    Args:
        features: (N, ...) features (embeddings (N, D) or projected points (N, 2)).
        levels: (N,) intensity levels; rows with a level < 0 are ignored.
        identities: (N,) identity of each row.

    Returns:
        ``levels`` (L,) sorted; ``identities`` (I,) sorted; ``overall`` (L, ...) level means over all rows;
        ``per_identity`` (I, L, ...) with NaN where an identity has no row of a level.
    """
    x = np.asarray(features, dtype=np.float64)
    lv, ids = _levels(levels), np.asarray(identities)
    if x.ndim < 1 or lv.shape != (len(x),) or ids.shape != (len(x),):
        raise InputError(f"features / levels / identities: expected N rows each, got {x.shape}, {lv.shape}, "
                         f"{ids.shape}")
    valid = lv >= 0
    uniq, who = np.unique(lv[valid]), np.unique(ids[valid])
    if uniq.size < 2:
        raise InputError(f"levels: need at least two intensity levels, got {uniq.tolist()}")
    overall = np.stack([x[lv == u].mean(axis=0) for u in uniq])
    per = np.full((len(who), len(uniq)) + x.shape[1:], np.nan)
    for i, ident in enumerate(who):
        for j, u in enumerate(uniq):
            sel = (ids == ident) & (lv == u)
            if sel.any():
                per[i, j] = x[sel].mean(axis=0)
    return {"levels": uniq, "identities": who, "overall": overall, "per_identity": per}


def offset_trajectories(model: Any, dataset: Any, offsets: Iterable[int] = range(-10, 11), n_windows: int = 3
                        ) -> dict[str, Any]:
    """Embeddings of one speech window and of the mesh (stage 1: video) windows shifted by ``offsets``
    frames, for ``n_windows`` windows (Fig. 1b's temporal-sensitivity trajectories).

    The windows are the middle windows of ``n_windows`` evenly spaced clips of ``dataset`` (a
    :class:`p3d.windows.ClipWindows`) long enough for every offset. Offset > 0: the visual window starts
    later than the speech window.

    Returns:
        ``offsets`` (O,); ``speech`` (W, D); ``mesh`` (W, O, D) unit embeddings; ``cosine`` (W, O)
        speech-mesh cosine similarity; ``clip`` (W,) stems; ``start`` (W,) speech window starts (frames).
    """
    offs = np.asarray([int(o) for o in offsets], dtype=np.int64)
    if offs.size == 0 or n_windows < 1:
        raise InputError(f"offsets / n_windows: expected offsets and n_windows >= 1, got {offs.tolist()}, {n_windows}")
    _, _, key, _ = _encoders(model)
    lo, hi = int(min(0, offs.min())), int(max(0, offs.max()))
    long_enough = [ci for ci in range(dataset.n_clips) if dataset.n_pairs[ci] > hi - lo]
    if not long_enough:
        raise InputError(f"dataset: no clip has {hi - lo + 1} windows for offsets {lo}..{hi}")
    chosen = [long_enough[i] for i in _subset(len(long_enough), n_windows)]
    speech, mesh, starts = [], [], []
    import torch

    with eval_mode(model), torch.no_grad():
        for ci in chosen:
            n = dataset.n_pairs[ci]
            start = min(max(n // 2, -lo), n - 1 - hi)
            batch = dataset.batch([(ci, start)] + [(ci, start + int(o)) for o in offs])
            s, o = _embed_batch(model, batch)
            speech.append(s[0])
            mesh.append(o[1:])
            starts.append(start)
    sp, me = np.stack(speech), np.stack(mesh)
    return {"offsets": offs, "speech": sp, key: me, "cosine": np.einsum("wd,wod->wo", sp, me),
            "clip": np.asarray([dataset.clips[ci].stem for ci in chosen]), "start": np.asarray(starts)}


def fig1b_summary(points: Any, groups: Any, levels_2d: Mapping[str, Any], trajectories: Mapping[str, Any],
                  explained_variance_ratio: Any) -> dict[str, Any]:
    """The numbers under Fig. 1b, one per property, in the 2-D plane of :func:`fit_projection`.

    Args:
        points, groups: the projected windows (N, 2) and their phoneme groups (N,) (``""``: no group).
        levels_2d: :func:`level_means` of the projected intensity-level features.
        trajectories: :func:`offset_trajectories` (its ``offsets`` must hold 0).
        explained_variance_ratio: the projection's, one per axis.

    Returns:
        ``PC1+PC2 variance share``; ``2-D silhouette of groups`` (:func:`projected_separation`);
        ``low->high length (2-D)``: the length of the overall lowest -> highest level step; ``identities with arrow
        along the mean (cos > 0)`` among ``identities``, those with both the lowest and the highest level (an
        identity without one has no arrow); ``window sims at offset 0``: each trajectory window's speech-mesh cosine
        similarity when aligned.
    """
    per = np.asarray(levels_2d["per_identity"], dtype=np.float64)  # (I, L, 2)
    overall = np.asarray(levels_2d["overall"], dtype=np.float64)  # (L, 2)
    step = per[:, -1] - per[:, 0]
    has = np.all(np.isfinite(step), axis=1)
    mean_step = overall[-1] - overall[0]
    offsets = [int(o) for o in np.asarray(trajectories["offsets"])]
    if 0 not in offsets:
        raise InputError(f"trajectories: offsets {offsets} leave out 0 (the aligned windows)")
    aligned = np.asarray(trajectories["cosine"], dtype=np.float64)[:, offsets.index(0)]
    return {
        "PC1+PC2 variance share": float(np.sum(explained_variance_ratio)),
        "2-D silhouette of groups": projected_separation(points, groups),
        "low->high length (2-D)": float(np.linalg.norm(mean_step)),
        "identities with arrow along the mean (cos > 0)": int(np.sum(step[has] @ mean_step > 0)),
        "identities": int(has.sum()),
        "window sims at offset 0": ", ".join(f"{v:.2f}" for v in aligned),
    }


__all__ = ["Projection2D", "embed_windows", "fig1b_summary", "fit_projection", "group_centroids", "gt_pair_stats",
           "intensity_direction", "level_means", "offset_similarity", "offset_trajectories", "phoneme_groups",
           "phoneme_separability", "projected_separation", "raw_features", "retrieval_at_k", "retrieval_summary", "tsne"]
