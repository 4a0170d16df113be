"""Run stages in order with content-addressed caching, a lock on the output folder and a log file.

Each stage has a cache key: a hash of the part of the configuration it reads and of the keys of the
stages it depends on (and, for ingestion, of the image files' names, sizes and modification times).
After a stage finishes, a marker ``<out>/.stages/<stage>.json`` records its key and outputs. A rerun
skips every stage whose key is unchanged and whose outputs still exist, so changing one temporal option
reruns the temporal stage and the stages after it only.

Each stage names the files and folders it writes. Before a stage first writes one of them, the path
is added to ``<out>/.phenolapse.written.json``; a path that exists but is not listed there (a folder of
the user's own, the output of another command) stops the run before anything is written, and only
listed paths are ever replaced or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phenolapse import __version__
from phenolapse.errors import ConfigError
from phenolapse.io_utils import exclusive_lock, write_json

log = logging.getLogger("phenolapse.pipeline")

MARKER_DIR = ".stages"
LOCK_NAME = ".phenolapse.lock"
WRITTEN_NAME = ".phenolapse.written.json"


@dataclass
class StageContext:
    """What a stage sees: the output folder, the configuration and earlier stages' outputs."""

    out_dir: Path
    config: Any
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    resume: bool = False
    forced: bool = False
    interrupted: bool = False
    written: set[str] = field(default_factory=set)

    def path(self, stage: str, name: str) -> Path:
        """Absolute path of output ``name`` of an earlier ``stage``."""
        try:
            return self.out_dir / self.outputs[stage][name]
        except KeyError as exc:
            raise ConfigError(f"stage {stage!r} has no output {name!r}; run it first") from exc

    def remove(self, rel: str) -> None:
        """Delete ``out_dir/rel``, which must be a path a stage of this folder wrote."""
        if rel not in self.written:
            raise ConfigError(
                f"{self.out_dir / rel}: not written by phenolapse run; refusing to delete it"
            )
        target = self.out_dir / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    ``fingerprint`` returns the JSON-able inputs that decide whether a cached result is valid;
    ``run`` does the work and returns its outputs as paths relative to the output folder.
    """

    name: str
    depends: tuple[str, ...]
    fingerprint: Callable[[StageContext], Any]
    run: Callable[[StageContext], dict[str, str]]
    enabled: Callable[[Any], bool] = lambda cfg: True
    writes: tuple[str, ...] = ()


@dataclass
class StageReport:
    """What happened to one stage in a run."""

    name: str
    status: str  # "ran", "cached", "skipped" (disabled or outside --from/--until)
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def files_fingerprint(root: Path, suffixes: frozenset[str] | None = None) -> str:
    """Hash of the names, sizes and modification times of the files under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if suffixes is not None and Path(name).suffix.lower() not in suffixes:
                continue
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def file_fingerprint(path: Path) -> str:
    """Hash of one file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold the lock of ``out_dir`` so two runs cannot write into it at once.

    Temporaries left by an interrupted earlier run are removed once the lock is held.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir / LOCK_NAME, label=f"{out_dir}: output folder", sweep=out_dir):
        yield


def read_written(out_dir: Path) -> set[str]:
    """The paths (relative to ``out_dir``) that stages of ``phenolapse run`` wrote there."""
    data = _read_marker(Path(out_dir) / WRITTEN_NAME)
    paths = data.get("paths", []) if data else []
    return {str(p) for p in paths if isinstance(p, str)}


def _owned(stage: Stage, rel: str, out_dir: Path, written: set[str]) -> bool:
    """Whether ``rel`` is phenolapse's: listed, or an output of a finished stage's marker."""
    if rel in written:
        return True
    marker = _read_marker(out_dir / MARKER_DIR / f"{stage.name}.json")
    outputs = marker.get("outputs", {}) if marker else {}
    return isinstance(outputs, dict) and any(
        str(p) == rel or str(p).startswith(rel + "/") for p in outputs.values()
    )


def check_writes(stages: Sequence[Stage], out_dir: Path, written: set[str]) -> None:
    """Raise ConfigError naming the first path a stage would write that phenolapse did not write."""
    for stage in stages:
        for rel in stage.writes:
            target = out_dir / rel
            if (target.exists() or target.is_symlink()) and not _owned(
                stage, rel, out_dir, written
            ):
                kind = "folder" if target.is_dir() else "file"
                raise ConfigError(
                    f"{target}: this {kind} was not written by phenolapse run, and the "
                    f"{stage.name} stage writes there; move it away or set output_dir to "
                    f"another folder (nothing was changed)"
                )


def _claim(stage: Stage, out_dir: Path, written: set[str]) -> None:
    """Record the paths ``stage`` is about to write before it writes any of them."""
    new = set(stage.writes) - written
    if new:
        written |= new
        write_json(
            {"format_version": 1, "paths": sorted(written)},
            out_dir / WRITTEN_NAME,
        )


@contextlib.contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """Copy phenolapse's log records into ``path`` while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("phenolapse")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def run_stages(
    stages: Sequence[Stage],
    *,
    out_dir: Path,
    config: Any,
    start: str | None = None,
    until: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[StageReport]:
    """Run ``stages`` in order, reusing cached results (see module docstring).

    Parameters
    ----------
    start
        Recompute this stage and every later one, whatever the cache says.
    until
        Stop after this stage.
    """
    names = [s.name for s in stages]
    for opt, value in (("--from", start), ("--until", until)):
        if value is not None and value not in names:
            raise ConfigError(f"{opt} {value!r}: no such stage; stages are {names}")
    out_dir = Path(out_dir)
    ctx = StageContext(out_dir=out_dir, config=config)
    reports: list[StageReport] = []
    active = [s for s in stages if s.enabled(config)]
    last = names.index(until) if until is not None else len(names)
    planned = [s for s in active if names.index(s.name) <= last]
    with output_lock(out_dir):
        ctx.written = read_written(out_dir)
        check_writes(planned, out_dir, ctx.written)
        with log_to_file(out_dir / "phenolapse.log"):
            _run_all(stages, active, ctx, reports, start=start, until=until, echo=echo)
    return reports


def _run_all(
    stages: Sequence[Stage],
    active: list[Stage],
    ctx: StageContext,
    reports: list[StageReport],
    *,
    start: str | None,
    until: str | None,
    echo: Callable[[str], None],
) -> None:
    """The loop of :func:`run_stages`, with the lock held and the log open."""
    out_dir, config = ctx.out_dir, ctx.config
    markers = out_dir / MARKER_DIR
    keys: dict[str, str] = {}
    forced = False
    stopped = False
    for stage in stages:
        if stage.name == start:
            forced = True
        if stopped or not stage.enabled(config):
            reports.append(StageReport(stage.name, "skipped"))
            continue
        key = _digest(
            {
                "stage": stage.name,
                "inputs": stage.fingerprint(ctx),
                "upstream": {d: keys.get(d) for d in stage.depends},
                "version": __version__,
            }
        )
        keys[stage.name] = key
        marker = markers / f"{stage.name}.json"
        cached = _read_marker(marker)
        n = active.index(stage) + 1
        if (
            not forced
            and cached is not None
            and cached.get("key") == key
            and all((out_dir / p).exists() for p in cached.get("outputs", {}).values())
        ):
            ctx.outputs[stage.name] = cached["outputs"]
            reports.append(StageReport(stage.name, "cached", 0.0, cached["outputs"]))
            echo(f"[{n}/{len(active)}] {stage.name}: up to date")
            log.info("stage %s cached (key %s)", stage.name, key)
        else:
            echo(f"[{n}/{len(active)}] {stage.name} ...")
            log.info("stage %s started (key %s)", stage.name, key)
            started = markers / f"{stage.name}.started"
            ctx.resume = cached is not None or started.exists()
            ctx.forced = forced
            ctx.interrupted = not forced and _read_text(started) == key
            markers.mkdir(parents=True, exist_ok=True)
            _claim(stage, out_dir, ctx.written)
            started.write_text(key)
            t0 = time.perf_counter()
            outputs = stage.run(ctx)
            seconds = time.perf_counter() - t0
            ctx.outputs[stage.name] = outputs
            write_json(
                {"key": key, "outputs": outputs, "seconds": seconds, "finished": time.time()},
                marker,
            )
            (markers / f"{stage.name}.started").unlink(missing_ok=True)
            reports.append(StageReport(stage.name, "ran", seconds, outputs))
            echo(f"[{n}/{len(active)}] {stage.name}: done in {seconds:.1f} s")
            log.info("stage %s finished in %.1f s", stage.name, seconds)
            # Everything after a recomputed stage must see the new key; the hash chain does it.
        if stage.name == until:
            stopped = True


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
