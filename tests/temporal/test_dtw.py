"""Tests of phenolapse.temporal.dtw: distances against hand-computed values and tslearn, clustering
against known shapes, k selection, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from phenolapse.errors import ConfigError, FeatureTableError, PhenolapseError
from phenolapse.temporal.dtw import (
    DTWClusterConfig,
    cluster_series,
    dtw_distance,
    dtw_kmeans,
    dtw_matrix,
    dtw_silhouette,
    select_k,
)


def _shapes(n_per: int, *, n_shapes: int = 3, length: int = 30, seed: int = 0):
    """Well separated effect-like shapes with small noise and +-2 step time shifts."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=float)
    out, labels = [], []
    for lab in range(n_shapes):
        for _ in range(n_per):
            u = (t - rng.integers(-2, 3)) / (length - 1)
            if lab == 0:
                y = np.full(length, 0.05)
            elif lab == 1:
                y = np.exp(-0.5 * ((u - 0.45) / 0.12) ** 2)
            elif lab == 2:
                y = np.clip((u - 0.1) / 0.5, 0.0, 1.0)
            else:
                y = 0.5 / (1.0 + np.exp(-(u - 0.3) / 0.03))
            out.append(y + rng.normal(0.0, 0.03, size=length))
            labels.append(lab)
    return np.array(out), np.array(labels)


# -- distances -----------------------------------------------------------------------------------


def test_dtw_distance_hand_computed():
    # a = [0, 1, 2], b = [0, 2]: best path (0,0) (1,0)|(1,1) (2,1): costs 0 + 1 + 0 -> sqrt(1)
    assert dtw_distance([0.0, 1.0, 2.0], [0.0, 2.0]) == pytest.approx(1.0)
    # a = [1, 2, 3, 4], b = [1, 1, 2, 3]: b repeats its first point; a warps onto it except the
    # last point, 4 vs 3, so the sum of squares is 1.
    assert dtw_distance([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(1.0)
    # euclidean on this pair would be sqrt(0 + 1 + 1 + 1)
    assert dtw_distance([1, 2, 3, 4], [1, 1, 2, 3], window=0) == pytest.approx(np.sqrt(3.0))
    assert dtw_distance([3.0], [1.0, 1.0]) == pytest.approx(np.sqrt(8.0))


def test_window_zero_is_euclidean():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=25), rng.normal(size=25)
    assert dtw_distance(a, b, window=0) == pytest.approx(np.linalg.norm(a - b))
    # a band can only raise the cost; unconstrained is the smallest
    free = dtw_distance(a, b)
    assert free <= dtw_distance(a, b, window=2) <= dtw_distance(a, b, window=0)


def _reference_dtw(a, b, radius=None):
    """Textbook O(n m) DTW with tslearn's Sakoe-Chiba band; sqrt of the summed squares."""
    n, m = len(a), len(b)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            if radius is not None:
                # tslearn widens the band by the length difference, on the longer series' side
                if n <= m and not (i - radius <= j <= i + radius + (m - n)):
                    continue
                if n > m and not (j - radius <= i <= j + radius + (n - m)):
                    continue
            acc[i + 1, j + 1] = (a[i] - b[j]) ** 2 + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(np.sqrt(acc[n, m]))


def test_dtw_matches_reference_implementation():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n, m = rng.integers(1, 15, size=2)
        a, b = rng.normal(size=n), rng.normal(size=m)
        assert dtw_distance(a, b) == pytest.approx(_reference_dtw(a, b), rel=1e-12)
        radius = int(rng.integers(0, 5))
        assert dtw_distance(a, b, window=radius) == pytest.approx(
            _reference_dtw(a, b, radius), rel=1e-12
        )
    x, y = rng.normal(size=(6, 11)), rng.normal(size=(4, 11))
    expected = np.array([[_reference_dtw(p, q, 2) for q in y] for p in x])
    np.testing.assert_allclose(dtw_matrix(x, y, window=2), expected, rtol=1e-12)


def test_dtw_matches_tslearn():
    ts_metrics = pytest.importorskip("tslearn.metrics")
    rng = np.random.default_rng(12)
    for n, m, radius in [(33, 33, 3), (20, 27, 2), (27, 20, 0), (9, 9, 1)]:
        a, b = rng.normal(size=n), rng.normal(size=m)
        assert dtw_distance(a, b) == pytest.approx(ts_metrics.dtw(a, b), rel=1e-12)
        expected = ts_metrics.dtw(a, b, global_constraint="sakoe_chiba", sakoe_chiba_radius=radius)
        assert dtw_distance(a, b, window=radius) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_dtw_matrix_matches_tslearn_cdist():
    ts_metrics = pytest.importorskip("tslearn.metrics")
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(12, 20)), rng.normal(size=(5, 20))
    np.testing.assert_allclose(dtw_matrix(x, y), ts_metrics.cdist_dtw(x, y), rtol=1e-12)
    np.testing.assert_allclose(
        dtw_matrix(x, window=2),
        ts_metrics.cdist_dtw(x, global_constraint="sakoe_chiba", sakoe_chiba_radius=2),
        rtol=1e-12,
        atol=1e-12,
    )


def test_dtw_matrix_symmetric_and_consistent():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7):
        x = rng.normal(size=(n, 9))
        full = dtw_matrix(x, window=1)
        np.testing.assert_allclose(full, full.T)
        np.testing.assert_array_equal(np.diag(full), 0.0)
        np.testing.assert_allclose(full, dtw_matrix(x, x, window=1), rtol=1e-12, atol=1e-12)
        for i in range(n):
            for j in range(n):
                assert full[i, j] == pytest.approx(dtw_distance(x[i], x[j], window=1))


def test_inputs_not_modified():
    x, _ = _shapes(5)
    before = x.copy()
    dtw_matrix(x, window=2)
    dtw_kmeans(x, k=3, window=2)
    np.testing.assert_array_equal(x, before)


# -- clustering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [None, 3])
def test_kmeans_recovers_three_shapes(window):
    x, truth = _shapes(20)
    res = dtw_kmeans(x, k=3, window=window, seed=0)
    assert adjusted_rand_score(truth, res.labels) == 1.0
    assert res.labels.shape == (60,)
    assert res.centroids.shape == (3, 30)
    # inertia is the mean squared DTW distance to the assigned centroid
    d = dtw_matrix(x, res.centroids, window=window)
    assert res.inertia == pytest.approx(np.mean(d[np.arange(60), res.labels] ** 2))
    np.testing.assert_array_equal(res.labels, d.argmin(axis=1))
    # the flat shape's centroid is flat and low, the ramp's ends high
    flat = res.labels[truth == 0][0]
    ramp = res.labels[truth == 2][0]
    assert np.abs(res.centroids[flat] - 0.05).max() < 0.05
    assert res.centroids[ramp][-5:].mean() > 0.9


@pytest.mark.slow
def test_kmeans_at_least_as_good_as_tslearn():
    ts_clustering = pytest.importorskip("tslearn.clustering")
    x, truth = _shapes(15, n_shapes=4, length=24, seed=4)
    ours = dtw_kmeans(x, k=4, window=2, seed=0)
    ref = ts_clustering.TimeSeriesKMeans(
        n_clusters=4, metric="dtw", n_init=1, max_iter=10, random_state=0
    ).fit(x[:, :, None])
    assert adjusted_rand_score(truth, ours.labels) >= adjusted_rand_score(truth, ref.labels_)
    assert adjusted_rand_score(truth, ours.labels) == 1.0


def test_kmeans_deterministic_with_seed():
    x, _ = _shapes(15, n_shapes=4, seed=5)
    a = dtw_kmeans(x, k=5, window=2, seed=7)
    b = dtw_kmeans(x, k=5, window=2, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter


def test_result_independent_of_threads_and_of_select_k():
    numba = pytest.importorskip("numba")
    x, _ = _shapes(10, n_shapes=4, seed=11)
    threaded = dtw_kmeans(x, k=3, window=2, n_init=3, seed=4)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = dtw_kmeans(x, k=3, window=2, n_init=3, seed=4)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(threaded.labels, serial.labels)
    assert threaded.inertia == serial.inertia
    sel = select_k(x, ks=[3, 4], window=2, n_init=3, seed=4)
    np.testing.assert_array_equal(sel.results[3].labels, threaded.labels)
    np.testing.assert_array_equal(sel.results[3].centroids, threaded.centroids)


def test_subsampled_restarts_match_full_restarts():
    x, truth = _shapes(60, n_shapes=4, seed=8)
    sub = dtw_kmeans(x, k=4, window=3, subsample=40, seed=1)
    full = dtw_kmeans(x, k=4, window=3, subsample=None, seed=1)
    assert adjusted_rand_score(truth, sub.labels) == 1.0
    assert adjusted_rand_score(sub.labels, full.labels) == 1.0
    # the refinement ran on every series: its inertia is over all 240 of them
    d = dtw_matrix(x, sub.centroids, window=3)
    assert sub.inertia == pytest.approx(np.mean(d[np.arange(240), sub.labels] ** 2))
    np.testing.assert_array_equal(sub.labels, d.argmin(axis=1))
    with pytest.raises(ConfigError, match="subsample=5 is too small for k=4"):
        dtw_kmeans(x, k=4, subsample=5)


def test_restarts_never_worse():
    x, _ = _shapes(10, n_shapes=4, seed=6)
    one = dtw_kmeans(x, k=4, window=2, n_init=1, seed=3)
    many = dtw_kmeans(x, k=4, window=2, n_init=4, seed=3)
    assert many.inertia <= one.inertia + 1e-12


def test_kmeans_k_equals_n_and_duplicates():
    x = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    res = dtw_kmeans(x, k=3, seed=0)
    assert sorted(np.bincount(res.labels, minlength=3)) == [1, 1, 1]
    assert res.inertia == pytest.approx(0.0)


def test_fused_assignment_update_equals_separate_steps():
    from phenolapse.temporal import _dtw_kernels as kern

    x, _ = _shapes(10, n_shapes=4, seed=14)
    rng = np.random.default_rng(0)
    centroids = x[rng.choice(len(x), 4, replace=False)].copy()
    previous = rng.integers(-1, 4, size=len(x))
    for window in (-1, 0, 3):
        labels, cost, updated = kern.assign_dba(x, centroids, window, previous)
        ref_labels, ref_cost = kern.assign_sq(x, centroids, window, previous)
        d = dtw_matrix(x, centroids, window=None if window < 0 else window) ** 2
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(labels, d.argmin(axis=1))
        np.testing.assert_allclose(cost, d.min(axis=1), rtol=1e-12)
        np.testing.assert_array_equal(cost, ref_cost)
        ref_updated, _ = kern.dba_step(x, centroids, labels, window)
        np.testing.assert_array_equal(updated, ref_updated)


# -- k selection ---------------------------------------------------------------------------------


def test_dtw_silhouette_matches_sklearn():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 12))
    d = dtw_matrix(x, window=2)
    labels = rng.integers(0, 4, size=40)
    labels[0] = 9  # a singleton cluster scores 0 in both
    expected = silhouette_score(d, labels, metric="precomputed")
    assert dtw_silhouette(d, labels) == pytest.approx(expected, rel=1e-10)


def test_select_k_finds_true_k():
    x, truth = _shapes(12, n_shapes=4, seed=9)
    sel = select_k(x, ks=range(2, 7), window=3, seed=0)
    assert sel.best_k == 4
    assert list(sel.scores["k"]) == [2, 3, 4, 5, 6]
    assert set(sel.scores.columns) >= {"k", "silhouette", "inertia", "seconds"}
    assert adjusted_rand_score(truth, sel.results[4].labels) == 1.0
    # the silhouette reported is the one on DTW distances
    d = dtw_matrix(x, window=3)
    best = sel.scores.set_index("k").loc[4, "silhouette"]
    assert best == pytest.approx(silhouette_score(d, sel.results[4].labels, metric="precomputed"))
    # inertia falls as k grows on this clear case up to the true k
    inertia = sel.scores.set_index("k")["inertia"]
    assert inertia[2] > inertia[3] > inertia[4]


def test_cluster_series_with_config():
    x, truth = _shapes(8, seed=10)
    fixed = cluster_series(x, DTWClusterConfig(k=3, window=2))
    assert fixed.best_k == 3
    assert adjusted_rand_score(truth, fixed.results[3].labels) == 1.0
    assert fixed.scores.loc[0, "silhouette"] > 0.5
    chosen = cluster_series(x, DTWClusterConfig(ks=[2, 3, 4], window=2))
    assert chosen.best_k == 3


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.bad_input("temporal")
def test_nan_is_rejected_with_location():
    x, _ = _shapes(3)
    x[4, 7] = np.nan
    with pytest.raises(FeatureTableError, match=r"series 4, time index 7"):
        dtw_kmeans(x, k=2)
    with pytest.raises(FeatureTableError, match="NaN"):
        dtw_matrix(x)
    with pytest.raises(FeatureTableError, match="time index 1"):
        dtw_distance([0.0, np.nan], [1.0, 2.0])


@pytest.mark.bad_input("temporal")
def test_unequal_lengths_are_rejected():
    with pytest.raises(FeatureTableError, match="series 1 has 3 time points but series 0 has 4"):
        dtw_kmeans([np.zeros(4), np.zeros(3), np.zeros(4)], k=2)


@pytest.mark.bad_input("temporal")
def test_fewer_series_than_k():
    x, _ = _shapes(1)
    with pytest.raises(ConfigError, match="k=4 clusters requested but only 3 series"):
        dtw_kmeans(x, k=4)
    with pytest.raises(ConfigError, match="k=3"):
        select_k(x, ks=[2, 3])


@pytest.mark.bad_input("temporal")
@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": 2, "window": -1},
        {"k": 2, "n_init": 0},
        {"k": 2, "window": 1.5},
        {"k": 2, "tol": -0.1},
        {"k": 2, "seed": -1},
    ],
)
def test_bad_options(kwargs):
    x, _ = _shapes(3)
    with pytest.raises(ConfigError):
        dtw_kmeans(x, **kwargs)


@pytest.mark.bad_input("temporal")
def test_bad_shapes_and_config():
    with pytest.raises(FeatureTableError, match="2-D"):
        dtw_kmeans(np.zeros((2, 3, 4)), k=1)
    with pytest.raises(FeatureTableError, match="empty"):
        dtw_matrix(np.zeros((0, 5)))
    with pytest.raises(PhenolapseError):
        select_k(np.zeros((5, 4)), ks=[])
    with pytest.raises(ValueError):
        DTWClusterConfig(ks=[1, 2])
    with pytest.raises(ValueError):
        DTWClusterConfig(window=-2)
