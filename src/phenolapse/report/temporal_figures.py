"""Figures of the temporal stage (SPEC 7.7), drawn from computed tables; no computation here.

- :func:`plot_cluster_panels`: every cluster's member series with its DTW centroid;
- :func:`plot_effect_heatmap`: drugs x concentrations coloured by effect, one panel per cell line
  plus the consensus;
- :func:`plot_drug_curves`: per drug, distance to control per concentration (with the replicate
  band) beside the confluence curves;
- :func:`plot_image_strip`: one well over time.

Every figure is saved as PNG and SVG (:func:`save_figure`) with a colour-blind-safe palette
(Okabe-Ito) and labelled axes with units.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from phenolapse.io_utils import atomic_path
from phenolapse.vocabulary import EFFECTS, NEGATIVE_CONTROL, TREATMENT

if TYPE_CHECKING:
    from phenolapse.temporal.pipeline import TemporalResult
    from phenolapse.temporal.series import SeriesSet

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
EFFECT_COLORS = dict(zip(EFFECTS, ["#BBBBBB", "#0072B2", "#D55E00", "#E69F00"], strict=True))
EFFECT_ORDER = list(EFFECTS)
FIGURE_NAMES = "figure_names.csv"


def save_figure(fig: Figure, stem: str | Path, *, dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` (atomic writes) and close it."""
    stem = Path(stem)
    paths = []
    for ext in ("png", "svg"):
        target = stem.with_name(f"{stem.name}.{ext}")  # not with_suffix: a stem may hold dots
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(target)
    plt.close(fig)
    return paths


def plot_cluster_panels(
    series: SeriesSet,
    labels: np.ndarray,
    centroids: np.ndarray,
    *,
    clusters: pd.DataFrame | None = None,
) -> Figure:
    """One panel per cluster: member series (thin) and the DTW centroid (thick)."""
    k = centroids.shape[0]
    ncol = min(4, k)
    nrow = int(np.ceil(k / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), sharex=True, sharey=True, squeeze=False
    )
    t_axis = np.nanmedian(series.times, axis=0)
    for c in range(nrow * ncol):
        ax = axes[c // ncol][c % ncol]
        if c >= k:
            ax.set_visible(False)
            continue
        members = series.values[labels == c]
        color = OKABE_ITO[c % len(OKABE_ITO)]
        for m in members:
            ax.plot(t_axis, m, color=color, alpha=0.25, lw=0.7)
        ax.plot(t_axis, centroids[c], color="black", lw=2.2)
        title = f"cluster {c} (n={len(members)})"
        if clusters is not None and "effect" in clusters.columns:
            title += f"\n{clusters.loc[clusters['cluster'] == c, 'effect'].iloc[0]}"
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        if c % ncol == 0:
            ax.set_ylabel("scaled distance to control")
        if c // ncol == nrow - 1:
            ax.set_xlabel("time after drug addition (h)")
    fig.tight_layout()
    return fig


def _effect_matrix(df: pd.DataFrame) -> pd.DataFrame:
    codes = df.assign(code=df["effect"].map({e: i for i, e in enumerate(EFFECT_ORDER)}))
    return codes.pivot_table(
        index="drug", columns="concentration_um", values="code", aggfunc="first"
    )


def plot_effect_heatmap(annotations: pd.DataFrame, consensus: pd.DataFrame | None = None) -> Figure:
    """Drugs x concentrations coloured by effect: one panel per cell line, then the consensus."""
    treated = annotations[annotations.get("role", TREATMENT) == TREATMENT]
    panels: list[tuple[str, pd.DataFrame]] = [
        (str(cl), pd.DataFrame(g)) for cl, g in treated.groupby("cell_line", sort=True)
    ]
    if consensus is not None and not consensus.empty:
        panels.append(("consensus", consensus))
    cmap = ListedColormap([EFFECT_COLORS[e] for e in EFFECT_ORDER])
    norm = BoundaryNorm(np.arange(-0.5, len(EFFECT_ORDER)), cmap.N)
    n_drugs = max(1, treated["drug"].nunique())
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(1.0 + 1.6 * len(panels), 0.8 + 0.3 * n_drugs),
        squeeze=False,
        sharey=True,
    )
    for ax, (name, df) in zip(axes[0], panels, strict=True):
        mat = _effect_matrix(df)
        ax.imshow(
            mat.to_numpy(dtype=float), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
        )
        ax.set_xticks(range(mat.shape[1]))
        ax.set_xticklabels([f"{c:g}" for c in mat.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(mat.shape[0]))
        ax.set_yticklabels(mat.index, fontsize=7)
        if "morphology_change" in df.columns:
            flags = df.pivot_table(
                index="drug", columns="concentration_um", values="morphology_change", aggfunc="any"
            ).reindex(index=mat.index, columns=mat.columns)
            for (i, j), flag in np.ndenumerate(flags.to_numpy(dtype=object)):
                if flag is True or flag == 1:
                    ax.text(j, i, "●", ha="center", va="center", fontsize=7, color="black")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("concentration (µM)")
    axes[0][0].set_ylabel("drug")
    handles = [Patch(color=EFFECT_COLORS[e], label=e.replace("_", " ")) for e in EFFECT_ORDER]
    if "morphology_change" in treated.columns:
        handles.append(Patch(color="white", label="● morphology change"))
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=len(handles),
        fontsize=8,
        bbox_to_anchor=(0.5, 1.06),
        frameon=False,
    )
    fig.tight_layout()
    return fig


def plot_drug_curves(
    distances: pd.DataFrame,
    *,
    drug: str,
    cell_line: str | None = None,
    growth: pd.DataFrame | None = None,
) -> Figure:
    """Distance to control per concentration (bootstrap band) beside confluence curves.

    Where the table has ``relative_distance`` the curves are drawn in units of the control's own
    spread, over a grey band from 0 to 1 (the control band): a curve above it has left the
    control's range.
    """
    d = distances[distances["Metadata_drug"] == drug]
    if cell_line is not None:
        d = d[d["Metadata_cell_line"] == cell_line]
    relative = "relative_distance" in d.columns and bool(d["relative_distance"].notna().any())
    value, low, high = (
        ("relative_distance", "relative_ci_low", "relative_ci_high")
        if relative
        else ("distance", "distance_ci_low", "distance_ci_high")
    )
    ncols = 2 if growth is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.2), squeeze=False)
    concs = sorted(d["Metadata_concentration_um"].dropna().unique())
    if relative and not d.empty:
        t = np.sort(d["Metadata_time_h"].unique())
        axes[0][0].fill_between(t, 0, 1, color="0.85", lw=0, label="control band", zorder=0)
    for i, conc in enumerate(concs):
        color = OKABE_ITO[i % len(OKABE_ITO)]
        g = d[d["Metadata_concentration_um"] == conc].sort_values("Metadata_time_h")
        ax = axes[0][0]
        ax.plot(g["Metadata_time_h"], g[value], color=color, label=f"{conc:g} µM")
        if g[low].notna().any():
            ax.fill_between(
                g["Metadata_time_h"],
                g[low],
                g[high],
                color=color,
                alpha=0.2,
                lw=0,
            )
    if not relative and "null_distance" in d.columns and not d.empty:
        null = d.groupby("Metadata_time_h")["null_distance"].median()
        axes[0][0].plot(
            null.index, null.to_numpy(), color="grey", ls="--", lw=1, label="control spread"
        )
    ax = axes[0][0]
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("time after drug addition (h)")
    metric = d["Metadata_metric"].iloc[0] if not d.empty else ""
    ax.set_ylabel(
        f"distance to control\n(control spreads, {metric})"
        if relative
        else f"distance to control ({metric})"
    )
    ax.set_title(f"{drug}" + (f" - {cell_line}" if cell_line else ""), fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    if growth is not None:
        ax = axes[0][1]
        g_all = growth if cell_line is None else growth[growth["cell_line"] == cell_line]
        ctrl = (
            g_all[g_all["role"] == NEGATIVE_CONTROL]
            .groupby("time_h")["confluence"]
            .agg(["mean", "std"])
        )
        ax.plot(ctrl.index, 100 * ctrl["mean"], color="black", lw=1.5, label="control")
        for i, conc in enumerate(concs):
            color = OKABE_ITO[i % len(OKABE_ITO)]
            w = g_all[
                (g_all["drug"] == drug) & np.isclose(g_all["concentration_um"].astype(float), conc)
            ]
            agg = w.groupby("time_h")["confluence"].agg(["mean", "min", "max"])
            ax.plot(agg.index, 100 * agg["mean"], color=color, label=f"{conc:g} µM")
            ax.fill_between(
                agg.index, 100 * agg["min"], 100 * agg["max"], color=color, alpha=0.2, lw=0
            )
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("time after drug addition (h)")
        ax.set_ylabel("confluence (%)")
        ax.set_title("confluence (replicate range)", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def plot_image_strip(
    manifest: pd.DataFrame, *, plate: str, well: str, n_frames: int = 8, field: int | None = None
) -> Figure:
    """Frames of one well (first field unless ``field``) at ``n_frames`` evenly spaced times."""
    from phenolapse.data.imageio import read_image

    rows = manifest[(manifest["plate"].astype(str) == str(plate)) & (manifest["well"] == well)]
    if rows.empty:
        raise ValueError(f"no images for plate {plate} well {well} in the manifest")
    f = field if field is not None else int(rows["field"].min())
    rows = rows[rows["field"] == f]
    if "tile" in rows.columns:
        rows = rows[rows["tile"] == rows["tile"].min()]
    rows = rows.sort_values("time_h")
    pick = np.unique(np.linspace(0, len(rows) - 1, min(n_frames, len(rows))).round().astype(int))
    sel = rows.iloc[pick]
    fig, axes = plt.subplots(1, len(sel), figsize=(1.6 * len(sel), 1.9), squeeze=False)
    for ax, r in zip(axes[0], sel.itertuples(index=False), strict=True):
        img = read_image(Path(str(r.image_path)))
        ax.imshow(img if img.ndim == 2 else img.mean(axis=2), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{r.time_h:g} h", fontsize=8)
        ax.axis("off")
    first = sel.iloc[0]
    label = f"{plate} {well}: {first.get('drug', '')} {first.get('concentration_um', '')} µM"
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    return fig


def write_temporal_figures(
    result: TemporalResult,
    out_dir: str | Path,
    *,
    manifest: pd.DataFrame | None = None,
    drugs: list[str] | None = None,
    max_drugs: int = 12,
) -> dict[str, Path]:
    """Draw and save every figure of ``result`` into ``out_dir``; returns name -> PNG path.

    Per-drug files are named from :func:`~phenolapse.report.slugs.unique_slugs` of the cell line
    and drug, never from the names themselves; ``figure_names.csv`` maps each file to its full
    cell line and drug.
    """
    from phenolapse.io_utils import write_csv
    from phenolapse.report.slugs import unique_slugs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: list[dict[str, str]] = []
    files: dict[str, Path] = {}
    fig = plot_cluster_panels(
        result.series, result.labels, result.centroids, clusters=result.clusters
    )
    files["fig_clusters"] = save_figure(fig, out / "cluster_panels")[0]
    fig = plot_effect_heatmap(result.annotations, result.consensus)
    files["fig_heatmap"] = save_figure(fig, out / "effect_heatmap")[0]
    treated = result.annotations[result.annotations["role"] == TREATMENT]
    chosen = drugs if drugs is not None else sorted(treated["drug"].unique())[:max_drugs]
    lines = sorted(result.distances["Metadata_cell_line"].astype(str).unique())
    slugs = unique_slugs([*map(str, chosen), *lines])
    for drug in chosen:
        for line in lines:
            fig = plot_drug_curves(
                result.distances, drug=drug, cell_line=line, growth=result.growth
            )
            stem = f"curves_{slugs[line]}_{slugs[str(drug)]}"
            files[f"fig_curves_{line}_{drug}"] = save_figure(fig, out / stem)[0]
            names.append({"file": f"{stem}.png", "figure": "curves", "cell_line": line,
                          "drug": str(drug)})  # fmt: skip
            if manifest is not None and "image_path" in manifest.columns:
                sub = manifest[
                    (manifest["drug"] == drug) & (manifest["cell_line"].astype(str) == line)
                ]
                if sub.empty:
                    continue
                top = sub["concentration_um"].max()
                first = sub[sub["concentration_um"] == top].sort_values(["plate", "well"]).iloc[0]
                fig = plot_image_strip(manifest, plate=str(first["plate"]), well=str(first["well"]))
                stem = f"strip_{slugs[line]}_{slugs[str(drug)]}"
                files[f"fig_strip_{line}_{drug}"] = save_figure(fig, out / stem)[0]
                names.append({"file": f"{stem}.png", "figure": "strip", "cell_line": line,
                              "drug": str(drug)})  # fmt: skip
    columns = ["file", "figure", "cell_line", "drug"]
    write_csv(pd.DataFrame(names, columns=columns), out / FIGURE_NAMES)
    files["figure_names"] = out / FIGURE_NAMES
    return files
