"""The lens's loss, gradient flow and heads, on tiny random images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phenolapse.lens.model import (
    LinearHead,
    extract_features,
    lens_losses,
    make_lens,
    n_features,
    predict_proba,
    train_head,
    train_lens,
)
from phenolapse.models.convae import ConvAE


@pytest.fixture(scope="module")
def tiny_data() -> tuple[ConvAE, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    ae = ConvAE().eval()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.95, size=(24, 1, 16, 16)).astype(np.float32)
    y = np.arange(24) % 3
    x[y == 1] *= 0.5  # a class-dependent difference the head can use
    return ae, x, y


def _train(ae: ConvAE, x: np.ndarray, y: np.ndarray, **kw: object) -> tuple[ConvAE, LinearHead]:
    lens, head, _ = train_lens(
        ae,
        x,
        y,
        n_classes=3,
        epochs=2,
        batch_size=8,
        seed=3,
        progress=False,
        **kw,  # type: ignore[arg-type]
    )
    return lens, head


def _flat(m: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().ravel() for p in m.parameters()])


def test_gradients_reach_the_lens_only_when_not_detached(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, y = tiny_data
    before = _flat(ae).clone()
    lens0, head0 = _train(ae, x, y, coef=0.0)
    lens_pos, _ = _train(ae, x, y, coef=5.0)
    lens_neg, _ = _train(ae, x, y, coef=-5.0)
    lens_det, head_det = _train(ae, x, y, coef=5.0, detach=True)
    w0, wp, wn, wd = _flat(lens0), _flat(lens_pos), _flat(lens_neg), _flat(lens_det)
    # The lens moved away from its initialisation (reconstruction alone trains it).
    assert (w0 - before).abs().max() > 1e-4
    # With lambda != 0 the classification gradient changes the lens's path; regularised and
    # adversarial lenses differ from each other as well.
    assert (wp - w0).abs().max() > 1e-5
    assert (wn - w0).abs().max() > 1e-5
    assert (wp - wn).abs().max() > 1e-5
    # The reference's detached term leaves the lens exactly where lambda = 0 leaves it.
    torch.testing.assert_close(wd, w0, rtol=0, atol=1e-6)
    # Heads still learn in both cases, identically.
    torch.testing.assert_close(_flat(head_det), _flat(head0), rtol=0, atol=1e-6)
    # The autoencoder passed in is never modified.
    torch.testing.assert_close(_flat(ae), before, rtol=0, atol=0)


def test_lens_gradient_of_one_batch(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, y = tiny_data
    xt, yt = torch.as_tensor(x[:8]), torch.as_tensor(y[:8])
    extractor = make_lens(ae)
    for p in extractor.parameters():
        p.requires_grad_(False)
    head = LinearHead(n_features(ae, 16), 3)

    def lens_grad(coef: float, detach: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lens = make_lens(ae)
        head.zero_grad()
        total, _bce, ce, _ = lens_losses(lens, extractor, head, xt, yt, coef=coef, detach=detach)
        total.backward()
        g = torch.cat([p.grad.ravel() for p in lens.parameters()])  # type: ignore[union-attr]
        gh = torch.cat([p.grad.ravel().clone() for p in head.parameters()])  # type: ignore[union-attr]
        return g, gh, ce.detach()

    g0, gh0, _ = lens_grad(0.0, False)
    g2, gh2, _ = lens_grad(2.0, False)
    g1, _, _ = lens_grad(1.0, False)
    gd, ghd, _ = lens_grad(2.0, True)
    # d/dL [BCE + c * CE] is linear in c: the CE part is g1 - g0 and is not zero.
    assert (g1 - g0).abs().max() > 1e-7
    scale = float((g1 - g0).abs().max())
    torch.testing.assert_close(g2 - g0, 2 * (g1 - g0), rtol=1e-2, atol=1e-2 * scale)
    torch.testing.assert_close(gd, g0)
    # The head always gets exactly dCE, whatever lambda is.
    torch.testing.assert_close(gh2, gh0)
    torch.testing.assert_close(ghd, gh0)


def test_head_returns_logits_and_loss_is_single_softmax() -> None:
    torch.manual_seed(1)
    head = LinearHead(5, 4)
    assert not any(isinstance(m, torch.nn.Softmax | torch.nn.LogSoftmax) for m in head.modules())
    f = torch.randn(6, 5)
    logits = head(f)
    torch.testing.assert_close(logits, head.linear(f))
    assert not torch.allclose(logits.sum(1), torch.ones(6))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    by_hand = -(logits - logits.logsumexp(1, keepdim=True))[torch.arange(6), y].mean()
    torch.testing.assert_close(F.cross_entropy(logits, y), by_hand)


def test_head_standardises_features() -> None:
    mean, std = np.array([1.0, -2.0]), np.array([2.0, 0.5])
    head = LinearHead(2, 2, mean=mean, std=std)
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2))
        head.linear.bias.zero_()
    out = head(torch.tensor([[3.0, -1.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0]]))


def test_head_does_not_blow_up_constant_features() -> None:
    # feature 0 varies; feature 1 is constant up to rounding noise at level 0.5
    mean = np.array([0.0, 0.5], np.float32)
    std = np.array([1.0, 1e-7], np.float32)
    head = LinearHead(2, 2, mean=mean, std=std)
    assert head.std[0].item() == 1.0
    # floor: 1% of (level + median spread) = 0.01 * (0.5 + 0.5) -> a 0.01 change is ~1 unit
    assert head.std[1].item() == pytest.approx(0.01, rel=1e-3)


def test_train_head_separates_linear_classes() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(0, 0.5, size=(120, 2))
    head = train_head(x, y, n_classes=3, epochs=40, lr=0.05, seed=0)
    with torch.no_grad():
        pred = head(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    assert (pred == y).mean() > 0.97


@pytest.mark.bad_input("lens")
def test_feature_modes(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, _ = tiny_data
    xt = torch.as_tensor(x[:2])
    assert extract_features(ae, xt, mode="latent").shape == (2, n_features(ae, 16))
    pooled = extract_features(ae, xt, mode="pooled")
    assert pooled.shape == (2, 456) == (2, n_features(ae, 16, mode="pooled"))
    with pytest.raises(ValueError, match="feature mode"):
        extract_features(ae, xt, mode="bogus")  # type: ignore[arg-type]
    head = LinearHead(n_features(ae, 16), 3)
    p = predict_proba(ae, head, x[:5], lens=make_lens(ae))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


@pytest.mark.bad_input("lens")
def test_random_lens_init_differs(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, _, _ = tiny_data
    a, b = make_lens(ae, init="random", seed=1), make_lens(ae, init="random", seed=1)
    torch.testing.assert_close(_flat(a), _flat(b))
    assert (_flat(a) - _flat(ae)).abs().max() > 1e-3
    torch.testing.assert_close(_flat(make_lens(ae)), _flat(ae))
    with pytest.raises(ValueError, match="init"):
        make_lens(ae, init="other")


def _d4(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    r = torch.rot90(x, k, (-2, -1))
    return r.flip(-1) if flip else r


def test_orientation_averaged_pooled_features_ignore_rotations(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, _ = tiny_data
    xt = torch.as_tensor(x[:4])
    single = extract_features(ae, xt, mode="pooled")
    avg = extract_features(ae, xt, mode="pooled", orientations=8)
    assert avg.shape == single.shape
    # One orientation differs from another (the encoder is not rotation-invariant) ...
    assert (extract_features(ae, _d4(xt, 1, False), mode="pooled") - single).abs().max() > 1e-3
    # ... but the average over all 8 is the same whichever way the image lies.
    for k in range(4):
        for flip in (False, True):
            turned = extract_features(ae, _d4(xt, k, flip), mode="pooled", orientations=8)
            torch.testing.assert_close(turned, avg, rtol=1e-5, atol=1e-5)
    # The average is the mean of the 8 single-orientation feature vectors.
    views = [extract_features(ae, _d4(xt, k, f), mode="pooled") for k in range(4) for f in (0, 1)]
    torch.testing.assert_close(avg, torch.stack(views).mean(0), rtol=1e-5, atol=1e-5)


def test_orientation_averaged_latent_turns_with_the_image(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, _ = tiny_data
    xt = torch.as_tensor(x[:3])
    avg = extract_features(ae, xt, mode="latent", orientations=8).reshape(3, 4, 4, 4)
    turned = extract_features(ae, _d4(xt, 1, True), mode="latent", orientations=8)
    # The latent map keeps its place in the field: turning the image turns the averaged map.
    torch.testing.assert_close(turned.reshape(3, 4, 4, 4), _d4(avg, 1, True), rtol=1e-5, atol=1e-5)


@pytest.mark.bad_input("lens")
def test_orientations_bad_values(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, _ = tiny_data
    with pytest.raises(ValueError, match="orientations must be 1 or 8"):
        extract_features(ae, torch.as_tensor(x[:2]), mode="pooled", orientations=4)
    with pytest.raises(ValueError, match="square"):
        extract_features(ae, torch.rand(2, 1, 16, 12), mode="pooled", orientations=8)


def test_lens_trains_on_orientation_averaged_features(tiny_data) -> None:  # type: ignore[no-untyped-def]
    ae, x, y = tiny_data
    lens1, _ = _train(ae, x, y, coef=5.0, feature_mode="pooled")
    lens8, head8 = _train(ae, x, y, coef=5.0, feature_mode="pooled", orientations=8)
    lens0, _ = _train(ae, x, y, coef=0.0, feature_mode="pooled", orientations=8)
    # The classification gradient through the averaged features reaches the lens, and differs
    # from the one through single-orientation features.
    assert (_flat(lens8) - _flat(lens0)).abs().max() > 1e-5
    assert (_flat(lens8) - _flat(lens1)).abs().max() > 1e-5
    p = predict_proba(ae, head8, x[:5], lens=lens8, feature_mode="pooled", orientations=8)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
