"""Predictions of known quality made from a ground-truth clip (the yardsticks of the metric checks).

:func:`degradations` builds, from one GT clip, sequences whose defect is known by construction: timing
shifts (:func:`p3d.analysis.metric_validation.shift_sequence`), under- or over-articulation (motion scaled
towards or away from the template), over-smoothing (Gaussian low-pass or moving average), jitter, the
clip played backwards, another clip's motion (wrong content) and no motion at all. :data:`DEGRADATIONS`
is the graded family that :func:`p3d.analysis.metric_validation.validate_plrs` ranks against the viseme
oracle; any ``<kind>_<number>`` of :data:`PARAMETRIC_KINDS` can be asked for by name, which is how
:data:`p3d.analysis.referee_validity.BATTERY_DEGRADATIONS` is built.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from p3d.analysis.metric_validation import figure_talkers, shift_sequence
from p3d.errors import InputError
from p3d.metrics._checks import as_template, as_vertices, check_finite

#: The graded family of :func:`degradations`: name -> what it does (the parameter is in the name).
DEGRADATIONS: dict[str, str] = {
    "gt": "the ground truth itself (upper anchor)",
    "shift_2": "lips lag the speech by 2 frames (timing error, shapes intact)",
    "shift_5": "lips lag the speech by 5 frames",
    "shift_10": "lips lag the speech by 10 frames",
    "amp_0.75": "motion scaled by 0.75 towards the template (mild under-articulation)",
    "amp_0.5": "motion scaled by 0.5 towards the template",
    "amp_0.25": "motion scaled by 0.25 towards the template (mumbling)",
    "smooth_3": "temporal Gaussian low-pass, sigma 3 frames (over-smoothing, the regression-to-the-mean look)",
    "jitter_0.5": "Gaussian noise per vertex, frame and axis, sd 0.5 x the vertex's RMS motion about its mean",
    "jitter_1.0": "Gaussian noise, sd 1.0 x the vertex's RMS motion",
    "reversed": "the GT played backwards (plausible shapes, wrong order)",
    "other_clip": "another clip's motion on this template (plausible motion, wrong content)",
    "static_mean": "the clip's mean pose in every frame (no motion at all)",
}

#: Named (non-parametric) degradations beyond :data:`DEGRADATIONS`.
_EXTRA_NAMED: dict[str, str] = {"static_template": "the speaker's neutral template in every frame"}

#: Parametrised degradations :func:`degradations` understands: ``<kind>_<number>``.
PARAMETRIC_KINDS: dict[str, str] = {
    "shift": "lips lag by N frames (negative: lead), :func:`shift_sequence`",
    "amp": "motion scaled by a (< 1 damped, > 1 exaggerated)",
    "smooth": "Gaussian low-pass of the motion, sigma in frames",
    "movavg": "centred moving average of the motion over N frames",
    "jitter": "Gaussian noise, sd k x each vertex's RMS motion",
}


def _pad_or_crop(motion: np.ndarray, n: int) -> np.ndarray:
    if len(motion) >= n:
        return motion[:n]
    return np.concatenate([motion, np.repeat(motion[-1:], n - len(motion), axis=0)])


def _parse_degradation(name: str) -> tuple[str, float | None]:
    """(kind, parameter) of a degradation name, or InputError naming the grammar."""
    if name in DEGRADATIONS or name in _EXTRA_NAMED:
        kind, _, arg = name.partition("_")
        if kind in PARAMETRIC_KINDS:
            return kind, float(arg)
        return name, None
    kind, _, arg = name.partition("_")
    try:
        value = float(arg)
    except ValueError:
        value = None
    ok = kind in PARAMETRIC_KINDS and value is not None and np.isfinite(value)
    if ok and kind == "shift":
        ok = value == int(value)
    if ok and kind in ("smooth", "jitter"):
        ok = value >= 0
    if ok and kind == "movavg":
        ok = value == int(value) and value >= 1
    if not ok:
        named = ", ".join([*DEGRADATIONS, *_EXTRA_NAMED])
        raise InputError(f"names: unknown degradation {name!r}; choose from {named} "
                         f"or <kind>_<number> with kind one of {', '.join(PARAMETRIC_KINDS)} (e.g. amp_1.5, shift_-2, "
                         f"movavg_5)")
    return kind, value


def degradations(gt: Any, template: Any, rng: np.random.Generator, *, other_motion: Any | None = None,
                 names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """A graded family of predictions of known quality made from one GT clip (see :data:`DEGRADATIONS`).

    Args:
        gt: (T, V, 3) or (T, V*3) ground truth, absolute positions.
        template: (V, 3) the speaker's neutral mesh (the origin of "motion" and of amplitude scaling).
        rng: random generator for the jitter (the only random degradation).
        other_motion: (T', V, 3) displacements from *their* template of another clip (for
            ``"other_clip"``; cropped, or padded with its last frame, to T). Without it ``"other_clip"``
            is left out.
        names: the sequences to build (default: all of :data:`DEGRADATIONS` that the inputs allow). Besides
            those names: ``"static_template"`` (the template in every frame) and any ``<kind>_<number>`` of
            :data:`PARAMETRIC_KINDS` (``amp_1.5``, ``shift_-2``, ``smooth_2``, ``movavg_5``, ``jitter_0.25``);
            :data:`p3d.analysis.referee_validity.BATTERY_DEGRADATIONS` is such a list. A single string is one
            name (``names="amp_0.5"`` builds that sequence alone).

    Returns:
        ``{name: (T, V, 3) float64}`` in the order of ``names``. Every sequence has the GT's length,
        so frame labels, audio and the GT itself stay aligned with it.

    Motion is ``gt - template``; amplitude scaling is ``template + a * motion`` on every vertex; the Gaussian
    low-pass (``smooth_s``) is ``scipy.ndimage.gaussian_filter1d`` of the motion, sigma s frames, and the moving
    average (``movavg_N``) ``scipy.ndimage.uniform_filter1d`` of the motion over N frames (both with edges repeated);
    jitter adds N(0, (k s_v)^2) per frame and axis, with s_v vertex v's RMS motion about its own mean over the
    clip (over frames and axes), so still vertices stay still wherever they rest (a vertex resting off the
    template included) and the lips and jaw, which move most, get the most noise (eyelids and brows a little, as
    they move).
    """
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d

    g = as_vertices(gt, "gt").astype(np.float64)
    check_finite(g, "gt")
    tpl = as_template(template, g.shape[1]).astype(np.float64)
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    other = None
    if other_motion is not None:
        other = as_vertices(other_motion, "other_motion").astype(np.float64)
        check_finite(other, "other_motion")
        if other.shape[1] != g.shape[1]:
            raise InputError(f"other_motion has {other.shape[1]} vertices per frame, gt has {g.shape[1]}")
    if isinstance(names, str):  # one name, not its characters (each was refused as an unknown degradation: 'a')
        names = [names]
    wanted = list(DEGRADATIONS) if names is None else [str(n) for n in names]
    parsed = {n: _parse_degradation(n) for n in wanted}
    if names is not None and "other_clip" in wanted and other is None:
        raise InputError("names: 'other_clip' needs other_motion")

    motion = g - tpl[None]
    rms = np.sqrt(np.mean((g - g.mean(axis=0, keepdims=True)) ** 2, axis=(0, 2)))  # (V,): motion about its clip mean
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        kind, arg = parsed[name]
        if name == "gt":
            out[name] = g.copy()
        elif kind == "shift":
            out[name] = shift_sequence(g, int(arg))
        elif kind == "amp":
            out[name] = tpl[None] + arg * motion
        elif kind == "smooth":  # sigma 0: the motion unsmoothed (scipy's filter divides by sigma)
            out[name] = tpl[None] + (gaussian_filter1d(motion, arg, axis=0, mode="nearest") if arg > 0 else motion)
        elif kind == "movavg":
            out[name] = tpl[None] + uniform_filter1d(motion, int(arg), axis=0, mode="nearest")
        elif kind == "jitter":
            out[name] = g + rng.standard_normal(g.shape) * (arg * rms)[None, :, None]
        elif name == "static_template":
            out[name] = np.repeat(tpl[None], len(g), axis=0)
        elif name == "reversed":
            out[name] = g[::-1].copy()
        elif name == "other_clip":
            if other is None:
                continue
            out[name] = tpl[None] + _pad_or_crop(other, len(g))
        elif name == "static_mean":
            out[name] = np.repeat(g.mean(axis=0, keepdims=True), len(g), axis=0)
        else:  # pragma: no cover - DEGRADATIONS and this dispatch are kept in step
            raise AssertionError(name)
    return out


def sequence_group(sequence: str) -> str:
    """The group a sequence of :func:`p3d.analysis.metric_validation.metric_rows` is shown under (the scatter's
    legend): a degradation of :data:`DEGRADATIONS` its own name; a trained talker's prediction, named by its run
    (:func:`p3d.analysis.metric_validation.find_talker_predictions`), ``talker: <arm>`` with the arm named as
    :mod:`p3d.experiments` names it (:func:`p3d.experiments.spec.arm_name`: the run name without its seeds), so
    that the seeds of one arm share a group and different arms (model, critic, training data, weight) do not."""
    from p3d.experiments.spec import arm_name

    return sequence if sequence in DEGRADATIONS else f"talker: {arm_name(sequence)}"


def clip_sequences(corpus: Any, clips: Sequence[Any], talkers: Mapping[str, Mapping[str, Any]] | None = None,
                   seed: int = 0) -> Callable[[Any], dict[str, np.ndarray]]:
    """``clip -> {name: sequence}`` for notebook 08's sequences of known quality, the input ``sequences`` of
    :func:`p3d.analysis.metric_validation.metric_rows`: every :data:`DEGRADATIONS` of the clip's GT (clip k of
    ``clips`` of ``corpus`` draws from ``default_rng([seed, k])``; ``other_clip`` takes clip k + 1's motion, the
    last clip the first's), then each trained talker's prediction of it (``talkers``:
    :func:`p3d.analysis.metric_validation.find_talker_predictions`, loaded from its ``.npy``), named by its run."""
    clips = list(clips)
    stems = [c.stem for c in clips]
    talkers = talkers or {}

    def sequences(clip: Any) -> dict[str, np.ndarray]:
        k = stems.index(clip.stem)
        other = clips[(k + 1) % len(clips)]
        out = degradations(corpus.vertices(clip), corpus.templates[clip.identity], np.random.default_rng([seed, k]),
                           other_motion=corpus.vertices(other) - corpus.templates[other.identity])
        for run, paths in talkers.items():
            out[run] = np.load(paths[clip.stem], allow_pickle=False)
        return out

    return sequences


def figure_prediction(talkers: Mapping[str, Mapping[str, Any]], clip: str, gt: Any, template: Any, seed: int = 0
                      ) -> tuple[np.ndarray, str]:
    """The prediction Fig. S4 matches against ``gt`` (clip stem ``clip``): the first trained talker of
    :func:`p3d.analysis.metric_validation.figure_talkers` (``talkers``:
    :func:`p3d.analysis.metric_validation.find_talker_predictions`): FaceFormer's baseline, else CodeTalker's, else
    another arm's, the lowest seed of its arm, the run Fig. S8 draws first (:func:`figure_pair`), loaded from its
    ``.npy``; without one, a stand-in: the GT over-smoothed (``smooth_3``, Gaussian sigma 3 frames, from
    ``template``) and lagging by 3 frames. Returns (the (T, V, 3) sequence, what it is, in words)."""
    names = figure_talkers(talkers)
    if names:
        return np.load(talkers[names[0]][clip], allow_pickle=False), f"prediction of the trained talker {names[0]}"
    smooth = degradations(gt, template, np.random.default_rng(seed), names=["smooth_3"])["smooth_3"]
    return (shift_sequence(smooth, 3),
            "a stand-in prediction (no trained talker found): GT smoothed (sigma 3 frames) and lagging by 3 frames")


def figure_pair(talkers: Mapping[str, Mapping[str, Any]], clip: str, gt: Any, template: Any, seed: int = 0
                ) -> tuple[dict[str, np.ndarray], str]:
    """The two sequences Fig. S8 shows beside ``gt`` (clip stem ``clip``): the first two trained talkers of
    :func:`p3d.analysis.metric_validation.figure_talkers` (FaceFormer's, then CodeTalker's baseline first, one run
    per arm, its lowest seed; the first is Fig. S4's, :func:`figure_prediction`), loaded from their ``.npy``; with
    fewer than two, two degradations of the GT: the lips lagging 5 frames (``shift_5``) and the motion halved
    (``amp_0.5``, about ``template``). Returns ({label: (T, V, 3)}, what they are, in words)."""
    names = figure_talkers(talkers)
    if len(names) >= 2:
        return {n: np.load(talkers[n][clip], allow_pickle=False) for n in names[:2]}, "two trained talkers"
    return ({"lips lag 5 frames (shift_5)": shift_sequence(gt, 5),
             "motion x0.5 (amp_0.5)": degradations(gt, template, np.random.default_rng(seed), names=["amp_0.5"])["amp_0.5"]},
            "two degradations of the GT (fewer than two trained talkers found)")
