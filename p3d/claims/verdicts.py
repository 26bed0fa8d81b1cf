"""The verdict rules of :mod:`p3d.claims`: a :class:`Case` (one effect with its 95 % CI, or one property
test) and its verdict, :func:`aggregate` over the cases of a claim, :func:`combine_referees` over the valid
PLRS referees; :class:`Assessment` (p3d's evidence for a claim) and :class:`Claim`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p3d.stats import minimum_detectable_effect

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not testable here", "not measured")
#: The variant name of the official PLRS evaluator in ``plrs_validity.csv``.
OFFICIAL_PLRS = "official"


#: Effect-table labels of the referees with their own (``p3d.experiments.METRIC_LABELS``: ``PLRS``, ``PLRS-c``,
#: ``PLRS-p``, ``PLRS-e``).
_PLRS_LABELS = {OFFICIAL_PLRS: "PLRS", "calibrated": "PLRS-c", "partial": "PLRS-p", "enrolled": "PLRS-e"}


def plrs_metric(variant: str) -> str:
    """The ``metric`` label of referee ``variant``'s PLRS rows in the effect tables (``PLRS`` for the official
    evaluator, ``PLRS-c`` for the hubness-calibrated one, ``PLRS-p`` for the partially corrected one, ``PLRS-e``
    for the speaker-enrolled one, ``PLRS [variant]`` for the others)."""
    return _PLRS_LABELS.get(variant, f"PLRS [{variant}]")


@dataclass(frozen=True)
class CaseBasis:
    """What one case of a claim was judged on, so that two runs' verdicts are compared like with like
    (:func:`p3d.claims.compare_verdicts`): ``label`` (the model or comparison and the metric, e.g.
    ``FaceFormer PLRS-e``), ``referee`` (the PLRS referee; None for other metrics), and where the table records
    them ``n_seeds`` (training seeds per arm) and ``n_clips`` (the test clips the effect rests on); None when it
    does not (a table written before the column, or a measurement without seeds or clips)."""

    label: str
    referee: str | None = None
    n_seeds: int | None = None
    n_clips: int | None = None

    def __str__(self) -> str:
        parts = ([f"referee {self.referee}"] if self.referee is not None else []) + \
            ([f"{self.n_seeds} seed{'' if self.n_seeds == 1 else 's'}"] if self.n_seeds is not None else []) + \
            ([f"{self.n_clips} clips"] if self.n_clips is not None else [])
        return self.label + (f" ({', '.join(parts)})" if parts else "")


@dataclass(frozen=True)
class Assessment:
    """p3d's evidence for one claim: ``verdict`` (one of :data:`VERDICTS`), a sentence with the numbers and
    their 95 % CIs (and the MDE beside the paper's effect), the tables it was read from (file stems under the
    tables folder), ``decided_by``: the referee / metric / cases that decided the verdict, and ``cases``: the
    :class:`CaseBasis` of every case the verdict was judged on (empty for a claim not measured or not testable;
    cases shown beside but not deciding are not among them)."""

    verdict: str
    evidence: str
    sources: tuple[str, ...] = ()
    decided_by: str = ""
    cases: tuple[CaseBasis, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: ``key`` (short id), ``text`` (the claim), ``paper`` (the paper's evidence, quoted
    as the paper's, built from :mod:`p3d.paper`), ``judge(tables_dir) -> Assessment``."""

    key: str
    text: str
    paper: str
    judge: Callable[[Path], Assessment]


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _num(x: Any) -> str:
    """Three significant digits; 'n/a' for NaN."""
    return "n/a" if _isnan(x) else f"{float(x):.3g}"


def _signed(x: Any) -> str:
    return "n/a" if _isnan(x) else f"{float(x):+.3g}"


# -- cases and their verdicts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One measured effect of a claim. ``change`` and its 95 % CI (``low``, ``high``) in p3d's units; ``want``
    the sign the claim predicts (+1 or -1); ``paper_change`` the paper's own effect (its units; None when
    the paper gives no number); ``without`` / ``with_`` the two arms (for the text, optional); ``referee``
    the PLRS referee that measured it (None for other metrics). ``passed`` replaces the CI for a case whose
    table reports only a test's outcome (True / False). ``caveat``: why the case's evidence cannot decide the claim
    whatever its CI (a compared arm's talker, or a critic or PLRS evaluator it rests on, whose training did not
    converge: :func:`p3d.claims.lengths.unconverged_runs`, :func:`p3d.claims.lengths.unconverged_critics`):
    the case is then at most ``inconclusive``, and its text says why. ``n_seeds`` / ``n_clips``: the training seeds per
    arm and test clips it rests on, where its table records them (for :attr:`basis`)."""

    label: str
    change: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    want: int = 1
    paper_change: float | None = None
    without: float | None = None
    with_: float | None = None
    referee: str | None = None
    passed: bool | None = None
    note: str = ""
    caveat: str = ""
    n_seeds: int | None = None
    n_clips: int | None = None

    @property
    def basis(self) -> CaseBasis:
        """What the case was judged on (:class:`CaseBasis`)."""
        return CaseBasis(self.label, self.referee, self.n_seeds, self.n_clips)

    @property
    def verdict(self) -> str:
        """``reproduced`` / ``contradicted`` / ``inconclusive`` by the rules of :mod:`p3d.claims` (``inconclusive``
        with a ``caveat``)."""
        if self.caveat:
            return "inconclusive"
        if self.passed is not None:
            return "reproduced" if self.passed else "inconclusive"
        if _isnan(self.low) or _isnan(self.high):
            return "inconclusive"
        if self.want * self.low > 0 and self.want * self.high > 0:
            return "reproduced"
        if self.want * self.low < 0 and self.want * self.high < 0:
            return "contradicted"
        return "inconclusive"

    @property
    def mde(self) -> float:
        """The minimum detectable effect (80 % power, 5 %) implied by the CI; NaN without one."""
        if self.passed is not None or _isnan(self.low) or _isnan(self.high):
            return float("nan")
        return minimum_detectable_effect(float(self.low), float(self.high))

    def text(self) -> str:
        if self.passed is not None:
            caveat = f"; not deciding: {self.caveat}" if self.caveat else ""
            return f"{self.label}: {self.note}{caveat}, {self.verdict}"
        arms = f"{_num(self.without)} -> {_num(self.with_)} " if self.without is not None else ""
        paper_part = (f" beside the paper's change {_signed(self.paper_change)}" if self.paper_change is not None
                      else "; the paper gives no number")
        note = f"; {self.note}" if self.note else ""
        if self.caveat:
            note += f"; not deciding: {self.caveat}"
        return (f"{self.label}: {arms}(change {_signed(self.change)} [{_signed(self.low)}, {_signed(self.high)}]; "
                f"MDE {_num(self.mde)}{paper_part}{note}), {self.verdict}")


def aggregate(verdicts: Sequence[str], complete: bool = True) -> str:
    """One verdict for a claim over several cases (:mod:`p3d.claims`): ``reproduced`` only if ``complete`` (every
    case the claim covers was measured) and every verdict is ``reproduced``; ``contradicted`` if any is;
    otherwise ``inconclusive``. No verdicts at all: ``not measured``."""
    if not verdicts:
        return "not measured"
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    if complete and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


def combine_referees(verdicts: dict[str, str]) -> str:
    """One verdict from the verdicts of a claim judged once per valid referee: their common verdict when they
    agree, ``inconclusive`` when they disagree; ``not measured`` when there is none."""
    values = set(verdicts.values())
    if not values:
        return "not measured"
    return values.pop() if len(values) == 1 else "inconclusive"


def _deciding(cases: Sequence[Case], verdict: str, complete: bool) -> str:
    """The cases that decided ``verdict``."""
    if verdict == "contradicted":
        hit = [c for c in cases if c.verdict == "contradicted"]
    elif verdict == "reproduced":
        hit = list(cases)
    else:
        hit = [c for c in cases if c.verdict == "inconclusive"]
    names = ", ".join(c.label for c in hit)
    if verdict == "inconclusive" and not complete:
        names = (names + "; " if names else "") + "cases not measured"
    return names
