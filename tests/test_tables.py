import pandas as pd

from p3d.tables import to_markdown, write_table


def test_markdown_and_csv(tmp_path):
    df = pd.DataFrame({"a": ["x|y", "z"], "b": [1.23456, float("nan")], "c": [1, 2]})
    md = to_markdown(df)
    assert md.splitlines()[0] == "| a | b | c |"
    assert "x\\|y" in md and "1.2346" in md and "–" in md
    csv, mdp = write_table(df, tmp_path / "t", title="T", note="n")
    assert pd.read_csv(csv).shape == (2, 3)
    assert mdp.read_text().startswith("### T")


def test_a_name_with_a_dot_keeps_it(tmp_path):
    """A run's name holds its loss weight (w1.90825e-07): two runs' tables went to one file (with_suffix cut the
    name at its last dot), the last one silently replacing the other."""
    df = pd.DataFrame({"a": [1]})
    first = write_table(df, tmp_path / "talker_ours_w1.90825e-07_seed0")
    second = write_table(df.assign(a=2), tmp_path / "talker_ours_w1.90825e-07_seed1")
    assert [p.name for p in first] == ["talker_ours_w1.90825e-07_seed0.csv", "talker_ours_w1.90825e-07_seed0.md"]
    assert len({*first, *second}) == 4 and pd.read_csv(first[0])["a"].tolist() == [1]
    assert write_table(df, tmp_path / "t.csv") == (tmp_path / "t.csv", tmp_path / "t.md")


def test_missing_values_of_nullable_columns_are_a_dash():
    """A nullable Int64 / Float64 column's missing value printed "<NA>" (an HTML tag GitHub hides), a missing
    timestamp "NaT": every missing value is "–", as NaN and None were."""
    df = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": pd.array([0.5, None], dtype="Float64"),
                       "c": [pd.NaT, pd.Timestamp("2026-01-01")]})
    rows = to_markdown(df).splitlines()[2:]
    assert rows == ["| 1 | 0.5 | – |", "| – | – | 2026-01-01 00:00:00 |"]


def test_a_bar_or_line_break_in_a_column_name_or_cell_does_not_split_the_row():
    """A "|" in a column name was written as is: the header row of results/tables/fig5a_offset_summary.md
    ("mean sim at |offset| >= 5") had 7 cells over a 6-column delimiter row, so GitHub drew no table. Column
    names are escaped as cells were (``\\|``); a line break in either is a space."""
    import re

    df = pd.DataFrame({"mean sim at |offset| >= 5": [0.5], "a\nb": ["x|y\nz"]})
    lines = to_markdown(df).splitlines()
    assert lines[0] == "| mean sim at \\|offset\\| >= 5 | a b |" and lines[2] == "| 0.5 | x\\|y z |"
    assert len(lines) == 3 and all(len(re.split(r"(?<!\\)\|", line)) == 4 for line in lines)
