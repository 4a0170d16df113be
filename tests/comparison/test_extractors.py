"""Extractor specs and the baseline extractors (random-init ConvAE, classical features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from phenolapse.comparison.extractors import (
    ClassicalExtractor,
    available_pretrained,
    build_extractor,
    offline_extractor_specs,
    parse_extractor_spec,
)
from phenolapse.errors import CheckpointError, ConfigError
from phenolapse.models.classical import classical_features_batch
from phenolapse.models.convae import ConvAE, save_convae


@pytest.mark.bad_input("compare")
def test_parse_specs() -> None:
    s = parse_extractor_spec("mine:convae=/w/model.pt")
    assert (s.label, s.kind, s.path) == ("mine", "convae", Path("/w/model.pt"))
    s = parse_extractor_spec("resnet50-dino")
    assert (s.label, s.kind, s.path) == ("resnet50-dino", "resnet50-dino", None)
    with pytest.raises(ConfigError, match="known: convae"):
        parse_extractor_spec("alexnet")
    with pytest.raises(ConfigError, match="weights file"):
        parse_extractor_spec("convae")


def test_classical_extractor_matches_function() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.random((3, 1, 32, 32)).astype(np.float32)
    ext = build_extractor("classical")
    assert isinstance(ext, ClassicalExtractor)
    out = ext(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(out, classical_features_batch(imgs[:, 0]), rtol=1e-6)
    assert out.shape == (3, ext.n_features)


def test_random_convae_is_seeded_and_untrained() -> None:
    x = torch.rand(2, 1, 32, 32)
    a = build_extractor("random-convae", seed=3, input_size=32)
    b = build_extractor("random-convae", seed=3, input_size=32)
    c = build_extractor("random-convae", seed=4, input_size=32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
        assert not torch.allclose(a(x), c(x))
    assert a.n_features == 4 * 8 * 8
    assert a.feature_prefix == "random_convae"


def test_pooled_convae_features_for_trained_and_random(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ConvAE()
    path = save_convae(model, tmp_path / "model.pt")
    x = torch.rand(2, 1, 32, 32)
    trained = build_extractor(f"trained:convae={path}", input_size=32, convae_features="pooled")
    rand = build_extractor("random-convae", seed=3, input_size=32, convae_features="pooled")
    assert trained.n_features == rand.n_features == 456
    with torch.no_grad():
        torch.testing.assert_close(trained(x), model.pooled_features(x))
        assert rand(x).shape == (2, 456)


@pytest.mark.bad_input("compare")
def test_trained_convae_from_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ConvAE()
    path = save_convae(model, tmp_path / "model.pt")
    ext = build_extractor(f"trained:convae={path}", input_size=32)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ext(x), model.features(x))
    assert ext.name == "trained"
    with pytest.raises(CheckpointError, match="not found"):
        build_extractor(f"convae={tmp_path / 'missing.pt'}")


def test_available_pretrained(tmp_path: Path) -> None:
    assert available_pretrained(tmp_path) == []
    (tmp_path / "dino_resnet50_pretrain.pth").write_bytes(b"")
    assert available_pretrained(tmp_path) == ["resnet50-dino"]


def test_offline_specs(tmp_path: Path) -> None:
    (tmp_path / "dino_vitbase8_pretrain.pth").write_bytes(b"")
    specs = offline_extractor_specs(convae_weights=Path("m.pt"), weights_dir=tmp_path)
    assert specs == ["convae=m.pt", "random-convae", "classical",
                     f"vit-b8-dino={tmp_path / 'dino_vitbase8_pretrain.pth'}"]
    assert offline_extractor_specs() == ["random-convae", "classical"]
