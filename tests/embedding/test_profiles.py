"""Well-level profiles against hand-computed means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.embedding import make_profiles, read_profiles, write_profiles
from phenolapse.embedding.profiles import feature_columns
from phenolapse.errors import FeatureTableError


def metadata() -> pd.DataFrame:
    rows = []
    for well, drug in [("A1", "DMSO"), ("A10", "Taxol")]:  # A1 must never mix with A10
        for field in (1, 2):
            for t in (0.0, 4.0):
                rows.append(
                    {
                        "image_path": f"/x/{well}_{field}_{t}.png",
                        "cell_line": "HCT15",
                        "plate": "P1",
                        "well": well,
                        "row": "A",
                        "column": int(well[1:]),
                        "field": field,
                        "tile": 1,
                        "time_h": t,
                        "drug": drug,
                        "concentration_um": 0.1 if drug == "DMSO" else 1.0,
                        "role": "negative_control" if drug == "DMSO" else "treatment",
                        "batch": "b1",
                        "operator": f"op{field}",  # varies within a well: not carried
                    }
                )
    return pd.DataFrame(rows)


def test_mean_profiles_by_hand() -> None:
    meta = metadata()
    feats = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    before = feats.copy()
    prof = make_profiles(meta, feats, feature_prefix="convae")
    np.testing.assert_array_equal(feats, before)
    assert list(prof.columns[:12]) == [
        "Metadata_cell_line",
        "Metadata_plate",
        "Metadata_well",
        "Metadata_row",
        "Metadata_column",
        "Metadata_time_h",
        "Metadata_drug",
        "Metadata_concentration_um",
        "Metadata_role",
        "Metadata_batch",
        "Metadata_n_images",
        "convae_0000",
    ]
    assert "Metadata_operator" not in prof.columns
    assert prof[["Metadata_well", "Metadata_time_h"]].values.tolist() == [
        ["A1", 0.0],
        ["A1", 4.0],
        ["A10", 0.0],
        ["A10", 4.0],
    ]
    # A1 at 0 h: rows 0 (field 1) and 2 (field 2) -> mean of [0,1,2] and [6,7,8]
    np.testing.assert_allclose(
        prof.iloc[0][["convae_0000", "convae_0001", "convae_0002"]].to_numpy(float), [3, 4, 5]
    )
    # A10 at 4 h: rows 5 and 7 -> [15,16,17] and [21,22,23]
    np.testing.assert_allclose(
        prof.iloc[3][feature_columns(3, "convae")].to_numpy(float), [18, 19, 20]
    )
    assert prof["Metadata_n_images"].tolist() == [2, 2, 2, 2]
    assert prof.iloc[3]["Metadata_drug"] == "Taxol"


def test_nan_rows_left_out_and_median() -> None:
    meta = metadata()
    feats = np.arange(8 * 2, dtype=np.float32).reshape(8, 2)
    feats[2] = np.nan  # A1 field 2 at 0 h unreadable
    prof = make_profiles(meta, feats, feature_prefix="f")
    np.testing.assert_allclose(prof.iloc[0][["f_0000", "f_0001"]].to_numpy(float), [0, 1])
    assert prof["Metadata_n_images"].tolist() == [1, 2, 2, 2]
    feats[0] = np.nan
    with pytest.warns(UserWarning, match="no image with features"):
        prof = make_profiles(meta, feats, feature_prefix="f", aggregation="median")
    assert len(prof) == 3
    np.testing.assert_allclose(
        prof.iloc[0][["f_0000", "f_0001"]].to_numpy(float), [4, 5]
    )  # rows 1 and 3


@pytest.mark.bad_input("embed")
def test_inconsistent_well_and_bad_shapes() -> None:
    meta = metadata()
    meta.loc[1, "drug"] = "Other"  # A1 field 1 at 4 h disagrees with field 2
    with pytest.raises(FeatureTableError, match=r"well A1\b.*drug"):
        make_profiles(meta, np.zeros((8, 2), np.float32))
    with pytest.raises(FeatureTableError, match="do not match"):
        make_profiles(metadata(), np.zeros((7, 2), np.float32))


@pytest.mark.bad_input("embed")
def test_write_read_roundtrip(tmp_path: Path) -> None:
    prof = make_profiles(metadata(), np.ones((8, 4), np.float32))
    path = write_profiles(prof, tmp_path / "profiles.parquet", extractor="convae")
    back = read_profiles(path)
    pd.testing.assert_frame_equal(back, prof)
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(FeatureTableError, match=r"bad\.parquet"):
        read_profiles(tmp_path / "bad.parquet")
    prof.drop(columns=["Metadata_well"]).to_parquet(tmp_path / "nowell.parquet")
    with pytest.raises(FeatureTableError, match="Metadata_well"):
        read_profiles(tmp_path / "nowell.parquet")
