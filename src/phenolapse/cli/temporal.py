"""``phenolapse temporal``: features -> distance to control, DTW clusters, effects, figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phenolapse.cli._common import (
    ConfigFile,
    Figures,
    ManifestFile,
    OutDir,
    Platemap,
    Progress,
    config_from_options,
    reported_errors,
)
from phenolapse.vocabulary import TREATMENT

if TYPE_CHECKING:
    import pandas as pd


def register(app: typer.Typer) -> None:
    """Add the ``temporal`` command to ``app``."""

    @app.command()
    def temporal(
        features: Annotated[
            Path, typer.Argument(help="Profiles Parquet (Metadata_* + features) or features.zarr.")
        ],
        out: OutDir,
        manifest: ManifestFile = None,
        incucyte: Annotated[
            list[Path] | None,
            typer.Option(
                help="Incucyte export(s) or long growth table(s) (repeatable): one per plate or "
                "metric; the plate is the export's 'Label:' line, else the file name. Their "
                "confluence replaces the one measured on the images."
            ),
        ] = None,
        platemap: Platemap = None,
        time_zero: Annotated[
            float | None,
            typer.Option(
                help="Drug addition in elapsed hours of the exports (plate-map time_zero wins)."
            ),
        ] = None,
        k: Annotated[
            int | None, typer.Option(help="Number of DTW clusters (default: chosen by silhouette).")
        ] = None,
        metric: Annotated[
            str | None, typer.Option(help="euclidean (default), cosine, correlation, braycurtis.")
        ] = None,
        window: Annotated[
            int | None, typer.Option(help="Sakoe-Chiba window of the DTW (time steps).")
        ] = None,
        cluster_map: Annotated[
            Path | None, typer.Option(help="YAML/CSV mapping cluster id -> effect (override).")
        ] = None,
        config: ConfigFile = None,
        growth: Annotated[bool, typer.Option(help="Use the growth readout.")] = True,
        figures: Figures = True,
        progress: Progress = True,
    ) -> None:
        """Distance to control, series, DTW clusters, effect annotation, GR and figures."""
        from phenolapse.temporal.annotate import read_cluster_mapping
        from phenolapse.temporal.config import TemporalConfig
        from phenolapse.temporal.growth import check_growth_plates
        from phenolapse.temporal.pipeline import run_temporal

        with reported_errors(out, invalid_values=True):
            cfg = config_from_options(
                TemporalConfig,
                config,
                progress=progress,
                use_growth=growth,
                cluster_effects=(
                    read_cluster_mapping(cluster_map) if cluster_map is not None else None
                ),
                cluster={"k": k, "window": window},
                distance={"metric": metric},
            )
            profiles = _read_features(features)
            man = None
            if manifest is not None:
                from phenolapse.data.manifest import read_manifest

                man = read_manifest(manifest)
            growth_table = None
            if incucyte:
                from phenolapse.data.incucyte import read_confluence_exports

                growth_table = read_confluence_exports(
                    incucyte, platemap=platemap, time_zero=time_zero
                )
                check_growth_plates(growth_table, profiles)
            result = run_temporal(
                profiles, out_dir=out, config=cfg, manifest=man, growth=growth_table
            )
            if figures:
                from phenolapse.report.temporal_figures import write_temporal_figures

                result.files.update(write_temporal_figures(result, out / "figures", manifest=man))
        counts = result.annotations.loc[result.annotations["role"] == TREATMENT, "effect"]
        typer.echo(counts.value_counts().to_string())
        typer.echo(
            f"k = {len(result.centroids)} clusters; wrote {len(result.files)} files to {out}"
        )


def _read_features(path: Path) -> pd.DataFrame:
    """Profiles from a profiles Parquet, or aggregated from a ``features.zarr`` store (feature
    columns named after the store's ``feature_prefix``)."""
    from phenolapse.embedding import load_profiles

    return load_profiles(path)
