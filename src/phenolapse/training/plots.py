"""Figures of a training run (kept apart from the computation)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phenolapse.io_utils import atomic_path


def plot_loss_curve(history: pd.DataFrame, path: Path) -> Path:
    """Draw training and validation loss per epoch (and the learning rate) to a PNG, atomically.

    With a ``val_knn`` column, a second panel beside it shows that validation score per epoch
    (held-out wells' k-NN balanced accuracy; epoch 0 is the untrained encoder).

    Parameters
    ----------
    history
        Table with columns ``epoch, train_loss, val_loss, lr`` and optionally ``val_loss_floor``
        and ``val_knn`` (epoch 0: the untrained model).
    path
        Output PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    has_knn = "val_knn" in history and history["val_knn"].notna().any()
    fig = Figure(figsize=(10.0 if has_knn else 6.0, 4.0), constrained_layout=True)
    ax = fig.add_subplot(1, 2 if has_knn else 1, 1)
    train = history.dropna(subset=["train_loss"])
    val = history.dropna(subset=["val_loss"])
    ax.plot(train["epoch"], train["train_loss"], "o-", label="train (all views)")
    if len(val):
        ax.plot(val["epoch"], val["val_loss"], "s-", label="validation (whole frame)")
    if "val_loss_floor" in history and history["val_loss_floor"].notna().any():
        floor = float(history["val_loss_floor"].dropna().iloc[-1])
        ax.axhline(floor, ls="--", color="0.5", lw=1, label="validation floor (perfect)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0 = untrained)")
    ax.set_ylabel(
        "binary cross-entropy" if "val_loss_floor" in history else "self-supervised loss"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    if "lr" in history and history["lr"].notna().any():
        ax2 = ax.twinx()
        lr = history.dropna(subset=["lr"])
        ax2.step(lr["epoch"], lr["lr"], where="mid", color="0.6", lw=1, label="learning rate")
        ax2.set_ylabel("learning rate", color="0.4")
        ax2.set_yscale("log")
    if has_knn:
        ax3 = fig.add_subplot(1, 2, 2)
        knn = history.dropna(subset=["val_knn"])
        ax3.plot(knn["epoch"], knn["val_knn"], "o-", color="C2")
        ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax3.set_xlabel("epoch (0 = untrained)")
        ax3.set_ylabel("held-out wells: k-NN balanced accuracy")
        ax3.set_title("condition named from training wells", fontsize=9)
        ax3.grid(alpha=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path
