"""``phenolapse temporal``: features -> distance to control, DTW clusters, effects, figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phenolapse.cli._common import fail, fail_os
from phenolapse.errors import PhenolapseError

if TYPE_CHECKING:
    import pandas as pd


def register(app: typer.Typer) -> None:
    """Add the ``temporal`` command to ``app``."""

    @app.command()
    def temporal(
        features: Annotated[
            Path, typer.Argument(help="Profiles Parquet (Metadata_* + features) or features.zarr.")
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
        manifest: Annotated[
            Path | None,
            typer.Option(help="Manifest Parquet: confluence is measured on its images."),
        ] = None,
        incucyte: Annotated[
            list[Path] | None,
            typer.Option(
                help="Incucyte export(s) or long growth table(s) (repeatable): one per plate or "
                "metric; the plate is the export's 'Label:' line, else the file name. Their "
                "confluence replaces the one measured on the images."
            ),
        ] = None,
        platemap: Annotated[
            Path | None,
            typer.Option(help="Plate map of the exports' wells: CSV or Incucyte .PlateMap XML."),
        ] = None,
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
        config: Annotated[
            Path | None, typer.Option(help="YAML file with TemporalConfig options.")
        ] = None,
        growth: Annotated[bool, typer.Option(help="Use the growth readout.")] = True,
        figures: Annotated[bool, typer.Option(help="Draw the figures.")] = True,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Distance to control, series, DTW clusters, effect annotation, GR and figures."""
        from phenolapse.temporal.annotate import read_cluster_mapping
        from phenolapse.temporal.config import TemporalConfig
        from phenolapse.temporal.growth import check_growth_plates
        from phenolapse.temporal.pipeline import run_temporal

        try:
            cfg = TemporalConfig.from_yaml(config) if config is not None else TemporalConfig()
            updates: dict[str, object] = {"progress": progress, "use_growth": growth}
            if cluster_map is not None:
                updates["cluster_effects"] = read_cluster_mapping(cluster_map)
            cfg = cfg.model_copy(update=updates)
            if k is not None or window is not None:
                cluster = cfg.cluster.model_copy(
                    update={
                        **({"k": k} if k is not None else {}),
                        **({"window": window} if window is not None else {}),
                    }
                )
                cfg = cfg.model_copy(update={"cluster": cluster})
            if metric is not None:
                cfg = cfg.model_copy(
                    update={"distance": cfg.distance.model_copy(update={"metric": metric})}
                )
            cfg = TemporalConfig.model_validate(cfg.model_dump())
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
        except PhenolapseError as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(f"invalid option: {exc}")
        except OSError as exc:
            fail_os(exc, out)
        counts = result.annotations.loc[result.annotations["role"] == "treatment", "effect"]
        typer.echo(counts.value_counts().to_string())
        typer.echo(
            f"k = {len(result.centroids)} clusters; wrote {len(result.files)} files to {out}"
        )


def _read_features(path: Path) -> pd.DataFrame:
    """Profiles from a profiles Parquet, or aggregated from a ``features.zarr`` store."""
    from phenolapse.temporal.pipeline import load_profiles

    if path.exists() and (path.is_dir() or path.suffix == ".zarr"):
        from phenolapse.embedding import make_profiles, read_features

        meta, feats = read_features(path)
        return make_profiles(meta, feats)
    return load_profiles(path)
