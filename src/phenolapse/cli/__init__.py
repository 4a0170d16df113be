"""The ``phenolapse`` command line: a thin shell over the Python API."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="phenolapse",
    help="Label-free live-cell drug screens: images + plate map -> drug effects, figures, tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from phenolapse import __version__

        typer.echo(f"phenolapse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Label-free live-cell drug screens: images + plate map -> drug effects, figures, tables."""


def _register_all() -> None:
    from phenolapse.cli import data as _data

    _data.register(app)
    from phenolapse.cli import pipeline as _pipeline

    _pipeline.register(app)
    from phenolapse.cli import temporal as _temporal

    _temporal.register(app)
    from phenolapse.cli import lens as _lens

    _lens.register(app)
    from phenolapse.cli import simulate as _simulate

    _simulate.register(app)
    from phenolapse.cli import train as _train

    _train.register(app)
    from phenolapse.cli import embed as _embed

    _embed.register(app)
    from phenolapse.cli import compare as _compare

    _compare.register(app)
    from phenolapse.cli import growth as _growth

    _growth.register(app)
    # stage commands register here


_register_all()


def main() -> None:
    """Entry point of the ``phenolapse`` console script."""
    app()
