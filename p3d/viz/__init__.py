"""Figures of p3d: plots of metric internals (e.g. the MTM matching plot, paper Fig. S4).

:func:`show` displays any of them in a notebook and :func:`save_figure` writes one atomically
(:mod:`p3d.viz.display`).
"""
from p3d.viz.display import save_figure, show

__all__ = ["save_figure", "show"]
