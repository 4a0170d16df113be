"""Figures of the extractor comparison: one per task, drawn from the comparison tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from phenolapse.io_utils import atomic_path


def _values(table: pd.DataFrame, task: str, metrics: list[str]) -> pd.DataFrame:
    sub = table.loc[(table["task"] == task) & table["metric"].isin(metrics)]
    wide = sub.pivot_table(index="extractor", columns="metric", values="value", aggfunc="first",
                           sort=False)
    order = list(dict.fromkeys(table["extractor"]))
    return wide.reindex(index=[e for e in order if e in wide.index],
                        columns=[m for m in metrics if m in wide.columns])


def _bars(ax: plt.Axes, wide: pd.DataFrame, *, ylabel: str, title: str) -> None:
    n_ext, n_met = wide.shape
    width = 0.8 / max(n_met, 1)
    x = np.arange(n_ext)
    for j, metric in enumerate(wide.columns):
        ax.bar(x + (j - (n_met - 1) / 2) * width, wide[metric].to_numpy(float), width,
               label=metric)
    ax.set_xticks(x, list(wide.index), rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if n_met > 1:
        ax.legend(fontsize=7, loc="best", framealpha=0.8)


def retrieval_figure(table: pd.DataFrame, details: pd.DataFrame | None = None) -> Figure:
    """mAP of replicates vs controls and vs other drugs, and replicate distance ratios."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    maps = _values(table, "replicate_retrieval", ["map_vs_controls", "map_vs_drugs"])
    _bars(axes[0], maps, ylabel="mean average precision", title="Replicate retrieval (copairs)")
    axes[0].set_ylim(0, 1.05)
    if details is not None and not details.empty and "mean_average_precision" in details:
        order = list(maps.index)
        for j, against in enumerate(("controls", "drugs")):
            sub = details.loc[details["against"] == against]
            for i, ext in enumerate(order):
                v = sub.loc[sub["extractor"] == ext, "mean_average_precision"].to_numpy(float)
                jitter = np.linspace(-0.1, 0.1, len(v)) if len(v) > 1 else np.zeros(len(v))
                axes[0].scatter(i + (j - 0.5) * 0.4 + jitter, v, s=6, color="k", alpha=0.5,
                                zorder=3)
    ratios = _values(
        table, "replicate_retrieval",
        [m for m in dict.fromkeys(table["metric"])
         if str(m).startswith("replicate_distance_ratio_")],
    )
    ratios.columns = [c.removeprefix("replicate_distance_ratio_") for c in ratios.columns]
    _bars(axes[1], ratios, ylabel="median replicate / non-replicate distance",
          title="Replicate distance (lower: replicates closer)")
    axes[1].axhline(1.0, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    return fig


def clustering_figure(table: pd.DataFrame, details: pd.DataFrame | None = None) -> Figure:
    """Cluster quality against HDBSCAN's minimum cluster size, one line per extractor."""
    metrics = ["silhouette", "calinski_harabasz", "davies_bouldin", "fraction_not_noise",
               "adjusted_rand_index"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    if details is None or details.empty:
        wide = _values(table, "clustering", metrics)
        for ax, metric in zip(axes, metrics, strict=True):
            if metric in wide:
                ax.bar(list(wide.index), wide[metric].to_numpy(float))
                ax.tick_params(axis="x", rotation=30)
            ax.set_title(metric)
    else:
        mean = details.groupby(["extractor", "metric", "min_cluster_size"], sort=False)[
            "value"].mean().reset_index()
        for ax, metric in zip(axes, metrics, strict=True):
            for ext, sub in mean.loc[mean["metric"] == metric].groupby("extractor", sort=False):
                ax.plot(sub["min_cluster_size"], sub["value"], marker="o", label=str(ext))
            ax.set_xlabel("min cluster size")
            ax.set_title(metric + (" (lower better)" if metric == "davies_bouldin" else ""))
        axes[0].legend(fontsize=7)
    fig.suptitle("Clustering of drugs within cell lines (UMAP + HDBSCAN)")
    fig.tight_layout()
    return fig


def classification_figure(table: pd.DataFrame) -> Figure:
    """Held-out (by well) classification: drug vs control and drug identity."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    binary = _values(table, "classification",
                     ["drug_vs_control_balanced_accuracy", "drug_vs_control_roc_auc"])
    _bars(axes[0], binary, ylabel="score", title="Drug vs control (held-out wells)")
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set_ylim(0, 1.05)
    ident = _values(table, "classification",
                    ["drug_identity_top1_accuracy", "drug_identity_top3_accuracy",
                     "drug_identity_balanced_accuracy"])
    _bars(axes[1], ident, ylabel="accuracy", title="Drug identity (held-out wells)")
    chance = _values(table, "classification", ["drug_identity_chance_top1"])
    if not chance.empty:
        axes[1].axhline(float(chance.iloc[:, 0].max()), color="grey", lw=0.8, ls="--",
                        label="chance (top-1)")
    axes[1].set_ylim(0, 1.05)
    fig.tight_layout()
    return fig


def cost_figure(table: pd.DataFrame) -> Figure:
    """Seconds per 1,000 images, end to end and for the forward pass alone."""
    fig, ax = plt.subplots(figsize=(6, 4))
    wide = _values(table, "cost", ["seconds_per_1000_images", "model_seconds_per_1000_images"])
    _bars(ax, wide, ylabel="seconds per 1,000 images", title="Cost")
    if (wide.to_numpy(float) > 0).all():
        ax.set_yscale("log")
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    plt.close(fig)
    return path


def write_comparison_figures(
    table: pd.DataFrame, details: dict[str, pd.DataFrame], out: str | Path
) -> dict[str, Path]:
    """Write ``fig_<task>.png`` for every task present in ``table``; returns task -> path."""
    out = Path(out)
    tasks = set(table["task"])
    paths: dict[str, Path] = {}
    if "replicate_retrieval" in tasks:
        paths["replicate_retrieval"] = _save(
            retrieval_figure(table, details.get("retrieval")), out / "fig_replicate_retrieval.png"
        )
    if "clustering" in tasks:
        paths["clustering"] = _save(
            clustering_figure(table, details.get("clustering")), out / "fig_clustering.png"
        )
    if "classification" in tasks:
        paths["classification"] = _save(classification_figure(table),
                                        out / "fig_classification.png")
    if "cost" in tasks:
        paths["cost"] = _save(cost_figure(table), out / "fig_cost.png")
    return paths
