"""Reading and writing the artefacts every stage shares, versioned (``docs/formats.md``).

One reader and one writer per artefact, used by every stage:

- the manifest (``manifest.parquet``): :func:`read_manifest`, :func:`write_manifest`;
- the per-image feature store (``features.zarr``): :func:`read_features`, :func:`create_store`
  (then :class:`FeatureStore` writes it chunk by chunk);
- the profile tables (``profiles.parquet``, ``profiles_normalized.parquet``):
  :func:`read_profiles`, :func:`write_profiles`.

Every Parquet table carries ``format_version`` under the ``phenolapse`` key of its metadata and
the store carries it in its attributes; a reader refuses a version it does not know, naming the
file. Tables written without the key (by other tools, or before it existed) are read as version 1.
The module needs neither torch nor any stage: every layer may import it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from phenolapse.errors import FeatureTableError, ManifestError, PhenolapseError
from phenolapse.io_utils import FORMAT_VERSION, atomic_path, write_parquet
from phenolapse.vocabulary import ROLES, metadata

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_COLUMNS",
    "METADATA_NAME",
    "NORMALIZED_NAME",
    "PROFILES_NAME",
    "SKIPPED_NAME",
    "STORE_NAME",
    "FeatureStore",
    "check_format_version",
    "create_store",
    "is_store",
    "listing",
    "parquet_info",
    "read_features",
    "read_manifest",
    "read_profiles",
    "read_table",
    "require_columns",
    "resolve_store",
    "table_metadata",
    "validate_manifest",
    "write_manifest",
    "write_profiles",
]

STORE_NAME = "features.zarr"
METADATA_NAME = "metadata.parquet"
SKIPPED_NAME = "skipped.csv"
PROFILES_NAME = "profiles.parquet"
NORMALIZED_NAME = "profiles_normalized.parquet"
PARQUET_SUFFIXES = (".parquet", ".pq")
PROFILE_GROUP_KEYS = ["plate", "well", "time_h"]
"""One profile row: a well of a plate at a time point."""

MANIFEST_COLUMNS = [
    "image_path",
    "cell_line",
    "plate",
    "well",
    "row",
    "column",
    "field",
    "tile",
    "time_h",
    "drug",
    "concentration_um",
    "role",
]
_MAX_LISTED = 20


# ------------------------------------------------------------------------------------ versions


def check_format_version(
    version: object, *, where: str | Path, error: type[PhenolapseError] = FeatureTableError
) -> None:
    """Refuse an artefact whose ``format_version`` this phenolapse does not read.

    Raises ``error`` naming ``where`` (the file) for any version other than
    :data:`~phenolapse.io_utils.FORMAT_VERSION`: a newer phenolapse wrote it, or it is damaged.
    """
    if version == FORMAT_VERSION and not isinstance(version, bool):
        return
    raise error(
        f"{where}: format version {version!r}, this phenolapse reads version {FORMAT_VERSION}; "
        "read it with the phenolapse that wrote it (a newer one), or write it again with this one"
    )


def require_columns(
    table: pd.DataFrame,
    columns: list[str] | tuple[str, ...],
    *,
    message: str,
    error: type[PhenolapseError] = FeatureTableError,
) -> None:
    """Raise ``error`` when ``table`` lacks some of ``columns``.

    ``message`` says where and what to do; its ``{missing}`` is replaced by the missing columns.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise error(message.format(missing=missing))


def table_metadata(**meta: Any) -> dict[bytes, bytes]:
    """Parquet schema metadata of a phenolapse table: ``format_version`` and ``meta``."""
    return {b"phenolapse": json.dumps({"format_version": FORMAT_VERSION, **meta}).encode()}


def parquet_info(path: str | Path, *, error: type[PhenolapseError] = FeatureTableError) -> dict[str, Any]:
    """The ``phenolapse`` metadata of a Parquet file, version-checked (``{}`` when it has none)."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(b"phenolapse")
    except Exception as exc:
        raise error(f"{path}: cannot read as Parquet ({exc})") from exc
    if raw is None:
        return {}
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise error(f"{path}: damaged 'phenolapse' metadata ({exc})") from exc
    if not isinstance(info, dict):
        raise error(f"{path}: damaged 'phenolapse' metadata (not a mapping)")
    check_format_version(info.get("format_version", FORMAT_VERSION), where=path, error=error)
    return info


def read_table(
    path: str | Path, *, error: type[PhenolapseError] = FeatureTableError
) -> pd.DataFrame:
    """Read a Parquet table written by phenolapse (or another tool), version-checked."""
    parquet_info(path, error=error)
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise error(f"{path}: cannot read as Parquet ({exc})") from exc


# ------------------------------------------------------------------------------------ manifest


def listing(items: list[str]) -> str:
    """Items one per indented line, at most 20 and a count of the rest (for error messages)."""
    shown = items[:_MAX_LISTED]
    more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "\n  " + "\n  ".join(shown) + more


def validate_manifest(df: pd.DataFrame, *, source: str = "manifest") -> pd.DataFrame:
    """Check a manifest's columns and values; returns it unchanged or raises ManifestError."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{source}: missing column(s) {missing}")
    if df.empty:
        raise ManifestError(f"{source}: the manifest has no rows")
    if df["image_path"].duplicated().any():
        dup = df.loc[df["image_path"].duplicated(), "image_path"].tolist()
        raise ManifestError(f"{source}: image listed more than once:" + listing(dup))
    bad_roles = sorted(set(df["role"].astype(str)) - set(ROLES))
    if bad_roles:
        raise ManifestError(f"{source}: unknown role(s) {bad_roles}; use one of {list(ROLES)}")
    no_time = df["time_h"].isna() & (df["row"].astype(str) != "")  # row "": name not understood
    if no_time.any():
        i = int(np.flatnonzero(no_time.to_numpy())[0])
        raise ManifestError(f"{source}, row {i}: time_h is missing ({df['image_path'].iat[i]})")
    return df


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest Parquet file (version-checked)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    return validate_manifest(read_table(path, error=ManifestError), source=str(path))


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate ``df`` and write it atomically as Parquet (the file name must say so)."""
    path = Path(path)
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise ManifestError(
            f"{path}: the manifest is a Parquet file, so its name must end in .parquet "
            f"(e.g. {path.with_suffix('.parquet')}); nothing was written. For a spreadsheet "
            "copy: pandas.read_parquet('manifest.parquet').to_csv('manifest.csv', index=False)"
        )
    validate_manifest(df)
    out = df.copy()
    out.attrs = {}
    return write_parquet(out, path, kind="manifest")


# ------------------------------------------------------------------------------------ profiles


def read_profiles(path: str | Path) -> pd.DataFrame:
    """Read a profile table (Parquet, or CSV from another tool) and check its key columns.

    Raises :class:`~phenolapse.errors.FeatureTableError` for a missing file, a newer format
    version, or a table without ``Metadata_plate, Metadata_well, Metadata_time_h`` or without
    feature columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureTableError(f"{path}: profile table not found")
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise FeatureTableError(f"{path}: cannot read as CSV ({exc})") from exc
    else:
        df = read_table(path, error=FeatureTableError)
    missing = [c for c in metadata(PROFILE_GROUP_KEYS) if c not in df.columns]
    if missing:
        raise FeatureTableError(f"{path}: not a profile table, missing column(s) {missing}")
    if not any(not str(c).startswith("Metadata_") for c in df.columns):
        raise FeatureTableError(f"{path}: profile table has no feature columns")
    return df


def write_profiles(
    profiles: pd.DataFrame,
    path: str | Path,
    *,
    kind: Literal["profiles", "profiles_normalized"] = "profiles",
    **meta: Any,
) -> Path:
    """Write a profile table atomically as Parquet, with ``format_version``, ``kind`` and ``meta``
    (e.g. ``extractor``, the normalisation's ``dropped_features``) in its metadata."""
    return write_parquet(profiles, path, kind=kind, **meta)


# -------------------------------------------------------------------------------- features.zarr


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


def _write_store_metadata(metadata: pd.DataFrame, path: Path) -> None:
    meta = metadata.reset_index(drop=True).copy()
    meta.attrs = {}
    write_parquet(meta, path / METADATA_NAME, kind="features_metadata")


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
        _write_store_metadata(metadata, tmp)
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
        check_format_version(self.attrs.get("format_version"), where=self.path)

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

    @property
    def feature_prefix(self) -> str:
        """Prefix of the feature columns of profiles made from the store (``convae`` ...)."""
        return str(self.attrs.get("feature_prefix") or "feature")

    def metadata(self) -> pd.DataFrame:
        """The manifest rows stored with the features, in row order."""
        return read_table(self.path / METADATA_NAME, error=FeatureTableError)

    def write_metadata(self, metadata: pd.DataFrame) -> bool:
        """Store new manifest rows for the same images (a corrected plate map relabels them).

        Returns whether anything changed.
        """
        meta = metadata.reset_index(drop=True).copy()
        meta.attrs = {}
        if meta.equals(self.metadata()):
            return False
        _write_store_metadata(meta, self.path)
        return True

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
        a float32 array ``(n_images, n_features)``. ``metadata.attrs`` holds the store's
        ``extractor`` and ``feature_prefix``.
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


def is_store(path: str | Path) -> bool:
    """Whether ``path`` names a feature store: a ``.zarr`` path or a folder (the store itself or
    the output folder that holds it); files are tables."""
    path = Path(path)
    return path.suffix == ".zarr" or path.is_dir()
