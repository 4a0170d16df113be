"""The feature-extractor interface shared by every backbone.

An :class:`Extractor` is a ``torch.nn.Module`` that maps a batch of images ``(B, C, H, W)`` with
values in [0, 1] to feature vectors ``(B, n_features)``. It does its own input normalisation and
channel replication, so the embedding pipeline feeds every backbone the same tensors. Its
attributes describe it to the pipeline and name the feature columns of the output tables:

- ``name``: short identifier stored with the features (``"convae"``, ``"resnet50"``, ...);
- ``in_channels``: channels the pipeline should deliver (images with one channel are replicated
  by the extractor itself when it needs more);
- ``input_size``: side of the square input in pixels;
- ``n_features``: length of the feature vector;
- ``feature_prefix``: prefix of the feature columns (``convae_0000``, ...).

To add a backbone, subclass :class:`Extractor`, set these attributes in ``__init__`` and implement
``forward``; keep the module in eval mode and free of downloads (weights from local files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from phenolapse.errors import ConfigError
from phenolapse.models.convae import (
    LATENT_CHANNELS,
    ConvAE,
    ConvAEFeatures,
    load_convae,
    pooled_encoder_features,
    pooled_feature_count,
    read_checkpoint,
    stats_encoder_features,
    stats_feature_count,
)
from phenolapse.models.resnet import SmallResNet, is_resnet_checkpoint, resnet_from_checkpoint


class Extractor(nn.Module):
    """Base class of feature extractors: images in [0, 1] -> ``(B, n_features)``."""

    name: str = "extractor"
    in_channels: int = 1
    input_size: int = 128
    n_features: int = 0
    feature_prefix: str = "feature"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature vectors ``(B, n_features)`` of images ``x`` ``(B, C, H, W)`` in [0, 1]."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Attributes stored with the features, used to refuse mixing two extractors."""
        return {
            "name": self.name,
            "in_channels": int(self.in_channels),
            "input_size": int(self.input_size),
            "n_features": int(self.n_features),
            "feature_prefix": self.feature_prefix,
        }

    def match_channels(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate a single-channel batch to ``in_channels``; other mismatches are an error."""
        c = x.shape[1]
        if c == self.in_channels:
            return x
        if c == 1:
            return x.expand(-1, self.in_channels, -1, -1)
        raise ConfigError(
            f"{self.name} expects {self.in_channels}-channel images, got {c} channels; "
            f"select channels with the preprocessing option 'channels'"
        )


class ConvAEExtractor(Extractor):
    """The ConvAE encoder as an extractor.

    Parameters
    ----------
    model
        A :class:`~phenolapse.models.convae.ConvAE`; only its encoder is kept.
    input_size
        Side of the input images (the reference: 128 -> 4,096 features).
    name
        Identifier stored with the features and used as the feature-column prefix.
    features
        ``latent``: the flattened latent ``4 x H/4 x W/4`` (the reference); ``pooled``: mean and
        max over space of every encoder activation (456 numbers, independent of cell positions;
        :meth:`~phenolapse.models.convae.ConvAE.pooled_features`); ``stats``: position-free
        statistics of the image and of the encoder's last ReLU (40 numbers;
        :func:`~phenolapse.models.convae.stats_encoder_features`).
    """

    def __init__(
        self,
        model: ConvAE,
        *,
        input_size: int = 128,
        name: str = "convae",
        features: ConvAEFeatures = "latent",
    ) -> None:
        super().__init__()
        if input_size % 4:
            raise ConfigError(f"ConvAE input size must be divisible by 4, got {input_size}")
        if features not in ("latent", "pooled", "stats"):
            raise ConfigError(
                f"ConvAE features must be 'latent', 'pooled' or 'stats', got {features!r}"
            )
        self.encoder = model.encoder
        self.name = name
        self.feature_prefix = name
        self.in_channels = int(model.in_channels)
        self.input_size = int(input_size)
        self.features = features
        if features == "pooled":
            self.n_features = pooled_feature_count(model.encoder)
        elif features == "stats":
            self.n_features = stats_feature_count(model.encoder, self.in_channels)
        else:
            self.n_features = LATENT_CHANNELS * (input_size // 4) ** 2
        self.eval()

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        input_size: int = 128,
        name: str = "convae",
        features: ConvAEFeatures = "latent",
    ) -> ConvAEExtractor:
        """Load ConvAE weights (published state_dict or training checkpoint) as an extractor."""
        model = load_convae(path, map_location="cpu")
        return cls(model, input_size=input_size, name=name, features=features)

    def describe(self) -> dict[str, Any]:
        """As :meth:`Extractor.describe`, plus which ConvAE features are taken."""
        return {**super().describe(), "convae_features": self.features}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images ``x`` in [0, 1] (the ConvAE needs no normalisation)."""
        x = self.match_channels(x)
        if self.features == "pooled":
            return pooled_encoder_features(self.encoder, x)
        if self.features == "stats":
            return stats_encoder_features(self.encoder, x)
        z: torch.Tensor = self.encoder(x)
        return torch.flatten(z, start_dim=1)


class ResNetExtractor(Extractor):
    """A self-supervised :class:`~phenolapse.models.resnet.SmallResNet` as an extractor.

    Features: the mean over space of every stage's output (position-free; 480 numbers with the
    default widths). Any input side divisible by 16 works; ``input_size`` is the side the
    pipeline should deliver (the training image size by default).
    """

    def __init__(self, model: SmallResNet, *, input_size: int = 64, name: str = "resnet") -> None:
        super().__init__()
        if input_size % 16:
            raise ConfigError(f"ResNet input size must be divisible by 16, got {input_size}")
        self.model = model
        self.name = name
        self.feature_prefix = name
        self.in_channels = int(model.in_channels)
        self.input_size = int(input_size)
        self.n_features = int(model.n_features)
        self.eval()

    def describe(self) -> dict[str, Any]:
        """As :meth:`Extractor.describe`, plus the encoder's stage widths."""
        return {**super().describe(), "encoder": "resnet", "widths": list(self.model.widths)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-stage spatial means of images ``x`` in [0, 1]."""
        out: torch.Tensor = self.model(self.match_channels(x))
        return out


def load_extractor(
    path: str | Path,
    *,
    input_size: int | None = None,
    name: str | None = None,
    features: ConvAEFeatures = "stats",
) -> Extractor:
    """The extractor a weights file holds: ConvAE (published or trained) or trained ResNet.

    Parameters
    ----------
    path
        File written by ``phenolapse train`` (any objective or encoder) or the published ConvAE
        weights; read with ``weights_only=True``.
    input_size
        Input side; default 128 for the ConvAE, the training image size for the ResNet.
    name
        Identifier and feature-column prefix; default ``convae`` or ``resnet``.
    features
        Which ConvAE features (``latent``, ``pooled``, ``stats``); ignored for the ResNet.
    """
    obj = read_checkpoint(path, map_location="cpu")
    if is_resnet_checkpoint(obj):
        size = input_size or int(obj.get("image_size") or 64)
        return ResNetExtractor(
            resnet_from_checkpoint(obj, path), input_size=size, name=name or "resnet"
        )
    return ConvAEExtractor(
        load_convae(path, map_location="cpu"),
        input_size=input_size or 128,
        name=name or "convae",
        features=features,
    )
