"""The lens: an autoencoder trained with a classifier so that its output is easier to classify.

``F`` is the frozen encoder of a trained ConvAE, ``head`` a linear layer on ``F``'s features and
``L`` a second autoencoder (the lens). Joint training minimises
``BCE(L(x), x) + coef * CE(head(F(L(x))), y)`` for the lens and ``CE`` for the head, so the head
learns even when ``coef`` is 0, and gradients of the classification term reach the lens unless
``detach=True`` (the reference code's behaviour, kept for comparison).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from phenolapse.models.convae import (
    LATENT_CHANNELS,
    ConvAE,
    ConvAEFeatures,
    pooled_feature_count,
)

FeatureMode = ConvAEFeatures


ORIENTATIONS = (1, 8)
"""Allowed ``orientations``: the image as it is, or the mean over its 8 rotations and flips."""


def _dihedral(x: torch.Tensor) -> torch.Tensor:
    """The 8 rotations/flips of a batch ``(B, C, S, S)`` stacked along the batch: ``(8B, C, S, S)``."""
    views = []
    for k in range(4):
        r = torch.rot90(x, k, (-2, -1))
        views += [r, r.flip(-1)]
    return torch.cat(views)


def _undo_dihedral(z: torch.Tensor) -> torch.Tensor:
    """Map each of the 8 blocks of a ``(8B, C, H, W)`` output back to the original orientation."""
    blocks = z.chunk(8)
    return torch.cat(
        [torch.rot90(b.flip(-1) if i % 2 else b, -(i // 2), (-2, -1)) for i, b in enumerate(blocks)]
    )


def extract_features(
    model: nn.Module, x: torch.Tensor, *, mode: FeatureMode = "latent", orientations: int = 1
) -> torch.Tensor:
    """Features of images ``x`` from ``model``'s encoder (differentiable).

    ``model`` is a ConvAE (its encoder, read as ``mode`` says) or any other encoder module
    mapping images to feature vectors, such as a two-view-trained
    :class:`~phenolapse.models.resnet.SmallResNet` (its own features; ``mode`` is not used).

    ``latent``: the flattened latent (the reference); ``pooled``: mean and max over space of each
    ReLU activation and of the latent (2 * (128 + 64 + 32 + 4) = 456 numbers), which does not
    depend on the image size. ``orientations=8`` averages the features over the image's 4
    rotations and their mirror images (latent maps are turned back before averaging), so the
    features no longer depend on how cells happen to be oriented; images must be square.
    """
    if orientations not in ORIENTATIONS:
        raise ValueError(f"orientations must be 1 or 8, got {orientations!r}")
    if not isinstance(model, ConvAE):  # any encoder mapping images to features (``mode`` unused)
        if orientations == 1:
            out: torch.Tensor = model(x)
            return out
        return model(_dihedral(x)).reshape(8, x.shape[0], -1).mean(0)
    if mode not in ("latent", "pooled"):
        raise ValueError(f"feature mode must be 'latent' or 'pooled', got {mode!r}")
    if orientations == 1:
        return model.features(x) if mode == "latent" else model.pooled_features(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"orientations=8 needs square images, got {tuple(x.shape[-2:])}")
    n = x.shape[0]
    views = _dihedral(x)
    if mode == "pooled":
        return model.pooled_features(views).reshape(8, n, -1).mean(0)
    latent = _undo_dihedral(model.encode(views))
    return latent.reshape(8, n, -1).mean(0)


def n_features(model: nn.Module, image_size: int, *, mode: FeatureMode = "latent") -> int:
    """Length of the feature vector for square images of side ``image_size``."""
    if not isinstance(model, ConvAE):
        known = getattr(model, "n_features", None)
        if isinstance(known, int):
            return known
        with torch.no_grad():
            c = int(getattr(model, "in_channels", 1))
            return int(model(torch.zeros(2, c, image_size, image_size)).shape[1])
    if mode == "pooled":
        return pooled_feature_count(model.encoder)
    return LATENT_CHANNELS * (image_size // 4) ** 2


class LinearHead(nn.Module):
    """``Linear(n_features -> n_classes)`` returning logits; the softmax lives in the loss only.

    Optional fixed ``mean`` and ``std`` (buffers, not trained) standardise the features first, so
    the same learning rate suits features of any scale.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes)
        m = np.zeros(n_features, np.float32) if mean is None else np.asarray(mean, np.float32)
        s = np.ones(n_features, np.float32) if std is None else np.asarray(std, np.float32)
        self.register_buffer("mean", torch.as_tensor(m.copy()))
        # a feature whose spread is tiny against its own level and the others' spreads is
        # constant: dividing by that spread would turn any later change into huge logits
        floor = 1e-2 * (np.abs(m) + float(np.median(s))) + 1e-6
        self.register_buffer("std", torch.as_tensor(np.maximum(s, floor).astype(np.float32)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (no softmax: cross-entropy applies it once)."""
        out: torch.Tensor = self.linear((features - self.mean) / self.std)
        return out


_M = TypeVar("_M", bound=nn.Module)


def freeze(model: _M) -> _M:
    """Put ``model`` in eval mode with every parameter excluded from gradients; returns it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def make_lens(autoencoder: ConvAE, *, init: str = "extractor", seed: int = 0) -> ConvAE:
    """A fresh trainable lens: a copy of ``autoencoder`` or a random ConvAE of the same shape."""
    if init == "extractor":
        lens = copy.deepcopy(autoencoder)
    elif init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lens = ConvAE(in_channels=autoencoder.in_channels)
    else:
        raise ValueError(f"init must be 'extractor' or 'random', got {init!r}")
    for p in lens.parameters():
        p.requires_grad_(True)
    return lens.train()


def lens_losses(
    lens: ConvAE,
    extractor: nn.Module,
    head: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    coef: float,
    detach: bool = False,
    feature_mode: FeatureMode = "latent",
    orientations: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, bce, ce, logits)`` of one batch.

    ``total``'s gradient is ``dBCE + coef * dCE`` for the lens and ``dCE`` for the head. With
    ``detach=True`` the lens sees only ``dBCE`` (the classification term as a plain number).
    """
    recon = lens(x)
    bce = F.binary_cross_entropy(recon, x)
    feats = extract_features(extractor, recon, mode=feature_mode, orientations=orientations)
    logits_detached = head(feats.detach())
    ce_detached = F.cross_entropy(logits_detached, y)
    if detach or coef == 0:
        return bce + ce_detached, bce, ce_detached, logits_detached
    logits = head(feats)
    ce = F.cross_entropy(logits, y)
    # The head's gradient is coef * dCE + (1 - coef) * dCE = dCE; the lens's is coef * dCE.
    total = bce + coef * ce + (1.0 - coef) * ce_detached
    return total, bce, ce, logits


@dataclass
class LensHistory:
    """Per-epoch mean losses of a lens training."""

    bce: list[float] = field(default_factory=list)
    ce: list[float] = field(default_factory=list)


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def train_lens(
    autoencoder: ConvAE,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    *,
    n_classes: int,
    coef: float,
    head: LinearHead | None = None,
    detach: bool = False,
    init: str = "extractor",
    feature_mode: FeatureMode = "latent",
    orientations: int = 1,
    epochs: int = 3,
    lens_lr: float = 5e-4,
    head_lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    encoder: nn.Module | None = None,
) -> tuple[ConvAE, LinearHead, LensHistory]:
    """Train a fresh lens and head jointly; ``F`` is a frozen copy of ``autoencoder``'s encoder.

    Parameters
    ----------
    autoencoder
        Trained ConvAE; never modified (the lens and the extractor are copies).
    images, labels
        Training images ``(n, C, S, S)`` in [0, 1] and class indices.
    head
        Starting head (copied), e.g. the plain head of the same seed; None: random init.
    coef
        lambda of the loss; > 0 regularised, < 0 adversarial, 0 plain reconstruction.
    detach
        Reference behaviour: no classification gradient reaches the lens.
    feature_mode, orientations
        How ``F`` turns the lens output into features (:func:`extract_features`).

    Returns
    -------
    (lens, head, history)
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    extractor = freeze(copy.deepcopy(encoder if encoder is not None else autoencoder)).to(device)
    lens = make_lens(autoencoder, init=init, seed=seed).to(device)
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
    y_all = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if head is None:
        size = int(x_all.shape[-1])
        head = LinearHead(n_features(extractor, size, mode=feature_mode), n_classes)
    else:
        head = copy.deepcopy(head)
    head = head.to(device).train()
    for p in head.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(
        [{"params": lens.parameters(), "lr": lens_lr}, {"params": head.parameters(), "lr": head_lr}]
    )
    history = LensHistory()
    bar = tqdm(
        total=epochs * len(x_all), desc=f"lens coef={coef:g} seed={seed}", disable=not progress
    )
    for _ in range(epochs):
        sums = np.zeros(2)
        for idx in _batches(len(x_all), batch_size, rng):
            t = torch.as_tensor(idx)
            x, y = x_all[t].to(device), y_all[t].to(device)
            total, bce, ce, _ = lens_losses(
                lens,
                extractor,
                head,
                x,
                y,
                coef=coef,
                detach=detach,
                feature_mode=feature_mode,
                orientations=orientations,
            )
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sums += np.array([bce.item(), ce.item()]) * len(idx)
            bar.update(len(idx))
        history.bce.append(float(sums[0] / len(x_all)))
        history.ce.append(float(sums[1] / len(x_all)))
    bar.close()
    return lens.eval(), head.eval(), history


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    epochs: int = 60,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> LinearHead:
    """Train a :class:`LinearHead` with cross-entropy on precomputed features (plain classifier).

    The head standardises features with their training mean and standard deviation.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feats = np.asarray(features, dtype=np.float32)
    x_all = torch.as_tensor(feats)
    y_all = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    head = LinearHead(feats.shape[1], n_classes, mean=feats.mean(axis=0), std=feats.std(axis=0))
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for idx in _batches(len(x_all), batch_size, rng):
            t = torch.as_tensor(idx)
            loss = F.cross_entropy(head(x_all[t]), y_all[t])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return head.eval()


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Apply ``fn`` to ``images`` in batches without gradients; returns a NumPy array."""
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
    out = [fn(x_all[i : i + batch_size].to(device)).cpu() for i in range(0, len(x_all), batch_size)]
    return torch.cat(out).numpy()


def predict_proba(
    extractor: nn.Module,
    head: nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    lens: ConvAE | None = None,
    feature_mode: FeatureMode = "latent",
    orientations: int = 1,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Class probabilities ``softmax(head(F(x)))``, or of ``F(L(x))`` when a lens is given."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        if lens is not None:
            x = lens(x)
        feats = extract_features(extractor, x, mode=feature_mode, orientations=orientations)
        return torch.softmax(head(feats), dim=1)

    return batched(fn, images, batch_size=batch_size, device=device)
