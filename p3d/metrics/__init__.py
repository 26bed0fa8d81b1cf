"""Metrics of the paper, a stable public API (paper Sec. 5 and E.1; Tables 2-4, S7).

All vertex metrics take numpy arrays (T, V, 3) or (T, V*3) (a 2-D array is always the flattened
layout) at a common frame rate, and raise :class:`p3d.errors.InputError` on bad input.

- :func:`lve`, :func:`lve_per_frame`: Lip Vertex Error (CodeTalker / torchmetrics by default).
- :func:`fdd`: upper-Face Dynamics Deviation (CodeTalker, signed; Table S7).
- :func:`mtm`, :class:`MTMResult`, :func:`ddtw`: Mean Temporal Misalignment (Algorithm 1).
- :func:`lip_intensity`, :func:`speech_intensity`, :func:`slcc`, :func:`slcc_by_level`,
  :func:`slcc_delta`: Speech-Lip intensity Correlation Coefficient (Eq. (7), (b)-(e)).
- :func:`lip_jerk`, :func:`lip_high_frequency_energy`, :func:`lip_amplitude`, :func:`lip_amplitude_ratio`,
  :func:`upper_face_motion`, :func:`fdd_dynamics`: diagnostics that explain a metric's value (not paper
  metrics; :mod:`p3d.metrics.diagnostics`).
- :func:`plrs`, :func:`plrs_from_features` (official PLRS, Eq. (a)); :func:`plrs_calibrated` (PLRS-c),
  :func:`plrs_scores` (PLRS, PLRS-c and retrieval MRR / R@1), :func:`speech_bank`, :func:`background_windows`
  (imported lazily: they need torch).
- :func:`bootstrap_ci`, :func:`slcc_bootstrap_ci`: confidence intervals (defined in :mod:`p3d.stats`,
  p3d's one statistics module, and re-exported here).

Importing this package imports numpy only; scipy and numba are imported by the functions that need
them, and the DDTW kernel is compiled by numba on first use (and cached on disk).
"""
from __future__ import annotations

from p3d.metrics.diagnostics import (fdd_dynamics, lip_amplitude, lip_amplitude_ratio, lip_high_frequency_energy,
                                     lip_jerk, upper_face_motion)
from p3d.metrics.fdd import fdd
from p3d.metrics.lve import lve, lve_per_frame
from p3d.metrics.mtm import MTMResult, ddtw, mtm
from p3d.metrics.slcc import lip_intensity, slcc, slcc_by_level, slcc_delta, speech_intensity
from p3d.stats import bootstrap_ci, slcc_bootstrap_ci

__all__ = [
    "MTMResult",
    "bootstrap_ci",
    "ddtw",
    "fdd",
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
_PLRS_NAMES = frozenset({"plrs", "plrs_from_features", "plrs_calibrated", "plrs_scores", "speech_bank",
                         "speech_banks", "background_excluding", "background_windows", "PLRSScores"})


def __getattr__(name: str):  # PEP 562: PLRS needs torch, so it is imported only when asked for
    if name in _PLRS_NAMES:
        import importlib

        module = importlib.import_module("p3d.metrics.plrs")
        # importing the submodule bound ``p3d.metrics.plrs`` to the module: rebind the names to the functions
        for attr in _PLRS_NAMES:
            globals()[attr] = getattr(module, attr)
        return globals()[name]
    raise AttributeError(f"module 'p3d.metrics' has no attribute {name!r}")
