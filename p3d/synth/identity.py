"""Synthetic speakers: face shape and articulation style drawn from a seed.

An :class:`Identity` has

- a face shape: overall scale (±5%), face width and height (±4% each), lip thickness (±25%: the lips'
  vertical extent about the lip contact line) and mouth width (±8%), applied by
  :func:`identity_template` as smooth displacement fields (global linear maps and lip-area fields
  weighted by a smoothstep of :func:`p3d.synth.face.mouth_weights`, so no seams);
- an articulation style: base amplitude (0.8-1.2), left/right asymmetry (±0.25, :class:`p3d.synth.rig.Rig`),
  anticipation (0-60 ms, :class:`p3d.synth.visemes.ArticulationStyle`);
- expressiveness: the articulation amplitude of a clip is
  ``amplitude * max(0.3, 1 + slope * z_loudness + noise * e)``, ``e ~ N(0, 1)`` per clip, where
  ``z_loudness`` is the clip's loudness as an identity-wise z-score (of the clip's RMS over the
  identity's clips, or of the per-clip volume draw), ``slope`` in [0.07, 0.15] and ``noise`` in
  [0.13, 0.19] per identity. Lip intensity (mean lip-vertex speed) grows about linearly with the
  amplitude, but also varies with the sentence's phonemes and the speaking rate (roughly 15-20%
  between clips at a fixed amplitude, as estimated from these SLCC values), so the corpus' own SLCC
  (Pearson r of identity-wise z-normalised speech RMS vs lip intensity, paper Eq. 7) is clearly
  positive and well below 1: 0.42-0.45 over 12 identities x 40 random sentences (4 seeds; a smaller
  case is checked in ``tests/test_identity.py``), against 0.34 on VOCASET and 0.42 on MEAD-3D in
  the paper. Larger slopes (0.10-0.30 with noise 0.08-0.14) gave 0.69, too close to a deterministic
  link.

- vocal effort: ``effort_sensitivity`` (0.75-1.25) scales how much the voice changes with effort
  beyond gain (spectral tilt, F0, rate: :mod:`p3d.synth.effort`);
- upper face (:mod:`p3d.synth.upper_face`): brow-raise height ``brow_amplitude`` (0.3-0.6), the
  probability ``brow_rate`` (0.2-0.5) of a raise on a primary-stressed vowel, and the mean blink
  interval ``blink_interval_s`` (3-4.5 s).

Identities are drawn independently: identity ``i`` of ``sample_identities(n, seed)`` depends only on
``(seed, i)``, not on ``n``.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from p3d.errors import InputError
from p3d.synth import face
from p3d.synth.rig import Rig
from p3d.synth.upper_face import UpperFaceStyle
from p3d.synth.visemes import ArticulationStyle

#: Ranges of the uniform draws (low, high).
RANGES: dict[str, tuple[float, float]] = {
    "scale": (0.95, 1.05),
    "width": (0.96, 1.04),
    "height": (0.96, 1.04),
    "lip_thickness": (0.75, 1.25),
    "mouth_width": (0.92, 1.08),
    "amplitude": (0.8, 1.2),
    "asymmetry": (-0.25, 0.25),
    "anticipation_s": (0.0, 0.06),
    "slope": (0.07, 0.15),
    "noise": (0.13, 0.19),
    "effort_sensitivity": (0.75, 1.25),
    "brow_amplitude": (0.3, 0.6),
    "brow_rate": (0.2, 0.5),
    "blink_interval_s": (3.0, 4.5),
}
MIN_AMPLITUDE_FACTOR = 0.3


@dataclasses.dataclass(frozen=True)
class Identity:
    """One synthetic speaker (fields: module docstring; ranges: :data:`RANGES`)."""

    name: str
    seed: int
    scale: float = 1.0
    width: float = 1.0
    height: float = 1.0
    lip_thickness: float = 1.0
    mouth_width: float = 1.0
    amplitude: float = 1.0
    asymmetry: float = 0.0
    anticipation_s: float = 0.0
    slope: float = 0.11
    noise: float = 0.16
    effort_sensitivity: float = 1.0
    brow_amplitude: float = 0.45
    brow_rate: float = 0.35
    blink_interval_s: float = 3.75

    def clip_amplitude(self, z_loudness: float, rng: np.random.Generator | int) -> float:
        """Articulation amplitude of one clip: ``amplitude * max(0.3, 1 + slope * z + noise * e)``.

        Args:
            z_loudness: the clip's loudness as an identity-wise z-score (0 = the identity's mean).
            rng: a generator, or an int seed, for the per-clip noise ``e ~ N(0, 1)``.
        """
        if not np.isfinite(z_loudness):
            raise InputError(f"z_loudness must be finite, got {z_loudness}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        factor = 1.0 + self.slope * float(z_loudness) + self.noise * float(gen.standard_normal())
        return float(self.amplitude * max(MIN_AMPLITUDE_FACTOR, factor))

    def style(self, z_loudness: float, rng: np.random.Generator | int) -> ArticulationStyle:
        """The :class:`ArticulationStyle` of one clip (amplitude from :meth:`clip_amplitude`)."""
        return ArticulationStyle(amplitude=self.clip_amplitude(z_loudness, rng),
                                 anticipation_s=self.anticipation_s)

    def upper_face_style(self, effort: float) -> UpperFaceStyle:
        """The :class:`~p3d.synth.upper_face.UpperFaceStyle` of one clip; ``effort``: the clip's
        articulation amplitude over the identity's (brow raises grow with it, as the lips do)."""
        return UpperFaceStyle(brow_amplitude=self.brow_amplitude, brow_rate=self.brow_rate,
                              blink_interval_s=self.blink_interval_s, effort=float(np.clip(effort, 0.0, 5.0)))


def sample_identity(seed: int, index: int, name: str | None = None) -> Identity:
    """Identity ``index`` of the population drawn with ``seed`` (deterministic); both whole numbers >= 0."""
    for label, value in (("seed", seed), ("index", index)):  # int() would map 1.5 to 1: the same identity
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{label} must be an integer >= 0, got {value!r}")
    rng = np.random.default_rng([int(seed), int(index)])
    values = {key: float(rng.uniform(lo, hi)) for key, (lo, hi) in RANGES.items()}
    return Identity(name=name or f"id{index:03d}", seed=int(seed), **values)


def sample_identities(n: int, seed: int, prefix: str = "id") -> list[Identity]:
    """``n`` identities named ``{prefix}{i:03d}``; identity i depends only on (seed, i)."""
    if int(n) != n or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n}")
    return [sample_identity(seed, i, f"{prefix}{i:03d}") for i in range(int(n))]


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def identity_template(identity: Identity, variant: str = face.DEFAULT_VARIANT) -> np.ndarray:
    """(V, 3) float64 neutral face of ``identity`` in metres."""
    x = face.template(variant)
    up, lo = face.inner_lip_contours(variant)
    lip = _smoothstep(np.asarray(face.mouth_weights(variant)), 0.05, 0.4)  # ~1 on the lips
    corners = x[list(face.MOUTH_CORNERS)]
    x_mid = corners[:, 0].mean()
    # Lip contact line y_c(x): midway between the inner contours (clamped at the corners).
    y_contact = 0.5 * (np.interp(x[:, 0], x[up, 0], x[up, 1]) + np.interp(x[:, 0], x[lo, 0], x[lo, 1]))
    out = x.copy()
    out[:, 1] += (identity.lip_thickness - 1.0) * (x[:, 1] - y_contact) * lip
    out[:, 0] += (identity.mouth_width - 1.0) * (x[:, 0] - x_mid) * lip
    centre = x.mean(axis=0)
    out = centre + (out - centre) * identity.scale * np.array([identity.width, identity.height, 1.0])
    return out


def identity_rig(identity: Identity, variant: str = face.DEFAULT_VARIANT) -> Rig:
    """The :class:`~p3d.synth.rig.Rig` of ``identity``: its template and its asymmetry."""
    return Rig.from_topology(variant, template=identity_template(identity, variant),
                             asymmetry=identity.asymmetry)
