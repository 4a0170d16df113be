"""Figures of the growth analysis: potency over time, dose-response curves, growth curves."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from phenolapse.io_utils import atomic_path
from phenolapse.temporal.gr_metrics import gr_curve

if TYPE_CHECKING:
    from phenolapse.temporal.growth_run import GrowthResult

POTENCY_DIR = "potency"  # the potency figures' folder in a run's temporal/ output


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("_") or "x"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def group_label(meta: dict[str, Any]) -> str:
    """File-name label of a group: the cell line, plus the plate and extra keys when they differ."""
    parts = [str(meta.get("cell_line", ""))]
    if str(meta.get("plate", "")) != parts[0]:
        parts.append(str(meta.get("plate", "")))
    parts += [str(v) for k, v in meta.items() if k not in ("cell_line", "plate")]
    return _slug("_".join(p for p in parts if p))


def plot_potency(metrics: pd.DataFrame, *, title: str, path: Path) -> Path:
    """GR50 (log scale) and GRmax against time, one line per drug."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    any_gr50 = False
    n_drugs = metrics["drug"].nunique()
    # beyond 10 drugs: 20 colours and a line style per block of 20, so no two drugs look alike
    n_colours = 10 if n_drugs <= 10 else 20
    cmap = plt.get_cmap(f"tab{n_colours}")
    colours = [cmap(j) for j in range(n_colours)]
    styles = ("-", "--", ":", "-.")
    for i, (drug, grp) in enumerate(metrics.groupby("drug", sort=True)):
        grp = grp.sort_values("time_h")
        gr50 = grp["GR50"].to_numpy(dtype=np.float64)
        gr50 = np.where(np.isfinite(gr50) & (gr50 > 0), gr50, np.nan)
        any_gr50 |= bool(np.isfinite(gr50).any())
        look = {
            "color": colours[i % len(colours)],
            "ls": styles[(i // len(colours)) % len(styles)],
            "marker": "o",
            "ms": 3,
            "label": str(drug),
        }
        axes[0].plot(grp["time_h"], gr50, **look)
        axes[1].plot(grp["time_h"], grp["GRmax"], **look)
    if any_gr50:
        axes[0].set_yscale("log")
    axes[0].set_ylabel("GR50 (uM; gaps: not reached)")
    axes[1].axhline(0, color="grey", lw=0.8, ls="--")
    axes[1].set_ylabel("GRmax")
    for ax in axes:
        ax.set_xlabel("time (h)")
    if n_drugs <= 10:
        axes[1].legend(fontsize=7, loc="best")
    else:
        axes[1].legend(
            fontsize=6,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            ncol=int(np.ceil(n_drugs / 18)),
            frameon=False,
        )
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_dose_response(
    gr: pd.DataFrame, metrics: pd.DataFrame, *, times: Sequence[float], title: str, path: Path
) -> Path:
    """GR against concentration at ``times``: points and the fitted curve."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.9, max(len(times), 1)))
    for colour, t in zip(colours, times, strict=False):
        pts = gr[np.isclose(gr["time_h"], t)]
        if pts.empty:
            continue
        ax.scatter(pts["concentration_um"], pts["GR"], color=colour, s=14)
        row = metrics[np.isclose(metrics["time_h"], t)]
        conc = pts["concentration_um"].to_numpy(dtype=np.float64)
        conc = conc[conc > 0]
        if not row.empty and conc.size:
            grid = np.logspace(np.log10(conc.min()), np.log10(conc.max()), 60)
            curve = gr_curve(grid, row.iloc[0].to_dict())
            ax.plot(grid, curve, color=colour, label=f"{t:g} h")
    ax.set_xscale("log")
    for level in (0.0, 1.0):
        ax.axhline(level, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("concentration (uM)")
    ax.set_ylabel("GR")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_growth_curves(
    gr: pd.DataFrame, *, title: str, path: Path, metric: str, dead_metric: str | None
) -> Path:
    """The readout against time per concentration beside the control (and the dead readout)."""
    import matplotlib.pyplot as plt

    has_dead = dead_metric is not None and "d" in gr.columns
    fig, axes = plt.subplots(1, 2 if has_dead else 1, figsize=(10 if has_dead else 5.4, 3.8))
    axes = np.atleast_1d(axes)
    concs = sorted(gr["concentration_um"].dropna().unique())
    colours = plt.get_cmap("plasma")(np.linspace(0.05, 0.85, max(len(concs), 1)))
    first = gr[gr["concentration_um"] == concs[0]].sort_values("time_h") if concs else gr
    axes[0].plot(first["time_h"], first["xc"], color="black", lw=2, label="control")
    if has_dead:
        axes[1].plot(first["time_h"], first["dc"], color="black", lw=2, label="control")
    for colour, conc in zip(colours, concs, strict=False):
        grp = gr[gr["concentration_um"] == conc].sort_values("time_h")
        axes[0].plot(grp["time_h"], grp["x"], color=colour, label=f"{conc:.3g} uM")
        if has_dead:
            axes[1].plot(grp["time_h"], grp["d"], color=colour)
    axes[0].set_ylabel(metric)
    if has_dead:
        axes[1].set_ylabel(f"{dead_metric} (dead cells)")
    for ax in axes:
        ax.set_xlabel("time (h)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def default_figure_times(times: Sequence[float]) -> list[float]:
    """A third, two thirds and the last of the time points after the first."""
    t = sorted(set(float(v) for v in times))
    if len(t) <= 3:
        return t
    return sorted({t[len(t) // 3], t[(2 * len(t)) // 3], t[-1]})


def draw_growth_figures(
    result: GrowthResult, folder: Path, *, figure_times: Sequence[float] | None = None
) -> list[Path]:
    """All figures of a growth analysis into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    files: list[Path] = []
    gkeys = (
        ["cell_line", "plate", *result.keys]
        if result.kind == "time_course"
        else [k for k in result.keys if k not in ("drug", "time_h")]
    )
    gkeys = [k for k in gkeys if k in result.metrics.columns]
    metrics = result.metrics
    if metrics.empty:
        return files
    for gkey, mgrp in metrics.groupby(gkeys, sort=True) if gkeys else [((), metrics)]:
        meta = dict(zip(gkeys, gkey if isinstance(gkey, tuple) else (gkey,), strict=True))
        label = group_label(meta)
        title = ", ".join(dict.fromkeys(str(v) for v in meta.values()))
        if mgrp["time_h"].nunique() > 1 if "time_h" in mgrp.columns else False:
            files.append(plot_potency(mgrp, title=title, path=folder / f"potency_{label}.png"))
        if result.kind != "time_course":
            continue
        sel = np.ones(len(result.gr), dtype=bool)
        for k, v in meta.items():
            sel &= (result.gr[k] == v).to_numpy()
        grp_gr = result.gr[sel]
        times = (
            list(figure_times) if figure_times else default_figure_times(mgrp["time_h"].tolist())
        )
        for drug, dgr in grp_gr.groupby("drug", sort=True):
            dm = mgrp[mgrp["drug"] == drug]
            name = f"{label}_{_slug(str(drug))}"
            files.append(
                plot_dose_response(
                    dgr,
                    dm,
                    times=times,
                    title=f"{title}: {drug}",
                    path=folder / f"dose_response_{name}.png",
                )
            )
            files.append(
                plot_growth_curves(
                    dgr,
                    title=f"{title}: {drug}",
                    path=folder / f"growth_{name}.png",
                    metric=result.metric,
                    dead_metric=result.dead_metric,
                )
            )
    return files


def draw_potency_figures(
    metrics: pd.DataFrame, folder: Path, *, keys: Sequence[str] = ("cell_line", "plate")
) -> list[Path]:
    """GR50 and GRmax against time, one figure per group of ``keys`` (``potency_<group>.png``).

    Groups with a single time point get no figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    gkeys = [k for k in keys if k in metrics.columns]
    files: list[Path] = []
    groups = metrics.groupby(gkeys, sort=True) if gkeys else [((), metrics)]
    for gkey, grp in groups:
        meta = dict(zip(gkeys, gkey if isinstance(gkey, tuple) else (gkey,), strict=True))
        if grp["time_h"].nunique() < 2:
            continue
        title = ", ".join(dict.fromkeys(str(v) for v in meta.values()))
        path = folder / f"potency_{group_label(meta)}.png"
        files.append(plot_potency(grp, title=f"{title}: GR50 and GRmax over time", path=path))
    return files
