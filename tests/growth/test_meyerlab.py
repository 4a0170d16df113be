"""Effect calls with a dead-cell channel on real H1299 time courses (meyer-lab, 101117)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from phenolapse.temporal.growth_run import GrowthAnalysisConfig, analyse_growth, load_growth_inputs


@pytest.fixture(scope="module")
def h1299(shared_data: Path):  # type: ignore[no-untyped-def]
    folder = (
        shared_data / "growth-real" / "meyerlab_ps_growth_model" / "grmodel" / "data" / "singles"
    )
    files = [folder / f"101117_H1299_confluence_{c}.csv" for c in ("phase", "red", "green")]
    kind, long = load_growth_inputs(files, concentration_unit="nM")
    cfg = GrowthAnalysisConfig(pcutoff=0.05)
    return analyse_growth(kind, long, config=cfg)


def test_dead_channel_found_and_gr_split(h1299) -> None:  # type: ignore[no-untyped-def]
    assert h1299.dead_metric == "red_area"
    assert {"GR", "GR_static", "GR_toxic"} <= set(h1299.gr.columns)
    assert h1299.gr["n_wells"].eq(3).all()
    assert sorted(h1299.gr["drug"].unique()) == ["DOX", "NVB"]


def test_vinorelbine_high_doses_kill(h1299) -> None:  # type: ignore[no-untyped-def]
    ann = h1299.annotations.set_index(["drug", "concentration_um"])
    gr72 = h1299.gr[h1299.gr["time_h"] == 72.0].set_index(["drug", "concentration_um"])
    for nm in (40, 80, 160):
        key = ("NVB", pytest.approx(nm / 1000))
        row = ann.loc[[k for k in ann.index if k[0] == "NVB" and k[1] == key[1]]].iloc[0]
        assert row["effect"] in ("cytotoxic", "mixed"), (nm, row["effect"])
        assert row["death"] is True or row["death"] == True  # noqa: E712
        assert row["dead_fold"] > 3
        tox = gr72.loc[[k for k in gr72.index if k[0] == "NVB" and k[1] == key[1]], "GR_toxic"]
        assert float(tox.iloc[0]) < 0
        assert row["gr_toxic_end"] < 0
    # low doses grow like the control
    low = ann.loc[[k for k in ann.index if k[0] == "NVB" and k[1] <= 0.0101]]
    assert (low["effect"] == "no_effect").all()


def test_doxorubicin_not_cytotoxic_without_dead_cells(h1299) -> None:  # type: ignore[no-untyped-def]
    ann = h1299.annotations
    dox = ann[(ann["drug"] == "DOX") & (ann["concentration_um"] >= 0.1)]
    assert len(dox) == 3
    for _, row in dox.iterrows():
        assert row["effect"] != "cytotoxic" or bool(row["death"]), row.to_dict()
    # growth stops at the top doses: cytostatic, not cytotoxic
    assert set(dox["effect"]) <= {"cytostatic", "mixed"}
    assert (dox["gr_end"] < 0.5).all()


def test_potency_over_time(h1299) -> None:  # type: ignore[no-untyped-def]
    m = h1299.metrics
    assert set(m.columns) >= {
        "GR50",
        "GRmax",
        "GRinf",
        "GR_AOC",
        "GEC50",
        "h_GR",
        "r2_GR",
        "pval_GR",
    }
    nvb = m[(m["drug"] == "NVB")].set_index("time_h")
    # potency builds over time: GRmax falls from 24 h to 72 h
    assert nvb.loc[72.0, "GRmax"] < nvb.loc[24.0, "GRmax"]
    dr = h1299.dose_response
    assert (dr["time_h"] > 0).all() and {"ec50_um", "ec50_low", "ec50_high", "ic50_um"} <= set(
        dr.columns
    )
    dox72 = dr[(dr["drug"] == "DOX") & (dr["time_h"] == 72.0)].iloc[0]
    assert (
        0.03 < dox72["ec50_um"] < 0.1 and dox72["ec50_low"] < dox72["ec50_um"] < dox72["ec50_high"]
    )
    assert isinstance(h1299.annotations, pd.DataFrame)
