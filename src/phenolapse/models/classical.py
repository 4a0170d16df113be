"""Classical per-image intensity and texture features: the simple baseline for learned extractors.

Per channel: intensity moments and percentiles, local variance, gradient and Laplacian energy, and
Haralick-style grey-level co-occurrence (GLCM) texture at two distances. Everything is computed on
the image's fixed [0, 1] scale (no per-image normalisation, which would erase real differences in
brightness), in plain NumPy/SciPy and vectorised over a batch.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
_GLCM_DISTANCES = (1, 3)
# 2-D kernels with a singleton batch axis, so filters never mix images of a batch.
_SOBEL_Y = (np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8.0)[None]
_LAPLACE = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None]
_GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "entropy")

CLASSICAL_FEATURE_NAMES: list[str] = [
    "mean",
    "std",
    "skewness",
    "kurtosis",
    "min",
    "max",
    *[f"p{p:02d}" for p in _PERCENTILES],
    "localvar3_mean",
    "localvar3_std",
    "localvar7_mean",
    "localvar7_std",
    "gradient_energy",
    "gradient_mean",
    "gradient_std",
    "laplacian_abs_mean",
    "laplacian_energy",
    *[f"glcm_d{d}_{prop}" for d in _GLCM_DISTANCES for prop in _GLCM_PROPS],
]
"""Names of the features computed for each channel, in output order."""


def classical_feature_names(n_channels: int = 1) -> list[str]:
    """Full column names for ``n_channels`` channels (``ch0_mean`` ... when more than one)."""
    if n_channels == 1:
        return list(CLASSICAL_FEATURE_NAMES)
    return [f"ch{c}_{name}" for c in range(n_channels) for name in CLASSICAL_FEATURE_NAMES]


def _local_variance(x: np.ndarray, size: int) -> np.ndarray:
    """Variance in a ``size`` x ``size`` window around each pixel, per image of ``(N, H, W)``."""
    window = (1, size, size)
    m = ndimage.uniform_filter(x, size=window, mode="reflect")
    m2 = ndimage.uniform_filter(x * x, size=window, mode="reflect")
    return np.maximum(m2 - m * m, 0.0)


def _glcm_features(q: np.ndarray, levels: int, distance: int) -> np.ndarray:
    """Symmetric, normalised GLCM averaged over 0, 45, 90 and 135 degrees; 6 properties each."""
    n = q.shape[0]
    d = distance
    pairs = [
        (q[:, :, :-d], q[:, :, d:]),  # 0 degrees
        (q[:, d:, :-d], q[:, :-d, d:]),  # 45 degrees
        (q[:, :-d, :], q[:, d:, :]),  # 90 degrees
        (q[:, :-d, :-d], q[:, d:, d:]),  # 135 degrees
    ]
    offset = (np.arange(n, dtype=np.int64) * levels * levels)[:, None, None]
    glcm = np.zeros((n, levels, levels), dtype=np.float64)
    for a, b in pairs:
        idx = offset + a.astype(np.int64) * levels + b.astype(np.int64)
        counts = np.bincount(idx.ravel(), minlength=n * levels * levels).reshape(n, levels, levels)
        counts = counts + counts.transpose(0, 2, 1)
        glcm += counts / counts.sum(axis=(1, 2), keepdims=True)
    p = glcm / len(pairs)
    i, j = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    diff = (i - j).astype(np.float64)
    contrast = (p * diff**2).sum(axis=(1, 2))
    dissimilarity = (p * np.abs(diff)).sum(axis=(1, 2))
    homogeneity = (p / (1.0 + diff**2)).sum(axis=(1, 2))
    energy = np.sqrt((p**2).sum(axis=(1, 2)))
    mu_i = (p * i).sum(axis=(1, 2))
    mu_j = (p * j).sum(axis=(1, 2))
    sd_i = np.sqrt((p * (i - mu_i[:, None, None]) ** 2).sum(axis=(1, 2)))
    sd_j = np.sqrt((p * (j - mu_j[:, None, None]) ** 2).sum(axis=(1, 2)))
    cov = (p * (i - mu_i[:, None, None]) * (j - mu_j[:, None, None])).sum(axis=(1, 2))
    denom = sd_i * sd_j
    correlation = np.divide(cov, denom, out=np.ones_like(cov), where=denom > 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=(1, 2))
    return np.stack([contrast, dissimilarity, homogeneity, energy, correlation, entropy], axis=1)


def _channel_features(x: np.ndarray, levels: int) -> np.ndarray:
    """Features of a batch of single-channel images ``(N, H, W)`` in float64."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    mean = flat.mean(axis=1)
    centred = flat - mean[:, None]
    var = (centred**2).mean(axis=1)
    std = np.sqrt(var)
    safe = np.where(std > 1e-12, std, 1.0)
    skew = np.where(std > 1e-12, (centred**3).mean(axis=1) / safe**3, 0.0)
    kurt = np.where(std > 1e-12, (centred**4).mean(axis=1) / safe**4 - 3.0, 0.0)
    pct = np.percentile(flat, _PERCENTILES, axis=1).T
    lv3 = _local_variance(x, 3).reshape(n, -1)
    lv7 = _local_variance(x, 7).reshape(n, -1)
    gy = ndimage.correlate(x, _SOBEL_Y, mode="reflect")
    gx = ndimage.correlate(x, _SOBEL_Y.transpose(0, 2, 1), mode="reflect")
    g2 = (gx**2 + gy**2).reshape(n, -1)
    gmag = np.sqrt(g2)
    lap = ndimage.correlate(x, _LAPLACE, mode="reflect").reshape(n, -1)
    q = np.clip(np.floor(x * levels), 0, levels - 1).astype(np.int64)
    glcm = [_glcm_features(q, levels, d) for d in _GLCM_DISTANCES]
    cols = [
        mean,
        std,
        skew,
        kurt,
        flat.min(axis=1),
        flat.max(axis=1),
        pct,
        lv3.mean(axis=1),
        lv3.std(axis=1),
        lv7.mean(axis=1),
        lv7.std(axis=1),
        g2.mean(axis=1),
        gmag.mean(axis=1),
        gmag.std(axis=1),
        np.abs(lap).mean(axis=1),
        (lap**2).mean(axis=1),
        *glcm,
    ]
    return np.column_stack(cols)


def classical_features_batch(imgs: np.ndarray, *, levels: int = 8) -> np.ndarray:
    """Classical features of a batch of images.

    Parameters
    ----------
    imgs
        ``(N, H, W)`` grayscale or ``(N, H, W, C)`` channels-last images, float in [0, 1].
    levels
        Grey levels of the co-occurrence matrices (fixed bins of [0, 1]).

    Returns
    -------
    numpy.ndarray
        ``(N, C * len(CLASSICAL_FEATURE_NAMES))`` float32, channel-major (see
        :func:`classical_feature_names`).
    """
    arr = np.asarray(imgs)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"expected (N, H, W) or (N, H, W, C) images, got shape {arr.shape}")
    if arr.shape[1] < 8 or arr.shape[2] < 8:
        raise ValueError(
            f"images must be at least 8x8 px for texture features, got {arr.shape[1:3]}"
        )
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if not np.isfinite(arr).all():
        raise ValueError("images contain NaN or infinite values")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError("images must be scaled to [0, 1] before computing features")
    x = arr.astype(np.float64)  # a new array: the caller's is never modified
    per_channel = [_channel_features(x[..., c], levels) for c in range(x.shape[3])]
    return np.concatenate(per_channel, axis=1).astype(np.float32)


def classical_features(img: np.ndarray, *, levels: int = 8) -> np.ndarray:
    """Classical features of one image ``(H, W)`` or ``(H, W, C)`` in [0, 1]; see the batch form."""
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    return classical_features_batch(arr[None], levels=levels)[0]
