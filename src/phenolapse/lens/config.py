"""Configuration of the lens stage, shared by the Python API, YAML files and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.stage_config import Device, StageConfig, device_field


class LensConfig(StageConfig):
    """Everything that decides a lens run: classes, splits, training, evaluation, outputs."""

    section: ClassVar[str | None] = "lens"
    renamed: ClassVar[dict[str, str]] = {"last_n_timepoints": "last_time_points"}

    preprocess: PreprocessConfig = Field(
        default_factory=lambda: PreprocessConfig.model_validate({}),
        description=(
            "How frames become model input (crop, resize, channels, intensity scaling). Match the "
            "pixel scale the weights were trained at: the published weights saw 256-px crops at "
            '128 px, so 64-px inputs should be 128-px tiles (``crop_size=128, mode="tile"``, one '
            "image per tile), not whole 256-px frames, whose cells shrink below the detail the "
            "encoder resolves."
        ),
    )
    concentration: Literal["top", "all"] = Field(
        default="top",
        description=(
            "``top``: each drug's highest concentration (the reference); ``all``: every "
            "concentration."
        ),
    )
    last_time_points: int | None = Field(
        default=30,
        ge=1,
        description="Keep each plate's last N time points (the reference: 30); None keeps all.",
    )
    include_controls: bool = Field(
        default=True,
        description="Add the control wells (DMSO, PBS, ...) as classes named after their drug.",
    )
    coefs: list[float] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        description=(
            "Values of lambda in ``BCE(L(x), x) + lambda * CE(head(F(L(x))), y)``; > 0 "
            "regularised, < 0 adversarial. Every value gets a fresh lens and head."
        ),
    )
    detach_classification: bool = Field(
        default=False,
        description=(
            "Reproduce the reference: the classification term reaches the head but not the lens."
        ),
    )
    init: Literal["extractor", "random"] = Field(
        default="extractor",
        description="Lens initialisation: ``extractor`` (a copy of the autoencoder) or ``random``.",
    )
    head_init: Literal["reconstruction", "plain", "random"] = Field(
        default="reconstruction",
        description=(
            "Lens head start. ``reconstruction`` (default): the plain head's training, on features"
            " of the autoencoder's reconstructions ``F(AE(x))``, which is what the lens outputs "
            "before training; its held-out accuracy is reported as ``top1_reconstruction`` / "
            "``top3_reconstruction``, the reference point of the lens's effect (a reconstruction "
            "loses detail, so a head fitted on ``F(x)`` scores much lower on ``F(AE(x))``). "
            "``plain``: a copy of the plain head of the same seed (the reference code). "
            "``random``: a fresh head."
        ),
    )
    feature_mode: Literal["latent", "pooled"] = Field(
        default="latent",
        description=(
            "``latent``: flattened latent (the reference head, 4 * H/4 * W/4 inputs); ``pooled``: "
            "mean and max of every encoder activation channel (456 inputs)."
        ),
    )
    orientations: Literal[1, 8] = Field(
        default=1,
        description=(
            "``1`` (the reference): features of each image as it is. ``8``: features averaged over"
            " the image's 4 rotations and their mirror images, for every head, the lens and the "
            "attribution maps. Cells lie at random angles, so this removes noise that says nothing"
            " about the drug; it costs 8 times the feature extraction."
        ),
    )
    lens_lr: float = Field(
        default=5e-4,
        gt=0,
        description=(
            "Adam learning rate of the lens (the reference: 5e-4). For a short training started "
            "from well-trained weights, 5e-5 keeps the lens near its start: at 5e-4 the first Adam"
            " steps move every weight by about 5e-4 and both the reconstruction and the "
            "classification loss get worse."
        ),
    )
    head_lr: float = Field(
        default=1e-3, gt=0, description="Adam learning rate of the linear heads."
    )
    head_weight_decay: float = Field(
        default=1e-4, ge=0, description="L2 weight decay of the linear heads."
    )
    epochs: int = Field(default=3, ge=1, description="Epochs of joint lens + head training.")
    head_epochs: int = Field(
        default=60, ge=1, description="Epochs of plain head training on the frozen features."
    )
    batch_size: int = Field(
        default=32, ge=1, description="Images per batch of lens training and feature extraction."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        description="Seeds of the splits and of training; every seed is one held-out evaluation.",
    )
    test_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description=(
            "Fraction of each class's wells held out for evaluation (at least one well per class)."
        ),
    )
    max_train_images: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Train the lens on a random subset of at most this many training images (None: all); "
            "the linear heads on precomputed features are cheap and always use every training "
            "image."
        ),
    )
    device: Device = device_field("Device of lens and head training")
    importance_examples: int = Field(
        default=6, ge=0, description="Examples per mining rule saved as image | map panels."
    )
    importance_exponent: float = Field(
        default=1.5,
        gt=0,
        description="Exponent of the importance map ``|AE(x) - L(x)|^p`` (the reference: 1.5).",
    )
    confidence_margin: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "Rule (c): the lens head's confidence in the right class exceeds the plain head's by "
            "more than this."
        ),
    )
    classical_baseline: bool = Field(
        default=True,
        description=(
            "Also train the same head on classical intensity/texture features of the same inputs "
            "and splits (:mod:`phenolapse.models.classical`), reported as ``top1_classical`` and "
            "``top3_classical``."
        ),
    )
    integrated_gradients: bool = Field(
        default=True, description="Also draw integrated-gradients maps (captum) as a second view."
    )
    ig_steps: int = Field(
        default=16, ge=2, description="Integration steps of integrated gradients."
    )
    progress: bool = Field(
        default=True, description="Show progress bars while training and mining examples."
    )

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct: {v}")
        return v


def make_lens_config(
    data: dict[str, Any] | None = None, *, source: str = "lens configuration"
) -> LensConfig:
    """Build a :class:`LensConfig` from a plain dict (YAML); :class:`ConfigError` on bad keys."""
    return LensConfig.from_mapping(data or {}, source=source)


def load_lens_config(path: str | Path) -> LensConfig:
    """Read a :class:`LensConfig` from a YAML file (same as :meth:`LensConfig.from_yaml`)."""
    return LensConfig.from_yaml(path)
