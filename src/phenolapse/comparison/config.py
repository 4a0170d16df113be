"""Configuration of the extractor comparison, shared by the command line, YAML files and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from phenolapse.comparison.retrieval import DISTANCE_METRICS
from phenolapse.data.imageio import PreprocessConfig


class CompareConfig(BaseModel):
    """Settings of the extractor comparison (shared by the CLI, YAML files and the API).

    Attributes
    ----------
    last_time_points
        Time points per plate (the latest ones) the tasks use; 0 uses all.
    top_concentration_only
        Use each drug's top concentration (the reference) rather than all treatment wells.
    normalize
        Per-plate feature scaling before retrieval, clustering and classification:
        ``standardize`` (z-score over the plate), ``control`` (centre on the plate's negative
        controls), ``mad_robustize`` (robust z-score against the plate's negative controls, as
        ``embed/profiles_normalized.parquet``), or ``none``. Replicate distances always use raw
        features, as the reference.
    retrieval_distance
        copairs similarity for mAP (``cosine``, ``correlation``, ``euclidean``, ...).
    distance_metrics
        Metrics of the median replicate distance.
    null_size, p_threshold
        Permutation null and significance level of the per-drug mAP p-values.
    embedding
        2-D embedding before HDBSCAN: ``umap`` (the reference) or ``pca`` (fast, deterministic).
    umap_n_neighbors
        UMAP neighbourhood size (capped by the number of profiles).
    min_cluster_sizes
        HDBSCAN minimum cluster sizes scanned.
    n_splits
        Folds of the well-grouped cross-validation (capped by the wells per class).
    pca_components
        PCA dimensions before the logistic regression for wide features.
    logreg_c
        Inverse L2 strength of the logistic regression.
    convae_features
        Features of the ConvAE extractors, trained and random-init alike: ``latent`` (the
        flattened latent, the reference) or ``pooled`` (mean and max over space of every encoder
        activation).
    cost_images
        Images timed per extractor (the same sample for all); 0 skips timing.
    device
        Device for running extractors (``cpu``, ``cuda``, ``auto``).
    weights_dir
        Folder searched for pretrained networks' published weight files.
    nan_policy
        ``raise`` on NaN features (naming the wells) or ``drop`` those rows.
    seed
        Seed of UMAP, folds, the random-init ConvAE and the permutation null.
    figures
        Write one figure per task.
    progress
        Show progress bars.
    """

    model_config = ConfigDict(extra="forbid")

    last_time_points: int = Field(default=5, ge=0)
    top_concentration_only: bool = True
    normalize: Literal["none", "standardize", "control", "mad_robustize"] = "standardize"
    retrieval_distance: str = "cosine"
    distance_metrics: list[str] = Field(default_factory=lambda: list(DISTANCE_METRICS))
    null_size: int = Field(default=1000, ge=10)
    p_threshold: float = Field(default=0.05, gt=0, lt=1)
    embedding: Literal["umap", "pca"] = "umap"
    umap_n_neighbors: int = Field(default=10, ge=2)
    min_cluster_sizes: list[int] = Field(default_factory=lambda: [3, 5, 10, 15, 20])
    n_splits: int = Field(default=5, ge=2)
    pca_components: int = Field(default=50, ge=1)
    logreg_c: float = Field(default=1.0, gt=0)
    convae_features: Literal["latent", "pooled"] = "latent"
    cost_images: int = Field(default=64, ge=0)
    device: str = "cpu"
    weights_dir: Path | None = None
    preprocess: PreprocessConfig = Field(
        default_factory=lambda: PreprocessConfig.model_validate({})
    )
    nan_policy: Literal["raise", "drop"] = "raise"
    seed: int = 0
    figures: bool = True
    progress: bool = True
