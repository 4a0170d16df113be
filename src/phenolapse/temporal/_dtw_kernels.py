"""Compiled DTW kernels (numba) behind :mod:`phenolapse.temporal.dtw`.

All kernels work on float64 arrays and return *squared* DTW costs (the sum of squared differences
along the best warping path); callers take the square root. A ``window`` below zero means an
unconstrained alignment, otherwise it is a Sakoe-Chiba radius in time steps, widened by the length
difference for series of unequal length (tslearn's convention). Compiled code is cached on disk
(``cache=True``) so later processes skip compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_INF = np.inf


@njit(cache=True, nogil=True, inline="always")
def _band(i: int, n: int, m: int, window: int) -> tuple[int, int]:
    """First and last column (0-based, inclusive) of row ``i`` inside the band."""
    if window < 0:
        return 0, m - 1
    lo = i - window - max(0, n - m)
    hi = i + window + max(0, m - n)
    return max(lo, 0), min(hi, m - 1)


@njit(cache=True, nogil=True)
def dtw_sq(a: np.ndarray, b: np.ndarray, window: int, cutoff: float) -> float:
    """Squared DTW cost of ``a`` and ``b`` in O(len(b)) memory.

    Stops early and returns ``inf`` once every cell of a row exceeds ``cutoff`` (the cost can only
    grow along a path), which prunes candidates that cannot beat the best one found so far.
    """
    n = a.shape[0]
    m = b.shape[0]
    prev = np.empty(m + 1)
    cur = np.empty(m + 1)
    prev[:] = _INF
    cur[:] = _INF
    prev[0] = 0.0
    for i in range(n):
        lo, hi = _band(i, n, m, window)
        cur[lo] = _INF  # column lo-1 in the padded (1-based) layout
        ai = a[i]
        row_min = _INF
        for j in range(lo, hi + 1):
            d = ai - b[j]
            best = prev[j]
            if prev[j + 1] < best:
                best = prev[j + 1]
            if cur[j] < best:
                best = cur[j]
            v = d * d + best
            cur[j + 1] = v
            if v < row_min:
                row_min = v
        if hi + 2 <= m:
            cur[hi + 2] = _INF
        if row_min > cutoff:
            return _INF
        prev, cur = cur, prev
        if i == 0:
            cur[0] = _INF
    return prev[m]


@njit(cache=True, parallel=True)
def cdist_sq(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Squared DTW costs between every row of ``x`` (n, T) and of ``y`` (m, T'), shape (n, m)."""
    n = x.shape[0]
    m = y.shape[0]
    out = np.empty((n, m))
    for i in prange(n):
        for j in range(m):
            out[i, j] = dtw_sq(x[i], y[j], window, _INF)
    return out


@njit(cache=True, parallel=True)
def pdist_sq(x: np.ndarray, window: int) -> np.ndarray:
    """Symmetric matrix of squared DTW costs between the rows of ``x``, zero diagonal.

    Rows ``r`` and ``n - 1 - r`` are computed by the same task so every task does the same work.
    """
    n = x.shape[0]
    out = np.zeros((n, n))
    for r in prange((n + 1) // 2):
        for i in (r, n - 1 - r):
            if i == r or i != n - 1 - r or r != n - 1 - r:
                if i == n - 1 - r and i == r and r != (n - 1) // 2:
                    continue
            for j in range(i + 1, n):
                v = dtw_sq(x[i], x[j], window, _INF)
                out[i, j] = v
                out[j, i] = v
    return out


@njit(cache=True, parallel=True)
def assign_sq(x: np.ndarray, centroids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row of ``x`` and its squared DTW cost (first centroid on ties)."""
    n = x.shape[0]
    k = centroids.shape[0]
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n)
    for i in prange(n):
        b = _INF
        lab = 0
        for c in range(k):
            v = dtw_sq(x[i], centroids[c], window, b)
            if v < b:
                b = v
                lab = c
        labels[i] = lab
        best[i] = b
    return labels, best


@njit(cache=True, nogil=True)
def _path_sums(
    a: np.ndarray, b: np.ndarray, window: int, acc: np.ndarray, sums: np.ndarray, counts: np.ndarray
) -> float:
    """Align ``a`` to ``b``; add each aligned value of ``a`` to ``sums`` at its ``b`` position.

    ``acc`` is an (n + 1, m + 1) work matrix. Returns the squared DTW cost. The backtracking
    prefers the diagonal, then a step in ``a``, then a step in ``b`` (tslearn's order).
    """
    n = a.shape[0]
    m = b.shape[0]
    acc[:, :] = _INF
    acc[0, 0] = 0.0
    for i in range(n):
        lo, hi = _band(i, n, m, window)
        ai = a[i]
        for j in range(lo, hi + 1):
            d = ai - b[j]
            best = acc[i, j]
            if acc[i, j + 1] < best:
                best = acc[i, j + 1]
            if acc[i + 1, j] < best:
                best = acc[i + 1, j]
            acc[i + 1, j + 1] = d * d + best
    i = n
    j = m
    while i > 0 and j > 0:
        sums[j - 1] += a[i - 1]
        counts[j - 1] += 1.0
        diag = acc[i - 1, j - 1]
        up = acc[i - 1, j]
        left = acc[i, j - 1]
        if diag <= up and diag <= left:
            i -= 1
            j -= 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    return acc[n, m]


@njit(cache=True, parallel=True)
def dba_step(
    x: np.ndarray, centroids: np.ndarray, labels: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """One DTW barycentre averaging (DBA) update of every centroid.

    Each series is aligned to its own centroid; every centroid point becomes the mean of the series
    values aligned to it. Returns the new centroids and the squared cost of each series before the
    update. Per-series partial sums keep the result independent of the thread count.
    """
    n, t = x.shape
    k, tc = centroids.shape
    sums = np.zeros((n, tc))
    counts = np.zeros((n, tc))
    cost = np.empty(n)
    for s in prange(n):
        acc = np.empty((t + 1, tc + 1))
        cost[s] = _path_sums(x[s], centroids[labels[s]], window, acc, sums[s], counts[s])
    total = np.zeros((k, tc))
    total_counts = np.zeros((k, tc))
    for s in range(n):
        c = labels[s]
        for j in range(tc):
            total[c, j] += sums[s, j]
            total_counts[c, j] += counts[s, j]
    out = centroids.copy()
    for c in range(k):
        for j in range(tc):
            if total_counts[c, j] > 0:
                out[c, j] = total[c, j] / total_counts[c, j]
    return out, cost


@njit(cache=True, parallel=True)
def silhouette_precomputed(dist: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Silhouette of every sample from a full distance matrix (scikit-learn's definition).

    Samples alone in their cluster score 0.
    """
    n = dist.shape[0]
    sizes = np.zeros(k)
    for i in range(n):
        sizes[labels[i]] += 1.0
    out = np.zeros(n)
    for i in prange(n):
        per = np.zeros(k)
        for j in range(n):
            per[labels[j]] += dist[i, j]
        own = labels[i]
        if sizes[own] <= 1.0:
            out[i] = 0.0
            continue
        a = per[own] / (sizes[own] - 1.0)
        b = _INF
        for c in range(k):
            if c != own and sizes[c] > 0:
                v = per[c] / sizes[c]
                if v < b:
                    b = v
        if b == _INF:
            out[i] = 0.0
        else:
            denom = max(a, b)
            out[i] = (b - a) / denom if denom > 0 else 0.0
    return out
