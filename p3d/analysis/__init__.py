"""Analyses behind the paper's figures, as pure functions the notebooks call.

- :mod:`p3d.analysis.representation`: the learned speech-mesh (and stage-1 speech-video) space:
  embeddings of windows, retrieval R@k, similarity against temporal offset (Figs. 5a, S1a),
  per-window InfoNCE of ground-truth pairs (Figs. S6/S7), t-SNE (Figs. 4, S1b) and the intensity
  direction (Fig. 5b).
"""
