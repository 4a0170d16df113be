"""The extractors a comparison can run, named by short specs such as ``resnet50-dino=PATH``.

Spec grammar: ``[LABEL:]KIND[=PATH]``. ``KIND`` is ``convae`` or ``trained`` (weights written by
``phenolapse train`` at ``PATH``, any objective and encoder, or the published ConvAE),
``random-convae`` / ``random-resnet`` (untrained, seeded), ``classical`` (intensity/texture
features), or a
pretrained network of :data:`phenolapse.models.backbones.PRETRAINED` (``resnet50``,
``resnet50-swav``, ``resnet50-dino``, ``vit-s8-dino``, ``vit-b8-dino``, ...), whose ``PATH`` is
its weights file or a folder holding the published file name. ``LABEL`` names the extractor in
the output tables (default: the kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from phenolapse.errors import CheckpointError, ConfigError
from phenolapse.models.backbones import PRETRAINED, load_pretrained
from phenolapse.models.base import ConvAEFeatures, Extractor, ResNetExtractor, load_extractor
from phenolapse.models.convae import read_checkpoint
from phenolapse.models.random_init import random_convae_extractor, random_resnet
from phenolapse.models.resnet import DEFAULT_WIDTHS, is_resnet_checkpoint

SIMPLE_KINDS = ("convae", "trained", "random-convae", "random-resnet", "classical")
"""Extractor kinds that need no pretrained network."""


@dataclass(frozen=True)
class ExtractorSpec:
    """A parsed extractor spec: output label, kind, and weights path (if any)."""

    label: str
    kind: str
    path: Path | None = None


def parse_extractor_spec(text: str) -> ExtractorSpec:
    """Parse ``[LABEL:]KIND[=PATH]``; unknown kinds are a :class:`ConfigError` listing the known."""
    head, _, path = text.partition("=")
    label, _, kind = head.rpartition(":")
    kind = kind.strip().lower()
    label = label.strip() or kind
    known = (*SIMPLE_KINDS, *sorted(PRETRAINED))
    if kind not in known:
        raise ConfigError(f"unknown extractor {kind!r} in {text!r}; known: {', '.join(known)}")
    if kind in ("convae", "trained") and not path:
        raise ConfigError(
            f"extractor {text!r}: a trained extractor needs its weights file ({kind}=PATH)"
        )
    return ExtractorSpec(label=label, kind=kind, path=Path(path) if path else None)


class ClassicalExtractor(Extractor):
    """Classical per-image intensity and texture features behind the extractor interface.

    Wraps :func:`phenolapse.models.classical.classical_features_batch`; the tensor goes to NumPy
    and back, so this extractor runs on the CPU whatever the device of its input.
    """

    def __init__(self, *, in_channels: int = 1, input_size: int = 128, name: str = "classical"
                 ) -> None:
        super().__init__()
        from phenolapse.models.classical import classical_feature_names

        self.name = name
        self.feature_prefix = name
        self.in_channels = int(in_channels)
        self.input_size = int(input_size)
        self.feature_names = classical_feature_names(in_channels)
        self.n_features = len(self.feature_names)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classical features ``(B, n_features)`` of images in [0, 1]."""
        from phenolapse.models.classical import classical_features_batch

        x = self.match_channels(x)
        arr = np.clip(x.detach().float().cpu().numpy(), 0.0, 1.0)
        imgs = arr[:, 0] if arr.shape[1] == 1 else np.moveaxis(arr, 1, -1)
        feats = classical_features_batch(imgs)
        return torch.from_numpy(np.ascontiguousarray(feats)).to(device=x.device)


def build_extractor(
    spec: ExtractorSpec | str,
    *,
    weights_dir: Path | None = None,
    seed: int = 0,
    input_size: int | None = None,
    in_channels: int = 1,
    convae_features: ConvAEFeatures = "latent",
) -> Extractor:
    """Build the extractor a spec names, from local files only.

    Parameters
    ----------
    spec
        Parsed spec or its text.
    weights_dir
        Folder searched for a pretrained network's published file name when the spec gives no
        path.
    seed
        Seed of the random-init ConvAE.
    input_size
        Override of the network input side (default: 128 for the ConvAE and classical features,
        224 for pretrained networks).
    in_channels
        Image channels of the screen (ConvAE kinds and classical features).
    convae_features
        ``latent`` or ``pooled`` features of the ConvAE kinds (trained and random alike).

    Raises
    ------
    CheckpointError
        A weights file is missing (the message names the file expected) or does not fit.
    """
    if isinstance(spec, str):
        spec = parse_extractor_spec(spec)
    ext: Extractor
    if spec.kind in ("convae", "trained"):
        assert spec.path is not None
        if not spec.path.is_file():
            raise CheckpointError(
                f"{spec.label}: weights file {spec.path} not found (give the file written "
                f"by 'phenolapse train' or the published trained_model.torch)"
            )
        ext = load_extractor(
            spec.path, input_size=input_size, name=spec.label, features=convae_features
        )
    elif spec.kind == "random-resnet":
        widths: tuple[int, ...] = DEFAULT_WIDTHS
        twin_seed, size = seed, 64
        if spec.path is not None:  # the exact twin of a trained ResNet: its widths and seed
            widths, twin_seed, size = resnet_twin_settings(spec.path)
        ext = ResNetExtractor(
            random_resnet(seed=twin_seed, in_channels=in_channels, widths=widths),
            input_size=input_size or size,
            name=spec.label,
        )
    elif spec.kind == "random-convae":
        ext = random_convae_extractor(
            seed=seed,
            in_channels=in_channels,
            input_size=input_size or 128,
            name=spec.label,
            features=convae_features,
        )
    elif spec.kind == "classical":
        ext = ClassicalExtractor(
            in_channels=in_channels, input_size=input_size or 128, name=spec.label
        )
    else:
        path = spec.path if spec.path is not None else weights_dir
        ext = load_pretrained(spec.kind, path, input_size=input_size or 224)
    ext.name = spec.label
    ext.feature_prefix = spec.label.replace("-", "_")
    ext.eval()
    return ext


def resnet_twin_settings(path: Path) -> tuple[tuple[int, ...], int, int]:
    """``(widths, seed, image size)`` of the ResNet training run that wrote ``path``."""
    obj = read_checkpoint(path, map_location="cpu")
    if not is_resnet_checkpoint(obj):
        raise CheckpointError(f"{path}: not a ResNet written by phenolapse train; no twin to draw")
    seed = int((obj.get("config") or {}).get("seed", 0))
    return tuple(int(w) for w in obj["widths"]), seed, int(obj.get("image_size") or 64)


def random_twin_spec(weights: Path) -> str:
    """The spec of the random-init twin of a trained weights file (same architecture, seed).

    A file that is absent or unreadable gets the ConvAE twin; building its own extractor then
    reports the problem.
    """
    if not Path(weights).is_file():
        return "random-convae"
    try:
        obj = read_checkpoint(weights, map_location="cpu")
    except CheckpointError:
        return "random-convae"
    return f"random-resnet={Path(weights)}" if is_resnet_checkpoint(obj) else "random-convae"


def available_pretrained(weights_dir: Path | None) -> list[str]:
    """Pretrained extractor kinds whose published weights file lies in ``weights_dir``."""
    if weights_dir is None or not Path(weights_dir).is_dir():
        return []
    return [
        name for name, spec in sorted(PRETRAINED.items())
        if (Path(weights_dir) / spec.expected_file).is_file()
    ]


def offline_extractor_specs(
    *, convae_weights: Path | None = None, weights_dir: Path | None = None
) -> list[str]:
    """Specs of every extractor usable offline: the trained ConvAE (when given), the random-init
    ConvAE, classical features, and each pretrained network whose file is in ``weights_dir``.
    """
    specs = []
    if convae_weights is not None:
        twin = random_twin_spec(Path(convae_weights))
        label = "resnet:trained" if twin.startswith("random-resnet") else "convae"
        specs += [f"{label}={Path(convae_weights)}", twin]
    else:
        specs.append("random-convae")
    specs.append("classical")
    if weights_dir is not None:
        specs += [f"{name}={Path(weights_dir) / PRETRAINED[name].expected_file}"
                  for name in available_pretrained(weights_dir)]
    return specs
