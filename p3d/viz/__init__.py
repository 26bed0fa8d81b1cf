"""Figures of p3d: plots of metric internals (e.g. the MTM matching plot, paper Fig. S4).

:func:`show` displays any of them in a notebook (:mod:`p3d.viz.display`).
"""
from p3d.viz.display import show

__all__ = ["show"]
