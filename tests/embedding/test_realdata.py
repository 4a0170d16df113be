"""Real Incucyte frames (LIVECell SH-SY5Y) through the published ConvAE: features track growth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding import EmbedConfig, embed_manifest, read_profiles


def drift_correlations(profiles: pd.DataFrame) -> dict[str, float]:
    """Per well: Spearman correlation of time with the euclidean distance to time point 0."""
    feats = [c for c in profiles.columns if not c.startswith("Metadata_")]
    out = {}
    for well, g in profiles.groupby("Metadata_well"):
        g = g.sort_values("Metadata_time_h")
        x = g[feats].to_numpy(np.float64)
        dist = np.linalg.norm(x - x[0], axis=1)
        out[str(well)] = float(spearmanr(g["Metadata_time_h"], dist)[0])
    return out


def run(shared_data: Path, tmp_path: Path, pre: PreprocessConfig) -> dict[str, float]:
    images = shared_data / "livecell-shsy5y"
    weights = shared_data / "pheno-ml" / "trained_model.torch"
    cfg = EmbedConfig(preprocess=pre, progress=False)
    store = embed_manifest(images, weights=weights, out=tmp_path / "out", config=cfg)
    profiles = read_profiles(store.parent / "profiles.parquet")
    assert len(profiles) == 2 * 22 and (profiles["Metadata_n_images"] == 4).all()
    return drift_correlations(profiles)


def test_distance_to_first_time_point_rises_centre_crop(shared_data: Path, tmp_path: Path) -> None:
    # Measured: B10 0.77, C10 0.86 (euclidean, centre crop 256 -> 128 of each 704x520 tile).
    rho = run(shared_data, tmp_path, PreprocessConfig())
    assert set(rho) == {"B10", "C10"}
    assert np.mean(list(rho.values())) >= 0.8
    assert min(rho.values()) >= 0.7


def test_distance_to_first_time_point_rises_tiled(shared_data: Path, tmp_path: Path) -> None:
    # Tiling uses the whole frame (4 crops of 256 per 704x520 image); measured 0.89 in both wells.
    rho = run(shared_data, tmp_path, PreprocessConfig(mode="tile"))
    assert min(rho.values()) >= 0.8
