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


def test_compact_png_bounds_size_and_keeps_the_picture(tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from phenolapse.report.html import MAX_FIGURE_PX, compact_png

    fig, ax = plt.subplots(figsize=(12, 4))
    for k in range(6):
        ax.plot(np.linspace(0, 1, 200), np.sin(np.linspace(0, 9, 200) + k), label=f"line {k}")
    ax.legend()
    png = tmp_path / "wide.png"
    fig.savefig(png, dpi=200, transparent=True)
    plt.close(fig)
    raw = png.read_bytes()
    small = compact_png(raw)
    assert len(small) < len(raw) / 2
    with Image.open(io.BytesIO(small)) as im:
        assert max(im.size) == MAX_FIGURE_PX
        rgb = np.asarray(im.convert("RGB"))
    assert (rgb[0, 0] == 255).all()  # transparent background put on white, not black
    assert compact_png(b"not a png") == b"not a png"


def test_links_are_escaped(tmp_path: Path) -> None:
    from phenolapse.report.html import Links

    path = write_html(
        [Section("Drugs", [Links([("report/x-1.html", "<b>AZD-1.1</b>")], "per drug")])],
        tmp_path / "r.html",
        title="t",
        back=("../report.html", "back"),
    )
    text = path.read_text()
    assert '<a href="report/x-1.html">&lt;b&gt;AZD-1.1&lt;/b&gt;</a>' in text
    assert '<a href="../report.html">back</a>' in text
