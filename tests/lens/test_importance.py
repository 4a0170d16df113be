"""Importance maps, example mining and mask overlap on known arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phenolapse.lens.importance import (
    importance_map,
    integrated_gradients,
    mask_overlap,
    mine_examples,
)
from phenolapse.lens.model import LinearHead, extract_features, n_features
from phenolapse.models.convae import ConvAE


def test_importance_map_formula() -> None:
    ae = np.zeros((1, 2, 2, 2), np.float32)
    lens = np.array([[[[0.25, 0.0], [1.0, 0.5]], [[0.25, 0.0], [0.0, 0.5]]]], np.float32)
    out = importance_map(ae, lens)
    expected = np.array([[[0.125, 0.0], [0.5, 0.5**1.5]]])  # 0.25^1.5 = 0.125; mean of (1, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(importance_map(lens, ae, exponent=2.0)[0, 1, 0], 0.5)
    with pytest.raises(ValueError):
        importance_map(ae, lens[:, :1])
    assert lens[0, 0, 1, 0] == 1.0  # inputs untouched


def test_mining_rules() -> None:
    # classes: 0 = DMSO (control), 1 and 2 drugs
    y = np.array([1, 2, 1, 2, 0])
    plain = np.array(
        [
            [0.8, 0.1, 0.1],  # drug called control -> lens right: rule a
            [0.1, 0.8, 0.1],  # wrong drug -> lens right: rule b
            [0.2, 0.6, 0.2],  # right, lens confidence 0.6 -> 0.95 (> 0.5 gain? no, 0.35)
            [0.3, 0.1, 0.6],  # right, 0.6 -> ... see lens
            [0.9, 0.05, 0.05],  # control right in both
        ]
    )
    lens = np.array(
        [
            [0.1, 0.8, 0.1],
            [0.1, 0.2, 0.7],
            [0.0, 0.95, 0.05],
            [0.0, 0.0, 1.0],  # gain 0.4 < 0.5: not rule c
            [0.9, 0.05, 0.05],
        ]
    )
    plain2 = plain.copy()
    plain2[3] = [0.45, 0.1, 0.45]  # tie broken to class 0 -> plain says control: rule a
    ex = mine_examples(y, plain, lens, control_classes=[0], margin=0.5)
    assert ex[["index", "rule"]].values.tolist() == [[0, "a"], [1, "b"]]
    ex_c = mine_examples(y, plain, lens, control_classes=[0], margin=0.3)
    assert ex_c[ex_c["rule"] == "c"]["index"].tolist() == [3, 2]  # sorted by gain 0.4, 0.35
    ex2 = mine_examples(y, plain2, lens, control_classes=[0])
    assert sorted(ex2[ex2["rule"] == "a"]["index"].tolist()) == [0, 3]


def test_mask_overlap() -> None:
    maps = np.zeros((2, 4, 4))
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    maps[0, :2] = 1.0
    maps[0, 2:] = 0.25
    maps[1] = 0.3  # empty mask -> NaN
    ov = mask_overlap(maps, masks)
    assert ov.loc[0, "inside"] == 1.0 and ov.loc[0, "outside"] == 0.25
    assert ov.loc[0, "ratio"] == 4.0 and ov.loc[0, "auc"] == 1.0
    assert np.isnan(ov.loc[1, "auc"])
    flat = mask_overlap(np.ones((1, 4, 4)), masks[:1])
    assert flat.loc[0, "auc"] == 0.5


def test_integrated_gradients_completeness() -> None:
    torch.manual_seed(0)
    ae = ConvAE().eval()
    head = LinearHead(n_features(ae, 8), 2)
    x = np.random.default_rng(0).uniform(size=(2, 1, 8, 8)).astype(np.float32)
    targets = np.array([0, 1])
    signed = integrated_gradients(ae, head, x, targets, steps=64, signed=True)
    assert signed.shape == (2, 8, 8)
    with torch.no_grad():
        scores = head(extract_features(ae, torch.as_tensor(x), mode="latent"))
        base = head(extract_features(ae, torch.zeros_like(torch.as_tensor(x)), mode="latent"))
    delta = (scores - base)[np.arange(2), targets].numpy()
    assert np.abs(delta).min() > 1e-3  # the check below is not 0 == 0
    # completeness: the attributions add up to F(x) - F(baseline) of the target class, up to
    # 1 % of their total mass (positive and negative parts partly cancel)
    mass = np.abs(signed).sum(axis=(1, 2))
    np.testing.assert_array_less(np.abs(signed.sum(axis=(1, 2)) - delta), 0.01 * mass)
    assert (np.abs(mass - delta) > 0.1 * mass).all()  # the absolute map would fail it
    # both signs occur, and the default map is |IG| (one channel: the absolute signed map)
    assert (signed > 0).any() and (signed < 0).any()
    default = integrated_gradients(ae, head, x, targets, steps=64)
    np.testing.assert_allclose(default, np.abs(signed), rtol=1e-5, atol=1e-7)
