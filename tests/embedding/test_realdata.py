"""Real Incucyte frames (LIVECell SH-SY5Y) through the published ConvAE: features track growth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding import EmbedConfig, embed_manifest, read_profiles


def drift_correlations(profiles: pd.DataFrame, *, zscore: bool = False) -> dict[str, float]:
    """Per well: Spearman correlation of time with the euclidean distance to time point 0.

    ``zscore`` first scales every feature to zero mean and unit variance over the well's own
    time course (constant features dropped), so that every feature counts alike.
    """
    feats = [c for c in profiles.columns if not c.startswith("Metadata_")]
    out = {}
    for well, g in profiles.groupby("Metadata_well"):
        g = g.sort_values("Metadata_time_h")
        x = g[feats].to_numpy(np.float64)
        if zscore:
            sd = x.std(axis=0)
            x = (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]
        dist = np.linalg.norm(x - x[0], axis=1)
        out[str(well)] = float(spearmanr(g["Metadata_time_h"], dist)[0])
    return out


def run(
    shared_data: Path, tmp_path: Path, pre: PreprocessConfig, **embed: object
) -> dict[str, float]:
    return drift_correlations(profiles_of(shared_data, tmp_path, pre, **embed))


def profiles_of(
    shared_data: Path, tmp_path: Path, pre: PreprocessConfig, **embed: object
) -> pd.DataFrame:
    images = shared_data / "livecell-shsy5y"
    weights = shared_data / "pheno-ml" / "trained_model.torch"
    cfg = EmbedConfig.model_validate({"preprocess": pre, "progress": False, **embed})
    store = embed_manifest(images, weights=weights, out=tmp_path / "out", config=cfg)
    profiles = read_profiles(store.parent / "profiles.parquet")
    assert len(profiles) == 2 * 22 and (profiles["Metadata_n_images"] == 4).all()
    return profiles


def test_default_features_follow_growth_every_feature_counting_alike(
    shared_data: Path, tmp_path: Path
) -> None:
    # Measured with the default ``stats`` features, z-scored per field: B10 0.91, C10 0.88
    # (raw 0.86 / 0.81). The flattened latent gives 0.86 / 0.88 z-scored, the pooled
    # activations -0.07 / 0.20: most of their numbers do not change steadily as cells grow.
    profiles = profiles_of(shared_data, tmp_path, PreprocessConfig())
    assert len([c for c in profiles.columns if c.startswith("convae_")]) == 40
    rho = drift_correlations(profiles, zscore=True)
    assert set(rho) == {"B10", "C10"}
    assert min(rho.values()) >= 0.8, rho


def test_distance_to_first_time_point_rises_centre_crop(shared_data: Path, tmp_path: Path) -> None:
    # Measured: B10 0.77, C10 0.86 (euclidean, centre crop 256 -> 128 of each 704x520 tile).
    rho = run(shared_data, tmp_path, PreprocessConfig(), convae_features="latent")
    assert set(rho) == {"B10", "C10"}
    assert np.mean(list(rho.values())) >= 0.8
    assert min(rho.values()) >= 0.7


def test_distance_to_first_time_point_rises_tiled(shared_data: Path, tmp_path: Path) -> None:
    # Tiling uses the whole frame (4 crops of 256 per 704x520 image); measured 0.89 in both wells.
    rho = run(shared_data, tmp_path, PreprocessConfig(mode="tile"), convae_features="latent")
    assert min(rho.values()) >= 0.8


@pytest.mark.slow
def test_stats_features_of_a_model_trained_on_the_small_preset(
    shared_data: Path, tmp_path: Path
) -> None:
    """Train the CPU recipe (64 px, 3 epochs, 1,000 images) on a simulated ``small`` screen.

    Measured: z-scored B10 0.90, C10 0.86 (raw 0.81 / 0.78); latent 0.71 / 0.85, pooled
    -0.23 / 0.83. About 20 minutes on two CPU cores.
    """
    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.training import make_config, train

    screen = simulate_screen(tmp_path / "screen", preset="small", seed=0, progress=False)
    manifest = build_manifest(screen.images_dir, platemap=screen.platemap_path, progress=False)
    settings = {
        "epochs": 3, "device": "cpu", "progress": False, "seed": 0, "batch_size": 32,
        "preprocess": {"crop_size": 256, "image_size": 64}, "view_steps": "joint",
        "lr_decay_epoch": 2, "max_images": 1000,
        "crops": [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}],
    }  # fmt: skip
    model = train(manifest, out=tmp_path / "train", config=make_config(settings)).model_path
    cfg = EmbedConfig.model_validate({"preprocess": {"image_size": 64}, "progress": False})
    store = embed_manifest(
        shared_data / "livecell-shsy5y", weights=model, out=tmp_path / "out", config=cfg
    )
    rho = drift_correlations(read_profiles(store.parent / "profiles.parquet"), zscore=True)
    assert min(rho.values()) >= 0.8, rho
