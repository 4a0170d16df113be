"""Top-k accuracy, confusion matrix and paired tests against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from phenolapse.comparison.classification import top_k_accuracy
from phenolapse.lens.metrics import confusion_matrix, paired_test, per_class_accuracy


def test_topk_hand_example() -> None:
    scores = np.array(
        [
            [0.1, 0.5, 0.2, 0.2],  # true 1: top-1 right
            [0.4, 0.3, 0.2, 0.1],  # true 2: rank 3 -> top-3 only
            [0.1, 0.2, 0.3, 0.4],  # true 0: rank 4 -> wrong
            [0.3, 0.3, 0.2, 0.2],  # true 1: tie with class 0, class 0 wins -> rank 2
        ]
    )
    y = np.array([1, 2, 0, 1])
    assert top_k_accuracy(y, scores, 1) == 0.25
    assert top_k_accuracy(y, scores, 2) == 0.5
    assert top_k_accuracy(y, scores, 3) == 0.75
    assert top_k_accuracy(y, scores, 10) == 1.0
    with pytest.raises(ValueError):
        top_k_accuracy(y[:2], scores, 1)


def test_confusion_and_per_class() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    scores = np.eye(3)[[0, 1, 1, 2, 0]]
    pc = per_class_accuracy(scores, np.array([0, 0, 1, 2, 2]), ["a", "b", "c"])
    assert pc["top1"].tolist() == [0.5, 1.0, 0.5]
    assert pc["n_images"].tolist() == [2, 1, 2]


def test_paired_test() -> None:
    plain = np.array([0.50, 0.52, 0.48, 0.55, 0.51, 0.49])
    lens = plain + np.array([0.05, 0.04, 0.06, 0.05, 0.03, 0.07])
    out = paired_test(plain, lens)
    assert out["mean_difference"] == pytest.approx(0.05)
    assert out["wilcoxon_p"] == pytest.approx(0.03125)  # exact two-sided, 6 positive differences
    assert out["ttest_p"] < 0.001
    same = paired_test(plain, plain)
    assert np.isnan(same["wilcoxon_p"]) and same["mean_difference"] == 0
