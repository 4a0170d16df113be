"""Profiles normalised against each plate's negative controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenolapse.embedding.normalize import NormalizationConfig, normalize_profiles
from phenolapse.errors import FeatureTableError


def _profiles(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for plate, offset in (("P1", 0.0), ("P2", 5.0)):
        for w in range(12):
            role = "negative_control" if w < 6 else "treatment"
            for t in (0.0, 24.0):
                rows.append(
                    {
                        "Metadata_plate": plate,
                        "Metadata_well": f"A{w + 1}",
                        "Metadata_time_h": t,
                        "Metadata_role": role,
                        "f_big": offset + 1000.0 * rng.normal() + (3000.0 if w == 11 else 0.0),
                        "f_small": offset + 0.01 * rng.normal(),
                        "f_const": 1.0,
                    }
                )
    return pd.DataFrame(rows)


def test_robust_z_against_controls_per_plate() -> None:
    df = _profiles()
    before = df.copy()
    res = normalize_profiles(df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    out = res.profiles
    for plate in ("P1", "P2"):
        on = df["Metadata_plate"] == plate
        ctrl = df.loc[on & (df["Metadata_role"] == "negative_control"), "f_big"]
        med = ctrl.median()
        mad = 1.4826 * (ctrl - med).abs().median()
        expected = (df.loc[on, "f_big"] - med) / mad
        np.testing.assert_allclose(out.loc[on, "f_big"], expected, rtol=1e-5)
        ctrl_z = out.loc[on & (df["Metadata_role"] == "negative_control"), "f_small"]
        assert abs(float(ctrl_z.median())) < 1e-6
    # both features now count alike; the constant one is dropped and listed
    assert "f_const" not in out.columns
    assert res.dropped["feature"].tolist() == ["f_const"]
    assert list(out.columns[:4]) == list(df.columns[:4])
    # the outlying well stands out by ~3 control spreads, whatever the raw scale
    assert 2.0 < float(out.loc[df["Metadata_well"] == "A12", "f_big"].mean()) < 4.5


def test_idempotent_and_none_is_the_raw_table() -> None:
    df = _profiles()
    once = normalize_profiles(df).profiles
    twice = normalize_profiles(once).profiles
    np.testing.assert_allclose(once[["f_big", "f_small"]], twice[["f_big", "f_small"]], atol=1e-5)
    raw = normalize_profiles(df, config=NormalizationConfig(method="none")).profiles
    pd.testing.assert_frame_equal(raw, df)


def test_tvn_spheres_the_controls() -> None:
    rng = np.random.default_rng(1)
    n = 60
    base = rng.normal(size=(n, 1))
    df = pd.DataFrame(
        {
            "Metadata_plate": "P1",
            "Metadata_well": [f"W{i}" for i in range(n)],
            "Metadata_time_h": 0.0,
            "Metadata_role": ["negative_control"] * 40 + ["treatment"] * 20,
            "a": base[:, 0] + 0.1 * rng.normal(size=n),
            "b": base[:, 0] + 0.1 * rng.normal(size=n),  # correlated with a
            "c": rng.normal(size=n),
        }
    )
    res = normalize_profiles(df, config=NormalizationConfig(whiten="tvn", tvn_variance=1.0))
    feats = [c for c in res.profiles.columns if c.startswith("tvn_")]
    assert len(feats) == 3
    ctrl = res.profiles.loc[df["Metadata_role"] == "negative_control", feats].to_numpy()
    np.testing.assert_allclose(np.cov(ctrl, rowvar=False), np.eye(3), atol=1e-4)


def test_plate_without_controls_falls_back_with_a_warning() -> None:
    df = _profiles()
    df.loc[df["Metadata_plate"] == "P2", "Metadata_role"] = "treatment"
    with pytest.warns(UserWarning, match="P2"):
        res = normalize_profiles(df)
    assert res.fallback_plates == ["P2"]


def test_too_few_profiles_and_missing_columns_are_clear_errors() -> None:
    df = _profiles().head(2)
    with pytest.raises(FeatureTableError, match="plate P1"):
        normalize_profiles(df)
    with pytest.raises(FeatureTableError, match="Metadata_role"):
        normalize_profiles(df.drop(columns="Metadata_role"))


def test_non_finite_feature_is_dropped() -> None:
    df = _profiles()
    df.loc[3, "f_small"] = np.nan
    res = normalize_profiles(df)
    assert "f_small" not in res.profiles.columns
    assert "non-finite" in res.dropped.set_index("feature").loc["f_small", "reason"]
