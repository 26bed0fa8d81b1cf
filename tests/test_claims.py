"""p3d.claims: verdict rules on fixture tables, the report, and the inventory of the paper's items."""
from pathlib import Path

import pandas as pd
import pytest

from p3d import claims
from p3d.claims import CLAIMS, INVENTORY, VERDICTS, Assessment, assess, claims_markdown, inventory


def _effects(path: Path, rows: list[tuple[str, str, float, float, float, str]]) -> None:
    pd.DataFrame([{"comparison": c, "metric": m, "without": 1.0, "with": 1.0 + ch, "change": ch,
                   "change CI low": lo, "change CI high": hi, "verdict": v} for c, m, ch, lo, hi, v in rows]
                 ).to_csv(path, index=False)


def test_loss_claims_follow_the_effect_verdicts(tmp_path):
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
    assert df.loc["loss-plrs", "verdict"] == "reproduced"
    assert df.loc["loss-mtm", "verdict"] == "partly reproduced"
    assert df.loc["loss-lve", "verdict"] == "not reproduced"          # one model worse
    assert df.loc["loss-slcc", "verdict"] == "not measured"           # no SLCC rows
    assert "0.03, 0.05" in df.loc["loss-plrs", "p3d"]
    assert df.loc["mead-plrs", "verdict"] == "not measured"           # table4_effects missing
    assert "table4_effects" in df.loc["mead-plrs", "p3d"]


def test_mead_plrs_wants_worse(tmp_path):
    _effects(tmp_path / "table4_effects.csv", [(f"{m}: + synth-mead", "PLRS", -0.1, -0.2, -0.05, "worse")
                                               for m in claims.MODELS])
    df = assess(tmp_path).set_index("key")
    assert df.loc["mead-plrs", "verdict"] == "reproduced"
    assert df.loc["mead-slcc", "verdict"] == "not measured"


def test_property_claim_is_partial_when_the_raw_control_shows_it(tmp_path):
    rows = [("ours", "phoneme clustering", True, "ours 47%"), ("raw inputs (control)", "phoneme clustering", True, "raw 55%"),
            ("ours", "intensity direction", True, "ordered"), ("raw inputs (control)", "intensity direction", False, "not")]
    pd.DataFrame(rows, columns=["critic", "property", "shows", "evidence"]).to_csv(
        tmp_path / "representation_properties.csv", index=False)
    df = assess(tmp_path).set_index("key")
    assert df.loc["prop-clusters", "verdict"] == "partly reproduced"
    assert "raw 55%" in df.loc["prop-clusters", "p3d"]
    assert df.loc["prop-intensity", "verdict"] == "reproduced"


def test_mtm_validity_rule(tmp_path):
    pd.DataFrame([{"slope": 0.93, "ci_low": 0.89, "ci_high": 0.97, "intercept_ms": 6.0, "r": 0.99, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"] == "reproduced"
    pd.DataFrame([{"slope": 0.3, "ci_low": 0.1, "ci_high": 0.5, "intercept_ms": 6.0, "r": 0.5, "n_clips": 48}]
                 ).to_csv(tmp_path / "fig_s5_slope.csv", index=False)
    assert assess(tmp_path).set_index("key").loc["mtm-valid", "verdict"] == "not reproduced"


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
    assert "| 1 |" in md and f"| {len(CLAIMS)} |" in md


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
