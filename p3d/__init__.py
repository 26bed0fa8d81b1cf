"""p3d: perceptually accurate 3D talking heads, a reproducible research compendium.

Implements "Perceptually Accurate 3D Talking Head Generation: New Definitions, Speech-Mesh
Representation, and Evaluation Metrics" (Chae-Yeon et al., CVPR 2025, arXiv 2503.20308).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
