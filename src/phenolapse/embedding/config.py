"""Configuration of the embedding stage, shared by the command line, YAML files and the API."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding.normalize import NormalizationConfig


class EmbedConfig(BaseModel):
    """How images become per-image features and well-level profiles.

    Attributes
    ----------
    preprocess
        Crop / resize / intensity scaling of every frame (the reference: centre crop 256 -> 128).
    convae_features
        Features of a ConvAE weights file: ``stats`` (the default), 40 position-free statistics
        of the image and of the encoder (intensity quantiles, contrast and texture, and the mean
        of every channel of the encoder's last ReLU), which follow cell mass and the local
        patterns of cell shape; ``latent``, the flattened latent (the reference,
        a map of where cells lie); or ``pooled``, mean and max over space of every encoder
        activation (456 numbers). docs/features.md compares them.
    batch_size
        Images decoded per loader batch (one transfer to the device).
    micro_batch
        Crops per forward pass; None picks one for the device (small batches keep the
        activations in the CPU cache, large ones fill a GPU).
    device
        ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
    num_workers
        Decoding worker processes; None: one per spare CPU core (at most 16).
    precision
        ``auto`` (bf16 where the hardware supports it natively, else fp32), ``fp32``, ``bf16``,
        ``fp16`` (CUDA only). Reduced precision keeps features within cosine 0.9999 of fp32.
    channels_last
        Channels-last memory layout; None: on where it is faster (CUDA, or CPU with bf16).
    compile
        ``torch.compile`` the extractor (worth it for long GPU runs).
    on_error
        ``raise``: stop at the first unreadable image (rows already written are kept);
        ``skip``: leave its row empty (NaN), list it in ``skipped.csv`` and go on.
    chunk_rows
        Rows per Zarr chunk: the unit of writing and of resuming.
    profiles
        Also write the well-level profiles (``profiles.parquet``).
    aggregation
        How per-image features become a profile: ``mean`` (the reference) or ``median``.
    normalization
        How ``profiles_normalized.parquet`` is made from the profiles: robust z-scores against
        each plate's negative controls by default; ``method: none`` copies the raw profiles.
    progress
        Show a progress bar.
    """

    model_config = ConfigDict(extra="forbid")

    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    convae_features: Literal["latent", "pooled", "stats"] = "stats"
    batch_size: int = Field(default=64, ge=1)
    micro_batch: int | None = Field(default=None, ge=1)
    device: str = "auto"
    num_workers: int | None = Field(default=None, ge=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None
    compile: bool = False
    on_error: Literal["raise", "skip"] = "raise"
    chunk_rows: int = Field(default=1024, ge=1)
    profiles: bool = True
    aggregation: Literal["mean", "median"] = "mean"
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    progress: bool = True

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        return value
