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

from phenolapse._lazy import lazy_exports

if TYPE_CHECKING:
    from phenolapse.artefacts import read_features, read_profiles, write_profiles
    from phenolapse.embedding.config import EmbedConfig
    from phenolapse.embedding.distributed import embed_distributed
    from phenolapse.embedding.extract import embed_manifest
    from phenolapse.embedding.normalize import NormalizationConfig, normalize_profiles
    from phenolapse.embedding.profiles import load_profiles, make_profiles

_EXPORTS = {
    "EmbedConfig": "phenolapse.embedding.config",
    "embed_distributed": "phenolapse.embedding.distributed",
    "embed_manifest": "phenolapse.embedding.extract",
    "load_profiles": "phenolapse.embedding.profiles",
    "make_profiles": "phenolapse.embedding.profiles",
    "read_profiles": "phenolapse.artefacts",
    "write_profiles": "phenolapse.artefacts",
    "read_features": "phenolapse.artefacts",
    "NormalizationConfig": "phenolapse.embedding.normalize",
    "normalize_profiles": "phenolapse.embedding.normalize",
}

__all__ = [
    "EmbedConfig", "NormalizationConfig", "embed_distributed", "embed_manifest", "load_profiles",
    "make_profiles", "normalize_profiles", "read_features", "read_profiles", "write_profiles",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
