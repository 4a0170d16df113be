"""``phenolapse simulate``: write a simulated Incucyte drug screen with known ground truth."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import ConfigFile, Progress, config_options, fail
from phenolapse.errors import PhenolapseError


class Preset(StrEnum):
    """Simulator presets."""

    tiny = "tiny"
    small = "small"
    paper = "paper"


class ImageFormat(StrEnum):
    """Image file formats the simulator writes."""

    png = "png"
    jpg = "jpg"
    tif = "tif"


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""

    @app.command()
    def simulate(
        out: Annotated[
            Path, typer.Argument(help="Output folder (new, empty, or an earlier simulation).")
        ],
        preset: Annotated[Preset, typer.Option(help="Design preset.")] = Preset.tiny,
        seed: Annotated[
            int | None,
            typer.Option(help="Random seed (default 0); the same seed, the same screen."),
        ] = None,
        scale: Annotated[
            float | None,
            typer.Option(help="Multiply the numbers of cell lines, drugs and control wells."),
        ] = None,
        image_format: Annotated[
            ImageFormat | None, typer.Option("--format", help="Image file format.")
        ] = None,
        image_size: Annotated[int | None, typer.Option(help="Frame size in pixels.")] = None,
        workers: Annotated[
            int | None, typer.Option(help="Worker processes (0: automatic).")
        ] = None,
        config: ConfigFile = None,
        progress: Progress = True,
    ) -> None:
        """Simulate a phase-contrast time-lapse drug screen: images, plate map, truth.csv."""
        from phenolapse.data.simulator import load_truth, simulate_screen

        try:
            overrides: dict[str, Any] = config_options(
                config,
                scale=scale,
                image_format=image_format.value if image_format else None,
                image_size=image_size,
                workers=workers,
                progress=progress,
            )
            seed_value = seed if seed is not None else int(overrides.pop("seed", 0))
            overrides.pop("seed", None)
            screen = simulate_screen(out, preset=preset.value, seed=seed_value, **overrides)
            truth = load_truth(screen.root)
        except PhenolapseError as exc:
            fail(str(exc))
        counts = truth[truth["role"] == "treatment"]["effect"].value_counts()
        typer.echo(f"wrote {screen.root}")
        typer.echo("treatment effects: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
