"""Temporal figures: drawn from hand-built tables, saved as PNG + SVG, with the right content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from phenolapse.report.temporal_figures import (
    EFFECT_COLORS,
    plot_cluster_panels,
    plot_drug_curves,
    plot_effect_heatmap,
    plot_image_strip,
    save_figure,
)
from phenolapse.temporal.series import SeriesSet


def test_cluster_panels(tmp_path: Path) -> None:
    t = np.tile(np.arange(6.0), (4, 1))
    values = np.array([np.linspace(0, 1, 6)] * 2 + [np.zeros(6)] * 2)
    keys = pd.DataFrame({"Metadata_drug": list("abcd")})
    s = SeriesSet(keys=keys, values=values, raw=values, relative=values, times=t)
    fig = plot_cluster_panels(s, np.array([0, 0, 1, 1]), np.stack([values[0], values[2]]))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert visible[0].get_title().startswith("cluster 0 (n=2)")
    assert visible[0].get_xlabel() == "time after drug addition (h)"
    paths = save_figure(fig, tmp_path / "clusters")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_effect_heatmap_colours_cells_by_effect(tmp_path: Path) -> None:
    ann = pd.DataFrame(
        {
            "cell_line": ["L1", "L1", "L2", "L2"],
            "drug": ["A", "A", "A", "A"],
            "concentration_um": [1.0, 10.0, 1.0, 10.0],
            "role": ["treatment"] * 4,
            "effect": ["no_effect", "cytotoxic", "cytostatic", "cytotoxic"],
        }
    )
    cons = pd.DataFrame(
        {"drug": ["A", "A"], "concentration_um": [1.0, 10.0], "effect": ["mixed", "cytotoxic"]}
    )
    fig = plot_effect_heatmap(ann, cons)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["L1", "L2", "consensus"]
    img = fig.axes[2].images[0]
    rgba = img.cmap(img.norm(img.get_array()))
    # consensus: 1 uM mixed (orange), 10 uM cytotoxic (vermillion)
    np.testing.assert_allclose(rgba[0, 0, :3], _rgb(EFFECT_COLORS["mixed"]), atol=1e-6)
    np.testing.assert_allclose(rgba[0, 1, :3], _rgb(EFFECT_COLORS["cytotoxic"]), atol=1e-6)
    save_figure(fig, tmp_path / "heatmap")


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def test_drug_curves_with_band_and_confluence(tmp_path: Path) -> None:
    times = np.arange(0.0, 30.0, 6.0)
    d = pd.DataFrame(
        {
            "Metadata_cell_line": "L1",
            "Metadata_drug": "A",
            "Metadata_concentration_um": np.repeat([1.0, 10.0], len(times)),
            "Metadata_time_h": np.tile(times, 2),
            "Metadata_metric": "euclidean",
            "distance": np.r_[times * 0.1, times * 0.5],
            "distance_ci_low": np.r_[times * 0.08, times * 0.4],
            "distance_ci_high": np.r_[times * 0.12, times * 0.6],
            "null_distance": 1.0,
        }
    )
    g = pd.DataFrame(
        {
            "cell_line": "L1",
            "well": np.repeat(["c1", "a1", "a2"], len(times)),
            "time_h": np.tile(times, 3),
            "drug": np.repeat(["DMSO", "A", "A"], len(times)),
            "concentration_um": np.repeat([0.0, 10.0, 10.0], len(times)),
            "role": np.repeat(["negative_control", "treatment", "treatment"], len(times)),
            "confluence": np.r_[0.1 + times / 100, 0.1 - times / 400, 0.1 - times / 500],
        }
    )
    fig = plot_drug_curves(d, drug="A", cell_line="L1", growth=g)
    left, right = fig.axes
    assert left.get_ylabel() == "distance to control (euclidean)"
    assert right.get_ylabel() == "confluence (%)"
    assert len(left.collections) == 2  # one replicate band per concentration
    top = left.lines[1].get_ydata()
    np.testing.assert_allclose(top, times * 0.5)
    save_figure(fig, tmp_path / "curves")


def test_image_strip(tmp_path: Path) -> None:
    rows = []
    for i, t in enumerate([0.0, 8.0, 16.0]):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((16, 16), 40 * (i + 1), dtype=np.uint8)).save(p)
        rows.append(
            {
                "image_path": str(p),
                "plate": "P1",
                "well": "B2",
                "field": 1,
                "tile": 1,
                "time_h": t,
                "drug": "A",
                "concentration_um": 10.0,
            }
        )
    fig = plot_image_strip(pd.DataFrame(rows), plate="P1", well="B2")
    assert [ax.get_title() for ax in fig.axes] == ["0 h", "8 h", "16 h"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array().mean(), 80 / 255, atol=1e-6)
    save_figure(fig, tmp_path / "strip")
