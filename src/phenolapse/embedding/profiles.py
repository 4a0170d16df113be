"""Well-level profiles: per-image features averaged per (plate, well, time point).

A profile table has ``Metadata_*`` columns and then one column per feature (``convae_0000`` ...),
the convention pycytominer and copairs read directly. The mean runs over fields, tiles and crops
(per-image features are already the mean over an image's crops); images without features (NaN
rows: unreadable files) are left out and counted in no ``Metadata_n_images``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.artefacts import (
    PROFILE_GROUP_KEYS,
    FeatureStore,
    is_store,
    read_features,
    read_profiles,
    table_metadata,
    write_profiles,
)
from phenolapse.errors import FeatureTableError
from phenolapse.io_utils import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "extra_metadata_columns",
    "feature_columns",
    "load_profiles",
    "make_profiles",
    "profiles_from_store",
    "read_profiles",
    "write_profiles",
]

GROUP_KEYS = PROFILE_GROUP_KEYS
PROFILE_METADATA = [
    "cell_line",
    "plate",
    "well",
    "row",
    "column",
    "time_h",
    "drug",
    "concentration_um",
    "role",
]
_PER_IMAGE = {"image_path", "field", "tile"}


def feature_columns(n_features: int, prefix: str) -> list[str]:
    """Feature column names ``<prefix>_0000 ... <prefix>_<n-1>`` (at least 4 digits)."""
    width = max(4, len(str(n_features - 1)))
    return [f"{prefix}_{i:0{width}d}" for i in range(n_features)]


def extra_metadata_columns(metadata: pd.DataFrame) -> list[str]:
    """Manifest columns beyond the standard ones that are constant within every profile group."""
    extra = [
        c
        for c in metadata.columns
        if c not in PROFILE_METADATA and c not in _PER_IMAGE and not str(c).startswith("Metadata_")
    ]
    if not extra or metadata.empty:
        return []
    counts = metadata.groupby(GROUP_KEYS, dropna=False, sort=False)[extra].nunique(dropna=False)
    return [c for c in extra if bool((counts[c] <= 1).all())]


def make_profiles(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    feature_prefix: str = "convae",
    aggregation: Literal["mean", "median"] = "mean",
    extra_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Aggregate per-image features to one profile per (plate, well, time point).

    Parameters
    ----------
    metadata
        One row per image with at least ``plate, well, time_h`` (the manifest columns).
    features
        ``(n_images, n_features)`` in the same row order; NaN rows are left out.
    feature_prefix
        Prefix of the feature columns.
    aggregation
        ``mean`` (the reference) or ``median`` (robust to a bad field).
    extra_columns
        Further manifest columns to carry as ``Metadata_<name>``; default: the ones constant
        within every group (:func:`extra_metadata_columns`).

    Returns
    -------
    pandas.DataFrame
        ``Metadata_*`` columns (docs/formats.md) then the feature columns, sorted by plate, well,
        time.
    """
    feats = np.asarray(features)
    if feats.ndim != 2 or feats.shape[0] != len(metadata):
        raise FeatureTableError(
            f"features of shape {feats.shape} do not match {len(metadata)} metadata rows"
        )
    missing = [c for c in GROUP_KEYS if c not in metadata.columns]
    if missing:
        raise FeatureTableError(f"metadata lacks the column(s) {missing} needed to group images")
    if aggregation not in ("mean", "median"):
        raise ValueError(f"aggregation must be 'mean' or 'median', got {aggregation!r}")
    meta = metadata.reset_index(drop=True)
    valid = np.isfinite(feats).all(axis=1)
    if not valid.all():
        log.info("profiles: %d image(s) without features left out", int((~valid).sum()))
    if extra_columns is None:
        extra_columns = extra_metadata_columns(meta)
    meta_cols = [c for c in PROFILE_METADATA if c in meta.columns] + [
        c for c in extra_columns if c not in PROFILE_METADATA
    ]
    _check_constant(meta, [c for c in meta_cols if c not in GROUP_KEYS])

    codes = meta.groupby(GROUP_KEYS, dropna=False, sort=True).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    first = pd.Series(np.arange(len(meta))).groupby(codes).first().to_numpy()
    counts = np.bincount(codes[valid], minlength=n_groups)
    order = np.argsort(codes[valid], kind="stable")
    rows = np.flatnonzero(valid)[order]
    sorted_codes = codes[rows]
    present = np.flatnonzero(counts > 0)
    n_features = feats.shape[1]
    if aggregation == "mean":
        sums = np.zeros((len(present), n_features), dtype=np.float64)
        if len(rows):
            starts = np.searchsorted(sorted_codes, present)
            sums = np.add.reduceat(feats[rows].astype(np.float64, copy=False), starts, axis=0)
        values = (sums / counts[present, None]).astype(np.float32)
    else:
        values = np.empty((len(present), n_features), dtype=np.float32)
        bounds = np.searchsorted(sorted_codes, np.append(present, n_groups))
        for k in range(len(present)):
            values[k] = np.median(feats[rows[bounds[k] : bounds[k + 1]]], axis=0)
    empty = n_groups - len(present)
    if empty:
        warnings.warn(
            f"{empty} (plate, well, time point) group(s) have no image with features and get no "
            f"profile",
            stacklevel=2,
        )

    out = meta.iloc[first[present]][meta_cols].reset_index(drop=True)
    out.columns = [f"Metadata_{c}" for c in meta_cols]
    out["Metadata_n_images"] = counts[present].astype(np.int64)
    feat_df = pd.DataFrame(values, columns=feature_columns(n_features, feature_prefix))
    return pd.concat([out, feat_df], axis=1)


def _check_constant(meta: pd.DataFrame, columns: list[str]) -> None:
    if not columns or meta.empty:
        return
    counts = meta.groupby(GROUP_KEYS, dropna=False, sort=False)[columns].nunique(dropna=False)
    for col in columns:
        bad = counts.index[counts[col] > 1]
        if len(bad):
            plate, well, time_h = bad[0]
            raise FeatureTableError(
                f"plate {plate}, well {well}, time {time_h} h: images disagree on '{col}'; fix "
                f"the plate map or manifest so each well has one value"
            )


def load_profiles(path: str | Path) -> pd.DataFrame:
    """Profiles from a profile table or a ``features.zarr`` store, for the analysis stages.

    A table is read with :func:`~phenolapse.artefacts.read_profiles`; a store (or the folder
    that holds it) is read with :func:`~phenolapse.artefacts.read_features` and averaged per
    (plate, well, time point) by :func:`make_profiles`, the feature columns named after the
    store's ``feature_prefix``.
    """
    path = Path(path)
    if not path.exists():
        raise FeatureTableError(
            f"{path}: features not found (give profiles.parquet or a features.zarr folder "
            "written by 'phenolapse embed')"
        )
    if not is_store(path):
        return read_profiles(path)
    meta, feats = read_features(path)
    prefix = meta.attrs.get("feature_prefix") or "feature"
    return make_profiles(meta, feats, feature_prefix=str(prefix))


def profiles_from_store(
    store_path: str | Path,
    out: str | Path,
    *,
    aggregation: Literal["mean", "median"] = "mean",
    progress: bool = True,
) -> Path:
    """Stream a ``features.zarr`` into ``profiles.parquet``, one plate at a time.

    Memory holds one plate's features, not the whole screen's.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = FeatureStore(store_path)
    meta = store.metadata()
    prefix = str(store.attrs.get("feature_prefix", "feature"))
    extra = extra_metadata_columns(meta)
    out = Path(out)
    plates = pd.unique(meta["plate"])
    schema: pa.Schema | None = None
    info = table_metadata(kind="profiles", extractor=store.attrs.get("extractor", {}).get("name"))
    with atomic_path(out) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for plate in tqdm(
                plates, desc="profiles", unit="plate", disable=not progress, leave=False
            ):
                idx = np.flatnonzero((meta["plate"] == plate).to_numpy())
                feats = np.asarray(store.features.oindex[idx, :], dtype=np.float32)
                prof = make_profiles(
                    meta.iloc[idx],
                    feats,
                    feature_prefix=prefix,
                    aggregation=aggregation,
                    extra_columns=extra,
                )
                if prof.empty:
                    continue
                table = pa.Table.from_pandas(prof, preserve_index=False)
                if schema is None:
                    schema = table.schema.with_metadata(info)
                    writer = pq.ParquetWriter(tmp, schema)
                table = table.replace_schema_metadata(schema.metadata).cast(schema)
                assert writer is not None
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if schema is None:
            raise FeatureTableError(
                f"{store.path}: no image has features yet; nothing to aggregate into profiles"
            )
    return out
