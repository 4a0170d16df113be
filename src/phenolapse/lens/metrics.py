"""Classification metrics and the paired test of plain versus lens accuracy (NumPy/SciPy only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def top_k_accuracy(labels: np.ndarray, scores: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose true class is among the ``k`` highest scores.

    Parameters
    ----------
    labels
        (n,) true class index of every row.
    scores
        (n, n_classes) scores or probabilities; ties are broken towards the lower class index
        (a stable sort), so the result is deterministic.
    k
        How many of the highest-scoring classes count as a hit.

    Returns
    -------
    float
        The accuracy; NaN when there are no rows.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} do not match")
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``(n_classes, n_classes)``: rows are true classes, columns predicted ones."""
    idx = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per class: number of test images, top-1 (recall) and top-3 accuracy."""
    rows = []
    for c, name in enumerate(classes):
        sel = np.asarray(labels) == c
        rows.append(
            {
                "class": name,
                "n_images": int(sel.sum()),
                "top1": top_k_accuracy(labels[sel], scores[sel], 1) if sel.any() else float("nan"),
                "top3": top_k_accuracy(labels[sel], scores[sel], 3) if sel.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def paired_test(plain: np.ndarray, lens: np.ndarray) -> dict[str, float]:
    """Wilcoxon signed-rank and paired t-test of ``lens - plain`` over paired runs.

    Returns the mean difference, the number of pairs and both p-values (NaN when undefined, e.g.
    fewer than two pairs or all differences zero).
    """
    plain = np.asarray(plain, dtype=float)
    lens = np.asarray(lens, dtype=float)
    diff = lens - plain
    out = {
        "n_pairs": float(len(diff)),
        "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
    }
    out["wilcoxon_p"] = float("nan")
    out["ttest_p"] = float("nan")
    if len(diff) >= 2 and np.any(diff != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(lens, plain, zero_method="zsplit").pvalue)
        if np.std(diff) > 0:
            out["ttest_p"] = float(stats.ttest_rel(lens, plain).pvalue)
    return out
