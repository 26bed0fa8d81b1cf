"""Perceptual user studies of talking heads (paper Table 1, S3-S6; Sec. D, E.2, G.1).

- :mod:`p3d.study.variants`: lip-intensity, speech-intensity and timing variants of a sequence;
- :mod:`p3d.study.design`: conditions, trials, attention checks, counterbalancing, participant orders;
- :mod:`p3d.study.make`: :func:`make_study` renders the stimuli (mp4 with audio) and writes the manifest
  and the survey page (``p3d study make``);
- :mod:`p3d.study.survey`: the self-contained participant-facing HTML page;
- :mod:`p3d.study.analyze`: :func:`analyze` / :func:`write_analysis` (``p3d study analyze``);
- the statistics (binomial and t-tests, bootstraps over participants, Fleiss' kappa, Kendall's W,
  Spearman's rho) are in :mod:`p3d.stats`, p3d's one statistics module.

Importing this package imports nothing heavy; the submodules import what they need.
"""
from __future__ import annotations
