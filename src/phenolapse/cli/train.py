"""``phenolapse train``: self-supervised ConvAE training on a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phenolapse.cli._common import (
    BatchSize,
    ConfigFile,
    CropSize,
    Device,
    Epochs,
    ImageSize,
    OutDir,
    Progress,
    Seed,
    config_from_options,
    reported_errors,
)


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command()
    def train(
        manifest: Annotated[Path, typer.Argument(help="Manifest Parquet (`phenolapse ingest`).")],
        out: OutDir,
        config: ConfigFile = None,
        epochs: Epochs = None,
        batch_size: BatchSize = None,
        lr: Annotated[float | None, typer.Option(help="Adam learning rate (default 1e-3).")] = None,
        seed: Seed = None,
        val_fraction: Annotated[
            float | None, typer.Option(help="Fraction of wells held out for validation (0.1).")
        ] = None,
        max_images: Annotated[
            int | None, typer.Option(help="Train on a random subset of this many images.")
        ] = None,
        image_size: ImageSize = None,
        crop_size: CropSize = None,
        init_weights: Annotated[
            Path | None, typer.Option(help="Start from these weights instead of random init.")
        ] = None,
        device: Device = None,
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
        objective: Annotated[
            str | None,
            typer.Option(help="reconstruction (the reference), simclr, vicreg or dino."),
        ] = None,
        encoder: Annotated[
            str | None,
            typer.Option(help="convae (the reference) or resnet (two-view objectives only)."),
        ] = None,
        temporal_positives: Annotated[
            float | None,
            typer.Option(
                help="Fraction of pairs whose second view is the same well at the adjacent "
                "time point (0: none; two-view objectives only)."
            ),
        ] = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Continue from the run's last checkpoint (settings from its config.yaml).",
            ),
        ] = False,
        progress: Progress = True,
    ) -> None:
        """Train a feature extractor self-supervised (reference: ConvAE, multi-crop reconstruction).

        --objective simclr/vicreg/dino trains on two views per image instead, the ConvAE's
        encoder or a small ResNet (--encoder resnet), and scores held-out wells every epoch.
        Writes config.yaml, checkpoints/epoch_XXX.pt, history.csv, loss_curve.png and model.pt.
        Under torchrun every process trains a shard (DistributedDataParallel).
        """
        from phenolapse.data.manifest import read_manifest
        from phenolapse.training.config import TrainConfig
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
            "objective": objective,
            "encoder": encoder,
            "temporal_positives": temporal_positives,
            "progress": progress,
            "preprocess": {"image_size": image_size, "crop_size": crop_size},
        }
        if resume and config is None and (out / "config.yaml").is_file():
            config = out / "config.yaml"
        with reported_errors(out):
            cfg = config_from_options(TrainConfig, config, section="train", **overrides)
            df = read_manifest(manifest)
            result = run_training(df, out=out, config=cfg, resume=resume)
        last = result.history.iloc[-1]
        first = result.history.iloc[0]
        knn = ""
        if "val_knn" in result.history and result.history["val_knn"].notna().any():
            knn = (
                f"; held-out k-NN balanced accuracy {first['val_knn']:.3f} -> {last['val_knn']:.3f}"
            )
        typer.echo(
            f"validation loss {first['val_loss']:.5f} (untrained) -> {last['val_loss']:.5f} "
            f"(epoch {int(last['epoch'])}){knn}; weights: {result.model_path}"
        )
