"""Atomic file writes, output-folder locks and small I/O helpers shared by every stage."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from phenolapse.errors import ConfigError, OutputLockedError

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Works for files and for directories (e.g. a Zarr store): whatever is written at the
    temporary path replaces ``path`` in one rename, so readers never see half a file. A folder is
    never replaced by a file, nor a file by a folder (:class:`~phenolapse.errors.ConfigError`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.p{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary path for {target}")
        if target.exists() and target.is_dir() != tmp.is_dir():
            have, new = ("folder", "file") if target.is_dir() else ("file", "folder")
            raise ConfigError(
                f"{target} is a {have}; refusing to replace it with a {new} (choose another "
                "output path)"
            )
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


_TEMP_OWNER = re.compile(r"^\..+\.(?:p(\d+)-[^.]*\.tmp|old-(\d+))$")


def read_yaml_mapping(path: str | os.PathLike[str], *, what: str = "configuration") -> dict[str, Any]:
    """Read a YAML file that must hold a mapping, with safe loading (no Python tags).

    An empty file gives ``{}``. An unreadable file, invalid YAML or a non-mapping raise
    :class:`~phenolapse.errors.ConfigError` naming the file and ``what`` it should be.
    """
    import yaml

    target = Path(path)
    try:
        size = target.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{target}: {size} bytes is too large for a {what} (at most {MAX_YAML_BYTES})"
            )
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read the {what} ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{target}: not valid YAML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{target}: not UTF-8 text; save the {what} as UTF-8") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{target}: the {what} must be a YAML mapping, got {type(data).__name__}"
        )
    check_yaml_size(data, source=str(target))
    return data


MAX_YAML_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000


def check_yaml_size(data: Any, *, source: str, limit: int = MAX_YAML_VALUES) -> None:
    """Refuse a loaded YAML document that expands to more than ``limit`` values.

    YAML aliases (``*name``) share one object, so a few lines can describe a document of billions
    of values that exhausts memory once copied or serialised; a self-referencing alias never ends.
    The count follows the aliases as a reader would, without expanding them. Raises
    :class:`~phenolapse.errors.ConfigError` naming the first key where the limit is passed.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def count(node: Any, key: str) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in active:
            raise ConfigError(f"{source}: {key or 'the document'} refers to itself (YAML alias loop)")
        active.add(ident)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        total = 1
        for k, v in items:
            total += count(v, f"{key}.{k}" if key else str(k))
            if total > limit:
                raise ConfigError(
                    f"{source}: {key or 'the document'} expands to more than {limit} values "
                    "(YAML anchors and aliases repeated); write the values out plainly"
                )
        active.discard(ident)
        sizes[ident] = total
        return total

    count(data, "")


def show_progress(requested: bool | None = None) -> bool:
    """Whether to draw progress bars: as ``requested``, else only when stderr is a terminal.

    Bars redraw in place on a terminal; written into a log file every redraw becomes a line.
    """
    import sys

    if requested is not None:
        return requested
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(folder: str | os.PathLike[str], *, depth: int = 3) -> list[Path]:
    """Remove what interrupted atomic writes left in ``folder`` (and ``depth`` levels below).

    :func:`atomic_path` writes to hidden ``.<name>.p<pid>-<random>.tmp`` files or folders (and
    moves a replaced folder aside as ``.<name>.old-<pid>``); a process killed mid-write leaves
    them behind. Only entries whose process no longer runs are removed, so a live writer is never
    disturbed. Returns what was removed.
    """
    root = Path(folder)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    level = [root]
    for _ in range(depth + 1):
        below: list[Path] = []
        for d in level:
            for entry in d.iterdir():
                name = entry.name
                owner = _TEMP_OWNER.match(name)
                stale = owner is not None and not _pid_alive(int(owner.group(1) or owner.group(2)))
                if stale and not entry.is_symlink():
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    removed.append(entry)
                elif entry.is_dir() and not entry.is_symlink():
                    below.append(entry)
        level = below
    return removed


def _lock_owner(path: Path, *, attempts: int = 20, wait_s: float = 0.025) -> tuple[int, str]:
    """``(pid, host)`` recorded in the lock file ``path``; ``(-1, "")`` when it stays unreadable.

    A holder creates the file and then writes its record, so an empty or partial file is read
    again for a moment before it counts as unreadable.
    """
    for i in range(attempts):
        try:
            owner = json.loads(path.read_text())
            return int(owner["pid"]), str(owner["host"])
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError):
            if i + 1 < attempts:
                time.sleep(wait_s)
    return -1, ""


@contextlib.contextmanager
def exclusive_lock(
    lock: str | os.PathLike[str], *, label: str, sweep: str | os.PathLike[str] | None = None
) -> Iterator[None]:
    """Hold the lock file ``lock`` for the block; refuse while another live process holds it.

    The lock file is created exclusively and records the holder's process id and host, so it also
    works on shared file systems where ``flock`` is unreliable. A lock left by a process of this
    host that no longer runs (killed, crashed) is taken over. The file is removed on exit.

    Parameters
    ----------
    lock
        Path of the lock file.
    label
        What is locked, for the error message (e.g. ``"/data/run: output folder"``).
    sweep
        A folder whose leftover temporaries (:func:`sweep_temporaries`) are removed once the lock
        is held.
    """
    path = Path(lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = os.uname().nodename
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid, owner_host = _lock_owner(path)
            except FileNotFoundError:
                continue  # released between our attempts
            if owner_host == host and pid > 0 and not _pid_alive(pid):
                path.unlink(missing_ok=True)  # left by a process that died
                continue
            holder = f"pid {pid} on {owner_host}" if pid > 0 else "another process"
            raise OutputLockedError(
                f"{label} is in use by {holder}; wait for it to finish or choose another output "
                f"(delete {path} if that process is gone)"
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": host}, fh)
        break
    else:
        raise OutputLockedError(f"{label}: could not take the lock {path}; try again")
    try:
        if sweep is not None:
            sweep_temporaries(sweep)
        yield
    finally:
        path.unlink(missing_ok=True)
