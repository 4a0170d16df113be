"""Configuration of the lens stage, shared by the Python API, YAML files and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.errors import ConfigError
from phenolapse.io_utils import read_yaml_mapping


class LensConfig(BaseModel):
    """Everything that decides a lens run: classes, splits, training, evaluation, outputs.

    Attributes
    ----------
    preprocess
        How frames become model input (crop, resize, channels, intensity scaling). Match the
        pixel scale the weights were trained at: the published weights saw 256-px crops at
        128 px, so 64-px inputs should be 128-px tiles (``crop_size=128, mode="tile"``, one
        image per tile), not whole 256-px frames, whose cells shrink below the detail the
        encoder resolves.
    concentration
        ``top``: each drug's highest concentration (the reference); ``all``: every concentration.
    last_n_timepoints
        Keep each plate's last N time points (the reference: 30); None keeps all.
    include_controls
        Add the control wells (DMSO, PBS, ...) as classes named after their drug.
    coefs
        Values of lambda in ``BCE(L(x), x) + lambda * CE(head(F(L(x))), y)``; > 0 regularised,
        < 0 adversarial. Every value gets a fresh lens and head.
    detach_classification
        Reproduce the reference: the classification term reaches the head but not the lens.
    init
        Lens initialisation: ``extractor`` (a copy of the autoencoder) or ``random``.
    head_init
        Lens head start. ``reconstruction`` (default): the plain head's training, on features of
        the autoencoder's reconstructions ``F(AE(x))``, which is what the lens outputs before
        training; its held-out accuracy is reported as ``top1_reconstruction`` /
        ``top3_reconstruction``, the reference point of the lens's effect (a reconstruction loses
        detail, so a head fitted on ``F(x)`` scores much lower on ``F(AE(x))``). ``plain``: a copy
        of the plain head of the same seed (the reference code). ``random``: a fresh head.
    feature_mode
        ``latent``: flattened latent (the reference head, 4 * H/4 * W/4 inputs); ``pooled``: mean
        and max of every encoder activation channel (456 inputs).
    orientations
        ``1`` (the reference): features of each image as it is. ``8``: features averaged over the
        image's 4 rotations and their mirror images, for every head, the lens and the attribution
        maps. Cells lie at random angles, so this removes noise that says nothing about the drug;
        it costs 8 times the feature extraction.
    test_fraction
        Fraction of each class's wells held out for evaluation (at least one well per class).
    classical_baseline
        Also train the same head on classical intensity/texture features of the same inputs and
        splits (:mod:`phenolapse.models.classical`), reported as ``top1_classical`` and
        ``top3_classical``.
    lens_lr
        Adam learning rate of the lens (the reference: 5e-4). For a short training started from
        well-trained weights, 5e-5 keeps the lens near its start: at 5e-4 the first Adam steps
        move every weight by about 5e-4 and both the reconstruction and the classification loss
        get worse.
    head_lr
        Adam learning rate of the linear heads.
    head_weight_decay
        L2 weight decay of the linear heads.
    epochs
        Epochs of joint lens + head training.
    head_epochs
        Epochs of plain head training on the frozen features.
    batch_size
        Images per batch.
    seeds
        Seeds of the splits and of training; every seed is one held-out evaluation.
    max_train_images
        Train the lens on a random subset of at most this many training images (None: all); the
        linear heads on precomputed features are cheap and always use every training image.
    device
        torch device (``cpu``, ``cuda``, ...).
    importance_examples
        Examples per mining rule saved as image | map panels.
    importance_exponent
        Exponent of the importance map ``|AE(x) - L(x)|^p`` (the reference: 1.5).
    confidence_margin
        Rule (c): the lens head's confidence in the right class exceeds the plain head's by more
        than this.
    integrated_gradients
        Also draw integrated-gradients maps (captum) as a second view.
    ig_steps
        Integration steps of integrated gradients.
    progress
        Show progress bars.
    """

    model_config = ConfigDict(extra="forbid")

    preprocess: PreprocessConfig = Field(
        default_factory=lambda: PreprocessConfig.model_validate({})
    )
    concentration: Literal["top", "all"] = "top"
    last_n_timepoints: int | None = Field(default=30, ge=1)
    include_controls: bool = True
    coefs: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    detach_classification: bool = False
    init: Literal["extractor", "random"] = "extractor"
    head_init: Literal["reconstruction", "plain", "random"] = "reconstruction"
    feature_mode: Literal["latent", "pooled"] = "latent"
    orientations: Literal[1, 8] = 1
    lens_lr: float = Field(default=5e-4, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    head_weight_decay: float = Field(default=1e-4, ge=0)
    epochs: int = Field(default=3, ge=1)
    head_epochs: int = Field(default=60, ge=1)
    batch_size: int = Field(default=32, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)
    max_train_images: int | None = Field(default=None, ge=1)
    device: str = "cpu"
    importance_examples: int = Field(default=6, ge=0)
    importance_exponent: float = Field(default=1.5, gt=0)
    confidence_margin: float = Field(default=0.5, ge=0, le=1)
    classical_baseline: bool = True
    integrated_gradients: bool = True
    ig_steps: int = Field(default=16, ge=2)
    progress: bool = True

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
    try:
        return LensConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid lens configuration:\n{exc}") from exc


def load_lens_config(path: str | Path) -> LensConfig:
    """Read a :class:`LensConfig` from a YAML file."""
    path = Path(path)
    data = read_yaml_mapping(path, what="lens configuration")
    return make_lens_config(data, source=str(path))
