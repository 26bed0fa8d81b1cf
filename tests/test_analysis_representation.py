"""Representation analyses: retrieval, offsets, GT-pair InfoNCE, t-SNE, intensity direction."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from p3d.analysis.representation import (
    embed_windows, gt_pair_stats, intensity_direction, offset_similarity, offset_summary, phoneme_groups,
    phoneme_separability, raw_features, retrieval_at_k, retrieval_summary, tsne,
)
from p3d.errors import InputError
from p3d.losses.infonce import info_nce
from p3d.models.dual_encoder import DualEncoder
from p3d.windows import SpeechMeshWindows
from tiny_corpus import write_tiny_corpus


class OracleCritic(DualEncoder):
    """Hand-made critic for the tiny corpus: speech -> centred per-frame loudness (5 values: 4 fbank
    frames per mesh frame), mesh -> centred lip opening (5 values). Both follow the same envelope."""

    kind = "oracle"

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    @property
    def n_vertices(self):
        return 30

    def encode_speech(self, fbank):
        loud = fbank[:, :20].mean(dim=2).reshape(-1, 5, 4).mean(dim=2)
        return F.normalize(loud - loud.mean(dim=1, keepdim=True), dim=1)

    def encode_mesh(self, vertices):
        v = vertices.reshape(vertices.shape[0], 5, -1, 3)
        opening = v[:, :, 9, 1] - v[:, :, 0, 1]
        return F.normalize(opening - opening.mean(dim=1, keepdim=True), dim=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("c"), identities={"train": 2, "test": 2}, clips_per_identity=2,
                             seconds=1.6, levels=True)


def test_retrieval_at_k_hand_case():
    a = np.eye(4)
    b = np.eye(4)[[0, 2, 1, 3]]  # rows 1 and 2 swapped: queries 0 and 3 find their pair first
    r = retrieval_at_k(a, b, ks=(1, 2, 5))
    assert r["n"] == 4
    assert r["speech_to_mesh"] == {1: 0.5, 2: 0.5, 5: 1.0}  # rows 1, 2: the true pair ties with 2 others
    assert r["mesh_to_speech"] == {1: 0.5, 2: 0.5, 5: 1.0}
    assert r["chance"] == {1: 0.25, 2: 0.5, 5: 1.0}
    near = np.array([[1.0, 0.1], [0.9, 0.5], [0.0, 1.0]])
    r = retrieval_at_k(near, near[[0, 1, 2]] + [[0, 0], [0, 0], [0.2, 0]], ks=(1,), names=("s", "v"))
    assert r["s_to_v"][1] == 1.0 and set(r) == {"n", "s_to_v", "v_to_s", "chance"}
    const = retrieval_at_k(np.ones((5, 3)), np.ones((5, 3)))  # ties count against the query
    assert const["speech_to_mesh"][1] == 0.0
    with pytest.raises(InputError, match="equal shape"):
        retrieval_at_k(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(InputError, match="NaN"):
        retrieval_at_k(np.full((2, 2), np.nan), np.ones((2, 2)))


def test_embed_windows_and_retrieval_of_the_oracle(corpus):
    ds = SpeechMeshWindows(corpus, "test", stride=5)
    e = embed_windows(OracleCritic(), ds, batch_size=7)
    n = len(ds)
    assert e["speech"].shape == (n, 5) and e["mesh"].shape == (n, 5) and e["clip"].shape == (n,)
    assert set(e["labels"]) == {"phoneme", "viseme"} and e["labels"]["phoneme"].min() >= 0
    assert set(e["level"].tolist()) <= {1, 2, 3} and e["index"].tolist() == list(range(n))
    r = retrieval_at_k(e["speech"], e["mesh"])
    assert r["speech_to_mesh"][5] > 3 * r["chance"][5]
    sub = embed_windows(OracleCritic(), ds, max_items=5)
    assert sub["index"].tolist() == np.linspace(0, n - 1, 5).round().astype(int).tolist()


def test_offset_similarity_peaks_at_zero(corpus):
    df = offset_similarity(OracleCritic(), corpus, "test", offsets=range(-6, 7))
    assert list(df.columns) == ["offset", "offset_ms", "mean", "ci_low", "ci_high", "std", "n_pairs", "n_clips",
                                "vs_far", "vs_far_ci_low", "vs_far_ci_high"]
    at = df.set_index("offset")
    assert at.loc[0, "mean"] > 0.6 and at.loc[0, "mean"] == df["mean"].max()
    assert at.loc[5, "mean"] < at.loc[0, "mean"] - 0.5 and at.loc[-5, "mean"] < at.loc[0, "mean"] - 0.5
    assert at.loc[2, "offset_ms"] == 80.0 and (df["n_clips"] == 4).all()
    assert at.loc[0, "ci_low"] < at.loc[0, "mean"] < at.loc[0, "ci_high"]
    ds = SpeechMeshWindows(corpus, "test")
    assert at.loc[0, "n_pairs"] == sum(ds.n_pairs) and at.loc[3, "n_pairs"] == sum(ds.n_pairs) - 3 * ds.n_clips
    one = offset_similarity(OracleCritic(), ds, None, offsets=[0], max_clips=1)
    assert one["n_clips"].item() == 1 and math.isnan(one["ci_low"].item())
    assert math.isnan(one["vs_far"].item())  # no offset with |offset| >= 5: no contrast
    # vs_far: per clip, the similarity at the offset minus that clip's own mean at |offset| >= 5
    by_clip = offset_similarity(OracleCritic(), ds, None, offsets=[0], max_clips=1)
    far_only = [offset_similarity(OracleCritic(), ds, None, offsets=[o], max_clips=1)["mean"].item()
                for o in (-6, -5, 5, 6)]
    one = offset_similarity(OracleCritic(), ds, None, offsets=[-6, -5, 0, 5, 6], max_clips=1).set_index("offset")
    assert one.loc[0, "vs_far"] == pytest.approx(by_clip["mean"].item() - np.mean(far_only), abs=1e-6)
    assert one.loc[5, "vs_far"] + one.loc[-5, "vs_far"] + one.loc[6, "vs_far"] + one.loc[-6, "vs_far"] \
        == pytest.approx(0.0, abs=1e-6)
    assert at.loc[0, "vs_far_ci_low"] < at.loc[0, "vs_far"] < at.loc[0, "vs_far_ci_high"]
    assert at.loc[0, "vs_far"] == pytest.approx(at.loc[0, "mean"] - df.loc[df["offset"].abs() >= 5, "mean"].mean(),
                                                abs=1e-6)  # every clip has every offset here
    with pytest.raises(InputError):
        offset_similarity(OracleCritic(), ds, None, offsets=[0], far=0)


def test_offset_summary_is_the_table_the_claim_is_judged_on(corpus, tmp_path):
    from p3d.claims import assess

    curve = offset_similarity(OracleCritic(), corpus, "test", offsets=range(-6, 7))
    table = offset_summary({"ours": curve})
    at0 = curve.set_index("offset").loc[0]
    row = table.set_index("critic").loc["ours"]
    assert row["peak offset"] == 0 and row["sim at 0"] == at0["mean"]
    assert row["mean sim at |offset| >= 5"] == pytest.approx(curve.loc[curve["offset"].abs() >= 5, "mean"].mean())
    assert (row["sim at 0 minus far"], row["sim at 0 minus far CI low"]) == (at0["vs_far"], at0["vs_far_ci_low"])
    table.to_csv(tmp_path / "fig5a_offset_summary.csv", index=False)
    judged = assess(tmp_path).set_index("key").loc["prop-temporal"]
    assert judged["verdict"] == "reproduced" and "fixed" not in judged["p3d"]


def test_gt_pair_stats_is_per_window_infonce(corpus):
    ds = SpeechMeshWindows(corpus, "test", stride=3)
    model = OracleCritic()
    one = gt_pair_stats(model, ds, batch_size=len(ds))
    e = embed_windows(model, ds)
    s, m = torch.from_numpy(e["speech"]).double(), torch.from_numpy(e["mesh"]).double()
    assert one["loss"].mean() == pytest.approx(info_nce(s, m, model.temperature).item(), rel=1e-9)
    order = np.argsort(one["index"].to_numpy())
    np.testing.assert_allclose(one["cosine"].to_numpy()[order], (s * m).sum(1).numpy(), atol=1e-9)
    batches = gt_pair_stats(model, ds, batch_size=8, seed=1)
    assert len(batches) == len(ds) - (len(ds) % 8 == 1) and set(batches["batch_size"]) <= {8, len(ds) % 8}
    assert {"clip", "identity", "start", "level"} <= set(batches.columns)
    with pytest.raises(InputError, match="at least 2"):
        gt_pair_stats(model, ds, batch_size=1)


def test_pair_stats_by_split_and_their_medians(corpus):
    """Figs. S6/S7 of notebook 04: each critic's GT-pair statistics on train and test windows, and their medians."""
    from p3d.analysis.representation import pair_stats_by_split

    critics = {"a": OracleCritic(), "b": OracleCritic()}
    pairs, medians = pair_stats_by_split(critics, corpus, ("train", "test"), stride=3, seed=1, max_items=10)
    direct = gt_pair_stats(critics["a"], SpeechMeshWindows(corpus, "test", stride=3), seed=1, max_items=10)
    a = pairs["a"]
    assert list(pairs) == ["a", "b"] and a["split"].tolist() == ["train"] * 10 + ["test"] * 10
    np.testing.assert_allclose(a[a["split"] == "test"]["loss"].to_numpy(), direct["loss"].to_numpy())
    assert list(medians.columns) == ["split", "loss", "cosine", "critic"]
    assert medians[["critic", "split"]].values.tolist() == [["a", "test"], ["a", "train"], ["b", "test"], ["b", "train"]]
    assert medians["loss"].iloc[0] == pytest.approx(direct["loss"].median())


def test_intensity_table_rows():
    from p3d.analysis.representation import intensity_table

    full = {"level_projection": {1: -1.0, 2: 0.0, 3: 1.0}, "loio_ordered_fraction": 0.5, "loio_chance": 1 / 6,
            "direction_cosine_mean": 0.7, "n_identities": 4}
    table = intensity_table({"ours": full, "control": {"level_projection": {1: 0.1, 3: 0.2}}})
    assert table.columns.tolist() == ["critic", "level 1 mean projection", "level 2 mean projection",
                                      "level 3 mean projection", "LOIO ordered fraction", "LOIO chance",
                                      "direction cosine (identities)", "identities"]
    assert table.iloc[0].tolist() == ["ours", -1.0, 0.0, 1.0, 0.5, pytest.approx(1 / 6), 0.7, 4]
    row = table.iloc[1]
    assert np.isnan(row["level 2 mean projection"]) and np.isnan(row["LOIO chance"]) and row["identities"] == 0


def test_tsne_shape_and_seed():
    x = np.random.default_rng(0).standard_normal((25, 6))
    a, b = tsne(x, seed=3), tsne(x, seed=3)
    assert a.shape == (25, 2) and np.allclose(a, b)
    with pytest.raises(InputError, match="N >= 4"):
        tsne(x[:3])


def test_intensity_direction_consistent_and_not():
    rng = np.random.default_rng(0)
    d = rng.standard_normal(16)
    d /= np.linalg.norm(d)
    ids = np.repeat(np.arange(6), 30)
    levels = np.tile(np.repeat([1, 2, 3], 10), 6)
    offsets = rng.standard_normal((6, 16)) * 0.5
    feats = offsets[ids] + (levels[:, None] - 2) * d + 0.1 * rng.standard_normal((180, 16))
    out = intensity_direction(feats, levels, ids)
    assert out["levels"].tolist() == [1, 2, 3] and out["level_means"].shape == (3, 16)
    assert abs(out["direction"] @ d) > 0.95
    lp = out["level_projection"]
    assert lp[1] < lp[2] < lp[3] and out["spearman"][0] > 0.5
    assert out["loio_ordered_fraction"] == 1.0 and out["direction_cosine_mean"] > 0.9
    assert out["loio_chance"] == pytest.approx(1 / 6) and out["n_identities"] == 6
    assert out["plane"].shape == (180, 2)
    # each identity moves in its own random direction: no consistent direction
    own = rng.standard_normal((6, 16))
    messy = offsets[ids] + (levels[:, None] - 2) * own[ids] + 0.1 * rng.standard_normal((180, 16))
    bad = intensity_direction(messy, levels, ids)
    assert bad["direction_cosine_mean"] < 0.5 and bad["loio_ordered_fraction"] < 1.0
    none = intensity_direction(feats, np.where(levels == 2, -1, levels))
    assert none["levels"].tolist() == [1, 3] and np.isnan(none["projection"][levels == 2]).all()
    with pytest.raises(InputError, match="two intensity levels"):
        intensity_direction(feats, np.ones(180, int))
    # four of six identities lack level 2: two levels are ordered by chance half the time, not 1/3! of it
    gaps = np.where((levels == 2) & (ids < 4), -1, levels)
    assert intensity_direction(feats, gaps, ids)["loio_chance"] == pytest.approx((4 / 2 + 2 / 6) / 6)


def test_intensity_directions_of_every_model(corpus):
    """Fig. 5b of notebook 04: each model's speech embeddings of every clip and their intensity direction."""
    from p3d.analysis.representation import intensity_directions

    ds = SpeechMeshWindows(corpus, "train", stride=3)
    models = {"oracle": OracleCritic(), "raw": raw_features(ds.n_vertices, ds.vertex_statistics()[0])}
    directions, embeddings = intensity_directions(models, corpus, None, stride=3)
    assert list(directions) == list(embeddings) == ["oracle", "raw"]
    for name, m in models.items():
        e = embed_windows(m, SpeechMeshWindows(corpus, None, stride=3))
        np.testing.assert_array_equal(embeddings[name]["speech"], e["speech"])
        want = intensity_direction(e["speech"], e["level"], e["identity"])
        got = directions[name]
        np.testing.assert_array_equal(got["direction"], want["direction"])
        assert got["level_projection"] == want["level_projection"]
        assert got["n_identities"] == want["n_identities"] == 4


def test_phoneme_groups():
    names = ["_", "aI", "'aI", "s", "z", "m", "k"]
    out = phoneme_groups(np.array([1, 2, 3, 4, 5, 6, 0, -1, 9]), names)
    assert out.tolist() == ["aj", "aj", "s,z", "s,z", "m", "", "", "", ""]
    assert phoneme_groups([0], ["x"], groups={"G": ["x"]}).tolist() == ["G"]


def test_phoneme_views_panels_and_separability():
    """Notebook 04's Fig. 4: a t-SNE panel for the named critics only, their windows drawn by one generator in turn;
    the separability of every embedding's speech and mesh features."""
    from p3d.analysis.representation import phoneme_views

    names = ["_", "aI", "s", "m", "f"]
    rng = np.random.default_rng(0)

    def emb(n):
        ids = rng.integers(0, len(names), n)
        return {"labels": {"phoneme": ids}, "speech": rng.normal(size=(n, 4)) + ids[:, None],
                "mesh": rng.normal(size=(n, 4)) - ids[:, None], "clip": np.arange(n) // 5}

    embeddings = {"ours": emb(60), "control": emb(50), "no2d": emb(40)}
    panels, table = phoneme_views(embeddings, names, tsne_of=["ours", "no2d"], max_points=30, seed=2)
    assert list(panels) == ["ours", "no2d"]
    draw = np.random.default_rng(2)
    for name in ("ours", "no2d"):
        e = embeddings[name]
        pick = draw.permutation(len(e["clip"]))[:30]
        groups = phoneme_groups(e["labels"]["phoneme"], names)
        np.testing.assert_allclose(panels[name]["points"], tsne(np.concatenate([e["speech"][pick], e["mesh"][pick]]), seed=2))
        assert panels[name]["group"].tolist() == [*groups[pick], *groups[pick]]
        assert panels[name]["modality"].tolist() == ["speech"] * 30 + ["mesh"] * 30
    assert list(zip(table["critic"], table["features"])) == [(n, m) for n in embeddings for m in ("speech", "mesh")]
    e = embeddings["control"]
    want = phoneme_separability(e["mesh"], phoneme_groups(e["labels"]["phoneme"], names), clusters=e["clip"], seed=2)
    assert table.iloc[3].drop(["critic", "features"]).to_dict() == pytest.approx(want, nan_ok=True)


def test_speech_tsne_panel_subsamples_by_seed():
    """Notebook 02's Fig. S1b: the speech embeddings of the first max_points windows of a default_rng(seed)
    permutation, with their phoneme groups; every window when there are fewer."""
    from p3d.analysis.representation import speech_tsne_panel

    names = ["_", "aI", "s", "m", "f"]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(names), 40)
    e = {"labels": {"phoneme": ids}, "speech": rng.normal(size=(40, 4)) + ids[:, None]}
    panel = speech_tsne_panel(e, names, max_points=30, seed=3)
    pick = np.random.default_rng(3).permutation(40)[:30]
    np.testing.assert_array_equal(panel["points"], tsne(e["speech"][pick], seed=3))
    assert panel["group"].tolist() == phoneme_groups(ids, names)[pick].tolist()
    assert {"aj", "s,z", "m", "f,v"} <= set(panel["group"])
    assert panel["modality"].tolist() == ["speech"] * 30
    assert len(speech_tsne_panel(e, names, max_points=2000)["points"]) == 40
    with pytest.raises(InputError, match="max_points"):
        speech_tsne_panel(e, names, max_points=-1)


def test_retrieval_summary_matches_retrieval_at_k(corpus):
    ds = SpeechMeshWindows(corpus, "test", stride=5)
    e = embed_windows(OracleCritic(), ds)
    r = retrieval_at_k(e["speech"], e["mesh"])
    row = retrieval_summary(OracleCritic(), corpus, "test", stride=5, name="oracle").iloc[0]
    assert row["model"] == "oracle" and row["windows"] == len(ds)
    assert row["speech->mesh R@1"] == r["speech_to_mesh"][1] and row["mesh->speech R@5"] == r["mesh_to_speech"][5]
    assert row["chance R@1"] == pytest.approx(1 / len(ds))


def test_phoneme_separability_separable_vs_random():
    rng = np.random.default_rng(0)
    groups = np.array(["aj", "m", "s,z", ""] * 60, dtype=object)
    centres = {"aj": [1, 0, 0], "m": [0, 1, 0], "s,z": [0, 0, 1], "": [1, 1, 1]}
    x = np.array([centres[g] for g in groups]) + 0.2 * rng.normal(size=(len(groups), 3))
    clips = np.repeat(np.arange(24), 10)
    good = phoneme_separability(x, groups, clusters=clips)
    assert good["accuracy"] > 0.95 and good["chance"] == pytest.approx(1 / 3) and good["n"] == 180
    assert good["n_clusters"] == 24 and good["ci_low"] <= good["accuracy"] <= good["ci_high"]  # CI over clips
    noise = phoneme_separability(rng.normal(size=x.shape), groups, seed=1)
    assert abs(noise["accuracy"] - noise["chance"]) < 0.15
    with pytest.raises(InputError, match="2 groups"):
        phoneme_separability(x[:20], np.array(["aj"] * 20, dtype=object))
    with pytest.raises(InputError, match="expected"):
        phoneme_separability(x, groups[:5])


def test_phoneme_separability_few_rows_caps_k_at_the_training_fold():
    """k-NN was built with k = min(k, all rows - 1), more neighbours than a training fold holds when the rows are
    few: 10 rows in 5 folds (8 to fit on) gave a NaN accuracy (every fold's score failed) without clusters and a
    ValueError traceback with them. k is now capped by the smallest training fold; bad k / folds are InputErrors."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    groups = np.array(["aj", "m"] * 5, dtype=object)
    x = np.array([[1.0, 0.0] if g == "aj" else [0.0, 1.0] for g in groups]) + 0.05 * rng.normal(size=(10, 2))
    clips = np.arange(10) // 2
    x32, y = x.astype(np.float32), groups.astype(str)
    knn = KNeighborsClassifier(n_neighbors=8, metric="cosine")  # k = 10 capped at the 8 rows of a training fold
    plain = phoneme_separability(x, groups)
    want = cross_val_score(knn, x32, y, cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0))
    assert np.isfinite(plain["accuracy"]) and plain["accuracy"] == pytest.approx(np.mean(want))
    grouped = phoneme_separability(x, groups, clusters=clips)
    want = cross_val_predict(knn, x32, y, cv=GroupKFold(n_splits=5), groups=clips)
    assert grouped["accuracy"] == pytest.approx(np.mean(want == y))
    assert phoneme_separability(x, groups, k=3)["accuracy"] == pytest.approx(1.0)
    for bad in ({"k": 0}, {"folds": 1}, {"k": 2.5}):
        with pytest.raises(InputError, match="whole number"):
            phoneme_separability(x, groups, **bad)


def test_raw_features_control(corpus):
    ds = SpeechMeshWindows(corpus, "test", stride=5)
    mean, _ = ds.vertex_statistics()
    e = embed_windows(raw_features(ds.n_vertices, mean), ds)
    batch = ds.collate(list(range(len(ds))))
    expected = batch["mesh"].flatten(1).numpy() - np.tile(mean, 5)
    np.testing.assert_allclose(e["mesh"], expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(e["speech"], axis=1), 1.0, atol=1e-5)
    with pytest.raises(InputError, match="vertex_mean"):
        raw_features(ds.n_vertices, np.zeros(3))


def test_projected_cloud_stacks_speech_then_mesh_with_their_groups():
    """Fig. 1b (a)'s cloud: the speech rows, then the mesh rows of the same windows, each modality centred by its own
    mean; the groups repeated, the modality named per row."""
    from p3d.analysis.representation import fit_projection, projected_cloud

    rng = np.random.default_rng(0)
    speech, mesh = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)) + 10.0
    groups = np.array(["m", "p", "", "m", "f,v"], dtype=object)
    proj = fit_projection({"speech": speech, "mesh": mesh})
    cloud = projected_cloud(proj, speech, mesh, groups)
    assert cloud["points"].shape == (10, 2)
    assert np.allclose(cloud["points"][:5], proj.transform(speech, "speech"))
    assert np.allclose(cloud["points"][5:], proj.transform(mesh, "mesh"))
    assert np.allclose(cloud["points"].mean(axis=0), 0.0)  # the modality gap removed
    assert cloud["group"].tolist() == groups.tolist() * 2
    assert cloud["modality"].tolist() == ["speech"] * 5 + ["mesh"] * 5
    with pytest.raises(InputError, match="one row per window"):
        projected_cloud(proj, speech, mesh[:4], groups)


def test_fit_projection_keeps_separated_clusters_apart_and_removes_the_modality_gap():
    from p3d.analysis.representation import fit_projection, group_centroids, projected_separation

    rng = np.random.default_rng(0)
    d = 16
    a, b = np.zeros(d), np.zeros(d)
    a[0], b[0] = 3.0, -3.0
    groups = np.repeat(["a", "b"], 30).astype(object)
    speech = np.concatenate([a + 0.1 * rng.normal(size=(30, d)), b + 0.1 * rng.normal(size=(30, d))])
    gap = np.zeros(d)
    gap[1] = 10.0  # a constant mesh offset larger than the cluster split
    mesh = speech + gap + 0.1 * rng.normal(size=speech.shape)
    proj = fit_projection({"speech": speech, "mesh": mesh})
    pts = np.concatenate([proj.transform(speech, "speech"), proj.transform(mesh, "mesh")])
    g2 = np.concatenate([groups, groups])
    assert projected_separation(pts, g2) > 0.8
    c = group_centroids(pts, g2)
    assert np.linalg.norm(c["a"] - c["b"]) > 5.0
    assert abs(proj.components[0] @ np.eye(d)[0]) > 0.99  # the cluster axis, not the gap, comes first
    pooled = fit_projection({"speech": speech, "mesh": mesh}, center_each=False)
    assert abs(pooled.components[0] @ np.eye(d)[1]) > 0.99  # without per-modality centring the gap wins
    with pytest.raises(InputError, match="modality"):
        proj.transform(speech, "video")
    with pytest.raises(InputError, match="NaN"):
        fit_projection({"speech": np.full((3, d), np.nan)})


def test_level_means_arrow_direction_and_missing_levels():
    from p3d.analysis.representation import level_means

    levels = np.array([1, 2, 3, 1, 3, 1, -1])
    ids = np.array(["x", "x", "x", "y", "y", "y", "y"])
    pts = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [4, 1], [2, 1], [99, 99]], dtype=float)
    r = level_means(pts, levels, ids)
    assert r["levels"].tolist() == [1, 2, 3] and r["identities"].tolist() == ["x", "y"]
    np.testing.assert_allclose(r["overall"], [[2 / 3, 2 / 3], [1, 0], [3, 0.5]])
    np.testing.assert_allclose(r["per_identity"][1, 0], [1, 1])
    assert np.isnan(r["per_identity"][1, 1]).all()  # y has no level 2
    assert (r["overall"][-1] - r["overall"][0])[0] > 0  # low -> high points along +x
    with pytest.raises(InputError, match="two intensity levels"):
        level_means(pts, np.ones(7, dtype=int), ids)


def test_fig1b_summary_counts_only_identities_with_an_arrow():
    """Fig. 1b's numbers: the overall low -> high step, the identities whose own step points the same way (an
    identity without its lowest or highest level has no arrow and is not counted), the aligned similarities."""
    from p3d.analysis.representation import fig1b_summary, level_means, projected_separation

    levels = np.array([1, 3, 1, 3, 1, 3, 2])
    ids = np.array(["x", "x", "y", "y", "z", "z", "w"])
    pts = np.array([[0, 0], [2, 0], [0, 0], [-1, 0], [0, 0], [1, 1], [5, 5]], dtype=float)
    levels_2d = level_means(pts, levels, ids)  # w has level 2 only
    points = np.array([[0, 0], [0.1, 0], [5, 5], [5.1, 5]], dtype=float)
    groups = np.array(["a", "a", "b", "b"])
    traj = {"offsets": np.arange(-2, 3), "cosine": np.array([[0, 0.2, 0.91, 0.2, 0], [0, 0.1, 0.5, 0.1, 0]])}
    r = fig1b_summary(points, groups, levels_2d, traj, np.array([0.5, 0.25]))
    assert r["PC1+PC2 variance share"] == 0.75
    assert r["2-D silhouette of groups"] == projected_separation(points, groups)
    assert r["low->high length (2-D)"] == pytest.approx(np.hypot(2 / 3, 1 / 3))  # (0, 0) -> (2/3, 1/3)
    assert r["identities with arrow along the mean (cos > 0)"] == 2 and r["identities"] == 3  # x, z of x, y, z
    assert r["window sims at offset 0"] == "0.91, 0.50"
    with pytest.raises(InputError, match="leave out 0"):
        fig1b_summary(points, groups, levels_2d, {"offsets": [1, 2], "cosine": np.zeros((2, 2))}, [0.5, 0.25])


def test_offset_trajectories_peak_at_zero_for_the_oracle(corpus):
    from p3d.analysis.representation import offset_trajectories

    ds = SpeechMeshWindows(corpus, "test")
    r = offset_trajectories(OracleCritic(), ds, offsets=range(-3, 4), n_windows=2)
    assert r["speech"].shape == (2, 5) and r["mesh"].shape == (2, 7, 5) and r["cosine"].shape == (2, 7)
    np.testing.assert_allclose(r["cosine"], np.einsum("wd,wod->wo", r["speech"], r["mesh"]), atol=1e-6)
    assert np.all(r["start"] >= 3)
    assert r["cosine"].mean(axis=0).argmax() == 3  # offset 0
    with pytest.raises(InputError, match="no clip"):
        offset_trajectories(OracleCritic(), ds, offsets=range(-500, 501))


@pytest.mark.parametrize("levels", [np.array(["1", "2", "3"] * 4), [1, 2, None] * 4, [1.0, 2.0, np.nan] * 4,
                                    [True, False, True] * 4])
def test_intensity_functions_refuse_levels_that_are_not_numbers(levels):
    """Levels as text (e.g. read from file names) or None reached `lv >= 0` and were a numpy UFuncTypeError / TypeError
    traceback; NaN was dropped silently as if 'no level'. All are one-line InputErrors now."""
    from p3d.analysis.representation import level_means

    x = np.random.default_rng(0).normal(size=(12, 3))
    ids = np.repeat([0, 1], 6)
    with pytest.raises(InputError, match="levels"):
        intensity_direction(x, levels, ids)
    with pytest.raises(InputError, match="levels"):
        level_means(x, levels, ids)


def test_intensity_direction_holds_each_identity_out_of_its_own_direction():
    """LOIO (docstring): an identity's level means are ordered along the direction fitted *without* it, strictly.
    A moves along +e1 ten times as far as B and C move along -e1: the pooled direction is A's (+e1), so with A's own
    rows in the fit A would count as ordered; held out, every identity is judged on the others' direction and none
    is ordered. The identities' own directions are +e1, -e1, -e1: pairwise cosines -1, -1, +1, mean -1/3."""
    e1 = np.eye(3)[0]
    levels = np.tile([1, 2, 3], 3)
    ids = np.repeat(["A", "B", "C"], 3)
    step = np.repeat([10.0, -1.0, -1.0], 3) * (levels - 1)
    feats = step[:, None] * e1 + np.repeat(np.eye(3)[[1, 2, 1]], 3, axis=0)  # per-identity offsets off the e1 axis
    out = intensity_direction(feats, levels, ids)
    assert out["n_identities"] == 3 and out["loio_chance"] == pytest.approx(1 / 6)
    assert out["loio_ordered_fraction"] == 0.0
    assert out["direction_cosine_mean"] == pytest.approx(-1 / 3)
    # a tie between two levels is not "strictly increasing"
    flat = np.repeat([[0.0], [0.0], [1.0]], 1, axis=0)[np.tile([0, 1, 2], 2)] * e1
    assert intensity_direction(flat, np.tile([1, 2, 3], 2), np.repeat(["x", "y"], 3))["loio_ordered_fraction"] == 0.0
    # level 0 is a level (only entries < 0 are ignored)
    assert intensity_direction(feats, levels - 1, ids)["levels"].tolist() == [0, 1, 2]
    # one identity: no LOIO test, its chance still 1 / 3! for three levels
    alone = intensity_direction(feats[:3], levels[:3], ids[:3])
    assert alone["n_identities"] == 1 and alone["loio_chance"] == pytest.approx(1 / 6)


def test_retrieval_at_k_ranks_each_direction_on_its_own():
    """An asymmetric hand case: b = (e1, e1, e3) for a = (e1, e2, e3), so sim[i, j] = a_i . b_j is
    [[1, 1, 0], [0, 0, 0], [0, 0, 1]]. Speech queries (rows): a_0's pair ties with b_1 (rank 1), a_1's ties with
    all three (rank 2), a_2's is alone on top (rank 0): R@1 1/3, R@2 2/3. Mesh queries (columns): b_0 and b_2 find
    their pair first, b_1 (a zero column) ranks 2: R@1 2/3, R@2 2/3."""
    a = np.eye(3)
    b = np.eye(3)[[0, 0, 2]]
    r = retrieval_at_k(a, b, ks=(1, 2, 3))
    assert r["speech_to_mesh"] == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})
    assert r["mesh_to_speech"] == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 1.0})


def test_offset_similarity_interval_is_students_t_over_clips(corpus):
    """The CI over clips is Student's t with n_clips - 1 degrees of freedom: mean +- t(0.975, n - 1) std / sqrt(n)."""
    from scipy import stats

    df = offset_similarity(OracleCritic(), corpus, "test", offsets=[0, 1])
    for r in df.itertuples():
        half = stats.t.ppf(0.975, r.n_clips - 1) * r.std / math.sqrt(r.n_clips)
        assert (r.ci_low, r.ci_high) == pytest.approx((r.mean - half, r.mean + half))


def test_phoneme_groups_strip_every_stress_mark_and_separability_chance_is_the_majority():
    """Stress marks ' , % = are removed before the lookup; chance is the majority group's share of the labelled rows
    (with clusters too), not one over the number of groups."""
    assert phoneme_groups([0, 1, 2], [",s", "%m", "=aI"]).tolist() == ["s,z", "m", "aj"]
    rng = np.random.default_rng(0)
    groups = np.array(["aj", "aj", "aj", "m"] * 30, dtype=object)
    out = phoneme_separability(rng.normal(size=(120, 3)), groups, clusters=np.repeat(np.arange(12), 10))
    assert out["chance"] == pytest.approx(0.75)
