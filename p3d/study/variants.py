"""Stimulus variants: how p3d changes lip intensity, speech intensity and timing for a user study.

The paper's Table 1 studies used FaceFormer models trained on MEAD-3D level splits to get lip
motion of a given intensity (Sec. D). p3d makes the variants from one sequence instead, so a study
can be built from any corpus (the synthetic one included):

- **lip intensity** ``lip_scale = s``: every vertex's displacement from the neutral face is scaled,
  ``v'(t) = n + s (v(t) - n)`` (``n``: the identity's template when templates are given, else the
  clip's first ground-truth frame). The paper's lip intensity (mean lip-vertex displacement between
  consecutive frames, Eq. (c)) of the variant is exactly ``s`` times the original's.
- **speech intensity** ``gain_db = g``: the waveform is multiplied by ``10 ** (g / 20)``. For the
  3x3 design (:func:`speech_levels`) the clip is first normalised so that its middle level has an RMS
  of :data:`REFERENCE_RMS_DBFS`, and lowered further if the loudest level would peak above
  :data:`PEAK_LIMIT` (the level differences stay exact; no sample clips). A gain changes loudness
  only: real loud speech also changes pitch and spectrum (Lombard effect), which these stimuli lack.
- **lip lag** ``lag_ms = m``: the lips are delayed by ``m * fps / 1000`` frames (speech leads the
  lips; the first frame is held at the start), as in Table 1 right ("speech leads lips by 100 ms").
  Negative values make the lips lead. The lag must be a whole number of frames (within
  :data:`LAG_FRAME_TOLERANCE`), else InputError naming the nearest exact lags: at 25 fps 100 ms is
  2.5 frames, and rounding would silently show 80 ms. Only the attention checks' lip lag, a gross
  degradation rather than the manipulation under study, is made whole by :func:`whole_frame_lag_ms`
  (:mod:`p3d.study.design`).
- **audio shift** ``audio_shift_ms = m``: the audio is delayed by ``m`` ms (zeros in front, the end
  cut), so the lips lead the speech; the attention checks use 500 ms.
- **freeze**: every frame is the first frame (frozen lips); an attention check.

All functions are pure (new arrays) and deterministic.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from p3d.errors import InputError

REFERENCE_RMS_DBFS = -23.0
"""RMS level (dB re full scale) of the middle speech level of the 3x3 design."""
PEAK_LIMIT = 0.95
"""Largest absolute sample value allowed after a gain."""


@dataclasses.dataclass(frozen=True)
class Transform:
    """A stimulus manipulation (see the module docstring); the identity by default."""

    lip_scale: float = 1.0
    lag_ms: float = 0.0
    gain_db: float = 0.0
    audio_shift_ms: float = 0.0
    freeze: bool = False

    def __post_init__(self) -> None:
        for name in ("lip_scale", "lag_ms", "gain_db", "audio_shift_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"transform {name} must be a finite number, got {value!r}")
        if self.lip_scale < 0:
            raise InputError(f"transform lip_scale must be >= 0, got {self.lip_scale}")
        if abs(self.gain_db) > 40:
            raise InputError(f"transform gain_db must be within +-40 dB, got {self.gain_db}")

    @property
    def is_identity(self) -> bool:
        return self == Transform()

    def then(self, other: Transform) -> Transform:
        """The composition (scales multiply, shifts and gains add, freeze if either freezes)."""
        return Transform(self.lip_scale * other.lip_scale, self.lag_ms + other.lag_ms,
                         self.gain_db + other.gain_db, self.audio_shift_ms + other.audio_shift_ms,
                         self.freeze or other.freeze)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def label(self) -> str:
        """A short text, e.g. ``lip=0.5:lag_ms=100`` (``none`` for the identity)."""
        parts = [f"{key}={_fmt(value)}" for key, value, default in
                 (("lip", self.lip_scale, 1.0), ("lag_ms", self.lag_ms, 0.0), ("gain_db", self.gain_db, 0.0),
                  ("audio_shift_ms", self.audio_shift_ms, 0.0)) if value != default]
        if self.freeze:
            parts.append("freeze")
        return ":".join(parts) or "none"


_KEYS = {"lip": "lip_scale", "lip_scale": "lip_scale", "lag_ms": "lag_ms", "gain_db": "gain_db",
         "audio_shift_ms": "audio_shift_ms"}


def _fmt(x: float) -> str:
    return f"{x:g}"


def parse_transform(text: str, what: str = "transform") -> Transform:
    """Parse ``key=value[:key=value...]`` (keys ``lip``, ``lag_ms``, ``gain_db``, ``audio_shift_ms``,
    and the flag ``freeze``); an empty string is the identity."""
    kwargs: dict[str, Any] = {}
    for part in (p for p in text.split(":") if p):
        if part == "freeze":
            kwargs["freeze"] = True
            continue
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS:
            raise InputError(f"{what}: cannot read {part!r}; expected key=value with key in "
                             f"lip, lag_ms, gain_db, audio_shift_ms, or the flag freeze")
        try:
            kwargs[_KEYS[key]] = float(value)
        except ValueError:
            raise InputError(f"{what}: {key}={value!r} is not a number") from None
    return Transform(**kwargs)


def scale_lips(vertices: np.ndarray, neutral: np.ndarray, scale: float) -> np.ndarray:
    """``neutral + scale * (vertices - neutral)``: (T, V, 3) from (T, V, 3) and (V, 3)."""
    v = np.asarray(vertices, dtype=np.float64)
    n = np.asarray(neutral, dtype=np.float64)
    if n.shape != v.shape[1:]:
        raise InputError(f"neutral face has shape {n.shape}, the sequence's frames {v.shape[1:]}")
    return n[None] + float(scale) * (v - n[None])


LAG_FRAME_TOLERANCE = 1e-6
"""How far (in frames) ``lag_ms * fps / 1000`` may be from a whole number for a lip lag to be exact."""


def exact_lags_ms(lag_ms: float, fps: float) -> tuple[float, float]:
    """The whole-frame lags (ms) at ``fps`` nearest ``lag_ms``: (the one below or equal, the one above or equal)."""
    frames = lag_ms * fps / 1000.0
    return math.floor(frames) * 1000.0 / fps, math.ceil(frames) * 1000.0 / fps


def lag_frames(lag_ms: float, fps: float, *, what: str = "lip lag") -> int:
    """Frames of a lip lag of ``lag_ms`` at ``fps``; InputError (naming ``what``, the option that set the lag,
    and the nearest exact lags) when it is not a whole number of frames (module docstring)."""
    if not fps > 0:
        raise InputError(f"frame rate must be positive, got {fps}")
    frames = lag_ms * fps / 1000.0
    k = round(frames)
    if abs(frames - k) > LAG_FRAME_TOLERANCE:
        below, above = exact_lags_ms(lag_ms, fps)
        raise InputError(f"{what}: lag_ms={lag_ms:g} is {frames:g} frames at {fps:g} fps, not a whole number of "
                         f"frames; the nearest exact lags are {below:g} and {above:g} ms")
    return int(k)


def whole_frame_lag_ms(lag_ms: float, fps: float) -> float:
    """The shortest whole-frame lag (ms) at ``fps`` at least as long as ``lag_ms`` (same sign): ``lag_ms``
    itself when it is whole frames, else rounded away from zero (500 ms at 25 fps: 520 ms)."""
    frames = abs(lag_ms) * fps / 1000.0
    k = round(frames)
    if abs(frames - k) > LAG_FRAME_TOLERANCE:
        k = math.ceil(frames)
    return math.copysign(k * 1000.0 / fps, lag_ms) if k else 0.0


def delay_lips(vertices: np.ndarray, lag_ms: float, fps: float) -> np.ndarray:
    """Delay (``lag_ms`` > 0) or advance (< 0) the frames, holding the edge frame; same length."""
    v = np.asarray(vertices)
    k = lag_frames(lag_ms, fps)
    if k == 0:
        return v.copy()
    if abs(k) >= len(v):
        raise InputError(f"a lip lag of {lag_ms} ms ({k} frames) is not shorter than the clip ({len(v)} frames)")
    out = np.empty_like(v)
    if k > 0:
        out[k:], out[:k] = v[:-k], v[0]
    else:
        out[:k], out[k:] = v[-k:], v[-1]
    return out


def shift_audio(samples: np.ndarray, sample_rate: int, shift_ms: float) -> np.ndarray:
    """Delay (``shift_ms`` > 0, zeros in front) or advance (< 0, zeros at the end) the audio; same length."""
    x = np.asarray(samples, dtype=np.float32)
    k = int(round(shift_ms * sample_rate / 1000.0))
    if k == 0:
        return x.copy()
    out = np.zeros_like(x)
    if abs(k) < len(x):
        if k > 0:
            out[k:] = x[:-k]
        else:
            out[:k] = x[-k:]
    return out


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Multiply by ``10 ** (gain_db / 20)``; InputError if a sample would exceed :data:`PEAK_LIMIT`."""
    x = np.asarray(samples, dtype=np.float64) * 10.0 ** (gain_db / 20.0)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > PEAK_LIMIT + 1e-9:
        raise InputError(f"a gain of {gain_db:+g} dB makes the audio peak at {peak:.2f} (> {PEAK_LIMIT}): "
                         "lower the gain")
    return x.astype(np.float32)


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB re full scale (-inf for silence)."""
    x = np.asarray(samples, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def level_reference_gain(samples: np.ndarray, gains_db: tuple[float, ...] | list[float]) -> float:
    """The gain (dB) that puts the middle of ``gains_db`` at :data:`REFERENCE_RMS_DBFS`, lowered so that
    the loudest level peaks at :data:`PEAK_LIMIT` or below."""
    x = np.asarray(samples, dtype=np.float64)
    level = rms_dbfs(x)
    if not math.isfinite(level):
        raise InputError("the clip's audio is silent: speech levels cannot be set")
    gains = sorted(float(g) for g in gains_db)
    mid = gains[len(gains) // 2]
    ref = REFERENCE_RMS_DBFS - level - mid
    peak = float(np.abs(x).max())
    headroom = 20.0 * math.log10(PEAK_LIMIT / peak) - max(gains)
    return min(ref, headroom)


def speech_levels(samples: np.ndarray, gains_db: tuple[float, ...] | list[float]) -> list[np.ndarray]:
    """One waveform per gain of ``gains_db``: the clip normalised (:func:`level_reference_gain`) plus each gain."""
    ref = level_reference_gain(samples, gains_db)
    return [apply_gain(samples, ref + float(g)) for g in gains_db]


def fit_audio(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """Cut or zero-pad the audio to the duration of ``n_frames`` frames at ``fps``."""
    n = int(round(n_frames * sample_rate / fps))
    x = np.asarray(samples, dtype=np.float32)
    if len(x) >= n:
        return x[:n].copy()
    return np.concatenate([x, np.zeros(n - len(x), np.float32)])


def apply(transform: Transform, vertices: np.ndarray, samples: np.ndarray, *, neutral: np.ndarray,
          fps: float, sample_rate: int, base_gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``transform`` to (T, V, 3) ``vertices`` and mono ``samples``; returns (vertices float32, audio float32).

    Order: freeze or scale the lips, delay them, gain (``base_gain_db + transform.gain_db``), shift the audio.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if transform.freeze:
        v = np.repeat(v[:1], len(v), axis=0)
    elif transform.lip_scale != 1.0:
        v = scale_lips(v, neutral, transform.lip_scale)
    if transform.lag_ms:
        v = delay_lips(v, transform.lag_ms, fps)
    gain = base_gain_db + transform.gain_db
    a = apply_gain(samples, gain) if gain else np.asarray(samples, dtype=np.float32).copy()
    if transform.audio_shift_ms:
        a = shift_audio(a, sample_rate, transform.audio_shift_ms)
    return v.astype(np.float32), a


def display_frames(videos: Any) -> list[int]:
    """Which frame to show of each of one trial's lip-intensity variants (notebook 09's figure), side by side at
    the same moment: the darkest frame (lowest mean pixel value) of the **last** video, the highest lip level, where
    the widest-open mouth shows the most of the dark mouth cavity; clipped to each video's own last frame.

    ``videos``: a sequence of decoded videos, each (T, H, W[, C]) pixel values, the variants in ascending lip level.
    Ties go to the earliest frame. Returns one frame index per video."""
    videos = list(videos)
    if not videos or any(len(v) == 0 for v in videos):
        raise InputError("display_frames: expected one or more videos of at least one frame each")
    last = videos[-1]
    darkest = int(min(range(len(last)), key=lambda t: np.asarray(last[t]).mean()))
    return [min(darkest, len(v) - 1) for v in videos]
