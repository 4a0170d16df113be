"""``phenolapse compare``: feature extractors side by side on the same wells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolapse.cli._common import (
    ConfigFile,
    Device,
    Figures,
    LastTimePoints,
    ManifestFile,
    OutDir,
    Progress,
    Seed,
    config_from_options,
    reported_errors,
)


def _parse_features(items: list[str]) -> list[tuple[str | None, Path]]:
    out: list[tuple[str | None, Path]] = []
    for item in items:
        name, sep, path = item.partition("=")
        if sep and name and not Path(item).exists():
            out.append((name, Path(path)))
        else:
            out.append((None, Path(item)))
    return out


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command()
    def compare(
        out: OutDir,
        features: Annotated[
            list[str] | None,
            typer.Option(
                "--features", "-f",
                help="Profiles of one extractor: [NAME=]PATH to profiles.parquet or "
                "features.zarr. Repeat for each extractor.",
            ),
        ] = None,
        extractor: Annotated[
            list[str] | None,
            typer.Option(
                "--extractor", "-e",
                help="Extractor to run on --manifest: [LABEL:]KIND[=WEIGHTS], KIND in convae, "
                "random-convae, classical, resnet50, resnet50-swav, resnet50-dino, vit-s8-dino, "
                "vit-b8-dino, ... Repeatable.",
            ),
        ] = None,
        manifest: ManifestFile = None,
        config: ConfigFile = None,
        weights_dir: Annotated[
            Path | None, typer.Option(help="Folder holding pretrained networks' weight files.")
        ] = None,
        last_time_points: LastTimePoints = None,
        embedding: Annotated[
            str | None, typer.Option(help="2-D embedding before HDBSCAN: umap or pca.")
        ] = None,
        cost_images: Annotated[
            int | None, typer.Option(help="Images timed per extractor (0: no timing).")
        ] = None,
        device: Device = None,
        seed: Seed = None,
        drop_nan: Annotated[
            bool, typer.Option("--drop-nan", help="Leave out profiles with NaN features.")
        ] = False,
        figures: Figures = True,
        progress: Progress = True,
    ) -> None:
        """Score extractors: replicate retrieval, drug clustering, held-out classification, cost."""
        from phenolapse.comparison import CompareConfig, run_comparison

        with reported_errors(out):
            cfg = config_from_options(
                CompareConfig,
                config,
                weights_dir=weights_dir,
                last_time_points=last_time_points,
                embedding=embedding,
                cost_images=cost_images,
                device=device,
                seed=seed,
                nan_policy="drop" if drop_nan else None,
                figures=figures,
                progress=progress,
            )
            result = run_comparison(
                out=out,
                features=_parse_features(features or []),
                extractors=extractor or [],
                manifest=manifest,
                config=cfg,
            )
            if cfg.figures:
                from phenolapse.report.comparison_figures import write_comparison_figures

                drawn = write_comparison_figures(result.table, result.details, out)
                result.paths.update({f"figure_{task}": p for task, p in drawn.items()})
        for name, n in result.dropped.items():
            if n:
                typer.secho(
                    f"{name}: {n} rows not shared by every extractor left out",
                    err=True, fg=typer.colors.YELLOW,
                )
        typer.echo(result.paths["markdown"].read_text())
        typer.echo(f"wrote {result.paths['table']} and {len(result.paths)} files in {out}")
