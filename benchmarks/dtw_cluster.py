"""Benchmark: phenolapse DTW k-means against tslearn ``TimeSeriesKMeans(metric="dtw")``.

3,255 series of 33 points (the paper's scale) are drawn from the four effect shapes of SPEC 7.6
(no effect, cytostatic, cytotoxic, mixed) with noise, time shifts and amplitude changes, grouped
into "drugs" of five concentrations and min-max scaled per drug jointly, as the real pipeline does.
Both methods cluster the same data with k = 4 in the same process. Before the timed runs each
method clusters 60 series once: this first call is its cold start (tslearn compiles its numba code
in every process; ours loads its compiled code from the on-disk cache) and is reported on its own,
so every seed compares warm against warm, the comparison least favourable to us. Clustering quality
is the adjusted Rand index (ARI) against the known shapes.

Prints a per-seed table, the time of our k selection over k = 2..9, and as its last line one JSON
object reporting the worst seeds: ``seconds``/``baseline_seconds``/``speedup`` of the seed with the
lowest speedup, ``ari``/``baseline_ari`` of the seed where ours leads tslearn least,
``cpu_speedup``, the lowest ratio of CPU times (process time, all threads summed), which stays
meaningful on a machine busy with other work, and both cold starts::

    python benchmarks/dtw_cluster.py            # 5 generator seeds
    python benchmarks/dtw_cluster.py --quick    # 2 seeds
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

SHAPES = ("no_effect", "cytostatic", "cytotoxic", "mixed")


def make_series(
    *, n_series: int = 3255, length: int = 33, group: int = 5, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_series`` labelled effect-shaped series, min-max scaled per group of ``group``.

    Each group mimics one drug over ``group`` increasing concentrations: the lowest ones have no
    effect, the top ``m`` (1 to ``group``) one of the three effect shapes each, the top dose a
    cytostatic or cytotoxic one, so a "mixed" plateau stays at mid level after the scaling.
    Shapes get a random onset shift of up to +-4 time points, a random time stretch and amplitude,
    then Gaussian noise.

    Returns
    -------
    series : (n_series, length) float64 array in [0, 1]
    labels : (n_series,) int array, index into :data:`SHAPES`
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=float)
    series = np.empty((n_series, length))
    labels = np.empty(n_series, dtype=int)
    for start in range(0, n_series, group):
        size = min(group, n_series - start)
        n_effect = int(rng.integers(1, size + 1))
        labs = np.zeros(size, dtype=int)
        labs[size - n_effect :] = rng.integers(1, 4, size=n_effect)
        labs[-1] = rng.integers(1, 3)  # the top dose has the strongest effect (peak 1)
        block = np.empty((size, length))
        for row, lab in enumerate(labs):
            shift = rng.integers(-4, 5)
            stretch = rng.uniform(0.85, 1.15)
            u = (t - shift) / (length - 1) / stretch  # warped time in about [0, 1]
            amp = rng.uniform(0.8, 1.0)
            if lab == 0:  # low and flat
                y = np.full(length, 0.05)
            elif lab == 1:  # rises, peaks mid-way, falls back
                y = amp * np.exp(-0.5 * ((u - 0.45) / 0.12) ** 2)
            elif lab == 2:  # rises steadily to its maximum and stays
                y = amp * np.clip((u - 0.1) / 0.5, 0.0, 1.0)
            else:  # steps up, then plateaus at a mid level
                y = 0.5 * amp / (1.0 + np.exp(-(u - 0.3) / 0.03))
            block[row] = y + rng.normal(0.0, noise, size=length)
        lo, hi = block.min(), block.max()
        series[start : start + size] = (block - lo) / (hi - lo)
        labels[start : start + size] = labs
    return series, labels


def cold_start(*, window: int, n_init: int) -> dict[str, float]:
    """Seconds of each method's first call in this process (60 series, k = 4)."""
    x, _ = make_series(n_series=60, seed=99)

    start = time.perf_counter()
    from phenolapse.temporal.dtw import dtw_kmeans

    dtw_kmeans(x, k=4, window=window, n_init=n_init, seed=0)
    seconds = time.perf_counter() - start

    from tslearn.clustering import TimeSeriesKMeans

    start = time.perf_counter()
    TimeSeriesKMeans(n_clusters=4, metric="dtw", n_init=1, random_state=0).fit(x[:, :, None])
    baseline_seconds = time.perf_counter() - start
    return {"cold_seconds": seconds, "baseline_cold_seconds": baseline_seconds}


def best_of(repeats: int, fn: Any) -> tuple[Any, float, float]:
    """``fn()``'s result and its fastest wall-clock and CPU seconds over ``repeats`` calls."""
    wall, cpu, result = np.inf, np.inf, None
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - cpu_start)
    return result, wall, cpu


def run_seed(seed: int, *, window: int, n_init: int, repeats: int) -> dict[str, float]:
    """Cluster one generated data set with tslearn and with phenolapse; times and ARIs.

    Ours is timed as the fastest of ``repeats`` identical runs (its runs last tens of
    milliseconds, where a machine's noise is largest); tslearn's single run lasts seconds.
    """
    from sklearn.metrics import adjusted_rand_score
    from tslearn.clustering import TimeSeriesKMeans

    from phenolapse.temporal.dtw import dtw_kmeans

    x, truth = make_series(seed=seed)
    result, seconds, cpu_seconds = best_of(
        repeats, lambda: dtw_kmeans(x, k=4, window=window, n_init=n_init, seed=0)
    )
    baseline = TimeSeriesKMeans(n_clusters=4, metric="dtw", n_init=1, random_state=0)
    baseline_labels, baseline_seconds, baseline_cpu_seconds = best_of(
        1, lambda: baseline.fit_predict(x[:, :, None])
    )
    return {
        "seed": seed,
        "seconds": seconds,
        "baseline_seconds": baseline_seconds,
        "speedup": baseline_seconds / seconds,
        "cpu_speedup": baseline_cpu_seconds / cpu_seconds,
        "ari": float(adjusted_rand_score(truth, result.labels)),
        "baseline_ari": float(adjusted_rand_score(truth, baseline_labels)),
        "n_iter": result.n_iter,
        "baseline_n_iter": int(baseline.n_iter_),
    }


def main() -> None:
    """Run the benchmark over several generator seeds and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 generator seeds instead of 5")
    parser.add_argument(
        "--window", type=int, default=6, help="Sakoe-Chiba radius of ours (about T/5)"
    )
    parser.add_argument("--n-init", type=int, default=3, help="restarts (ours)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours per seed")
    args = parser.parse_args()
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    cold = cold_start(window=args.window, n_init=args.n_init)
    print(
        f"cold start (first call in this process): ours {cold['cold_seconds']:.3f} s, "
        f"tslearn {cold['baseline_cold_seconds']:.2f} s"
    )

    rows = []
    header = (
        f"{'seed':>4} {'ours_s':>8} {'tslearn_s':>10} {'speedup':>8} {'cpu_speedup':>11} "
        f"{'ari':>6} {'tsl_ari':>7}"
    )
    print(header)
    for seed in seeds:
        row = run_seed(seed, window=args.window, n_init=args.n_init, repeats=args.repeats)
        rows.append(row)
        print(
            f"{seed:>4} {row['seconds']:>8.3f} {row['baseline_seconds']:>10.2f} "
            f"{row['speedup']:>8.1f} {row['cpu_speedup']:>11.1f} {row['ari']:>6.4f} "
            f"{row['baseline_ari']:>7.4f}",
            flush=True,
        )

    from phenolapse.temporal.dtw import select_k

    x, _ = make_series(seed=seeds[0])
    start = time.perf_counter()
    selection = select_k(x, ks=range(2, 10), window=args.window, n_init=args.n_init, seed=0)
    select_seconds = time.perf_counter() - start
    print(
        f"select_k over k=2..9 on seed {seeds[0]}: {select_seconds:.2f} s, best k = "
        f"{selection.best_k}"
    )
    print(selection.scores.to_string(index=False))

    worst = min(rows, key=lambda r: r["speedup"])
    worst_ari = min(rows, key=lambda r: r["ari"] - r["baseline_ari"])
    print(
        f"worst speedup: seed {worst['seed']}; worst ARI margin: seed {worst_ari['seed']} "
        f"({worst_ari['ari']:.3f} vs {worst_ari['baseline_ari']:.3f})"
    )
    summary = {
        "seconds": round(worst["seconds"], 4),
        "baseline_seconds": round(worst["baseline_seconds"], 3),
        "speedup": round(worst["speedup"], 1),
        "ari": round(worst_ari["ari"], 4),
        "baseline_ari": round(worst_ari["baseline_ari"], 4),
        "cpu_speedup": round(min(r["cpu_speedup"] for r in rows), 1),
        "worst_speedup_seed": worst["seed"],
        "worst_ari_seed": worst_ari["seed"],
        "select_k_seconds": round(select_seconds, 3),
        "cold_seconds": round(cold["cold_seconds"], 3),
        "baseline_cold_seconds": round(cold["baseline_cold_seconds"], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
