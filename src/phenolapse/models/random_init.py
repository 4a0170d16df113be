"""Randomly initialised baselines: what an untrained network's features are worth.

A learned extractor must beat the same architecture with random weights before anyone claims it
learned something about cells; these builders make that control reproducible (fixed seed).
"""

from __future__ import annotations

import torch

from phenolapse.models.base import ConvAEExtractor, ConvAEFeatures
from phenolapse.models.convae import ConvAE
from phenolapse.models.resnet import DEFAULT_WIDTHS, SmallResNet


def random_convae(*, seed: int = 0, in_channels: int = 1) -> ConvAE:
    """A ConvAE with PyTorch's default initialisation drawn from ``seed``, in eval mode."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = ConvAE(in_channels=in_channels)
    finally:
        torch.random.set_rng_state(gen_state)
    model.eval()
    return model


def random_convae_extractor(
    *,
    seed: int = 0,
    in_channels: int = 1,
    input_size: int = 128,
    name: str = "convae_random",
    features: ConvAEFeatures = "latent",
) -> ConvAEExtractor:
    """The encoder of :func:`random_convae` as an extractor (features named ``convae_random_*``)."""
    return ConvAEExtractor(
        random_convae(seed=seed, in_channels=in_channels),
        input_size=input_size,
        name=name,
        features=features,
    )


def random_resnet(
    *, seed: int = 0, in_channels: int = 1, widths: tuple[int, ...] = DEFAULT_WIDTHS
) -> SmallResNet:
    """A :class:`SmallResNet` with the initialisation drawn from ``seed``, in eval mode.

    The same draw as the start of a ``phenolapse train --encoder resnet`` run with that seed, so
    it is the trained encoder's exact random-init twin.
    """
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = SmallResNet(in_channels=in_channels, widths=widths)
    finally:
        torch.random.set_rng_state(gen_state)
    model.eval()
    return model
