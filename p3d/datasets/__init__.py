"""Readers and converters for released datasets in their raw, as-downloaded form.

- :mod:`p3d.datasets.vocaset`: the raw VOCASET release (``data_verts.npy``, ``raw_audio_fixed.pkl``,
  ``subj_seq_to_idx.pkl``, ``templates.pkl``) to the processed layout the baselines and p3d read.
"""
