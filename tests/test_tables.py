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
