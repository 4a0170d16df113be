"""Held-out classification: top-k accuracy by hand, separable classes, no leakage across wells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenolapse.comparison.classification import (
    classify_drugs,
    held_out_predictions,
    top_k_accuracy,
)


def test_top_k_hand_computed() -> None:
    proba = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    y = np.array([0, 0, 2, 2])
    assert top_k_accuracy(y, proba, 1) == pytest.approx(0.25)  # only row 0
    assert top_k_accuracy(y, proba, 2) == pytest.approx(0.5)  # rows 0 and 3
    assert top_k_accuracy(y, proba, 3) == pytest.approx(1.0)


def _meta(n_drugs: int, wells_per: int, frames: int, n_ctrl: int) -> pd.DataFrame:
    rows = []
    w = 0
    for d in range(n_drugs + 1):
        for _ in range(wells_per if d < n_drugs else n_ctrl):
            w += 1
            for t in range(frames):
                rows.append(
                    {"Metadata_plate": "P1", "Metadata_well": f"A{w}", "Metadata_time_h": float(t),
                     "Metadata_drug": f"d{d}" if d < n_drugs else "DMSO",
                     "Metadata_role": "treatment" if d < n_drugs else "negative_control"}
                )
    return pd.DataFrame(rows)


def test_separable_classes_score_perfectly() -> None:
    meta = _meta(n_drugs=4, wells_per=3, frames=4, n_ctrl=3)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 30)) * 10
    label = meta["Metadata_drug"].map({**{f"d{i}": i for i in range(4)}, "DMSO": 4}).to_numpy()
    feats = centers[label] + rng.normal(size=(len(meta), 30)) * 0.1
    out = classify_drugs(meta, feats, n_splits=3)
    assert out["drug_identity/top1_accuracy"] == pytest.approx(1.0)
    assert out["drug_identity/top3_accuracy"] == pytest.approx(1.0)
    assert out["drug_vs_control/balanced_accuracy"] == pytest.approx(1.0)
    assert out["drug_vs_control/roc_auc"] == pytest.approx(1.0)
    assert out["drug_identity/n_classes"] == 5
    assert out["drug_identity/chance_top1"] == pytest.approx(12 / 60)


def test_well_identity_does_not_leak() -> None:
    # Features identify the well, not the drug: a split that mixed frames of one well between
    # training and test would score ~1; held out by well, it is at chance.
    meta = _meta(n_drugs=4, wells_per=4, frames=6, n_ctrl=4)
    rng = np.random.default_rng(1)
    well_code = rng.normal(size=(meta["Metadata_well"].nunique(), 40)) * 10
    idx = meta["Metadata_well"].str[1:].astype(int).to_numpy() - 1
    feats = well_code[idx] + rng.normal(size=(len(meta), 40)) * 0.1
    out = classify_drugs(meta, feats, n_splits=4)
    assert out["drug_identity/top1_accuracy"] < 0.45  # chance is 0.2


def test_folds_never_split_a_well() -> None:
    meta = _meta(n_drugs=3, wells_per=3, frames=5, n_ctrl=3)
    labels = meta["Metadata_drug"].to_numpy()
    groups = meta["Metadata_well"].to_numpy()
    rng = np.random.default_rng(2)
    pred = held_out_predictions(rng.normal(size=(len(meta), 5)), labels, groups, n_splits=3)
    assert pred.n_splits == 3
    assert np.allclose(pred.proba.sum(axis=1), 1.0)


@pytest.mark.bad_input("compare")
def test_single_well_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="one well"):
        held_out_predictions(np.zeros((4, 2)), np.array(["a", "a", "b", "b"]),
                             np.array(["w1", "w2", "w3", "w3"]))
