"""The built-in synthetic corpus: a licence-clean articulated face driven by real synthesized speech.

- :mod:`p3d.synth.face`: the MediaPipe canonical face mesh (Apache-2.0) in metres at a FLAME-like size,
  its variants (468 / 7152 vertices) and :class:`~p3d.topology.Topology` (lips, upper face, MTM vertices).
- :mod:`p3d.synth.rig`: procedural articulatory blendshapes (jaw, lip closure, rounding, spreading,
  lower-lip tuck, upper-lip raise) and a vectorised :class:`~p3d.synth.rig.Rig`.
- :mod:`p3d.synth.visemes`: the 15 Oculus/MPEG-4 visemes, the espeak-ng phoneme map, viseme target poses,
  Cohen-Massaro coarticulation (:func:`~p3d.synth.visemes.articulate`) and frame labels.
- :mod:`p3d.synth.identity`: per-identity face shape and articulation style (amplitude, asymmetry,
  anticipation, loudness-driven expressiveness).
- :mod:`p3d.synth.speech`: espeak-ng speech with exact phoneme timings.
"""
