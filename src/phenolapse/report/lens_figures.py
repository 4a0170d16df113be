"""Figures of the lens stage: accuracy box plots, confusion matrices, image | map panels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phenolapse.io_utils import atomic_path

if TYPE_CHECKING:
    from phenolapse.lens.run import LensResult


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def plot_lens_boxplot(results: pd.DataFrame, path: str | Path) -> Path:
    """Box plot of held-out top-1 and top-3 accuracy, plain vs lens, per cell line (and pooled).

    One box per (group, classifier) over seeds; one panel per metric and lambda.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    coefs = list(dict.fromkeys(results["coef"].tolist()))
    groups = list(dict.fromkeys(results["cell_line"].tolist()))
    fig, axes = plt.subplots(
        len(coefs), 2, figsize=(max(6, 1.6 * len(groups) * 2), 3.2 * len(coefs)), squeeze=False
    )
    for r, coef in enumerate(coefs):
        sub = results[results["coef"] == coef]
        for c, metric in enumerate(("top1", "top3")):
            ax = axes[r, c]
            data, labels, colors = [], [], []
            for g in groups:
                s = sub[sub["cell_line"] == g]
                for kind, color in (("plain", "#8da0cb"), ("lens", "#fc8d62")):
                    data.append(s[f"{metric}_{kind}"].to_numpy())
                    labels.append(f"{g}\n{kind}")
                    colors.append(color)
            bp = ax.boxplot(data, patch_artist=True)
            for patch, color in zip(bp["boxes"], colors, strict=True):
                patch.set_facecolor(color)
            for i, d in enumerate(data):
                ax.scatter(np.full(len(d), i + 1.0), d, s=10, color="k", zorder=3)
            ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
            ax.set_ylim(0, 1.02)
            ax.set_ylabel(f"held-out {metric} accuracy")
            ax.set_title(f"lambda = {coef:g}: {metric}")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_confusion_matrices(
    matrices: dict[str, np.ndarray], classes: list[str], path: str | Path
) -> Path:
    """Row-normalised confusion matrices side by side (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(classes)
    size = max(4.0, 0.3 * n + 2)
    fig, axes = plt.subplots(1, len(matrices), figsize=(size * len(matrices), size), squeeze=False)
    for ax, (title, cm) in zip(axes[0], matrices.items(), strict=True):
        cm = np.asarray(cm, dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _save(fig, Path(path))


def save_importance_panel(
    image: np.ndarray,
    importance: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    attribution: np.ndarray | None = None,
) -> Path:
    """Save ``image | importance map [| integrated gradients]`` side by side.

    ``image`` is ``(C, H, W)`` (first three channels shown as RGB when C > 1) or ``(H, W)``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    img = np.asarray(image)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1)
        if img.ndim == 3 and img.shape[2] == 2:
            img = np.concatenate([img, np.zeros_like(img[..., :1])], axis=2)
    panels = [("image", img, "gray"), ("|AE(x) - L(x)|^1.5", importance, "inferno")]
    if attribution is not None:
        panels.append(("integrated gradients", attribution, "magma"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (name, arr, cmap) in zip(axes, panels, strict=True):
        ax.imshow(np.clip(arr, 0, 1) if name == "image" else arr, cmap=cmap)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path))


def write_lens_figures(result: LensResult) -> list[Path]:
    """Draw the figures of a lens run into ``result.out``; returns their paths.

    ``confusion_matrix.png`` (plain head and the first lambda's lens head), ``lens_boxplot.png``
    and one ``importance/<rule>_<n>.png`` panel per chosen example.
    """
    from phenolapse.lens.run import IMPORTANCE_DIR

    out = Path(result.out)
    first = next(iter(result.confusion_lens))
    matrices = {
        "plain head on F(x)": result.confusion_plain,
        f"lens head on F(L(x)), lambda={first:g}": result.confusion_lens[first],
    }
    paths = [
        plot_confusion_matrices(matrices, result.classes, out / "confusion_matrix.png"),
        plot_lens_boxplot(result.results, out / "lens_boxplot.png"),
    ]
    for panel in result.panels:
        paths.append(
            save_importance_panel(
                panel.image,
                panel.importance,
                out / IMPORTANCE_DIR / f"{panel.name}.png",
                title=panel.title,
                attribution=panel.attribution,
            )
        )
    return paths
