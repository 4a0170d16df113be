"""Tests of phenolapse.temporal.estimator: DTWKMeans equals dtw_kmeans, follows scikit-learn's
estimator contract, predicts the nearest centroid under DTW and agrees with tslearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from phenolapse.errors import ConfigError, FeatureTableError
from phenolapse.temporal import DTWKMeans
from phenolapse.temporal.dtw import dtw_kmeans, dtw_matrix


def _shapes(n_per: int, *, length: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated shapes (flat, pulse, ramp) with small noise and +-2 step shifts."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=float)
    out, labels = [], []
    for lab in range(3):
        for _ in range(n_per):
            u = (t - rng.integers(-2, 3)) / (length - 1)
            if lab == 0:
                y = np.full(length, 0.05)
            elif lab == 1:
                y = np.exp(-0.5 * ((u - 0.45) / 0.12) ** 2)
            else:
                y = np.clip((u - 0.1) / 0.5, 0.0, 1.0)
            out.append(y + rng.normal(0.0, 0.03, size=length))
            labels.append(lab)
    return np.array(out), np.array(labels)


def _noisy(n: int = 40, length: int = 16, seed: int = 0) -> np.ndarray:
    """Random walks: no clear clusters, so seeds and restarts matter."""
    return np.random.default_rng(seed).normal(size=(n, length)).cumsum(axis=1)


def test_same_result_as_dtw_kmeans_with_same_seed():
    x = _noisy()
    for seed in (0, 3):
        est = DTWKMeans(4, window=3, n_init=2, random_state=seed).fit(x)
        ref = dtw_kmeans(x, k=4, window=3, n_init=2, seed=seed)
        np.testing.assert_array_equal(est.labels_, ref.labels)
        np.testing.assert_array_equal(est.cluster_centers_, ref.centroids)
        assert est.inertia_ == ref.inertia
        assert est.n_iter_ == ref.n_iter
        assert est.n_features_in_ == x.shape[1]


def test_fit_predict_equals_labels_and_tslearn_layout():
    x = _noisy(seed=1)
    flat = DTWKMeans(3, random_state=2).fit(x)
    labels = DTWKMeans(3, random_state=2).fit_predict(x[:, :, None])
    np.testing.assert_array_equal(labels, flat.labels_)
    tall = DTWKMeans(3, random_state=2).fit(x[:, :, None])
    assert tall.cluster_centers_.shape == (3, x.shape[1], 1)
    np.testing.assert_array_equal(tall.cluster_centers_[:, :, 0], flat.cluster_centers_)
    np.testing.assert_array_equal(tall.predict(x), flat.predict(x[:, :, None]))


def test_get_params_and_clone():
    est = DTWKMeans(5, window=2, n_init=4, tol=0.0, subsample=None, random_state=9)
    params = est.get_params()
    assert params == {
        "n_clusters": 5,
        "window": 2,
        "n_init": 4,
        "max_iter": 50,
        "dba_iter": 2,
        "tol": 0.0,
        "subsample": None,
        "random_state": 9,
    }
    x = _noisy(seed=2)
    est.fit(x)
    copy = clone(est)
    assert copy.get_params() == params
    assert not hasattr(copy, "labels_")
    np.testing.assert_array_equal(copy.fit(x).labels_, est.labels_)
    copy.set_params(n_clusters=2, window=None)
    assert copy.fit(x).cluster_centers_.shape == (2, x.shape[1])
    assert est.n_clusters == 5


def test_predict_is_nearest_centroid_under_dtw():
    x = _noisy(seed=3)
    new = _noisy(n=25, seed=4)
    for window in (None, 2):
        est = DTWKMeans(4, window=window, random_state=0).fit(x)
        dist = dtw_matrix(new, est.cluster_centers_, window=window)
        np.testing.assert_array_equal(est.predict(new), dist.argmin(axis=1))
        np.testing.assert_allclose(est.transform(new), dist)
        # on the training series the labels are their nearest centroid as well
        train = dtw_matrix(x, est.cluster_centers_, window=window)
        np.testing.assert_array_equal(est.predict(x), train.argmin(axis=1))
        np.testing.assert_allclose(est.inertia_, (train.min(axis=1) ** 2).mean())


def test_random_state_none_and_generator():
    x, truth = _shapes(6)
    for state in (None, np.random.RandomState(0)):
        labels = DTWKMeans(3, random_state=state).fit_predict(x)
        assert adjusted_rand_score(truth, labels) == 1.0


def test_inputs_not_modified():
    x = _noisy(seed=5)
    before = x.copy()
    est = DTWKMeans(3, random_state=0).fit(x)
    est.predict(x)
    np.testing.assert_array_equal(x, before)


def test_bad_input_and_unfitted():
    from sklearn.exceptions import NotFittedError

    x = _noisy(n=10)
    with pytest.raises(NotFittedError):
        DTWKMeans(2).predict(x)
    with pytest.raises(ConfigError, match="clusters requested"):
        DTWKMeans(11).fit(x)
    with pytest.raises(ConfigError, match="random_state"):
        DTWKMeans(2, random_state=-1).fit(x)
    with pytest.raises(ConfigError, match="random_state"):
        DTWKMeans(2, random_state="seed").fit(x)
    with pytest.raises(ConfigError, match="window"):
        DTWKMeans(2, window=-2).fit(x)
    est = DTWKMeans(2, random_state=0).fit(x)
    with pytest.raises(FeatureTableError, match="fitted on 16"):
        est.predict(x[:, :12])


def test_agrees_with_tslearn_timeserieskmeans():
    clustering = pytest.importorskip("tslearn.clustering")
    x, truth = _shapes(8, seed=3)
    ref = clustering.TimeSeriesKMeans(
        n_clusters=3, metric="dtw", n_init=1, max_iter=5, max_iter_barycenter=5, random_state=0
    ).fit(x[:, :, None])
    ours = DTWKMeans(3, random_state=0).fit(x[:, :, None])
    assert adjusted_rand_score(ref.labels_, ours.labels_) >= 0.95
    assert adjusted_rand_score(truth, ours.labels_) == 1.0
    # same inertia definition (mean squared DTW distance to the centroid), on each one's centroids
    assert ours.inertia_ <= ref.inertia_ * 1.05
