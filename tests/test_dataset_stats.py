"""Notebook 01's tables of the corpora: Table S2 beside the paper's, Fig. S2's spreads, the data's own SLCC."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from p3d import paper
from p3d.dataset_stats import SIGMA_COLUMNS, data_slcc, intensity_sigma, table_s2_with_paper
from p3d.metrics import slcc


def _stats(seed, n=12):
    rng = np.random.default_rng(seed)
    speech = rng.uniform(0.05, 0.2, n)
    return pd.DataFrame({"identity": np.repeat(["a", "b", "c"], n // 3), "speech_intensity": speech,
                         "lip_intensity": 0.01 * speech + 1e-4 * rng.normal(size=n),
                         "lip_intensity_norm": rng.normal(size=n)})


def test_table_s2_with_the_paper_rows_labelled():
    ours = pd.DataFrame([{"dataset": "synth-voca", "clips": 10, "identities": 3, "hours": 0.01, "fps": 30}])
    table = table_s2_with_paper(ours)
    assert table.iloc[0].to_dict() == {**ours.iloc[0].to_dict(), "source": "p3d, measured"}
    assert len(table) == 1 + len(paper.TABLE_S2) and set(table["source"].iloc[1:]) == {"paper Table S2"}
    name, s = next(iter(paper.TABLE_S2.items()))
    assert table.iloc[1][["dataset", "clips", "identities", "hours", "fps"]].tolist() == [
        f"{name} (paper)", s.clips, s.speakers, s.hours, s.fps]


def test_table_s2_counts_every_clip_of_a_processed_vocaset(tmp_path):
    """A processed VOCASET's Corpus lists the official splits' clips only, which leaves out sentences 1-20 of the
    validation and test subjects (79 of VOCASET's clips, against the paper's 475): Table S2 counted 3 of these 5
    clips and 1.5 of their 2.5 s. A corrupt vertex file was a numpy ValueError traceback, not an InputError."""
    from release_fixtures import write_processed_vocaset

    from p3d.corpus import Corpus
    from p3d.dataset_stats import table_s2
    from p3d.errors import InputError

    val, train = "FaceTalk_170811_03275_TA", "FaceTalk_170725_00137_TA"
    root = write_processed_vocaset(tmp_path / "voca", [(train, 1, 0.5), (train, 30, 0.5), (val, 1, 0.5),
                                                       (val, 21, 0.5), (val, 2, 0.5)])
    (root / "vertices_npy" / "condition_x_subject_y.npy").write_bytes(b"not a clip")  # not a clip name: ignored
    corpus = Corpus.open(root)
    assert len(corpus.clips) == 3  # the protocol's clips
    row = table_s2({"VOCASET": corpus}).iloc[0]
    assert (row["clips"], row["identities"], row["fps"]) == (5, 2, 30.0)
    assert row["hours"] == round(5 * 30 / 60 / 3600, 3)
    (root / "vertices_npy" / f"{val}_sentence02.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(InputError, match=f"{val}_sentence02.npy"):
        table_s2({"VOCASET": corpus})


def test_intensity_sigma_and_data_slcc():
    stats = {"synth-voca": _stats(0), "synth-mead": _stats(1, 9)}
    sigma = intensity_sigma(stats)
    assert sigma["dataset"].tolist() == ["synth-voca", "synth-mead"]
    # the units in the headers (they were "speech σ" and "lip/eye σ": full-scale RMS and eye distances per frame
    # unsaid, while the official speech intensity is in int16 units)
    speech, lip = "speech σ (clip RMS, full scale 1)", "lip/eye σ (eye distances / frame)"
    assert sigma.columns.tolist() == ["dataset", speech, lip]
    assert sigma[speech].iloc[1] == pytest.approx(np.std(stats["synth-mead"]["speech_intensity"], ddof=1))
    assert sigma[lip].iloc[0] == pytest.approx(np.std(stats["synth-voca"]["lip_intensity_norm"], ddof=1))
    own = data_slcc(stats)
    v = stats["synth-voca"]
    assert own.iloc[0][["dataset", "clips", "source"]].tolist() == ["synth-voca", 12, "p3d, measured"]
    assert own["SLCC (data)"].iloc[0] == pytest.approx(slcc(v["speech_intensity"], v["lip_intensity"], v["identity"]))
    assert own["dataset"].tolist()[2:] == ["VOCASET (paper)", "MEAD-3D (paper, Avg)"]
    assert own["SLCC (data)"].tolist()[2:] == [paper.VOCASET_DATA.slcc, paper.MEAD_DATA.slcc[-1]]
    assert set(own["source"].iloc[2:]) == {"paper Tables 2 and 4, data rows"} and own["clips"].iloc[2:].isna().all()


def test_fig_s2_draws_every_dataset():
    """plot_fig_s2 zipped the datasets with five colours: a sixth dataset (and any after it) was silently left
    out of both histograms and their legends."""
    import pandas as pd

    from p3d.dataset_stats import plot_fig_s2

    rng = np.random.default_rng(0)
    data = {f"d{i}": pd.DataFrame({"speech_intensity": rng.uniform(size=8), "lip_intensity_norm": rng.uniform(size=8)})
            for i in range(7)}
    fig = plot_fig_s2(data, bins=4)
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [lab.split(" ")[0] for lab in labels] == list(data)



def test_fig_s2_sigma_is_the_tables_with_a_missing_value():
    """The legend's σ was np.std over every clip: one NaN clip made it "σ = nan" where intensity_sigma's table
    (pandas, NaN skipped) gave the spread; an inf was a ValueError traceback from the histogram's range."""
    from p3d.dataset_stats import plot_fig_s2

    data = {"A": pd.DataFrame({"speech_intensity": [0.1, 0.2, np.nan, 0.15],
                               "lip_intensity_norm": [0.01, 0.02, 0.03, 0.5]})}
    sigma = intensity_sigma(data)
    fig = plot_fig_s2(data, bins=4)
    for ax, col in zip(fig.axes, SIGMA_COLUMNS):
        (text,) = [t.get_text() for t in ax.get_legend().get_texts()]
        assert text == f"A (σ = {sigma[col].iloc[0]:.3g})" and "nan" not in text
    data["A"].loc[3, "lip_intensity_norm"] = np.inf
    plot_fig_s2(data, bins=4)

@pytest.mark.parametrize("kw", [{"max_clips": True}, {"max_clips": 0}, {"max_clips": -1}, {"max_clips": 2.5},
                                {"max_clips": "2"}, {"max_clips": 2, "seed": -1}, {"max_clips": 2, "seed": True}])
def test_intensities_refuses_a_bad_sample_size_or_seed(kw, tmp_path):
    """max_clips=True, 2.5 or "2" and seed=-1 were TypeError/ValueError tracebacks from numpy, max_clips=-1 too,
    and max_clips=0 an empty table without columns."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import Corpus
    from p3d.dataset_stats import intensities
    from p3d.errors import InputError

    corpus = Corpus.open(write_tiny_corpus(tmp_path / "c", identities={"train": 1}, clips_per_identity=3,
                                           seconds=1.0, lip_video=False))
    with pytest.raises(InputError, match="max_clips|seed"):
        intensities(corpus, **kw)
    assert len(intensities(corpus, max_clips=np.int64(2), seed=np.int64(1))) == 2


def test_corpus_slcc_samples_max_clips_of_the_split(tmp_path):
    """corpus_slcc(split, max_clips) drew max_clips from the whole corpus and kept the split's among them: 6 of 36
    clips left about 2 of the 12 test clips, and SLCC failed on them; the sample is now drawn from the split."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import Corpus
    from p3d.dataset_stats import intensities
    from p3d.synth.corpus import corpus_slcc

    corpus = Corpus.open(write_tiny_corpus(tmp_path / "c", identities={"train": 6, "test": 3}, clips_per_identity=4))
    test = intensities(corpus, max_clips=6, seed=1, split="test")
    assert len(test) == 6 and set(test["split"]) == {"test"}
    assert len(intensities(corpus, max_clips=6, seed=1)) == 6 and intensities(corpus, split="test")["stem"].tolist() \
        == [c.stem for c in corpus.select("test")]
    assert corpus_slcc(corpus, split="test", max_clips=8)["n"].tolist() == [8]


def test_table_s2_and_intensities_of_a_corpus_with_meta(tmp_path):
    """A corpus with meta.json counts its clips.csv rows (not every vertex file), its hours at the vertex files' rate (50 fps here, the
    models' 25 fps only in the fps column), and each clip's intensities are: the samples' RMS (full scale 1), the
    eye distance on the identity's template (the eye_pair vertices' distance) and the lip intensity over it."""
    from tiny_corpus import write_tiny_corpus

    from p3d.corpus import Corpus
    from p3d.dataset_stats import intensities, table_s2

    corpus = Corpus.open(write_tiny_corpus(tmp_path / "c", fps=50, model_fps=25, identities={"train": 2},
                                           clips_per_identity=2, seconds=3.0, lip_video=False))
    # a vertex file that clips.csv does not list is not a clip of this corpus
    np.save(corpus.root / "vertices_npy" / "stray_sentence09.npy", np.zeros((150, 30, 3), np.float32))
    row = table_s2({"tiny": corpus}).iloc[0]
    assert (row["clips"], row["identities"], row["fps"]) == (4, 2, 25.0)
    assert row["hours"] == round(4 * 3.0 / 3600, 3) == 0.003  # at 25 fps the 150 frames would be 6 s each: 0.007
    stats = intensities(corpus)
    assert stats["stem"].tolist() == [c.stem for c in corpus.clips]
    a, b = corpus.topology.eye_pair
    for clip, r in zip(corpus.clips, stats.itertuples()):
        audio, _ = corpus.audio(clip)
        assert r.speech_intensity == pytest.approx(np.sqrt(np.mean(np.asarray(audio, np.float64) ** 2)), rel=1e-6)
        template = np.asarray(corpus.templates[clip.identity], np.float64)
        assert r.eye_distance == pytest.approx(np.linalg.norm(template[a] - template[b]), rel=1e-9)
        assert r.lip_intensity_norm == pytest.approx(r.lip_intensity / r.eye_distance, rel=1e-12)
