"""Configuration of self-supervised ConvAE training, shared by the CLI, YAML files and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.errors import ConfigError
from phenolapse.io_utils import atomic_write, read_yaml_mapping
from phenolapse.stage_config import DEVICE_HELP


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

    ``objective: reconstruction`` trains the ConvAE by multi-crop reconstruction (the reference);
    ``simclr``, ``vicreg`` and ``dino`` train the ConvAE's encoder or a small ResNet on two views
    per image (:mod:`phenolapse.training.ssl`). Each field's description says what it does.
    """

    model_config = ConfigDict(extra="forbid")

    preprocess: PreprocessConfig = Field(
        default_factory=_default_preprocess,
        description="Raw frame -> crop (the views are cut from it) and model input size.",
    )
    crops: list[CropSpec] = Field(
        default_factory=reference_crops, min_length=1,
        description="Reconstruction only: the multi-crop strategy, a list of {n, scale}; every "
        "view is a separate sample the autoencoder reconstructs.",
    )
    crop_ratio: tuple[float, float] = Field(
        default=(3.0 / 4.0, 4.0 / 3.0),
        description="Reconstruction only: range of aspect ratios of the random-resized crops.",
    )
    flip_p: float = Field(
        default=0.5, ge=0, le=1,
        description="Reconstruction only: probability of a horizontal flip of a view.",
    )
    blur_p: float = Field(
        default=0.2, ge=0, le=1, description="Probability that a view is Gaussian-blurred."
    )
    blur_sigma: tuple[float, float] = Field(
        default=(0.1, 2.0), description="Range the blur's standard deviation (px) is drawn from."
    )
    blur_kernel: int = Field(default=3, ge=3, description="Side of the blur kernel (odd, px).")
    epochs: int = Field(
        default=10, ge=1,
        description="Number of epochs. The reference decays the learning rate after epoch 5 "
        "and released its epoch-5 checkpoint.",
    )
    batch_size: int = Field(
        default=64, ge=1,
        description="Images per batch (two-view objectives: also the pool of negatives).",
    )
    view_steps: Literal["separate", "joint"] = Field(
        default="separate",
        description="Reconstruction only: 'separate' takes one optimizer step per view group of "
        "a batch (the reference), 'joint' one step on all views.",
    )
    lr: float = Field(
        default=1e-3, gt=0,
        description="Initial learning rate (Adam for reconstruction, AdamW with a cosine "
        "schedule for two-view objectives).",
    )
    lr_decay_epoch: int = Field(
        default=5, ge=1,
        description="Reconstruction only: the epoch after which the learning rate is multiplied "
        "by lr_decay.",
    )
    lr_decay: float = Field(
        default=0.3, gt=0,
        description="Reconstruction only: the factor applied to the learning rate once, after "
        "lr_decay_epoch.",
    )
    val_fraction: float = Field(
        default=0.1, ge=0, lt=1,
        description="Fraction of (plate, well) groups held out for the validation loss and the "
        "k-NN score.",
    )
    seed: int = Field(default=0, description="Seeds the weights, split, order and views.")
    device: str = Field(default="auto", description=DEVICE_HELP)
    amp: bool | None = Field(
        default=None, description="bf16 autocast; unset: on for CUDA, off for CPU."
    )
    channels_last: bool | None = Field(
        default=None,
        description="Reconstruction only: channels-last memory format; unset: on for CUDA.",
    )
    compile: bool = Field(default=False, description="torch.compile the model for training.")
    num_workers: int = Field(
        default=0, ge=0,
        description="DataLoader worker processes (also the threads that decode images).",
    )
    cache_gb: float = Field(
        default=4.0, ge=0,
        description="Reconstruction only: keep the decoded crops in RAM when they need at most "
        "this many GiB (0: never).",
    )
    init_weights: Path | None = Field(
        default=None,
        description="Start the ConvAE from these weights (published state_dict or checkpoint) "
        "instead of random init.",
    )
    max_images: int | None = Field(
        default=None, ge=1,
        description="Train on a random subset of at most this many images (after the split).",
    )
    progress: bool = Field(default=True, description="Show progress bars.")
    objective: Literal["reconstruction", "simclr", "vicreg", "dino"] = Field(
        default="reconstruction",
        description="reconstruction (BCE, the reference), or two views per image: simclr "
        "(NT-Xent), vicreg (variance-invariance-covariance) or dino (self-distillation).",
    )
    encoder: Literal["convae", "resnet"] = Field(
        default="convae",
        description="convae (the reference architecture; two-view objectives train its encoder "
        "on pooled activations) or resnet (a small ResNet, two-view objectives only).",
    )
    resnet_widths: list[int] = Field(
        default_factory=lambda: [32, 64, 128, 256], min_length=1,
        description="Channels of the ResNet's stages; the features are their spatial means.",
    )
    temperature: float = Field(
        default=0.2, gt=0, description="simclr only: temperature of the NT-Xent softmax."
    )
    view_fraction: float = Field(
        default=0.75, gt=0, le=1,
        description="Two-view objectives: side of a view as a fraction of the model input; views "
        "are crops at the frame's own magnification, never zoomed.",
    )
    jitter: float = Field(default=0.1, ge=0, lt=1, description=(
        "Two-view objectives: largest relative change of a view's contrast (and half of it, in "
        "standard deviations, of its brightness)."
    ))
    weight_decay: float = Field(
        default=1e-4, ge=0, description="Two-view objectives: AdamW weight decay."
    )
    temporal_positives: float = Field(
        default=0.0, ge=0, le=1,
        description="Two-view objectives: fraction of pairs whose second view comes from the "
        "same well, field and tile at the adjacent time point (0: none).",
    )
    temporal_max_gap_h: float | None = Field(
        default=None, gt=0,
        description="Largest time gap (h) between a time-aware pair; unset: any adjacent scan.",
    )

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
