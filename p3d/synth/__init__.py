"""The built-in synthetic corpus: a licence-clean articulated face driven by real synthesized speech.

- :mod:`p3d.synth.face`: the MediaPipe canonical face mesh (Apache-2.0) in metres at a FLAME-like size,
  its variants (468 / 7152 vertices) and :class:`~p3d.topology.Topology` (lips, upper face, MTM vertices).
- :mod:`p3d.synth.rig`: procedural articulatory blendshapes (jaw, lip closure, rounding, spreading,
  lower-lip tuck, upper-lip raise; brow raise and blink) and a vectorised :class:`~p3d.synth.rig.Rig`.
- :mod:`p3d.synth.visemes`: the 15 Oculus/MPEG-4 visemes, the espeak-ng phoneme map, viseme target poses,
  Cohen-Massaro coarticulation (:func:`~p3d.synth.visemes.articulate`) and frame labels.
- :mod:`p3d.synth.identity`: per-identity face shape and articulation style (amplitude, asymmetry,
  anticipation, loudness-driven expressiveness, effort sensitivity, upper-face style).
- :mod:`p3d.synth.upper_face`: brow raises on stressed syllables and phrase starts, blinks (FDD's region).
- :mod:`p3d.synth.speech`: espeak-ng speech with exact phoneme timings.
- :mod:`p3d.synth.effort`: vocal effort beyond gain (spectral tilt, F0, rate), so levels survive loudness
  normalisation.
- :mod:`p3d.synth.mouth_crop`: the mouth-region crops of the 2D lip video (stage 1's visual input), a
  numba z-buffer rasteriser.
- :mod:`p3d.synth.corpus`: the synthetic corpora (``p3d data synth``), their own SLCC and upper-face dynamics.
"""
