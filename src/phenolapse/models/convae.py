"""The convolutional autoencoder of the reference method, weight-compatible with its release.

Layer indices inside ``encoder`` and ``decoder`` match the published ``state_dict`` exactly, so the
published weights load unchanged. ``in_channels`` > 1 generalises the first and last layers for
fluorescence stacks; the 1-channel model stays the default.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from phenolapse.errors import CheckpointError
from phenolapse.io_utils import atomic_path

LATENT_CHANNELS = 4
POOLED_LAYERS = (1, 4, 7, 8)  # encoder outputs pooled: the three ReLUs and the latent
STATS_LAYERS = (7,)  # encoder outputs averaged by the ``stats`` features: the last ReLU
IMAGE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# flattened latent, pooled activations, or position-free statistics
ConvAEFeatures = Literal["latent", "pooled", "stats"]


def pooled_encoder_features(encoder: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Mean and max over space of the outputs of ``encoder``'s layers :data:`POOLED_LAYERS`."""
    parts = []
    h = x
    for i, layer in enumerate(encoder):
        h = layer(h)
        if i in POOLED_LAYERS:
            parts.append(h.mean(dim=(2, 3)))
            parts.append(h.amax(dim=(2, 3)))
    return torch.cat(parts, dim=1)


def _quantiles(flat: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """Quantiles along the last axis by sorting (linear interpolation; any batch size)."""
    n = flat.shape[-1]
    ordered = torch.sort(flat, dim=-1).values
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        w = pos - lo
        out.append(ordered[..., lo] * (1 - w) + ordered[..., hi] * w)
    return torch.stack(out, dim=-1)


def stats_encoder_features(encoder: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Position-free statistics of an image and of the ConvAE encoder's last ReLU layer.

    Per image channel: mean, standard deviation, the 5/25/50/75/95 % quantiles and the mean
    absolute gradient of the intensities (cell mass, contrast, halo and texture); then the mean
    over space of every channel of the encoder's last ReLU (how much of each local pattern the
    encoder finds, wherever the cells lie). ``8 * C + 32`` numbers (40 for one channel).
    """
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    gx = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(2, 3))
    gy = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(2, 3))
    parts = [
        flat.mean(dim=-1),
        flat.std(dim=-1),
        _quantiles(flat, IMAGE_QUANTILES).reshape(b, -1),
        gx + gy,
    ]
    h = x
    for i, layer in enumerate(encoder):
        h = layer(h)
        if i in STATS_LAYERS:
            parts.append(h.mean(dim=(2, 3)))
        if i >= max(STATS_LAYERS):
            break
    return torch.cat(parts, dim=1)


def stats_feature_count(encoder: nn.Sequential, in_channels: int) -> int:
    """Length of :func:`stats_encoder_features`."""

    def channels_at(index: int) -> int:
        convs = [m for m in list(encoder)[: index + 1] if isinstance(m, nn.Conv2d)]
        return int(convs[-1].out_channels)

    means = sum(channels_at(i) for i in STATS_LAYERS)
    return (3 + len(IMAGE_QUANTILES)) * in_channels + means


def pooled_feature_count(encoder: nn.Sequential) -> int:
    """Length of :func:`pooled_encoder_features`: a mean and a max per channel of every conv."""
    return 2 * sum(int(m.out_channels) for m in encoder if isinstance(m, nn.Conv2d))


class ConvAE(nn.Module):
    """Convolutional autoencoder: 3 conv blocks down to a 4-channel latent at 1/4 resolution.

    Parameters
    ----------
    in_channels
        Number of image channels (1 for phase contrast).
    """

    def __init__(self, *, in_channels: int = 1) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 128, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, LATENT_CHANNELS, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(LATENT_CHANNELS, 32, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(128, in_channels, 3, padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent map ``(B, 4, H/4, W/4)`` of images ``x`` in [0, 1]."""
        out: torch.Tensor = self.encoder(x)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened latent ``(B, 4 * H/4 * W/4)``: the image's feature vector."""
        return torch.flatten(self.encode(x), start_dim=1)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Mean and max over space of each encoder ReLU activation and of the latent.

        ``2 * (128 + 64 + 32 + 4) = 456`` numbers per image whatever its size; unlike the
        flattened latent they do not depend on where in the field a cell lies.
        """
        return pooled_encoder_features(self.encoder, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction from a latent map."""
        out: torch.Tensor = self.decoder(z)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``."""
        return self.decode(self.encode(x))


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path}: not a ConvAE weights file (expected a state_dict of tensors, or a "
            f"checkpoint dict with a 'model' state_dict)"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load (not a plain weights file; only tensors and basic types are "
            f"accepted): {str(exc).splitlines()[0]}"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint: {exc}") from exc


def load_convae(
    path: str | Path,
    *,
    in_channels: int | None = None,
    map_location: str | torch.device = "cpu",
) -> ConvAE:
    """Build a :class:`ConvAE` from a weights file (published state_dict or training checkpoint).

    Parameters
    ----------
    path
        ``.torch``/``.pt`` file, loaded with ``weights_only=True``.
    in_channels
        Expected number of channels; inferred from the weights when None.
    map_location
        Device to load the tensors onto (the published weights were saved on CUDA).
    """
    path = Path(path)
    state = _extract_state_dict(read_checkpoint(path, map_location=map_location), path)
    first = state.get("encoder.0.weight")
    if first is None or first.ndim != 4:
        raise CheckpointError(f"{path}: no 'encoder.0.weight' convolution; not a ConvAE state_dict")
    found_channels = int(first.shape[1])
    if in_channels is not None and in_channels != found_channels:
        raise CheckpointError(
            f"{path}: weights are for {found_channels}-channel images, {in_channels} requested"
        )
    model = ConvAE(in_channels=found_channels)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected}")
        if wrong:
            parts.append("shape mismatch " + "; ".join(wrong))
        raise CheckpointError(f"{path}: does not fit the ConvAE: " + ", ".join(parts))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return model


def save_convae(model: ConvAE, path: str | Path, **extra: Any) -> Path:
    """Save ``model`` atomically as ``{"model": state_dict, "in_channels": ..., **extra}``."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"model": state, "in_channels": model.in_channels, **extra}, tmp)
    return path
