"""Dask extraction on a LocalCluster with 2 worker processes equals the single-process run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.embedding import EmbedConfig, embed_distributed, embed_manifest, read_features
from phenolapse.embedding.distributed import split_rows
from phenolapse.embedding.store import FeatureStore

pytest.importorskip("distributed")


def test_split_rows_whole_chunks_balanced() -> None:
    shards = split_rows(np.arange(100), 8, 3)
    assert [len(s) for s in shards] == [40, 32, 28]
    assert np.array_equal(np.concatenate(shards), np.arange(100))
    assert all(s[0] % 8 == 0 for s in shards)  # no chunk shared by two shards
    assert [s.tolist() for s in split_rows(np.array([1, 2, 50, 99]), 8, 2)] == [[1, 2], [50, 99]]
    assert split_rows(np.array([], dtype=int), 8, 2) == []


def test_local_cluster_two_workers_equals_single_process(
    plate_manifest: pd.DataFrame,
    weights: Path,
    small_config: Callable[..., EmbedConfig],
    tmp_path: Path,
) -> None:
    cfg = small_config(chunk_rows=4)
    single = embed_manifest(plate_manifest, weights=weights, out=tmp_path / "single", config=cfg)
    dist = embed_distributed(
        plate_manifest, weights=weights, out=tmp_path / "dist", config=cfg, n_workers=2
    )
    meta_s, feats_s = read_features(single)
    meta_d, feats_d = read_features(dist)
    pd.testing.assert_frame_equal(meta_s, meta_d)
    np.testing.assert_allclose(feats_d, feats_s, rtol=1e-6, atol=1e-7)
    assert FeatureStore(dist).done_mask().all()
    prof_s = pd.read_parquet(tmp_path / "single" / "profiles.parquet")
    prof_d = pd.read_parquet(tmp_path / "dist" / "profiles.parquet")
    pd.testing.assert_frame_equal(prof_s, prof_d, rtol=1e-6)
