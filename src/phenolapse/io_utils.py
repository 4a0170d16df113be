"""Atomic file writes and small I/O helpers shared by every stage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Works for files and for directories (e.g. a Zarr store): whatever is written at the
    temporary path replaces ``path`` in one rename, so readers never see half a file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary path for {target}")
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file beside ``path`` for writing; move it onto ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``df`` to Parquet atomically, with ``format_version`` and ``meta`` in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    extra = {b"phenolapse": json.dumps({"format_version": FORMAT_VERSION, **meta}).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    target = Path(path)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    return target


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to CSV atomically (no index)."""
    target = Path(path)
    with atomic_write(target, "w", newline="") as fh:
        df.to_csv(fh, index=False)
    return target


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    target = Path(path)
    with atomic_write(target, "w") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.write("\n")
    return target
