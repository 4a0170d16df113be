"""DTW k-means as a scikit-learn estimator, a drop-in for tslearn's ``TimeSeriesKMeans``.

:class:`DTWKMeans` wraps :func:`~phenolapse.temporal.dtw.dtw_kmeans` (the compiled kernels, DBA
barycentres, parallel restarts) behind ``fit`` / ``predict`` / ``labels_`` / ``get_params``, so
it works with ``sklearn.base.clone``, grid searches and code written for
``tslearn.clustering.TimeSeriesKMeans(metric="dtw")``. Series come as (n, T) arrays or in
tslearn's (n, T, 1) layout.

Plain NumPy in and out; this module does not import torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from phenolapse.errors import ConfigError, FeatureTableError
from phenolapse.temporal.dtw import _as_matrix, _kernels, _window_arg, dtw_kmeans, dtw_matrix

__all__ = ["DTWKMeans"]


def _seed_from(random_state: Any) -> int:
    """The integer seed of :func:`dtw_kmeans`: an int as given, else drawn from the generator."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ConfigError(f"random_state must be an integer >= 0, got {random_state!r}")
        return int(random_state)
    try:
        rng = check_random_state(random_state)
    except ValueError as exc:
        raise ConfigError(
            f"random_state must be None, an integer >= 0 or a numpy RandomState, got "
            f"{random_state!r}"
        ) from exc
    return int(rng.randint(np.iinfo(np.int32).max))


class DTWKMeans(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """k-means on equal-length series under dynamic time warping, with DBA centroids.

    The estimator form of :func:`~phenolapse.temporal.dtw.dtw_kmeans`: same seeding, same
    kernels, same result for the same seed. Use it where code expects
    ``tslearn.clustering.TimeSeriesKMeans(metric="dtw")`` or a scikit-learn clusterer.

    Parameters
    ----------
    n_clusters
        Number of clusters.
    window
        Sakoe-Chiba radius in time steps used for every alignment; None: unconstrained
        (tslearn's ``metric_params={"sakoe_chiba_radius": window}``).
    n_init
        Restarts from independent k-means++ seedings; the lowest inertia wins.
    max_iter
        Cap on assignment/update rounds per restart.
    dba_iter
        DBA refinements of the centroids after each assignment.
    tol
        A restart stops when the inertia improves by at most this fraction in a round.
    subsample
        The restarts cluster a random subsample of this many series before the best one is
        refined on all of them; None: restarts on all series.
    random_state
        An integer seed (the ``seed`` of :func:`dtw_kmeans`), a ``numpy.random.RandomState``
        (a seed is drawn from it) or None (a fresh seed on every fit).

    Attributes
    ----------
    labels_
        (n,) cluster index of every training series, in ``0 .. n_clusters-1``.
    cluster_centers_
        DBA barycentres, (n_clusters, T) for (n, T) input and (n_clusters, T, 1) for tslearn's
        (n, T, 1) input.
    inertia_
        Mean over training series of the squared DTW distance to the assigned centroid
        (tslearn's definition with ``dtw_inertia=True``).
    n_iter_
        Assignment rounds of the kept restart.
    n_features_in_
        Length T of the training series; :meth:`predict` needs series of this length.
    """

    def __init__(
        self,
        n_clusters: int = 3,
        *,
        window: int | None = None,
        n_init: int = 3,
        max_iter: int = 50,
        dba_iter: int = 2,
        tol: float = 1e-3,
        subsample: int | None = 400,
        random_state: Any = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.window = window
        self.n_init = n_init
        self.max_iter = max_iter
        self.dba_iter = dba_iter
        self.tol = tol
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> DTWKMeans:
        """Cluster the series ``X``.

        Parameters
        ----------
        X
            (n, T) or (n, T, 1) series of equal length, finite.
        y
            Ignored; present for scikit-learn's API.

        Returns
        -------
        DTWKMeans
            The fitted estimator.
        """
        x = _as_matrix(X, "X")
        res = dtw_kmeans(
            x,
            k=self.n_clusters,
            window=self.window,
            n_init=self.n_init,
            max_iter=self.max_iter,
            dba_iter=self.dba_iter,
            tol=self.tol,
            seed=_seed_from(self.random_state),
            subsample=self.subsample,
        )
        self._tslearn_layout = np.ndim(X) == 3
        self.labels_ = res.labels
        self.cluster_centers_ = res.centroids[:, :, None] if self._tslearn_layout else res.centroids
        self.inertia_ = res.inertia
        self.n_iter_ = res.n_iter
        self.n_features_in_ = x.shape[1]
        return self

    def _check_series(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "cluster_centers_")
        x = _as_matrix(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise FeatureTableError(
                f"X has series of {x.shape[1]} time points but the model was fitted on "
                f"{self.n_features_in_}; truncate or resample them to {self.n_features_in_}"
            )
        return x

    def _centroids(self) -> np.ndarray:
        centers = np.asarray(self.cluster_centers_, dtype=np.float64)
        return np.ascontiguousarray(centers[..., 0] if self._tslearn_layout else centers)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centroid under DTW for every series of ``X``.

        Parameters
        ----------
        X
            (m, T) or (m, T, 1) series of the training length.

        Returns
        -------
        np.ndarray
            (m,) int64 labels; ties go to the lower cluster index.
        """
        x = self._check_series(X)
        previous = np.full(x.shape[0], -1, dtype=np.int64)
        labels, _ = _kernels().assign_sq(x, self._centroids(), _window_arg(self.window), previous)
        return np.asarray(labels)

    def transform(self, X: Any) -> np.ndarray:
        """DTW distances of every series of ``X`` to every centroid.

        Parameters
        ----------
        X
            Series as for :meth:`predict`.

        Returns
        -------
        np.ndarray
            (m, n_clusters) distances (tslearn's ``transform``).
        """
        x = self._check_series(X)
        return dtw_matrix(x, self._centroids(), window=self.window)
