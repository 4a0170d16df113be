"""``phenolapse train``: self-supervised ConvAE training on a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import fail, fail_os
from phenolapse.errors import PhenolapseError


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command()
    def train(
        manifest: Annotated[Path, typer.Argument(help="Manifest Parquet (`phenolapse ingest`).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
        config: Annotated[
            Path | None, typer.Option(help="YAML training configuration (TrainConfig fields).")
        ] = None,
        epochs: Annotated[int | None, typer.Option(help="Number of epochs (default 10).")] = None,
        batch_size: Annotated[int | None, typer.Option(help="Images per batch (64).")] = None,
        lr: Annotated[float | None, typer.Option(help="Adam learning rate (default 1e-3).")] = None,
        seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
        val_fraction: Annotated[
            float | None, typer.Option(help="Fraction of wells held out for validation (0.1).")
        ] = None,
        max_images: Annotated[
            int | None, typer.Option(help="Train on a random subset of this many images.")
        ] = None,
        image_size: Annotated[int | None, typer.Option(help="Model input size (128).")] = None,
        crop_size: Annotated[int | None, typer.Option(help="Crop of the raw frame (256).")] = None,
        init_weights: Annotated[
            Path | None, typer.Option(help="Start from these weights instead of random init.")
        ] = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
        amp: Annotated[
            bool | None, typer.Option("--amp/--no-amp", help="bf16 mixed precision (GPU default).")
        ] = None,
        channels_last: Annotated[
            bool | None,
            typer.Option("--channels-last/--no-channels-last", help="Channels-last (GPU default)."),
        ] = None,
        compile_model: Annotated[
            bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")
        ] = None,
        num_workers: Annotated[int | None, typer.Option(help="Data-loading workers (0).")] = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Continue from the run's last checkpoint (settings from its config.yaml).",
            ),
        ] = False,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Train the ConvAE by multi-crop reconstruction (reference recipe by default).

        Writes config.yaml, checkpoints/epoch_XXX.pt, history.csv, loss_curve.png and model.pt.
        Under torchrun every process trains a shard (DistributedDataParallel).
        """
        from phenolapse.data.manifest import read_manifest
        from phenolapse.training.config import TrainConfig, make_config
        from phenolapse.training.loop import train as run_training

        overrides: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "val_fraction": val_fraction,
            "max_images": max_images,
            "init_weights": init_weights,
            "device": device,
            "amp": amp,
            "channels_last": channels_last,
            "compile": compile_model,
            "num_workers": num_workers,
            "progress": progress,
        }
        if resume and config is None and (out / "config.yaml").is_file():
            config = out / "config.yaml"
        try:
            if config is not None:
                cfg = TrainConfig.from_yaml(config, **overrides)
            else:
                cfg = make_config({k: v for k, v in overrides.items() if v is not None})
            pre = {"image_size": image_size, "crop_size": crop_size}
            if any(v is not None for v in pre.values()):
                given = {k: v for k, v in pre.items() if v is not None}
                merged = cfg.preprocess.model_dump() | given
                cfg = make_config(cfg.model_dump() | {"preprocess": merged}, source="options")
            df = read_manifest(manifest)
            result = run_training(df, out=out, config=cfg, resume=resume)
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, out)
        last = result.history.iloc[-1]
        first = result.history.iloc[0]
        typer.echo(
            f"validation loss {first['val_loss']:.5f} (untrained) -> {last['val_loss']:.5f} "
            f"(epoch {int(last['epoch'])}); weights: {result.model_path}"
        )
