"""The default ``stats`` ConvAE features: position-free, size-free, batch-independent."""

from __future__ import annotations

import numpy as np
import torch

from phenolapse.models.base import ConvAEExtractor
from phenolapse.models.convae import ConvAE, stats_encoder_features, stats_feature_count


def _blob_image(cy: int, cx: int, size: int = 128) -> torch.Tensor:
    yy, xx = np.mgrid[:size, :size]
    img = 0.5 + 0.3 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0**2))
    img -= 0.2 * np.exp(-((yy - cy) ** 2 + (xx - cx - 9) ** 2) / (2 * 3.0**2))
    return torch.tensor(img, dtype=torch.float32)[None, None]


def test_same_cell_elsewhere_gives_the_same_stats_but_another_latent() -> None:
    torch.manual_seed(0)
    model = ConvAE().eval()
    a, b = _blob_image(40, 40), _blob_image(80, 72)  # shifts by multiples of 4 (two max-pools)
    with torch.no_grad():
        fa = stats_encoder_features(model.encoder, a)
        fb = stats_encoder_features(model.encoder, b)
        la, lb = model.features(a), model.features(b)
    assert fa.shape == (1, 40) == (1, stats_feature_count(model.encoder, 1))
    np.testing.assert_allclose(fa.numpy(), fb.numpy(), rtol=1e-4, atol=1e-6)
    # the flattened latent is a map of where the cell lies: it moves with the cell
    assert float(torch.linalg.norm(la - lb)) > 1e3 * float(torch.linalg.norm(fa - fb))


def test_image_statistics_and_batch_independence() -> None:
    torch.manual_seed(1)
    model = ConvAE().eval()
    x = torch.rand(5, 1, 64, 64)
    with torch.no_grad():
        batch = stats_encoder_features(model.encoder, x)
        single = torch.cat([stats_encoder_features(model.encoder, x[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(batch.numpy(), single.numpy(), rtol=1e-5, atol=1e-6)
    flat = x.reshape(5, -1).numpy()
    np.testing.assert_allclose(batch[:, 0].numpy(), flat.mean(1), rtol=1e-5)
    np.testing.assert_allclose(batch[:, 1].numpy(), flat.std(1, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(
        batch[:, 2:7].numpy(), np.quantile(flat, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1).T, rtol=1e-5
    )


def test_extractor_stats_mode_counts_channels() -> None:
    ex = ConvAEExtractor(ConvAE(in_channels=3), input_size=64, features="stats")
    assert ex.n_features == 8 * 3 + 32
    with torch.no_grad():
        assert ex(torch.rand(2, 3, 64, 64)).shape == (2, ex.n_features)
    assert ex.describe()["convae_features"] == "stats"
