"""Configuration of the embedding stage, shared by the command line, YAML files and the API."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding.normalize import NormalizationConfig
from phenolapse.stage_config import Device, StageConfig, device_field


class EmbedConfig(StageConfig):
    """How images become per-image features and well-level profiles."""

    section: ClassVar[str | None] = "embed"

    preprocess: PreprocessConfig = Field(
        default_factory=PreprocessConfig,
        description=(
            "Crop / resize / intensity scaling of every frame (the reference: centre crop 256 -> "
            "128)."
        ),
    )
    convae_features: Literal["latent", "pooled", "stats"] = Field(
        default="stats",
        description=(
            "Features of a ConvAE weights file: ``stats`` (the default), 40 position-free "
            "statistics of the image and of the encoder (intensity quantiles, contrast and "
            "texture, and the mean of every channel of the encoder's last ReLU), which follow cell"
            " mass and the local patterns of cell shape; ``latent``, the flattened latent (the "
            "reference, a map of where cells lie); or ``pooled``, mean and max over space of every"
            " encoder activation (456 numbers). docs/features.md compares them."
        ),
    )
    batch_size: int = Field(
        default=64,
        ge=1,
        description="Images decoded per loader batch (one transfer to the device).",
    )
    micro_batch: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Crops per forward pass; None picks one for the device (small batches keep the "
            "activations in the CPU cache, large ones fill a GPU)."
        ),
    )
    device: Device = device_field("Device the extractor runs on")
    num_workers: int | None = Field(
        default=None,
        ge=0,
        description="Decoding worker processes; None: one per spare CPU core (at most 16).",
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description=(
            "``auto`` (bf16 where the hardware supports it natively, else fp32), ``fp32``, "
            "``bf16``, ``fp16`` (CUDA only). Reduced precision keeps features within cosine 0.9999"
            " of fp32."
        ),
    )
    channels_last: bool | None = Field(
        default=None,
        description=(
            "Channels-last memory layout; None: on where it is faster (CUDA, or CPU with bf16)."
        ),
    )
    compile: bool = Field(
        default=False, description="``torch.compile`` the extractor (worth it for long GPU runs)."
    )
    on_error: Literal["raise", "skip"] = Field(
        default="raise",
        description=(
            "``raise``: stop at the first unreadable image (rows already written are kept); "
            "``skip``: leave its row empty (NaN), list it in ``skipped.csv`` and go on."
        ),
    )
    chunk_rows: int = Field(
        default=1024, ge=1, description="Rows per Zarr chunk: the unit of writing and of resuming."
    )
    profiles: bool = Field(
        default=True, description="Also write the well-level profiles (``profiles.parquet``)."
    )
    aggregation: Literal["mean", "median"] = Field(
        default="mean",
        description=(
            "How per-image features become a profile: ``mean`` (the reference) or ``median``."
        ),
    )
    normalization: NormalizationConfig = Field(
        default_factory=NormalizationConfig,
        description=(
            "How ``profiles_normalized.parquet`` is made from the profiles: robust z-scores "
            "against each plate's negative controls by default; ``method: none`` copies the raw "
            "profiles."
        ),
    )
    progress: bool = Field(default=True, description="Show a progress bar over the images.")
