"""Dynamic time warping (DTW) distances, DTW k-means and the choice of k (SPEC 7.5).

The clustering follows tslearn's ``TimeSeriesKMeans(metric="dtw")`` (k-means++ seeding on DTW
distances, DTW barycentre averaging (DBA) centroids, inertia = mean squared DTW distance to the
assigned centroid) with compiled kernels, an optional Sakoe-Chiba window, LB_Keogh pruning and
early abandoning in the assignment, a few DBA iterations per update, several restarts run in
parallel threads, and a stop as soon as the labels no longer change (or the inertia stalls).

Distance convention (as tslearn): ``dtw_distance(a, b)`` is the square root of the sum of squared
differences along the best warping path, so ``window=0`` gives the euclidean distance.

Plain NumPy in and out; this module does not import torch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.errors import ConfigError, FeatureTableError
from phenolapse.temporal.config import DTWClusterConfig

__all__ = [
    "DTWClusterConfig",
    "DTWKMeansResult",
    "KSelection",
    "cluster_series",
    "dtw_distance",
    "dtw_kmeans",
    "dtw_matrix",
    "dtw_silhouette",
    "select_k",
]


@dataclass
class DTWKMeansResult:
    """Outcome of :func:`dtw_kmeans`.

    Attributes
    ----------
    labels
        (n,) cluster index of every series, in ``0 .. k-1``.
    centroids
        (k, T) DBA barycentres.
    inertia
        Mean over series of the squared DTW distance to the assigned centroid (tslearn's
        definition), for the kept restart.
    n_iter
        Assignment rounds of the kept restart.
    """

    labels: np.ndarray
    centroids: np.ndarray
    inertia: float
    n_iter: int


@dataclass
class KSelection:
    """Outcome of :func:`select_k`.

    Attributes
    ----------
    best_k
        The k with the highest silhouette on DTW distances.
    scores
        One row per k: ``k``, ``silhouette``, ``inertia``, ``n_iter``, ``seconds`` (clustering
        time of that k's restarts, summed over threads; the shared distance matrix excluded).
    results
        The clustering of every k.
    matrix_seconds
        Time spent on the DTW distance matrix shared by all silhouettes.
    """

    best_k: int
    scores: pd.DataFrame
    results: dict[int, DTWKMeansResult] = field(default_factory=dict)
    matrix_seconds: float = 0.0


def _kernels() -> Any:
    """The compiled kernels, imported on first use so importing this module stays cheap."""
    from phenolapse.temporal import _dtw_kernels

    return _dtw_kernels


def _window_arg(window: int | None) -> int:
    """Validate a Sakoe-Chiba radius; the kernels encode 'unconstrained' as -1."""
    if window is None:
        return -1
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 0:
        raise ConfigError(
            f"window must be None (unconstrained) or a Sakoe-Chiba radius >= 0 in time steps, "
            f"got {window!r}"
        )
    return int(window)


def _as_series(a: Any, name: str) -> np.ndarray:
    """One series as a finite float64 vector (a trailing axis of length 1 is dropped)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise FeatureTableError(
            f"{name} must be a non-empty 1-D series, got an array of shape {arr.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise FeatureTableError(
            f"{name} has {bad.size} NaN or infinite values (first at time index {bad[0]}); "
            "interpolate or drop incomplete series before DTW"
        )
    return np.ascontiguousarray(arr)


def _as_matrix(x: Any, name: str = "X") -> np.ndarray:
    """Series stacked as a finite float64 (n, T) array; clear errors for ragged or NaN input."""
    if isinstance(x, pd.DataFrame):
        x = x.to_numpy()
    if isinstance(x, Sequence) and not isinstance(x, str | bytes):
        lengths = [np.shape(row)[0] if np.ndim(row) >= 1 else -1 for row in x]
        if any(length != lengths[0] for length in lengths):
            first = next(i for i, length in enumerate(lengths) if length != lengths[0])
            raise FeatureTableError(
                f"{name}: series {first} has {lengths[first]} time points but series 0 has "
                f"{lengths[0]}; DTW k-means needs series of equal length, truncate them to a "
                "common length first"
            )
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FeatureTableError(f"{name}: cannot read the series as numbers ({exc})") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise FeatureTableError(
            f"{name} must be a 2-D array (n_series, n_timepoints), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise FeatureTableError(f"{name} is empty (shape {arr.shape}); nothing to cluster")
    finite = np.isfinite(arr)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise FeatureTableError(
            f"{name}: {rows.size} series contain NaN or infinite values (first: series "
            f"{rows[0]}, time index {np.flatnonzero(~finite[rows[0]])[0]}); interpolate or drop "
            "incomplete series before clustering"
        )
    return np.ascontiguousarray(arr)


def dtw_distance(a: Any, b: Any, *, window: int | None = None) -> float:
    """DTW distance between two series.

    Parameters
    ----------
    a, b
        1-D series (lengths may differ).
    window
        Sakoe-Chiba radius in time steps (widened by the length difference); None: unconstrained.

    Returns
    -------
    float
        ``sqrt`` of the smallest sum of squared differences along a warping path (tslearn's
        ``dtw``); ``window=0`` on equal lengths is the euclidean distance.
    """
    w = _window_arg(window)
    x = _as_series(a, "a")
    y = _as_series(b, "b")
    return float(np.sqrt(_kernels().dtw_sq(x, y, w, np.inf)))


def dtw_matrix(X: Any, Y: Any = None, *, window: int | None = None) -> np.ndarray:
    """Pairwise DTW distances, computed in parallel.

    Parameters
    ----------
    X
        (n, T) series.
    Y
        (m, T') series, or None for the symmetric matrix of ``X`` with itself (half the work).
    window
        Sakoe-Chiba radius in time steps; None: unconstrained.

    Returns
    -------
    np.ndarray
        (n, m) or (n, n) float64 distances (tslearn's ``cdist_dtw`` convention).
    """
    w = _window_arg(window)
    x = _as_matrix(X, "X")
    k = _kernels()
    if Y is None:
        return np.sqrt(k.pdist_sq(x, w))
    y = _as_matrix(Y, "Y")
    return np.sqrt(k.cdist_sq(x, y, w))


def _kmeans_pp(
    x: np.ndarray, k: int, w: int, rng: np.random.Generator, pairwise_sq: np.ndarray | None
) -> np.ndarray:
    """Indices of k-means++ seeds on squared DTW costs (greedy, 2 + log k trials per seed)."""
    kern = _kernels()
    n = x.shape[0]

    def cost_to(i: int, current: np.ndarray) -> np.ndarray:
        if pairwise_sq is not None:
            return np.minimum(current, pairwise_sq[i])
        return kern.min_cost_row_sq(x[i], x, w, current)

    n_trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(n))]
    closest = cost_to(chosen[0], np.full(n, np.inf))
    potential = closest.sum()
    for _ in range(1, k):
        if potential <= 0:
            remaining = np.setdiff1d(np.arange(n), chosen)
            chosen.append(int(rng.choice(remaining)))
            continue
        draws = rng.random(n_trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(closest), draws), n - 1)
        trials = [cost_to(int(c), closest) for c in candidates]
        best = int(np.argmin([t.sum() for t in trials]))
        chosen.append(int(candidates[best]))
        closest = trials[best]
        potential = closest.sum()
    return np.array(chosen)


def _fill_empty(
    x: np.ndarray, centroids: np.ndarray, labels: np.ndarray, cost: np.ndarray, k: int
) -> bool:
    """Reseed empty clusters in place with the series farthest from their centroid.

    Returns whether any cluster was empty.
    """
    counts = np.bincount(labels, minlength=k)
    if counts.min() > 0:
        return False
    for c in np.flatnonzero(counts == 0):
        movable = counts[labels] > 1
        s = int(np.argmax(np.where(movable, cost, -np.inf)))
        counts[labels[s]] -= 1
        labels[s] = c
        counts[c] = 1
        cost[s] = 0.0
        centroids[c] = x[s]
    return True


def _lloyd(
    x: np.ndarray,
    centroids: np.ndarray,
    k: int,
    w: int,
    *,
    max_iter: int,
    dba_iter: int,
    tol: float,
) -> DTWKMeansResult:
    """Assignment/DBA rounds from ``centroids`` until the labels stop changing.

    Also stops when the inertia improves by at most ``tol`` (relative), which ends the slow
    back-and-forth of a few series between close clusters when k is too large.
    """
    kern = _kernels()
    centroids = centroids.copy()
    labels = np.full(x.shape[0], -1, dtype=np.int64)
    cost = np.zeros(x.shape[0])
    n_iter = 0
    converged = False
    inertia = np.inf
    while n_iter < max_iter:
        n_iter += 1
        new_labels, cost, updated = kern.assign_dba(x, centroids, w, labels)
        if _fill_empty(x, centroids, new_labels, cost, k):
            updated, _ = kern.dba_step(x, centroids, new_labels, w)
        previous, inertia = inertia, float(cost.mean())
        stalled = np.isfinite(previous) and previous - inertia <= tol * previous
        if stalled or np.array_equal(new_labels, labels):
            labels = new_labels
            converged = True
            break
        labels = new_labels
        centroids = updated
        for _ in range(dba_iter - 1):
            centroids, _ = kern.dba_step(x, centroids, labels, w)
    if not converged:
        labels, cost = kern.assign_sq(x, centroids, w, labels)
        _fill_empty(x, centroids, labels, cost, k)
    return DTWKMeansResult(
        labels=labels, centroids=centroids, inertia=float(cost.mean()), n_iter=n_iter
    )


def _seeded_run(
    x: np.ndarray,
    k: int,
    w: int,
    *,
    max_iter: int,
    dba_iter: int,
    tol: float,
    seed: int,
    restart: int,
    pairwise_sq: np.ndarray | None,
) -> DTWKMeansResult:
    """One k-means run from a k-means++ seeding of ``x``.

    The seeding depends only on ``(seed, restart)``, so a restart gives the same result whether it
    runs alone, beside others in threads, or inside :func:`select_k`.
    """
    rng = np.random.default_rng([seed, restart])
    start = x[_kmeans_pp(x, k, w, rng, pairwise_sq)]
    return _lloyd(x, start, k, w, max_iter=max_iter, dba_iter=dba_iter, tol=tol)


def _subsample_index(n: int, subsample: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of the series the restarts see, or None when they see all of them."""
    if subsample is None or subsample >= n:
        return None
    rng = np.random.default_rng([seed, n, subsample])
    return np.sort(rng.choice(n, size=subsample, replace=False))


def _n_threads() -> int:
    """Threads for independent runs: numba's thread count (``NUMBA_NUM_THREADS``)."""
    import numba

    return max(1, int(numba.get_num_threads()))


def _warm_kernels(x: np.ndarray, w: int) -> None:
    """Load the compiled kernels once, before several threads need them."""
    kern = _kernels()
    one = np.zeros(1, dtype=np.int64)
    kern.assign_sq(x[:1], x[:1], w, one)
    kern.assign_dba(x[:1], x[:1], w, one)
    kern.dba_step(x[:1], x[:1], one, w)
    kern.min_cost_row_sq(x[0], x[:1], w, np.zeros(1))


def _in_threads(
    jobs: list[Any], run: Any, *, desc: str, progress: bool, x: np.ndarray, w: int
) -> dict[Any, tuple[DTWKMeansResult, float]]:
    """``run(job)`` for every job, in threads when several cores are available, with timings.

    The compiled kernels release the GIL, so runs go truly in parallel without a parallel
    runtime that spin-waits between the many short kernel calls.
    """

    def timed(job: Any) -> tuple[DTWKMeansResult, float]:
        start = time.perf_counter()
        res = run(job)
        return res, time.perf_counter() - start

    out: dict[Any, tuple[DTWKMeansResult, float]] = {}
    n_threads = min(_n_threads(), len(jobs))
    with tqdm(total=len(jobs), desc=desc, disable=not progress) as bar:
        if n_threads <= 1:
            for job in jobs:
                out[job] = timed(job)
                bar.update()
            return out
        _warm_kernels(x, w)
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            futures = {pool.submit(timed, job): job for job in jobs}
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                bar.update()
    return out


def _fit_many(
    x: np.ndarray,
    k_list: list[int],
    w: int,
    *,
    n_init: int,
    max_iter: int,
    dba_iter: int,
    tol: float,
    seed: int,
    subsample: int | None,
    pairwise_sq: np.ndarray | None,
    progress: bool = False,
) -> dict[int, tuple[DTWKMeansResult, float]]:
    """Cluster ``x`` for every k: restarts on a subsample, the best one then refined on all series.

    Returns each k's lowest-inertia result and the seconds all its runs took (summed over
    threads). Restarts on a random subsample cost a fraction of full ones and tell the good
    seedings from the bad ones as well; only the best is refined on all series, which then needs
    a few rounds because it starts next to an optimum.
    """
    idx = _subsample_index(x.shape[0], subsample, seed)
    xs = x if idx is None else np.ascontiguousarray(x[idx])
    sq = pairwise_sq
    if sq is not None and idx is not None:
        sq = np.ascontiguousarray(sq[np.ix_(idx, idx)])

    def restart_job(task: tuple[int, int]) -> DTWKMeansResult:
        k, restart = task
        return _seeded_run(
            xs,
            k,
            w,
            max_iter=max_iter,
            dba_iter=dba_iter,
            tol=tol,
            seed=seed,
            restart=restart,
            pairwise_sq=sq,
        )

    tasks = [(k, restart) for k in k_list for restart in range(n_init)]
    runs = _in_threads(tasks, restart_job, desc="DTW k-means", progress=progress, x=x, w=w)
    out: dict[int, tuple[DTWKMeansResult, float]] = {}
    for k in k_list:
        mine = [runs[(k, restart)] for restart in range(n_init)]
        best = min((res for res, _ in mine), key=lambda res: res.inertia)
        out[k] = (best, sum(sec for _, sec in mine))
    if idx is not None:

        def finish_job(k: int) -> DTWKMeansResult:
            start = out[k][0]
            res = _lloyd(x, start.centroids, k, w, max_iter=max_iter, dba_iter=dba_iter, tol=tol)
            res.n_iter += start.n_iter
            return res

        finished = _in_threads(k_list, finish_job, desc="DTW refine", progress=False, x=x, w=w)
        out = {k: (res, out[k][1] + seconds) for k, (res, seconds) in finished.items()}
    return out


def _check_k(k: Any, n: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"{name} must be a positive integer, got {k!r}")
    if k > n:
        raise ConfigError(
            f"{name}={k} clusters requested but only {n} series given; lower {name} or add series"
        )
    return int(k)


def _fit_options(
    k: int, n_init: Any, max_iter: Any, dba_iter: Any, tol: Any, seed: Any, subsample: Any, /
) -> dict[str, Any]:
    """The restart options of :func:`_fit_many`, checked (``k``: the largest number of clusters)."""
    _check_positive(n_init=n_init, max_iter=max_iter, dba_iter=dba_iter)
    _check_tol(tol)
    return {
        "n_init": n_init,
        "max_iter": max_iter,
        "dba_iter": dba_iter,
        "tol": tol,
        "seed": _check_seed(seed),
        "subsample": _check_subsample(subsample, k),
    }


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check_tol(tol: Any) -> None:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < 1:
        raise ConfigError(f"tol must be a number in [0, 1), got {tol!r}")


def _check_subsample(subsample: Any, k: int) -> int | None:
    if subsample is None:
        return None
    if isinstance(subsample, bool) or not isinstance(subsample, int | np.integer):
        raise ConfigError(f"subsample must be None or an integer, got {subsample!r}")
    if subsample < max(2 * k, 2):
        raise ConfigError(
            f"subsample={subsample} is too small for k={k}; use at least {max(2 * k, 2)} series "
            "or None to run the restarts on all series"
        )
    return int(subsample)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def dtw_kmeans(
    X: Any,
    *,
    k: int,
    window: int | None = None,
    n_init: int = 3,
    max_iter: int = 50,
    dba_iter: int = 2,
    tol: float = 1e-3,
    seed: int = 0,
    subsample: int | None = 400,
) -> DTWKMeansResult:
    """Cluster equal-length series by DTW k-means with DBA barycentres.

    Parameters
    ----------
    X
        (n, T) series (a list of equal-length arrays or an (n, T, 1) array is accepted).
    k
        Number of clusters.
    window
        Sakoe-Chiba radius in time steps used for every alignment; None: unconstrained.
    n_init
        Restarts from independent k-means++ seedings, run in parallel threads; the lowest
        inertia wins. Restarts guard against a seeding that puts two centroids on one shape.
    max_iter
        Cap on assignment/update rounds per restart; a restart stops earlier once no label changes.
    dba_iter
        DBA refinements of the centroids after each assignment.
    tol
        A restart also stops when the inertia improves by at most this fraction in a round: on
        noisy series a few of them can drift between clusters for dozens of rounds that each
        gain less than 0.1 % and leave the partition as it was.
    seed
        Seed of the seedings; the result depends on nothing else (not on the thread count).
    subsample
        The restarts cluster a random subsample of this many series (all when there are fewer
        or with None); the restart with the lowest inertia there is then refined on every
        series. Shapes are found as well from a few hundred series as from thousands, at a
        fraction of the cost.

    Returns
    -------
    DTWKMeansResult
        Labels, centroids, inertia (mean squared DTW distance, tslearn's definition), rounds.
    """
    x = _as_matrix(X, "X")
    w = _window_arg(window)
    k = _check_k(k, x.shape[0])
    options = _fit_options(k, n_init, max_iter, dba_iter, tol, seed, subsample)
    fits = _fit_many(x, [k], w, pairwise_sq=None, **options)
    return fits[k][0]


def dtw_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed (n, n) distance matrix (scikit-learn's definition).

    Series alone in their cluster score 0; a single cluster scores NaN.
    """
    d = np.ascontiguousarray(distances, dtype=np.float64)
    lab = np.asarray(labels)
    _, codes = np.unique(lab, return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2:
        return float("nan")
    return float(_kernels().silhouette_precomputed(d, codes.astype(np.int64), k).mean())


def select_k(
    X: Any,
    *,
    ks: Iterable[int] = range(2, 10),
    window: int | None = None,
    seed: int = 0,
    n_init: int = 3,
    max_iter: int = 50,
    dba_iter: int = 2,
    tol: float = 1e-3,
    subsample: int | None = 400,
    progress: bool = False,
) -> KSelection:
    """Cluster for every k in ``ks`` and pick the k with the best silhouette on DTW distances.

    The DTW distance matrix is computed once and shared by the silhouettes and the k-means++
    seedings, so trying many k costs little more than clustering.

    Parameters
    ----------
    X
        (n, T) series.
    ks
        Candidate numbers of clusters (each >= 2 and at most n - 1).
    window, seed, n_init, max_iter, dba_iter, tol, subsample
        As in :func:`dtw_kmeans`; ``select_k(...).results[k]`` equals ``dtw_kmeans(..., k=k)``.
    progress
        Show a progress bar over the ks.

    Returns
    -------
    KSelection
        ``best_k``, a ``scores`` table (k, silhouette, inertia, n_iter, seconds) and every result.
    """
    x = _as_matrix(X, "X")
    w = _window_arg(window)
    k_list = sorted({int(k) for k in ks})
    if not k_list:
        raise ConfigError("ks is empty; give at least one number of clusters to try")
    n = x.shape[0]
    for k in k_list:
        _check_k(k, n, "k")
        if k < 2 or k >= n:
            raise ConfigError(
                f"cannot score k={k} by silhouette with {n} series; use 2 <= k <= {n - 1}"
            )
    options = _fit_options(max(k_list), n_init, max_iter, dba_iter, tol, seed, subsample)
    start = time.perf_counter()
    sq = _kernels().pdist_sq(x, w)
    dist = np.sqrt(sq)
    matrix_seconds = time.perf_counter() - start
    fits = _fit_many(x, k_list, w, pairwise_sq=sq, progress=progress, **options)
    rows = []
    results: dict[int, DTWKMeansResult] = {}
    for k in k_list:
        res, seconds = fits[k]
        results[k] = res
        rows.append(
            {
                "k": k,
                "silhouette": dtw_silhouette(dist, res.labels),
                "inertia": res.inertia,
                "n_iter": res.n_iter,
                "seconds": seconds,
            }
        )
    scores = pd.DataFrame(rows)
    sil = scores["silhouette"].to_numpy(dtype=float)
    best_k = k_list[int(np.argmax(np.where(np.isnan(sil), -np.inf, sil)))]
    return KSelection(best_k=best_k, scores=scores, results=results, matrix_seconds=matrix_seconds)


def cluster_series(
    X: Any, config: DTWClusterConfig, *, progress: bool = False, score: bool = True
) -> KSelection:
    """Cluster with the options of ``config``: fixed ``k``, or k selected from ``config.ks``.

    Candidates of ``config.ks`` that do not fit the number of series n (2 <= k < n) are left
    out; a fixed k above n, or no candidate left, raises :class:`ConfigError`. With a fixed k the
    returned selection holds that single clustering; its silhouette is reported when there are
    more series than clusters and ``score`` is true (NaN otherwise, which saves the DTW matrix).
    """
    x = _as_matrix(X, "X")
    n = x.shape[0]
    if config.k is None:
        ks = [k for k in config.ks if 2 <= k < n]
        if not ks:
            if n < 2:
                raise ConfigError(f"only {n} series: too few to cluster (need at least 2)")
            raise ConfigError(
                f"none of the candidate k {config.ks} fits {n} series (need 2 <= k < n); "
                "set k or ks"
            )
        return select_k(x, ks=ks, progress=progress, **config.kmeans_options())
    if config.k > n:
        raise ConfigError(
            f"k={config.k} clusters requested but only {n} series exist; lower --k or add "
            "conditions"
        )
    start = time.perf_counter()
    res = dtw_kmeans(x, k=config.k, **config.kmeans_options())
    seconds = time.perf_counter() - start
    sil = float("nan")
    if score and 2 <= config.k < n:
        sil = dtw_silhouette(dtw_matrix(x, window=config.window), res.labels)
    scores = pd.DataFrame(
        [
            {
                "k": config.k,
                "silhouette": sil,
                "inertia": res.inertia,
                "n_iter": res.n_iter,
                "seconds": seconds,
            }
        ]
    )
    return KSelection(best_k=config.k, scores=scores, results={config.k: res})
