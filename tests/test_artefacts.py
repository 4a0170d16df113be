"""The shared artefact readers: version checks, tables without metadata, old series files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phenolapse.artefacts import (
    FORMAT_VERSION,
    FeatureStore,
    create_store,
    read_features,
    read_manifest,
    read_profiles,
    write_profiles,
)
from phenolapse.errors import FeatureTableError, ManifestError
from phenolapse.temporal.series import read_series
from phenolapse.vocabulary import CONDITION_KEYS, ROLES, SERIES_KEYS, UNIT_KEYS


def _profiles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_plate": ["P1", "P1"],
            "Metadata_well": ["A1", "A2"],
            "Metadata_time_h": [0.0, 0.0],
            "cnn_0000": [1.0, 2.0],
        }
    )


def _write_with_version(df: pd.DataFrame, path: Path, version: object) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {b"phenolapse": json.dumps({"format_version": version}).encode()}
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}), path)


def test_profiles_round_trip_carries_version(tmp_path: Path) -> None:
    path = write_profiles(_profiles(), tmp_path / "profiles.parquet", extractor="cnn")
    info = json.loads(pq.read_schema(path).metadata[b"phenolapse"])
    assert info == {"format_version": FORMAT_VERSION, "kind": "profiles", "extractor": "cnn"}
    pd.testing.assert_frame_equal(read_profiles(path), _profiles())


def test_newer_version_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.parquet"
    _write_with_version(_profiles(), path, FORMAT_VERSION + 1)
    with pytest.raises(FeatureTableError, match=rf"{re.escape(str(path))}: format version {FORMAT_VERSION + 1}"):
        read_profiles(path)
    _write_with_version(_profiles(), path, "x")
    with pytest.raises(FeatureTableError, match="format version 'x'"):
        read_profiles(path)


def test_table_without_metadata_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pandas(_profiles(), preserve_index=False), path)
    pd.testing.assert_frame_equal(read_profiles(path), _profiles())


def test_manifest_newer_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    _write_with_version(pd.DataFrame({"image_path": ["a.png"]}), path, FORMAT_VERSION + 1)
    with pytest.raises(ManifestError, match=rf"{re.escape(str(path))}: format version"):
        read_manifest(path)


def test_store_version_and_prefix(tmp_path: Path) -> None:
    meta = pd.DataFrame({"image_path": ["a", "b"], "plate": ["P1", "P1"]})
    store = create_store(
        tmp_path / "features.zarr",
        meta,
        n_features=3,
        chunk_rows=2,
        attrs={"feature_prefix": "cnn"},
    )
    fs = FeatureStore(store, mode="r+")
    fs.write_chunk(0, np.ones((2, 3), dtype=np.float32), np.ones(2, dtype=bool))
    got, feats = read_features(tmp_path)
    assert got.attrs["feature_prefix"] == fs.feature_prefix == "cnn"
    assert feats.shape == (2, 3)
    fs.group.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(FeatureTableError, match=r"features\.zarr: format version"):
        read_features(store)


def test_series_with_and_without_prefix(tmp_path: Path) -> None:
    new = pd.DataFrame(
        {
            **{c: ["x"] for c in SERIES_KEYS},
            "point": [0],
            "Metadata_time_h": [1.0],
            "value": [0.5],
        }
    )
    old = new.rename(columns=lambda c: c.removeprefix("Metadata_"))
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), tmp_path / "old.parquet")
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), tmp_path / "new.parquet")
    pd.testing.assert_frame_equal(read_series(tmp_path / "old.parquet"), new)
    pd.testing.assert_frame_equal(read_series(tmp_path / "new.parquet"), new)


def test_vocabulary_keys_agree() -> None:
    assert SERIES_KEYS == CONDITION_KEYS == [f"Metadata_{c}" for c in UNIT_KEYS]
    assert "negative_control" in ROLES and "treatment" in ROLES
