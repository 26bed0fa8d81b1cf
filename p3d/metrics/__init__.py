"""Metrics of the paper, a stable public API (paper Sec. 5 and E.1; Tables 2-4, S7).

All vertex metrics take numpy arrays (T, V, 3) or (T, V*3) (a 2-D array is always the flattened
layout) at a common frame rate, and raise :class:`p3d.errors.InputError` on bad input.

Argument order: a metric comparing two sequences takes ``(pred, gt)``, torchmetrics' ``(preds,
target)``. The exception is :func:`mtm`, which took ``(gt, pred)`` in p3d 0.1: call it as
``mtm(pred=..., gt=...)``; two positional arrays still mean ``(gt, pred)`` in this release, with a
:class:`DeprecationWarning`, and will mean ``(pred, gt)`` in the next (plan: :mod:`p3d.metrics.mtm`).
Regions default to FLAME's official ones where FLAME ships them (:mod:`p3d.topology`); a default
FLAME lip list is refused on a mesh that does not have FLAME's 5023 vertices.

+--------------------+--------------------------------+------------------------+------------------------+------------------+
| function           | arguments                      | units                  | default region         | paper reference  |
+====================+================================+========================+========================+==================+
| lve, lve_per_frame | (pred, gt, lip_vertices=None,  | max_sq: input units    | FLAME official         | Sec. 6, Tables   |
|                    | *, variant='max_sq')           | squared (m^2 on        | 254-entry lips         | 2-4 (MeshTalk,   |
|                    |                                | VOCASET); max_l2,      | (FLAME_LIPS)           | CodeTalker)      |
|                    |                                | meshtalk: input units  |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| fdd                | (pred, gt, template,           | input units squared,   | none, required:        | Table S7         |
|                    | upper_face_vertices, *,        | signed GT minus pred   | FLAME's upper face     | (CodeTalker)     |
|                    | absolute=False)                |                        | (eye_region + forehead |                  |
|                    |                                |                        | + nose) is only in     |                  |
|                    |                                |                        | FLAME_masks.pkl        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| mtm                | (*, pred, gt, upper=3531,      | frames (mean_frames of | FLAME lip centres 3531 | Sec. 5, E.1,     |
|                    | lower=3504, sigma=2.0)         | the MTMResult); ms via | / 3504                 | Algorithm 1      |
|                    |                                | .ms(fps)               |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| lip_intensity      | (vertices, lip_vertices=None,  | input units per frame  | FLAME official lips    | Eq. (c)          |
|                    | aggregate='rms')               |                        |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| speech_intensity   | (audio)                        | sample units (RMS)     | --                     | Eq. (b)          |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| slcc,              | (speech_intensity,             | Pearson r, unitless    | --                     | Eq. (7),         |
| slcc_by_level      | lip_intensity, identity)       |                        |                        | (d)-(e); Tables  |
|                    |                                |                        |                        | 2, 4             |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| slcc_delta         | (model_r, data_r)              | unitless               | --                     | Tables 2, 4      |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| plrs,              | (audio or fbank_windows,       | cosine similarity;     | --                     | Eq. (a)          |
| plrs_calibrated,   | vertices, model, ...)          | MRR, R@1               |                        |                  |
| plrs_scores        |                                |                        |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| plrs_partial       | (official, calibrated,         | cosine similarity      | --                     | Eq. (a), beyond  |
|                    | hubness_weight)                |                        |                        | the paper        |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| plrs_enrolled      | (calibrated, amplitude,        | cosine similarity      | --                     | Eq. (a), beyond  |
|                    | enrolled_amplitude,            | minus a unitless       |                        | the paper        |
|                    | intensity_weight)              | amplitude mismatch     |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+
| bootstrap_ci,      | (values, statistic, *,         | the statistic's units  | --                     | --               |
| slcc_bootstrap_ci  | confidence=0.95, ...)          |                        |                        |                  |
+--------------------+--------------------------------+------------------------+------------------------+------------------+

Diagnostics (not paper metrics; :mod:`p3d.metrics.diagnostics`; regions required, no defaults):
:func:`lip_jerk` ``(pred, lip_vertices, fps)``, :func:`lip_high_frequency_energy` ``(pred, lip_vertices,
fps, cutoff_hz=8.0)``, :func:`lip_amplitude` ``(pred, lip_vertices, template)``,
:func:`lip_amplitude_ratio` ``(pred, gt, lip_vertices, template)``, :func:`enrolled_lip_amplitude` ``(amplitudes,
identities)``, :func:`upper_face_motion` ``(pred,
upper_face_vertices)``, :func:`fdd_dynamics` ``(pred, upper_face_vertices, template)``.
:class:`MTMResult` and :func:`ddtw` come with MTM. The PLRS functions, :func:`speech_bank` and
:func:`background_windows` are imported lazily (they need torch); :func:`bootstrap_ci` and
:func:`slcc_bootstrap_ci` are defined in :mod:`p3d.stats`, p3d's one statistics module, and re-exported here.

Importing this package imports numpy only; scipy and numba are imported by the functions that need
them, and the DDTW kernel is compiled by numba on first use (and cached on disk).
"""
from __future__ import annotations

from p3d.metrics.diagnostics import (enrolled_lip_amplitude, fdd_dynamics, lip_amplitude, lip_amplitude_ratio,
                                     lip_high_frequency_energy, lip_jerk, upper_face_motion)
from p3d.metrics.fdd import fdd
from p3d.metrics.lve import lve, lve_per_frame
from p3d.metrics.mtm import MTMResult, ddtw, mtm
from p3d.metrics.slcc import lip_intensity, slcc, slcc_by_level, slcc_delta, speech_intensity
from p3d.stats import bootstrap_ci, slcc_bootstrap_ci

#: Bump when a metric gives another value for the same inputs (a fix or a changed definition): the experiments'
#: cached evaluations (:mod:`p3d.experiments.runs`) are keyed by it, as by :data:`p3d.stats.STATISTICS_VERSION` and
#: :data:`p3d.audio.FEATURE_VERSION`, so a resumed grid evaluates again instead of serving the old numbers.
#: Version 3: a clip with silent audio is scored by LVE, FDD and MTM whatever the metrics asked (it was dropped from
#: every metric when SLCC or PLRS was), and SLCC's clip counts leave out the rows its r leaves out.
METRICS_VERSION = 3

__all__ = [
    "METRICS_VERSION",
    "MTMResult",
    "bootstrap_ci",
    "ddtw",
    "fdd",
    "enrolled_lip_amplitude",
    "fdd_dynamics",
    "lip_amplitude",
    "lip_amplitude_ratio",
    "lip_high_frequency_energy",
    "lip_intensity",
    "lip_jerk",
    "lve",
    "lve_per_frame",
    "mtm",
    "slcc",
    "slcc_bootstrap_ci",
    "slcc_by_level",
    "slcc_delta",
    "speech_intensity",
    "upper_face_motion",
]


#: Names served lazily from :mod:`p3d.metrics.plrs` (it needs torch).
_PLRS_NAMES = frozenset({"plrs", "plrs_from_features", "plrs_calibrated", "plrs_partial", "plrs_enrolled",
                         "plrs_scores",
                         "speech_bank", "speech_banks", "background_excluding", "background_windows", "PLRSScores",
                         "SpeechBackground"})


def __getattr__(name: str):  # PEP 562: PLRS needs torch, so it is imported only when asked for
    if name in _PLRS_NAMES:
        import importlib

        module = importlib.import_module("p3d.metrics.plrs")
        # importing the submodule bound ``p3d.metrics.plrs`` to the module: rebind the names to the functions
        for attr in _PLRS_NAMES:
            globals()[attr] = getattr(module, attr)
        return globals()[name]
    raise AttributeError(f"module 'p3d.metrics' has no attribute {name!r}")
