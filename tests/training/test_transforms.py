"""Augmentations and the multi-crop transform against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phenolapse.data.imageio import resize as np_resize
from phenolapse.training.transforms import (
    MultiCropTransform,
    gaussian_blur,
    gaussian_kernel1d,
    hflip,
    random_resized_crop_box,
    resize,
)


def test_crop_box_area_and_bounds() -> None:
    gen = torch.Generator().manual_seed(0)
    fractions = []
    for _ in range(300):
        top, left, h, w = random_resized_crop_box(256, 256, scale=(0.5, 0.75), generator=gen)
        assert top >= 0 and top + h <= 256 and left >= 0 and left + w <= 256
        assert 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02
        fractions.append(h * w / 256**2)
    assert min(fractions) >= 0.49 and max(fractions) <= 0.76
    assert np.mean(fractions) == pytest.approx(0.625, abs=0.03)


def test_whole_frame_crop_is_the_frame() -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        assert random_resized_crop_box(256, 256, scale=(1, 1), generator=gen) == (0, 0, 256, 256)
    # a wide frame falls back to the centre crop of the widest allowed ratio
    assert random_resized_crop_box(100, 300, scale=(1, 1)) == (0, 83, 100, 133)


def test_resize_matches_pil_antialiased_bilinear() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((256, 256), dtype=np.float32)
    ours = resize(torch.from_numpy(img)[None], 128)[0].numpy()
    pil = np_resize(img, 128)
    assert np.abs(ours - pil).max() < 1e-4
    # a constant image stays constant
    const = torch.full((1, 200, 200), 0.3)
    assert torch.allclose(resize(const, 64), torch.full((1, 64, 64), 0.3), atol=1e-6)


def test_flip_and_blur_hand_values() -> None:
    img = torch.arange(6.0).view(1, 2, 3)
    assert hflip(img).tolist() == [[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]
    sigma = 1.0
    k = gaussian_kernel1d(sigma, 3)
    e = math.exp(-0.5)
    assert k.tolist() == pytest.approx([e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)])
    delta = torch.zeros(1, 5, 5)
    delta[0, 2, 2] = 1.0
    out = gaussian_blur(delta, sigma)
    assert torch.allclose(out[0, 1:4, 1:4], torch.outer(k, k), atol=1e-7)
    assert float(out.sum()) == pytest.approx(1.0)
    const = torch.full((2, 8, 8), 0.7)
    assert torch.allclose(gaussian_blur(const, 2.0), const, atol=1e-6)


def test_multicrop_views_shapes_and_determinism() -> None:
    t = MultiCropTransform([(1, (1.0, 1.0)), (1, (0.5, 0.75)), (3, (0.5, 0.5))], size=32)
    assert t.n_views == 5
    img = torch.rand(1, 96, 96)
    before = img.clone()
    a = t(img, torch.Generator().manual_seed(3))
    b = t(img, torch.Generator().manual_seed(3))
    c = t(img, torch.Generator().manual_seed(4))
    assert a.shape == (5, 1, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(img, before)
    # without flip and blur, the whole-frame view is the resized frame
    plain = MultiCropTransform([(1, (1.0, 1.0))], size=32, flip_p=0.0, blur_p=0.0)
    expect = F.interpolate(img[None], size=(32, 32), mode="bilinear", antialias=True)[0]
    assert torch.allclose(plain(img)[0], expect)


def test_flip_and_blur_probabilities() -> None:
    img = torch.rand(1, 64, 64)
    whole = resize(img, 64)
    t = MultiCropTransform([(1, (1.0, 1.0))], size=64, flip_p=0.5, blur_p=0.0)
    gen = torch.Generator().manual_seed(0)
    flips = sum(torch.equal(t(img, gen)[0], hflip(whole)) for _ in range(400))
    assert 160 <= flips <= 240  # binomial(400, 0.5): mean 200, sd 10
    tb = MultiCropTransform([(1, (1.0, 1.0))], size=64, flip_p=0.0, blur_p=0.2)
    blurred = sum(not torch.equal(tb(img, gen)[0], whole) for _ in range(400))
    assert 50 <= blurred <= 110  # binomial(400, 0.2): mean 80, sd 8


@pytest.mark.bad_input("train")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crops": []}, "at least one"),
        ({"crops": [(0, (0.5, 0.5))]}, "number of crops"),
        ({"crops": [(1, (0.0, 0.5))]}, "scale"),
        ({"crops": [(1, (0.8, 0.5))]}, "scale"),
        ({"crops": [(1, (1, 1))], "flip_p": 1.5}, "flip_p"),
        ({"crops": [(1, (1, 1))], "blur_kernel": 4}, "odd"),
        ({"crops": [(1, (1, 1))], "blur_sigma": (0.0, 1.0)}, "blur_sigma"),
    ],
)
def test_multicrop_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultiCropTransform(size=32, **kwargs)
