"""``p3d study analyze``: the study tables from the exported answer files, with tests and intervals.

Input: the study's ``manifest.json`` and the files the survey page exported (JSON or CSV, see
:mod:`p3d.study.survey`), each checked against the manifest (study id, manifest sha256, participant
code and group, trial ids, that every answer names the trial's own videos).

1. **Exclusions**: a participant who fails more than ``max_failed_checks`` (default 0) attention checks
   (an unanswered check counts as failed) or whose file records no consent is excluded from every
   table (``participants`` says who and why). With nobody left, InputError (no tables are written).
   Answers to the practice screen (trial id ``practice``) are never analysed.
2. **A/B preferences** (paper Table 1 right, S4, S5, S6): per pair of conditions (rows by comparison
   and model, plus an "Overall" row pooling the models of a comparison) the share of answers
   preferring each condition and the 95% interval of the B share from a bootstrap over participants
   (:func:`p3d.stats.cluster_bootstrap_ci`, percentile). Answers of one participant are not
   independent (each has their own preference), so the test is over participants: each counted by
   their majority preference (ties dropped), exact two-sided binomial (sign) test against 50%
   (``p_participants``). ``p_binomial_pooled`` tests the pooled answers as if independent: descriptive
   only, far too small under clustering (null studies of 20 participants x 12 answers, each participant
   with their own preference, reject at 0.05 a third of the time or more).
3. **Intensity ranking** (Table 1 left): the mean preference score (1 .. K, K = most preferred) of each
   (speech level, lip level) cell, with a 95% bootstrap interval over participants (each
   participant's mean per cell; BCa, :func:`p3d.stats.bootstrap_ci`); and how often the top-scored
   lip level is the one that matches the speech level (share of answers, with a 95% bootstrap
   interval over participants as in item 2) against chance 1/K: a one-sample t-test of the
   participants' own match rates against 1/K (``p_participants_vs_chance``; it tests their mean, which
   signed-rank and sign tests do not: a K-way choice's rates are skewed). ``p_binomial_pooled`` (the
   answers pooled as if independent) is descriptive only, as in item 2.
4. **Condition ranking**: mean score per condition (bootstrap over participants) and Friedman's test
   over participants (K >= 3).
5. **Metric vs human rankings** (Table S3): for each answer of a condition-ranking trial, Spearman's
   rho between the participant's scores and a metric's ranking of the same videos (from ``p3d eval``
   ``per_clip.csv`` files, matched by the source file of each video; LVE and MTM: lower is better,
   PLRS: higher is better); per participant the mean rho, then the mean over participants with a
   bootstrap interval over participants.
6. **Agreement**: Fleiss' kappa of the A/B choices (items = main trials answered by every included
   participant) and Kendall's W of the rankings (per trial, over the participants who answered it;
   mean, min, max).

The paper reports percentages and rho only; the tests, intervals and agreement are p3d's.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p3d import stats
from p3d.errors import InputError
from p3d.study.survey import CSV_COLUMNS, CSV_OPTIONAL_COLUMNS, RESPONSE_FORMAT

log = logging.getLogger(__name__)

#: Metric columns of ``p3d eval``'s per_clip.csv used for Table S3, with +1 = higher is better.
METRIC_DIRECTIONS: dict[str, int] = {"lve": -1, "plrs": +1, "mtm_ms": -1}


@dataclasses.dataclass
class Analysis:
    """What :func:`analyze` found: per-answer rows, participants, tables (DataFrames) and a summary."""

    manifest: dict[str, Any]
    answers: Any
    participants: Any
    tables: dict[str, Any]
    summary: dict[str, Any]


# ------------------------------------------------------------------------------------------------
# Reading answer files
# ------------------------------------------------------------------------------------------------
#: Largest answer file read (bytes). A complete answer file is about 300 bytes per trial (a few tens of
#: kilobytes for any study a person can finish); anything far larger is not an export of the survey page.
MAX_ANSWER_FILE_BYTES = 5 * 1024 * 1024

#: The trial id of the survey page's practice screen; its answer is exported but never analysed.
PRACTICE_TRIAL_ID = "practice"

#: Longest plausible response time (ms): one day. Longer, negative or non-finite times are refused.
MAX_RT_MS = 24 * 3600 * 1000


def find_response_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders to their ``*.json`` / ``*.csv`` files; other files are skipped with a warning."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in {".json", ".csv"} and q.is_file()))
        elif p.is_file():
            if p.suffix.lower() in {".json", ".csv"}:
                out.append(p)
            else:
                log.warning("skipping %s: not a .json or .csv answer file", p)
        elif any(c in str(p) for c in "*?["):
            raise InputError(f"{p}: no answer files match (no responses collected yet?)")
        else:
            raise InputError(f"{p}: answer file not found")
    return list(dict.fromkeys(out))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _read_file(path: Path) -> dict[str, Any]:
    """One answer file, validated (:func:`validate_answer_file`), as ``{participant_id, group, study_id,
    manifest_sha256, consent_given, answers: [...]}``."""
    size = path.stat().st_size
    if size > MAX_ANSWER_FILE_BYTES:
        raise InputError(f"{path}: {size / 2**20:.1f} MB, larger than an answer file can be "
                         f"(limit {MAX_ANSWER_FILE_BYTES // 2**20} MB)")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise InputError(f"{path}: not readable JSON ({exc})") from None
        except RecursionError:
            raise InputError(f"{path}: JSON nested too deeply to be an answer file") from None
        return validate_answer_file(obj, path)
    return validate_answer_file(_read_csv(path), path)


def _read_csv(path: Path) -> dict[str, Any]:
    """A CSV export (one row per answer) as the JSON export's structure; values stay text where the
    validator must judge them."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise InputError(f"{path}: not a readable CSV answer file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: CSV lacks the columns {', '.join(missing)}")
    if df.empty:
        raise InputError(f"{path}: CSV holds no answers")
    for col in ("study_id", "manifest_sha256", "participant_id", "group", *CSV_OPTIONAL_COLUMNS):
        if col in df.columns and df[col].nunique() != 1:
            raise InputError(f"{path}: column {col} must hold one value (one participant per file)")
    answers = []
    for i, row in enumerate(df.to_dict("records")):
        ranks: Any = None
        if row["ranks"]:
            try:
                ranks = {k: _number(v) for k, v in (item.split(":") for item in row["ranks"].split(";"))}
            except ValueError:
                raise InputError(f"{path}: row {i + 2}, ranks: cannot read {row['ranks'][:40]!r} "
                                 "(expected v0001:3;v0002:1)") from None
        answers.append({"trial_id": row["trial_id"], "position": _number(row["position"]),
                        "answer": row["answer"], "chosen": row["chosen"] or None, "ranks": ranks,
                        "confidence": _number(row["confidence"]), "shown_at": row["shown_at"] or None,
                        "answered_at": row["answered_at"] or None, "rt_ms": _number(row["rt_ms"])})
    first = df.iloc[0]
    consent = {"true": True, "false": False, "": None}.get(str(first.get("consent_given", "")).lower(),
                                                           first.get("consent_given"))
    return {"format": RESPONSE_FORMAT, "study_id": first["study_id"], "manifest_sha256": first["manifest_sha256"],
            "participant_id": first["participant_id"], "group": _number(first["group"]), "complete": None,
            "consent_given": consent, "answers": answers}


def _number(text: str) -> Any:
    """A CSV cell as int or float ("" -> None); text that is no number stays text for the validator."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_answer_file(obj: Any, path: Path) -> dict[str, Any]:
    """Check the structure and types of an answer file (JSON export, or a CSV read into the same shape);
    InputError naming the file and the field otherwise. Fields (:mod:`p3d.study.survey`): ``format``,
    ``study_id``, ``manifest_sha256``, ``participant_id`` (text), ``group`` (integer >= 0), ``consent_given``
    (true/false, absent in files made before the consent screen), ``answers`` (a list of objects, each with
    ``trial_id`` (text), ``position`` (integer >= 0), ``answer`` (text), ``chosen`` (text), ``ranks``
    ({text: integer}), ``confidence`` (integer 1-5), ``rt_ms`` (finite, 0 .. one day), ``shown_at`` /
    ``answered_at`` (text), ``plays`` ({text: integer}), ``practice`` (true/false); all optional except
    ``trial_id``). Semantics against the manifest are checked by :func:`load_responses`."""
    def bad(field: str, want: str, got: Any) -> InputError:
        return InputError(f"{path}: {field}: expected {want}, got {_short(got)}")

    if not isinstance(obj, dict) or obj.get("format") != RESPONSE_FORMAT:
        raise InputError(f"{path}: not a p3d study answer file (format {RESPONSE_FORMAT})")
    for key in ("study_id", "manifest_sha256", "participant_id"):
        if not isinstance(obj.get(key), str):
            raise bad(key, "text", obj.get(key))
    group = obj.get("group")
    if group is not None and not (_is_int(group) and group >= 0):
        raise bad("group", "an integer >= 0", group)
    consent = obj.get("consent_given")
    if consent is not None and not isinstance(consent, bool):
        raise bad("consent_given", "true or false", consent)
    answers = obj.get("answers")
    if not isinstance(answers, list):
        raise bad("answers", "a list of answers", answers)
    for i, a in enumerate(answers):
        where = f"answers[{i}]"
        if not isinstance(a, dict):
            raise bad(where, "an object", a)
        if not isinstance(a.get("trial_id"), str):
            raise bad(f"{where}.trial_id", "text", a.get("trial_id"))
        for key in ("answer", "chosen", "shown_at", "answered_at"):
            if a.get(key) is not None and not isinstance(a[key], str):
                raise bad(f"{where}.{key}", "text", a[key])
        pos = a.get("position")
        if pos is not None and not (_is_int(pos) and pos >= 0):
            raise bad(f"{where}.position", "an integer >= 0", pos)
        conf = a.get("confidence")
        if conf is not None and not (_is_finite_number(conf) and conf == int(conf) and 1 <= conf <= 5):
            raise bad(f"{where}.confidence", "an integer 1-5", conf)
        rt = a.get("rt_ms")
        if rt is not None and not (_is_finite_number(rt) and 0 <= rt <= MAX_RT_MS):
            raise bad(f"{where}.rt_ms", "milliseconds, finite and 0 .. 86400000", rt)
        for key in ("ranks", "plays"):
            value = a.get(key)
            if value is not None and not (isinstance(value, dict) and all(
                    isinstance(k, str) and _is_int(v) for k, v in value.items())):
                raise bad(f"{where}.{key}", "an object of integers", value)
        practice = a.get("practice")
        if practice is not None and not isinstance(practice, bool):
            raise bad(f"{where}.practice", "true or false", practice)
        if practice and a["trial_id"] != PRACTICE_TRIAL_ID:
            raise bad(f"{where}.practice", f"true only on trial {PRACTICE_TRIAL_ID!r}", a["trial_id"])
    return obj


def load_responses(paths: Sequence[str | Path], manifest: dict[str, Any], manifest_sha256: str) -> Any:
    """One row per (participant, trial): ``participant, group, trial_id, kind, attention_check, chosen,
    ranks, confidence, rt_ms, position, file`` (validated; see the module docstring)."""
    import pandas as pd

    files = find_response_files(paths)
    if not files:
        raise InputError("no answer files given (no responses collected yet?)")
    people = {p["id"]: p for p in manifest["participants"]}
    trials = {t["id"]: t for t in manifest["trials"]}
    per_participant: dict[str, list[tuple[Path, list[dict[str, Any]]]]] = {}
    for path in files:
        obj = _read_file(path)
        if obj["study_id"] != manifest["study_id"]:
            raise InputError(f"{path}: answers of study {_short(obj['study_id'])}, not {manifest['study_id']!r}")
        if obj["manifest_sha256"] != manifest_sha256:
            raise InputError(f"{path}: collected with a different manifest.json; the study was rebuilt after "
                             "these answers")
        pid = obj["participant_id"]
        if pid not in people:
            raise InputError(f"{path}: participant_id: unknown participant {_short(pid)}")
        if obj.get("group") is not None and obj["group"] != people[pid]["group"]:
            raise InputError(f"{path}: group: participant {pid} is in group {people[pid]['group']}, "
                             f"the file says {obj['group']}")
        consent = obj.get("consent_given")
        rows = []
        seen: set[str] = set()
        for i, a in enumerate(obj["answers"]):
            tid = a["trial_id"]
            if tid == PRACTICE_TRIAL_ID:  # the practice screen is never scored
                continue
            if tid not in trials:
                raise InputError(f"{path}: answers[{i}].trial_id: unknown trial {_short(tid)}")
            if tid in seen:
                raise InputError(f"{path}: answers[{i}]: trial {tid} answered twice")
            seen.add(tid)
            rows.append(_resolve(path, a, trials[tid], people[pid]["group"])
                        | {"participant": pid, "consent_given": consent})
        if not rows:
            log.warning("%s: no answer to a trial of the study; skipped", path)
            continue
        per_participant.setdefault(pid, []).append((path, rows))
    out = []
    for pid, versions in per_participant.items():
        path, rows = _one_version(pid, versions)
        for r in rows:
            r["file"] = str(path)
            r["group"] = people[pid]["group"]
        out.extend(rows)
    if not out:
        raise InputError("the answer files hold no answers")
    return pd.DataFrame(out)


def _answers_key(rows: list[dict[str, Any]]) -> str:
    """What the analysis reads from one file's answers (trial, choice, scores, confidence), in trial order."""
    return json.dumps(sorted([r["trial_id"], r["chosen"], r["ranks"], r["confidence"]] for r in rows),
                      sort_keys=True)


def _one_version(pid: str, versions: list[tuple[Path, list[dict[str, Any]]]]) -> tuple[Path, list[dict[str, Any]]]:
    """The answers of a participant with one or more answer files: identical copies (e.g. the JSON and the
    CSV export of one session) count once (the first by path); files that differ are refused, naming two
    of them, whatever their order (which one is right cannot be told from the files)."""
    versions = sorted(versions, key=lambda v: str(v[0]))
    first_path, first_rows = versions[0]
    first_key = _answers_key(first_rows)
    for path, rows in versions[1:]:
        if _answers_key(rows) != first_key:
            raise InputError(f"participant {pid}: {first_path} and {path} hold different answers; keep the one "
                             "answer file to analyse")
    return first_path, first_rows


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _resolve(path: Path, a: dict[str, Any], trial: dict[str, Any], group: int) -> dict[str, Any]:
    """Check one answer against its trial and resolve the shown letters to stimulus ids."""
    shown = [trial["stimuli"][i] for i in trial["layouts"][group]]
    letters = "ABCDEFGH"[: len(shown)]
    tid = trial["id"]
    chosen, ranks = a.get("chosen"), a.get("ranks")
    answer = a.get("answer") or ""
    if trial["kind"] == "ab":
        letter = len(answer) == 1 and answer in letters
        if chosen is None and letter:
            chosen = shown[letters.index(answer)]
        if chosen not in trial["stimuli"]:
            raise InputError(f"{path}: trial {tid}: the answer names {_short(chosen)}, not one of its videos")
        if letter and shown[letters.index(answer)] != chosen:
            raise InputError(f"{path}: trial {tid}: answer {answer} and chosen video {chosen} disagree")
        ranks = None
    else:
        lettered = None
        if answer:
            try:
                slot = dict(zip(letters, shown))
                lettered = {slot[k]: int(v) for k, v in (x.split("=") for x in answer.split(";"))}
            except (ValueError, KeyError):
                raise InputError(f"{path}: trial {tid}: cannot read the ranking {_short(answer)}") from None
        if ranks is None:
            ranks = lettered
        elif lettered is not None and isinstance(ranks, dict) and \
                {k: _int_or_none(v) for k, v in ranks.items()} != lettered:
            raise InputError(f"{path}: trial {tid}: answer {_short(answer)} and ranks {_short(ranks)} disagree")
        if not isinstance(ranks, dict) or sorted(ranks) != sorted(trial["stimuli"]):
            raise InputError(f"{path}: trial {tid}: the ranking must score exactly the trial's videos")
        if sorted(int(v) for v in ranks.values()) != list(range(1, len(shown) + 1)):
            raise InputError(f"{path}: trial {tid}: scores must be 1..{len(shown)}, each once (got {ranks})")
        ranks = {k: int(v) for k, v in ranks.items()}
        chosen = None
    conf = a.get("confidence")
    conf = None if conf is None else int(conf)
    return {"trial_id": tid, "kind": trial["kind"], "attention_check": bool(trial["attention_check"]),
            "chosen": chosen, "ranks": ranks, "confidence": conf, "rt_ms": a.get("rt_ms"),
            "position": a.get("position")}


# ------------------------------------------------------------------------------------------------
# Attention checks
# ------------------------------------------------------------------------------------------------
def check_passed(row: Any, trial: dict[str, Any]) -> bool:
    """Whether an attention-check answer is right: the ground-truth video chosen (A/B) or scored highest."""
    if trial["kind"] == "ab":
        return row["chosen"] == trial["correct"]
    ranks = row["ranks"]
    return ranks[trial["correct"]] == max(ranks.values())


def participant_table(answers: Any, manifest: dict[str, Any], max_failed_checks: int = 0) -> Any:
    """One row per participant: answers, checks answered / failed, included, reason.

    An attention check the file does not answer counts as failed (deleting the check answers from a
    file must not pass it), and so does an unreadable one. A participant whose file does not record
    consent (``consent_given`` true, given on the survey page's consent screen) is excluded."""
    import pandas as pd

    trials = {t["id"]: t for t in manifest["trials"]}
    check_ids = [t["id"] for t in manifest["trials"] if t["attention_check"]]
    n_total = len(manifest["trials"])
    rows = []
    for pid, df in answers.groupby("participant", sort=True):
        checks = df[df["attention_check"]]
        wrong = sum(not check_passed(r, trials[r["trial_id"]]) for _, r in checks.iterrows())
        missing = len(set(check_ids) - set(checks["trial_id"]))
        failed = wrong + missing
        consent = df["consent_given"].iloc[0] if "consent_given" in df.columns else None
        consent = bool(consent) if isinstance(consent, (bool, np.bool_)) else False
        reasons = []
        if not consent:
            reasons.append("no consent recorded")
        if failed > max_failed_checks:
            detail = f"{wrong} wrong" + (f", {missing} missing" if missing else "")
            reasons.append(f"failed {failed} attention check(s) ({detail}; > {max_failed_checks} allowed)")
        rows.append({"participant": pid, "group": int(df["group"].iloc[0]), "answers": len(df),
                     "complete": len(df) == n_total, "checks_answered": len(checks), "checks_missing": missing,
                     "checks_failed": failed, "consent_given": consent, "included": not reasons,
                     "reason": "; ".join(reasons), "file": df["file"].iloc[0]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
def _pct(x: float) -> float:
    return 100.0 * x


def participant_share_ci(hits: np.ndarray, participants: Sequence[str], *, n_resamples: int = 2000,
                         seed: int = 0) -> tuple[float, float]:
    """95% interval of the pooled share of ``hits`` (one bool per answer) under a bootstrap of the participants
    (:func:`p3d.stats.cluster_bootstrap_ci`, percentile): answers of one participant are not independent.
    (NaN, NaN) with fewer than two participants (no spread between participants to resample)."""
    participants = list(participants)
    if len(set(participants)) < 2:
        return math.nan, math.nan
    lo, hi = stats.cluster_bootstrap_ci(np.asarray(hits, dtype=np.float64), participants,
                                        n_resamples=n_resamples, seed=seed)
    return (math.nan, math.nan) if lo is None or hi is None else (lo, hi)


def participant_rate_test(rates: np.ndarray, chance: float) -> float:
    """Two-sided one-sample t-test p of the mean of the participants' own ``rates`` (one per participant)
    against ``chance``; NaN with fewer than two participants or when every rate is the same (the test is
    undefined). The participant is the unit: pooling their answers as independent would not be valid."""
    from scipy.stats import ttest_1samp

    r = np.asarray(rates, dtype=np.float64)
    if r.size < 2 or np.all(r == r[0]):
        return math.nan
    return float(ttest_1samp(r, chance).pvalue)


def _ab_row(df: Any, comparison: str, model: str, a: str, b: str, second: np.ndarray, *,
            n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """One row of the A/B table (module docstring, item 2)."""
    n = len(df)
    k = int(second.sum())
    lo, hi = participant_share_ci(second, df["participant"], n_resamples=n_resamples, seed=seed)
    share = df.assign(b=second).groupby("participant")["b"].mean()
    maj_b, maj_a = int((share > 0.5).sum()), int((share < 0.5).sum())
    conf = df["confidence"].dropna()
    return {"comparison": comparison, "model": model, "condition_a": a, "condition_b": b,
            "participants": int(df["participant"].nunique()), "responses": n,
            "prefer_a_pct": _pct(1 - k / n), "prefer_b_pct": _pct(k / n),
            "b_ci95_low_pct": _pct(lo), "b_ci95_high_pct": _pct(hi),
            "participants_prefer_a": maj_a, "participants_prefer_b": maj_b,
            "p_participants": stats.binomial_test(maj_b, maj_a + maj_b) if maj_a + maj_b else math.nan,
            "mean_confidence": float(conf.mean()) if len(conf) else math.nan,
            "p_binomial_pooled": stats.binomial_test(k, n)}


def ab_preferences(answers: Any, manifest: dict[str, Any], *, n_resamples: int = 2000, seed: int = 0) -> Any:
    """A/B preference table (module docstring, item 2); empty without A/B main trials."""
    import pandas as pd

    trials = {t["id"]: t for t in manifest["trials"]}
    main = answers[(answers["kind"] == "ab") & ~answers["attention_check"]].copy()
    if main.empty:
        return pd.DataFrame()
    main["a"] = [trials[t]["conditions"][0] for t in main["trial_id"]]
    main["b"] = [trials[t]["conditions"][1] for t in main["trial_id"]]
    main["comparison"] = [trials[t]["comparison"] for t in main["trial_id"]]
    main["model"] = [trials[t]["model"] for t in main["trial_id"]]
    main["second"] = [c == trials[t]["stimuli"][1] for t, c in zip(main["trial_id"], main["chosen"])]
    rows = []
    for comparison, dc in main.groupby("comparison", sort=False):
        models = list(dict.fromkeys(dc["model"]))
        for model in models:
            dm = dc[dc["model"] == model]
            rows.append(_ab_row(dm, comparison, model or "(all)", dm["a"].iloc[0], dm["b"].iloc[0],
                                dm["second"].to_numpy(), n_resamples=n_resamples, seed=seed))
        if len(models) > 1:
            va, vb = comparison.split(" vs ", 1) if " vs " in comparison else ("A", "B")
            rows.append(_ab_row(dc, comparison, "Overall", va, vb, dc["second"].to_numpy(),
                                n_resamples=n_resamples, seed=seed))
    return pd.DataFrame(rows)


def _boot(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return stats.bootstrap_ci(v, n_resamples=n_resamples, seed=seed)


def _rank_long(answers: Any, manifest: dict[str, Any]) -> Any:
    """Main rank answers exploded to one row per (participant, trial, stimulus) with its score."""
    import pandas as pd

    stim = manifest["stimuli"]
    trials = {t["id"]: t for t in manifest["trials"]}
    rows = []
    main = answers[(answers["kind"] == "rank") & ~answers["attention_check"]]
    for r in main.itertuples(index=False):
        for sid, score in r.ranks.items():
            s = stim[sid]
            rows.append({"participant": r.participant, "trial_id": r.trial_id, "clip": trials[r.trial_id]["clip"],
                         "stimulus": sid, "condition": s["condition"], "lip_level": s["lip_level"],
                         "speech_level": s["speech_level"], "score": score, "k": len(r.ranks)})
    return pd.DataFrame(rows)


def intensity_tables(answers: Any, manifest: dict[str, Any], *, n_resamples: int = 2000,
                     seed: int = 0) -> dict[str, Any]:
    """Table 1 left: ``rank_intensity`` (long, with CIs), ``rank_intensity_grid`` (speech x lip means) and
    ``rank_intensity_matched`` (top choice matches the speech level vs chance)."""
    import pandas as pd

    long = _rank_long(answers, manifest)
    if long.empty:
        return {}
    variants = manifest["variants"]
    lip_scales, gains = variants["lip_scales"], variants["speech_gains_db"]
    rows = []
    for (s_level, l_level), d in long.groupby(["speech_level", "lip_level"], sort=True):
        per = d.groupby("participant")["score"].mean().to_numpy()
        lo, hi = _boot(per, n_resamples, seed)
        rows.append({"speech_level": int(s_level), "speech_gain_db": gains[int(s_level) - 1],
                     "lip_level": int(l_level), "lip_scale": lip_scales[int(l_level) - 1],
                     "mean_score": float(per.mean()), "ci95_low": lo, "ci95_high": hi,
                     "participants": len(per), "responses": len(d)})
    table = pd.DataFrame(rows)
    grid = table.pivot(index="speech_level", columns="lip_level", values="mean_score")
    grid.columns = [f"lip level {c} (x{lip_scales[c - 1]:g})" for c in grid.columns]
    grid = grid.reset_index().rename(columns={"speech_level": "speech level"})
    grid["speech level"] = [f"{s} ({gains[s - 1]:+g} dB)" for s in grid["speech level"]]
    out = {"rank_intensity": table, "rank_intensity_grid": grid}
    if len(lip_scales) == len(gains):
        top = long.loc[long.groupby(["participant", "trial_id"])["score"].idxmax()]
        out["rank_intensity_matched"] = pd.DataFrame([matched_row(
            (top["lip_level"] == top["speech_level"]).to_numpy(), top["participant"].to_numpy(), len(lip_scales),
            n_resamples=n_resamples, seed=seed)])
    return out


def matched_row(matched: np.ndarray, participants: Sequence[str], k_levels: int, *, n_resamples: int = 2000,
                seed: int = 0) -> dict[str, Any]:
    """How often the top-scored lip level matches the speech level (module docstring, item 3): ``matched`` one
    bool per answer, ``participants`` who gave it; chance 1 / ``k_levels``."""
    import pandas as pd

    hits = np.asarray(matched, dtype=bool)
    n, k = int(hits.size), int(hits.sum())
    rates = pd.Series(hits.astype(np.float64)).groupby(np.asarray(participants)).mean().to_numpy()
    lo, hi = participant_share_ci(hits, participants, n_resamples=n_resamples, seed=seed)
    chance = 1 / k_levels
    return {"trials": n, "participants": int(rates.size), "top_choice_matches_speech": k, "share_pct": _pct(k / n),
            "ci95_low_pct": _pct(lo), "ci95_high_pct": _pct(hi), "chance_pct": _pct(chance),
            "p_participants_vs_chance": participant_rate_test(rates, chance),
            "p_binomial_pooled": stats.binomial_test(k, n, chance)}


def condition_ranks(answers: Any, manifest: dict[str, Any], *, n_resamples: int = 2000, seed: int = 0) -> Any:
    """Mean score per condition of condition-ranking trials (bootstrap over participants), Friedman test."""
    import pandas as pd
    from scipy.stats import friedmanchisquare

    long = _rank_long(answers, manifest)
    if long.empty:
        return pd.DataFrame()
    per = long.groupby(["participant", "condition"])["score"].mean().unstack()
    order = [c["name"] for c in manifest["conditions"] if c["name"] in per.columns]
    complete = per[order].dropna()
    p_friedman = math.nan
    if len(order) >= 3 and len(complete) >= 2:
        p_friedman = float(friedmanchisquare(*(complete[c].to_numpy() for c in order)).pvalue)
    rows = []
    for c in order:
        v = per[c].dropna().to_numpy()
        lo, hi = _boot(v, n_resamples, seed)
        rows.append({"condition": c, "mean_score": float(v.mean()), "ci95_low": lo, "ci95_high": hi,
                     "participants": len(v), "k": int(long["k"].iloc[0]), "p_friedman": p_friedman})
    return pd.DataFrame(rows)


def read_metrics(metrics: dict[str, str | Path]) -> dict[str, Any]:
    """Condition -> ``p3d eval`` per_clip.csv (indexed by prediction file name)."""
    import pandas as pd

    out = {}
    for name, folder in metrics.items():
        path = Path(folder)
        path = path / "per_clip.csv" if path.is_dir() else path
        if not path.exists():
            raise InputError(f"--metrics {name}={folder}: no per_clip.csv (run `p3d eval` first)")
        try:
            df = pd.read_csv(path)
        except Exception as exc:  # pandas raises many types for malformed CSV (EmptyDataError, ParserError, ...)
            raise InputError(f"--metrics {name}={folder}: {path} is not a readable CSV "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        if "pred" not in df.columns:
            raise InputError(f"{path}: no 'pred' column (not a p3d eval per_clip.csv)")
        for metric in METRIC_DIRECTIONS:  # the Table S3 columns must be numbers (an empty cell: missing)
            if metric in df.columns:
                text = df[metric][df[metric].notna() & pd.to_numeric(df[metric], errors="coerce").isna()]
                if len(text):
                    raise InputError(f"{path}: column {metric}, row {int(text.index[0]) + 2}: expected a number, "
                                     f"got {_short(text.iloc[0])}")
        out[name] = df.set_index("pred")
    return out


def metric_correlation(answers: Any, manifest: dict[str, Any], metrics: dict[str, str | Path], *,
                       n_resamples: int = 2000, seed: int = 0) -> Any:
    """Table S3: Spearman's rho between human and metric rankings (module docstring, item 5)."""
    import pandas as pd

    tables = read_metrics(metrics)
    cond = {c["name"]: c for c in manifest["conditions"]}
    for name in tables:
        if name not in cond:
            raise InputError(f"--metrics {name}: not a condition of the study ({', '.join(cond)})")
        if cond[name]["transform"] != {"lip_scale": 1.0, "lag_ms": 0.0, "gain_db": 0.0, "audio_shift_ms": 0.0,
                                       "freeze": False}:
            log.warning("condition %s is transformed (%s); its metrics are those of the untransformed source file",
                        name, cond[name]["transform"])
    stim = manifest["stimuli"]

    def value(sid: str, metric: str) -> float:
        """The metric of a video's source file (NaN when the per-clip files lack it)."""
        table = tables.get(stim[sid]["condition"])
        name = Path(stim[sid]["source_file"]).name
        if table is None or metric not in table.columns or name not in table.index:
            return math.nan
        v = table.loc[name, metric]
        return float(v.iloc[0] if hasattr(v, "iloc") else v)

    main = answers[(answers["kind"] == "rank") & ~answers["attention_check"]]
    rows = []
    for metric, direction in METRIC_DIRECTIONS.items():
        rhos: dict[str, list[float]] = {}
        n_missing = 0
        for r in main.itertuples(index=False):
            sids = list(r.ranks)
            machine = np.array([direction * value(s, metric) for s in sids])
            if not np.all(np.isfinite(machine)):
                n_missing += 1
                continue
            rho = stats.spearman(np.array([r.ranks[s] for s in sids], float), machine)
            if math.isfinite(rho):  # NaN when the metric ties every video
                rhos.setdefault(r.participant, []).append(rho)
        if not rhos:
            if n_missing:
                log.warning("Table S3: metric %s missing for the videos of %d answers", metric, n_missing)
            continue
        per = np.array([np.mean(v) for v in rhos.values()])
        lo, hi = _boot(per, n_resamples, seed)
        rows.append({"metric": metric, "better": "higher" if direction > 0 else "lower",
                     "spearman_rho": float(per.mean()), "ci95_low": lo, "ci95_high": hi,
                     "participants": len(per), "answers": int(sum(len(v) for v in rhos.values())),
                     "answers_without_metric": n_missing})
    return pd.DataFrame(rows)


def agreement(answers: Any, manifest: dict[str, Any]) -> Any:
    """Fleiss' kappa (A/B) and Kendall's W (rankings) among included participants (module docstring, item 6)."""
    import pandas as pd

    trials = {t["id"]: t for t in manifest["trials"]}
    main = answers[~answers["attention_check"]]
    rows = []
    ab = main[main["kind"] == "ab"]
    if not ab.empty:
        n_people = ab["participant"].nunique()
        counts = []
        for tid, d in ab.groupby("trial_id"):
            if d["participant"].nunique() == n_people:
                second = int((d["chosen"] == trials[tid]["stimuli"][1]).sum())
                counts.append([len(d) - second, second])
        kappa = stats.fleiss_kappa(np.array(counts)) if counts and n_people >= 2 else math.nan
        rows.append({"statistic": "Fleiss kappa (A/B choice)", "value": kappa, "items": len(counts),
                     "raters": n_people, "min": math.nan, "max": math.nan})
    rk = main[main["kind"] == "rank"]
    if not rk.empty:
        ws = []
        for tid, d in rk.groupby("trial_id"):
            if len(d) >= 2:
                order = trials[tid]["stimuli"]
                ws.append(stats.kendall_w(np.array([[r[s] for s in order] for r in d["ranks"]], float)))
        ws_arr = np.array([w for w in ws if math.isfinite(w)])
        rows.append({"statistic": "Kendall W (rankings, mean over trials)",
                     "value": float(ws_arr.mean()) if ws_arr.size else math.nan, "items": int(ws_arr.size),
                     "raters": int(rk["participant"].nunique()),
                     "min": float(ws_arr.min()) if ws_arr.size else math.nan,
                     "max": float(ws_arr.max()) if ws_arr.size else math.nan})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def paper_study_tables() -> tuple[Any, Any]:
    """The paper's user-study numbers as notebook 09 shows them, never measured here (:mod:`p3d.paper`): the A/B
    preferences (Table 1 right, Tables S4, S5 and S6; one row per model: table with its participants, comparison,
    model, ``A %``, ``B %``) and Table S3's Spearman rho of each metric with the human rankings; both with a
    ``source`` column that says they are the paper's."""
    import pandas as pd

    from p3d import paper

    rows = [{"table": f"Table 1 right ({paper.TABLE1_RIGHT.participants} participants)",
             "comparison": "temporally vs expressively synchronized", "model": "-",
             "A %": paper.TABLE1_RIGHT.rows["-"][0], "B %": paper.TABLE1_RIGHT.rows["-"][1]}]
    for table, what, pref in (("Table S4", "lip sync", paper.TABLE_S4), ("Table S5", "overall quality", paper.TABLE_S5)):
        rows += [{"table": f"{table} ({what}, {pref.participants} participants)", "comparison": "w/o vs w/ perceptual loss",
                  "model": m, "A %": a, "B %": b} for m, (a, b) in pref.rows.items()]
    for comparison, pref in paper.TABLE_S6.items():
        rows += [{"table": f"Table S6 (config 2, lip sync, {pref.participants} participants)", "comparison": comparison,
                  "model": m, "A %": a, "B %": b} for m, (a, b) in pref.rows.items()]
    preferences = pd.DataFrame(rows).assign(source="paper (not measured here)")
    s3 = pd.DataFrame([{"metric": m.upper(), "Spearman rho": rho} for m, rho in paper.TABLE_S3.rho.items()]
                      ).assign(source=f"paper Table S3, {paper.TABLE_S3.participants} participants (not measured here)")
    return preferences, s3


def paper_typos(preferences: Any, tolerance: float = 0.15) -> list[str]:
    """The rows of the paper's A/B tables (``preferences``, :func:`paper_study_tables`' first table) whose two
    percentages do not sum to 100 within the rounding of their one decimal (``tolerance``, percentage points), one
    line each naming the model, the comparison's letter (Table S6's ``(a)``-``(c)``) and the table: the paper's
    misprints, which :mod:`p3d.paper` copies as printed (CodeTalker (c) in Table S6: 19.0 / 91.0)."""
    lines = []
    columns = ["table", "comparison", "model", "A %", "B %"]
    for table, comparison, model, a, b in preferences[columns].itertuples(index=False, name=None):
        if abs(a + b - 100.0) <= tolerance:
            continue
        tag = comparison.split()[0] if comparison.startswith("(") else ""
        lines.append(f"{model}{' ' + tag if tag else ''} in {' '.join(table.split()[:2])} reads {a:.1f}% / {b:.1f}% "
                     f"in the paper (sums to {a + b:.0f}%: a typo there).")
    return lines


def default_response_paths(study: str | Path) -> list[Path]:
    """The answer files in ``study/responses`` (empty list if none yet)."""
    folder = Path(study) / "responses"
    return find_response_files([folder]) if folder.is_dir() else []


def analyze(study: str | Path, responses: Sequence[str | Path] | None = None, *,
            metrics: dict[str, str | Path] | None = None, max_failed_checks: int = 0,
            n_resamples: int = 2000, seed: int = 0) -> Analysis:
    """Analyse a study's answers (module docstring). ``responses``: files or folders (default:
    ``study/responses``). InputError if there are none."""
    from p3d.study.make import load_manifest

    if max_failed_checks < 0:
        raise InputError(f"--max-failed-checks must be >= 0, got {max_failed_checks}")
    if n_resamples < 1:
        raise InputError(f"--bootstrap must be >= 1, got {n_resamples}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed {seed!r}: expected an integer >= 0")  # numpy's generators refuse others
    manifest, sha = load_manifest(study)
    if metrics and (manifest["design"], manifest["rank_over"]) != ("rank", "conditions"):
        kind = "an A/B study" if manifest["design"] == "ab" else f"a ranking over {manifest['rank_over']}"
        raise InputError(f"--metrics: Table S3 correlates metrics with human rankings of conditions (a study made "
                         f"with --design rank --rank-over conditions); this study is {kind}")
    if metrics:
        read_metrics(metrics)  # a missing or unreadable per_clip.csv fails before the answers are read
    paths = list(responses) if responses is not None else default_response_paths(study)
    answers = load_responses(paths, manifest, sha)
    people = participant_table(answers, manifest, max_failed_checks)
    included = set(people.loc[people["included"], "participant"])
    if not included:
        raise InputError(f"no participant to analyse: all {len(people)} excluded "
                         f"({_exclusion_counts(people)}); no tables written")
    kept = answers[answers["participant"].isin(included)]
    tables: dict[str, Any] = {"participants": people}
    if not kept.empty:
        if manifest["design"] == "ab":
            tables["ab_preferences"] = ab_preferences(kept, manifest, n_resamples=n_resamples, seed=seed)
        elif manifest["rank_over"] == "intensity":
            tables.update(intensity_tables(kept, manifest, n_resamples=n_resamples, seed=seed))
        else:
            tables["rank_conditions"] = condition_ranks(kept, manifest, n_resamples=n_resamples, seed=seed)
            if metrics:
                tables["metric_correlation"] = metric_correlation(kept, manifest, metrics,
                                                                  n_resamples=n_resamples, seed=seed)
        tables["agreement"] = agreement(kept, manifest)
    summary = {
        "study_id": manifest["study_id"], "design": manifest["design"], "rank_over": manifest["rank_over"],
        "participants": int(len(people)), "included": int(len(included)),
        "excluded": people.loc[~people["included"], ["participant", "reason"]].to_dict("records"),
        "answers": int(len(answers)), "answers_analysed": int(len(kept)),
        "max_failed_checks": max_failed_checks, "bootstrap_resamples": n_resamples, "seed": seed,
        "tables": {k: _records(v) for k, v in tables.items() if k != "participants"},
    }
    return Analysis(manifest, answers, people, tables, summary)


def _exclusion_counts(people: Any) -> str:
    """Why participants were excluded, counted: ``"2 without recorded consent, 3 failed or skipped
    attention checks"`` (one participant may count in both)."""
    excluded = people[~people["included"]]
    no_consent = int((~excluded["consent_given"]).sum())
    failed = int(excluded["reason"].str.contains("attention check").sum())
    parts = [f"{no_consent} without recorded consent"] if no_consent else []
    if failed:
        parts.append(f"{failed} failed or skipped attention checks")
    return ", ".join(parts)


def _records(df: Any) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]


TITLES = {
    "participants": "Participants and attention-check exclusions",
    "ab_preferences": "A/B preferences (format of paper Table 1 right, S4-S6), with 95% CIs from a bootstrap over "
                      "participants and a sign test over participants (p_participants; p3d's, the paper reports "
                      "none; p_binomial_pooled treats answers as independent: descriptive only)",
    "rank_intensity": "Speech x lip intensity preference scores (paper Table 1 left), 95% bootstrap CIs over "
                      "participants",
    "rank_intensity_grid": "Mean preference score (1-{k}, {k} = most preferred): speech level (rows) x lip level "
                           "(columns) (paper Table 1 left)",
    "rank_intensity_matched": "How often the top-ranked lip level matches the speech level (chance 1/{k}), 95% CI "
                              "from a bootstrap over participants, t-test of the participants' match rates "
                              "(p_binomial_pooled treats answers as independent: descriptive only)",
    "rank_conditions": "Mean preference score per condition (higher = preferred), Friedman test",
    "metric_correlation": "Spearman rho of metric rankings with human rankings (paper Table S3), 95% bootstrap "
                          "CIs over participants",
    "agreement": "Inter-rater agreement",
}


def table_title(name: str, manifest: dict[str, Any]) -> str:
    """The title of table ``name`` (:data:`TITLES`), with K (videos per ranking trial) filled in."""
    scales = (manifest.get("variants") or {}).get("lip_scales")
    k = str(len(scales)) if scales else "K"
    return TITLES.get(name, name).replace("{k}", k)


def write_analysis(analysis: Analysis, out: str | Path) -> list[Path]:
    """Write every table (``write_table``: .csv and .md) and ``summary.json`` into ``out``, as one unit.

    The old ``summary.json`` is removed first and the new one written last, so that a ``summary.json`` always
    describes the tables beside it; the tables of an earlier analysis that this one does not have (one of
    :data:`TITLES`, e.g. ``metric_correlation`` of a run with ``--metrics`` analysed again without) are deleted.
    Other files in ``out`` are left alone."""
    from p3d.atomic import check_out_dir, write_json
    from p3d.tables import write_table

    out = Path(out)
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # withdraw the earlier analysis' record first
    kept = {name for name, df in analysis.tables.items() if df is not None and len(df)}
    for stale in sorted(set(TITLES) - kept):
        for suffix in (".csv", ".md"):
            (out / f"{stale}{suffix}").unlink(missing_ok=True)
    written = []
    for name, df in analysis.tables.items():
        if name not in kept:
            continue
        written.extend(write_table(df, out / name, title=table_title(name, analysis.manifest),
                                   note=f"study {analysis.manifest['study_id']}; "
                                        f"{analysis.summary['included']} of {analysis.summary['participants']} "
                                        "participants included"))
    write_json(out / "summary.json", analysis.summary)
    written.append(out / "summary.json")
    return written


def format_analysis(analysis: Analysis) -> str:
    """A short text report (what the CLI prints)."""
    s = analysis.summary
    lines = [f"study {s['study_id']} ({s['design']}{'/' + s['rank_over'] if s['rank_over'] else ''}): "
             f"{s['included']} of {s['participants']} participants included, {s['answers_analysed']} answers"]
    for e in s["excluded"]:
        lines.append(f"  excluded {e['participant']}: {e['reason']}")
    ab = analysis.tables.get("ab_preferences")
    if ab is not None and len(ab):
        for r in ab.itertuples(index=False):
            ci = (f"95% CI {r.b_ci95_low_pct:.1f}-{r.b_ci95_high_pct:.1f} over participants"
                  if math.isfinite(r.b_ci95_low_pct) else "no CI with one participant")
            lines.append(f"  {r.comparison} [{r.model}]: {r.condition_b} preferred in {r.prefer_b_pct:.1f}% of "
                         f"{r.responses} answers ({ci}); participants preferring {r.condition_b} / "
                         f"{r.condition_a}: {r.participants_prefer_b} / {r.participants_prefer_a} of "
                         f"{r.participants}, sign test p={r.p_participants:.3g}")
    grid = analysis.tables.get("rank_intensity_grid")
    if grid is not None and len(grid):
        lines.append(grid.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for name in ("rank_intensity_matched", "rank_conditions", "metric_correlation", "agreement"):
        df = analysis.tables.get(name)
        if df is not None and len(df):
            lines.append(f"{name}:\n" + df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    return "\n".join(lines)


def answer_paths(paths: Sequence[Path]) -> list[Path]:
    """``p3d study analyze``'s arguments as answer files and folders: a study folder itself (it holds
    manifest.json) stands for its ``responses/``; a path that does not exist is refused by name."""
    out = []
    for p in map(Path, paths):
        if (p / "manifest.json").is_file():
            p = p / "responses"
            if not p.is_dir():
                raise InputError(f"{p}: no answer files yet (put the participants' files there)")
        elif not p.exists() and not any(c in str(p) for c in "*?["):
            raise InputError(f"{p}: answer file not found")
        out.append(p)
    return out


def study_folder_of(paths: Sequence[Path]) -> Path:
    """The study folder of answer files that all lie in ``STUDY_DIR/responses/`` (next to manifest.json)."""
    parents = {(p if p.is_dir() else p.parent).resolve() for p in paths}
    if len(parents) == 1:
        parent = parents.pop()
        if parent.name == "responses" and (parent.parent / "manifest.json").exists():
            return parent.parent
    raise InputError("cannot tell the study folder from the answer files' location: pass --study STUDY_DIR")
