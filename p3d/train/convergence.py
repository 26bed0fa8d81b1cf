"""Training to convergence: the validation-plateau stopping rule, the validation metrics, the convergence table.

**The rule** (``TrainConfig(stop="plateau")``; :func:`plateau_reached`). Every ``eval_every`` optimisation
steps the trainer computes one validation value ``v_i`` (lower is better: a loss on held-out data, see
below) and appends it to ``RUN_DIR/val.csv``. The values are smoothed with a moving median over the last
``smooth`` evaluations (``s_i = median(v_{i-smooth+1..i})``, defined from ``i = smooth``: a whole window, so
robust to one bad evaluation, the first included; no scale parameter). After evaluation ``n`` the run stops when
the best smoothed value of the last ``patience`` evaluations improves on the best one before them by less than
``min_rel_improvement`` (relative, > 0)::

    ref = min(s_smooth .. s_{n-patience})      cur = min(s_smooth .. s_n)
    stop  iff  n >= smooth + patience  and  (ref - cur) / |ref| < min_rel_improvement

``steps`` is the cap (``--max-steps``): a run that reaches it without the rule firing ends there.
``converged`` = the rule fired (True) / the cap was hit (False) / not yet decided (None: an interrupted run);
read from what the run did (its last logged step), so a run stopped by an earlier version of the rule stays
stopped. The decision is a pure function of the history, which is a pure function of (seed, step) (the
trainer's design), and on resume the history is read back from ``val.csv`` (rows past the checkpoint dropped,
as ``metrics.csv``): a resumed run makes the same decision at the same step. A longer cap extends a run that
hit the cap exactly (the rule had not fired at any evaluation so far, as in a run asked for the longer cap from
the start); a run stopped by the rule stays stopped.

**The weights kept.** ``final.pt`` holds the weights at the stop step (the last step), as the paper's
baselines test their last epoch; the best evaluation (``best_step``: arg-min of the smoothed curve) is
recorded in the table, not restored. The rule bounds how much the curve improved over the last ``patience``
evaluations, not how much it rose after its best, so the kept weights can be worse than ``val_metric``: the table
gives their own validation value beside it (``val_final``, the last evaluation's raw value when it is at the
stop step).

**Validation metrics** (computed in eval mode, no gradients, on fixed held-out data: the same batches at
every evaluation and for every run of a corpus):

- critics (``stage2``, ``syncnet3d``, ``no2d``, ``finetune``, ``evaluator``): the symmetric InfoNCE (Eq. 5)
  of the corpus' ``val`` windows in fixed shuffled batches of :data:`VAL_BATCH` (at most
  :data:`VAL_WINDOWS` windows, evenly spaced), plus the speech->mesh top-1 retrieval accuracy;
- ``stage1``: its training loss (Eq. 4) on the ``val`` lip-video windows with fixed masks;
- talkers: the vertex MSE (corpus units squared) of :meth:`Talker.predict` from speech against the
  ground truth on at most :data:`VAL_CLIPS` ``val`` clips (evenly spaced).

``stop="steps"`` with ``eval_every > 0`` records the same curve without stopping; ``converged`` is then
whether the rule's criterion holds at the last evaluation.
"""
from __future__ import annotations

import abc

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d.device import eval_mode
from p3d.errors import InputError
from p3d.train.run_folder import CONTINUED_FROM, read_run_config

#: ``TrainConfig.stop`` choices: a fixed step count, or the validation-plateau rule with ``steps`` as the cap.
STOP_RULES: tuple[str, ...] = ("steps", "plateau")
#: Defaults of the rule (``p3d train --stop plateau``): evaluations of patience, relative improvement, smoothing.
DEFAULT_PATIENCE = 5
DEFAULT_MIN_REL_IMPROVEMENT = 0.01
DEFAULT_SMOOTH = 3
#: The options that only shape the validation curve and the rule (``val_smoothed``, ``converged``), with their
#: defaults: the one table of them that the options, the checked settings and the readers of run folders use.
RULE_DEFAULTS: Mapping[str, int | float] = {"patience": DEFAULT_PATIENCE,
                                           "min_rel_improvement": DEFAULT_MIN_REL_IMPROVEMENT,
                                           "smooth": DEFAULT_SMOOTH}
#: Held-out data of the validation metrics (fixed sizes: the value does not depend on the training batch).
VAL_WINDOWS = 512
VAL_BATCH = 64
VAL_CLIPS = 16
#: Seed of the fixed validation batches and masks (the same for every run, so curves are comparable).
VAL_SEED = 20250326
#: The run folder's validation history.
VAL_CSV = "val.csv"


# -- the rule --------------------------------------------------------------------------------------
def smoothed(values: Sequence[float], window: int) -> np.ndarray:
    """Moving median of ``values`` over the last ``window`` entries (fewer at the start: the rule and
    :func:`best_index` use only whole windows, from index ``window - 1``), float64."""
    v = np.asarray(values, dtype=np.float64)
    return np.array([np.median(v[max(0, i - window + 1):i + 1]) for i in range(len(v))], dtype=np.float64)


def _finite(values: Sequence[float]) -> np.ndarray:
    """``values`` as float64, refused (:class:`InputError`) if one is not a finite number: the trainer records only
    finite ones, and NaN has no place in "lower is better" (a median or minimum over it is NaN, so the rule would
    never fire after it and the best evaluation could be the NaN one)."""
    v = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
        raise InputError(f"validation values: values[{bad[0]}] is {v[bad[0]]}; the plateau rule and the best "
                         f"evaluation need finite values")
    return v


def check_history(steps: Sequence[Any], values: Sequence[Any], path: str | os.PathLike[str]) -> list[float]:
    """The validation values of ``path`` (a ``val.csv``: one per step of ``steps``) as floats; refused with one line
    naming the file and the step where one is not a finite number (the trainer writes none: the file was edited or
    damaged), so that no reader silently ranks or smooths it (:func:`_finite`)."""
    out = []
    for step, raw in zip(steps, values):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise InputError(f"{path}: step {step}: validation value {str(raw).strip() or '(empty)'} is not a finite "
                             f"number (the trainer writes only finite ones: an edited or damaged file)")
        out.append(value)
    return out


def relative_improvement(values: Sequence[float], window: int, patience: int) -> float:
    """``(ref - cur) / |ref|`` of the module docstring (NaN while fewer than ``window + patience`` values).
    A value that is not finite is refused (:class:`InputError`)."""
    values = _finite(values)
    n = len(values)
    if n < window + patience or patience < 1:
        return math.nan
    s = smoothed(values, window)[window - 1:]  # whole windows only: a first evaluation alone is not a median
    ref, cur = float(s[: n - patience - window + 1].min()), float(s.min())
    if ref == 0.0:
        return 0.0 if cur >= ref else math.inf
    return (ref - cur) / abs(ref)


def plateau_reached(values: Sequence[float], *, window: int, patience: int, min_rel_improvement: float) -> bool:
    """True when the validation curve ``values`` (one per evaluation, lower is better) has plateaued;
    ``min_rel_improvement`` must be > 0 (at 0 no curve, flat or rising, would ever stop)."""
    if not min_rel_improvement > 0:
        raise InputError(f"min_rel_improvement: expected a fraction > 0, got {min_rel_improvement}")
    rel = relative_improvement(values, window, patience)
    return not math.isnan(rel) and rel < min_rel_improvement


def best_index(values: Sequence[float], window: int) -> int | None:
    """Index of the evaluation with the lowest smoothed value over whole windows (the first on ties; with fewer
    than ``window`` values, over the partial ones); None for no values. A value that is not finite is refused
    (:class:`InputError`)."""
    if not len(values):
        return None
    values = _finite(values)
    first = min(window, len(values)) - 1
    return first + int(np.argmin(smoothed(values, window)[first:]))


def stop_settings(stop: str | None = None, eval_every: int | None = None, patience: int | None = None,
                  min_rel_improvement: float | None = None, smooth: int | None = None, *,
                  default_eval_every: int = 50) -> dict[str, Any]:
    """Checked ``TrainConfig`` fields of the stopping rule from options (None: default). ``eval_every``
    defaults to ``default_eval_every`` with ``stop="plateau"`` and to 0 (no validation) otherwise.
    Raises :class:`InputError` naming the option."""
    stop = stop or "steps"
    if stop not in STOP_RULES:
        raise InputError(f"--stop: expected one of {', '.join(STOP_RULES)}, got {stop!r}")
    if eval_every is None:
        eval_every = default_eval_every if stop == "plateau" else 0
    for name, value, low in (("eval-every", eval_every, 0), ("patience", patience, 1), ("smooth", smooth, 1)):
        if value is None:
            continue
        try:
            whole = not isinstance(value, bool) and int(value) == value
        except (TypeError, ValueError, OverflowError):  # NaN, infinity, text: int() raised before the check
            whole = False
        if not whole or value < low:
            raise InputError(f"--{name}: expected an integer >= {low}, got {value}")
    if stop == "plateau" and eval_every < 1:
        raise InputError("--eval-every: --stop plateau needs a positive evaluation interval")
    if min_rel_improvement is not None and not (math.isfinite(min_rel_improvement) and min_rel_improvement > 0):
        raise InputError(f"--min-rel-improvement: expected a finite fraction > 0 (0.01 = 1 %), "
                         f"got {min_rel_improvement}")
    rule = {"patience": patience, "min_rel_improvement": min_rel_improvement, "smooth": smooth}
    return {"stop": stop, "eval_every": int(eval_every),  # each as its default's type: int, float, int
            **{name: RULE_DEFAULTS[name] if value is None else type(RULE_DEFAULTS[name])(value)
               for name, value in rule.items()}}


#: The rule's options (:data:`RULE_DEFAULTS`): without validation (``--stop steps`` and no ``--eval-every``) they
#: change nothing.
RULE_OPTIONS: tuple[str, ...] = tuple(RULE_DEFAULTS)


def stop_options(args: Any) -> dict[str, Any]:
    """The rule's options from ``p3d train`` arguments (:func:`add_stop_arguments`), None where not given.
    ``--patience``, ``--min-rel-improvement`` or ``--smooth`` without validation (neither ``--stop plateau`` nor
    ``--eval-every`` > 0) at a value other than its default is refused (:class:`InputError`): it would be recorded
    in the request, yet change nothing."""
    options = {name: getattr(args, name, None) for name in ("stop", "eval_every", *RULE_OPTIONS)}
    # at its default an option is the same setting as the option left out
    given = [name for name in RULE_OPTIONS if options[name] is not None and options[name] != RULE_DEFAULTS[name]]
    if given and options["stop"] != "plateau" and not options["eval_every"]:
        flag = "--" + given[0].replace("_", "-")
        raise InputError(f"{flag}: a plateau-rule option given without --stop plateau (or --eval-every N): no "
                         f"validation runs, so it would change nothing; add --stop plateau or leave {flag} out")
    return options


def add_stop_arguments(parser: Any) -> None:
    """``--stop``, ``--eval-every``, ``--patience``, ``--min-rel-improvement``, ``--smooth`` (``p3d train``)."""
    parser.add_argument("--stop", choices=STOP_RULES, default=None,
                        help="steps: train --steps steps (default); plateau: stop when the validation metric stops "
                             "improving, with --max-steps (= --steps) as the cap")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="steps between validation evaluations (RUN_DIR/val.csv; default with --stop plateau: "
                             "5 x the preset's logging interval; 0: none)")
    parser.add_argument("--patience", type=int, default=None,
                        help=f"plateau rule: evaluations without enough improvement (default {DEFAULT_PATIENCE})")
    parser.add_argument("--min-rel-improvement", type=float, default=None,
                        help=f"plateau rule: relative improvement below which the run stops "
                             f"(default {DEFAULT_MIN_REL_IMPROVEMENT})")
    parser.add_argument("--smooth", type=int, default=None,
                        help=f"plateau rule: moving-median window in evaluations (default {DEFAULT_SMOOTH})")


# -- validation metrics ----------------------------------------------------------------------------
def _evenly_spaced(n: int, at_most: int) -> list[int]:
    if n <= at_most:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(int)).tolist()


class _Validation(abc.ABC):
    """Common parts: ``metric`` (the monitored column), ``__call__(model, step) -> {column: value}``,
    ``describe()`` (JSON-able, recorded in ``config.json``)."""

    metric = "val"

    def __call__(self, model: Any, step: int) -> dict[str, float]:
        import torch

        with eval_mode(model), torch.no_grad():
            return self.evaluate(model)

    @abc.abstractmethod
    def evaluate(self, model: Any) -> dict[str, float]:
        """The validation values of ``model`` (already in eval mode, without gradients)."""


class WindowValidation(_Validation):
    """Critics (symmetric InfoNCE + top-1 retrieval) or stage 1 (its loss) on fixed held-out window batches.

    ``windows``: a :class:`p3d.windows.SpeechMeshWindows` / :class:`p3d.windows.AVWindows` of the ``val``
    split. At most :data:`VAL_WINDOWS` of them, evenly spaced, are shuffled once with :data:`VAL_SEED` and
    cut into batches of :data:`VAL_BATCH` (a last smaller batch of at least 2 is kept).

    A critic with a frozen speech encoder (``model.freeze_speech``: stage 2 "ours", the PLRS evaluator) has its
    batches' speech embeddings computed at the first evaluation and reused by the later ones (the same batches
    through the same frozen weights: the same numbers); a call with another model object recomputes them.
    """

    def __init__(self, windows: Any, kind: str, *, max_windows: int = VAL_WINDOWS, batch: int = VAL_BATCH) -> None:
        import torch

        self.windows = windows
        self.kind = kind
        self.metric = "val_loss" if kind == "stage1" else "val_infonce"
        chosen = torch.tensor(_evenly_spaced(len(windows), max_windows), dtype=torch.long)
        order = chosen[torch.randperm(len(chosen), generator=torch.Generator().manual_seed(VAL_SEED))].tolist()
        self.batches = [order[i:i + batch] for i in range(0, len(order), batch) if len(order[i:i + batch]) >= 2]
        if not self.batches:
            raise InputError(f"validation: split {getattr(windows, 'split', 'val')!r} has {len(windows)} window(s); "
                             f"the validation metric needs at least 2")
        self._cache: list[Any] = []
        self._speech: dict[int, Any] = {}  # batch -> frozen speech embeddings, for the model self._speech_of
        self._speech_of: int | None = None

    def describe(self) -> dict[str, Any]:
        return {"metric": self.metric, "split": getattr(self.windows, "split", None),
                "windows": sum(len(b) for b in self.batches), "batch": VAL_BATCH}

    def evaluate(self, model: Any) -> dict[str, float]:
        import torch

        from p3d.losses.infonce import info_nce_from_logits

        device = next(model.parameters()).device
        if not self._cache:
            self._cache = [self.windows.collate(b) for b in self.batches]
        frozen = self.kind != "stage1" and bool(getattr(model, "freeze_speech", False))
        if self._speech_of != id(model):
            self._speech, self._speech_of = {}, id(model)
        total, top1, n = 0.0, 0.0, 0
        for i, batch in enumerate(self._cache):
            speech = batch["speech"].to(device)
            if self.kind == "stage1":
                gen = torch.Generator().manual_seed(VAL_SEED + i)
                loss = model(speech, batch["video"].to(device), generator=gen).loss
            elif frozen:
                if i not in self._speech:
                    self._speech[i] = model.encode_speech(speech)
                logits, _ = model(self._speech[i], batch["mesh"].to(device), speech_embedded=True)
            else:
                logits, _ = model(speech, batch["mesh"].to(device))
            if self.kind != "stage1":
                loss = info_nce_from_logits(logits)
                target = torch.arange(logits.shape[0], device=logits.device)
                top1 += float((logits.argmax(dim=1) == target).float().sum())
            b = int(speech.shape[0])
            total += float(loss) * b
            n += b
        out = {self.metric: total / n}
        if self.kind != "stage1":
            out["val_top1"] = top1 / n
        return out


class TalkerValidation(_Validation):
    """Talkers: mean over at most :data:`VAL_CLIPS` held-out clips (evenly spaced) of the vertex MSE of
    ``model.predict`` from speech against the ground truth (corpus units squared, e.g. m^2).

    ``clips``: a :class:`p3d.talker_data.TalkerClips` of the ``val`` split, with the training styles (a clip of
    an unseen identity gets the default style, as ``p3d predict``)."""

    metric = "val_vertex_mse"

    def __init__(self, clips: Any, *, max_clips: int = VAL_CLIPS) -> None:
        self.clips = clips
        self.indices = _evenly_spaced(len(clips), max_clips)

    def describe(self) -> dict[str, Any]:
        return {"metric": self.metric, "split": getattr(self.clips, "split", None), "clips": len(self.indices)}

    def evaluate(self, model: Any) -> dict[str, float]:
        device = next(model.parameters()).device
        errors = []
        for i in self.indices:
            item = self.clips[i]
            gt = item.vertices.to(device)
            pred = model.predict(item.audio.to(device), item.template.to(device), item.style, int(gt.shape[0]))
            errors.append(float(((pred - gt) ** 2).mean()))
        return {self.metric: float(np.mean(errors))}


def has_split(corpus: Any, split: str) -> bool:
    """Whether the opened ``corpus`` has clips in ``split``."""
    return any(c.split == split for c in corpus.clips)


def talker_validation(corpora: Sequence[Any], styles: Sequence[str], *, split: str = "val", workers: int = 1,
                      progress: bool = False) -> TalkerValidation:
    """:class:`TalkerValidation` on the ``split`` clips of the opened training ``corpora`` that have that split
    (Config 2 at ``full`` validates on synth-voca's val speakers: synth-mead has train and test identities only;
    styles: the training ones); :class:`InputError` when no corpus has that split."""
    from p3d.talker_data import TalkerClips

    with_split = [c for c in corpora if has_split(c, split)]
    if not with_split:
        raise InputError(f"--stop/--eval-every: {', '.join(str(c.root) for c in corpora)} has no {split!r} split to "
                         f"validate on (use --stop steps without --eval-every)")
    return TalkerValidation(TalkerClips(with_split, split, styles=styles, workers=workers, progress=progress))


# -- reading runs ----------------------------------------------------------------------------------
def read_val(run_dir: str | os.PathLike[str]) -> Any:
    """``RUN_DIR/val.csv`` as a DataFrame (empty when the run recorded no validation, or the file is empty: a
    process killed between creating it and its first flush). A ``val`` that is not a finite number is refused with
    one line naming the file and the step (:func:`check_history`)."""
    import pandas as pd

    path = Path(run_dir) / VAL_CSV
    if not path.is_file() or not path.stat().st_size:  # empty: killed before its first row reached the disk
        return pd.DataFrame(columns=["step", "val", "val_smoothed"])
    val = pd.read_csv(path)
    check_history(val["step"], val["val"], path)
    return val


@dataclasses.dataclass(frozen=True)
class RunConvergence:
    """One run's row of :func:`convergence_table`."""

    run: str
    kind: str
    model: str | None
    seed: int
    stop: str
    steps: int
    max_steps: int
    epochs: float
    best_step: int | None
    metric: str | None
    val_metric: float
    converged: bool | None
    finished: bool
    val_last: float = math.nan
    val_final: float = math.nan
    continued_from: int | None = None
    val_at_continued_from: float = math.nan


def _last_logged_step(run_dir: Path) -> int:
    import pandas as pd

    path = run_dir / "metrics.csv"
    if not path.is_file() or not path.stat().st_size:  # empty: killed before its first row reached the disk
        return 0
    steps = pd.read_csv(path, usecols=["step"])["step"]
    return int(steps.max()) if len(steps) else 0


def run_convergence(run_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
                    ) -> RunConvergence:
    """Read one run folder (``config.json``, ``val.csv``, ``metrics.csv``): see :func:`convergence_table`."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir) if run_dir.is_dir() else None
    if config is None:
        raise InputError(f"{run_dir}: not a p3d run folder (no config.json)")
    train = config["train"]
    stop = train.get("stop", "steps")
    cap = int(train["steps"])
    window = int(train.get("smooth", RULE_DEFAULTS["smooth"]))
    patience = int(train.get("patience", RULE_DEFAULTS["patience"]))
    min_rel = float(train.get("min_rel_improvement", RULE_DEFAULTS["min_rel_improvement"]))
    val = read_val(run_dir)
    values = [float(v) for v in val["val"]] if len(val) else []
    finished = (run_dir / "final.pt").exists()
    criterion = plateau_reached(values, window=window, patience=patience, min_rel_improvement=min_rel) \
        if values and min_rel > 0 else None  # (0 was accepted once: a rule that never fires)
    steps = _last_logged_step(run_dir)  # the trainer logs the stop step and the cap's
    if finished and not steps:
        steps = cap
    if stop == "plateau":
        # what the run did: the rule fired at its last step, or it ended before its cap (so a run stopped under an
        # earlier version of the rule stays stopped); it hit the cap; or it was interrupted (not decided: None)
        fired = bool(criterion) and int(val["step"].iloc[-1]) == steps
        converged = True if fired or (finished and steps < cap) else False if steps >= cap else None
    else:
        converged = None if criterion is None else bool(criterion)
    best = best_index(values, window)
    continued_from, val_there = None, math.nan
    if (run_dir / CONTINUED_FROM).is_file():  # a run continued from another's stop: where, and its value there
        continued_from = int(json.loads((run_dir / CONTINUED_FROM).read_text())["step"])
        at = [i for i, step in enumerate(val["step"]) if int(step) == continued_from] if len(val) else []
        if at:
            val_there = float(smoothed(values, window)[at[0]])
    cap_epochs = config.get("epochs")
    validation = config.get("validation") or {}
    model = config.get("model") or config.get("variant") or config.get("model_kind")
    return RunConvergence(
        run=str(run_dir) if root is None else Path(os.path.relpath(run_dir, root)).as_posix(),
        kind=str(config.get("kind", "?")), model=None if model is None else str(model),
        seed=int(train.get("seed", 0)), stop=stop, steps=steps, max_steps=cap,
        epochs=float(cap_epochs) * steps / cap if cap_epochs is not None else math.nan,
        best_step=None if best is None else int(val["step"].iloc[best]),
        metric=validation.get("metric"),
        val_metric=float(smoothed(values, window)[best]) if best is not None else math.nan,
        converged=converged, finished=finished,
        val_last=float(smoothed(values, window)[-1]) if values else math.nan,
        val_final=float(values[-1]) if finished and values and int(val["step"].iloc[-1]) == steps else math.nan,
        continued_from=continued_from, val_at_continued_from=val_there)


def convergence_table(run_dirs: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
                      ) -> Any:
    """One row per run folder: ``run, kind, model, seed, steps, epochs, best_step, val_metric, converged``
    (and ``stop``, ``max_steps``, ``metric``, ``finished``).

    ``run``: the folder as given, or relative to ``root`` when given (a table that reads the same on any
    machine and checkout).
    ``steps``: the steps trained (the last logged step: the trainer logs its stop step and its cap; the cap for a
    finished run without a log); ``epochs``: passes over the training items in those steps; ``best_step`` /
    ``val_metric``: the evaluation with the lowest smoothed validation value, and that value (``metric``
    names it); ``converged``: for ``stop="plateau"``, the rule ended the run (True) or it hit the cap (False),
    None for a run interrupted before either; for ``stop="steps"`` with validation, whether the plateau
    criterion holds at the last evaluation; None without validation (``eval_every=0``).
    ``val_last``: the smoothed validation value at the last evaluation; ``val_final``: the raw validation value
    of the weights kept (``final.pt``: the last evaluation when it is at the final step; may exceed
    ``val_metric``). ``continued_from`` / ``val_at_continued_from``: for a run that continues another from its stop
    (:func:`p3d.train.trainer.continue_without_stop_rule`, the equal-length runs), that step and the smoothed
    validation value there (``val_last`` beside it: what the longer training changed); empty for other runs.
    """
    import pandas as pd

    rows = [dataclasses.asdict(run_convergence(d, root)) for d in run_dirs]
    columns = [f.name for f in dataclasses.fields(RunConvergence)]
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({"converged": "object", "best_step": "Int64", "continued_from": "Int64"})


def read_stop(run_dir: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The rule's recorded settings of a run (``config.json``'s ``train``), defaults filled in."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    train = config["train"]
    return {"stop": train.get("stop", "steps"), "eval_every": int(train.get("eval_every", 0)),
            **{name: type(default)(train.get(name, default)) for name, default in RULE_DEFAULTS.items()},
            "steps": int(train["steps"])}
