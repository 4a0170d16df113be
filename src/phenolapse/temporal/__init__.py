"""Temporal drug effects from feature tables: distance to control, series, DTW clusters, effects.

Works on profiles tables (``Metadata_*`` + feature columns), so features from any tool can be
analysed; this package never imports torch.

- :mod:`~phenolapse.temporal.distance`: distance of each treatment to its plate's control;
- :mod:`~phenolapse.temporal.series`: smoothing, truncation and scaling of the curves;
- :mod:`~phenolapse.temporal.dtw`: DTW k-means and the choice of k;
- :mod:`~phenolapse.temporal.estimator`: :class:`DTWKMeans`, the same as a scikit-learn estimator;
- :mod:`~phenolapse.temporal.growth`: label-free confluence, Incucyte exports, GR values;
- :mod:`~phenolapse.temporal.annotate`: effect rules, user mapping, consensus over cell lines;
- :mod:`~phenolapse.temporal.pipeline`: all of it, with the output files.
"""

from phenolapse.temporal.annotate import annotate, consensus
from phenolapse.temporal.config import DTWClusterConfig, TemporalConfig
from phenolapse.temporal.distance import (
    distance_to_control,
    distance_to_control_with_replicates,
    nearest_time_index,
)
from phenolapse.temporal.estimator import DTWKMeans
from phenolapse.temporal.growth import (
    growth_rate_inhibition,
    image_confluence,
    read_incucyte_confluence,
    well_confluence,
)
from phenolapse.temporal.pipeline import TemporalResult, analyse, load_profiles, run_temporal
from phenolapse.temporal.series import SeriesSet, make_series

__all__ = [
    "DTWClusterConfig",
    "DTWKMeans",
    "SeriesSet",
    "TemporalConfig",
    "TemporalResult",
    "analyse",
    "annotate",
    "consensus",
    "distance_to_control",
    "distance_to_control_with_replicates",
    "growth_rate_inhibition",
    "image_confluence",
    "load_profiles",
    "make_series",
    "nearest_time_index",
    "read_incucyte_confluence",
    "run_temporal",
    "well_confluence",
]
