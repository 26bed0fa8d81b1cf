"""Figures of p3d: plots of metric internals (e.g. the MTM matching plot, paper Fig. S4)."""
