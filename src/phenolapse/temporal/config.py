"""Configuration of the temporal stage, shared by the CLI, YAML files and the Python API.

One :class:`TemporalConfig` holds every option of SPEC section 7: the distance metric, the series
processing (reference defaults), the DTW clustering, the growth readout and the annotation
thresholds.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from phenolapse.normalize import NormalizationConfig
from phenolapse.stage_config import StageConfig
from phenolapse.vocabulary import Effect

Metric = Literal["euclidean", "cosine", "correlation", "braycurtis"]


class DistanceConfig(BaseModel):
    """How the distance to the control trajectory is measured (SPEC 7.1-7.3)."""

    model_config = ConfigDict(extra="forbid")

    metric: Metric = Field(
        default="euclidean",
        description=(
            "``euclidean`` (reference), ``cosine``, ``correlation`` or ``braycurtis`` (scipy "
            "conventions)."
        ),
    )
    n_bootstrap: int = Field(
        default=200,
        ge=0,
        description=(
            "Bootstrap resamples of the replicate wells for the 95 % band (0 disables the band)."
        ),
    )
    null_draws: int = Field(
        default=50,
        ge=1,
        description=(
            "Random draws of control wells used to estimate the control's own spread (the distance"
            " a mean of n control wells has from the remaining control wells)."
        ),
    )
    null_quantile: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Quantile of that null distribution reported as ``null_distance``.",
    )
    seed: int = Field(default=0, description="Seed of the bootstrap and of the null draws.")


class SeriesConfig(BaseModel):
    """Series processing before clustering (SPEC 7.4); the defaults are the reference's."""

    model_config = ConfigDict(extra="forbid")

    min_time_h: float = Field(
        default=0.0,
        description="Keep time points strictly after this time (hours after drug addition).",
    )
    length: int | None = Field(
        default=None,
        ge=2,
        description="Common length every series is truncated to; None uses the shortest series.",
    )
    rolling_window: int = Field(
        default=5,
        ge=1,
        description="Window (time points) of the trailing rolling median; 1 disables smoothing.",
    )
    drop_first: int = Field(
        default=4,
        ge=0,
        description=(
            "Points removed at the start of each series after smoothing (the reference: 4)."
        ),
    )
    drop_last: int = Field(
        default=1,
        ge=0,
        description="Points removed at the end of each series after smoothing (the reference: 1).",
    )
    scaling: Literal["minmax_drug", "minmax_series", "none"] = Field(
        default="minmax_drug",
        description=(
            "``minmax_drug``: min-max to [0, 1] per (cell line, drug) jointly over its "
            "concentrations (reference); ``minmax_series``: per series; ``none``."
        ),
    )
    on_gap: Literal["interpolate", "drop", "raise"] = Field(
        default="interpolate",
        description=(
            "A series missing time points of its plate's time grid: ``interpolate`` linearly in "
            "time, ``drop`` the series (with a warning) or ``raise``."
        ),
    )
    on_short: Literal["drop", "raise"] = Field(
        default="drop",
        description="A series shorter than ``length``: ``drop`` it (with a warning) or ``raise``.",
    )


class GrowthConfig(BaseModel):
    """Label-free confluence from the images (see :mod:`phenolapse.temporal.growth`)."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(
        default=9,
        ge=3,
        description="Side (pixels) of the local standard-deviation window, about a cell's radius.",
    )
    smooth_sigma: float = Field(
        default=4.0,
        ge=0,
        description=(
            "Gaussian smoothing (pixels) of the texture map, which fills cell interiors and "
            "removes isolated noise pixels (the morphological clean-up)."
        ),
    )
    threshold: Literal["plate_otsu", "otsu"] | float = Field(
        default="plate_otsu",
        description=(
            "``plate_otsu``: Otsu threshold on the texture histogram pooled over each plate "
            "(robust to nearly empty and nearly full fields); ``otsu``: per image; a number: fixed"
            " texture threshold."
        ),
    )
    max_texture: float = Field(
        default=0.25,
        gt=0,
        description=(
            "Upper edge of the texture histogram (texture values above are counted in the last "
            "bin)."
        ),
    )


class AnnotationConfig(BaseModel):
    """Thresholds of the automatic effect annotation (rules in :mod:`phenolapse.temporal.annotate`)."""

    model_config = ConfigDict(extra="forbid")

    full_kill_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "End confluence below this fraction of the start confluence: cells died (cytotoxic)."
        ),
    )
    fall_fraction: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description=(
            "End confluence below this fraction of its maximum after drug addition: partial death."
        ),
    )
    gr_cytotoxic: float = Field(
        default=-0.1,
        description=(
            "GR at the end below this: cell mass fell (partial death unless "
            "``full_kill_fraction``)."
        ),
    )
    gr_no_effect: float = Field(
        default=0.92, description="GR at the end at or above this: growth like the control."
    )
    gr_borderline: float = Field(
        default=0.8,
        description=(
            "GR at the end in [gr_borderline, gr_no_effect): slight inhibition, decided by the "
            "image features (effect -> mixed, none -> no_effect); growth alone calls it mixed."
        ),
    )
    gr_stasis: float = Field(
        default=0.3,
        description=(
            "GR over the second half of the time course (``gr_late``) at or below this: growth has"
            " stopped with cells alive (cytostatic); above it growth is slowed (mixed)."
        ),
    )
    distance_effect: float = Field(
        default=1.5,
        gt=0,
        description=(
            "Maximum smoothed distance, in units of the control's own spread (``null_distance``), "
            "above which the image features show an effect."
        ),
    )
    sustained_effect: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Mean smoothed distance over the second half of the time course, in the same units, "
            "above which the features also show an effect: a moderate change that persists (e.g. a"
            " drug that alters morphology without touching growth) rather than a passing "
            "excursion."
        ),
    )
    late_level: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description=(
            "Centroid shape cut-off (on min-max scaled series): the level of the last fifth that "
            'counts as "stays high".'
        ),
    )
    peak_fall: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description=(
            "Centroid shape cut-off (on min-max scaled series): the drop from the peak that counts"
            ' as "falls back".'
        ),
    )
    progress_lost: float = Field(
        default=-0.3,
        description=(
            "Progress along the control's path at the end (``progress_end``; the control ends at "
            "1) below this: the well moved back well past its start, cells were lost (cytotoxic)."
        ),
    )
    progress_collapse: float = Field(
        default=0.6,
        gt=0,
        description=(
            "Fall from the maximum progress to the end (``progress_fall``) at or above this, "
            "ending at or below ``progress_stalled``: the well advanced, then lost what it had "
            "gained (cytotoxic)."
        ),
    )
    progress_fall: float = Field(
        default=0.13,
        gt=0,
        description=(
            "``progress_fall`` at or above this (short of a collapse): the well advanced, then "
            "lost ground (mixed)."
        ),
    )
    progress_beyond: float = Field(
        default=1.65,
        description=(
            "``progress_end`` above this: the well went further along the control's path than the "
            "control itself. Drugs do not make cells outgrow their control; this is cells rounding"
            " up or debris that resemble a denser field (mixed)."
        ),
    )
    progress_like_control: float = Field(
        default=0.95,
        description=(
            "``progress_end`` at or above this (up to ``progress_beyond``): the well advanced like"
            " the control; a distance from the control is a change of shape only (no_effect, "
            "``morphology_change``)."
        ),
    )
    progress_stalled: float = Field(
        default=0.45,
        description=(
            "``progress_end`` at or below this: the well stopped where it was at drug addition "
            "(cytostatic)."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> AnnotationConfig:
        if not self.gr_cytotoxic <= self.gr_borderline <= self.gr_no_effect:
            raise ValueError("need gr_cytotoxic <= gr_borderline <= gr_no_effect")
        order = (
            self.progress_lost,
            self.progress_stalled,
            self.progress_like_control,
            self.progress_beyond,
        )
        if list(order) != sorted(order):
            raise ValueError(
                "need progress_lost <= progress_stalled <= progress_like_control <= progress_beyond"
            )
        if self.progress_fall > self.progress_collapse:
            raise ValueError("need progress_fall <= progress_collapse")
        return self


class DTWClusterConfig(StageConfig):
    """Options of the DTW clustering, shared by the CLI, YAML files and the Python API."""

    section: ClassVar[str | None] = "cluster"

    k: int | None = Field(
        None,
        ge=1,
        description=(
            "Number of clusters; None selects k from ``ks`` by the silhouette on DTW distances."
        ),
    )
    ks: list[int] = Field(
        default_factory=lambda: list(range(2, 10)),
        description=(
            "Candidate numbers of clusters for the selection (the reference's range: 2..9)."
        ),
    )
    window: int | None = Field(
        None,
        ge=0,
        description=(
            "Sakoe-Chiba radius in time steps; None for unconstrained DTW. A radius about the "
            "largest expected time shift (e.g. a fifth of the series length) allows shifted copies"
            " of a shape to align while stopping the over-warping that makes different shapes look"
            " alike."
        ),
    )
    n_init: int = Field(
        3,
        ge=1,
        description=(
            "Restarts from different k-means++ seeds; the run with the lowest inertia is kept."
        ),
    )
    max_iter: int = Field(50, ge=1, description="Cap on assignment/update rounds of each restart.")
    seed: int = Field(
        0,
        ge=0,
        description=(
            "Seed of the k-means++ seeding of the DTW clustering; equal seeds give equal results."
        ),
    )
    subsample: int | None = Field(
        400,
        ge=2,
        description=(
            "The restarts cluster a random subsample of this many series, the one with the lowest "
            "inertia there is refined on all series; None runs the restarts on all series "
            "(slower)."
        ),
    )

    def kmeans_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dtw_kmeans` and :func:`select_k` taken from this config."""
        return {
            "window": self.window,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "seed": self.seed,
            "subsample": self.subsample,
        }

    @model_validator(mode="after")
    def _check_ks(self) -> DTWClusterConfig:
        if not self.ks or any(k < 2 for k in self.ks):
            raise ValueError("ks must be a non-empty list of cluster counts >= 2")
        return self


class TemporalConfig(StageConfig):
    """Every option of the temporal stage (distance, series, clustering, growth, annotation)."""

    section: ClassVar[str | None] = "temporal"

    normalization: NormalizationConfig = Field(
        default_factory=NormalizationConfig,
        description=(
            "Normalisation of the profiles against each plate's negative controls before any "
            "distance (robust z-scores by default; ``method: none`` is the reference). Idempotent:"
            " profiles already normalised the same way come out unchanged."
        ),
    )
    distance: DistanceConfig = Field(
        default_factory=DistanceConfig,
        description="Distance of each treatment to the plate's control trajectory (SPEC 7.1-7.3).",
    )
    series: SeriesConfig = Field(
        default_factory=SeriesConfig,
        description="Series processing before clustering (SPEC 7.4; the reference's defaults).",
    )
    cluster: DTWClusterConfig = Field(
        default_factory=lambda: DTWClusterConfig.model_validate({}),
        description="DTW k-means clustering of the series (SPEC 7.5).",
    )
    growth: GrowthConfig = Field(
        default_factory=GrowthConfig, description="Label-free confluence measured on the images."
    )
    annotation: AnnotationConfig = Field(
        default_factory=AnnotationConfig,
        description=(
            "Thresholds of the effect annotation rules (written to ``annotation_rules.md``)."
        ),
    )
    cluster_effects: dict[int, Effect] | None = (
        Field(
            default=None,
            description=(
                "Optional user mapping cluster id -> effect that overrides the automatic one."
            ),
        )
    )
    use_features: bool = Field(
        default=True, description="Use the image-feature distance in the annotation."
    )
    use_growth: bool = Field(
        default=True, description="Use the growth readout (confluence, GR) in the annotation."
    )
    progress: bool = Field(
        default=True, description="Show progress bars (confluence measurement, clustering)."
    )
