"""scripts/check_readme_numbers.py: numbers in README prose against the result tables it names."""
from pathlib import Path

import pandas as pd

from p3d.paths import project_root
from script_module import load_script


def _module():
    return load_script("check_readme_numbers")


def test_numbers_are_matched_at_their_precision_in_the_tables_a_unit_names(tmp_path):
    check = _module().check
    tables = tmp_path / "tables"
    tables.mkdir()
    pd.DataFrame({"critic": ["ours", "evaluator"], "R@1": [0.04216, 0.05249]}).to_csv(tables / "retrieval_a.csv",
                                                                                     index=False)
    (tables / "retrieval_a.md").write_text("| critic | R@1 |\n|---|---|\n| ours | 0.04216 |\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "Intro 2.5 with no table.\n\n"
        "Retrieval (`results/tables/retrieval_*.md`): ours 0.042 and 4.2 %, evaluator 5.3 % and 0.0525.\n\n"
        "The table (`retrieval_a.md`):\n\n| critic | R@1 |\n|---|---|\n| ours | 4.2 % |\n| stale | 9.9 % |\n\n"
        "<!-- results:start (generated) -->\n7.7 never checked\n<!-- results:end -->\n\n"
        "```\ncode 8.8\n```\n")
    seeds = tmp_path / "results" / "table3_seeds" / "codetalker"
    seeds.mkdir(parents=True)
    pd.DataFrame({"metric": ["PLRS-e"], "change": [0.00412]}).to_csv(seeds / "effects.csv", index=False)
    readme.write_text(readme.read_text() + "\nSeeds (`results/table3_seeds/codetalker/effects.csv`): +0.0041, 0.0077.\n")
    report = check(readme, tables)
    by_head = {head.split()[0]: missing for head, _, missing in report}
    assert by_head["Seeds"] == ["0.0077"]  # a table named by its path from the root; a full stop ends a number
    assert by_head["Intro"] == ["2.5"]                         # numbers with no table named are listed
    assert by_head["Retrieval"] == ["5.3"]                     # 0.05249 is 5.2 %, not 5.3 %
    assert by_head["|"] == ["9.9"]                             # a markdown table uses its introduction's tables
    assert not any("7.7" in m or "8.8" in m for _, _, m in report)   # generated blocks and code are skipped


def test_the_committed_readme_quotes_its_representation_numbers_from_the_tables():
    """The representation section's numbers are found in the tables it names (the check that found 5.3 % for
    the evaluator's R@1 of 5.25 %)."""
    mod = _module()
    root = project_root()
    report = mod.check(root / "README.md", root / "results" / "tables", root / "results" / "claims.md")
    heads = " ".join(head for head, named, _ in report if named)
    assert "critic (Table 3)" not in heads and "Temporal sensitivity" not in heads
