"""GR values and metrics against the reference implementations' outputs (gr_metrics toy data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.data.incucyte import read_gr_table
from phenolapse.temporal.gr_metrics import (
    fit_gr_curve,
    gr_metrics,
    gr_static_toxic,
    gr_value,
    gr_values,
)

KEYS = ["cell_line", "drug", "perturbation", "replicate", "time"]


@pytest.fixture(scope="module")
def toy(shared_data: Path) -> Path:
    return shared_data / "growth-real" / "gr_metrics_toy_reference"


@pytest.fixture(scope="module")
def ours(toy: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    values = gr_values(read_gr_table(toy / "INPUT" / "toy_example_input1.tsv"))
    return values, gr_metrics(values, keys=KEYS)


def _reference(toy: Path, impl: str, what: str) -> pd.DataFrame:
    ref = pd.read_csv(toy / "OUTPUT" / f"{impl}_input1_{what}.tsv", sep="\t")
    return ref.rename(columns={"agent": "drug", "GRvalue": "GR", "GR_AUC": "GR_AOC"})


@pytest.mark.parametrize("impl", ["R", "python"])
def test_gr_values_match_reference(
    toy: Path, ours: tuple[pd.DataFrame, pd.DataFrame], impl: str
) -> None:
    ref = _reference(toy, impl, "GRvalues")
    both = ours[0].merge(
        ref[[*KEYS, "concentration", "GR"]], on=[*KEYS, "concentration"], suffixes=("", "_ref")
    )
    assert len(both) == len(ref) == 1008
    assert np.abs(both["GR"] - both["GR_ref"]).max() < 1e-6


@pytest.mark.parametrize("impl", ["R", "python"])
def test_gr_metrics_match_reference(
    toy: Path, ours: tuple[pd.DataFrame, pd.DataFrame], impl: str
) -> None:
    ref = _reference(toy, impl, "GRmetrics")
    both = ours[1].merge(ref, on=KEYS, suffixes=("", "_ref"))
    assert len(both) == len(ref) == 112
    finite = np.isfinite(both["GR50_ref"])
    rel = (both.loc[finite, "GR50"] / both.loc[finite, "GR50_ref"] - 1).abs()
    assert rel.max() < 0.005  # R: 0.01 %, python: 0.27 %
    assert (both.loc[~finite, "GR50"] == both.loc[~finite, "GR50_ref"]).all()  # +-inf alike
    assert np.abs(both["GRinf"] - both["GRinf_ref"]).max() < 0.02
    assert np.abs(both["GRmax"] - both["GRmax_ref"]).max() < 1e-6
    assert np.abs(both["GR_AOC"] - both["GR_AOC_ref"]).max() < 1e-6
    if impl == "R":
        assert (both["fit"] == both["fit_ref"]).all()  # the same flat / sigmoid decisions
        sig = both["fit"] == "sigmoid"
        assert np.abs(both.loc[sig, "r2_GR"] - both.loc[sig, "r2"]).max() < 1e-6
        assert np.allclose(both.loc[sig, "pval_GR"], both.loc[sig, "pval"], rtol=1e-4, atol=1e-12)


def test_gr_formulas_on_known_values() -> None:
    # control doubles twice; treated doubles once -> GR = 2**(1/2) - 1; stasis -> 0
    assert gr_value(200.0, 400.0, 100.0) == pytest.approx(2**0.5 - 1)
    assert gr_value(100.0, 400.0, 100.0) == pytest.approx(0.0)
    assert gr_value(50.0, 400.0, 100.0) < 0
    # no death anywhere: GR_static equals GR, GR_toxic is 0
    s, t = gr_static_toxic(200.0, 400.0, 100.0, 5.0, 5.0, 5.0)
    assert float(s) == pytest.approx(2**0.5 - 1) and float(t) == pytest.approx(0.0)
    # more dead cells than the control: GR_toxic < 0; division unchanged
    s, t = gr_static_toxic(200.0, 400.0, 100.0, 60.0, 5.0, 5.0)
    assert float(t) < 0 and float(s) > 2**0.5 - 1
    # stable at x == x0 (no net growth)
    s, t = gr_static_toxic(100.0, 400.0, 100.0, 50.0, 5.0, 5.0)
    assert np.isfinite(s) and np.isfinite(t) and float(t) < 0


def test_fit_gr_curve_recovers_parameters_and_flat() -> None:
    c = np.logspace(-3, 1, 9)
    gr = -0.2 + 1.2 / (1 + (c / 0.1) ** 1.5)
    m = fit_gr_curve(c, gr)
    assert m["fit"] == "sigmoid"
    assert m["GRinf"] == pytest.approx(-0.2, abs=1e-6)
    assert m["GEC50"] == pytest.approx(0.1, rel=1e-5)
    gr50 = 0.1 * ((1.2) / (0.7) - 1) ** (1 / 1.5)
    assert m["GR50"] == pytest.approx(gr50, rel=1e-5)
    assert m["GRmax"] == pytest.approx(gr[-2:].min())
    flat = fit_gr_curve(c, 0.95 + 0.01 * np.sin(np.arange(9)))
    assert flat["fit"] == "flat" and flat["GR50"] == np.inf and flat["h_GR"] == 0.01


def test_gr_table_with_dead_counts() -> None:
    table = pd.DataFrame(
        {
            "cell_line": ["A", "A"],
            "agent": ["d", "d"],
            "concentration": [0.1, 1.0],
            "cell_count": [300.0, 100.0],
            "cell_count__ctrl": [400.0, 400.0],
            "cell_count__time0": [100.0, 100.0],
            "dead_count": [12.0, 90.0],
            "dead_count__ctrl": [12.0, 12.0],
            "dead_count__time0": [10.0, 10.0],
        }
    )
    from phenolapse.data.incucyte import check_gr_table

    out = gr_values(check_gr_table(table))
    assert list(table.columns)[1] == "agent"  # the input is not modified
    assert {"GR", "GR_static", "GR_toxic"} <= set(out.columns) and "drug" in out.columns
    assert out.loc[0, "GR_toxic"] == pytest.approx(0.0, abs=0.01)
    assert out.loc[1, "GR"] == pytest.approx(0.0) and out.loc[1, "GR_toxic"] < -0.3
    assert out.loc[1, "GR_static"] > 0.3  # cells still divide, and die as fast
