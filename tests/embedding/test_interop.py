"""The profile tables in the field's tools: pycytominer's normalize, feature_select and aggregate
and copairs' average_precision on profiles made by phenolapse, with the arguments that
docs/formats.md gives."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from phenolapse.embedding import make_profiles, normalize_profiles

pycytominer = pytest.importorskip("pycytominer")
copairs_map = pytest.importorskip("copairs.map")

N_SIGNAL = 8  # informative features; then a constant one and a near-copy of the first


@pytest.fixture()
def profiles(tiny_manifest: pd.DataFrame) -> pd.DataFrame:
    """Profiles of the tiny screen whose features separate every (drug, concentration).

    Each treatment moves along its own direction, growing from nothing at drug addition to full
    size at the last time point; controls stay at the origin. Column ``N_SIGNAL`` is constant and
    the last one nearly repeats the first, so feature selection has known work to do.
    """
    rng = np.random.default_rng(0)
    m = tiny_manifest
    group = m["drug"].astype(str) + "@" + m["concentration_um"].astype(str)
    treated = (m["role"] == "treatment").to_numpy()
    centres = {g: rng.normal(0.0, 4.0, N_SIGNAL) for g in sorted(group.unique())}
    ramp = np.clip(m["time_h"].to_numpy() / m["time_h"].max(), 0.0, 1.0)
    signal = np.stack([centres[g] for g in group]) * (ramp * treated)[:, None]
    x = signal + rng.normal(0.0, 1.0, (len(m), N_SIGNAL))
    x = np.column_stack([x, np.full(len(m), 2.0), 2.0 * x[:, 0] + rng.normal(0, 0.01, len(m))])
    return make_profiles(m, x)


def _features(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if not c.startswith("Metadata_")]


def _quiet(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` without the third-party tools' deprecation chatter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def test_pycytominer_needs_explicit_features(profiles: pd.DataFrame) -> None:
    # our feature names are not CellProfiler's (Cells_*, Nuclei_*, ...) and our plate column is
    # Metadata_plate, not Metadata_Plate: the defaults fail, explicit arguments are needed
    with pytest.raises(ValueError, match="features"):
        _quiet(pycytominer.normalize, profiles, samples="all")
    with pytest.raises(KeyError):
        _quiet(pycytominer.aggregate, profiles)


def test_pycytominer_normalize_feature_select_aggregate(profiles: pd.DataFrame) -> None:
    feats = _features(profiles)
    assert feats[0] == "convae_0000" and len(feats) == N_SIGNAL + 2
    before = profiles.copy()

    # robust z-scores against the negative controls: the same numbers as phenolapse's own
    norm = _quiet(
        pycytominer.normalize,
        profiles,
        features=feats,
        meta_features="infer",
        samples="Metadata_role == 'negative_control'",
        method="mad_robustize",
    )
    assert list(norm.columns) == list(profiles.columns)
    ours = normalize_profiles(profiles).profiles
    common = _features(ours)
    assert common == feats[:N_SIGNAL] + feats[N_SIGNAL + 1 :]  # the constant one dropped
    np.testing.assert_allclose(
        norm[common].to_numpy(float), ours[common].to_numpy(float), rtol=1e-5, atol=1e-5
    )

    # selection drops exactly the constant feature and one of the near-copies
    selected = _quiet(
        pycytominer.feature_select,
        norm,
        features=feats,
        operation=["variance_threshold", "correlation_threshold", "drop_na_columns"],
    )
    kept = _features(selected)
    dropped = sorted(set(feats) - set(kept))
    assert feats[N_SIGNAL] in dropped and len(dropped) == 2
    assert (feats[0] in dropped) != (feats[-1] in dropped)
    assert [c for c in selected.columns if c.startswith("Metadata_")] == [
        c for c in profiles.columns if c.startswith("Metadata_")
    ]

    # one profile per well: the median over its time points
    strata = ["Metadata_plate", "Metadata_well"]
    wells = _quiet(
        pycytominer.aggregate, selected, strata=strata, features=kept, operation="median"
    )
    expected = selected.groupby(strata, as_index=False)[kept].median()
    assert len(wells) == profiles["Metadata_well"].nunique() == 42
    pd.testing.assert_frame_equal(
        wells.sort_values(strata).reset_index(drop=True)[strata + kept],
        expected.sort_values(strata).reset_index(drop=True)[strata + kept],
        check_dtype=False,
        check_exact=False,
        rtol=1e-6,
    )
    pd.testing.assert_frame_equal(profiles, before)


def test_copairs_average_precision(profiles: pd.DataFrame) -> None:
    strata = ["Metadata_plate", "Metadata_well", "Metadata_drug", "Metadata_concentration_um"]
    feats = _features(profiles)
    wells = _quiet(
        pycytominer.aggregate,
        profiles.loc[profiles["Metadata_role"] == "treatment"],
        strata=strata,
        features=feats,
        operation="median",
    ).reset_index(drop=True)
    meta, x = wells[strata], wells[feats].to_numpy(float)

    def ap(values: np.ndarray) -> pd.DataFrame:
        # replicates: same drug and concentration in another well; negatives: other drugs
        return _quiet(
            copairs_map.average_precision,
            meta,
            values,
            pos_sameby=["Metadata_drug", "Metadata_concentration_um"],
            pos_diffby=["Metadata_well"],
            neg_sameby=[],
            neg_diffby=["Metadata_drug"],
            progress_bar=False,
        )

    res = ap(x)
    assert len(res) == len(wells) == 36 and (res["n_pos_pairs"] == 1).all()
    assert res["average_precision"].mean() >= 0.9
    shuffled = ap(x[np.random.default_rng(1).permutation(len(x))])
    assert shuffled["average_precision"].mean() < 0.5
