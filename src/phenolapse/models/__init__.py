"""Neural feature extractors: the ConvAE and other backbones.

- :class:`ConvAE`, :func:`load_convae`, :func:`save_convae`, :func:`read_checkpoint`: the
  convolutional autoencoder and its weight files;
- :class:`Extractor`, :func:`load_extractor`: any weights file -> an image feature extractor;
- :class:`SmallResNet`, :class:`ResNetExtractor`: the small ResNet two-view objectives train;
- :func:`load_pretrained`: published ResNet-50 / ViT networks; :func:`random_convae`,
  :func:`random_resnet`: untrained baselines; :func:`classical_features`: intensity and texture
  features without a network.

Names are imported on first use, so ``import phenolapse.models`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phenolapse._lazy import lazy_exports

if TYPE_CHECKING:
    from phenolapse.models.backbones import load_pretrained
    from phenolapse.models.base import Extractor, ResNetExtractor, load_extractor
    from phenolapse.models.classical import classical_features
    from phenolapse.models.convae import ConvAE, load_convae, read_checkpoint, save_convae
    from phenolapse.models.random_init import random_convae, random_resnet
    from phenolapse.models.resnet import SmallResNet

_EXPORTS = {
    "ConvAE": "phenolapse.models.convae",
    "load_convae": "phenolapse.models.convae",
    "save_convae": "phenolapse.models.convae",
    "read_checkpoint": "phenolapse.models.convae",
    "Extractor": "phenolapse.models.base",
    "load_extractor": "phenolapse.models.base",
    "load_pretrained": "phenolapse.models.backbones",
    "classical_features": "phenolapse.models.classical",
    "random_convae": "phenolapse.models.random_init",
    "random_resnet": "phenolapse.models.random_init",
    "ResNetExtractor": "phenolapse.models.base",
    "SmallResNet": "phenolapse.models.resnet",
}

__all__ = [
    "ConvAE",
    "Extractor",
    "ResNetExtractor",
    "SmallResNet",
    "classical_features",
    "load_convae",
    "load_extractor",
    "load_pretrained",
    "random_convae",
    "random_resnet",
    "read_checkpoint",
    "save_convae",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
