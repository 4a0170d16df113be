"""The on-disk per-image feature store (``features.zarr``, format version 1).

Layout (see ``docs/formats.md``)::

    features.zarr/
        features        float32 (n_images, n_features), chunked by rows, NaN where not computed
        done            bool (n_images,), same row chunks: rows already computed
        metadata.parquet  the manifest rows, same order as ``features``
        skipped.csv     images that could not be read in the last run (``image_path, reason``)
        attrs           format_version, extractor, n_features, feature_prefix, fingerprint, ...

Writes go chunk by chunk (a whole chunk at once, features before ``done``), so an interrupted run
leaves only complete rows marked done and a rerun computes exactly the rows still missing. The
format itself (reading, creating, writing chunks) lives in :mod:`phenolapse.artefacts`; this
module adds the lock an embedding run holds while it writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from phenolapse.artefacts import (
    METADATA_NAME,
    SKIPPED_NAME,
    STORE_NAME,
    FeatureStore,
    create_store,
    read_features,
    resolve_store,
)
from phenolapse.io_utils import exclusive_lock

__all__ = [
    "LOCK_NAME",
    "METADATA_NAME",
    "SKIPPED_NAME",
    "STORE_NAME",
    "FeatureStore",
    "create_store",
    "output_lock",
    "read_features",
    "resolve_store",
]

LOCK_NAME = ".lock"


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold ``<store>.lock`` beside the store while writing; refuse while a live process has it."""
    lock = path.with_name(path.name + LOCK_NAME)
    with exclusive_lock(lock, label=f"{path}: feature store", sweep=path.parent):
        yield
