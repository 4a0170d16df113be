"""Configuration of the extractor comparison, shared by the command line, YAML files and the API."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from phenolapse.comparison.retrieval import DISTANCE_METRICS
from phenolapse.data.imageio import PreprocessConfig
from phenolapse.stage_config import Device, StageConfig, device_field


class CompareConfig(StageConfig):
    """Settings of the extractor comparison (shared by the CLI, YAML files and the API)."""

    section: ClassVar[str | None] = "compare"

    last_time_points: int = Field(
        default=5,
        ge=0,
        description="Keep each plate's last N time points for the tasks; 0 keeps all.",
    )
    top_concentration_only: bool = Field(
        default=True,
        description=(
            "Use each drug's top concentration (the reference) rather than all treatment wells."
        ),
    )
    normalize: Literal["none", "standardize", "control", "mad_robustize"] = Field(
        default="standardize",
        description=(
            "Per-plate feature scaling before retrieval, clustering and classification: "
            "``standardize`` (z-score over the plate), ``control`` (centre on the plate's negative"
            " controls), ``mad_robustize`` (robust z-score against the plate's negative controls, "
            "as ``embed/profiles_normalized.parquet``), or ``none``. Replicate distances always "
            "use raw features, as the reference."
        ),
    )
    retrieval_distance: str = Field(
        default="cosine",
        description="copairs similarity for mAP (``cosine``, ``correlation``, ``euclidean``, ...).",
    )
    distance_metrics: list[str] = Field(
        default_factory=lambda: list(DISTANCE_METRICS),
        description="Metrics of the median replicate distance.",
    )
    null_size: int = Field(
        default=1000,
        ge=10,
        description="Permutations in the null distribution of the per-drug mAP p-values.",
    )
    p_threshold: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description=(
            "Significance level of the per-drug mAP p-values (a drug is retrieved below it)."
        ),
    )
    embedding: Literal["umap", "pca"] = Field(
        default="umap",
        description=(
            "2-D embedding before HDBSCAN: ``umap`` (the reference) or ``pca`` (fast, "
            "deterministic)."
        ),
    )
    umap_n_neighbors: int = Field(
        default=10, ge=2, description="UMAP neighbourhood size (capped by the number of profiles)."
    )
    min_cluster_sizes: list[int] = Field(
        default_factory=lambda: [3, 5, 10, 15, 20],
        description="HDBSCAN minimum cluster sizes scanned.",
    )
    n_splits: int = Field(
        default=5,
        ge=2,
        description="Folds of the well-grouped cross-validation (capped by the wells per class).",
    )
    pca_components: int = Field(
        default=50,
        ge=1,
        description="PCA dimensions before the logistic regression for wide features.",
    )
    logreg_c: float = Field(
        default=1.0, gt=0, description="Inverse L2 strength of the logistic regression."
    )
    convae_features: Literal["latent", "pooled"] = Field(
        default="latent",
        description=(
            "Features of the ConvAE extractors, trained and random-init alike: ``latent`` (the "
            "flattened latent, the reference) or ``pooled`` (mean and max over space of every "
            "encoder activation)."
        ),
    )
    cost_images: int = Field(
        default=64,
        ge=0,
        description="Images timed per extractor (the same sample for all); 0 skips timing.",
    )
    device: Device = device_field("Device the extractors run on")
    weights_dir: Path | None = Field(
        default=None, description="Folder searched for pretrained networks' published weight files."
    )
    preprocess: PreprocessConfig = Field(
        default_factory=lambda: PreprocessConfig.model_validate({}),
        description=(
            "Crop / resize / intensity scaling of the frames the extractors see (each network's "
            "input size replaces ``image_size``)."
        ),
    )
    nan_policy: Literal["raise", "drop"] = Field(
        default="raise",
        description="``raise`` on NaN features (naming the wells) or ``drop`` those rows.",
    )
    seed: int = Field(
        default=0,
        description="Seed of UMAP, folds, the random-init ConvAE and the permutation null.",
    )
    figures: bool = Field(default=True, description="Write one figure per task.")
    progress: bool = Field(default=True, description="Show progress bars while the extractors run.")
