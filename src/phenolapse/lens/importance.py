"""Where the lens changes the image: importance maps, example mining, attributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from phenolapse.lens.model import FeatureMode, extract_features
from phenolapse.models.convae import ConvAE

MINING_RULES = {
    "a": "control fixed: the plain head called a drug image a control; the lens head got it right",
    "b": "wrong drug fixed: the plain head named another drug; the lens head got it right",
    "c": "more confident: both right, the lens head's confidence higher by more than the margin",
}


def importance_map(
    ae_reconstruction: np.ndarray, lens_output: np.ndarray, *, exponent: float = 1.5
) -> np.ndarray:
    """``|AE(x) - L(x)| ** exponent``, averaged over channels: ``(..., C, H, W) -> (..., H, W)``.

    The exponent (1.5 in the reference) raises the contrast of the map.
    """
    a = np.asarray(ae_reconstruction, dtype=np.float64)
    b = np.asarray(lens_output, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"reconstruction {a.shape} and lens output {b.shape} differ in shape")
    if a.ndim < 3:
        raise ValueError(f"expected (..., C, H, W) arrays, got shape {a.shape}")
    return (np.abs(a - b) ** exponent).mean(axis=-3).astype(np.float32)


def mine_examples(
    labels: np.ndarray,
    plain_proba: np.ndarray,
    lens_proba: np.ndarray,
    *,
    control_classes: list[int],
    margin: float = 0.5,
) -> pd.DataFrame:
    """Test images where the lens helps, by the three rules of :data:`MINING_RULES`.

    Returns one row per mined image: ``index, rule, label, plain_pred, lens_pred,
    plain_confidence, lens_confidence`` (confidence = probability of the true class), sorted by rule
    and by decreasing gain in confidence.
    """
    labels = np.asarray(labels)
    plain_pred = plain_proba.argmax(axis=1)
    lens_pred = lens_proba.argmax(axis=1)
    rows = np.arange(len(labels))
    plain_conf = plain_proba[rows, labels]
    lens_conf = lens_proba[rows, labels]
    is_drug = ~np.isin(labels, control_classes)
    lens_right = lens_pred == labels
    plain_right = plain_pred == labels
    rule_a = is_drug & np.isin(plain_pred, control_classes) & lens_right
    rule_b = is_drug & ~plain_right & ~np.isin(plain_pred, control_classes) & lens_right
    rule_c = plain_right & lens_right & (lens_conf - plain_conf > margin)
    frames = []
    for rule, sel in (("a", rule_a), ("b", rule_b), ("c", rule_c)):
        idx = np.flatnonzero(sel)
        frames.append(
            pd.DataFrame(
                {
                    "index": idx,
                    "rule": rule,
                    "label": labels[idx],
                    "plain_pred": plain_pred[idx],
                    "lens_pred": lens_pred[idx],
                    "plain_confidence": plain_conf[idx],
                    "lens_confidence": lens_conf[idx],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["gain"] = out["lens_confidence"] - out["plain_confidence"]
    return out.sort_values(["rule", "gain"], ascending=[True, False], kind="stable").reset_index(
        drop=True
    )


def mask_overlap(maps: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """Per map: mean value inside and outside its boolean mask, their ratio and a ranking AUC.

    The AUC is the probability that a random pixel inside the mask outranks one outside
    (0.5: the map ignores the mask). Maps with an empty or full mask get NaN.
    """
    from scipy.stats import rankdata

    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ in shape")
    rows = []
    for m, k in zip(maps.reshape(len(maps), -1), masks.reshape(len(masks), -1), strict=True):
        n_in, n_out = int(k.sum()), int((~k).sum())
        if n_in == 0 or n_out == 0:
            rows.append({"inside": np.nan, "outside": np.nan, "ratio": np.nan, "auc": np.nan})
            continue
        inside, outside = float(m[k].mean()), float(m[~k].mean())
        ranks = rankdata(m)
        auc = (ranks[k].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out)
        ratio = inside / outside if outside > 0 else np.nan
        rows.append({"inside": inside, "outside": outside, "ratio": ratio, "auc": float(auc)})
    return pd.DataFrame(rows)


def integrated_gradients(
    extractor: nn.Module,
    head: torch.nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    lens: ConvAE | None = None,
    feature_mode: FeatureMode = "latent",
    orientations: int = 1,
    steps: int = 16,
    signed: bool = False,
) -> np.ndarray:
    """Integrated-gradients attribution of the true class: ``|IG|`` summed over channels, (n, H, W).

    The baseline is a black image; with a lens, the attributed model is ``head(F(L(x)))``.
    With ``signed=True`` the signed attributions are summed over channels instead; over all
    pixels they add up to the target score at the image minus that at the baseline
    (completeness), up to the error of the ``steps``-point path integral.
    """
    from captum.attr import IntegratedGradients

    def forward(x: torch.Tensor) -> torch.Tensor:
        if lens is not None:
            x = lens(x)
        feats = extract_features(extractor, x, mode=feature_mode, orientations=orientations)
        out: torch.Tensor = head(feats)
        return out

    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).clone().requires_grad_(True)
    t = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    ig = IntegratedGradients(forward)
    attr = ig.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=steps)
    values = attr.detach().numpy()
    return (values if signed else np.abs(values)).sum(axis=1).astype(np.float32)
