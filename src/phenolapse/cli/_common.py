"""Helpers shared by the command-line modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel

from phenolapse.errors import PhenolapseError
from phenolapse.stage_config import merge_options, read_config_mapping, validate_config

M = TypeVar("M", bound=BaseModel)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def fail_os(exc: OSError, target: Path, what: str = "the output") -> NoReturn:
    """Report a file-system error (e.g. an output path that is a file) naming the path."""
    cause = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else str(exc)
    fail(f"{target}: cannot write {what} there ({cause}); choose another path")


@contextmanager
def reported_errors(out: Path, *, invalid_values: bool = False) -> Iterator[None]:
    """Report the package's errors as one line on stderr and exit with code 2 (no traceback).

    A file-system error names ``out``; with ``invalid_values`` a ``ValueError`` is reported as an
    invalid option.
    """
    try:
        yield
    except PhenolapseError as exc:
        fail(str(exc))
    except ValueError as exc:
        if not invalid_values:
            raise
        fail(f"invalid option: {exc}")
    except OSError as exc:
        fail_os(exc, out)


def config_options(
    config: Path | None, /, *, section: str | None = None, **flags: Any
) -> dict[str, Any]:
    """The options of a command: its ``--config`` YAML file, then every flag that was given.

    A flag left at None keeps the file's value; nested options are mappings
    (``preprocess={"image_size": 64}``) merged key by key. ``config`` may also be a whole-run
    configuration (``phenolapse run``): its ``section`` is read.
    """
    data = read_config_mapping(config, section=section) if config is not None else {}
    return merge_options(data, flags)


def config_from_options(
    model: type[M], config: Path | None, /, *, section: str | None = None, **flags: Any
) -> M:
    """A stage's configuration from ``--config`` and the command's flags (see config_options).

    Every stage command builds its configuration here, so a YAML file, a flag and the Python API
    mean the same thing. Bad keys or values raise :class:`~phenolapse.errors.ConfigError`.
    """
    section = section or getattr(model, "section", None)
    data = config_options(config, section=section, **flags)
    source = f"{config} with the command's options" if config is not None else "command line"
    return validate_config(model, data, source=source)


# Options that several commands share, declared once (``Annotated`` types for typer).
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        help="YAML file of the command's options (or a `phenolapse run` configuration, whose "
        "section of this stage is read); flags win over it."
    ),
]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
Figures = Annotated[bool, typer.Option(help="Draw the figures.")]
Device = Annotated[
    str | None, typer.Option(help="auto (CUDA when available; the default), cpu, cuda or cuda:N.")
]
Seed = Annotated[int | None, typer.Option(help="Random seed (default 0).")]
Platemap = Annotated[
    Path | None,
    typer.Option(help="Plate map: CSV (plate, well, drug, ...) or Incucyte .PlateMap XML."),
]
ManifestFile = Annotated[
    Path | None, typer.Option("--manifest", help="Manifest Parquet (`phenolapse ingest`).")
]
ImageSize = Annotated[int | None, typer.Option(help="Model input side in pixels.")]
CropSize = Annotated[int | None, typer.Option(help="Crop side in raw pixels, before the resize.")]
BatchSize = Annotated[int | None, typer.Option(help="Images per batch.")]
Epochs = Annotated[int | None, typer.Option(help="Training epochs.")]
LastTimePoints = Annotated[
    int | None,
    typer.Option("--last-time-points", "--last-n", help="Keep each plate's last N time points."),
]
SkipBad = Annotated[
    bool, typer.Option("--skip-bad", help="Leave out unreadable files and list them.")
]
