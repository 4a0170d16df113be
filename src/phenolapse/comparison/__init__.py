"""Comparing feature extractors on the same wells (SPEC section 6).

- :func:`run_comparison`: feature files and/or extractors -> ``comparison.csv`` (``extractor,
  task, metric, value``), its Markdown rendering, details and one figure per task;
- :func:`compare_profiles`: the same scores for in-memory profile sets;
- building blocks: :func:`replicate_map`, :func:`replicate_distances` (task 1),
  :func:`cluster_drugs` (task 2), :func:`classify_drugs` (task 3), and
  ``phenolapse.comparison.cost.measure_cost`` (needs torch; imported on demand).
"""

from phenolapse.comparison.classification import classify_drugs, top_k_accuracy
from phenolapse.comparison.clustering import cluster_drugs, cluster_quality
from phenolapse.comparison.config import CompareConfig
from phenolapse.comparison.profiles import (
    ProfileSet,
    align_profile_sets,
    load_profile_set,
    split_profiles,
)
from phenolapse.comparison.retrieval import replicate_distances, replicate_map
from phenolapse.comparison.run import (
    ComparisonResult,
    compare_profiles,
    run_comparison,
    to_markdown,
)

__all__ = [
    "CompareConfig",
    "ComparisonResult",
    "ProfileSet",
    "align_profile_sets",
    "classify_drugs",
    "cluster_drugs",
    "cluster_quality",
    "compare_profiles",
    "load_profile_set",
    "replicate_distances",
    "replicate_map",
    "run_comparison",
    "split_profiles",
    "to_markdown",
    "top_k_accuracy",
]
