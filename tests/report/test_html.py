"""The self-contained HTML report: escaping and embedded figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from phenolapse.report.html import Figure, Section, Table, Text, write_html


def test_user_strings_are_escaped_and_figures_embedded(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = tmp_path / "f.png"
    fig.savefig(png)
    plt.close(fig)
    evil = "<script>alert(1)</script>"
    sections = [
        Section(
            evil,
            [
                Text(f"drug {evil}"),
                Table(pd.DataFrame({"drug": [evil], "x": [1.23456]})),
                Figure(png, evil),
            ],
        )
    ]
    out = write_html(sections, tmp_path / "report.html", title=f"screen {evil}")
    text = out.read_text()
    assert "<script>" not in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    assert text.count('src="data:image/png;base64,') == 1
    assert "1.23" in text and "1.23456" not in text
    assert not list(tmp_path.glob(".report.html.*"))


def test_missing_figure_is_reported_not_fatal(tmp_path: Path) -> None:
    out = write_html(
        [Section("A", [Figure(tmp_path / "nope.png", "x")])], tmp_path / "r.html", title="t"
    )
    assert "figure missing" in out.read_text()
