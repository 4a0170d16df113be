"""``phenolapse embed``: images -> per-image features and well-level profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import (
    BatchSize,
    ConfigFile,
    CropSize,
    Device,
    ImageSize,
    OutDir,
    Platemap,
    Progress,
    SkipBad,
    config_from_options,
    reported_errors,
)
from phenolapse.errors import ConfigError

EMBED_HELP = """Encode every image (or every crop of it) into features, then well-level profiles.

MANIFEST is a manifest Parquet file (phenolapse ingest) or a folder of images. In a folder
without --platemap any file names will do: names that follow a known scheme give plate, well and
time; every other file is one row of its own. Writes

  OUT/features.zarr     per-image features + manifest rows (phenolapse.embedding.read_features)

  OUT/profiles.parquet  mean features per (plate, well, time point), Metadata_* columns

A rerun into the same OUT resumes: only images without features are computed.
"""


def register(app: typer.Typer) -> None:
    """Add the ``embed`` command to ``app``."""

    @app.command(help=EMBED_HELP)
    def embed(
        manifest: Annotated[
            Path, typer.Argument(help="Manifest Parquet file or folder of images.")
        ],
        out: OutDir,
        weights: Annotated[
            Path | None, typer.Option(help="ConvAE weights (published state_dict or checkpoint).")
        ] = None,
        config: ConfigFile = None,
        batch_size: BatchSize = None,
        device: Device = None,
        num_workers: Annotated[int | None, typer.Option(help="Image decoding workers.")] = None,
        precision: Annotated[
            str | None, typer.Option(help="auto, fp32, bf16 or fp16 (CUDA).")
        ] = None,
        mode: Annotated[
            str | None, typer.Option(help="Crops per frame: center, tile or full.")
        ] = None,
        crop_size: CropSize = None,
        image_size: ImageSize = None,
        convae_features: Annotated[
            str | None,
            typer.Option(
                help="ConvAE features: stats (default, position-free statistics), latent (the "
                "reference) or pooled."
            ),
        ] = None,
        platemap: Platemap = None,
        skip_bad: SkipBad = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Start again instead of resuming.")
        ] = False,
        no_profiles: Annotated[
            bool, typer.Option("--no-profiles", help="Write per-image features only.")
        ] = False,
        distributed: Annotated[
            bool, typer.Option("--distributed", help="Run on Dask (LocalCluster by default).")
        ] = False,
        scheduler: Annotated[
            str | None, typer.Option(help="Dask scheduler address (implies --distributed).")
        ] = None,
        n_workers: Annotated[
            int | None, typer.Option(help="LocalCluster workers (default: one per GPU, else 2).")
        ] = None,
        progress: Progress = True,
    ) -> None:
        from phenolapse.embedding import EmbedConfig, embed_distributed, embed_manifest
        from phenolapse.embedding.extract import output_paths

        try:
            with reported_errors(out):
                cfg = config_from_options(
                    EmbedConfig,
                    config,
                    preprocess={"mode": mode, "crop_size": crop_size, "image_size": image_size},
                    batch_size=batch_size,
                    device=device,
                    num_workers=num_workers,
                    precision=precision,
                    convae_features=convae_features,
                    on_error="skip" if skip_bad else None,
                    profiles=False if no_profiles else None,
                    progress=progress,
                )
                if weights is None:
                    raise ConfigError("give the extractor weights with --weights")
                source: Any = manifest
                if manifest.is_dir() and platemap is None:
                    from phenolapse.data.manifest import build_manifest

                    source = build_manifest(manifest, require_names=False, progress=False)
                    for warning in source.attrs.get("warnings", []):
                        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
                    norm = getattr(cfg, "normalization", None)
                    if norm is not None and "normalization" not in cfg.model_fields_set:
                        # No plate map, so no control wells: the profiles are copied, not normalised.
                        cfg = cfg.model_copy(
                            update={"normalization": norm.model_copy(update={"method": "none"})}
                        )
                if distributed or scheduler is not None:
                    store = embed_distributed(
                        source,
                        weights=weights,
                        out=out,
                        config=cfg,
                        scheduler=scheduler,
                        n_workers=n_workers,
                        overwrite=overwrite,
                        platemap=platemap,
                    )
                else:
                    store = embed_manifest(
                        source,
                        weights=weights,
                        out=out,
                        config=cfg,
                        overwrite=overwrite,
                        platemap=platemap,
                    )
        except KeyboardInterrupt:
            typer.secho(
                f"interrupted: the features computed so far are kept in {out}; rerun the same "
                "command to resume (only images without features are computed)",
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(130) from None
        from phenolapse.embedding.store import FeatureStore

        st = FeatureStore(store)
        done = int(st.done_mask().sum())
        typer.echo(f"wrote {store} ({done} of {st.n_rows} images, {st.n_features} features each)")
        profiles = output_paths(out)[1]
        if cfg.profiles and profiles.is_file():
            typer.echo(f"wrote {profiles}")
        if done < st.n_rows:
            typer.secho(
                f"{st.n_rows - done} image(s) without features; see {store / 'skipped.csv'}",
                err=True,
                fg=typer.colors.YELLOW,
            )
