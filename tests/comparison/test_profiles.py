"""Aligning extractors' profile tables on metadata, and rejecting bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.comparison.profiles import (
    align_profile_sets,
    load_profile_set,
    split_profiles,
)
from phenolapse.errors import FeatureTableError

Maker = Callable[..., pd.DataFrame]
KEY = ["Metadata_plate", "Metadata_well", "Metadata_time_h"]


def test_alignment_by_metadata_not_row_order(make_profiles: Maker) -> None:
    a = make_profiles(seed=0)
    b = make_profiles(seed=1, n_features=5)
    b = b.sample(frac=1.0, random_state=0)  # shuffled rows
    b = b.loc[~((b["Metadata_well"] == "A1") & (b["Metadata_time_h"] == 12.0))]  # one row fewer
    al = align_profile_sets([split_profiles(a, name="a"), split_profiles(b, name="b")])
    assert al.dropped == {"a": 1, "b": 0}
    assert len(al.metadata) == len(a) - 1
    sa, sb = al.sets
    assert (sa.metadata[KEY].to_numpy() == sb.metadata[KEY].to_numpy()).all()
    # each aligned row carries its own table's features for that key
    lookup = b.set_index(KEY)
    for i in [0, 7, len(al.metadata) - 1]:
        key = tuple(sb.metadata.loc[i, KEY])
        expected = lookup.loc[key, sb.feature_names].to_numpy(float)
        np.testing.assert_allclose(sb.features[i], expected)


@pytest.mark.bad_input("compare")
def test_wells_spelled_differently_are_not_matched(make_profiles: Maker) -> None:
    a = make_profiles()
    b = a.copy()
    b["Metadata_plate"] = "other"
    with pytest.raises(FeatureTableError, match="share no"):
        align_profile_sets([split_profiles(a, name="a"), split_profiles(b, name="b")])


@pytest.mark.bad_input("compare")
def test_nan_features_raise_naming_the_well(make_profiles: Maker) -> None:
    a = make_profiles()
    a.loc[5, "feat_0003"] = np.nan
    well = a.loc[5, "Metadata_well"]
    with pytest.raises(FeatureTableError, match=rf"well {well}\b.*nan_policy='drop'"):
        align_profile_sets([split_profiles(a, name="a")])
    al = align_profile_sets([split_profiles(a, name="a")], nan_policy="drop")
    assert al.dropped["a"] == 1
    assert np.isfinite(al.sets[0].features).all()


@pytest.mark.bad_input("compare")
def test_disagreeing_metadata_is_an_error(make_profiles: Maker) -> None:
    a = make_profiles()
    b = a.copy()
    b.loc[b["Metadata_drug"] == "drug1", "Metadata_drug"] = "drug9"
    with pytest.raises(FeatureTableError, match="disagree on Metadata_drug"):
        align_profile_sets([split_profiles(a, name="a"), split_profiles(b, name="b")])


@pytest.mark.bad_input("compare")
def test_duplicate_rows_and_names_are_errors(make_profiles: Maker) -> None:
    a = make_profiles()
    with pytest.raises(FeatureTableError, match="share plate, well and time point"):
        align_profile_sets([split_profiles(pd.concat([a, a.iloc[:1]]), name="a")])
    with pytest.raises(FeatureTableError, match="unique"):
        align_profile_sets([split_profiles(a, name="x"), split_profiles(a, name="x")])


@pytest.mark.bad_input("compare")
def test_missing_metadata_and_files(make_profiles: Maker, tmp_path: Path) -> None:
    a = make_profiles().drop(columns=["Metadata_role"])
    with pytest.raises(FeatureTableError, match="Metadata_role"):
        split_profiles(a, name="a")
    with pytest.raises(FeatureTableError, match="not found"):
        load_profile_set(tmp_path / "nope.parquet")


def test_load_parquet_names_from_folder(make_profiles: Maker, tmp_path: Path) -> None:
    path = tmp_path / "resnet50" / "profiles.parquet"
    path.parent.mkdir()
    make_profiles().to_parquet(path)
    ps = load_profile_set(path)
    assert ps.name == "resnet50"
    assert ps.features.shape == (len(make_profiles()), 16)


def test_metrics_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, phenolapse.comparison; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
