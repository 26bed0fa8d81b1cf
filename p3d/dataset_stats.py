"""Dataset statistics: Table S2 (clips, identities, hours, fps) and Fig. S2 (intensity distributions).

Works on any :class:`p3d.corpus.Corpus`: the synthetic corpora and real ones (a processed VOCASET
folder, or MEAD-3D / LRS3-3D folders in the same layout) whose paths a user provides.

Fig. S2 of the paper shows, per dataset, histograms of speech intensity (clip RMS) and of lip
intensity normalised by the eye distance (so FLAME and other topologies compare), with each
distribution's standard deviation σ.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from p3d.corpus import Corpus
from p3d.errors import InputError


def table_s2(corpora: Mapping[str, Corpus]) -> Any:
    """Table S2: one row per corpus: dataset, clips, identities, hours, fps (the models' frame rate,
    :attr:`Corpus.model_fps`: VOCASET's 60 fps capture counts as 30, as in the paper's table).

    Every clip of the dataset counts (:func:`dataset_clips`), not only those of the official splits. Hours are
    the total duration of the vertex sequences (frames / the vertex files' fps), read from ``.npy`` headers
    (:func:`p3d.io.npy_header`: a corrupt or truncated file is an :class:`InputError` naming it).
    """
    import pandas as pd

    rows = []
    for label, c in corpora.items():
        clips = dataset_clips(c)
        frames = sum(c.n_frames(stem, model_rate=False) for stem, _ in clips)
        rows.append({"dataset": label, "clips": len(clips), "identities": len({ident for _, ident in clips}),
                     "hours": round(frames / c.fps / 3600, 3), "fps": c.model_fps})
    return pd.DataFrame(rows)


def dataset_clips(corpus: Corpus) -> list[tuple[str, str]]:
    """(stem, identity) of every clip of a corpus: its ``clips.csv`` rows (a corpus with ``meta.json``), or, for a
    processed VOCASET or BIWI folder, every vertex file named as that dataset names its clips (``<subject>_sentenceNN``
    or ``<F|M><n>_eNN``), including those outside the official protocol that :attr:`Corpus.clips` leaves out (e.g.
    sentences 1-20 of VOCASET's validation and test subjects, 79 of its clips): Table S2 counts the dataset."""
    from p3d.corpus import BIWI_STEM, VOCASET_STEM

    if (corpus.root / "meta.json").exists():
        return [(c.stem, c.identity) for c in corpus.clips]
    pattern = BIWI_STEM if corpus.meta.get("kind") == "biwi" else VOCASET_STEM
    found = (pattern.match(p.stem) for p in sorted((corpus.root / "vertices_npy").glob("*.npy")))
    return [(m.string, m["subject"]) for m in found if m]


def table_s2_with_paper(ours: Any) -> Any:
    """Notebook 01's Table S2: :func:`table_s2` rows (``source`` "p3d, measured"), then the paper's Table S2 rows
    (:data:`p3d.paper.TABLE_S2`, ``dataset`` suffixed " (paper)", ``source`` "paper Table S2"): quoted beside ours,
    never mixed with them."""
    import pandas as pd

    from p3d import paper

    quoted = pd.DataFrame([{"dataset": f"{name} (paper)", "clips": s.clips, "identities": s.speakers, "hours": s.hours,
                            "fps": s.fps} for name, s in paper.TABLE_S2.items()])
    return pd.concat([ours.assign(source="p3d, measured"), quoted.assign(source="paper Table S2")], ignore_index=True)


def intensities(corpus: Corpus, max_clips: int | None = None, seed: int = 0, split: str | None = None) -> Any:
    """Per-clip speech intensity (RMS) and lip intensity (official RMS aggregate), raw and eye-normalised.

    Returns a DataFrame: stem, identity, split, level, speech_intensity, lip_intensity (m / frame at the
    model frame rate), eye_distance (m, on the identity's template), lip_intensity_norm (per frame, in
    eye distances). ``split``: that split's clips only (None: every clip); ``max_clips`` then samples
    ``max_clips`` of them at random (seeded) for big corpora.
    """
    import pandas as pd

    from p3d.metrics import lip_intensity, speech_intensity

    def whole(x: object) -> bool:  # a bool is not a count or a seed
        return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))

    if max_clips is not None and not (whole(max_clips) and max_clips >= 1):
        raise InputError(f"max_clips: expected None (every clip) or a number of clips >= 1, got {max_clips!r}")
    if not (whole(seed) and seed >= 0):
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}")
    clips = list(corpus.clips) if split is None else corpus.select(split)  # the split first, then the sample
    if max_clips is not None and len(clips) > max_clips:
        rng = np.random.default_rng(seed)
        clips = [clips[i] for i in sorted(rng.choice(len(clips), max_clips, replace=False))]
    topo = corpus.topology
    templates = corpus.templates
    rows = []
    for clip in clips:
        verts = corpus.vertices(clip)
        audio, _ = corpus.audio(clip)
        eye = topo.eye_distance(templates[clip.identity]) if clip.identity in templates else topo.eye_distance(verts)
        li = lip_intensity(verts, topo.lips)
        rows.append({"stem": clip.stem, "identity": clip.identity, "split": clip.split, "level": clip.level,
                     "speech_intensity": speech_intensity(audio), "lip_intensity": li, "eye_distance": eye,
                     "lip_intensity_norm": li / eye})
    return pd.DataFrame(rows)


def intensity_sigma(data: Mapping[str, Any]) -> Any:
    """Fig. S2's spreads (notebook 01): per dataset of ``data`` (``{label: intensities(...)}``) the standard deviation
    (pandas', ddof 1) over clips of the speech intensity (clip RMS, full scale 1: not the official ``extract_rms.py``'s
    int16 units) and of the eye-normalised lip intensity (eye distances per frame at the model frame rate), each
    column named with its unit as :func:`plot_fig_s2`'s axes are."""
    import pandas as pd

    return pd.DataFrame([{"dataset": k, SIGMA_COLUMNS[0]: v["speech_intensity"].std(),
                          SIGMA_COLUMNS[1]: v["lip_intensity_norm"].std()} for k, v in data.items()])


#: :func:`intensity_sigma`'s columns, with their units (Fig. S2's axes).
SIGMA_COLUMNS = ("speech σ (clip RMS, full scale 1)", "lip/eye σ (eye distances / frame)")


def data_slcc(data: Mapping[str, Any]) -> Any:
    """The corpora's own expressiveness (notebook 01): per dataset of ``data`` (``{label: intensities(...)}``) its
    clips and the SLCC of its ground truth (:func:`p3d.metrics.slcc`, per identity), ``source`` "p3d, measured"; then
    the paper's data rows of Tables 2 and 4 (VOCASET, MEAD-3D's Avg, :mod:`p3d.paper`), labelled as the paper's."""
    import pandas as pd

    from p3d import paper
    from p3d.metrics import slcc

    own = pd.DataFrame([{"dataset": k, "clips": len(v),
                         "SLCC (data)": slcc(v["speech_intensity"], v["lip_intensity"], v["identity"])}
                        for k, v in data.items()]).assign(source="p3d, measured")
    quoted = pd.DataFrame([{"dataset": "VOCASET (paper)", "SLCC (data)": paper.VOCASET_DATA.slcc},
                           {"dataset": "MEAD-3D (paper, Avg)", "SLCC (data)": paper.MEAD_DATA.slcc[-1]}])
    return pd.concat([own, quoted.assign(source="paper Tables 2 and 4, data rows")], ignore_index=True)


def plot_fig_s2(data: Mapping[str, Any], bins: int = 30) -> Any:
    """Fig. S2: histograms of speech intensity and eye-normalised lip intensity per dataset, with σ."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), constrained_layout=True)
    axes = fig.subplots(1, 2)
    # one colour per dataset, however many (C0-C4: tab:blue, tab:orange, tab:green, tab:red, tab:purple)
    for i, (label, df) in enumerate(data.items()):
        color = f"C{i % 10}"
        for ax, col in zip(axes, ("speech_intensity", "lip_intensity_norm")):
            x = df[col].to_numpy(dtype=float)
            # σ as intensity_sigma's table gives it (pandas, ddof 1, NaN skipped: np.std made one NaN clip σ = nan);
            # the histogram of the finite values (an inf was matplotlib's "range is not finite" traceback)
            ax.hist(x[np.isfinite(x)], bins=bins, density=True, alpha=0.45, color=color,
                    label=f"{label} (σ = {df[col].astype(float).std():.3g})")
    axes[0].set_xlabel("speech intensity (clip RMS, full scale = 1)")
    axes[1].set_xlabel("lip intensity / eye distance (per frame)")
    for ax, title in zip(axes, ("Speech intensity", "Lip intensity (normalised by eye distance)")):
        ax.set_ylabel("density")
        ax.set_title(title)
        ax.legend(fontsize=8)
    return fig
