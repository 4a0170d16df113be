"""The two-view objectives against hand computations and their defining behaviour."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from phenolapse.models.resnet import SmallResNet
from phenolapse.training.objectives import DINO, build_objective, nt_xent, vicreg


def test_nt_xent_matches_the_formula_on_two_pairs() -> None:
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # view 0's partner (view 2) has cosine 1, the two others cosine 0: -log(e^2 / (e^2 + 2))
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0)))
    assert math.isclose(float(nt_xent(z1, z2, temperature=t)), expected, rel_tol=1e-6)


def test_nt_xent_is_lower_for_true_partners_than_for_shuffled_ones() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 16, generator=g)
    noisy = z + 0.1 * torch.randn(32, 16, generator=g)
    matched = float(nt_xent(z, noisy))
    shuffled = float(nt_xent(z, noisy[torch.randperm(32, generator=g)]))
    assert matched < 0.2 * shuffled
    assert matched < math.log(63)  # chance: uniform over the 63 other views


def test_vicreg_terms() -> None:
    g = torch.Generator().manual_seed(1)
    # unit-variance, uncorrelated, identical views: only the tiny covariance noise remains
    z = torch.randn(4096, 8, generator=g)
    z = (z - z.mean(dim=0)) / z.std(dim=0)
    assert float(vicreg(z, z)) < 0.05
    # collapsed embeddings pay the variance hinge: 25 * (1 - ~0.01) on both views / 2
    c = torch.zeros(64, 8)
    assert math.isclose(float(vicreg(c, c)), 25 * (1 - math.sqrt(1e-4)), rel_tol=1e-3)
    # the invariance term is 25 x MSE
    shifted = z + 0.5
    inv = float(vicreg(z, shifted)) - float(vicreg(z, z))
    assert math.isclose(inv, 25 * 0.25, rel_tol=0.05)


def test_dino_teacher_is_a_moving_average_of_the_student() -> None:
    torch.manual_seed(0)
    enc = SmallResNet(widths=(4, 8))
    obj = build_objective("dino", enc.n_features)
    assert isinstance(obj, DINO)
    obj.bind(enc)
    x1, x2 = torch.rand(6, 1, 32, 32), torch.rand(6, 1, 32, 32)
    obj.set_views(x1, x2)
    loss = obj.loss(enc(x1), enc(x2))
    assert torch.isfinite(loss) and loss > 0
    assert obj.teacher_encoder is not None
    before = [p.clone() for p in obj.teacher_encoder.parameters()]
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    obj.after_step(enc)
    for old, new, student in zip(before, obj.teacher_encoder.parameters(), enc.parameters(),
                                 strict=True):
        torch.testing.assert_close(new, 0.99 * old + 0.01 * student)
    # the centre moved towards the teacher outputs' mean
    assert obj.center.abs().sum() > 0


def test_simclr_head_projects_and_normalises() -> None:
    obj = build_objective("simclr", 10, temperature=0.1)
    f = torch.randn(8, 10)
    loss = obj.loss(f, f)
    assert torch.isfinite(loss)
    # identical views: each view's partner is its most similar other view
    z = F.normalize(obj.head(f), dim=1)
    assert torch.allclose(z.norm(dim=1), torch.ones(8))
