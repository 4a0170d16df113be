"""Benchmark: phenolapse DTW k-means against tslearn ``TimeSeriesKMeans(metric="dtw")``.

3,255 series of 33 points (the paper's scale) are drawn from the four effect shapes of SPEC 7.6
(no effect, cytostatic, cytotoxic, mixed) with noise, time shifts and amplitude changes, grouped
into "drugs" of five concentrations and min-max scaled per drug jointly, as the real pipeline does.
Two settings (:data:`SETTINGS`): ``standard``, the first published one, where both methods
recover the shapes almost perfectly (ARI ~0.995), and ``hard``, with twice the noise, closer
shapes and twice the onset spread, where neither does (ARI ~0.6-0.7), so that methods can be
told apart. Both methods cluster the same data with k = 4 in the same process. Before the timed
runs each method clusters 60 series once: this first call is its cold start (tslearn compiles its
numba code in every process; ours loads its compiled code from the on-disk cache) and is reported
on its own, so every seed compares warm against warm, the comparison least favourable to us.
Clustering quality is the adjusted Rand index (ARI) against the known shapes.

Prints a per-seed table, the time of our k selection over k = 2..9, and as its last line one JSON
object reporting the worst seeds: ``seconds``/``baseline_seconds``/``speedup`` of the seed with the
lowest speedup over all settings, ``cpu_speedup``, the lowest ratio of CPU times (process time,
all threads summed), which stays meaningful on a machine busy with other work, then per setting
its own worst speedups, ``ari``/``baseline_ari`` of the seed where ours leads tslearn least and
the mean ARIs, and both cold starts::

    python benchmarks/dtw_cluster.py                    # both settings, 5 generator seeds
    python benchmarks/dtw_cluster.py --quick            # 2 seeds
    python benchmarks/dtw_cluster.py --setting hard --n-series 1000
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, NamedTuple

import numpy as np

SHAPES = ("no_effect", "cytostatic", "cytotoxic", "mixed")


class Setting(NamedTuple):
    """How hard the generated series are to cluster.

    Attributes
    ----------
    noise
        Standard deviation of the Gaussian noise added to every point (before the scaling).
    max_shift
        Onsets are shifted by a random whole number of time points in ``-max_shift .. max_shift``.
    stretch
        Range of the random time stretch.
    amp
        Range of the random amplitude of the effect shapes.
    peak_width
        Width (in warped time) of the cytostatic rise and fall; wider looks more like a ramp.
    ramp_length
        Warped time the cytotoxic ramp takes to reach its maximum.
    plateau
        Level of the mixed shape's plateau (the top of the other shapes is about 1).
    step_width
        Softness of the mixed shape's step; softer looks more like a ramp.
    """

    noise: float
    max_shift: int
    stretch: tuple[float, float]
    amp: tuple[float, float]
    peak_width: float
    ramp_length: float
    plateau: float
    step_width: float


SETTINGS = {
    # the setting of the first published numbers: both methods reach ARI ~1 on it
    "standard": Setting(
        noise=0.1,
        max_shift=4,
        stretch=(0.85, 1.15),
        amp=(0.8, 1.0),
        peak_width=0.12,
        ramp_length=0.5,
        plateau=0.5,
        step_width=0.03,
    ),
    # more noise, closer shapes (a wider peak, a longer ramp, a higher and softer plateau) and
    # more spread onsets and speeds: hard enough that neither method recovers every shape
    "hard": Setting(
        noise=0.2,
        max_shift=8,
        stretch=(0.7, 1.3),
        amp=(0.6, 1.0),
        peak_width=0.2,
        ramp_length=0.7,
        plateau=0.65,
        step_width=0.08,
    ),
}


def make_series(
    *,
    n_series: int = 3255,
    length: int = 33,
    group: int = 5,
    setting: str | Setting = "standard",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_series`` labelled effect-shaped series, min-max scaled per group of ``group``.

    Each group mimics one drug over ``group`` increasing concentrations: the lowest ones have no
    effect, the top ``m`` (1 to ``group``) one of the three effect shapes each, the top dose a
    cytostatic or cytotoxic one, so a "mixed" plateau stays at mid level after the scaling.
    Shapes get a random onset shift, a random time stretch and amplitude, then Gaussian noise,
    as :data:`SETTINGS` (or a :class:`Setting`) says; ``"standard"`` draws the same series as
    before settings existed.

    Returns
    -------
    series : (n_series, length) float64 array in [0, 1]
    labels : (n_series,) int array, index into :data:`SHAPES`
    """
    p = SETTINGS[setting] if isinstance(setting, str) else setting
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
            shift = rng.integers(-p.max_shift, p.max_shift + 1)
            stretch = rng.uniform(*p.stretch)
            u = (t - shift) / (length - 1) / stretch  # warped time in about [0, 1]
            amp = rng.uniform(*p.amp)
            if lab == 0:  # low and flat
                y = np.full(length, 0.05)
            elif lab == 1:  # rises, peaks mid-way, falls back
                y = amp * np.exp(-0.5 * ((u - 0.45) / p.peak_width) ** 2)
            elif lab == 2:  # rises steadily to its maximum and stays
                y = amp * np.clip((u - 0.1) / p.ramp_length, 0.0, 1.0)
            else:  # steps up, then plateaus at a mid level
                y = p.plateau * amp / (1.0 + np.exp(-(u - 0.3) / p.step_width))
            block[row] = y + rng.normal(0.0, p.noise, size=length)
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


def run_seed(
    seed: int, *, setting: str, n_series: int, window: int, n_init: int, repeats: int
) -> dict[str, Any]:
    """Cluster one generated data set with tslearn and with phenolapse; times and ARIs.

    Ours is timed as the fastest of ``repeats`` identical runs (its runs last tens of
    milliseconds, where a machine's noise is largest); tslearn's single run lasts seconds.
    """
    from sklearn.metrics import adjusted_rand_score
    from tslearn.clustering import TimeSeriesKMeans

    from phenolapse.temporal.dtw import dtw_kmeans

    x, truth = make_series(n_series=n_series, setting=setting, seed=seed)
    result, seconds, cpu_seconds = best_of(
        repeats, lambda: dtw_kmeans(x, k=4, window=window, n_init=n_init, seed=0)
    )
    baseline = TimeSeriesKMeans(n_clusters=4, metric="dtw", n_init=1, random_state=0)
    baseline_labels, baseline_seconds, baseline_cpu_seconds = best_of(
        1, lambda: baseline.fit_predict(x[:, :, None])
    )
    return {
        "setting": setting,
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


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst seeds of ``rows``: lowest speedup, lowest CPU speedup, smallest ARI lead."""
    worst = min(rows, key=lambda r: r["speedup"])
    worst_ari = min(rows, key=lambda r: r["ari"] - r["baseline_ari"])
    return {
        "seconds": round(worst["seconds"], 4),
        "baseline_seconds": round(worst["baseline_seconds"], 3),
        "speedup": round(worst["speedup"], 1),
        "cpu_speedup": round(min(r["cpu_speedup"] for r in rows), 1),
        "ari": round(worst_ari["ari"], 4),
        "baseline_ari": round(worst_ari["baseline_ari"], 4),
        "mean_ari": round(float(np.mean([r["ari"] for r in rows])), 4),
        "mean_baseline_ari": round(float(np.mean([r["baseline_ari"] for r in rows])), 4),
        "worst_speedup_seed": worst["seed"],
        "worst_ari_seed": worst_ari["seed"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark over several generator seeds; print the table and the JSON line, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 generator seeds instead of 5")
    parser.add_argument(
        "--setting",
        choices=[*SETTINGS, "both"],
        default="both",
        help="data setting: standard (the first published one), hard, or both (default)",
    )
    parser.add_argument(
        "--n-series", type=int, default=3255, help="series per data set (the paper's 3,255)"
    )
    parser.add_argument(
        "--window", type=int, default=6, help="Sakoe-Chiba radius of ours (about T/5)"
    )
    parser.add_argument("--n-init", type=int, default=3, help="restarts (ours)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours per seed")
    args = parser.parse_args(argv)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    settings = list(SETTINGS) if args.setting == "both" else [args.setting]
    cold = cold_start(window=args.window, n_init=args.n_init)
    print(
        f"cold start (first call in this process): ours {cold['cold_seconds']:.3f} s, "
        f"tslearn {cold['baseline_cold_seconds']:.2f} s"
    )

    rows = []
    header = (
        f"{'setting':>8} {'seed':>4} {'ours_s':>8} {'tslearn_s':>10} {'speedup':>8} "
        f"{'cpu_speedup':>11} {'ari':>6} {'tsl_ari':>7} {'iter':>4} {'tsl_iter':>8}"
    )
    print(f"{args.n_series} series per data set")
    print(header)
    for setting in settings:
        for seed in seeds:
            row = run_seed(
                seed,
                setting=setting,
                n_series=args.n_series,
                window=args.window,
                n_init=args.n_init,
                repeats=args.repeats,
            )
            rows.append(row)
            print(
                f"{setting:>8} {seed:>4} {row['seconds']:>8.3f} {row['baseline_seconds']:>10.2f} "
                f"{row['speedup']:>8.1f} {row['cpu_speedup']:>11.1f} {row['ari']:>6.4f} "
                f"{row['baseline_ari']:>7.4f} {row['n_iter']:>4} {row['baseline_n_iter']:>8}",
                flush=True,
            )

    from phenolapse.temporal.dtw import select_k

    x, _ = make_series(n_series=args.n_series, setting=settings[0], seed=seeds[0])
    start = time.perf_counter()
    selection = select_k(x, ks=range(2, 10), window=args.window, n_init=args.n_init, seed=0)
    select_seconds = time.perf_counter() - start
    print(
        f"select_k over k=2..9 on {settings[0]} seed {seeds[0]}: {select_seconds:.2f} s, "
        f"best k = {selection.best_k}"
    )
    print(selection.scores.to_string(index=False))

    by_setting = {s: summarize([r for r in rows if r["setting"] == s]) for s in settings}
    for s, worst in by_setting.items():
        print(
            f"{s}: worst speedup {worst['speedup']:.1f} (seed {worst['worst_speedup_seed']}), "
            f"worst ARI margin seed {worst['worst_ari_seed']} "
            f"({worst['ari']:.3f} vs {worst['baseline_ari']:.3f}), mean ARI "
            f"{worst['mean_ari']:.3f} vs {worst['mean_baseline_ari']:.3f}"
        )
    overall = summarize(rows)
    summary = {
        key: overall[key]
        for key in ("seconds", "baseline_seconds", "speedup", "cpu_speedup", "worst_speedup_seed")
    }
    summary["worst_speedup_setting"] = min(rows, key=lambda r: r["speedup"])["setting"]
    summary.update(by_setting)
    summary.update(
        {
            "n_series": args.n_series,
            "select_k_seconds": round(select_seconds, 3),
            "cold_seconds": round(cold["cold_seconds"], 3),
            "baseline_cold_seconds": round(cold["baseline_cold_seconds"], 2),
        }
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
