"""The DTW clustering benchmark's data settings: the standard one draws the published series, the
hard one is measurably harder and tells methods apart; (slow) ours against tslearn on it."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from phenolapse.temporal.dtw import dtw_kmeans, dtw_matrix

BenchmarkLoader = Callable[[str], ModuleType]
SEEDS = (0, 1, 2)


def test_standard_setting_draws_the_published_series(benchmark_script: BenchmarkLoader) -> None:
    bench = benchmark_script("dtw_cluster")
    x, labels = bench.make_series(n_series=20, seed=0)
    # drawn by the generator before it had settings
    assert x.sum() == pytest.approx(252.88732377569778, abs=1e-9)
    np.testing.assert_allclose(
        x[3, :5], [0.18534157, 0.22286593, 0.11216658, 0.27845854, 0.2259271], atol=1e-8
    )
    assert labels.tolist() == [2, 2, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 3, 3, 2, 0, 0, 0, 0, 2]
    same, _ = bench.make_series(n_series=20, setting=bench.SETTINGS["standard"], seed=0)
    np.testing.assert_array_equal(same, x)


def test_hard_setting_shapes_closer_and_noisier(benchmark_script: BenchmarkLoader) -> None:
    """On DTW distances, shapes of the hard setting lie closer to each other relative to their
    own spread, and a series' nearest neighbour is more often of another shape."""
    bench = benchmark_script("dtw_cluster")
    for seed in SEEDS:
        measured = {}
        for setting in ("standard", "hard"):
            x, y = bench.make_series(n_series=300, setting=setting, seed=seed)
            assert x.min() == 0.0 and x.max() == 1.0
            d = dtw_matrix(x, window=6)
            same = y[:, None] == y[None, :]
            other = ~np.eye(len(y), dtype=bool)
            ratio = d[~same].mean() / d[same & other].mean()
            nearest = np.where(other, d, np.inf).argmin(axis=1)
            measured[setting] = (ratio, float(np.mean(y[nearest] == y)))
        # measured: standard ratio 3.85-3.89, 1-NN 0.99-1.0; hard 1.52-1.64, 0.80-0.87
        assert measured["standard"][0] > 3.5 and measured["hard"][0] < 2.0
        assert measured["standard"][1] >= 0.98 and measured["hard"][1] <= 0.92


def test_hard_setting_ari_clearly_below_one(benchmark_script: BenchmarkLoader) -> None:
    bench = benchmark_script("dtw_cluster")
    ari = {}
    for setting in ("standard", "hard"):
        scores = []
        for seed in SEEDS:
            x, truth = bench.make_series(n_series=300, setting=setting, seed=seed)
            labels = dtw_kmeans(x, k=4, window=6, seed=0).labels
            scores.append(adjusted_rand_score(truth, labels))
        ari[setting] = np.array(scores)
    # measured: standard 0.979, 1.0, 0.985; hard 0.598, 0.635, 0.627
    assert ari["standard"].min() >= 0.95
    assert 0.5 <= ari["hard"].mean() <= 0.8 and ari["hard"].max() < 0.9


@pytest.mark.slow
def test_hard_setting_ours_against_tslearn(benchmark_script: BenchmarkLoader) -> None:
    ts_clustering = pytest.importorskip("tslearn.clustering")
    bench = benchmark_script("dtw_cluster")
    ours, theirs = [], []
    for seed in SEEDS:
        x, truth = bench.make_series(n_series=300, setting="hard", seed=seed)
        ours.append(adjusted_rand_score(truth, dtw_kmeans(x, k=4, window=6, seed=0).labels))
        ref = ts_clustering.TimeSeriesKMeans(n_clusters=4, metric="dtw", n_init=1, random_state=0)
        theirs.append(adjusted_rand_score(truth, ref.fit_predict(x[:, :, None])))
    # measured: ours 0.598, 0.635, 0.627 (mean 0.620); tslearn 0.647, 0.537, 0.649 (0.611)
    assert np.mean(theirs) < 0.9
    assert np.mean(ours) >= np.mean(theirs) - 0.05


@pytest.mark.slow
def test_benchmark_reports_both_settings(benchmark_script: BenchmarkLoader) -> None:
    bench = benchmark_script("dtw_cluster")
    summary = bench.main(["--quick", "--n-series", "120", "--repeats", "1"])
    assert summary["n_series"] == 120
    for setting in ("standard", "hard"):
        worst = summary[setting]
        assert worst["speedup"] > 0.0 and worst["cpu_speedup"] > 0.0
        assert -1.0 <= worst["ari"] <= 1.0 and -1.0 <= worst["baseline_ari"] <= 1.0
    assert summary["standard"]["mean_ari"] > summary["hard"]["mean_ari"]
    assert summary["speedup"] == min(summary[s]["speedup"] for s in ("standard", "hard"))
