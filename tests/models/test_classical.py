"""Classical intensity/texture features against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from phenolapse.models.classical import (
    CLASSICAL_FEATURE_NAMES,
    classical_feature_names,
    classical_features,
    classical_features_batch,
)


def _named(values: np.ndarray) -> dict[str, float]:
    return dict(zip(CLASSICAL_FEATURE_NAMES, values.tolist(), strict=True))


def test_constant_image() -> None:
    f = _named(classical_features(np.full((16, 16), 0.3, np.float32)))
    assert f["mean"] == pytest.approx(0.3)
    assert f["std"] == pytest.approx(0.0, abs=1e-7)
    assert f["skewness"] == 0 and f["kurtosis"] == 0
    assert f["p50"] == pytest.approx(0.3) and f["p99"] == pytest.approx(0.3)
    assert f["localvar3_mean"] == pytest.approx(0.0, abs=1e-7)
    assert f["gradient_energy"] == pytest.approx(0.0, abs=1e-12)
    assert f["laplacian_energy"] == pytest.approx(0.0, abs=1e-12)
    # one grey level (floor(0.3 * 8) = 2): GLCM is a single spike
    assert f["glcm_d1_contrast"] == 0 and f["glcm_d1_energy"] == pytest.approx(1.0)
    assert f["glcm_d1_homogeneity"] == pytest.approx(1.0) and f["glcm_d1_entropy"] == 0
    assert f["glcm_d1_correlation"] == 1.0


def test_stripes_hand_computed() -> None:
    # vertical stripes: columns alternate 0 and 1 (grey levels 0 and 7 of 8)
    img = np.tile(np.array([0.0, 1.0], np.float32), (16, 8))
    f = _named(classical_features(img))
    assert f["mean"] == pytest.approx(0.5)
    assert f["std"] == pytest.approx(0.5)
    assert f["kurtosis"] == pytest.approx(-2.0)  # two-point distribution
    assert f["min"] == 0 and f["max"] == 1
    # d=1: horizontal pairs always differ by 7 levels, vertical pairs never, diagonals always
    # -> contrast = (49 + 49 + 0 + 49) / 4
    assert f["glcm_d1_contrast"] == pytest.approx(49 * 3 / 4)
    assert f["glcm_d1_dissimilarity"] == pytest.approx(7 * 3 / 4)
    assert f["glcm_d1_homogeneity"] == pytest.approx((3 * 0.02 + 1) / 4)
    # d=3 (odd): the same pattern as d=1
    assert f["glcm_d3_contrast"] == pytest.approx(49 * 3 / 4)
    # local variance in a 3x3 window of stripes 0,1,0 or 1,0,1: 2/9 everywhere
    assert f["localvar3_mean"] == pytest.approx(2 / 9, rel=1e-5)
    assert f["localvar3_std"] == pytest.approx(0.0, abs=1e-6)


def test_ramp_gradient() -> None:
    # horizontal ramp with step 0.01 per pixel: Sobel/8 gives the derivative 0.01 inside
    img = np.tile(np.arange(32, dtype=np.float32) * 0.01, (32, 1))
    f = classical_features_batch(img[None])[0]
    named = _named(f)
    assert named["gradient_mean"] == pytest.approx(0.01, rel=0.05)
    assert named["mean"] == pytest.approx(0.155, rel=1e-5)


def test_batch_multichannel_and_inputs_untouched() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.uniform(size=(3, 20, 20, 2)).astype(np.float32)
    copy = imgs.copy()
    batch = classical_features_batch(imgs)
    n = len(CLASSICAL_FEATURE_NAMES)
    assert batch.shape == (3, 2 * n)
    assert classical_feature_names(2)[n] == "ch1_mean"
    np.testing.assert_allclose(batch[1], classical_features(imgs[1]), rtol=1e-6)
    np.testing.assert_allclose(batch[1, n:], classical_features(imgs[1, :, :, 1]), rtol=1e-6)
    np.testing.assert_array_equal(imgs, copy)


@pytest.mark.bad_input("compare")
def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classical_features(np.full((16, 16), 2.0))
    with pytest.raises(ValueError, match="NaN"):
        classical_features(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="8x8"):
        classical_features(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        classical_features(np.zeros(16))
