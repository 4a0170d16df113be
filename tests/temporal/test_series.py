"""Series processing (SPEC 7.4): time filter, common length, rolling median, trimming, scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenolapse.errors import ConfigError
from phenolapse.temporal.config import SeriesConfig
from phenolapse.temporal.series import SeriesError, make_series, minmax_scale, rolling_median


def dist_table(
    curves: dict[tuple[str, str, float], list[float]], times: list[float]
) -> pd.DataFrame:
    rows = []
    for (line, drug, conc), values in curves.items():
        for t, v in zip(times, values, strict=False):
            rows.append(
                {
                    "Metadata_cell_line": line,
                    "Metadata_plate": f"{line}_P1",
                    "Metadata_drug": drug,
                    "Metadata_concentration_um": conc,
                    "Metadata_role": "treatment",
                    "Metadata_time_h": t,
                    "distance": v,
                    "null_distance": 2.0,
                }
            )
    return pd.DataFrame(rows)


def test_rolling_median_trailing_exact() -> None:
    x = np.array([[5.0, 1.0, 3.0, 9.0, 2.0, 8.0]])
    # partial windows at the start: med(5)=5, med(5,1)=3, med(5,1,3)=3, then windows of 3
    np.testing.assert_allclose(rolling_median(x, 3), [[5.0, 3.0, 3.0, 3.0, 3.0, 8.0]])
    np.testing.assert_allclose(rolling_median(x, 1), x)


def test_minmax_jointly_per_group_exact() -> None:
    x = np.array([[0.0, 2.0], [4.0, 1.0], [10.0, 20.0]])
    out = minmax_scale(x, np.array(["a", "a", "b"]))
    np.testing.assert_allclose(out, [[0.0, 0.5], [1.0, 0.25], [0.0, 1.0]])
    np.testing.assert_allclose(minmax_scale(np.ones((2, 3))), 0.0)


def test_reference_defaults_and_scaling_per_cell_line_drug() -> None:
    times = [-4.0, *np.arange(1.0, 13.0)]  # 1 point before drug addition, 12 after
    up = list(np.arange(13.0))
    curves = {
        ("L1", "A", 1.0): up,
        ("L1", "A", 10.0): [2 * v for v in up],
        ("L1", "B", 1.0): [100.0 + v for v in up],
        ("L2", "A", 1.0): [3 * v for v in up],
    }
    s = make_series(dist_table(curves, times))
    # 12 points after 0 h, drop first 4 and last 1 -> 7 points (times 5..11 h)
    assert s.values.shape == (4, 7)
    np.testing.assert_allclose(s.times[0], np.arange(5.0, 12.0))
    # trailing median of 5 of a linear ramp lags by 2 points: values at t are t-2
    np.testing.assert_allclose(s.raw[0], np.arange(5.0, 12.0) - 2)
    keys = s.keys.reset_index(drop=True)
    a1 = keys.index[(keys["Metadata_cell_line"] == "L1") & (keys["Metadata_drug"] == "A")]
    # (L1, A) scaled jointly over its two concentrations: min 3 (1 uM), max 18 (10 uM)
    lo, hi = 3.0, 18.0
    np.testing.assert_allclose(s.values[a1[0]], (np.arange(3.0, 10.0) - lo) / (hi - lo))
    np.testing.assert_allclose(s.values[a1[1]], (2 * np.arange(3.0, 10.0) - lo) / (hi - lo))
    # (L2, A) scaled on its own
    l2 = keys.index[keys["Metadata_cell_line"] == "L2"][0]
    np.testing.assert_allclose(s.values[l2], np.linspace(0, 1, 7))
    np.testing.assert_allclose(s.keys["max_distance"].iloc[a1[1]], 18.0)
    np.testing.assert_allclose(s.keys["max_relative_distance"].iloc[a1[1]], 9.0)


@pytest.mark.bad_input("temporal")
def test_unequal_length_truncated_or_refused() -> None:
    times = list(np.arange(1.0, 13.0))
    curves = {("L1", "A", 1.0): list(range(12)), ("L1", "A", 10.0): list(range(10))}
    s = make_series(
        dist_table(curves, times), config=SeriesConfig(rolling_window=1, drop_first=0, drop_last=0)
    )
    assert s.values.shape == (2, 10)
    with pytest.warns(UserWarning, match="shorter than 12"):
        s = make_series(
            dist_table(curves, times), config=SeriesConfig(length=12, drop_first=0, drop_last=0)
        )
    assert len(s) == 1
    with pytest.raises(SeriesError, match="fewer than 12 time points"):
        make_series(
            dist_table(curves, times),
            config=SeriesConfig(length=12, on_short="raise", drop_first=0),
        )


@pytest.mark.bad_input("temporal")
def test_gap_interpolated_dropped_or_refused() -> None:
    times = list(np.arange(1.0, 9.0))
    curves = {
        ("L1", "A", 1.0): [float(v) for v in range(8)],
        ("L1", "B", 1.0): [float(v) for v in range(8)],
    }
    df = dist_table(curves, times)
    gap = (df["Metadata_drug"] == "B") & (df["Metadata_time_h"] == 4.0)
    df = df[~gap]
    cfg = SeriesConfig(rolling_window=1, drop_first=0, drop_last=0, scaling="none")
    s = make_series(df, config=cfg)
    np.testing.assert_allclose(s.raw[1], np.arange(8.0))  # linear interpolation fills 3.0
    with pytest.warns(UserWarning, match="gaps"):
        s = make_series(df, config=cfg.model_copy(update={"on_gap": "drop"}))
    assert len(s) == 1
    with pytest.raises(SeriesError, match="lacks time point"):
        make_series(df, config=cfg.model_copy(update={"on_gap": "raise"}))


@pytest.mark.bad_input("temporal")
def test_too_short_after_trimming() -> None:
    curves = {("L1", "A", 1.0): [1.0, 2.0, 3.0, 4.0, 5.0]}
    with pytest.raises(ConfigError, match="need at least 2"):
        make_series(dist_table(curves, [1.0, 2.0, 3.0, 4.0, 5.0]))


@pytest.mark.bad_input("temporal")
def test_no_points_after_drug_addition() -> None:
    curves = {("L1", "A", 1.0): [1.0, 2.0]}
    with pytest.raises(SeriesError, match="no time points after 0 h"):
        make_series(dist_table(curves, [-2.0, -1.0]))
