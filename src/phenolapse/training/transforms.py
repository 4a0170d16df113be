"""Augmentations and the multi-crop transform, in plain torch.

Every random choice draws from an explicit ``torch.Generator`` so that a view depends only on the
seed it was given: training is reproducible across worker counts and after ``--resume``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def random_resized_crop_box(
    height: int,
    width: int,
    *,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """Random box ``(top, left, h, w)`` covering a fraction ``scale`` of the area.

    Aspect ratio is log-uniform in ``ratio``; after 10 failed draws the centre crop closest to the
    ratio range is used (so ``scale=(1, 1)`` gives the whole frame).
    """
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio}")
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_lo, log_hi, generator))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of ``(C, H, W)`` or ``(B, C, H, W)`` to ``size`` x ``size``."""
    batched = img.ndim == 4
    x = img if batched else img[None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    else:
        x = x.clone()
    return x if batched else x[0]


def resized_crop(img: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Cut ``box = (top, left, h, w)`` from ``(C, H, W)`` and resize it to ``size``."""
    top, left, h, w = box
    return resize(img[:, top : top + h, left : left + w], size)


def hflip(img: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (last axis)."""
    return img.flip(-1)


def gaussian_kernel1d(sigma: float, size: int = 3) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd length ``size``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(img: torch.Tensor, sigma: float, *, kernel_size: int = 3) -> torch.Tensor:
    """Separable Gaussian blur of ``(C, H, W)`` with reflect padding."""
    k = gaussian_kernel1d(sigma, kernel_size).to(img.dtype)
    c = img.shape[0]
    pad = kernel_size // 2
    x = F.pad(img[None], (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)
    return x[0]


class MultiCropTransform:
    """Turn one frame ``(C, H, W)`` into ``n_views`` augmented views ``(V, C, size, size)``.

    Each :class:`~phenolapse.training.config.CropSpec`-like entry ``(n, (lo, hi))`` adds ``n``
    random-resized crops of area fraction ``lo``-``hi``; each view is then flipped with probability
    ``flip_p`` and blurred with probability ``blur_p`` (sigma uniform in ``blur_sigma``).

    Parameters
    ----------
    crops
        Sequence of ``(n, (lo, hi))`` pairs.
    size
        Output side in pixels.
    """

    def __init__(
        self,
        crops: Sequence[tuple[int, tuple[float, float]]],
        *,
        size: int,
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        flip_p: float = 0.5,
        blur_p: float = 0.2,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int = 3,
    ) -> None:
        if not crops:
            raise ValueError("crops must hold at least one (n, (lo, hi)) entry")
        scales: list[tuple[float, float]] = []
        for n, scale in crops:
            if n < 1:
                raise ValueError(f"number of crops must be >= 1, got {n}")
            lo, hi = scale
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"crop scale must satisfy 0 < lo <= hi <= 1, got {scale}")
            scales.extend([(float(lo), float(hi))] * int(n))
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio}")
        for name, p in (("flip_p", flip_p), ("blur_p", blur_p)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {blur_sigma}")
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd and positive, got {blur_kernel}")
        self.scales = scales
        self.size = size
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip_p = flip_p
        self.blur_p = blur_p
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.blur_kernel = blur_kernel

    @property
    def n_views(self) -> int:
        """Number of views per frame."""
        return len(self.scales)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Views ``(V, C, size, size)`` of ``img`` ``(C, H, W)``; ``img`` is not modified."""
        if img.ndim != 3:
            raise ValueError(f"expected a (C, H, W) image, got shape {tuple(img.shape)}")
        h, w = img.shape[-2:]
        views = []
        for scale in self.scales:
            box = random_resized_crop_box(h, w, scale=scale, ratio=self.ratio, generator=generator)
            v = resized_crop(img, box, self.size)
            if float(torch.rand((), generator=generator)) < self.flip_p:
                v = hflip(v)
            if float(torch.rand((), generator=generator)) < self.blur_p:
                sigma = _uniform(*self.blur_sigma, generator)
                v = gaussian_blur(v, sigma, kernel_size=self.blur_kernel)
            views.append(v)
        return torch.stack(views)
