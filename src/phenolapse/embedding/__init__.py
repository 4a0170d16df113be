"""Image -> feature extraction, per-image feature stores and well-level profiles.

- :func:`embed_manifest`: stream every image of a manifest (or folder) through an extractor into
  ``out/features.zarr``, ``out/profiles.parquet`` and ``out/profiles_normalized.parquet``;
  resumable.
- :func:`embed_distributed`: the same on a Dask cluster (one worker per GPU).
- :func:`read_features`, :func:`read_profiles`, :func:`make_profiles`: read and aggregate (the
  readers and writers of every artefact live in :mod:`phenolapse.artefacts`);
  :func:`load_profiles`: profiles from either a table or a store.
- :func:`normalize_profiles`: robust z-scores (and optional sphering) against each plate's
  controls.

Names are imported on first use, so ``phenolapse.embedding.normalize`` works without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phenolapse._lazy import lazy_modules

if TYPE_CHECKING:
    from phenolapse.artefacts import read_features, read_profiles, write_profiles
    from phenolapse.embedding.config import EmbedConfig
    from phenolapse.embedding.distributed import embed_distributed
    from phenolapse.embedding.extract import embed_manifest
    from phenolapse.embedding.normalize import NormalizationConfig, normalize_profiles
    from phenolapse.embedding.profiles import load_profiles, make_profiles

_MODULES = {
    "phenolapse.embedding.config": ("EmbedConfig",),
    "phenolapse.embedding.distributed": ("embed_distributed",),
    "phenolapse.embedding.extract": ("embed_manifest",),
    "phenolapse.embedding.profiles": ("load_profiles", "make_profiles"),
    "phenolapse.artefacts": ("read_profiles", "write_profiles", "read_features"),
    "phenolapse.embedding.normalize": ("NormalizationConfig", "normalize_profiles"),
}

__all__ = [
    "EmbedConfig", "NormalizationConfig", "embed_distributed", "embed_manifest", "load_profiles",
    "make_profiles", "normalize_profiles", "read_features", "read_profiles", "write_profiles",
]


__getattr__, __dir__ = lazy_modules(__name__, _MODULES, __all__)
