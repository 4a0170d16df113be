"""``phenolapse embed``: images -> per-image features and well-level profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import fail, fail_os
from phenolapse.errors import ConfigError, PhenolapseError
from phenolapse.io_utils import read_yaml_mapping

EMBED_HELP = """Encode every image (or every crop of it) into features, then well-level profiles.

MANIFEST is a manifest Parquet file (phenolapse ingest) or a folder of images. In a folder
without --platemap any file names will do: names that follow a known scheme give plate, well and
time; every other file is one row of its own. Writes

  OUT/features.zarr     per-image features + manifest rows (phenolapse.embedding.read_features)

  OUT/profiles.parquet  mean features per (plate, well, time point), Metadata_* columns

A rerun into the same OUT resumes: only images without features are computed.
"""


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = read_yaml_mapping(path, what="embed configuration")
    return data.get("embed", data)


def register(app: typer.Typer) -> None:
    """Add the ``embed`` command to ``app``."""

    @app.command(help=EMBED_HELP)
    def embed(
        manifest: Annotated[
            Path, typer.Argument(help="Manifest Parquet file or folder of images.")
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
        weights: Annotated[
            Path | None, typer.Option(help="ConvAE weights (published state_dict or checkpoint).")
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option(help="YAML file of EmbedConfig options (key 'embed' or top level)."),
        ] = None,
        batch_size: Annotated[int | None, typer.Option(help="Images per batch.")] = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
        num_workers: Annotated[int | None, typer.Option(help="Image decoding workers.")] = None,
        precision: Annotated[
            str | None, typer.Option(help="auto, fp32, bf16 or fp16 (CUDA).")
        ] = None,
        mode: Annotated[
            str | None, typer.Option(help="Crops per frame: center, tile or full.")
        ] = None,
        crop_size: Annotated[int | None, typer.Option(help="Crop side in raw pixels.")] = None,
        image_size: Annotated[int | None, typer.Option(help="Model input side in pixels.")] = None,
        convae_features: Annotated[
            str | None,
            typer.Option(
                help="ConvAE features: stats (default, position-free statistics), latent (the "
                "reference) or pooled."
            ),
        ] = None,
        platemap: Annotated[
            Path | None, typer.Option(help="Plate map, when MANIFEST is a folder of images.")
        ] = None,
        skip_bad: Annotated[
            bool, typer.Option("--skip-bad", help="Skip unreadable images (listed in skipped.csv).")
        ] = False,
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
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        from pydantic import ValidationError

        from phenolapse.embedding import EmbedConfig, embed_distributed, embed_manifest
        from phenolapse.embedding.extract import output_paths

        try:
            options = _load_config(config)
            pre = dict(options.pop("preprocess", {}) or {})
            for key, value in {
                "mode": mode,
                "crop_size": crop_size,
                "image_size": image_size,
            }.items():
                if value is not None:
                    pre[key] = value
            flags = {
                "batch_size": batch_size,
                "device": device,
                "num_workers": num_workers,
                "precision": precision,
                "convae_features": convae_features,
            }
            options.update({k: v for k, v in flags.items() if v is not None})
            if skip_bad:
                options["on_error"] = "skip"
            if no_profiles:
                options["profiles"] = False
            options["progress"] = progress
            try:
                cfg = EmbedConfig.model_validate({**options, "preprocess": pre})
            except ValidationError as exc:
                raise ConfigError(f"invalid embed options: {exc}") from exc
            if weights is None:
                raise ConfigError("give the extractor weights with --weights")
            source: Any = manifest
            if manifest.is_dir() and platemap is None:
                from phenolapse.data.manifest import build_manifest

                source = build_manifest(manifest, require_names=False, progress=False)
                for warning in source.attrs.get("warnings", []):
                    typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
                norm = getattr(cfg, "normalization", None)
                if norm is not None and "normalization" not in options:
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
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, out)
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
