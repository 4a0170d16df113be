"""Growth readout: GR (hand-computed), Incucyte exports, label-free confluence vs ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.errors import FeatureTableError, PlateMapError
from phenolapse.temporal.growth import (
    confluence,
    gr_summary,
    growth_rate_inhibition,
    image_confluence,
    interval_gr,
    read_incucyte_confluence,
    well_confluence,
)


def growth_table() -> pd.DataFrame:
    """Controls 10 -> 40 (two wells, mean); drugs ending at 20, 10 and 5 from 10."""
    rows = []

    def add(well: str, drug: str, role: str, values: list[float]) -> None:
        for t, v in zip([0.0, 12.0, 24.0], values, strict=True):
            rows.append(
                {
                    "cell_line": "L1",
                    "plate": "P1",
                    "well": well,
                    "time_h": t,
                    "drug": drug,
                    "concentration_um": 1.0 if role == "treatment" else 0.0,
                    "role": role,
                    "confluence": v,
                }
            )

    add("A1", "DMSO", "negative_control", [8.0, 18.0, 30.0])
    add("A2", "DMSO", "negative_control", [12.0, 22.0, 50.0])
    add("B1", "half", "treatment", [10.0, 14.0, 20.0])
    add("B2", "static", "treatment", [10.0, 10.0, 10.0])
    add("B3", "toxic", "treatment", [10.0, 8.0, 5.0])
    return pd.DataFrame(rows)


def test_gr_hand_computed() -> None:
    gr = growth_rate_inhibition(growth_table())
    at24 = gr[gr["time_h"] == 24.0].set_index("drug")
    # control: x0c = 10, xc(24) = 40 -> log2 ratio 2
    np.testing.assert_allclose(at24.loc["half", "gr"], 2 ** (1 / 2) - 1)
    np.testing.assert_allclose(at24.loc["static", "gr"], 0.0, atol=1e-12)
    np.testing.assert_allclose(at24.loc["toxic", "gr"], 2 ** (-1 / 2) - 1)
    # at 0 h the control has not grown: GR undefined
    assert gr[gr["time_h"] == 0.0]["gr"].isna().all()
    s = gr_summary(gr).set_index("drug")
    np.testing.assert_allclose(s.loc["toxic", "end_ratio"], 0.5)
    np.testing.assert_allclose(s.loc["toxic", "fall_ratio"], 5.0 / 8.0)


def test_interval_gr() -> None:
    np.testing.assert_allclose(interval_gr(10, 20, 10, 40), 2**0.5 - 1)
    assert np.isnan(interval_gr(10, 20, 10, 10))


@pytest.mark.bad_input("temporal")
def test_gr_needs_controls() -> None:
    g = growth_table()
    g = g[g["role"] != "negative_control"]
    with pytest.raises(FeatureTableError, match="plate P1: no negative_control"):
        growth_rate_inhibition(g)


@pytest.mark.bad_input("temporal")
def test_incucyte_export(tmp_path: Path) -> None:
    text = (
        "Vessel Name: plate1\n"
        "Metric: Phase Object Confluence (Percent)\n"
        "Date Time\tElapsed\tA1\tB01\tB2\n"
        "2024-01-01 10:00\t0\t10.0\t20.0\t15\n"
        "2024-01-01 14:00\t4\t12.5\t30.0\t15\n"
    )
    path = tmp_path / "plate1.txt"
    path.write_text(text)
    pm = pd.DataFrame(
        {
            "well": ["A01", "B1", "B2"],
            "drug": ["DMSO", "X", "X"],
            "concentration_um": [0.0, 1.0, 1.0],
            "role": ["negative_control", "treatment", "treatment"],
            "time_zero": [2.0, 2.0, 2.0],
        }
    )
    g = read_incucyte_confluence(path, platemap=pm)
    assert sorted(g["well"].unique()) == ["A1", "B1", "B2"]
    b1 = g[g["well"] == "B1"].sort_values("time_h")
    np.testing.assert_allclose(b1["confluence"], [0.2, 0.3])
    np.testing.assert_allclose(b1["time_h"], [-2.0, 2.0])
    assert (b1["drug"] == "X").all()
    assert (g["plate"] == "plate1").all()
    bad = pm[pm["well"] != "B2"]
    with pytest.raises(PlateMapError, match="B2"):
        read_incucyte_confluence(path, platemap=bad)
    (tmp_path / "x.txt").write_text("a\tb\n1\t2\n")
    with pytest.raises(PlateMapError, match="Elapsed"):
        read_incucyte_confluence(tmp_path / "x.txt")


def test_confluence_synthetic_disc() -> None:
    rng = np.random.default_rng(0)
    img = 0.5 + rng.normal(0, 0.005, size=(128, 128))
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < 30**2
    img[disc] += rng.normal(0, 0.08, size=int(disc.sum()))
    c = confluence(np.clip(img, 0, 1))
    assert abs(c - disc.mean()) < 0.08


def test_confluence_matches_simulator_coverage(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    truth = pd.read_csv(tiny_screen.images_csv_path)
    times = np.sort(truth["time_h"].unique())
    truth = truth[truth["time_h"].isin(times[[0, len(times) // 2, -1]])]  # every well, 3 times
    man = truth.assign(image_path=[str(tiny_screen.root / p) for p in truth["image_path"]])
    got = image_confluence(man, progress=False)
    r = np.corrcoef(got["confluence"], got["coverage"])[0, 1]
    mae = float(np.abs(got["confluence"] - got["coverage"]).mean())
    assert r >= 0.9, f"correlation {r:.3f}"
    assert mae < 0.15, f"mean absolute error {mae:.3f}"
    wells = well_confluence(got)
    assert len(wells) == man.groupby(["plate", "well", "time_h"]).ngroups
    print(f"confluence vs simulator coverage: r = {r:.3f}, MAE = {mae:.3f}")
    ctrl = wells[wells["role"] == "negative_control"].groupby("time_h")["confluence"].mean()
    assert ctrl.iloc[-1] > 2 * ctrl.iloc[0]


def test_confluence_rises_on_real_livecell(shared_data: Path) -> None:
    folder = shared_data / "livecell-shsy5y"
    if not folder.is_dir():
        pytest.skip("livecell-shsy5y is absent")
    rows = []
    for f in sorted(folder.glob("*_1.tif")):  # tile 1 of both wells, every third time point
        m = re.search(r"_(B10|C10)_1_(\d\d)d(\d\d)h\d\dm_", f.name)
        assert m is not None
        if int(m.group(3)) % 12:
            continue
        rows.append(
            {
                "image_path": str(f),
                "plate": "P",
                "well": m.group(1),
                "time_h": 24.0 * int(m.group(2)) + int(m.group(3)),
            }
        )
    got = image_confluence(pd.DataFrame(rows), progress=False)
    per_t = got.groupby("time_h")["confluence"].mean()
    from scipy.stats import spearmanr

    assert spearmanr(per_t.index, per_t.to_numpy()).statistic > 0.9
    assert 0.03 < per_t.loc[0.0] < 0.2
    assert 0.45 < per_t.loc[72.0] < 0.85
