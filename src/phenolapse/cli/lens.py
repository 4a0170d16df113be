"""``phenolapse lens``: drug classification from single images, with and without the lens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import fail, fail_os
from phenolapse.errors import PhenolapseError


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
        weights: Annotated[Path, typer.Option(help="Trained ConvAE weights (F and AE).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
        config: Annotated[
            Path | None, typer.Option(help="YAML file of LensConfig options (flags override).")
        ] = None,
        coef: Annotated[
            list[float] | None,
            typer.Option(help="lambda of the lens loss (repeat for a grid); > 0 regularised."),
        ] = None,
        seed: Annotated[list[int] | None, typer.Option(help="Seeds (repeat).")] = None,
        epochs: Annotated[int | None, typer.Option(help="Lens training epochs.")] = None,
        concentration: Annotated[
            str | None, typer.Option(help="'top' (each drug's highest) or 'all'.")
        ] = None,
        last_n: Annotated[
            int | None, typer.Option(help="Keep each plate's last N time points.")
        ] = None,
        image_size: Annotated[int | None, typer.Option(help="Model input side (÷4).")] = None,
        crop_size: Annotated[
            int | None, typer.Option(help="Centre-crop side before resize.")
        ] = None,
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
        device: Annotated[str | None, typer.Option(help="torch device, e.g. cpu or cuda.")] = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Train plain and lens heads on held-out wells; write results, figures and maps to OUT."""
        from phenolapse.lens import load_lens_config, make_lens_config, run_lens

        try:
            base = load_lens_config(config) if config is not None else make_lens_config({})
            data: dict[str, Any] = base.model_dump()
            updates = {
                "coefs": coef or None,
                "seeds": seed or None,
                "epochs": epochs,
                "concentration": concentration,
                "last_n_timepoints": last_n,
                "detach_classification": detach_classification,
                "init": init,
                "orientations": orientations,
                "device": device,
            }
            data.update({k: v for k, v in updates.items() if v is not None})
            data["progress"] = progress
            if image_size is not None:
                data["preprocess"]["image_size"] = image_size
            if crop_size is not None:
                data["preprocess"]["crop_size"] = crop_size
            cfg = make_lens_config(data, source="command line")
            result = run_lens(source, weights=weights, out=out, config=cfg)
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, out)
        tests = result.tests
        for _, row in tests.iterrows():
            typer.echo(
                f"lambda={row['coef']:g} {row['metric']}: plain {row['plain_mean']:.3f} "
                f"lens {row['lens_mean']:.3f} (diff {row['mean_difference']:+.3f}, "
                f"Wilcoxon p={row['wilcoxon_p']:.3g})"
            )
        typer.echo(f"wrote {out}")
