"""Profiles normalised against each plate's negative controls: :mod:`phenolapse.normalize`.

The module lives at the top of the package so that the temporal analysis, which never imports
torch or the embedding stage, uses the same normalisation; this name stays importable.
"""

from phenolapse.normalize import (
    MAD_SCALE,
    MIN_REFERENCE_ROWS,
    NORMALIZED_NAME,
    NormalizationConfig,
    NormalizedProfiles,
    normalize_profiles,
)

__all__ = [
    "MAD_SCALE",
    "MIN_REFERENCE_ROWS",
    "NORMALIZED_NAME",
    "NormalizationConfig",
    "NormalizedProfiles",
    "normalize_profiles",
]
