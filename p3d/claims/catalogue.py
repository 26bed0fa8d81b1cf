"""The paper's claims (:data:`CLAIMS`), each with the paper's evidence written from :mod:`p3d.paper` and its
judge, and :func:`assess`, which judges them all."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d import paper
from p3d.claims.judges import (
    _NO_PEOPLE,
    _baseline_sync,
    _critic_spec,
    _effects_judge,
    _fdd,
    _loss_effect,
    _mead_loss,
    _mead_spec,
    _mtm_validity,
    _not_testable,
    _overhead,
    _plrs_people,
    _property,
    _temporal,
    _two_d_prior,
)
from p3d.claims.tables import READ_STEMS, _Missing
from p3d.claims.verdicts import Assessment, Claim
from p3d.errors import InputError

#: How the paper's values are printed, per metric key.
_FORMATS = {"mtm_ms": ".1f", "lve": ".3f", "plrs": ".3f", "slcc_delta": ".2f", "fdd": ".3f"}


# -- the paper's evidence, written from p3d.paper -------------------------------------------------------------
def _fmt(x: float, metric: str) -> str:
    return format(x, _FORMATS[metric])


def paper_changes(table: str, rows: dict[tuple[str, str], Any], metric: str, before: str, after: str,
                  unit: str = "") -> str:
    """``"<table>: <METRIC> FaceFormer a -> b, CodeTalker c -> d, SelfTalk e -> f<unit>."`` from :mod:`p3d.paper`
    rows, each pair named by its model (the row of the paper's table it is read from)."""
    name = {"mtm_ms": "MTM", "lve": "LVE", "plrs": "PLRS", "slcc_delta": "SLCC Δ"}[metric]
    pairs = [(paper.MODEL_LABELS[m], rows[(m, before)].value(metric), rows[(m, after)].value(metric))
             for m in paper.MODELS]
    return f"{table}: {name} " + ", ".join(f"{label} {_fmt(a, metric)} -> {_fmt(b, metric)}"
                                           for label, a, b in pairs) + f"{unit}."


def _s7_text() -> str:
    return "Table S7: FDD " + ", ".join(
        f"{paper.MODEL_LABELS[m]} {paper.TABLE_S7[(m, 'none')]:.3f} -> {paper.TABLE_S7[(m, 'ours')]:.3f}"
        for m in paper.MODELS) \
        + f" ({paper.FDD_UNIT})."


def _s8_text() -> str:
    over = [paper.table_s8_overhead(m) for m in paper.MODELS]
    dt, ratio, dm = zip(*over)
    return (f"Table S8: +{min(dt):.2f}-{max(dt):.2f} s and +{min(dm):.0f}-{max(dm):.0f} MB per iteration "
            f"({min(ratio):.2f}x-{max(ratio):.2f}x time) on an {paper.TABLE_S8_DEVICE.split('x ', 1)[-1]}.")


def _syncnet_text() -> str:
    ff_s, ff_o = paper.TABLE3[("faceformer", "syncnet3d")], paper.TABLE3[("faceformer", "ours")]
    ct_n, ct_s = paper.TABLE3[("codetalker", "none")], paper.TABLE3[("codetalker", "syncnet3d")]
    return (f"Table 3: FaceFormer PLRS {ff_s.plrs:.3f} (3D SyncNet) vs {ff_o.plrs:.3f} (ours); 3D SyncNet raises "
            f"CodeTalker's LVE ({ct_n.lve:.3f} -> {ct_s.lve:.3f}) and SLCC Δ ({ct_n.slcc_delta:.2f} -> "
            f"{ct_s.slcc_delta:.2f}).")


def _s4_s6_text() -> str:
    b = paper.TABLE_S6["(b) + MEAD-3D vs + MEAD-3D + loss"].rows["Overall"][1]
    return (f"Tables S4/S5: {paper.TABLE_S4.rows['Overall'][1]:.1f} % / {paper.TABLE_S5.rows['Overall'][1]:.1f} % "
            f"overall ({paper.TABLE_S4.participants} / {paper.TABLE_S5.participants} participants); Table S6: "
            f"{b:.1f} % (+ loss vs + MEAD-3D, {paper.TABLE_S6_PARTICIPANTS} participants).")


_BAND = paper.BASELINE_MTM_BAND_MS

CLAIMS: tuple[Claim, ...] = (
    Claim("loss-plrs", "The perceptual loss improves lip readability (PLRS) for FaceFormer, CodeTalker and SelfTalk.",
          paper_changes("Table 2", paper.TABLE2, "plrs", "none", "ours"), _loss_effect("PLRS")),
    Claim("loss-mtm", "The perceptual loss improves temporal synchronization (MTM) for all three models.",
          paper_changes("Table 2", paper.TABLE2, "mtm_ms", "none", "ours", " ms"), _loss_effect("MTM")),
    Claim("loss-slcc", "The perceptual loss improves expressiveness (SLCC closer to the data's) for all three models.",
          paper_changes("Table 2", paper.TABLE2, "slcc_delta", "none", "ours"), _loss_effect("SLCC Δ")),
    Claim("loss-lve", "The perceptual loss also lowers LVE for all three models.",
          paper_changes("Table 2", paper.TABLE2, "lve", "none", "ours"), _loss_effect("LVE")),
    Claim("loss-fdd", "With the loss, upper-face dynamics (FDD) are similar or improved.", _s7_text(), _fdd),
    Claim("two-d-prior", "The 2D prior matters: without stage 1 the representation generalises worse and helps less.",
          "Table 3 (w/o 2D prior worse than ours as a loss for all models); Figs. S6/S7 (large train/test gap).",
          _two_d_prior),
    Claim("vs-syncnet", "Ours is a better perceptual loss than a CNN 3D SyncNet critic.", _syncnet_text(),
          _effects_judge(_critic_spec("syncnet3d"))),
    Claim("prop-clusters", "In the learned space, windows of the same phoneme cluster together (speech and mesh).",
          "Fig. 4c and Fig. S1b (t-SNE, qualitative).", _property("phoneme clustering", True)),
    Claim("prop-temporal", "The learned space is sensitive to temporal misalignment (similarity falls with offset).",
          "Fig. 5a and Fig. S1a (curves, values not given).", _temporal),
    Claim("prop-intensity", "Speech features move along a consistent direction as speech intensity rises.",
          "Fig. 5b (qualitative).", _property("intensity direction", True)),
    Claim("mead-slcc", "Adding MEAD-3D to training raises expressiveness (SLCC Δ falls).",
          paper_changes("Table 4", paper.TABLE4, "slcc_delta", "voca", "mead").replace("SLCC Δ", "Avg SLCC Δ"),
          _effects_judge(_mead_spec("SLCC Δ", "better", "mead"))),
    Claim("mead-plrs", "Adding MEAD-3D to training lowers lip readability (PLRS).",
          paper_changes("Table 4", paper.TABLE4, "plrs", "voca", "mead"),
          _effects_judge(_mead_spec("PLRS", "worse", "mead"))),
    Claim("mead-loss", "The perceptual loss counterbalances the PLRS drop from MEAD-3D.",
          paper_changes("Table 4", paper.TABLE4, "plrs", "mead", "mead+ours"), _mead_loss),
    Claim("mtm-valid", "MTM measures the degree of temporal mismatch.",
          f"Fig. S5: MTM grows with an injected offset of {paper.FIG_S5_OFFSET_FRAMES[0]}-"
          f"{paper.FIG_S5_OFFSET_FRAMES[1]} frames (values not given).", _mtm_validity),
    Claim("baselines-sync", f"Existing models already reach reasonable temporal sync (MTM about "
          f"{_BAND[0]:.0f}-{_BAND[1]:.0f} ms).",
          "Table 2 baselines " + ", ".join(f"{paper.MODEL_LABELS[m]} {paper.TABLE2[(m, 'none')].mtm_ms:.1f}"
                                           for m in paper.MODELS) + " ms; Fig. S8.", _baseline_sync),
    Claim("plrs-people", "PLRS agrees with people better than LVE does.",
          f"Table S3: Spearman rho {paper.TABLE_S3.rho['plrs']:.3f} (PLRS) vs {paper.TABLE_S3.rho['lve']:.3f} (LVE), "
          f"{paper.TABLE_S3.participants} participants.", _plrs_people),
    Claim("cost", "The loss adds training cost only (time and memory per iteration); inference is unchanged.",
          _s8_text(), _overhead),
    Claim("people-intensity", "People prefer lip intensity that matches speech intensity.",
          f"Table 1 left, {paper.TABLE1_LEFT_PARTICIPANTS} participants (cell values not given).",
          _not_testable(_NO_PEOPLE)),
    Claim("people-expressive", f"People prefer expressive sync with {paper.TABLE1_RIGHT_ASYNCHRONY_MS:.0f} ms "
          "asynchrony over exact timing without it.",
          f"Table 1 right: {paper.TABLE1_RIGHT.rows['-'][1]:.1f} % vs {paper.TABLE1_RIGHT.rows['-'][0]:.1f} %, "
          f"{paper.TABLE1_RIGHT.participants} participants.", _not_testable(_NO_PEOPLE)),
    Claim("people-loss", "People prefer the models trained with the perceptual loss (lip sync and overall quality).",
          _s4_s6_text(), _not_testable(_NO_PEOPLE)),
    Claim("real-data", "The numbers of Tables 2-4 on VOCASET / MEAD-3D (the real datasets).",
          "Tables 2-4.", _not_testable("The real datasets (VOCASET, MEAD-3D, LRS3-3D) and FLAME cannot be downloaded "
                                       "here; p3d reads them from local paths (`paper` preset) but measured the synthetic "
                                       "corpus. Effects are compared, never absolute values.")),
)


def assess(tables_dir: str | Path, claims: Sequence[Claim] = CLAIMS) -> Any:
    """Judge every claim against the CSV tables in ``tables_dir``.

    Returns a DataFrame with one row per claim: ``key``, ``claim``, ``paper`` (the paper's evidence),
    ``p3d`` (p3d's evidence), ``verdict``, ``decided_by`` (the referee / metric / cases that decided it),
    ``sources`` (comma-separated table stems), ``cases`` (:attr:`Assessment.cases`: what each case was judged on).
    """
    import pandas as pd

    tables = Path(tables_dir)
    rows = []
    for c in claims:
        READ_STEMS.clear()
        try:
            a = c.judge(tables)
        except _Missing as exc:
            a = Assessment("not measured", f"table {exc.stem} not found in {tables} (run `make figures`)", (exc.stem,))
        except (KeyError, ValueError, TypeError, IndexError) as exc:  # a table of another layout
            read = ", ".join(f"{s}.csv" for s in dict.fromkeys(READ_STEMS)) or "its tables"
            raise InputError(f"{tables}: {read} not in the layout `make figures` writes (judging claim {c.key}: "
                             f"{type(exc).__name__} {exc})") from None
        rows.append({"key": c.key, "claim": c.text, "paper": c.paper, "p3d": a.evidence, "verdict": a.verdict,
                     "decided_by": a.decided_by, "sources": ", ".join(a.sources), "cases": a.cases})
    return pd.DataFrame(rows)
