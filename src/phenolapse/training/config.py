"""Configuration of self-supervised ConvAE training, shared by the CLI, YAML files and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.errors import ConfigError
from phenolapse.io_utils import atomic_write, read_yaml_mapping


class CropSpec(BaseModel):
    """``n`` random-resized views whose area is a fraction ``scale=(lo, hi)`` of the frame.

    ``scale=(1, 1)`` is the whole frame.
    """

    model_config = ConfigDict(extra="forbid")

    n: int = Field(default=1, ge=1)
    scale: tuple[float, float] = (1.0, 1.0)

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop scale must satisfy 0 < lo <= hi <= 1, got {v}")
        return v


def _default_preprocess() -> PreprocessConfig:
    return PreprocessConfig.model_validate({})


def reference_crops() -> list[CropSpec]:
    """The reference multi-crop strategy: 1 whole + 1 of scale 0.5-0.75 + 3 of scale 0.5."""
    return [
        CropSpec(n=1, scale=(1.0, 1.0)),
        CropSpec(n=1, scale=(0.5, 0.75)),
        CropSpec(n=3, scale=(0.5, 0.5)),
    ]


class TrainConfig(BaseModel):
    """Every setting of self-supervised training; the defaults are the reference recipe.

    Attributes
    ----------
    preprocess
        Raw frame -> crop (the views are cut from it) and model input size.
    crops
        Multi-crop strategy: a list of :class:`CropSpec`; every view is a separate sample
        reconstructed by the autoencoder.
    crop_ratio
        Range of aspect ratios of the random-resized crops.
    flip_p, blur_p, blur_sigma, blur_kernel
        Horizontal flip probability; Gaussian blur probability, sigma range and kernel size.
    epochs
        Number of epochs. Default 10: the reference schedule decays the learning rate after
        epoch 5, and its released weights are the epoch-5 checkpoint (``checkpoints/epoch_005.pt``).
    batch_size
        Images per batch.
    view_steps
        ``separate``: one optimizer step per view group of a batch, as in the reference;
        ``joint``: one step on all views of the batch.
    lr, lr_decay_epoch, lr_decay
        Adam learning rate, multiplied by ``lr_decay`` once ``lr_decay_epoch`` epochs are done.
    val_fraction
        Fraction of (plate, well) groups held out for the validation loss.
    seed
        Seeds model initialisation, the split, the data order and every augmentation.
    device
        ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
    amp
        bf16 autocast; None: on for CUDA, off for CPU.
    channels_last
        Channels-last memory format; None: on for CUDA, off for CPU.
    compile
        ``torch.compile`` the model for training.
    num_workers
        DataLoader worker processes (also threads used to decode the image cache).
    cache_gb
        Keep the decoded crops in RAM when they need at most this many GiB (0: never).
    init_weights
        Start from these weights (published state_dict or checkpoint) instead of random init.
    max_images
        Train on a random subset of at most this many images (after the split by well).
    progress
        Show progress bars.
    """

    model_config = ConfigDict(extra="forbid")

    preprocess: PreprocessConfig = Field(default_factory=_default_preprocess)
    crops: list[CropSpec] = Field(default_factory=reference_crops, min_length=1)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    flip_p: float = Field(default=0.5, ge=0, le=1)
    blur_p: float = Field(default=0.2, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = Field(default=3, ge=3)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    view_steps: Literal["separate", "joint"] = "separate"
    lr: float = Field(default=1e-3, gt=0)
    lr_decay_epoch: int = Field(default=5, ge=1)
    lr_decay: float = Field(default=0.3, gt=0)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    num_workers: int = Field(default=0, ge=0)
    cache_gb: float = Field(default=4.0, ge=0)
    init_weights: Path | None = None
    max_images: int | None = Field(default=None, ge=1)
    progress: bool = True
    objective: Literal["reconstruction", "simclr", "vicreg", "dino"] = "reconstruction"
    encoder: Literal["convae", "resnet"] = "convae"
    resnet_widths: list[int] = Field(default_factory=lambda: [32, 64, 128, 256], min_length=1)
    temperature: float = Field(default=0.2, gt=0)
    view_fraction: float = Field(default=0.75, gt=0, le=1)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    temporal_positives: float = Field(default=0.0, ge=0, le=1)
    temporal_max_gap_h: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"crop_ratio must satisfy 0 < lo <= hi, got {self.crop_ratio}")
        slo, shi = self.blur_sigma
        if not 0 < slo <= shi:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}")
        if self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd, got {self.blur_kernel}")
        if self.device != "auto" and not (
            self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")
        ):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.objective == "reconstruction" and self.encoder != "convae":
            raise ValueError("the reconstruction objective needs the ConvAE (it has the decoder)")
        if self.objective == "reconstruction" and self.temporal_positives > 0:
            raise ValueError("temporal_positives apply to the two-view objectives only")
        return self

    @property
    def n_views(self) -> int:
        """Views per image."""
        return sum(c.n for c in self.crops)

    def to_yaml(self, path: Path) -> Path:
        """Write the configuration as YAML (atomically)."""
        with atomic_write(path, "w") as fh:
            yaml.safe_dump(self.model_dump(mode="json"), fh, sort_keys=False)
        return Path(path)

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Read a YAML file (a mapping of the fields above); ``overrides`` win over it."""
        path = Path(path)
        data = read_yaml_mapping(path, what="training configuration")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return make_config(data, source=str(path))


def make_config(data: dict[str, Any], *, source: str = "configuration") -> TrainConfig:
    """Validate a mapping into a :class:`TrainConfig`; bad values raise :class:`ConfigError`."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid training setting(s):\n{exc}") from exc
