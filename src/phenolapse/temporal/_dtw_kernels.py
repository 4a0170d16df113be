"""Compiled DTW kernels (numba) behind :mod:`phenolapse.temporal.dtw`.

All kernels work on float64 arrays and return *squared* DTW costs (the sum of squared differences
along the best warping path); callers take the square root. A ``window`` below zero means an
unconstrained alignment, otherwise it is a Sakoe-Chiba radius in time steps, widened by the length
difference for series of unequal length (tslearn's convention). Compiled code is cached on disk
(``cache=True``) so later processes skip compilation.

Only the one-off distance matrices use numba's parallel loops; the k-means kernels are serial and
release the GIL, so the caller runs independent restarts in threads instead of paying a parallel
runtime's start-up and spin-waiting on each of their many short calls.
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
        left = _INF
        diag = prev[lo]
        for j in range(lo, hi + 1):
            up = prev[j + 1]
            d = ai - b[j]
            v = d * d + min(diag, min(up, left))
            cur[j + 1] = v
            row_min = min(row_min, v)
            left = v
            diag = up
        if hi + 2 <= m:
            cur[hi + 2] = _INF
        if row_min > cutoff:
            return _INF
        prev, cur = cur, prev
    return float(prev[m])


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


@njit(cache=True, nogil=True)
def min_cost_row_sq(a: np.ndarray, y: np.ndarray, window: int, current: np.ndarray) -> np.ndarray:
    """``min(current[j], squared DTW cost of a and y[j])`` for every row of ``y`` (equal lengths).

    Rows whose LB_Keogh bound or partial alignment already exceeds ``current[j]`` are skipped
    (k-means++ seeding only needs the smaller of the two).
    """
    upper, lower = envelopes(a.reshape((1, a.shape[0])), window)
    out = current.copy()
    for j in range(y.shape[0]):
        if _lb_keogh(y[j], upper[0], lower[0], current[j]) > current[j]:
            continue
        v = dtw_sq(a, y[j], window, current[j])
        if v < out[j]:
            out[j] = v
    return out


@njit(cache=True, parallel=True)
def pdist_sq(x: np.ndarray, window: int) -> np.ndarray:
    """Symmetric matrix of squared DTW costs between the rows of ``x``, zero diagonal.

    Rows ``r`` and ``n - 1 - r`` are computed by the same task so every task does the same work.
    """
    n = x.shape[0]
    out = np.zeros((n, n))
    for r in prange((n + 1) // 2):
        _pdist_row(x, r, window, out)
        if n - 1 - r != r:
            _pdist_row(x, n - 1 - r, window, out)
    return out


@njit(cache=True, nogil=True)
def _pdist_row(x: np.ndarray, i: int, window: int, out: np.ndarray) -> None:
    """Fill ``out[i, j]`` and ``out[j, i]`` for every ``j > i``."""
    for j in range(i + 1, x.shape[0]):
        v = dtw_sq(x[i], x[j], window, _INF)
        out[i, j] = v
        out[j, i] = v


@njit(cache=True, nogil=True)
def envelopes(centroids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Running maximum and minimum of every centroid over +-``window`` steps (LB_Keogh bounds)."""
    k, t = centroids.shape
    upper = np.empty((k, t))
    lower = np.empty((k, t))
    w = t if window < 0 else window
    for c in range(k):
        for j in range(t):
            lo = max(0, j - w)
            hi = min(t - 1, j + w)
            u = centroids[c, lo]
            v = centroids[c, lo]
            for q in range(lo + 1, hi + 1):
                y = centroids[c, q]
                if y > u:
                    u = y
                if y < v:
                    v = y
            upper[c, j] = u
            lower[c, j] = v
    return upper, lower


@njit(cache=True, nogil=True, inline="always")
def _lb_keogh(a: np.ndarray, upper: np.ndarray, lower: np.ndarray, cutoff: float) -> float:
    """LB_Keogh lower bound of the squared DTW cost; stops once it exceeds ``cutoff``."""
    total = 0.0
    for j in range(a.shape[0]):
        y = a[j]
        if y > upper[j]:
            d = y - upper[j]
            total += d * d
        elif y < lower[j]:
            d = lower[j] - y
            total += d * d
        if total > cutoff:
            return total
    return total


@njit(cache=True, nogil=True)
def _nearest(
    a: np.ndarray,
    centroids: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    window: int,
    first: int,
    cost: float,
) -> tuple[int, float]:
    """The centroid nearest ``a`` and its squared cost, given centroid ``first`` at ``cost``.

    Centroids whose LB_Keogh bound or partial alignment already exceeds the best cost are
    skipped; ties go to the lowest centroid index, as in an exhaustive search.
    """
    lab = first
    for c in range(centroids.shape[0]):
        if c == first:
            continue
        if _lb_keogh(a, upper[c], lower[c], cost) > cost:
            continue
        v = dtw_sq(a, centroids[c], window, cost)
        if v < cost or (v == cost and c < lab):
            cost = v
            lab = c
    return lab, cost


@njit(cache=True, nogil=True)
def _barycentres(centroids: np.ndarray, total: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``total / counts`` where a centroid point has aligned values, else the old centroid."""
    out = centroids.copy()
    k, tc = centroids.shape
    for c in range(k):
        for j in range(tc):
            if counts[c, j] > 0:
                out[c, j] = total[c, j] / counts[c, j]
    return out


@njit(cache=True, nogil=True)
def assign_sq(
    x: np.ndarray, centroids: np.ndarray, window: int, previous: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row of ``x`` (equal lengths) and its squared DTW cost.

    The centroid of ``previous`` (the last labels; -1 for none) is tried first; the others are
    skipped when their LB_Keogh bound or a partial alignment already exceeds the best cost. Ties
    go to the lowest centroid index, so the result equals an exhaustive search.
    """
    n = x.shape[0]
    k = centroids.shape[0]
    upper, lower = envelopes(centroids, window)
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n)
    for i in range(n):
        first = previous[i] if 0 <= previous[i] < k else 0
        b = dtw_sq(x[i], centroids[first], window, _INF)
        lab, b = _nearest(x[i], centroids, upper, lower, window, first, b)
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
    acc[0, 0] = 0.0
    acc[0, 1:] = _INF
    for i in range(n):
        lo, hi = _band(i, n, m, window)
        acc[i + 1, lo] = _INF  # only band cells and their borders are ever read
        if hi + 2 <= m:
            acc[i + 1, hi + 2] = _INF
        ai = a[i]
        left = _INF
        diag = acc[i, lo]
        for j in range(lo, hi + 1):
            up = acc[i, j + 1]
            d = ai - b[j]
            v = d * d + min(diag, min(up, left))
            acc[i + 1, j + 1] = v
            left = v
            diag = up
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
    return float(acc[n, m])


@njit(cache=True, nogil=True)
def dba_step(
    x: np.ndarray, centroids: np.ndarray, labels: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """One DTW barycentre averaging (DBA) update of every centroid.

    Each series is aligned to its own centroid; every centroid point becomes the mean of the series
    values aligned to it. Returns the new centroids and the squared cost of each series before the
    update.
    """
    n, t = x.shape
    k, tc = centroids.shape
    sums = np.zeros((n, tc))
    counts = np.zeros((n, tc))
    cost = np.empty(n)
    acc = np.empty((t + 1, tc + 1))
    for s in range(n):
        cost[s] = _path_sums(x[s], centroids[labels[s]], window, acc, sums[s], counts[s])
    total = np.zeros((k, tc))
    total_counts = np.zeros((k, tc))
    for s in range(n):
        c = labels[s]
        for j in range(tc):
            total[c, j] += sums[s, j]
            total_counts[c, j] += counts[s, j]
    out = _barycentres(centroids, total, total_counts)
    return out, cost


@njit(cache=True, nogil=True)
def assign_dba(
    x: np.ndarray, centroids: np.ndarray, window: int, previous: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`assign_sq` fused with the first :func:`dba_step` on the new labels.

    The alignment of each series to its previous centroid serves both the assignment and the
    barycentre update, so one dynamic programme per series is saved. Returns the labels, their
    squared costs and the updated centroids, equal to ``dba_step(x, centroids, labels, window)``.
    """
    n, t = x.shape
    k, tc = centroids.shape
    upper, lower = envelopes(centroids, window)
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n)
    acc = np.empty((t + 1, tc + 1))
    row_sums = np.zeros(tc)
    row_counts = np.zeros(tc)
    total = np.zeros((k, tc))
    total_counts = np.zeros((k, tc))
    for i in range(n):
        first = previous[i] if 0 <= previous[i] < k else 0
        row_sums[:] = 0.0
        row_counts[:] = 0.0
        b = _path_sums(x[i], centroids[first], window, acc, row_sums, row_counts)
        lab, b = _nearest(x[i], centroids, upper, lower, window, first, b)
        if lab != first:
            row_sums[:] = 0.0
            row_counts[:] = 0.0
            _path_sums(x[i], centroids[lab], window, acc, row_sums, row_counts)
        labels[i] = lab
        best[i] = b
        for j in range(tc):
            total[lab, j] += row_sums[j]
            total_counts[lab, j] += row_counts[j]
    out = _barycentres(centroids, total, total_counts)
    return labels, best, out


@njit(cache=True, nogil=True)
def silhouette_precomputed(dist: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Silhouette of every sample from a full distance matrix (scikit-learn's definition).

    Samples alone in their cluster score 0.
    """
    n = dist.shape[0]
    sizes = np.zeros(k)
    for i in range(n):
        sizes[labels[i]] += 1.0
    out = np.zeros(n)
    per = np.zeros(k)
    for i in range(n):
        per[:] = 0.0
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
