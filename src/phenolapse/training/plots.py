"""Figures of a training run (kept apart from the computation)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phenolapse.io_utils import atomic_path


def plot_loss_curve(history: pd.DataFrame, path: Path) -> Path:
    """Draw training and validation loss per epoch (and the learning rate) to a PNG, atomically.

    Parameters
    ----------
    history
        Table with columns ``epoch, train_loss, val_loss, lr`` and optionally ``val_loss_floor``
        (epoch 0: the untrained model).
    path
        Output PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), constrained_layout=True)
    ax = fig.add_subplot()
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
    ax.set_ylabel("binary cross-entropy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    if "lr" in history and history["lr"].notna().any():
        ax2 = ax.twinx()
        lr = history.dropna(subset=["lr"])
        ax2.step(lr["epoch"], lr["lr"], where="mid", color="0.6", lw=1, label="learning rate")
        ax2.set_ylabel("learning rate", color="0.4")
        ax2.set_yscale("log")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path
