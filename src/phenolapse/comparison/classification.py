"""Held-out classification (SPEC section 6, task 3): drug vs control and drug identity.

Wells are the unit of held-out evaluation: every profile of a well (all its time points) falls in
the same fold, so a classifier never sees a frame of the well it is tested on. The classifier is
a logistic regression on standardised features, after PCA for wide feature vectors; every step is
fitted on the training folds only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from phenolapse.comparison.selection import CONTROL_ROLE, TREATMENT_ROLE
from phenolapse.lens.metrics import top_k_accuracy

CONTROL_LABEL = "control"


@dataclass
class HeldOutPrediction:
    """Out-of-fold class probabilities of every profile.

    Attributes
    ----------
    classes
        Class names, the column order of ``proba``.
    y
        True class index of each profile.
    proba
        ``(n_profiles, n_classes)`` probabilities predicted by a model that did not see the
        profile's well.
    n_splits
        Number of folds used.
    """

    classes: list[str]
    y: np.ndarray
    proba: np.ndarray
    n_splits: int


def _pipeline(n_features: int, n_train: int, *, pca_components: int, c: float, seed: int
              ) -> Pipeline:
    steps: list[object] = [StandardScaler()]
    n_comp = min(pca_components, n_features, max(n_train - 1, 1))
    if n_features > pca_components and n_comp >= 1:
        steps.append(PCA(n_components=n_comp, random_state=seed))
    steps.append(LogisticRegression(C=c, max_iter=2000))
    return make_pipeline(*steps)


def held_out_predictions(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    n_splits: int = 5,
    pca_components: int = 50,
    c: float = 1.0,
    seed: int = 0,
) -> HeldOutPrediction:
    """Out-of-fold probabilities with folds grouped by ``groups`` (wells) and stratified by label.

    Classes with fewer than two groups cannot be held out and must be removed by the caller;
    the number of folds is capped by the smallest number of groups per class.
    """
    labels = np.asarray(labels).astype(str)
    groups = np.asarray(groups).astype(str)
    classes = sorted(np.unique(labels).tolist())
    y = np.searchsorted(classes, labels)
    groups_per_class = pd.Series(groups).groupby(labels).nunique()
    if len(classes) < 2:
        raise ValueError("classification needs at least two classes")
    if groups_per_class.min() < 2:
        raise ValueError(
            f"class {groups_per_class.idxmin()!r} has one well; every class needs >= 2 wells"
        )
    k = int(min(n_splits, groups_per_class.min()))
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    x = np.asarray(features, dtype=np.float64)
    proba = np.zeros((len(y), len(classes)))
    for train, test in cv.split(x, y, groups):
        model = _pipeline(x.shape[1], len(train), pca_components=pca_components, c=c, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x[train], y[train])
            p = model.predict_proba(x[test])
        proba[np.ix_(test, model.classes_)] = p
    return HeldOutPrediction(classes=classes, y=y, proba=proba, n_splits=k)


def _usable(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    per_class = pd.Series(groups).groupby(labels).transform("nunique").to_numpy()
    return per_class >= 2


def classify_drugs(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    n_splits: int = 5,
    pca_components: int = 50,
    c: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """Drug-vs-control and drug-identity classification on held-out wells.

    Parameters
    ----------
    metadata, features
        Profiles of the selected treatment wells and the negative-control wells (any number of
        time points per well).

    Returns
    -------
    dict
        ``drug_vs_control/balanced_accuracy``, ``drug_vs_control/roc_auc``,
        ``drug_identity/top1_accuracy``, ``drug_identity/top3_accuracy``,
        ``drug_identity/balanced_accuracy``, ``drug_identity/chance_top1``,
        ``drug_identity/n_classes`` (controls are one class; classes with fewer than 2 wells are
        left out). NaN where a task cannot be run.
    """
    role = metadata["Metadata_role"].astype(str).to_numpy()
    keep = np.isin(role, [TREATMENT_ROLE, CONTROL_ROLE])
    meta = metadata.loc[keep].reset_index(drop=True)
    x = np.asarray(features, dtype=np.float64)[keep]
    role = role[keep]
    groups = (
        meta["Metadata_plate"].astype(str) + ":" + meta["Metadata_well"].astype(str)
    ).to_numpy()
    nan = float("nan")
    out: dict[str, float] = {
        "drug_vs_control/balanced_accuracy": nan,
        "drug_vs_control/roc_auc": nan,
        "drug_identity/top1_accuracy": nan,
        "drug_identity/top3_accuracy": nan,
        "drug_identity/balanced_accuracy": nan,
        "drug_identity/chance_top1": nan,
        "drug_identity/n_classes": nan,
    }
    opts = {"n_splits": n_splits, "pca_components": pca_components, "c": c, "seed": seed}

    binary = np.where(role == CONTROL_ROLE, CONTROL_LABEL, "drug")
    ok = _usable(binary, groups)
    if len(np.unique(binary[ok])) == 2:
        pred = held_out_predictions(x[ok], binary[ok], groups[ok], **opts)  # type: ignore[arg-type]
        drug_col = pred.classes.index("drug")
        out["drug_vs_control/balanced_accuracy"] = float(
            balanced_accuracy_score(pred.y, pred.proba.argmax(axis=1))
        )
        out["drug_vs_control/roc_auc"] = float(
            roc_auc_score(pred.y == drug_col, pred.proba[:, drug_col])
        )

    identity = np.where(role == CONTROL_ROLE, CONTROL_LABEL, meta["Metadata_drug"].astype(str))
    ok = _usable(identity, groups)
    n_classes = len(np.unique(identity[ok]))
    if n_classes >= 2:
        pred = held_out_predictions(x[ok], identity[ok], groups[ok], **opts)  # type: ignore[arg-type]
        out["drug_identity/top1_accuracy"] = top_k_accuracy(pred.y, pred.proba, 1)
        out["drug_identity/top3_accuracy"] = top_k_accuracy(pred.y, pred.proba, 3)
        out["drug_identity/balanced_accuracy"] = float(
            balanced_accuracy_score(pred.y, pred.proba.argmax(axis=1))
        )
        counts = np.bincount(pred.y)
        out["drug_identity/chance_top1"] = float(counts.max() / counts.sum())
        out["drug_identity/n_classes"] = float(n_classes)
    return out
