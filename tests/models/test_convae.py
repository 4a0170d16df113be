"""The ConvAE: architecture, published weights, reference encoder output, safe loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from phenolapse.data.imageio import PreprocessConfig, load_for_model
from phenolapse.errors import CheckpointError, ConfigError
from phenolapse.models.convae import ConvAE, load_convae, save_convae


def _weights(shared_data: Path) -> Path:
    path = shared_data / "pheno-ml" / "trained_model.torch"
    if not path.is_file():
        pytest.skip(f"published weights {path} are absent")
    return path


def _spec_encoder(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """SPEC section 4 encoder written with plain torch functions."""
    def conv(t: torch.Tensor, i: int) -> torch.Tensor:
        return F.conv2d(t, sd[f"encoder.{i}.weight"], sd[f"encoder.{i}.bias"], padding=1)

    x = F.max_pool2d(F.relu(conv(x, 0)), 2)
    x = F.max_pool2d(F.relu(conv(x, 3)), 2)
    x = F.relu(conv(x, 6))
    return conv(x, 8)


def _spec_decoder(z: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """SPEC section 4 decoder written with plain torch functions."""

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="nearest")

    def deconv(t: torch.Tensor, i: int) -> torch.Tensor:
        w, b = sd[f"decoder.{i}.weight"], sd[f"decoder.{i}.bias"]
        return F.conv_transpose2d(t, w, b, padding=1)

    z = up(F.relu(deconv(z, 0)))
    z = up(F.relu(deconv(z, 3)))
    z = F.relu(deconv(z, 6))
    return torch.sigmoid(deconv(z, 8))


def test_parameter_count_and_shapes() -> None:
    model = ConvAE()
    assert sum(p.numel() for p in model.parameters()) == 189_381
    x = torch.rand(2, 1, 128, 128)
    assert model.encode(x).shape == (2, 4, 32, 32)
    assert model.features(x).shape == (2, 4096)
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_published_weights_load_unchanged(shared_data: Path) -> None:
    path = _weights(shared_data)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert len(raw) == 16
    model = load_convae(path)
    state = model.state_dict()
    assert set(state) == set(raw)
    for key, value in raw.items():
        assert torch.equal(state[key], value.float()), key


def test_hct15_encoder_matches_spec_and_reconstructs(shared_data: Path) -> None:
    weights = _weights(shared_data)
    image_path = shared_data / "pheno-ml" / "HCT15_example.jpg"
    if not image_path.is_file():
        pytest.skip(f"{image_path} is absent")
    model = load_convae(weights)
    raw_sd = torch.load(weights, map_location="cpu", weights_only=True)
    sd = {k: v.float() for k, v in raw_sd.items()}

    # package path: imageio (antialiased bilinear) + ConvAE
    x_pkg = torch.from_numpy(load_for_model(image_path, PreprocessConfig(crop_size=256)))
    assert x_pkg.shape == (1, 1, 128, 128)
    # reference path: plain torch resize + functional re-statement of the architecture
    raw = np.asarray(Image.open(image_path).convert("L"), dtype=np.float32) / 255.0
    assert raw.shape == (256, 256)
    x_ref = F.interpolate(
        torch.from_numpy(raw)[None, None], size=(128, 128), mode="bilinear", antialias=True
    )
    with torch.no_grad():
        z_pkg = model.encode(x_pkg)
        z_ref = _spec_encoder(x_ref, sd)
        recon = model(x_pkg)
        recon_ref = _spec_decoder(z_ref, sd)
    assert z_pkg.shape == (1, 4, 32, 32)
    cos = F.cosine_similarity(z_pkg.flatten(), z_ref.flatten(), dim=0)
    assert float(cos) >= 0.999
    mse = float(((recon - x_pkg) ** 2).mean())
    assert 5e-4 <= mse <= 1.2e-3, mse
    assert float(((recon_ref - x_ref) ** 2).mean()) == pytest.approx(mse, rel=0.05)
    # the input varies far more than the reconstruction error
    assert float(x_pkg.var()) > 2 * mse


@pytest.mark.bad_input("embed")
def test_in_channels_three_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ConvAE(in_channels=3)
    x = torch.rand(2, 3, 64, 64)
    assert model(x).shape == (2, 3, 64, 64)
    assert model.features(x).shape == (2, 4 * 16 * 16)
    path = save_convae(model, tmp_path / "m3.pt", epoch=3)
    loaded = load_convae(path)
    assert loaded.in_channels == 3
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(CheckpointError, match="3-channel"):
        load_convae(path, in_channels=1)


@pytest.mark.bad_input("embed")
def test_wrong_shape_checkpoint_names_tensor(tmp_path: Path) -> None:
    state = ConvAE().state_dict()
    state["encoder.3.weight"] = torch.zeros(64, 100, 3, 3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"encoder\.3\.weight") as info:
        load_convae(path)
    assert "(64, 100, 3, 3)" in str(info.value) and "(64, 128, 3, 3)" in str(info.value)

    del state["encoder.3.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing"):
        load_convae(path)


@pytest.mark.bad_input("embed")
def test_non_weights_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.pt"):
        load_convae(text)
    other = tmp_path / "dict.pt"
    torch.save({"learning_rate": 0.1, "name": "x"}, other)
    with pytest.raises(CheckpointError, match="not a ConvAE weights file"):
        load_convae(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_convae(tmp_path / "missing.pt")


class _Payload:
    """Unpickling this object would create a folder (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


@pytest.mark.bad_input("embed")
def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"model": _Payload(marker)}, fh, protocol=2)
    with pytest.raises(CheckpointError, match=r"refused|cannot read"):
        load_convae(path)
    evil_zip = tmp_path / "evil_zip.pt"
    torch.save({"model": _Payload(marker)}, evil_zip)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_convae(evil_zip)
    assert not marker.exists()


def test_pooled_extractor_is_position_free() -> None:
    from phenolapse.models.base import ConvAEExtractor
    from phenolapse.models.random_init import random_convae, random_convae_extractor

    model = random_convae(seed=3)
    pooled = ConvAEExtractor(model, input_size=128, features="pooled")
    latent = ConvAEExtractor(model, input_size=128)
    assert pooled.n_features == 456 and latent.n_features == 4 * 32 * 32
    assert pooled.describe()["convae_features"] == "pooled"
    x = torch.zeros(1, 1, 128, 128)  # a cell far from the borders, on an empty background
    x[0, 0, 40:52, 48:58] = torch.linspace(0.2, 1.0, 10)
    shifted = torch.roll(x, shifts=(16, 20), dims=(2, 3))  # multiples of the 4-px pooling grid
    with torch.no_grad():
        a, b = pooled(x), pooled(shifted)
        assert a.shape == (1, 456)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert not torch.allclose(latent(x), latent(shifted))
        torch.testing.assert_close(a, model.pooled_features(x))
    rand = random_convae_extractor(seed=3, input_size=128, features="pooled")
    with torch.no_grad():
        torch.testing.assert_close(rand(x), a)
    with pytest.raises(ConfigError, match="'pooled' or 'stats'"):
        ConvAEExtractor(model, features="mean")  # type: ignore[arg-type]
