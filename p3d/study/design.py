"""Study designs: conditions, trials, attention checks, counterbalancing and participant orders.

Pure planning (no files): :func:`plan_study` turns conditions, clips and options into a
:class:`Plan` of stimuli and trials, which :mod:`p3d.study.make` renders and writes into the manifest.

Designs (paper Sec. D, E.2, G.1; Table 1, S3-S6):

- ``ab``: two videos of the same clip, two conditions; "which is more realistic and preferred?"
  (Table 1 right, S4, S5, S6). Pairs: ``--pairs`` or, by default, every pair of conditions of the
  same model: a condition named ``MODEL/VARIANT`` (e.g. ``faceformer/base``, ``faceformer/ours``)
  belongs to ``MODEL``; names without ``/`` all belong to one model. A pair is ordered as listed
  (its first condition is "A" in the tables: the baseline), and its *comparison* is
  ``VARIANT_A vs VARIANT_B``, pooled over models in the "Overall" rows.
- ``rank`` over ``intensity`` (Table 1 left): for a clip and one source (the ground truth unless one
  condition is given), the speech at each of the levels ``speech_gains_db`` is paired with lips at
  each of the ``lip_scales`` (:mod:`p3d.study.variants`); a trial shows the K lip variants with one
  speech level, and the participant scores them 1 (least preferred) .. K (most preferred).
- ``rank`` over ``conditions`` (Table S3): a trial shows every condition on one clip, scored 1..K.

Attention checks: a trial of the same kind in which one video is the ground truth with its own audio
and the others are degraded: the audio delayed by ``check_shift_ms`` (500 ms by default: far beyond
the 50 ms / 220 ms detection thresholds of Sec. 3), frozen lips, or the lips delayed by the same
amount, made a whole number of frames at the study's frame rate by rounding away from zero
(:func:`p3d.study.variants.whole_frame_lag_ms`: 500 ms is 520 ms at 25 fps; a warning says so and the
lag shown is the one recorded). The correct answer is the ground-truth video (A/B: chosen; rank:
scored highest). A condition's own lip lag (``lag_ms``, the manipulation under study) is never
rounded: one that is not a whole number of frames is refused.

Practice screen (``practice_clip``): one trial of the design's kind shown before the real trials to
learn the page, never analysed: the ground truth of one clip (a clip outside the study when the data
has one) with the lips scaled by :data:`PRACTICE_LIP_SCALES`; its stimuli have role ``practice``.

Counterbalancing: participants are assigned to groups in turn (``P01`` group 0, ``P02`` group 1,
...). A/B: 2 groups; within group 0 the main trials alternate which condition is on the left (in
(pair, clip) order), and group 1 sees every trial mirrored, so every trial appears in both orders
equally often across groups and each participant sees each condition on the left in half of the
trials (+-1). Rank (K videos): K groups, a cyclic Latin square: a trial of rotation r shows, in
group g, the canonical list rotated by (r + g) mod K, so each video takes every position once across
the K groups; within each group (so for each participant) the rotations are balanced too
(:func:`trial_rotation`): each condition or lip level takes every position equally often (+-1), and
in the speech x lip design (Table 1 left) so does each (speech level, lip level) cell and, with as
many speech levels as lip levels, the video whose lip level matches the speech level (its position
is never confounded with "prefers the matched intensity"). Trial order: an independent random
permutation per participant from ``seed``. Stimulus and trial ids are opaque (``v0007``, ``q03``),
assigned in a seeded random order, so the page reveals neither conditions nor which trials are checks.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.study.variants import Transform, lag_frames, parse_transform, whole_frame_lag_ms

log = logging.getLogger(__name__)

DESIGNS = ("ab", "rank")
RANK_OVER = ("intensity", "conditions")
GT = "gt"
"""Name of the ground-truth source (a condition ``NAME=gt`` renders the GT sequence)."""

QUESTIONS: dict[str, str] = {
    # Table S4 and S6 (A/B form), paper Sec. G.1
    "lipsync": "Please evaluate the lip synchronization between the speech and the lip movements in videos "
               "A and B, and choose the one that is more realistic and preferred.",
    # Table S5
    "quality": "Please evaluate the overall quality of facial movements in videos A and B, and choose the one "
               "that is more realistic and preferred.",
    # Table 1 right
    "correspondence": "Which sample's lip movements correspond better to the speech: A or B?",
    # Table 1 left, S3 and S6 (rank form): {last} and {k} are filled in
    "rank": "Please rate the lip synchronization between the speech and the lip movements in videos A through "
            "{last}, with {k} being the most realistic and preferred, and 1 being the least.",
}

CHECK_KINDS = ("audio_shift", "freeze", "lip_lag")

PRACTICE = "practice"
"""Trial id of the practice screen (shown first, never analysed)."""

#: Lip scales of the practice screen's K videos (the ground truth of one clip, its lip motion scaled;
#: K = 2..6): visibly different, and unlike the main trials and the attention checks.
PRACTICE_LIP_SCALES: dict[int, tuple[float, ...]] = {
    k: tuple(round(float(x), 3) for x in np.linspace(0.25, 1.75, k)) for k in range(2, 7)}


@dataclasses.dataclass(frozen=True)
class Condition:
    """A stimulus source: predictions in ``source`` (a folder) or the ground truth (``source`` None),
    with an optional :class:`~p3d.study.variants.Transform`."""

    name: str
    source: Path | None
    transform: Transform = Transform()

    @property
    def model(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def variant(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": GT if self.source is None else str(self.source),
                "transform": self.transform.to_dict(), "model": self.model, "variant": self.variant}


def parse_condition(text: str) -> Condition:
    """``NAME=SOURCE[:key=value...]``: SOURCE is a prediction folder or ``gt``; the optional suffix is a
    transform (:func:`p3d.study.variants.parse_transform`), e.g. ``late=gt:lag_ms=100``."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest:
        raise InputError(f"--conditions {text!r}: expected NAME=PRED_DIR or NAME=gt[:key=value...]")
    if any(c in name for c in ",=:") or name.count("/") > 1:
        raise InputError(f"--conditions {text!r}: a condition name may not contain ',', '=', ':' "
                         "and at most one '/' (MODEL/VARIANT)")
    source, _, tail = rest.partition(":")
    transform = parse_transform(tail, what=f"--conditions {text!r}")
    if source.strip().lower() in {GT, "@gt"}:
        return Condition(name, None, transform)
    return Condition(name, Path(source), transform)


@dataclasses.dataclass
class Stimulus:
    """One video: ``clip`` rendered from ``condition`` (``gt`` for the ground truth) with ``transform``."""

    key: str
    clip: str
    condition: str
    transform: Transform
    role: str = "main"  # main | check | practice
    lip_level: int | None = None
    speech_level: int | None = None
    check_kind: str | None = None
    id: str = ""
    file: str = ""


@dataclasses.dataclass
class Trial:
    """One screen: ``stimuli`` (keys, canonical order) and, per group, the display order ``layouts``."""

    key: str
    kind: str  # ab | rank
    clip: str
    stimuli: list[str]
    conditions: list[str]
    attention_check: bool = False
    check_kinds: list[str] | None = None
    correct: str | None = None  # stimulus key of the right answer (checks)
    model: str = ""
    comparison: str = ""
    speech_level: int | None = None
    layouts: list[list[int]] = dataclasses.field(default_factory=list)
    id: str = ""


@dataclasses.dataclass
class Plan:
    design: str
    rank_over: str | None
    question: str
    stimuli: dict[str, Stimulus]
    trials: list[Trial]
    participants: list[dict[str, Any]]
    n_groups: int
    pairs: list[tuple[str, str]]
    practice: Trial | None = None


def default_pairs(conditions: list[Condition]) -> list[tuple[str, str]]:
    """Every pair of conditions of the same model, in the order listed (see the module docstring)."""
    pairs = []
    for a, b in itertools.combinations(conditions, 2):
        if a.model == b.model:
            pairs.append((a.name, b.name))
    return pairs


#: Conditions ranked beside the ground truth in a Table S3 study built from model predictions
#: (:func:`study_conditions`): a trial shows K = 6 videos at most.
MAX_RANKED_CONDITIONS = 5


def study_conditions(sources: dict[str, Path], *, stand_ins: bool
                     ) -> tuple[list[Condition], list[tuple[str, str]] | None, list[Condition]]:
    """The conditions of notebook 09's A/B and ranking studies, from its prediction folders ``{name: folder}``.

    ``stand_ins`` False (model predictions, named ``MODEL/VARIANT``): the A/B study compares every pair of
    variants within a model (pairs None: :func:`default_pairs`, in the order given), and the ranking study
    (Table S3) ranks the ground truth and the conditions that share the first condition's variant (the base
    models), at most :data:`MAX_RANKED_CONDITIONS`. ``stand_ins`` True (GT manipulations,
    :func:`p3d.study.make.write_stand_ins`): each is paired with the ground truth in the A/B study and every one is
    ranked with it. Returns ``(A/B conditions, A/B pairs or None, ranking conditions)``; the ground truth is the
    condition ``gt`` (source None) and comes first in the ranking."""
    if not sources:
        raise InputError("study_conditions: no prediction folders")
    conditions = [Condition(n, Path(p)) for n, p in sources.items()]
    if stand_ins:
        return [*conditions, Condition(GT, None)], [(c.name, GT) for c in conditions], [Condition(GT, None), *conditions]
    ranked = [c for c in conditions if c.variant == conditions[0].variant][:MAX_RANKED_CONDITIONS]
    return conditions, None, [Condition(GT, None), *ranked]


def parse_pairs(texts: list[str], conditions: list[Condition]) -> list[tuple[str, str]]:
    """``A,B`` strings -> pairs of condition names (checked)."""
    names = {c.name for c in conditions}
    pairs = []
    for text in texts:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or parts[0] == parts[1]:
            raise InputError(f"--pairs {text!r}: expected two different condition names A,B")
        for p in parts:
            if p not in names:
                raise InputError(f"--pairs {text!r}: unknown condition {p!r} (conditions: {', '.join(sorted(names))})")
        pairs.append((parts[0], parts[1]))
    return pairs


def check_transforms(n_degraded: int, index: int, shift_ms: float,
                     fps: float | None = None) -> list[tuple[str, Transform]]:
    """The ``n_degraded`` degradations of attention check ``index`` (cycling through :data:`CHECK_KINDS`;
    after one round the shift doubles). With ``fps``, a lip lag is made whole frames
    (:func:`p3d.study.variants.whole_frame_lag_ms`) and labelled with the lag shown."""
    out = []
    for j in range(n_degraded):
        k = index + j
        kind = CHECK_KINDS[k % len(CHECK_KINDS)]
        mult = 1 + k // len(CHECK_KINDS)
        if kind == "audio_shift":
            out.append((f"audio_shift_{shift_ms * mult:g}ms", Transform(audio_shift_ms=shift_ms * mult)))
        elif kind == "freeze":
            out.append(("freeze", Transform(freeze=True)))
        else:
            lag = shift_ms * mult if fps is None else whole_frame_lag_ms(shift_ms * mult, fps)
            out.append((f"lip_lag_{lag:g}ms", Transform(lag_ms=lag)))
    return out


def trial_rotation(index: int, k: int, n_levels: int | None = None) -> int:
    """The rotation (mod ``k``) of a rank trial's canonical list in group 0 (:func:`_layouts`).

    ``index``: the trial's index in its list (clip-major). Condition ranking and attention checks
    (``n_levels`` None): ``index`` itself, so consecutive trials take consecutive rotations. Speech x lip
    design (paper Table 1 left; ``n_levels`` speech levels per clip, trial ``index = clip * n_levels +
    level``): the canonical list is the ``k`` lip levels, lip level ``j`` is shown in position
    ``(j - rotation) mod k``. With the trial index as rotation, every speech level of a clip, hence the
    video matched to it, sat in the same position whenever ``n_levels == k``: a position bias would read
    as a preference for the matched intensity. So:

    - ``n_levels == k``: rotation ``clip + 2 * level``. The matched video (lip level = speech level) is
      in position ``-(clip + level)``: every position once per clip; each (speech, lip) cell moves one
      position per clip; a clip's rotations all differ for odd ``k`` (for even ``k`` they pair up over two
      clips: each lip level takes each position equally often +-1).
    - otherwise: rotation ``index + index // lcm(n_levels, k)``: consecutive rotations (lip levels
      balanced over positions +-1) that shift by one every ``lcm`` trials, so each (speech, lip) cell
      also takes every position equally often (+-1) over the clips.
    """
    if n_levels is None:
        return index % k
    clip, level = divmod(index, n_levels)
    if n_levels == k:
        return (clip + 2 * level) % k
    return (index + index // math.lcm(n_levels, k)) % k


def _layouts(k: int, n_groups: int, index: int, kind: str, rotation: int | None = None) -> list[list[int]]:
    """Per group, the display order of a trial's canonical stimuli (module docstring, counterbalancing).
    A/B: by ``index`` (even: canonical order in group 0); rank: the cyclic Latin square of ``rotation``
    (default ``index``)."""
    if kind == "ab":
        first = [0, 1] if index % 2 == 0 else [1, 0]
        return [first, first[::-1]]
    r = index if rotation is None else rotation
    return [[(j + r + g) % k for j in range(k)] for g in range(n_groups)]


#: Most participant codes a study prepares (each gets its own trial order in the manifest): far beyond a perceptual
#: study's size (the paper's: 16 people, Table S3), while 1e8 planned orders for minutes and filled the disk.
MAX_PARTICIPANTS = 10_000


def plan_study(
    design: str,
    conditions: list[Condition],
    clips: list[str],
    *,
    pairs: list[tuple[str, str]] | None = None,
    rank_over: str = "intensity",
    lip_scales: tuple[float, ...] = (0.5, 1.0, 1.5),
    speech_gains_db: tuple[float, ...] = (-9.0, 0.0, 9.0),
    attention_checks: int = 2,
    check_shift_ms: float = 500.0,
    participants: int = 24,
    question: str | None = None,
    seed: int = 0,
    practice_clip: str | None = None,
    fps: float | None = None,
) -> Plan:
    """Plan the stimuli, trials and participant orders (module docstring). ``clips``: GT stems (sorted);
    ``practice_clip``: the GT stem of the practice screen (None: no practice screen); ``fps``: the frame
    rate of the videos (None: lip lags are not checked against it), against which a condition's lip lag
    must be whole frames (else InputError) and the attention checks' lip lag is made whole."""
    if design not in DESIGNS:
        raise InputError(f"--design {design!r}: choose from {', '.join(DESIGNS)}")
    if not clips:
        raise InputError("no clips to build the study from")
    if not 1 <= participants <= MAX_PARTICIPANTS:
        raise InputError(f"--participants must be in 1..{MAX_PARTICIPANTS}, got {participants}")
    if attention_checks < 0:
        raise InputError(f"--attention-checks must be >= 0, got {attention_checks}")
    if check_shift_ms <= 0:
        raise InputError(f"--check-shift-ms must be positive, got {check_shift_ms}")
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise InputError(f"--conditions: duplicate names in {names}")
    for c in conditions:
        if c.name == GT and c.source is not None:
            raise InputError(f"--conditions: the name {GT!r} is reserved for the ground truth ({GT}=gt)")
        if fps is not None and c.transform.lag_ms:
            lag_frames(c.transform.lag_ms, fps, what=f"--conditions {c.name}")
    by_name = {c.name: c for c in conditions}
    stimuli: dict[str, Stimulus] = {}

    def stim(clip: str, cond: str, transform: Transform, **kw: Any) -> str:
        key = f"{clip}|{cond}|{transform.label()}|{kw.get('speech_level')}|{kw.get('lip_level')}"
        if key not in stimuli:
            stimuli[key] = Stimulus(key, clip, cond, transform, **kw)
        return key

    trials: list[Trial] = []
    mid_gain, check_level = 0.0, None
    if design == "ab":
        if len(conditions) < 2:
            raise InputError("--design ab needs at least two --conditions")
        pairs = list(pairs) if pairs else default_pairs(conditions)
        if not pairs:
            raise InputError("--design ab: no pair of conditions of the same model; give --pairs A,B")
        given: dict[frozenset[str], str] = {}
        for a, b in pairs:
            if a not in by_name or b not in by_name or a == b:
                raise InputError(f"--pairs {a},{b}: expected two different conditions of {', '.join(names)}")
            # the same two videos would be shown twice per clip (the groups already show both orders)
            if frozenset((a, b)) in given:
                raise InputError(f"--pairs {a},{b}: the pair {given[frozenset((a, b))]} is given already; give "
                                 "each pair once (each is shown once per clip, both ways round over the groups)")
            given[frozenset((a, b))] = f"{a},{b}"
        for a, b in pairs:
            ca, cb = by_name[a], by_name[b]
            model = ca.model if ca.model == cb.model else f"{ca.model or ca.name} | {cb.model or cb.name}"
            comparison = f"{ca.variant} vs {cb.variant}"
            for clip in clips:
                keys = [stim(clip, a, ca.transform), stim(clip, b, cb.transform)]
                trials.append(Trial(f"{a}|{b}|{clip}", "ab", clip, keys, [a, b], model=model,
                                    comparison=comparison))
        k, n_groups = 2, 2
        q = question or "lipsync"
    else:
        if rank_over not in RANK_OVER:
            raise InputError(f"--rank-over {rank_over!r}: choose from {', '.join(RANK_OVER)}")
        if rank_over == "intensity":
            if len(conditions) > 1:
                raise InputError("--design rank --rank-over intensity takes at most one --conditions "
                                 "(the source whose lip and speech intensities are varied; default: gt)")
            if len(lip_scales) < 2 or len(speech_gains_db) < 1:
                raise InputError("--lip-scales needs >= 2 values and --speech-gains-db >= 1")
            for option, values in (("--lip-scales", lip_scales), ("--speech-gains-db", speech_gains_db)):
                if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values):
                    raise InputError(f"{option}: expected finite numbers, got {', '.join(map(str, values))}")
                if any(b <= a for a, b in zip(values, values[1:])):  # level i of speech is matched with lip level i
                    raise InputError(f"{option}: give the values in ascending order (level 1 the smallest, as the "
                                     f"analysis matches speech level i with lip level i), got "
                                     f"{', '.join(f'{v:g}' for v in values)}")
            src = conditions[0] if conditions else Condition(GT, None)
            gains = list(speech_gains_db)
            mid_gain = sorted(gains)[len(gains) // 2]
            check_level = gains.index(mid_gain) + 1  # checks use the middle speech level
            for clip in clips:
                for s_level, gain in enumerate(gains, start=1):
                    keys = [stim(clip, src.name, src.transform.then(Transform(lip_scale=ls, gain_db=gain)),
                                 speech_level=s_level, lip_level=l_level)
                            for l_level, ls in enumerate(lip_scales, start=1)]
                    trials.append(Trial(f"{clip}|speech{s_level}", "rank", clip, keys, [src.name] * len(keys),
                                        speech_level=s_level, model=src.model))
            k = len(lip_scales)
        else:
            if len(conditions) < 2:
                raise InputError("--design rank --rank-over conditions needs at least two --conditions")
            for clip in clips:
                keys = [stim(clip, c.name, c.transform) for c in conditions]
                trials.append(Trial(f"{clip}|all", "rank", clip, keys, names))
            k = len(conditions)
        if k > 6:
            raise InputError(f"a ranking trial of {k} videos is too long for participants (at most 6)")
        n_groups = k
        q = question or "rank"
        pairs = []

    kind = "ab" if design == "ab" else "rank"
    n_levels = len(speech_gains_db) if design == "rank" and rank_over == "intensity" else None
    for i, trial in enumerate(trials):
        trial.layouts = _layouts(k, n_groups, i, kind, trial_rotation(i, k, n_levels) if kind == "rank" else None)
    rng = np.random.default_rng([seed, 0])
    check_clips = [clips[j] for j in rng.permutation(len(clips))]
    for i in range(attention_checks):
        clip = check_clips[i % len(check_clips)]
        base = Transform(gain_db=mid_gain)
        good = stim(clip, GT, base, role="check", speech_level=check_level)
        bad = []
        kinds = []
        for label, t in check_transforms(k - 1, i, check_shift_ms, fps):
            bad.append(stim(clip, GT, base.then(t), role="check", check_kind=label, speech_level=check_level))
            kinds.append(label)
        keys = [good, *bad]
        trial = Trial(f"check{i}|{clip}", kind, clip, keys, [GT] * k, attention_check=True, check_kinds=kinds,
                      correct=good, comparison="attention check")
        # the ground-truth video rotates over positions: A/B checks alternate sides, rank checks rotate
        trial.layouts = _layouts(k, n_groups, i, kind)
        trials.append(trial)

    if fps is not None:  # say where a check's lip lag is not the one asked for
        lags = {(asked.lag_ms, shown.lag_ms) for i in range(attention_checks)
                for (_, asked), (_, shown) in zip(check_transforms(k - 1, i, check_shift_ms),
                                                  check_transforms(k - 1, i, check_shift_ms, fps))}
        for asked, shown in sorted(lags):
            if shown != asked:
                log.warning("attention checks: a lip lag of %g ms is %g frames at %g fps; the checks delay the lips "
                            "by %g ms (%d frames), as manifest.json records", asked, asked * fps / 1000, fps, shown,
                            round(shown * fps / 1000))
    # opaque ids in a seeded random order
    for n, j in enumerate(rng.permutation(len(stimuli)), start=1):
        s = list(stimuli.values())[j]
        s.id = f"v{n:04d}"
        s.file = f"stimuli/{s.id}.mp4"
    practice = None
    if practice_clip is not None:
        practice_keys = []
        for j, scale in enumerate(PRACTICE_LIP_SCALES[k]):
            key = f"practice|{practice_clip}|{j}"
            stimuli[key] = Stimulus(key, practice_clip, GT, Transform(lip_scale=scale, gain_db=mid_gain),
                                    role="practice", id=f"v{len(stimuli) + 1:04d}")
            stimuli[key].file = f"stimuli/{stimuli[key].id}.mp4"
            practice_keys.append(key)
        practice = Trial(PRACTICE, kind, practice_clip, practice_keys, [GT] * k, comparison="practice",
                         layouts=_layouts(k, n_groups, 0, kind), id=PRACTICE)
    width = max(2, len(str(len(trials))))
    for n, j in enumerate(rng.permutation(len(trials)), start=1):
        trials[j].id = f"q{n:0{width}d}"
    trials.sort(key=lambda t: t.id)
    if participants % n_groups:  # the counterbalancing of the module docstring holds over whole groups only
        sizes = [len(range(g, participants, n_groups)) for g in range(n_groups)]
        log.warning("%d participants in %d counterbalancing groups gives groups of %s people: the display positions "
                    "are balanced within each group but not over all participants; use a multiple of %d",
                    participants, n_groups, "/".join(map(str, sizes)), n_groups)
    pwidth = max(2, len(str(participants)))
    people = []
    for i in range(participants):
        order = np.random.default_rng([seed, 1, i]).permutation(len(trials))
        people.append({"id": f"P{i + 1:0{pwidth}d}", "group": i % n_groups,
                       "order": [trials[j].id for j in order]})
    if design == "rank":
        q = QUESTIONS.get(q, q).format(last=chr(ord("A") + k - 1), k=k)
    else:
        q = QUESTIONS.get(q, q)
    return Plan(design, rank_over if design == "rank" else None, q, stimuli, trials, people, n_groups,
                list(pairs), practice)


def layout_counts(plan: Plan) -> dict[str, Any]:
    """How often each condition takes each display position, per group and overall (main trials):
    ``{"by_group": {g: {condition: [count per position]}}, "overall": {...}}``."""
    by_group: dict[int, dict[str, list[int]]] = {}
    for trial in plan.trials:
        if trial.attention_check:
            continue
        for g, layout in enumerate(trial.layouts):
            counts = by_group.setdefault(g, {})
            for pos, idx in enumerate(layout):
                label = trial.conditions[idx] if plan.rank_over != "intensity" else \
                    f"lip{plan.stimuli[trial.stimuli[idx]].lip_level}"
                counts.setdefault(label, [0] * len(layout))[pos] += 1
    overall: dict[str, list[int]] = {}
    for counts in by_group.values():
        for label, c in counts.items():
            acc = overall.setdefault(label, [0] * len(c))
            for pos, n in enumerate(c):
                acc[pos] += n
    return {"by_group": by_group, "overall": overall}
