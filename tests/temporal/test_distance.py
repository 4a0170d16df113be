"""Distance to control: nearest time point, replicate averaging, metrics vs scipy, bad input."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from phenolapse.errors import FeatureTableError
from phenolapse.temporal.config import DistanceConfig
from phenolapse.temporal.distance import (
    check_profiles,
    control_trajectory,
    distance_to_control,
    distance_to_control_with_replicates,
    nearest_time_index,
    rowwise_distance,
)


def _row(
    plate: str, well: str, t: float, drug: str, conc: float, role: str, f: list[float]
) -> dict:
    return {
        "Metadata_cell_line": "L1",
        "Metadata_plate": plate,
        "Metadata_well": well,
        "Metadata_time_h": t,
        "Metadata_drug": drug,
        "Metadata_concentration_um": conc,
        "Metadata_role": role,
        "f0": f[0],
        "f1": f[1],
    }


def hand_table() -> pd.DataFrame:
    """Controls at 0 and 10 h; a drug (2 replicates) imaged at 4 h and 6 h."""
    rows = [
        _row("P1", "A1", 0.0, "DMSO", 0.1, "negative_control", [0.0, 0.0]),
        _row("P1", "A2", 0.0, "DMSO", 0.1, "negative_control", [2.0, 0.0]),
        _row("P1", "A1", 10.0, "DMSO", 0.1, "negative_control", [0.0, 4.0]),
        _row("P1", "A2", 10.0, "DMSO", 0.1, "negative_control", [2.0, 4.0]),
        _row("P1", "B1", 4.0, "X", 1.0, "treatment", [1.0, 3.0]),
        _row("P1", "B2", 4.0, "X", 1.0, "treatment", [3.0, 3.0]),
        _row("P1", "B1", 6.0, "X", 1.0, "treatment", [4.0, 4.0]),
        _row("P1", "B2", 6.0, "X", 1.0, "treatment", [6.0, 4.0]),
    ]
    return pd.DataFrame(rows)


def test_nearest_time_index_exact() -> None:
    ref = [0.0, 10.0, 20.0]
    # 4 -> 0, 6 -> 10, 5 (tie) -> earlier 0, 25 -> 20, -3 -> 0, 15 (tie) -> 10
    assert nearest_time_index(ref, [4, 6, 5, 25, -3, 15]).tolist() == [0, 1, 0, 2, 0, 1]


def test_nearest_not_previous_control() -> None:
    """The reference's flaw: taking the previous control time instead of the nearest one."""
    assert nearest_time_index([0.0, 10.0], [9.0]).tolist() == [1]


def test_replicate_mean_and_nearest_control_hand_computed() -> None:
    df = hand_table()
    t, vec = control_trajectory(df, plate="P1")
    assert t.tolist() == [0.0, 10.0]
    np.testing.assert_allclose(vec, [[1.0, 0.0], [1.0, 4.0]])
    out = distance_to_control(df, config=DistanceConfig(n_bootstrap=0), progress=False)
    assert isinstance(out, pd.DataFrame)
    out = out.sort_values("Metadata_time_h")
    # t=4: mean (2, 3), nearest control t=0 (1, 0): sqrt(1 + 9)
    # t=6: mean (5, 4), nearest control t=10 (1, 4): 4
    np.testing.assert_allclose(out["distance"], [np.sqrt(10.0), 4.0])
    assert out["Metadata_control_time_h"].tolist() == [0.0, 10.0]
    assert out["Metadata_n_replicates"].tolist() == [2, 2]
    # per replicate at t=4: (1,3)->sqrt(9)=3, (3,3)->sqrt(4+9)
    row = out.iloc[0]
    np.testing.assert_allclose(row["distance_replicate_min"], 3.0)
    np.testing.assert_allclose(row["distance_replicate_max"], np.sqrt(13.0))
    np.testing.assert_allclose(row["distance_replicate_mean"], (3.0 + np.sqrt(13.0)) / 2)


def test_replicate_table_and_bootstrap_band() -> None:
    df = hand_table()
    out, reps = distance_to_control_with_replicates(
        df, config=DistanceConfig(n_bootstrap=300, seed=1), progress=False
    )
    assert len(reps) == 4
    r = reps[(reps["Metadata_well"] == "B2") & (reps["Metadata_time_h"] == 6.0)]
    np.testing.assert_allclose(r["distance"], [5.0])  # (6,4) vs (1,4)
    # the band lies within the range of the resampled means: at t=6 the mean is (4..6, 4)
    row = out.sort_values("Metadata_time_h").iloc[1]
    assert (
        3.0 - 1e-9
        <= row["distance_ci_low"]
        <= row["distance"]
        <= row["distance_ci_high"]
        <= 5.0 + 1e-9
    )


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "correlation", "braycurtis"])
def test_metrics_match_scipy(metric: str) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(7, 11)) + 2.0
    b = rng.normal(size=(7, 11)) + 2.0
    ours = rowwise_distance(a, b, metric=metric)
    ref = np.diag(cdist(a, b, metric=metric))
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "correlation", "braycurtis"])
def test_distance_table_uses_metric(metric: str) -> None:
    df = hand_table()
    df["f1"] += 1.0  # keep vectors non-constant and non-zero for every metric
    out = distance_to_control(
        df, config=DistanceConfig(metric=metric, n_bootstrap=0), progress=False
    )
    assert isinstance(out, pd.DataFrame)
    out = out.sort_values("Metadata_time_h")
    ref4 = cdist([[2.0, 4.0]], [[1.0, 1.0]], metric=metric)[0, 0]
    ref6 = cdist([[5.0, 5.0]], [[1.0, 5.0]], metric=metric)[0, 0]
    np.testing.assert_allclose(out["distance"], [ref4, ref6], rtol=1e-10)
    assert (out["Metadata_metric"] == metric).all()


def test_null_distance_is_control_spread() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for w in range(12):
        for t in (0.0, 12.0):
            rows.append(
                _row("P1", f"C{w}", t, "DMSO", 0.1, "negative_control", list(rng.normal(size=2)))
            )
    for w in range(3):
        for t in (0.0, 12.0):
            rows.append(
                _row("P1", f"D{w}", t, "X", 1.0, "treatment", list(rng.normal(size=2) + 10))
            )
    out = distance_to_control(pd.DataFrame(rows), progress=False)
    assert isinstance(out, pd.DataFrame)
    # treatment is ~10*sqrt(2) away, the control's own spread for 3 wells is ~1
    assert (out["distance"] > 10).all()
    assert (out["null_distance"] < 3).all()


def test_single_replicate_documented_handling() -> None:
    df = hand_table()
    df = df[df["Metadata_well"] != "B2"]
    with pytest.warns(UserWarning, match="single replicate"):
        out = distance_to_control(df, progress=False)
    assert isinstance(out, pd.DataFrame)
    assert out["distance_ci_low"].isna().all()
    assert (out["Metadata_n_replicates"] == 1).all()
    np.testing.assert_allclose(out.sort_values("Metadata_time_h")["distance"], [3.0, 3.0])


@pytest.mark.bad_input("temporal")
def test_plate_without_negative_controls() -> None:
    df = hand_table()
    extra = df[df["Metadata_role"] == "treatment"].assign(Metadata_plate="P2")
    df = pd.concat([df, extra], ignore_index=True)
    with pytest.raises(FeatureTableError, match="plate P2: no negative_control"):
        distance_to_control(df, progress=False)


@pytest.mark.bad_input("temporal")
def test_all_nan_features() -> None:
    df = hand_table()
    df[["f0", "f1"]] = np.nan
    with pytest.raises(FeatureTableError, match="every feature value is NaN"):
        check_profiles(df)


@pytest.mark.bad_input("temporal")
def test_partial_nan_names_well() -> None:
    df = hand_table()
    df.loc[5, "f0"] = np.nan
    with pytest.raises(FeatureTableError, match="well B2 t=4 h"):
        distance_to_control(df, progress=False)


@pytest.mark.bad_input("temporal")
def test_missing_metadata_and_duplicates() -> None:
    with pytest.raises(FeatureTableError, match="Metadata_role"):
        check_profiles(hand_table().drop(columns="Metadata_role"))
    df = pd.concat([hand_table(), hand_table().iloc[[0]]], ignore_index=True)
    with pytest.raises(FeatureTableError, match="share a \\(plate, well, time\\)"):
        check_profiles(df)


def test_inputs_not_modified() -> None:
    df = hand_table()
    before = df.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distance_to_control(df, progress=False)
    pd.testing.assert_frame_equal(df, before)


def test_temporal_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, phenolapse.temporal; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
