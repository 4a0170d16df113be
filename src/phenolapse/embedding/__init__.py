"""Image -> feature extraction, per-image feature stores and well-level profiles.

- :func:`embed_manifest`: stream every image of a manifest (or folder) through an extractor into
  ``out/features.zarr`` and ``out/profiles.parquet``; resumable.
- :func:`embed_distributed`: the same on a Dask cluster (one worker per GPU).
- :func:`read_features`, :func:`read_profiles`, :func:`make_profiles`: read and aggregate.
"""

from phenolapse.embedding.config import EmbedConfig
from phenolapse.embedding.distributed import embed_distributed
from phenolapse.embedding.extract import embed_manifest
from phenolapse.embedding.profiles import make_profiles, read_profiles, write_profiles
from phenolapse.embedding.store import read_features

__all__ = [
    "EmbedConfig",
    "embed_distributed",
    "embed_manifest",
    "make_profiles",
    "read_features",
    "read_profiles",
    "write_profiles",
]
