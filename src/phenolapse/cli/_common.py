"""Helpers shared by the command-line modules."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def fail_os(exc: OSError, target: Path, what: str = "the output") -> NoReturn:
    """Report a file-system error (e.g. an output path that is a file) naming the path."""
    cause = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else str(exc)
    fail(f"{target}: cannot write {what} there ({cause}); choose another path")
