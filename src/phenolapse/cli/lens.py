"""``phenolapse lens``: drug classification from single images, with and without the lens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolapse.cli._common import (
    ConfigFile,
    CropSize,
    Device,
    Epochs,
    ImageSize,
    LastTimePoints,
    OutDir,
    Progress,
    config_from_options,
    reported_errors,
)


def register(app: typer.Typer) -> None:
    """Add the ``lens`` command to ``app``."""

    @app.command("lens")
    def lens_command(
        source: Annotated[
            Path,
            typer.Argument(
                metavar="FEATURES_OR_MANIFEST",
                help="Manifest (.parquet/.csv) or features.zarr folder listing the images.",
            ),
        ],
        weights: Annotated[
            Path, typer.Option(help="Trained ConvAE weights (AE; F too without --encoder).")
        ],
        out: OutDir,
        encoder: Annotated[
            Path | None,
            typer.Option(
                help="Another trained encoder as F, e.g. a two-view ResNet; --weights is then the "
                "ConvAE the lens starts from.",
            ),
        ] = None,
        config: ConfigFile = None,
        coef: Annotated[
            list[float] | None,
            typer.Option(help="lambda of the lens loss (repeat for a grid); > 0 regularised."),
        ] = None,
        seed: Annotated[list[int] | None, typer.Option(help="Seeds (repeat).")] = None,
        epochs: Epochs = None,
        concentration: Annotated[
            str | None, typer.Option(help="'top' (each drug's highest) or 'all'.")
        ] = None,
        last_time_points: LastTimePoints = None,
        image_size: ImageSize = None,
        crop_size: CropSize = None,
        detach_classification: Annotated[
            bool | None,
            typer.Option(
                "--detach-classification/--no-detach-classification",
                help="Reference behaviour: no classification gradient reaches the lens.",
            ),
        ] = None,
        init: Annotated[
            str | None, typer.Option(help="Lens init: 'extractor' or 'random'.")
        ] = None,
        orientations: Annotated[
            int | None,
            typer.Option(help="1, or 8: average features over rotations and mirror images."),
        ] = None,
        device: Device = None,
        progress: Progress = True,
    ) -> None:
        """Train plain and lens heads on held-out wells; write results, figures and maps to OUT."""
        from phenolapse.lens import LensConfig, run_lens
        from phenolapse.report.lens_figures import write_lens_figures

        with reported_errors(out):
            _check_weights(weights)
            cfg = config_from_options(
                LensConfig,
                config,
                coefs=coef or None,
                seeds=seed or None,
                epochs=epochs,
                concentration=concentration,
                last_time_points=last_time_points,
                detach_classification=detach_classification,
                init=init,
                orientations=orientations,
                device=device,
                progress=progress,
                preprocess={"image_size": image_size, "crop_size": crop_size},
            )
            result = run_lens(source, weights=weights, out=out, config=cfg, encoder=encoder)
            write_lens_figures(result)
        tests = result.tests
        for _, row in tests.iterrows():
            typer.echo(
                f"lambda={row['coef']:g} {row['metric']}: plain {row['plain_mean']:.3f} "
                f"lens {row['lens_mean']:.3f} (diff {row['mean_difference']:+.3f}, "
                f"Wilcoxon p={row['wilcoxon_p']:.3g})"
            )
        typer.echo(f"wrote {out}")


def _check_weights(weights: Path) -> None:
    """ConfigError when ``weights`` is a ResNet: the lens starts from a ConvAE."""
    from phenolapse.errors import ConfigError
    from phenolapse.models.convae import read_checkpoint
    from phenolapse.models.resnet import is_resnet_checkpoint

    if is_resnet_checkpoint(read_checkpoint(weights, map_location="cpu")):
        raise ConfigError(
            f"--weights {weights} is a ResNet encoder, and the lens starts from a ConvAE: pass the "
            "ResNet as --encoder and ConvAE weights (e.g. the published ones) as --weights"
        )
