"""p3d.claims: verdict rules on fixture tables, the report, and the inventory of the paper's items."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p3d import claims, paper, stats
from p3d.claims import CLAIMS, INVENTORY, VERDICTS, Assessment, assess, claims_markdown, inventory
from p3d.errors import InputError


def _effects(path: Path, rows: list[tuple[str, str, float, float, float, str]]) -> None:
    pd.DataFrame([{"comparison": c, "metric": m, "without": 1.0, "with": 1.0 + ch, "change": ch,
                   "change CI low": lo, "change CI high": hi, "verdict": v} for c, m, ch, lo, hi, v in rows]
                 ).to_csv(path, index=False)


def test_loss_claims_verdicts_follow_the_cis_in_the_papers_direction(tmp_path):
    _effects(tmp_path / "table2_loss_effects.csv", [
        ("FaceFormer", "PLRS", 0.04, 0.03, 0.05, "better"),
        ("CodeTalker", "PLRS", 0.04, 0.03, 0.05, "better"),
        ("SelfTalk", "PLRS", 0.03, 0.02, 0.04, "better"),
        ("FaceFormer", "MTM (ms)", -5, -9, -1, "better"),
        ("CodeTalker", "MTM (ms)", 1, -3, 5, "no clear change"),
        ("SelfTalk", "MTM (ms)", 0, -3, 3, "no clear change"),
        ("FaceFormer", "LVE (1e-5 m²)", 1, 0.5, 2, "worse"),
        ("CodeTalker", "LVE (1e-5 m²)", -1, -2, -0.5, "better"),
        ("SelfTalk", "LVE (1e-5 m²)", 0, -1, 1, "no clear change"),
    ])
    df = assess(tmp_path).set_index("key")
    assert df.loc["loss-plrs", "verdict"] == "reproduced"             # every CI above 0 (PLRS: higher is better)
    assert df.loc["loss-mtm", "verdict"] == "inconclusive"            # one reproduced, two include 0
    assert df.loc["loss-lve", "verdict"] == "contradicted"            # FaceFormer's LVE clearly rises
    assert df.loc["loss-lve", "decided_by"].startswith("FaceFormer LVE")
    assert df.loc["loss-slcc", "verdict"] == "not measured"           # no SLCC rows
    assert "[+0.03, +0.05]" in df.loc["loss-plrs", "p3d"]
    assert df.loc["mead-plrs", "verdict"] == "not measured"           # table4_effects missing
    assert "table4_effects" in df.loc["mead-plrs", "p3d"]


def test_inconclusive_cases_state_the_mde_beside_the_papers_effect(tmp_path):
    _effects(tmp_path / "table2_loss_effects.csv", [(m, "MTM (ms)", 1, -3, 5, "no clear change")
                                                    for m in claims.MODELS])
    text = assess(tmp_path).set_index("key").loc["loss-mtm", "p3d"]
    mde = stats.minimum_detectable_effect(-3, 5)
    paper_ff = paper.TABLE2[("faceformer", "ours")].mtm_ms - paper.TABLE2[("faceformer", "none")].mtm_ms
    assert f"MDE {mde:.3g} beside the paper's change {paper_ff:+.3g}" in text
    assert text.count("inconclusive") == 3


def test_case_verdict_rules():
    assert claims.Case("x", 1, 0.5, 1.5, want=1).verdict == "reproduced"
    assert claims.Case("x", 1, 0.5, 1.5, want=-1).verdict == "contradicted"
    assert claims.Case("x", 1, -0.5, 1.5, want=1).verdict == "inconclusive"
    assert claims.Case("x", -1, -1.5, -0.5, want=-1).verdict == "reproduced"
    assert claims.Case("x").verdict == "inconclusive"                  # no interval
    assert claims.Case("x", passed=True).verdict == "reproduced"
    assert claims.Case("x", passed=False).verdict == "inconclusive"


def test_a_ci_with_an_end_at_zero_does_not_exclude_zero():
    """p3d.claims: reproduced / contradicted need the 95 % CI to exclude 0; a closed interval ending at 0 contains it,
    so the case is inconclusive in either direction."""
    for want in (1, -1):
        assert claims.Case("x", want * 0.5, *sorted((0.0, want * 1.0)), want=want).verdict == "inconclusive"
        assert claims.Case("x", -want * 0.5, *sorted((0.0, -want * 1.0)), want=want).verdict == "inconclusive"


def test_aggregation_rule():
    agg = claims.aggregate
    assert agg(["reproduced"] * 3) == "reproduced"
    assert agg(["reproduced"] * 3, complete=False) == "inconclusive"  # a covered case was not measured
    assert agg(["reproduced", "inconclusive", "reproduced"]) == "inconclusive"
    assert agg(["reproduced", "contradicted", "reproduced"]) == "contradicted"
    assert agg(["contradicted"], complete=False) == "contradicted"
    assert agg([]) == "not measured"
    assert claims.combine_referees({"a": "reproduced", "b": "reproduced"}) == "reproduced"
    assert claims.combine_referees({"a": "reproduced", "b": "contradicted"}) == "inconclusive"
    assert claims.combine_referees({}) == "not measured"


def test_mead_plrs_wants_worse(tmp_path):
    _effects(tmp_path / "table4_effects.csv", [(f"{m}: + synth-mead", "PLRS", -0.1, -0.2, -0.05, "worse")
                                               for m in claims.MODELS])
    df = assess(tmp_path).set_index("key")
    assert df.loc["mead-plrs", "verdict"] == "reproduced"
    assert df.loc["mead-slcc", "verdict"] == "not measured"


def test_a_claim_over_three_models_measured_for_one_is_at_best_inconclusive(tmp_path):
    _effects(tmp_path / "table3_critic_effects.csv", [
        ("FaceFormer: ours vs 3D SyncNet", "MTM (ms)", -5, -9, -1, "better"),
        ("FaceFormer: ours vs 3D SyncNet", "PLRS", 0.04, 0.03, 0.05, "better"),
        ("FaceFormer: ours vs 3D SyncNet", "SLCC Δ", -0.1, -0.2, -0.05, "better")])
    row = assess(tmp_path).set_index("key").loc["vs-syncnet"]
    assert row["verdict"] == "inconclusive"
    assert "Not measured: CodeTalker MTM" in row["p3d"] and "cases not measured" in row["decided_by"]


def _validity(path: Path, rows: list[tuple[str, str, float, float]], *, complete: bool = True) -> None:
    """plrs_validity.csv with ``rows`` (variant, degradation, ci_low, ci_high); with ``complete``, every other
    degradation of the battery passed by each variant (so that the rows given decide)."""
    from p3d.analysis.referee_validity import BATTERY_DEGRADATIONS

    given = {(v, d) for v, d, _, _ in rows}
    fill = [(v, d, -0.2, -0.1) for v in dict.fromkeys(v for v, _, _, _ in rows) for d in BATTERY_DEGRADATIONS
            if (v, d) not in given] if complete else []
    pd.DataFrame([{"variant": v, "degradation": d, "mean_minus_gt": (lo + hi) / 2, "ci_low": lo, "ci_high": hi,
                   "n_clips": 24} for v, d, lo, hi in [*rows, *fill]]).to_csv(path / "plrs_validity.csv", index=False)


def _plrs_effects(path: Path, per_metric: dict[str, tuple[float, float, float]]) -> None:
    _effects(path / "table2_loss_effects.csv", [(m, metric, ch, lo, hi, "")
                                                for metric, (ch, lo, hi) in per_metric.items() for m in claims.MODELS])


def test_plrs_claims_fall_back_to_the_official_plrs_without_the_validity_table(tmp_path):
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS [lipreader]": (-0.04, -0.05, -0.03)})
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "reproduced"
    assert "plrs_validity.csv absent" in row["p3d"] and "official" in row["decided_by"]
    assert "lipreader" not in row["p3d"]


def test_plrs_claims_are_judged_on_the_valid_referees_with_the_official_beside(tmp_path):
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS [lipreader]": (-0.04, -0.05, -0.03)})
    _validity(tmp_path, [("official", "shuffled", -0.01, 0.02),        # official fails: one CI reaches above 0
                         ("official", "frozen", -0.1, -0.05),
                         ("lipreader", "shuffled", -0.2, -0.1), ("lipreader", "frozen", -0.3, -0.2)])
    assert claims.valid_referees(tmp_path) == (["lipreader"], ["official"])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "contradicted"                            # the valid referee sees PLRS fall
    assert "lipreader" in row["decided_by"] and "official" not in row["decided_by"]
    assert "Official PLRS (shown, not deciding)" in row["p3d"] and "failing: official" in row["p3d"]
    assert "plrs_validity" in row["sources"]


def test_valid_referees_that_disagree_make_the_claim_inconclusive(tmp_path):
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS [lipreader]": (-0.04, -0.05, -0.03)})
    _validity(tmp_path, [("official", "shuffled", -0.2, -0.1), ("lipreader", "shuffled", -0.2, -0.1)])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive" and "disagree" in row["decided_by"]


def test_lve_and_mtm_in_the_battery_are_not_lip_readability_referees(tmp_path):
    """The battery scores LVE and MTM beside the PLRS referees; LVE passing it (it needs the GT) must not make
    it the referee of the lip-readability claims."""
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS-c": (0.01, -0.01, 0.03)})
    _validity(tmp_path, [("official", "amp_0.75", -0.01, 0.02), ("calibrated", "amp_1.25", -0.02, -0.01),
                         ("lve", "amp_0.75", -3.0, -2.0), ("mtm", "shift_2", -60.0, -50.0)])
    assert claims.valid_referees(tmp_path) == (["calibrated"], ["official"])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive"                           # PLRS-c's CI includes 0
    assert "calibrated" in row["decided_by"] and "lve" not in row["p3d"]
    assert "PLRS-c" in row["p3d"] and "Official PLRS (shown, not deciding)" in row["p3d"]


def test_plrs_e_decides_when_it_alone_passes_the_battery(tmp_path):
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS-c": (0.01, -0.01, 0.03),
                             "PLRS-e": (0.02, 0.01, 0.03)})
    _validity(tmp_path, [("official", "amp_0.75", -0.01, 0.02), ("calibrated", "amp_1.25", -0.02, 0.01),
                         ("enrolled", "amp_1.25", -0.03, -0.01)])
    assert claims.plrs_metric("enrolled") == "PLRS-e"
    assert claims.valid_referees(tmp_path) == (["enrolled"], ["official", "calibrated"])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "reproduced" and "enrolled" in row["decided_by"]
    assert "PLRS-e" in row["p3d"] and "PLRS-c (shown, not deciding)" in row["p3d"]


def test_no_valid_referee_leaves_lip_readability_inconclusive(tmp_path):
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS-c": (0.0, -0.01, 0.01)})
    _validity(tmp_path, [("official", "shuffled", -0.01, 0.02)])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive" and row["decided_by"] == "no valid PLRS referee"
    assert "Official PLRS (shown, not deciding)" in row["p3d"] and "PLRS-c (shown, not deciding)" in row["p3d"]


def test_validity_table_without_its_columns_is_a_clear_error(tmp_path):
    pd.DataFrame({"variant": ["official"]}).to_csv(tmp_path / "plrs_validity.csv", index=False)
    with pytest.raises(InputError, match="plrs_validity.csv lacks the columns"):
        claims.valid_referees(tmp_path)


def test_property_claim_passes_and_says_when_the_raw_control_shows_it_too(tmp_path):
    rows = [("ours", "phoneme clustering", True, "ours 47%"), ("raw inputs (control)", "phoneme clustering", True, "raw 55%"),
            ("ours", "intensity direction", False, "unordered"), ("raw inputs (control)", "intensity direction", False, "not")]
    pd.DataFrame(rows, columns=["critic", "property", "shows", "evidence"]).to_csv(
        tmp_path / "representation_properties.csv", index=False)
    df = assess(tmp_path).set_index("key")
    assert df.loc["prop-clusters", "verdict"] == "reproduced"
    assert "Not distinctive" in df.loc["prop-clusters", "p3d"] and "raw 55%" in df.loc["prop-clusters", "p3d"]
    assert df.loc["prop-intensity", "verdict"] == "inconclusive"


def test_mtm_validity_rule(tmp_path):
    pd.DataFrame([{"slope": 0.93, "ci_low": 0.89, "ci_high": 0.97, "intercept_ms": 6.0, "r": 0.99, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"] == "reproduced"
    pd.DataFrame([{"slope": 0.8, "ci_low": 0.6, "ci_high": 1.0, "intercept_ms": 6.0, "r": 0.5, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"] == "inconclusive"  # straddles 0.8
    # "accurately captures the degree": a slope clearly positive but far from 1 does not (was reproduced: > 0)
    pd.DataFrame([{"slope": 0.1, "ci_low": 0.05, "ci_high": 0.15, "intercept_ms": 6.0, "r": 0.5, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["mtm-valid"]
    assert row["verdict"] == "contradicted" and "lies outside [0.8, 1.2]" in row["p3d"]
    pd.DataFrame([{"slope": -0.3, "ci_low": -0.5, "ci_high": -0.1, "intercept_ms": 6.0, "r": -0.5, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"] == "contradicted"


def test_baseline_band_rule(tmp_path):
    def write(cis):
        pd.DataFrame([{"run": m, "model": m, "critic": "none", "train": "synth-voca", "test": "synth-voca",
                       "split": "test", "loss_weight": "", "n_clips": 8, "metric": "mtm_ms", "level": "",
                       "value": (lo + hi) / 2, "ci_low": lo, "ci_high": hi} for m, (lo, hi) in zip(paper.MODELS, cis)]
                     ).to_csv(tmp_path / "config1_results.csv", index=False)
        return assess(tmp_path).set_index("key").loc["baselines-sync", "verdict"]

    assert write([(51, 59), (52, 58), (50, 60)]) == "reproduced"
    # tighter sync than the paper's band reaches "reasonable sync" too (was contradicted, below 50 ms)
    assert write([(27, 35), (34, 44), (24, 30)]) == "reproduced"
    assert write([(51, 59), (55, 65), (50, 60)]) == "inconclusive"   # straddles the band's top
    assert write([(51, 59), (61, 70), (50, 60)]) == "contradicted"


def test_every_claim_gets_a_known_verdict_and_human_claims_are_not_testable(tmp_path):
    df = assess(tmp_path)
    assert len(df) == len(CLAIMS) and set(df["verdict"]) <= set(VERDICTS)
    people = df[df["key"].str.startswith("people-")]
    assert len(people) == 3 and (people["verdict"] == "not testable here").all()
    assert df["paper"].str.len().gt(0).all()
    with pytest.raises(ValueError):
        Assessment("maybe", "x")


def test_report_lists_every_claim_with_both_evidences(tmp_path):
    df = assess(tmp_path)
    md = claims_markdown(df, "cpu")
    assert md.count("- **Verdict:") == len(CLAIMS)
    assert md.count("- Paper:") == len(CLAIMS) and md.count("- p3d:") == len(CLAIMS)
    assert md.count("- Decided by:") == len(CLAIMS)
    assert "| 1 |" in md and f"| {len(CLAIMS)} |" in md
    assert "minimum detectable effect" in md and "decided by" in md


def test_report_shows_the_deciding_metric_and_the_mde(tmp_path):
    _effects(tmp_path / "table2_loss_effects.csv", [(m, "LVE (1e-5 m²)", 0, -1, 1, "no clear change")
                                                    for m in claims.MODELS])
    md = claims_markdown(assess(tmp_path), "cpu")
    section = md.split("The perceptual loss also lowers LVE")[-1].split("## ")[0]
    assert "- **Verdict: inconclusive**" in section
    assert "- Decided by: FaceFormer LVE (1e-5 m²), CodeTalker LVE (1e-5 m²), SelfTalk LVE (1e-5 m²)" in section
    assert f"MDE {stats.minimum_detectable_effect(-1, 1):.3g} beside the paper's change" in section


def test_inventory_covers_the_paper_and_checks_files(tmp_path):
    items = set(INVENTORY)
    assert {f"Table {i}" for i in (1, 2, 3, 4)} <= items
    assert {f"Table S{i}" for i in range(1, 9)} <= items
    assert {"Fig. 1b", "Fig. 2", "Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6"} <= items
    assert {f"Fig. S{i}" for i in range(1, 9)} <= items
    (tmp_path / "tables").mkdir()
    (tmp_path / "figs").mkdir()
    (tmp_path / "tables" / "table_s1.md").write_text("x")
    (tmp_path / "figs" / "fig2_pipeline.png").write_text("x")
    df = inventory(tmp_path, tmp_path / "figs").set_index("item")
    assert df.loc["Table S1", "status"] == "made"
    assert df.loc["Fig. 2", "status"] == "made"
    assert df.loc["Table 2", "status"].startswith("missing")
    assert df.loc["Table 1", "status"] == "cannot be made here" and df.loc["Table 1", "reason"]
    cannot = df[df["status"] == "cannot be made here"]
    assert cannot["reason"].str.len().gt(0).all()


def test_write_inventory_writes_the_page(tmp_path):
    """Notebook 10's results/inventory.md: the title, the preset, the inventory table; the checked rows returned."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "table_s1.md").write_text("x")
    df = claims.write_inventory(tmp_path, tmp_path / "figs", "smoke")
    pd.testing.assert_frame_equal(df, inventory(tmp_path, tmp_path / "figs"))
    text = (tmp_path / "inventory.md").read_text(encoding="utf-8")
    assert text == ("# The paper's tables and figures in p3d\n\nChecked by `p3d.claims.inventory` after `make figures` "
                    "at preset `smoke`.\n\n" + claims.inventory_markdown(df) + "\n")
    assert "| Table S1 | tables/table_s1.md | made | – |" in text


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claims.README_START}\nold\n{claims.README_END}\noutro\n")
    assert claims.update_readme(readme, "| new |")
    assert readme.read_text() == f"intro\n{claims.README_START}\n| new |\n{claims.README_END}\noutro\n"
    plain = tmp_path / "other.md"
    plain.write_text("no markers")
    assert not claims.update_readme(plain, "x") and plain.read_text() == "no markers"
    df = assess(tmp_path)
    assert claims.summary_markdown(df).count("\n") == len(CLAIMS) + 1
    assert "| verdict at full |" in claims.summary_markdown(df)
    assert "| verdict at paper |" in claims.summary_markdown(df, "paper")


def test_update_readme_named_blocks(tmp_path):
    start, end = claims.readme_markers("timing")
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{claims.README_START}\nc\n{claims.README_END}\n{start}\nt\n{end}\n")
    assert claims.update_readme(readme, "T2", name="timing")
    text = readme.read_text()
    assert f"{start}\nT2\n{end}" in text and f"{claims.README_START}\nc\n{claims.README_END}" in text


def test_plrs_people_reads_the_paired_difference(tmp_path):
    pd.DataFrame([("plrs", "pooled", 0.51, 0.47, 0.55, 100, 10), ("lve", "pooled", 0.44, 0.39, 0.49, 100, 10)],
                 columns=["metric", "scope", "rho", "ci_low", "ci_high", "n_sequences", "n_clips"]
                 ).to_csv(tmp_path / "metric_validation_spearman.csv", index=False)
    df = assess(tmp_path).set_index("key")
    assert df.loc["plrs-people", "verdict"] == "not testable here"
    assert "does not separate" in df.loc["plrs-people", "p3d"]          # overlapping CIs, no paired test
    pd.DataFrame({"finding": ["PLRS minus LVE, rho with the oracle (pooled, same rows, paired clip bootstrap): "
                              "+0.07 [+0.01, +0.13]."]}).to_csv(tmp_path / "metric_validation_findings.csv", index=False)
    text = assess(tmp_path).set_index("key").loc["plrs-people", "p3d"]
    assert "pooled +0.07 [+0.01, +0.13]" in text and "agrees with the claim" in text


def test_fdd_change_ci_combines_the_two_conditions_cis(tmp_path):
    def row(model, critic, value, half):
        return {"run": f"{model}_{critic}", "model": model, "critic": critic, "train": "synth-voca",
                "test": "synth-voca", "split": "test", "loss_weight": "", "n_clips": 8, "metric": "fdd", "level": "",
                "value": value, "ci_low": value - half, "ci_high": value + half}

    rows = [row(m, "none", 3e-7, 0.3e-7) for m in paper.MODELS]
    rows += [row("faceformer", "ours", 1e-7, 0.3e-7), row("codetalker", "ours", 3.1e-7, 0.3e-7),
             row("selftalk", "ours", 2.5e-7, 0.3e-7)]
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "inconclusive"              # FaceFormer better, the others within sqrt(2) * 0.3
    half = (0.3 ** 2 * 2) ** 0.5
    assert f"change -2 [{-2 - half:+.3g}, {-2 + half:+.3g}]" in r["p3d"] and "reproduced" in r["p3d"]
    assert claims.judges.ONE_SEED_NOTE not in r["p3d"]                 # no n_seeds column: unknown, no note
    # arms trained at one seed: the FDD case says its CI spans test clips only, as the effect tables' cases do
    # (it said nothing); five seeds say nothing of it
    pd.DataFrame(rows).assign(n_seeds=[1, 5, 5, 1, 5, 5]).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "inconclusive" and r["p3d"].count(claims.judges.ONE_SEED_NOTE) == 1
    assert f"paper's change -0.464; {claims.judges.ONE_SEED_NOTE}), reproduced" in r["p3d"]


def test_two_different_rows_for_one_case_are_refused_not_read_in_file_order(tmp_path, capsys):
    """A table holding two different rows for one case (e.g. concatenated from two runs) was judged on whichever row
    came first, so the verdict followed the file's order; it is refused with one line (exit 2). Rows repeated
    exactly are one row."""
    from p3d.cli import main

    rows = [(m, "LVE (1e-5 m²)", -1, -2, -0.5, "better") for m in claims.MODELS]
    _effects(tmp_path / "table2_loss_effects.csv", rows + rows[:1])                 # an exact repeat: one row
    assert assess(tmp_path).set_index("key").loc["loss-lve", "verdict"] == "reproduced"
    _effects(tmp_path / "table2_loss_effects.csv", [("FaceFormer", "LVE (1e-5 m²)", 1, 0.5, 2, "worse")] + rows)
    with pytest.raises(InputError, match=r"table2_loss_effects.csv, FaceFormer LVE: 2 different rows"):
        assess(tmp_path)
    assert main(["claims", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 different rows" in err[0]
    (tmp_path / "table2_loss_effects.csv").unlink()

    def row(model, critic, value, metric="fdd"):
        return {"run": f"{model}_{critic}", "seed": "all", "model": model, "critic": critic, "train": "synth-voca",
                "test": "synth-voca", "split": "test", "metric": metric, "level": "", "value": value,
                "ci_low": value - 1e-8, "ci_high": value + 1e-8}

    base = [row(m, c, 3e-7) for m in paper.MODELS for c in ("none", "ours")]
    pd.DataFrame(base + [row("codetalker", "ours", 1e-7)]).to_csv(tmp_path / "config1_results.csv", index=False)
    with pytest.raises(InputError, match=r"config1_results.csv, CodeTalker FDD \(ours\): 2 different rows"):
        assess(tmp_path)
    mtm = [row(m, "none", 40.0, "mtm_ms") for m in paper.MODELS]
    pd.DataFrame(mtm + [row("selftalk", "none", 80.0, "mtm_ms")]).to_csv(tmp_path / "config1_results.csv",
                                                                         index=False)
    with pytest.raises(InputError, match=r"SelfTalk baseline MTM: 2 different rows"):
        assess(tmp_path)


def test_config1_results_with_seeds_are_judged_on_the_pooled_rows(tmp_path):
    """A multi-seed long form (p3d.experiments.long_form of arms, then of runs): the rows with seed "all" decide;
    a seed-0 row that disagrees is not read."""
    def row(model, critic, value, half, seed):
        return {"run": f"{model}_{critic}", "seed": seed, "n_seeds": 5 if seed == "all" else 1, "model": model,
                "critic": critic, "train": "synth-voca", "test": "synth-voca", "split": "test", "loss_weight": "",
                "n_clips": 8, "metric": "fdd", "level": "", "value": value, "ci_low": value - half,
                "ci_high": value + half}

    rows = [row(m, c, 9e-7, 0.1e-7, 0) for m in paper.MODELS for c in ("none", "ours")]  # first: must be skipped
    rows += [row(m, "none", 3e-7, 0.1e-7, "all") for m in paper.MODELS]
    rows += [row(m, "ours", 1e-7, 0.1e-7, "all") for m in paper.MODELS]
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert "change -2 [" in r["p3d"] and "+0 [" not in r["p3d"]


def test_table2_cases_state_how_many_seeds_share_the_pooled_sign(tmp_path):
    """Beside each Table-2 effect with per-seed rows in config1_results: how many seeds' own changes (with minus
    without, same seed) share the pooled change's sign; the verdict still follows the pooled CI only."""
    _effects(tmp_path / "table2_loss_effects.csv", [(m, "MTM (ms)", -1.0, -3, 1, "no clear change")
                                                    for m in ("FaceFormer", "CodeTalker", "SelfTalk")])
    changes = {"faceformer": [-2, -1, 0.5, -3, 0.0], "codetalker": [1, 2, 3, 4, 5], "selftalk": [-1, -1]}
    rows = []
    for model, per_seed in changes.items():
        for s, ch in enumerate(per_seed):
            for critic, value in (("none", 30.0), ("ours", 30.0 + ch)):
                rows.append({"run": f"{model}_{critic}_seed{s}", "seed": s, "model": model, "critic": critic,
                             "metric": "mtm_ms", "level": "", "value": value})
        rows += [{"run": f"{model}_{c}_seed0", "seed": "all", "model": model, "critic": c, "metric": "mtm_ms",
                  "level": "", "value": 99.0} for c in ("none", "ours")]  # pooled rows: not per seed
    rows.append({"run": "faceformer_syncnet3d_seed0", "seed": 0, "model": "faceformer", "critic": "syncnet3d",
                 "metric": "mtm_ms", "level": "", "value": 1.0})  # another critic: not Table 2
    common = {"train": "synth-voca", "test": "synth-voca", "split": "test", "loss_weight": "", "n_clips": 8}
    pd.DataFrame([{**common, **r, "ci_low": r["value"] - 1, "ci_high": r["value"] + 1} for r in rows]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    assert claims.seeds.seed_changes(tmp_path)[("FaceFormer", "mtm_ms")] == [-2, -1, 0.5, -3, 0.0]
    r = assess(tmp_path).set_index("key").loc["loss-mtm"]
    assert r["verdict"] == "inconclusive"
    text = r["p3d"]
    assert "FaceFormer MTM (ms): 1 -> 0 (change -1 [-3, +1]; MDE" in text
    assert "per seed: 3 of 5 changes share its sign" in text    # -2, -1, -3 (0 shares no sign)
    assert "per seed: 0 of 5 changes share its sign" in text    # CodeTalker's seeds all rose
    assert "per seed: 2 of 2 changes share its sign" in text
    # without per-seed rows (one seed per run), no such note
    (tmp_path / "config1_results.csv").unlink()
    assert "per seed" not in assess(tmp_path).set_index("key").loc["loss-mtm", "p3d"]


def test_compare_verdicts_of_two_runs_marks_the_claims_that_differ(tmp_path, capsys):
    from p3d.cli import main

    a, b = tmp_path / "a" / "tables", tmp_path / "b" / "tables"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    rows = [(m, "PLRS", 0.04, 0.03, 0.05, "better") for m in ("FaceFormer", "CodeTalker", "SelfTalk")]
    _effects(a / "table2_loss_effects.csv", rows)
    _effects(b / "table2_loss_effects.csv", rows[:2] + [("SelfTalk", "PLRS", 0.01, -0.01, 0.03, "no clear change")])
    df = claims.compare_verdicts(a, b, names=("m1", "m2")).set_index("key")
    assert df.loc["loss-plrs", ["verdict m1", "verdict m2"]].tolist() == ["reproduced", "inconclusive"]
    assert not df.loc["loss-plrs", "same"]
    assert df.loc["loss-mtm", "same"]                                   # "not measured" on both sides
    assert df["same"].sum() == len(CLAIMS) - 1
    md = claims.comparison_markdown(df.reset_index(), ("m1", "m2"))
    n_testable = int((df["verdict m1"] != "not testable here").sum())
    assert 0 < n_testable < len(CLAIMS)                                 # people and the real datasets: not testable
    # the claims measured in neither folder are counted as such, not as reaching the same verdict (the first line
    # said "15 of 16 testable claims reach the same verdict" where one claim was measured at all)
    assert md.splitlines()[0] == (f"0 of {n_testable} testable claims reach the same verdict on the same cases (m1 vs "
                                  f"m2); {n_testable - 1} measured in neither; 1 a different verdict.")
    assert "| not measured | not measured | measured in neither |" in md
    assert "| reproduced | inconclusive | **no** |" in md
    # the command: same report; --strict exits 1 on a difference, 0 on a folder against itself
    assert main(["claims", str(a), "--against", str(b), "--names", "m1", "m2"]) == 0
    assert "| reproduced | inconclusive | **no** |" in capsys.readouterr().out
    assert main(["claims", str(a), "--against", str(b), "--strict"]) == 1
    assert main(["claims", str(a), "--against", str(a), "--strict", "--out", str(tmp_path / "same.md")]) == 1
    # ... 1 too on a folder against itself: the claims measured in neither are not reproduced (exited 0)
    assert main(["claims", str(a), "--against", str(a), "--strict", "--only", "1"]) == 0
    assert not claims.reproduces(claims.compare_verdicts(a, a, ("m1", "m2")), ("m1", "m2"))
    assert (tmp_path / "same.md").read_text().startswith(f"1 of {n_testable} testable claims reach the same verdict "
                                                         f"on the same cases (A vs B); {n_testable - 1} measured in "
                                                         "neither.")
    assert main(["claims", str(a)]) == 0
    assert "| **reproduced** |" in capsys.readouterr().out
    # --only: those claims, numbered as in the whole report; --strict reads them only
    assert main(["claims", str(a), "--only", "2", "1"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [ln.split(" | ")[0] for ln in lines] == ["| 1", "| 2"] and "**reproduced**" in lines[0]
    assert main(["claims", str(a), "--against", str(b), "--strict", "--only", "2", "3"]) == 1  # measured in neither
    assert main(["claims", str(a), "--against", str(b), "--strict", "--only", "1"]) == 1
    with pytest.raises(InputError, match="two different labels"):
        claims.compare_verdicts(a, b, names=("x", "x"))


def _counted_effects(path: Path, rows: list[tuple[str, str, float, float, float]], n_seeds: int = 1,
                     n_clips: int | None = None) -> None:
    """An effect table of ``(comparison, metric, change, low, high)`` rows with ``n_seeds`` (and ``n_clips``)."""
    df = pd.DataFrame([{"comparison": c, "metric": m, "n_seeds": n_seeds, "without": 1.0, "with": 1.0 + ch,
                        "change": ch, "change CI low": lo, "change CI high": hi, "verdict": ""}
                       for c, m, ch, lo, hi in rows])
    if n_clips is not None:
        df.insert(3, "n_clips", n_clips)
    df.to_csv(path, index=False)


def test_compare_verdicts_counts_a_verdict_on_other_cases_apart(tmp_path, capsys):
    """Run b measured Table 2 for FaceFormer only and Table 3 for SelfTalk only, a every model: the verdicts agree
    (a claim over three models measured for one is inconclusive) but rest on different cases, and the report said
    "reach the same verdict" for them. Now each assessment lists its cases (label, referee, seeds, clips) and the
    comparison counts a verdict on other cases, other seed counts or other clip counts apart; --strict fails on it."""
    from p3d.cli import main

    a, b = tmp_path / "a" / "tables", tmp_path / "b" / "tables"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    models = ("FaceFormer", "CodeTalker", "SelfTalk")
    t2 = [(m, metric, 0.01, -1.0, 1.0) for m in models for metric in ("PLRS", "MTM (ms)")]
    _counted_effects(a / "table2_loss_effects.csv", t2, n_seeds=5, n_clips=160)
    _counted_effects(b / "table2_loss_effects.csv", t2[:2], n_seeds=5, n_clips=160)
    t3 = [(f"{m}: ours vs 3D SyncNet", metric, 0.01, -1.0, 1.0) for m in models for metric in ("MTM (ms)", "PLRS")]
    _counted_effects(a / "table3_critic_effects.csv", t3)
    _counted_effects(b / "table3_critic_effects.csv", t3[4:])
    t4 = [(f"{m}: + synth-mead", "SLCC Δ", 0.01, -1.0, 1.0) for m in models]
    _counted_effects(a / "table4_effects.csv", t4, n_seeds=1, n_clips=160)
    _counted_effects(b / "table4_effects.csv", t4, n_seeds=3, n_clips=160)          # other training seeds
    t4p = [(f"{m}: + synth-mead", "PLRS", -0.05, -0.08, -0.02) for m in models]
    mead = tmp_path / "table4_plrs.csv"
    _counted_effects(mead, t4p, n_clips=160)
    pd.concat([pd.read_csv(a / "table4_effects.csv"), pd.read_csv(mead)]).to_csv(a / "table4_effects.csv", index=False)
    _counted_effects(mead, t4p, n_clips=120)                                        # other test clips
    pd.concat([pd.read_csv(b / "table4_effects.csv"), pd.read_csv(mead)]).to_csv(b / "table4_effects.csv", index=False)

    judged = assess(a).set_index("key")
    assert judged.loc["loss-plrs", "cases"] == tuple(claims.CaseBasis(f"{m} PLRS", "official", 5, 160)
                                                     for m in models)
    assert str(judged.loc["loss-plrs", "cases"][0]) == "FaceFormer PLRS (referee official, 5 seeds, 160 clips)"
    df = claims.compare_verdicts(a, b, names=("m1", "m2")).set_index("key")
    for key in ("loss-plrs", "loss-mtm", "vs-syncnet", "mead-slcc", "mead-plrs"):
        assert df.loc[key, "same"] and not df.loc[key, "same cases"], key
    assert df.loc["loss-plrs", "verdict m1"] == "inconclusive"
    assert df.loc["loss-plrs", "case differences"] == ("only in m1: CodeTalker PLRS (referee official, 5 seeds, "
                                                       "160 clips), SelfTalk PLRS (referee official, 5 seeds, 160 clips)")
    assert "only in m1: FaceFormer MTM (ms) (1 seed)" in df.loc["vs-syncnet", "case differences"]
    assert "only in m2" not in df.loc["loss-mtm", "case differences"]
    assert df.loc["mead-slcc", "case differences"].startswith("FaceFormer SLCC Δ: training seeds 1 in m1, 3 in m2")
    assert df.loc["mead-plrs", "verdict m1"] == "reproduced"
    assert df.loc["mead-plrs", "case differences"].startswith("FaceFormer PLRS: test clips 160 in m1, 120 in m2")
    md = claims.comparison_markdown(df.reset_index(), ("m1", "m2"))
    first = md.splitlines()[0]
    n = int((df["verdict m1"] != "not testable here").sum())
    assert first == (f"0 of {n} testable claims reach the same verdict on the same cases (m1 vs m2); 5 the same "
                     f"verdict on different cases (not counted as agreeing; see below); {n - 5} measured in neither.")
    assert "| inconclusive | inconclusive | verdict only: cases differ |" in md
    assert "- 1: only in m1: CodeTalker PLRS" in md
    # a folder against itself: the same cases; a table without n_clips is matched on what both record, and said so
    same = claims.compare_verdicts(a, a, names=("m1", "m2"))
    assert same["same cases"].all()
    old = tmp_path / "old" / "tables"
    old.mkdir(parents=True)
    for f in a.glob("*.csv"):
        pd.read_csv(f).drop(columns="n_clips", errors="ignore").to_csv(old / f.name, index=False)
    no_clips = claims.compare_verdicts(a, old, names=("m1", "m2"))
    assert no_clips["same"].all() and no_clips["same cases"].all()
    assert "matched on model, metric and referee alone" in claims.comparison_markdown(no_clips, ("m1", "m2"))
    # --strict: 1 when a verdict rests on other cases, though every verdict agrees
    assert main(["claims", str(a), "--against", str(b), "--strict", "--only", "1"]) == 1
    assert "verdict only: cases differ" in capsys.readouterr().out
    measured = [str(i + 1) for i, v in enumerate(claims.assess(a)["verdict"]) if v != "not measured"]
    assert main(["claims", str(a), "--against", str(old), "--strict", "--only", *measured]) == 0


@pytest.mark.parametrize("argv, message", [
    (["claims", "{missing}"], "not a folder of result tables"),
    (["claims", "{a}", "--names", "x", "y"], "--names: needs --against"),
    (["claims", "{a}", "--strict"], "--strict: needs --against"),
    (["claims", "{a}", "--against", "{a}", "--out", "{a}/r.txt"], "expected a .md file"),
    (["claims", "{a}", "--only", "0", "7"], "--only 0: the claims are numbered 1-"),
    (["claims", "{empty}"], "holds no result tables"),
    (["claims", "{a}", "--out", "{a}/table2_loss_effects.csv/r.md"], "exists and is not a folder"),
    (["claims", "{a}", "--out", "{folder}"], "is a folder"),
    (["claims", "{a}"], "table2_loss_effects.csv not in the layout `make figures` writes"),  # was a KeyError
])
def test_claims_command_refuses_bad_input_with_one_line(tmp_path, capsys, argv, message):
    from p3d.cli import main

    a, empty, folder = tmp_path / "tables", tmp_path / "empty", tmp_path / "report.md"
    for d in (a, empty, folder):
        d.mkdir()
    (a / "table2_loss_effects.csv").write_text("model,change\nFaceFormer,0.1\n")  # not the layout written
    args = [x.format(a=a, missing=tmp_path / "nope", empty=empty, folder=folder) for x in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_findings_block_shows_the_effect_tables_seed_agreement_and_convergence(tmp_path):
    _effects(tmp_path / "table2_loss_effects.csv", [
        ("FaceFormer", "PLRS", 0.04, 0.03, 0.05, "better"),
        ("FaceFormer", "MTM (ms)", -1.5, -4.0, 1.0, "no clear change"),
        ("FaceFormer", "FDD (1e-7 m²)", 0.1, -0.1, 0.3, "no clear change"),   # not a metric the block shows
    ])
    pd.DataFrame([{"run": "ff_none", "seed": s, "model": "faceformer", "critic": "none", "metric": "plrs",
                   "value": 0.3} for s in (0, 1, 2)]
                 + [{"run": "ff_ours", "seed": s, "model": "faceformer", "critic": "ours", "metric": "plrs",
                     "value": v} for s, v in zip((0, 1, 2), (0.35, 0.33, 0.29))]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    pd.DataFrame({"run": ["stage1", "talkers/a"], "steps": [4000, 850], "converged": [False, True]}
                 ).to_csv(tmp_path / "convergence.csv", index=False)
    md = claims.findings_markdown(tmp_path)
    assert "| FaceFormer | PLRS | 1 | 1.04 | +0.04 [+0.03, +0.05] | better | 2 of 3 |" in md   # seeds 0, 1 rise
    assert "| FaceFormer | MTM (ms) | 1 | -0.5 | -1.5 [-4, +1] | no clear change | – |" in md  # no per-seed rows
    assert "FDD" not in md
    assert "`table3_critic_effects.csv` not made yet" in md and "`table4_effects.csv` not made yet" in md
    assert "1 of 2 training runs stopped on their validation plateau; at the cap: `stage1` (4000 steps)." in md
    # an interrupted run (converged empty in the CSV) was counted as stopped on its plateau (bool(NaN) is True)
    pd.DataFrame({"run": ["stage1", "talkers/a", "talkers/b"], "steps": [4000, 850, 300],
                  "converged": [False, True, None]}).to_csv(tmp_path / "convergence.csv", index=False)
    assert ("1 of 3 training runs stopped on their validation plateau; at the cap: `stage1` (4000 steps); "
            "unfinished: `talkers/b` (300 steps).") in claims.findings_markdown(tmp_path)
    # equal-length continuations (a fixed length) are counted apart, with the criterion at their end
    pd.DataFrame({"run": ["stage1", "talkers/a", "talkers/a_eq", "talkers/b_eq"], "stop": ["plateau"] * 2 + ["steps"] * 2,
                  "steps": [4000, 850, 900, 900], "converged": [False, True, True, False],
                  "continued_from": [None, None, 850, 900], "val_at_continued_from": [None, None, 2.0, 1.0],
                  "val_last": [1.0, 1.0, 1.8, 1.0]}
                 ).to_csv(tmp_path / "convergence.csv", index=False)
    md = claims.findings_markdown(tmp_path)
    assert ("1 of 2 training runs stopped on their validation plateau; at the cap: `stage1` (4000 steps). 2 ran a "
            "fixed length (the equal-length continuations of the compared arms); the plateau criterion holds at the "
            "end of 1 of them. The 1 that trained past their own stop changed their smoothed validation value by "
            "-10.0 % (median; -10.0 to -10.0 %) from the stop to their end.") in md
    assert "Training at equal length" not in md                           # no run-seconds table yet
    # the continuations' cost, from the run-seconds tables: each run once (Table 4's runs are evaluated twice)
    pd.DataFrame({"run": ["a_eq", "b_eq"], "evaluated": ["voca"] * 2, "train_s": [900.0, 1200.0],
                  "continued_s": [300.0, 0.0]}).to_csv(tmp_path / "config1_run_seconds.csv", index=False)
    pd.DataFrame({"run": ["c_eq", "c_eq", "d"], "evaluated": ["voca", "mead", "voca"],
                  "train_s": [1500.0, 1500.0, 700.0], "continued_s": [600.0, 600.0, None]}
                 ).to_csv(tmp_path / "config2_run_seconds.csv", index=False)
    cost = claims.continuation_cost(tmp_path)
    assert cost["runs"] == 3 and cost["continued_s"] == 900.0 and cost["own_s"] == 2700.0   # d: its own stop
    assert cost["fraction"] == pytest.approx(1 / 3)
    assert ("Training at equal length took 15 worker-minutes past the runs' own stops, 33 % on top of their 45 to "
            "their own stops (3 runs; `continued_s` of `config1_run_seconds.csv`, `config2_run_seconds.csv`).") \
        in claims.findings_markdown(tmp_path)
    # tables written before the column existed: no line, no guess
    pd.DataFrame({"run": ["a"], "train_s": [900.0]}).to_csv(tmp_path / "config1_run_seconds.csv", index=False)
    (tmp_path / "config2_run_seconds.csv").unlink()
    assert claims.continuation_cost(tmp_path) is None


def test_readme_has_the_generated_blocks_that_notebook_10_fills():
    from p3d.paths import project_root

    text = (project_root() / "README.md").read_text()
    for name in ("claims", "results", "timing"):
        start, end = claims.readme_markers(name)
        assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)


def test_training_cost_claim_uses_the_interval_over_rounds_when_the_table_has_one(tmp_path):
    def s8(cis):
        rows = []
        for model, (ratio, ci) in zip(("FaceFormer", "CodeTalker", "SelfTalk"), [*cis, (1.5, "[1.30, 1.70]")]):
            rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800, "x without loss: 95 % CI over rounds": "–"},
                     {"Method": "+ Ours rep. (cached)", "x without loss": ratio, "peak mem (MiB)": 900,
                      "x without loss: 95 % CI over rounds": ci}]
        pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
        return assess(tmp_path).set_index("key").loc["cost"]

    row = s8([(1.3, "[1.10, 1.52]"), (2.0, "[1.80, 2.25]")])
    assert row["verdict"] == "reproduced" and "1.30x [1.10, 1.52]" in row["p3d"] and "CI of the time ratio" in row["decided_by"]
    assert s8([(1.05, "[0.90, 1.22]"), (2.0, "[1.80, 2.25]")])["verdict"] == "inconclusive"   # one CI includes 1
    assert s8([(0.8, "[0.70, 0.92]"), (2.0, "[1.80, 2.25]")])["verdict"] == "contradicted"    # faster with the loss
    one_round = s8([(1.05, "–"), (2.0, "–")])  # SelfTalk's row keeps its interval: the one-round rule applies
    assert one_round["verdict"] == "reproduced" and "No interval" in one_round["p3d"]         # the one-round rule


def test_training_cost_claim_reads_an_interval_with_an_undefined_end_as_no_interval(tmp_path):
    """A cached ratio whose CI cell has one undefined end ("[1.10, nan]": too few rounds for its upper end) decides
    nothing by interval: with another model's interval below its ratio the claim is not reproduced on a half interval
    (it was: only the finite lower end was checked); the text shows no interval for that model."""
    rows = []
    for model, ratio, ci in (("FaceFormer", 0.95, "[1.10, nan]"), ("CodeTalker", 1.5, "[1.30, 1.70]"),
                             ("SelfTalk", 1.5, "[1.30, 1.70]")):
        rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800,
                  "x without loss: 95 % CI over rounds": "–"},
                 {"Method": "+ Ours rep. (cached)", "x without loss": ratio, "peak mem (MiB)": 900,
                  "x without loss: 95 % CI over rounds": ci}]
    pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["cost"]
    assert row["verdict"] == "inconclusive" and "FaceFormer cached 0.95x (+100 MiB" in row["p3d"]


def test_training_cost_claim_reads_memory_in_mib_and_older_tables_labelled_mb(tmp_path):
    """Table S8's memory is bytes / 2**20: the judge's text says MiB, from the table's ``peak mem (MiB)`` column or,
    in a table written before the column said so, from ``peak mem (MB)`` (the same MiB values)."""
    for col in ("peak mem (MiB)", "peak mem (MB)"):
        rows = []
        for model in ("FaceFormer", "CodeTalker", "SelfTalk"):
            rows += [{"Method": model, "x without loss": 1.0, col: 800, "x without loss: 95 % CI over rounds": "–"},
                     {"Method": "+ Ours rep. (cached)", "x without loss": 1.5, col: 900,
                      "x without loss: 95 % CI over rounds": "[1.30, 1.70]"}]
        pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
        row = assess(tmp_path).set_index("key").loc["cost"]
        assert row["verdict"] == "reproduced" and "FaceFormer cached 1.50x [1.30, 1.70] (+100 MiB peak)" in row["p3d"]
        assert " MB" not in row["p3d"]


def _s8_models(tmp_path, models):
    rows = []
    for model in models:
        rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800, "x without loss: 95 % CI over rounds": "–"},
                 {"Method": "+ Ours rep. (cached)", "x without loss": 1.5, "peak mem (MiB)": 900,
                  "x without loss: 95 % CI over rounds": "[1.30, 1.70]"}]
    pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
    return assess(tmp_path).set_index("key").loc["cost"]


def test_training_cost_claim_over_fewer_models_is_inconclusive(tmp_path):
    """A claim over the three models measured for one is at best inconclusive (was reproduced)."""
    row = _s8_models(tmp_path, ["FaceFormer"])
    assert row["verdict"] == "inconclusive" and "Not measured (cached): CodeTalker, SelfTalk" in row["p3d"]
    assert "every model" not in row["decided_by"] and "not measured: CodeTalker, SelfTalk" in row["decided_by"]
    assert _s8_models(tmp_path, ["FaceFormer", "CodeTalker", "SelfTalk"])["verdict"] == "reproduced"


def test_a_property_without_a_pass_or_fail_is_not_measured(tmp_path):
    """An empty 'shows' cell read back as NaN, which bool() took for a pass."""
    rows = [{"critic": "ours", "property": p, "shows": s, "evidence": "e"}
            for p, s in (("phoneme clustering", None), ("intensity direction", True))]
    pd.DataFrame(rows).to_csv(tmp_path / "representation_properties.csv", index=False)
    df = assess(tmp_path).set_index("key")
    assert df.loc["prop-clusters", "verdict"] == "not measured"
    assert df.loc["prop-intensity", "verdict"] == "reproduced"


def test_two_different_rows_for_a_property_of_ours_are_refused_not_read_in_file_order(tmp_path):
    """A representation property with two different rows for ours (a table concatenated from two runs) was judged on
    the first, so its verdict followed the file's order; it is refused with one clear error, as the effect tables'
    repeated cases are. An exact repeat is one row."""
    row = {"critic": "ours", "property": "phoneme clustering", "shows": True, "evidence": "ours 47%"}
    pd.DataFrame([row, row]).to_csv(tmp_path / "representation_properties.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["prop-clusters", "verdict"] == "reproduced"
    pd.DataFrame([row, {**row, "shows": False, "evidence": "ours 12%"}]).to_csv(
        tmp_path / "representation_properties.csv", index=False)
    with pytest.raises(InputError, match=r"representation_properties.csv, ours phoneme clustering: 2 different rows"):
        assess(tmp_path)


def test_the_raw_control_makes_a_property_not_distinctive_only_when_its_test_passed(tmp_path):
    """The no-learning control's 'shows' cell is read as ours' is: an empty cell (NaN, which bool() took for a pass)
    or the text 'False' (a column holding other text reads back as text, and bool('False') is True) is no pass, so
    the evidence does not call the property 'not distinctive'; the text 'True' is a pass, for ours and the control."""
    rows = [{"critic": "ours", "property": "phoneme clustering", "shows": True, "evidence": "ours 47%"},
            {"critic": "raw inputs (control)", "property": "phoneme clustering", "shows": None, "evidence": "raw"}]
    pd.DataFrame(rows).to_csv(tmp_path / "representation_properties.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["prop-clusters"]
    assert row["verdict"] == "reproduced" and "Not distinctive" not in row["p3d"]
    rows = [{"critic": c, "property": p, "shows": s, "evidence": "e"}
            for c, p, s in (("ours", "phoneme clustering", "True"),
                            ("raw inputs (control)", "phoneme clustering", "False"),
                            ("ours", "intensity direction", "True"),
                            ("raw inputs (control)", "intensity direction", "True"),
                            ("syncnet3d", "intensity direction", "untested"))]
    pd.DataFrame(rows).to_csv(tmp_path / "representation_properties.csv", index=False)
    df = assess(tmp_path).set_index("key")
    assert df.loc["prop-clusters", "verdict"] == "reproduced"
    assert "Not distinctive" not in df.loc["prop-clusters", "p3d"]
    assert df.loc["prop-intensity", "verdict"] == "reproduced" and "Not distinctive" in df.loc["prop-intensity", "p3d"]


def test_temporal_claim_is_judged_on_the_per_clip_contrast_when_the_tables_have_it(tmp_path):
    """The far-offset mean comes from the same clips: with the per-clip contrast's CI (here reaching 0) the claim is
    judged on it; a table without it (an older p3d) is judged with the far mean taken as fixed, and says so."""
    row = {"critic": "ours", "peak offset": 0, "sim at 0": 0.40, "sim at 0 CI low": 0.35, "sim at 0 CI high": 0.45,
           "mean sim at |offset| >= 5": 0.20}
    pd.DataFrame([row]).to_csv(tmp_path / "fig5a_offset_summary.csv", index=False)
    old = assess(tmp_path).set_index("key").loc["prop-temporal"]
    assert old["verdict"] == "reproduced" and "far mean taken as fixed" in old["p3d"]
    pd.DataFrame([{**row, "sim at 0 minus far": 0.20, "sim at 0 minus far CI low": -0.02,
                   "sim at 0 minus far CI high": 0.42}]).to_csv(tmp_path / "fig5a_offset_summary.csv", index=False)
    new = assess(tmp_path).set_index("key").loc["prop-temporal"]
    assert new["verdict"] == "inconclusive" and "[-0.02, +0.42]" in new["p3d"] and "fixed" not in new["p3d"]
    off = np.arange(-6, 7)
    pd.DataFrame({"offset": off, "mean": 0.5 - 0.05 * np.abs(off), "ci_low": 0.4, "ci_high": 0.6, "vs_far": 0.3,
                  "vs_far_ci_low": 0.25, "vs_far_ci_high": 0.35}).to_csv(
        tmp_path / "fig_s1a_offset_similarity.csv", index=False)
    both = assess(tmp_path).set_index("key").loc["prop-temporal", "p3d"]
    assert "Fig. S1a), offset 0 minus |offset| >= 5: 0.225 -> 0.5 (change +0.3 [+0.25, +0.35]" in both


def test_a_referee_missing_a_degradation_of_the_battery_is_not_valid(tmp_path):
    """Passing the degradations it was run on is not passing the battery (was valid)."""
    _validity(tmp_path, [("official", "shift_5", -0.2, -0.1), ("enrolled", "amp_0.75", -0.2, -0.1)])
    assert claims.valid_referees(tmp_path) == (["official", "enrolled"], [])
    _validity(tmp_path, [("official", "shift_5", -0.2, -0.1), ("enrolled", "amp_0.75", -0.2, -0.1)],
              complete=False)
    assert claims.valid_referees(tmp_path) == ([], ["official", "enrolled"])


def test_per_seed_changes_leave_out_the_weight_selections_val_runs(tmp_path):
    """config1_results.csv holds notebook 06's weight-selection runs (split val) beside Table 2's test runs: a val
    pair at a seed of its own (the selection's seed, one candidate kappa) was counted as one more test seed's change."""
    common = {"model": "faceformer", "train": "synth-voca", "test": "synth-voca", "loss_weight": "", "n_clips": 8,
              "metric": "plrs", "level": "", "ci_low": 0, "ci_high": 1}
    rows = [{"run": f"faceformer_{c}_seed{s}", "seed": s, "critic": c, "split": "test", "value": v}
            for s in (0, 1) for c, v in (("none", 0.30), ("ours", 0.35))]            # Table 2: ours adds 0.05
    rows += [{"run": f"faceformer_{c}_seed5", "seed": 5, "critic": c, "split": "val", "value": v}
             for c, v in (("none", 0.30), ("ours", 0.00))]                           # the val selection: -0.3
    pd.DataFrame([{**common, **r} for r in rows]).to_csv(tmp_path / "config1_results.csv", index=False)
    assert claims.seeds.seed_changes_by_seed(tmp_path)[("FaceFormer", "plrs")] == pytest.approx({"0": 0.05, "1": 0.05})


def test_tables_3_and_4_count_the_seeds_sharing_each_effects_sign(tmp_path):
    """Table 3 (ours against each ablation critic) and Table 4 (synth-mead added, then the loss) get the same
    per-seed count as Table 2, from their run tables' per-seed rows on the whole test set (level-wise rows and the
    pooled 'all' seed rows ignored)."""
    common = {"test": "synth-voca", "split": "test", "loss_weight": "", "n_clips": 8, "metric": "mtm_ms"}
    c1 = [{"seed": s, "model": "faceformer", "critic": c, "train": "synth-voca", "level": "", "value": v}
          for s in (0, 1, 2) for c, v in (("ours", 30.0), ("syncnet3d", 30.0 + (1, 2, -1)[s]),
                                           ("no2d", 30.0 - 1), ("none", 35.0))]
    c1.append({"seed": "all", "model": "faceformer", "critic": "syncnet3d", "train": "synth-voca", "level": "",
               "value": 99.0})
    c1 += [{**r, "metric": "plrs_partial"} for r in c1[:8]]  # a metric the claims do not read per seed
    pd.DataFrame([{**common, "run": f"r{i}", **r, "ci_low": 0, "ci_high": 1} for i, r in enumerate(c1)]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    c2 = []
    for s in (0, 1):
        for (critic, train), v in ((("none", "synth-voca"), 30.0), (("none", "synth-voca+synth-mead"), 29.0 + s * 2),
                                   (("ours", "synth-voca+synth-mead"), 28.0)):
            c2.append({"seed": s, "model": "codetalker", "critic": critic, "train": train, "level": "", "value": v})
            c2 += [{"seed": s, "model": "codetalker", "critic": critic, "train": train, "level": lv, "value": 0.0}
                   for lv in ("1", "all")]                              # level rows: SLCC's, not the whole-set MTM
    for r in c2[1::3] + c2[2::3]:
        r["metric"] = "slcc_delta"
    pd.DataFrame([{**common, "test": "synth-mead", "run": f"q{i}", **r, "ci_low": 0, "ci_high": 1}
                  for i, r in enumerate(c2)]).to_csv(tmp_path / "config2_results.csv", index=False)
    t3 = claims.seeds.seed_changes(tmp_path, "table3_critic_effects")
    assert t3[("FaceFormer: ours vs 3D SyncNet", "mtm_ms")] == [-1, -2, 1]
    assert t3[("FaceFormer: ours vs Ours w/o 2D prior", "mtm_ms")] == [1, 1, 1]
    t4 = claims.seeds.seed_changes(tmp_path, "table4_effects")
    assert t4[("CodeTalker: + synth-mead", "mtm_ms")] == [-1, 1]
    assert t4[("CodeTalker: + ours", "mtm_ms")] == [-1, -3]
    assert claims.seeds.seed_changes(tmp_path, "table_s7_fdd") == {}
    assert ("FaceFormer", "mtm_ms") in claims.seeds.seed_changes(tmp_path)   # Table 2: none against ours
    _effects(tmp_path / "table3_critic_effects.csv", [("FaceFormer: ours vs 3D SyncNet", "MTM (ms)", -0.7, -2, 0.5,
                                                       "no clear change")])
    _effects(tmp_path / "table4_effects.csv", [("CodeTalker: + ours", "MTM (ms)", -2.0, -3, -1, "better")])
    md = claims.findings_markdown(tmp_path)
    assert "| FaceFormer: ours vs 3D SyncNet | MTM (ms) | 1 | 0.3 | -0.7 [-2, +0.5] | no clear change | 2 of 3 |" in md
    assert "| CodeTalker: + ours | MTM (ms) | 1 | -1 | -2 [-3, -1] | better | 2 of 2 |" in md
    # the claims read the same counts: Table 3's case labelled by model, its per-seed changes by comparison
    vs_syncnet = assess(tmp_path).set_index("key").loc["vs-syncnet"]
    assert "FaceFormer MTM (ms): 1 -> 0.3 (change -0.7 [-2, +0.5]; MDE" in vs_syncnet["p3d"]
    assert "per seed: 2 of 3 changes share its sign" in vs_syncnet["p3d"]
    assert "config1_results" in vs_syncnet["sources"] and "per_seed" not in vs_syncnet["sources"]


def test_per_seed_effect_tables_give_each_cases_seed_count(tmp_path):
    """``<stem>_per_seed.csv`` (each seed's own effect, as scripts/table_seeds.py computes them) counts the seeds
    sharing a pooled change's sign, also for the referees the run tables do not hold per seed (PLRS-e); it is
    preferred to the run tables' count for the same row, and a repeated seed leaves the row without a count."""
    cases = [(f"{m}: ours vs 3D SyncNet", metric, ch, ch - 1, ch + 1, "no clear change")
             for m in ("FaceFormer", "CodeTalker", "SelfTalk") for metric, ch in (("MTM (ms)", -0.5), ("PLRS-e", 0.2))]
    _effects(tmp_path / "table3_critic_effects.csv", cases)
    per_seed = [{"comparison": f"{m}: ours vs 3D SyncNet", "seed": s, "metric": metric, "change": ch}
                for m, shift in (("FaceFormer", 0), ("CodeTalker", 1), ("SelfTalk", 2))
                for s in (0, 1, 2) for metric, ch in (("MTM (ms)", (-1, -2, 1)[s] + shift), ("PLRS-e", 0.1 * (s - 1)))]
    per_seed.append({"comparison": "SelfTalk: ours vs 3D SyncNet", "seed": 2, "metric": "PLRS-e", "change": 9.0})
    pd.DataFrame(per_seed).to_csv(tmp_path / "table3_critic_effects_per_seed.csv", index=False)
    changes = claims.seeds.seed_changes(tmp_path, "table3_critic_effects")
    assert changes[("FaceFormer: ours vs 3D SyncNet", "MTM (ms)")] == [-1, -2, 1]
    assert ("SelfTalk: ours vs 3D SyncNet", "PLRS-e") not in changes      # seed 2 twice: ambiguous
    _validity(tmp_path, [("enrolled", "amp_0.5", -2, -0.5)])
    r = assess(tmp_path).set_index("key").loc["vs-syncnet"]
    text = r["p3d"]
    assert "FaceFormer MTM (ms): 1 -> 0.5 (change -0.5 [-1.5, +0.5]; MDE" in text
    assert text.count("per seed: 2 of 3 changes share its sign") == 1       # FaceFormer MTM: -1, -2 share it
    assert "per seed: 0 of 3 changes share its sign" in text               # SelfTalk MTM: 1, 0, 3
    # CodeTalker MTM (0, -1, 2), and FaceFormer's and CodeTalker's PLRS-e (-0.1, 0, +0.1; 0 shares no sign)
    assert text.count("per seed: 1 of 3 changes share its sign") == 3
    assert text.count("per seed:") == 5                                    # SelfTalk's PLRS-e: ambiguous, none
    assert "table3_critic_effects_per_seed" in r["sources"]
    md = claims.findings_markdown(tmp_path)
    assert "| SelfTalk: ours vs 3D SyncNet | PLRS-e | 1 | 1.2 | +0.2 [-0.8, +1.2] | no clear change | – |" in md
    # a per-seed table without its columns is refused with one line
    pd.DataFrame([{"comparison": "x", "change": 1}]).to_csv(tmp_path / "table3_critic_effects_per_seed.csv",
                                                           index=False)
    with pytest.raises(InputError, match="lacks the columns"):
        claims.seeds.seed_changes(tmp_path, "table3_critic_effects")


def test_run_design_says_which_models_seeds_and_lengths_the_tables_hold(tmp_path):
    assert claims.run_design_markdown(tmp_path) == ""                     # no effect table: nothing to describe
    pd.DataFrame([{"comparison": m, "metric": "PLRS", "n_seeds": 5} for m in ("FaceFormer", "CodeTalker")]
                 ).to_csv(tmp_path / "table2_loss_effects.csv", index=False)
    pd.DataFrame([{"comparison": "SelfTalk: + synth-mead", "metric": "PLRS", "n_seeds": 3},
                  {"comparison": "SelfTalk: + ours", "metric": "PLRS", "n_seeds": 3}]
                 ).to_csv(tmp_path / "table4_effects.csv", index=False)
    text = claims.run_design_markdown(tmp_path)
    assert ("Table 2 for FaceFormer, CodeTalker at 5 training seeds per arm; Table 4 for SelfTalk at 3 training "
            "seeds per arm.") in text and "Table 3" not in text and "evaluated talkers" not in text
    runs = ["ff_none_eq_seed0", "ff_ours_eq_seed0"]
    pd.DataFrame({"run": runs + ["ff_none_eq_seed0"], "seed": ["0", "0", "all"], "metric": "plrs"}
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    conv = pd.DataFrame({"run": [f"talkers/{r}" for r in runs] + ["talkers/ff_none_seed0", "stage1"],
                         "steps": [900, 900, 700, 4000], "continued_from": [700, 900, None, None]})
    conv.to_csv(tmp_path / "convergence.csv", index=False)
    assert "Every one of the 2 evaluated talkers was trained at equal length" in claims.run_design_markdown(tmp_path)
    conv.assign(continued_from=[700, None, None, None]).to_csv(tmp_path / "convergence.csv", index=False)
    assert "1 of the 2 evaluated talkers were continued" in claims.run_design_markdown(tmp_path)
    conv.drop(columns="continued_from").to_csv(tmp_path / "convergence.csv", index=False)   # an older run's table
    assert "Each of the 2 evaluated talkers trained to its own validation plateau" in claims.run_design_markdown(tmp_path)


def test_a_case_whose_arms_have_one_training_seed_says_its_ci_spans_test_clips_only(tmp_path):
    """A one-seed effect's CI resamples test clips only: the case text says so (its MDE is not a retraining's power);
    a multi-seed row and a table without ``n_seeds`` say nothing of it; the verdict still follows the CI."""
    _effects(tmp_path / "table2_loss_effects.csv", [(m, "MTM (ms)", -5, -9, -1, "better")
                                                    for m in ("FaceFormer", "CodeTalker", "SelfTalk")])
    df = pd.read_csv(tmp_path / "table2_loss_effects.csv")
    text = assess(tmp_path).set_index("key").loc["loss-mtm", "p3d"]
    assert claims.judges.ONE_SEED_NOTE not in text                      # no n_seeds column: unknown, no note
    df.insert(2, "n_seeds", [1, 5, 5])
    df.to_csv(tmp_path / "table2_loss_effects.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-mtm"]
    assert r["verdict"] == "reproduced"
    assert r["p3d"].count(claims.judges.ONE_SEED_NOTE) == 1            # FaceFormer's case only
    assert f"FaceFormer MTM (ms): 1 -> -4 (change -5 [-9, -1]; MDE" in r["p3d"]


def _retrieval_tables(path: Path, ours: float, no2d: float, windows: int = 1000) -> None:
    for name, r1 in (("ours", ours), ("no2d", no2d)):
        pd.DataFrame([{"model": name, "speech->mesh R@1": r1, "chance R@1": 0.001, "windows": windows}]
                     ).to_csv(path / f"stage2_retrieval_{name}.csv", index=False)


@pytest.mark.parametrize("loss_ci, verdict, named, not_named", [
    # held-out retrieval clearly better (reproduced), the loss effects include 0: the loss cases decide
    ((-1, 1), "inconclusive", ["as a loss: FaceFormer MTM"], ["held-out"]),
    # held-out retrieval reproduced, a loss effect clearly against the paper: only the loss decides
    ((1, 2), "contradicted", ["as a loss: FaceFormer MTM"], ["held-out"]),
])
def test_two_d_prior_names_only_the_cases_that_set_its_verdict(tmp_path, loss_ci, verdict, named, not_named):
    _retrieval_tables(tmp_path, 0.30, 0.10)
    lo, hi = loss_ci
    _effects(tmp_path / "table3_critic_effects.csv", [
        (f"{claims.MODELS[i]}: ours vs Ours w/o 2D prior", metric, (lo + hi) / 2, lo, hi, "")
        for i in range(3) for metric in ("MTM (ms)", "PLRS", "SLCC Δ")])
    row = assess(tmp_path).set_index("key").loc["two-d-prior"]
    assert row["verdict"] == verdict
    assert "held-out speech->mesh R@1, ours minus w/o 2D prior: " in row["p3d"] and "), reproduced" in row["p3d"]
    for text in named:
        assert text in row["decided_by"]
    for text in not_named:
        assert text not in row["decided_by"]


def test_two_d_prior_without_retrieval_says_what_was_not_measured(tmp_path):
    _effects(tmp_path / "table3_critic_effects.csv", [
        (f"{claims.MODELS[i]}: ours vs Ours w/o 2D prior", metric, v, min(v / 2, 2 * v), max(v / 2, 2 * v), "")
        for i in range(3) for metric, v in (("MTM (ms)", -2.0), ("PLRS", 0.1), ("SLCC Δ", -0.1))])
    row = assess(tmp_path).set_index("key").loc["two-d-prior"]
    assert row["verdict"] == "inconclusive"                        # every loss case reproduced, retrieval missing
    assert "as a loss" not in row["decided_by"]                    # reproduced cases did not set "inconclusive"
    assert "not measured: held-out retrieval" in row["decided_by"]


def test_two_d_prior_whose_critic_table_lacks_the_ablation_is_at_best_inconclusive(tmp_path):
    """The 2D-prior claim has two parts: the representation generalises worse (held-out retrieval) and helps less as
    a loss (Table 3, ours vs w/o 2D prior). A Table 3 holding only the 3D SyncNet comparison measures no part of the
    second, as an absent Table 3 does not: the claim was reproduced on retrieval alone; it is inconclusive and says
    what was not measured."""
    _retrieval_tables(tmp_path, 0.30, 0.10)
    _effects(tmp_path / "table3_critic_effects.csv", [(f"{m}: ours vs 3D SyncNet", "MTM (ms)", -1, -2, -0.5, "better")
                                                      for m in claims.MODELS])
    row = assess(tmp_path).set_index("key").loc["two-d-prior"]
    assert row["verdict"] == "inconclusive" and "Not measured: Table 3 (as a loss)" in row["p3d"]
    assert "not measured: Table 3 (as a loss)" in row["decided_by"]


def test_baseline_sync_over_fewer_models_names_what_was_not_measured_not_the_reproduced_ones(tmp_path):
    pd.DataFrame([{"run": "faceformer", "model": "faceformer", "critic": "none", "train": "synth-voca",
                   "test": "synth-voca", "split": "test", "loss_weight": "", "n_clips": 8, "metric": "mtm_ms",
                   "level": "", "value": 30.0, "ci_low": 27.0, "ci_high": 33.0}]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["baselines-sync"]
    assert row["verdict"] == "inconclusive"                        # a claim over three models, measured for one
    assert "FaceFormer" not in row["decided_by"]                   # its reproduced case did not set "inconclusive"
    assert "not measured: CodeTalker, SelfTalk" in row["decided_by"]


def test_report_says_what_its_intervals_span(tmp_path):
    """claims.md said its CIs were a 'paired cluster bootstrap over test clips unless stated', but the multi-seed
    effects of Table 2 (and the baselines' MTM) span the training seeds too without saying so, and the 2D prior's
    retrieval difference is combined from two Wilson intervals, not bootstrapped."""
    _retrieval_tables(tmp_path, 0.30, 0.10)
    df = assess(tmp_path)
    md = claims_markdown(df, "full")
    assert "test clips unless stated" not in md
    assert "and over the training seeds where an arm has several" in md
    assert "Wilson" in df.set_index("key").loc["two-d-prior", "p3d"]


def test_comparison_says_when_neither_run_recorded_the_test_clips_of_a_case(tmp_path):
    """Two runs whose effect tables record no n_clips were reported as reaching a verdict 'on the same cases'
    with nothing said, though their test sets were never compared (only one run lacking the count was noted)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        _effects(folder / "table2_loss_effects.csv", [(m, "MTM (ms)", 1, -3, 5, "") for m in claims.MODELS])
    df = claims.compare_verdicts(a, b, names=("a", "b"))
    assert df.set_index("key").loc["loss-mtm", "same cases"]                 # nothing recorded to tell them apart
    md = claims.comparison_markdown(df, ("a", "b"))
    assert "3 case(s) judged by both record their test clip count in neither run's tables" in md


def test_the_papers_numbers_name_the_model_row_they_come_from():
    """claims.md printed the paper's pairs for the three models unnamed ('Table 4: PLRS 0.299 -> 0.176, 0.294 ->
    0.154, 0.294 -> 0.216'), beside p3d's evidence for FaceFormer alone: which pair is FaceFormer's was left to
    the reader's knowledge of the table's row order."""
    text = {c.key: c.paper for c in CLAIMS}
    for key, pair in (("mead-plrs", f"{paper.TABLE4[('codetalker', 'voca')].plrs:.3f} -> "
                                    f"{paper.TABLE4[('codetalker', 'mead')].plrs:.3f}"),
                      ("loss-fdd", f"{paper.TABLE_S7[('selftalk', 'none')]:.3f} -> "
                                   f"{paper.TABLE_S7[('selftalk', 'ours')]:.3f}"),
                      ("baselines-sync", f"{paper.TABLE2[('faceformer', 'none')].mtm_ms:.1f}")):
        label = {"mead-plrs": "CodeTalker", "loss-fdd": "SelfTalk", "baselines-sync": "FaceFormer"}[key]
        assert f"{label} {pair}" in text[key], text[key]


def test_mtm_validity_prints_the_slope_not_a_change_and_an_mde_against_zero(tmp_path):
    """Claim 14 tests the slope's CI against [0.8, 1.2], but its evidence read '(change +0.94 [...]; MDE 0.0388;
    ...)': a slope called a change, beside the power to tell it from 0, which is not the test made."""
    pd.DataFrame([{"slope": 0.94, "ci_low": 0.91, "ci_high": 0.964, "intercept_ms": 5.7, "r": 0.998, "n_clips": 160}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    text = assess(tmp_path).set_index("key").loc["mtm-valid", "p3d"]
    assert text.startswith("slope of MTM vs injected offset (ms per ms): +0.94 [+0.91, +0.964] (r = 0.998, 160 GT")
    assert "MDE" not in text and "change" not in text
    assert text.endswith("the CI lies within [0.8, 1.2], reproduced.")


#: The critic pipelines' and the PLRS evaluator's runs of ``convergence.csv`` (``RunLayout``), pipelines 0 and 1.
_CRITIC_RUNS = [f"{root}{run}" for root in ("", "critic_seed1/")
                for run in ("stage1", "ours", "syncnet3d", "no2d", "loss_critics/ours", "loss_critics/syncnet3d",
                            "loss_critics/no2d")] + ["stage1_evaluator", "evaluator"]


def _critic_convergence(path: Path, capped: tuple[str, ...] = (), unfinished: tuple[str, ...] = ()) -> None:
    """``convergence.csv`` with every critic run stopped on its plateau except ``capped`` (at the 1500-step cap)
    and ``unfinished`` (interrupted at 300 steps), beside the talker runs of :func:`_critic_run_table`."""
    talkers = pd.read_csv(path / "config1_results.csv")["run"].unique() if (path / "config1_results.csv").exists() \
        else []
    rows = [{"run": r, "kind": "critic", "stop": "plateau", "steps": 1500 if r in capped else 300 if r in unfinished
             else 700, "converged": r not in capped and r not in unfinished, "finished": r not in unfinished}
            for r in _CRITIC_RUNS]
    rows += [{"run": f"talkers/{r}", "kind": "talker", "stop": "plateau", "steps": 900, "converged": True,
              "finished": True} for r in talkers]
    pd.DataFrame(rows).to_csv(path / "convergence.csv", index=False)


def _critic_run_table(path: Path) -> None:
    """FaceFormer's per-seed runs of Tables 2 and 3: seed 0 on critic pipeline 0, seed 1 on pipeline 1 (``_c1``)."""
    rows = [{"run": f"faceformer_{c}_voca" + ("" if c == "none" else "_k1" + ("_c1" if s else "")) + f"_seed{s}",
             "seed": s, "model": "faceformer", "critic": c, "train": "synth-voca", "test": "synth-voca",
             "split": "test", "metric": "lve", "level": "", "value": 1.0, "ci_low": 0.9, "ci_high": 1.1}
            for s in (0, 1) for c in ("none", "ours", "syncnet3d", "no2d")]
    pd.DataFrame(rows).to_csv(path / "config1_results.csv", index=False)


def test_a_case_resting_on_an_unconverged_critic_or_evaluator_is_inconclusive_and_names_the_run(tmp_path):
    """Only the talkers' convergence was checked: Table 3's critic ablation (and Table 2's loss) was judged on loss
    critics, and every PLRS on the evaluator, whatever their own training did, so an ablation critic stopped at its
    cap reproduced 'ours is a better loss than 3D SyncNet'. Such a case is now inconclusive and names the run: the
    loss critic of the talker's own pipeline, the critic it was fine-tuned from and ours' stage 1; for PLRS the
    evaluator and its stage 1."""
    _critic_run_table(tmp_path)
    _effects(tmp_path / "table3_critic_effects.csv", [
        (f"{m}: ours vs {name}", metric, ch, ch - 0.5 * abs(ch), ch + 0.5 * abs(ch), "")
        for m in claims.MODELS for name in ("3D SyncNet", "Ours w/o 2D prior")
        for metric, ch in (("MTM (ms)", -2.0), ("PLRS", 0.1), ("SLCC Δ", -0.1))])
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "MTM (ms)": (-2.0, -3.0, -1.0)})
    _critic_convergence(tmp_path)
    df = assess(tmp_path).set_index("key")
    assert (df.loc[["vs-syncnet", "loss-plrs", "loss-mtm"], "verdict"] == "reproduced").all()
    assert "training not converged" not in df.loc["vs-syncnet", "p3d"]

    # pipeline 1's 3D SyncNet loss critic hit its cap: FaceFormer's (seed 1 used it) ours-vs-SyncNet cases only
    _critic_convergence(tmp_path, capped=("critic_seed1/loss_critics/syncnet3d",))
    df = assess(tmp_path).set_index("key")
    row = df.loc["vs-syncnet"]
    assert row["verdict"] == "inconclusive" and "convergence" in row["sources"]
    assert ("FaceFormer MTM (ms): 1 -> -1 (change -2 [-3, -1]; MDE 1.43 beside the paper's change -3.4; not "
            "deciding: training not converged (`convergence.csv`): critic run critic_seed1/loss_critics/syncnet3d "
            "stopped at its 1500-step cap before its validation plateau), inconclusive") in row["p3d"]
    assert "FaceFormer MTM (ms)" in row["decided_by"] and "CodeTalker" not in row["decided_by"]
    assert "training not converged" not in df.loc["two-d-prior", "p3d"]   # the other ablation's critics converged
    assert df.loc["loss-mtm", "verdict"] == "reproduced"                  # Table 2 uses ours, not SyncNet

    # ours' stage 1 of pipeline 0, unfinished: every case with critic ours of FaceFormer seed 0 (Tables 2 and 3)
    _critic_convergence(tmp_path, unfinished=("stage1",))
    df = assess(tmp_path).set_index("key")
    assert df.loc["loss-mtm", "verdict"] == "inconclusive"
    assert "critic run stage1 unfinished at 300 steps" in df.loc["loss-mtm", "p3d"]
    assert "critic_seed1/stage1" not in df.loc["loss-mtm", "p3d"]

    # the PLRS evaluator hit its cap: every PLRS case, whatever the model; MTM is not the evaluator's
    _critic_convergence(tmp_path, capped=("evaluator",))
    df = assess(tmp_path).set_index("key")
    assert df.loc["loss-plrs", "verdict"] == "inconclusive" and df.loc["loss-mtm", "verdict"] == "reproduced"
    assert "SelfTalk PLRS" in df.loc["loss-plrs", "decided_by"] and "convergence" in df.loc["loss-plrs", "sources"]
    assert ("not deciding: training not converged (`convergence.csv`): PLRS evaluator run evaluator stopped at its "
            "1500-step cap before its validation plateau") in df.loc["loss-plrs", "p3d"]
    assert df.loc["vs-syncnet", "verdict"] == "inconclusive" and "SelfTalk PLRS" in \
        df.loc["vs-syncnet", "decided_by"] and "MTM" not in df.loc["vs-syncnet", "decided_by"]


def test_the_2d_prior_retrieval_and_the_properties_rest_on_pipeline_0s_critics(tmp_path):
    """The held-out retrieval of claim 6 (critics ours and w/o 2D prior, notebook 03) and the representation
    properties (critic ours and its stage 1, notebook 04) were judged whatever those critics' training did."""
    _retrieval_tables(tmp_path, 0.30, 0.10)
    pd.DataFrame([("ours", "phoneme clustering", True, "ours 47%")],
                 columns=["critic", "property", "shows", "evidence"]).to_csv(tmp_path / "representation_properties.csv",
                                                                           index=False)
    pd.DataFrame([{"critic": "ours", "peak offset": 0, "sim at 0": 0.4, "sim at 0 CI low": 0.38,
                   "sim at 0 CI high": 0.42, "mean sim at |offset| >= 5": 0.1, "sim at 0 minus far": 0.3,
                   "sim at 0 minus far CI low": 0.28, "sim at 0 minus far CI high": 0.32}]
                 ).to_csv(tmp_path / "fig5a_offset_summary.csv", index=False)
    pd.DataFrame({"offset": [-6, -5, 0, 5, 6], "mean": [0.1, 0.1, 0.5, 0.1, 0.1], "ci_low": [0.0] * 5,
                  "ci_high": [0.6] * 5, "vs_far": [0.0, 0.0, 0.4, 0.0, 0.0], "vs_far_ci_low": [0.0, 0.0, 0.3, 0.0, 0.0],
                  "vs_far_ci_high": [0.0, 0.0, 0.5, 0.0, 0.0]}).to_csv(tmp_path / "fig_s1a_offset_similarity.csv",
                                                                        index=False)
    _critic_convergence(tmp_path, capped=("critic_seed1/no2d", "critic_seed1/stage1"))  # other pipeline: no effect
    df = assess(tmp_path).set_index("key")
    assert "held-out speech->mesh R@1, ours minus w/o 2D prior" in df.loc["two-d-prior", "p3d"]
    assert "not deciding" not in df.loc["two-d-prior", "p3d"]
    assert (df.loc[["prop-clusters", "prop-temporal"], "verdict"] == "reproduced").all()

    _critic_convergence(tmp_path, capped=("no2d",))
    row = assess(tmp_path).set_index("key").loc["two-d-prior"]
    assert ("; the paper gives no number; n=1000 windows, chance 0.10%; CI from the two arms' Wilson CIs, independent "
            "arms; not deciding: training not converged (`convergence.csv`): critic run no2d stopped at its 1500-step "
            "cap before its validation plateau), inconclusive") in row["p3d"]
    assert "held-out" in row["decided_by"] and "convergence" in row["sources"]

    _critic_convergence(tmp_path, capped=("stage1",))
    df = assess(tmp_path).set_index("key")
    assert df.loc["prop-clusters", "verdict"] == "inconclusive" and "convergence" in df.loc["prop-clusters", "sources"]
    assert ("ours, phoneme clustering: ours 47%; not deciding: training not converged (`convergence.csv`): critic "
            "run stage1 stopped at its 1500-step cap before its validation plateau, inconclusive"
            ) in df.loc["prop-clusters", "p3d"]
    temporal = df.loc["prop-temporal"]
    assert temporal["verdict"] == "inconclusive" and temporal["p3d"].count("critic run stage1 stopped") == 2
    assert "critic run ours" not in temporal["p3d"]


def _cells_per_row(md: str) -> list[int]:
    """The cells of each markdown table row of ``md`` (split at every "|" not escaped as ``\\|``)."""
    import re

    return [len(re.split(r"(?<!\\)\|", line)) - 2 for line in md.splitlines() if line.startswith("|")]


def test_a_bar_in_a_label_or_cell_of_the_claims_reports_does_not_split_a_row(tmp_path, capsys):
    """The comparison's column labels (``--names``, or the folders' parent paths) and the verdict, item and status
    cells were written as is: ``p3d claims A --against B --names 'rig|1' rig2`` gave a header of 6 cells over a
    5-column delimiter row, so GitHub drew no table. Every text cell and label now goes through
    :func:`p3d.tables.markdown_cell` (a line break is a space too: a "\\r" in a claim split the row)."""
    from p3d.cli import main

    a, b = tmp_path / "a|1" / "tables", tmp_path / "b" / "tables"
    for folder in (a, b):
        folder.mkdir(parents=True)
        _effects(folder / "table2_loss_effects.csv", [(m, "PLRS", 0.04, 0.03, 0.05, "better") for m in claims.MODELS])
    assert main(["claims", str(a), "--against", str(b), "--names", "rig|1", "rig2"]) == 0
    out = capsys.readouterr().out
    assert "| # | claim (paper) | rig\\|1 | rig2 | same |" in out
    assert set(_cells_per_row(out)) == {5}
    assert main(["claims", str(a), "--against", str(b)]) == 0          # default labels: the parents' paths
    assert set(_cells_per_row(capsys.readouterr().out)) == {5}
    df = pd.DataFrame({"claim": ["a\rb"], "verdict": ["re|produced"], "decided_by": ["x|y"]})
    assert set(_cells_per_row(claims.report.verdict_table_markdown(df))) == {4}
    assert set(_cells_per_row(claims.report.summary_markdown(df, preset="p|q"))) == {3}
    df = pd.DataFrame({"item": ["Table|1"], "files": ["f|g.md"], "status": ["missing: f|g.md"], "reason": ["r\nr"]})
    assert set(_cells_per_row(claims.inventory_markdown(df))) == {4}


def _per_seed_rows(tmp_path, rows):
    common = {"model": "faceformer", "train": "synth-voca", "test": "synth-voca", "split": "test", "loss_weight": "",
              "n_clips": 8, "level": "", "ci_low": 0, "ci_high": 1}
    pd.DataFrame([{**common, "run": f"r{i}", **r} for i, r in enumerate(rows)]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)


def test_per_seed_changes_read_whole_set_rows_beside_level_rows(tmp_path):
    """Level-wise rows (MEAD's intensity levels) beside each seed's whole-test-set row: the change per seed is the
    whole set's (ours - none), not dropped as a repeated seed and not a level's."""
    rows = []
    for s, (before, after) in {0: (0.30, 0.40), 1: (0.32, 0.30)}.items():
        for critic, v in (("none", before), ("ours", after)):
            rows.append({"seed": s, "critic": critic, "metric": "plrs", "value": v})
            rows += [{"seed": s, "critic": critic, "metric": "plrs", "level": lv,
                      "value": 5.0 if critic == "ours" else 0.0} for lv in ("1", "3")]
    _per_seed_rows(tmp_path, rows)
    got = claims.seeds.seed_changes_by_seed(tmp_path)[("FaceFormer", "plrs")]
    assert got == pytest.approx({"0": 0.40 - 0.30, "1": 0.30 - 0.32})


def test_an_arm_with_two_runs_at_one_seed_gives_no_per_seed_change(tmp_path):
    """A seed run twice in one arm (e.g. a sensitivity run at another loss weight) leaves the pairing ambiguous:
    that comparison has no per-seed changes (seed_changes' rule), while the metric with one run per seed keeps its."""
    rows = [{"seed": s, "critic": c, "metric": m, "value": v} for s in (0, 1) for m in ("lve", "plrs")
            for c, v in (("none", 1.0), ("ours", 2.0))]
    rows.append({"seed": 0, "critic": "ours", "metric": "lve", "loss_weight": "1e-05", "value": 7.0})
    _per_seed_rows(tmp_path, rows)
    got = claims.seeds.seed_changes_by_seed(tmp_path)
    assert ("FaceFormer", "lve") not in got
    assert got[("FaceFormer", "plrs")] == pytest.approx({"0": 1.0, "1": 1.0})


def test_per_seed_magnitude_change_is_the_change_of_the_absolute_value(tmp_path):
    """With ``magnitude`` (|FDD|, the FDD claim's measure), a seed whose signed FDD goes from -3 to +1 has |FDD|
    going from 3 to 1: a change of -2, not |+1 - (-3)| = 4."""
    rows = [{"seed": 0, "critic": c, "metric": "fdd", "value": v} for c, v in (("none", -3.0), ("ours", 1.0))]
    rows += [{"seed": 1, "critic": c, "metric": "fdd", "value": v} for c, v in (("none", 2.0), ("ours", -4.0))]
    _per_seed_rows(tmp_path, rows)
    got = claims.seeds._run_table_seed_changes(tmp_path, "table2_loss_effects", magnitude=True)
    assert got[("FaceFormer", "fdd_abs")] == pytest.approx({"0": 1 - 3, "1": 4 - 2})
    assert claims.seeds._run_table_seed_changes(tmp_path, "table2_loss_effects")[("FaceFormer", "fdd")] == \
        pytest.approx({"0": 1 - (-3), "1": -4 - 2})


def test_an_effect_rows_seed_changes_prefer_the_per_seed_effect_table():
    """seed_changes_of: the per-seed effect table's own changes (under the effect-table label) when it has them,
    the run table's (under the run metric) only otherwise."""
    per_seed = {("FaceFormer", "LVE (1e-5 m²)"): [-1.0, -2.0], ("FaceFormer", "lve"): [3.0, 4.0]}
    assert claims.seeds.seed_changes_of(per_seed, "FaceFormer", "LVE (1e-5 m²)", "lve") == [-1.0, -2.0]
    assert claims.seeds.seed_changes_of(per_seed, "FaceFormer", "LVE (m)", "lve") == [3.0, 4.0]
    assert claims.seeds.seed_changes_of(per_seed, "FaceFormer", "LVE (m)", None) is None


def test_per_seed_changes_are_over_the_seeds_both_arms_have(tmp_path):
    """A seed trained in one arm only (a run still missing) has no paired change: left out, the others kept."""
    rows = [{"seed": s, "critic": c, "metric": "lve", "value": v + s} for s in (0, 1) for c, v in (("none", 1.0),
                                                                                                   ("ours", 3.0))]
    rows += [{"seed": 2, "critic": "ours", "metric": "lve", "value": 9.0},
             {"seed": 3, "critic": "none", "metric": "lve", "value": 9.0}]
    _per_seed_rows(tmp_path, rows)
    assert claims.seeds.seed_changes_by_seed(tmp_path)[("FaceFormer", "lve")] == pytest.approx({"0": 2.0, "1": 2.0})


def test_effect_table_labels_name_their_paper_metric():
    """Each effect-table metric label reads as its p3d.paper metric (the paper's effect and the direction shown
    beside a case come from it): SLCC Δ is slcc_delta, not another lower-is-better metric."""
    from p3d.claims.tables import _metric_key

    labels = {"MTM (ms)": "mtm_ms", "LVE (1e-5 m²)": "lve", "PLRS": "plrs", "PLRS-e": "plrs", "SLCC Δ": "slcc_delta",
              "FDD (1e-7 m)": "fdd"}
    assert {label: _metric_key(label) for label in labels} == labels
    with pytest.raises(KeyError):
        _metric_key("lip jerk")


def test_pooled_rows_are_the_all_seed_rows_or_every_row_of_a_table_without_them():
    """_pooled: the ``seed == "all"`` rows of a table run over several seeds; a table with a seed column but one
    seed per run (no 'all' rows) is read whole, not as empty (its claims were all 'not measured')."""
    from p3d.claims.tables import _pooled

    seeded = pd.DataFrame({"seed": ["0", "1", "all"], "value": [1.0, 2.0, 1.5]})
    assert _pooled(seeded)["value"].tolist() == [1.5]
    one_seed = pd.DataFrame({"seed": [0, 0], "metric": ["lve", "mtm_ms"], "value": [1.0, 2.0]})
    assert _pooled(one_seed)["value"].tolist() == [1.0, 2.0]
    assert _pooled(pd.DataFrame({"value": [3.0]}))["value"].tolist() == [3.0]


def test_claim_headings_stay_on_one_line(tmp_path):
    """A claim text with a line break was written into its ``## N. <claim>`` heading as it came, so the heading
    ended mid-claim and the rest became a paragraph; the heading collapses whitespace (the catalogue's own
    texts have none, so claims.md is unchanged for them)."""
    df = assess(tmp_path)
    before = claims_markdown(df, "cpu")
    df.loc[df.index[0], "claim"] = "Our loss lowers\nLVE  for every\r\nmodel"
    md = claims_markdown(df, "cpu")
    assert "\n## 1. Our loss lowers LVE for every model\n" in md
    assert md.split("\n## 2. ")[1] == before.split("\n## 2. ")[1]


def test_a_claim_whose_plrs_has_no_valid_referee_is_not_reproduced_on_its_other_metrics(tmp_path):
    """vs-syncnet covers MTM, PLRS and SLCC Δ: with no PLRS referee passing the battery its PLRS is not measured, so
    MTM and SLCC Δ reproduced on every model leave it inconclusive, not reproduced."""
    rows = []
    for m in claims.MODELS:
        comp = f"{m}: ours vs 3D SyncNet"
        rows += [(comp, "MTM (ms)", -5, -9, -1, ""), (comp, "SLCC Δ", -0.1, -0.2, -0.05, ""),
                 (comp, "PLRS", 0.04, 0.03, 0.05, "")]
    _effects(tmp_path / "table3_critic_effects.csv", rows)
    assert assess(tmp_path).set_index("key").loc["vs-syncnet", "verdict"] == "reproduced"  # the official PLRS decides
    _validity(tmp_path, [("official", "shuffled", -0.01, 0.02)])                          # and fails the battery
    row = assess(tmp_path).set_index("key").loc["vs-syncnet"]
    assert row["verdict"] == "inconclusive" and "PLRS (no valid referee)" in row["p3d"]


def test_the_per_model_kappa_sensitivity_is_shown_but_never_decides(tmp_path):
    """Table 2's claims are judged on the main protocol; the per-model-kappa run (``make figures EXTRA=1``) is appended
    as a sensitivity, not deciding, and only where it measured the claim's metric."""
    _effects(tmp_path / "table2_loss_effects.csv", [(m, metric, -1, -2, -0.5, "") for m in claims.MODELS
                                                    for metric in ("LVE (1e-5 m²)", "MTM (ms)")])
    _effects(tmp_path / "table2_loss_effects_per_model_kappa.csv",
             [(m, "LVE (1e-5 m²)", 1, 0.5, 2, "") for m in claims.MODELS])
    df = assess(tmp_path).set_index("key")
    assert df.loc["loss-lve", "verdict"] == "reproduced"                          # the main protocol's, not contradicted
    assert "(not deciding)" in df.loc["loss-lve", "p3d"] and "verdict contradicted" in df.loc["loss-lve", "p3d"]
    assert "table2_loss_effects_per_model_kappa" in df.loc["loss-lve", "sources"]
    assert df.loc["loss-mtm", "verdict"] == "reproduced"                          # no MTM rows in the sensitivity run
    assert "Sensitivity" not in df.loc["loss-mtm", "p3d"] and "kappa" not in df.loc["loss-mtm", "sources"]


def test_mtm_slope_whose_ci_lies_above_the_band_is_contradicted(tmp_path):
    """MTM over-stating the offset (slope CI entirely above 1.2) does not measure its degree either."""
    pd.DataFrame([{"slope": 1.6, "ci_low": 1.4, "ci_high": 1.8, "intercept_ms": 0.0, "r": 0.9, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["mtm-valid"]
    assert row["verdict"] == "contradicted" and "lies outside [0.8, 1.2]" in row["p3d"]


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval (Wilson 1927) from its formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_two_d_prior_retrieval_ci_combines_the_two_arms_wilson_intervals(tmp_path):
    """Held-out R@1, ours minus w/o 2D prior: the difference's CI is +- the root sum of squares of the two arms' Wilson
    half-widths over the table's windows (independent arms)."""
    n = 400
    _retrieval_tables(tmp_path, 0.30, 0.22, windows=n)
    halves = [(hi - lo) / 2 for lo, hi in (_wilson_by_hand(120, n), _wilson_by_hand(88, n))]
    half = float(np.hypot(*halves))
    row = assess(tmp_path).set_index("key").loc["two-d-prior"]
    assert f"(change +0.08 [{0.08 - half:+.3g}, {0.08 + half:+.3g}]" in row["p3d"]
    assert 0.08 - half > 0 and "), reproduced" in row["p3d"]


def _fdd_rows(values: dict[tuple[str, str], float], half: float = 0.1e-7, split: str = "test") -> list[dict]:
    return [{"run": f"{m}_{c}", "model": m, "critic": c, "train": "synth-voca", "test": "synth-voca", "split": split,
             "loss_weight": "", "n_clips": 8, "metric": "fdd", "level": "", "value": v, "ci_low": v - half,
             "ci_high": v + half} for (m, c), v in values.items()]


def test_fdd_claim_compares_magnitudes_on_the_test_split_over_all_three_models(tmp_path):
    """Claim loss-fdd reads |FDD| (FDD is signed: a negative value is as far from the GT's dynamics as a positive
    one) on the test split only (a val row of the same arm is not a second row of the case), and a claim over three
    models measured for fewer is at best inconclusive."""
    both = {(m, c): v for m in paper.MODELS for c, v in (("none", -3e-7), ("ours", 1e-7))}
    rows = _fdd_rows(both) + _fdd_rows({k: 9e-7 for k in both}, split="val")
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "reproduced" and "3 -> 1 (change -2 [" in r["p3d"]   # |-3| -> |1|: the magnitude falls
    one = _fdd_rows({("faceformer", c): v for c, v in (("none", -3e-7), ("ours", 1e-7))})
    pd.DataFrame(one).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "inconclusive" and "Not measured: CodeTalker, SelfTalk" in r["p3d"]


def test_training_cost_without_an_interval_needs_every_ratio_above_one(tmp_path):
    """One round, no interval: a ratio of exactly 1 (no measured overhead) is timing noise, not a reproduced cost."""
    rows = []
    for model, ratio in (("FaceFormer", 1.5), ("CodeTalker", 1.0), ("SelfTalk", 1.4)):
        rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800},
                 {"Method": "+ Ours rep. (cached)", "x without loss": ratio, "peak mem (MiB)": 900}]
    pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["cost"]
    assert row["verdict"] == "inconclusive" and "No interval" in row["p3d"]


@pytest.mark.parametrize("column, value", [("change", "abc"), ("change CI low", "[0.1")])
def test_an_effect_table_with_unreadable_numbers_is_one_clear_error(tmp_path, column, value):
    """A cell that is not a number (a hand-edited or foreign table) is an InputError naming the table, not a
    traceback."""
    _effects(tmp_path / "table2_loss_effects.csv", [(m, "LVE (1e-5 m²)", -1, -2, -0.5, "") for m in claims.MODELS])
    df = pd.read_csv(tmp_path / "table2_loss_effects.csv")
    df[column] = df[column].astype(object)
    df.loc[0, column] = value
    df.to_csv(tmp_path / "table2_loss_effects.csv", index=False)
    with pytest.raises(InputError, match="table2_loss_effects.csv not in the layout"):
        assess(tmp_path)


def test_claims_only_numbers_rows_as_the_whole_report_and_accepts_the_last_claim(tmp_path, capsys):
    """``--only``: the claims asked for, each once, in the catalogue's order and numbered as in results/claims.md
    (the last claim's number included)."""
    from p3d.cli import main

    _effects(tmp_path / "table2_loss_effects.csv", [(m, "PLRS", 0.04, 0.03, 0.05, "better") for m in claims.MODELS])
    last = len(CLAIMS)
    assert main(["claims", str(tmp_path), "--only", str(last), "3", "3"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [ln.split(" | ")[:2] for ln in rows] == [["| 3", _cell(CLAIMS[2])], [f"| {last}", _cell(CLAIMS[-1])]]


def _cell(claim) -> str:
    from p3d.tables import markdown_cell

    return markdown_cell(claim.text)


def test_claims_comparison_labels_default_to_the_folders_parents(tmp_path, capsys):
    """Module docstring of p3d.claims.cli: the two folders are labelled by their parent folders' paths
    (``results/tables`` -> ``results``), else by the paths as given (two folders side by side)."""
    from p3d.cli import main

    a, b = tmp_path / "run1" / "tables", tmp_path / "run2" / "tables"
    for folder in (a, b):
        folder.mkdir(parents=True)
        _effects(folder / "table2_loss_effects.csv", [(m, "PLRS", 0.04, 0.03, 0.05, "better")
                                                      for m in claims.MODELS])
    assert main(["claims", str(a), "--against", str(b)]) == 0
    out = capsys.readouterr().out
    assert f"({a.resolve().parent} vs {b.resolve().parent})" in out
    assert f"| # | claim (paper) | {a.resolve().parent} | {b.resolve().parent} | same |" in out
    side = tmp_path / "run1" / "other"
    side.mkdir()
    _effects(side / "table2_loss_effects.csv", [(m, "PLRS", 0.04, 0.03, 0.05, "better") for m in claims.MODELS])
    assert main(["claims", str(a), "--against", str(side)]) == 0
    assert f"({a} vs {side})" in capsys.readouterr().out


def test_update_readme_without_the_end_marker_changes_nothing(tmp_path):
    """update_readme: False, the file untouched, when a marker is absent, the end marker as well as the start."""
    readme = tmp_path / "README.md"
    text = f"intro\n{claims.README_START}\nold, never closed\n"
    readme.write_text(text)
    assert not claims.update_readme(readme, "| new |") and readme.read_text() == text


def test_a_claim_measured_in_one_run_only_is_a_difference_not_measured_in_neither(tmp_path):
    """measured_in_neither: ``not measured`` on both sides only; a claim run a did not measure and run b did is a
    different verdict, in the first line's count and in its row."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _effects(a / "table2_loss_effects.csv", [(m, "PLRS", 0.04, 0.03, 0.05, "better") for m in claims.MODELS])
    _effects(b / "table2_loss_effects.csv", [(m, "MTM (ms)", -5, -9, -1, "better") for m in claims.MODELS])
    df = claims.compare_verdicts(a, b, names=("a", "b"))
    by_key = df.set_index("key")
    assert by_key.loc["loss-mtm", "verdict a"] == "not measured" != by_key.loc["loss-mtm", "verdict b"]
    neither = claims.report.measured_in_neither(df, ("a", "b"))
    expected = (df["verdict a"] == "not measured") & (df["verdict b"] == "not measured")
    assert neither.tolist() == expected.tolist()
    md = claims.comparison_markdown(df, ("a", "b"))
    assert md.splitlines()[0].endswith(f"; {int(expected.sum())} measured in neither; 2 a different verdict.")
    row = next(ln for ln in md.splitlines() if ln.startswith(f"| {by_key.index.get_loc('loss-mtm') + 1} |"))
    assert row.endswith("| not measured | reproduced | **no** |")


def test_a_case_missing_an_interval_end_is_inconclusive_with_no_mde():
    """A case whose CI lacks an end (None, as well as NaN) is inconclusive whatever the other end says, with no MDE
    (n/a in its text): never a verdict from one end, nor a crash."""
    for low, high in ((0.5, None), (None, 1.5), (0.5, float("nan"))):
        case = claims.Case("x", 1.0, low, high, want=1)
        assert case.verdict == "inconclusive" and np.isnan(case.mde)
        assert "MDE n/a" in case.text() and case.text().endswith(", inconclusive")


def test_per_seed_changes_are_listed_in_numeric_seed_order(tmp_path):
    """seed_changes lists each comparison's per-seed changes in numeric seed order (seed 10 after seed 2), not in the
    seeds' text order."""
    rows = [{"seed": s, "critic": c, "metric": "lve", "value": v} for s, d in ((10, 3.0), (2, 1.0), (1, 2.0))
            for c, v in (("none", 0.0), ("ours", d))]
    _per_seed_rows(tmp_path, rows)
    assert claims.seeds.seed_changes(tmp_path)[("FaceFormer", "lve")] == pytest.approx([2.0, 1.0, 3.0])


def test_the_calibrated_plrs_case_counts_the_seeds_of_the_calibrated_plrs(tmp_path):
    """A PLRS-c case's per-seed count comes from the run table's plrs_calibrated rows, not from the official plrs
    rows (here the official PLRS rises with the loss at both seeds, the calibrated one falls at both); the official
    referee, deciding, is not shown a second time beside itself."""
    rows = [{"seed": s, "critic": c, "metric": m, "value": v} for s in (0, 1)
            for m, d in (("plrs", 0.1), ("plrs_calibrated", -0.1)) for c, v in (("none", 0.5), ("ours", 0.5 + d))]
    _per_seed_rows(tmp_path, rows)
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05), "PLRS-c": (0.04, 0.03, 0.05)})
    text = assess(tmp_path).set_index("key").loc["loss-plrs", "p3d"]
    official, calibrated = text.split("PLRS-c (shown, not deciding):")
    assert "FaceFormer PLRS:" in official and "per seed: 2 of 2 changes share its sign" in official
    assert "FaceFormer PLRS-c:" in calibrated and "per seed: 0 of 2 changes share its sign" in calibrated
    assert "Official PLRS (shown" not in text and text.count("FaceFormer PLRS:") == 1


def test_the_critic_comparison_is_judged_on_slcc_delta_too_lower_being_better(tmp_path):
    """Table 3's claims cover MTM, PLRS and SLCC Δ; SLCC Δ (the gap to the ground truth's SLCC) is better lower, so a
    clear rise contradicts 'ours is the better loss' even where MTM and PLRS agree with it, and a clear fall
    reproduces it with them."""
    for slcc, verdict in (((0.1, 0.05, 0.15), "contradicted"), ((-0.1, -0.15, -0.05), "reproduced")):
        _effects(tmp_path / "table3_critic_effects.csv", [
            (f"{m}: ours vs 3D SyncNet", metric, *ci, "") for m in claims.MODELS
            for metric, ci in (("MTM (ms)", (-2.0, -3.0, -1.0)), ("PLRS", (0.04, 0.03, 0.05)), ("SLCC Δ", slcc))])
        row = assess(tmp_path).set_index("key").loc["vs-syncnet"]
        assert row["verdict"] == verdict and "FaceFormer SLCC Δ" in row["p3d"]


def test_fdd_claim_reads_the_synth_voca_arms_and_a_seed_count_only_where_both_arms_agree(tmp_path):
    """Claim loss-fdd is Table 2's (trained on synth-voca): the same arms trained on other corpora are not second
    rows of its cases; a case records a seed count only where both arms' rows give the same one."""
    both = {(m, c): v for m in paper.MODELS for c, v in (("none", -3e-7), ("ours", 1e-7))}
    other = [{**r, "train": "synth-voca+synth-mead", "value": 9e-7} for r in _fdd_rows(both)]
    seeds = {("faceformer", "none"): 3, ("faceformer", "ours"): 5, ("codetalker", "none"): 3,
             ("codetalker", "ours"): 3, ("selftalk", "none"): 5, ("selftalk", "ours"): 5}
    rows = [{**r, "n_seeds": seeds[(r["model"], r["critic"])]} for r in _fdd_rows(both) + other]
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "reproduced" and r["p3d"].count("3 -> 1 (change -2 [") == 3
    got = {b.label.split()[0]: b.n_seeds for b in r["cases"]}
    assert got == {"FaceFormer": None, "CodeTalker": 3, "SelfTalk": 5}


def test_plrs_people_proxy_agrees_only_when_every_scopes_paired_difference_excludes_zero(tmp_path):
    """The oracle proxy (shown beside the untestable claim) agrees with it only when PLRS minus LVE is above 0 in every
    scope the findings give; one scope whose interval includes 0 does not separate them."""
    pd.DataFrame([("plrs", "pooled", 0.51, 0.47, 0.55, 100, 10), ("lve", "pooled", 0.44, 0.39, 0.49, 100, 10)],
                 columns=["metric", "scope", "rho", "ci_low", "ci_high", "n_sequences", "n_clips"]
                 ).to_csv(tmp_path / "metric_validation_spearman.csv", index=False)
    pd.DataFrame({"finding": [f"PLRS minus LVE, rho with the oracle ({scope}, paired clip bootstrap): {ci}."
                              for scope, ci in (("pooled", "+0.07 [+0.01, +0.13]"),
                                                ("within speakers", "+0.04 [-0.02, +0.10]"))]}
                 ).to_csv(tmp_path / "metric_validation_findings.csv", index=False)
    text = assess(tmp_path).set_index("key").loc["plrs-people", "p3d"]
    assert "within speakers +0.04 [-0.02, +0.10]" in text and "does not separate" in text


def test_two_d_prior_retrieval_counts_the_hits_of_a_rate_that_is_not_exact_in_binary(tmp_path):
    """The Wilson interval of a held-out R@1 counts its hits as the rate times the windows rounded (0.29 of 100
    windows is 29 hits, though 0.29 * 100 is 28.999... in floating point), not truncated."""
    _retrieval_tables(tmp_path, 0.29, 0.20, windows=100)
    half = float(np.hypot(*[(hi - lo) / 2 for lo, hi in (_wilson_by_hand(29, 100), _wilson_by_hand(20, 100))]))
    text = assess(tmp_path).set_index("key").loc["two-d-prior", "p3d"]
    assert f"(change +0.09 [{0.09 - half:+.3g}, {0.09 + half:+.3g}]" in text


def test_a_valid_referee_without_a_models_rows_leaves_the_claim_inconclusive(tmp_path):
    """A lip-readability claim over three models whose deciding referee has PLRS rows for one is at best inconclusive
    and names the rows not measured; two valid referees that agree on 'inconclusive' do not 'disagree'."""
    _effects(tmp_path / "table2_loss_effects.csv", [("FaceFormer", "PLRS", 0.04, 0.03, 0.05, "better")])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive" and "Not measured: CodeTalker PLRS, SelfTalk PLRS" in row["p3d"]
    _plrs_effects(tmp_path, {"PLRS": (0.01, -0.01, 0.03), "PLRS [lipreader]": (0.01, -0.02, 0.04)})
    _validity(tmp_path, [("official", "shuffled", -0.2, -0.1), ("lipreader", "shuffled", -0.2, -0.1)])
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive" and "disagree" not in row["decided_by"]
    assert "referee official: inconclusive; referee lipreader: inconclusive" in row["decided_by"]


def test_a_reproduced_claim_is_decided_by_every_one_of_its_cases(tmp_path):
    """'Decided by' of a reproduced claim names every case (each had to exclude 0 in the paper's direction)."""
    _plrs_effects(tmp_path, {"LVE (1e-5 m²)": (-1.0, -2.0, -0.5)})
    row = assess(tmp_path).set_index("key").loc["loss-lve"]
    assert row["verdict"] == "reproduced"
    assert row["decided_by"] == ", ".join(f"{m} LVE (1e-5 m²)" for m in claims.MODELS)


def test_training_cost_claim_reads_the_cached_rows_not_the_uncached_ones(tmp_path):
    """Claim cost is judged on '+ Ours rep. (cached)' rows; a '(no cache)' row beside them, measured once without an
    interval, neither joins them nor turns the rule into the one-round rule."""
    rows = []
    for model in ("FaceFormer", "CodeTalker", "SelfTalk"):
        rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800,
                  "x without loss: 95 % CI over rounds": "–"},
                 {"Method": "+ Ours rep. (cached)", "x without loss": 1.5, "peak mem (MiB)": 900,
                  "x without loss: 95 % CI over rounds": "[1.30, 1.70]"},
                 {"Method": "+ Ours rep. (no cache)", "x without loss": 3.0, "peak mem (MiB)": 1200,
                  "x without loss: 95 % CI over rounds": "–"}]
    pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
    row = assess(tmp_path).set_index("key").loc["cost"]
    assert row["verdict"] == "reproduced" and "95 % CIs over measurement rounds" in row["p3d"]
    assert "FaceFormer no cache 3.00x (+400 MiB peak)" in row["p3d"]


def test_slcc_delta_cases_count_the_seeds_of_the_run_tables_slcc_delta(tmp_path):
    """A Table-2 SLCC Δ case's per-seed count comes from the run table's slcc_delta rows."""
    rows = [{"seed": s, "critic": c, "metric": "slcc_delta", "value": v} for s in (0, 1, 2)
            for c, v in (("none", 0.3), ("ours", 0.3 - 0.1 * (s < 2)))]
    _per_seed_rows(tmp_path, rows)
    _plrs_effects(tmp_path, {"SLCC Δ": (-0.05, -0.1, -0.01)})
    text = assess(tmp_path).set_index("key").loc["loss-slcc", "p3d"]
    assert "FaceFormer SLCC Δ:" in text and "per seed: 2 of 3 changes share its sign" in text


def test_fdd_claim_with_one_arm_of_a_model_missing_says_that_model_was_not_measured(tmp_path):
    """A model whose with-loss FDD row is missing (its without-loss row present) is not measured, not an error; the
    claim over three models is then at best inconclusive."""
    rows = _fdd_rows({(m, c): v for m in paper.MODELS for c, v in (("none", -3e-7), ("ours", 1e-7))
                      if (m, c) != ("selftalk", "ours")})
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    r = assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert r["verdict"] == "inconclusive" and "Not measured: SelfTalk" in r["p3d"]


def test_an_effect_claim_capped_by_an_unconverged_evaluator_lists_convergence_among_its_tables(tmp_path):
    """convergence.csv decided that the PLRS cases cannot decide (the evaluator stopped at its cap): the claim lists it
    among its tables, also when the tables give no training steps of the talkers."""
    _plrs_effects(tmp_path, {"PLRS": (0.04, 0.03, 0.05)})
    _critic_convergence(tmp_path, capped=("evaluator",))
    row = assess(tmp_path).set_index("key").loc["loss-plrs"]
    assert row["verdict"] == "inconclusive" and "convergence" in row["sources"].split(", ")


def test_interval_rules_at_their_boundaries(tmp_path):
    """Each rule's ends as its docstring states them: the MTM slope's CI within the closed band [0.8, 1.2] is
    reproduced and one touching the band from outside is not 'entirely outside' (inconclusive); the baseline's MTM CI
    starting at the band's top is not entirely above it (inconclusive); a time ratio's CI with an end at 1 does not
    exclude 1 (inconclusive either way)."""
    def slope(lo, hi):
        pd.DataFrame([{"slope": (lo + hi) / 2, "ci_low": lo, "ci_high": hi, "intercept_ms": 6.0, "r": 0.9,
                       "n_clips": 48}]).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
        return assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"]

    assert slope(0.8, 1.2) == "reproduced"
    assert slope(0.5, 0.8) == "inconclusive" and slope(1.2, 1.5) == "inconclusive"
    pd.DataFrame([{"run": m, "model": m, "critic": "none", "train": "synth-voca", "test": "synth-voca",
                   "split": "test", "loss_weight": "", "n_clips": 8, "metric": "mtm_ms", "level": "",
                   "value": 65.0, "ci_low": 60.0, "ci_high": 70.0} for m in paper.MODELS]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["baselines-sync", "verdict"] == "inconclusive"
    for ci in ("[1.00, 1.20]", "[0.80, 1.00]"):
        rows = []
        for model in ("FaceFormer", "CodeTalker", "SelfTalk"):
            rows += [{"Method": model, "x without loss": 1.0, "peak mem (MiB)": 800,
                      "x without loss: 95 % CI over rounds": "–"},
                     {"Method": "+ Ours rep. (cached)", "x without loss": 1.1, "peak mem (MiB)": 900,
                      "x without loss: 95 % CI over rounds": ci}]
        pd.DataFrame(rows).to_csv(tmp_path / "table_s8_training_cost.csv", index=False)
        assert assess(tmp_path).set_index("key").loc["cost", "verdict"] == "inconclusive", ci


def test_per_seed_changes_read_whole_set_rows_labelled_all(tmp_path):
    """A run table whose whole-test-set rows say level 'all' (beside level-wise rows) gives each seed's change from
    them, as it does from rows with an empty level."""
    rows = []
    for s, (before, after) in {0: (0.30, 0.40), 1: (0.32, 0.30)}.items():
        for critic, v in (("none", before), ("ours", after)):
            rows.append({"seed": s, "critic": critic, "metric": "plrs", "level": "all", "value": v})
            rows.append({"seed": s, "critic": critic, "metric": "plrs", "level": "3", "value": 5.0})
    _per_seed_rows(tmp_path, rows)
    got = claims.seeds.seed_changes_by_seed(tmp_path)[("FaceFormer", "plrs")]
    assert got == pytest.approx({"0": 0.40 - 0.30, "1": 0.30 - 0.32})
