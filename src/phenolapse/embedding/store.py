"""The on-disk per-image feature store (``features.zarr``, format version 1).

Layout (see ``docs/formats.md``)::

    features.zarr/
        features        float32 (n_images, n_features), chunked by rows, NaN where not computed
        done            bool (n_images,), same row chunks: rows already computed
        metadata.parquet  the manifest rows, same order as ``features``
        skipped.csv     images that could not be read in the last run (``image_path, reason``)
        attrs           format_version, extractor, n_features, feature_prefix, fingerprint, ...

Writes go chunk by chunk (a whole chunk at once, features before ``done``), so an interrupted run
leaves only complete rows marked done and a rerun computes exactly the rows still missing.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from phenolapse.errors import FeatureTableError
from phenolapse.io_utils import FORMAT_VERSION, atomic_path, exclusive_lock, write_parquet

log = logging.getLogger(__name__)

STORE_NAME = "features.zarr"
METADATA_NAME = "metadata.parquet"
SKIPPED_NAME = "skipped.csv"
LOCK_NAME = ".lock"


def resolve_store(path: str | Path) -> Path:
    """The ``features.zarr`` folder for ``path``: the store itself or the folder that holds it."""
    path = Path(path)
    if path.suffix == ".zarr":
        return path
    return path / STORE_NAME


def _open_group(path: Path, mode: Literal["r", "r+", "a", "w"]) -> Any:
    import zarr

    try:
        return zarr.open_group(str(path), mode=mode, zarr_format=2)
    except TypeError:  # zarr 2 has no zarr_format argument
        return zarr.open_group(str(path), mode=mode)


def _create_array(group: Any, name: str, **kwargs: Any) -> Any:
    if hasattr(group, "create_array"):
        return group.create_array(name, **kwargs)
    return group.create_dataset(name, **kwargs)  # zarr 2


def create_store(
    path: Path,
    metadata: pd.DataFrame,
    *,
    n_features: int,
    chunk_rows: int,
    attrs: dict[str, Any],
) -> Path:
    """Create an empty store atomically: arrays full of NaN / False plus ``metadata.parquet``."""
    n = len(metadata)
    chunk_rows = max(1, min(chunk_rows, n))
    with atomic_path(path) as tmp:
        group = _open_group(tmp, "w")
        _create_array(
            group,
            "features",
            shape=(n, n_features),
            chunks=(chunk_rows, n_features),
            dtype="float32",
            fill_value=np.nan,
        )
        _create_array(
            group, "done", shape=(n,), chunks=(chunk_rows,), dtype="bool", fill_value=False
        )
        group.attrs.update(
            {"format_version": FORMAT_VERSION, "n_features": int(n_features), **attrs}
        )
        meta = metadata.reset_index(drop=True).copy()
        meta.attrs = {}
        write_parquet(meta, tmp / METADATA_NAME, kind="features_metadata")
    return path


class FeatureStore:
    """An open ``features.zarr``: chunk-wise reads and writes of features and done flags."""

    def __init__(self, path: str | Path, *, mode: Literal["r", "r+"] = "r") -> None:
        self.path = resolve_store(path)
        if not (self.path / METADATA_NAME).is_file():
            raise FeatureTableError(
                f"{self.path}: not a phenolapse feature store (no {METADATA_NAME}); "
                f"run 'phenolapse embed' to create it"
            )
        try:
            self.group = _open_group(self.path, mode)
            self.features = self.group["features"]
            self.done = self.group["done"]
        except Exception as exc:
            raise FeatureTableError(
                f"{self.path}: cannot open the Zarr feature store ({exc})"
            ) from exc
        self.attrs: dict[str, Any] = dict(self.group.attrs)
        version = self.attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise FeatureTableError(
                f"{self.path}: feature store format version {version}, this phenolapse reads "
                f"version {FORMAT_VERSION}"
            )

    @property
    def n_rows(self) -> int:
        """Number of images (rows)."""
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        """Length of each feature vector."""
        return int(self.features.shape[1])

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk: the unit of writing."""
        return int(self.features.chunks[0])

    def metadata(self) -> pd.DataFrame:
        """The manifest rows stored with the features, in row order."""
        return pd.read_parquet(self.path / METADATA_NAME)

    def done_mask(self) -> np.ndarray:
        """Boolean mask of rows already computed."""
        return np.asarray(self.done[:], dtype=bool)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Features of rows ``start:stop`` (NaN where not computed)."""
        return np.asarray(self.features[start:stop], dtype=np.float32)

    def write_chunk(self, chunk: int, values: np.ndarray, done: np.ndarray) -> None:
        """Write one whole chunk: features first, then the done flags, so a crash between the
        two leaves the rows marked not done."""
        start = chunk * self.chunk_rows
        stop = min(start + self.chunk_rows, self.n_rows)
        if values.shape != (stop - start, self.n_features):
            raise ValueError(f"chunk {chunk}: expected {(stop - start, self.n_features)} values")
        self.features[start:stop] = values
        self.done[start:stop] = done

    def write_skipped(self, skipped: pd.DataFrame) -> Path:
        """Write (or remove, when empty) the list of images that could not be read."""
        from phenolapse.io_utils import write_csv

        target = self.path / SKIPPED_NAME
        if skipped.empty:
            target.unlink(missing_ok=True)
        else:
            write_csv(skipped, target)
        return target

    def skipped(self) -> pd.DataFrame:
        """Images that could not be read in the last run (``image_path, reason``)."""
        target = self.path / SKIPPED_NAME
        if not target.is_file():
            return pd.DataFrame(
                {"image_path": pd.Series(dtype=str), "reason": pd.Series(dtype=str)}
            )
        return pd.read_csv(target, dtype=str, keep_default_na=False)


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold ``<store>.lock`` beside the store while writing; refuse while a live process has it."""
    lock = path.with_name(path.name + LOCK_NAME)
    with exclusive_lock(lock, label=f"{path}: feature store", sweep=path.parent):
        yield


def read_features(
    path: str | Path, *, drop_missing: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read per-image features written by ``phenolapse embed``.

    Parameters
    ----------
    path
        The ``features.zarr`` folder, or the output folder that holds it.
    drop_missing
        Leave out rows not computed (unreadable images, interrupted runs); otherwise they are
        kept as NaN rows, with a warning.

    Returns
    -------
    metadata, features
        One row per image in the same order: the manifest columns (including ``image_path``) and
        a float32 array ``(n_images, n_features)``.
    """
    store = FeatureStore(path)
    meta = store.metadata()
    feats = store.read_rows(0, store.n_rows)
    done = store.done_mask()
    if len(meta) != len(feats):
        raise FeatureTableError(
            f"{store.path}: {len(meta)} metadata rows but {len(feats)} feature rows; the store "
            f"is damaged, rerun 'phenolapse embed' into a new folder"
        )
    if not done.all():
        if drop_missing:
            keep = np.flatnonzero(done)
            meta = meta.iloc[keep].reset_index(drop=True)
            feats = feats[keep]
        else:
            warnings.warn(
                f"{store.path}: {int((~done).sum())} of {len(done)} images have no features "
                f"(NaN rows; see {SKIPPED_NAME} or rerun 'phenolapse embed' to finish)",
                stacklevel=2,
            )
    meta.attrs["extractor"] = store.attrs.get("extractor")
    meta.attrs["feature_prefix"] = store.attrs.get("feature_prefix")
    return meta, feats
