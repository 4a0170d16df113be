"""A small ResNet-style encoder for self-supervised training on phase-contrast frames.

Four stages of one basic residual block each (widths 32/64/128/256 by default, the last three
halving the resolution) after a stride-2 stem. Its features are position-free: the mean over
space of every stage's output, concatenated (480 numbers by default), so they describe how much
of each local pattern a frame holds wherever the cells lie, at four scales. Any input side
divisible by 16 works; training views and whole frames can differ in size.

Saved by :func:`save_encoder` as ``{"encoder": "resnet", "widths": [...], "in_channels": ...,
"model": state_dict}`` and read back (``weights_only=True``) by :func:`load_resnet`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from phenolapse.errors import CheckpointError
from phenolapse.io_utils import atomic_path

DEFAULT_WIDTHS = (32, 64, 128, 256)
ENCODER_KIND = "resnet"


class _Block(nn.Module):
    """Basic residual block: two 3x3 convolutions with batch norm, projection shortcut on change."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class SmallResNet(nn.Module):
    """Stem (3x3, stride 2) and one residual block per width; features: per-stage spatial means.

    Parameters
    ----------
    in_channels
        Image channels.
    widths
        Channels of the four (or any number of) stages; every stage after the first halves the
        resolution.
    """

    def __init__(self, *, in_channels: int = 1, widths: tuple[int, ...] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive, got {widths}")
        self.in_channels = int(in_channels)
        self.widths = tuple(int(w) for w in widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        c_in = widths[0]
        for i, w in enumerate(widths):
            stages.append(_Block(c_in, w, stride=1 if i == 0 else 2))
            c_in = w
        self.stages = nn.ModuleList(stages)

    @property
    def n_features(self) -> int:
        """Length of :meth:`forward`'s output."""
        return sum(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-stage spatial means of images ``x`` ``(B, C, H, W)`` in [0, 1] -> ``(B, sum(widths))``.

        The input is centred on 0.5 (phase contrast sits around mid-grey) before the stem.
        """
        h = self.stem((x - 0.5) * 4.0)
        parts = []
        for stage in self.stages:
            h = stage(h)
            parts.append(h.mean(dim=(2, 3)))
        return torch.cat(parts, dim=1)


def save_encoder(model: SmallResNet, path: str | Path, **extra: Any) -> Path:
    """Save ``model`` atomically with what :func:`load_resnet` needs to rebuild it."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "encoder": ENCODER_KIND,
        "widths": list(model.widths),
        "in_channels": model.in_channels,
        "model": state,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def is_resnet_checkpoint(obj: Any) -> bool:
    """Whether a loaded checkpoint holds a :class:`SmallResNet` written by :func:`save_encoder`."""
    return isinstance(obj, dict) and obj.get("encoder") == ENCODER_KIND


def resnet_from_checkpoint(obj: Any, path: str | Path) -> SmallResNet:
    """Rebuild a :class:`SmallResNet` (eval mode) from a loaded checkpoint of ``path``."""
    if not is_resnet_checkpoint(obj):
        raise CheckpointError(f"{path}: not a ResNet encoder written by phenolapse train")
    try:
        widths = tuple(int(w) for w in obj["widths"])
        model = SmallResNet(in_channels=int(obj["in_channels"]), widths=widths)
        model.load_state_dict(obj["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: does not fit the ResNet encoder: {exc}") from exc
    model.eval()
    return model


def load_resnet(path: str | Path, *, map_location: str | torch.device = "cpu") -> SmallResNet:
    """Read a :class:`SmallResNet` saved by :func:`save_encoder` (``weights_only=True``)."""
    from phenolapse.models.convae import read_checkpoint

    return resnet_from_checkpoint(read_checkpoint(path, map_location=map_location), path)
