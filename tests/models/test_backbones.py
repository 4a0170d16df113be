"""Pretrained backbones: published layouts, weight loading, input normalisation, clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from phenolapse.errors import CheckpointError
from phenolapse.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRETRAINED,
    PretrainedExtractor,
    ResNet50,
    VisionTransformer,
    build_backbone,
    load_pretrained,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet50_matches_torchvision_layout() -> None:
    m = ResNet50()
    sd = m.state_dict()
    assert _n_params(m) == 25_557_032  # torchvision resnet50
    assert len(sd) == 320
    for key in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.downsample.0.weight",
        "layer3.5.bn3.num_batches_tracked",
        "layer4.2.conv3.weight",
        "fc.bias",
    ):
        assert key in sd
    assert tuple(sd["layer4.0.conv2.weight"].shape) == (512, 512, 3, 3)  # v1.5: stride on 3x3
    assert m.layer4[0].conv2.stride == (2, 2)


def test_dino_vit_layouts() -> None:
    small = build_backbone("vit_small_8")
    assert _n_params(small) == 21_670_272  # DINO ViT-S/8
    sd = small.state_dict()
    for key in (
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.11.attn.qkv.bias",
        "blocks.0.mlp.fc2.weight",
        "norm.weight",
    ):
        assert key in sd
    assert tuple(sd["pos_embed"].shape) == (1, 28 * 28 + 1, 384)


def _vit_by_hand(vit: VisionTransformer, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The ViT forward pass with the position embedding ``pos`` (1, 1 + n_h * n_w, D) given."""
    tokens = vit.patch_embed(x)
    tokens = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + pos
    for blk in vit.blocks:
        tokens = blk(tokens)
    out: torch.Tensor = vit.norm(tokens)[:, 0]
    return out


def test_vit_small_input_interpolates_positions() -> None:
    torch.manual_seed(0)
    vit = VisionTransformer(patch_size=16, embed_dim=64, depth=1, num_heads=2).eval()
    with torch.no_grad():
        vit.pos_embed.mul_(50.0)  # positions large enough to move the class token visibly
        x = torch.rand(2, 3, 64, 96)  # a 4 x 6 patch grid; the weights know 14 x 14
        out = vit(x)
        # the 14 x 14 grid resized per channel to 4 x 6 (bicubic, as DINO), class position kept
        side, dim = 14, vit.embed_dim
        grid = torch.stack(
            [vit.pos_embed[0, 1:, c].reshape(side, side) for c in range(dim)]
        ).unsqueeze(1)
        small = nn.functional.interpolate(grid, size=(4, 6), mode="bicubic", align_corners=False)
        manual = torch.cat([vit.pos_embed[0, :1], small.reshape(dim, 24).T]).unsqueeze(0)
        torch.testing.assert_close(out, _vit_by_hand(vit, x, manual))
        # the positions matter: without them the features differ well beyond that tolerance
        assert (out - _vit_by_hand(vit, x, torch.zeros_like(manual))).abs().max() > 0.1
        # on the native 224 x 224 grid the stored embedding is used as it is
        native = torch.rand(1, 3, 224, 224)
        torch.testing.assert_close(vit(native), _vit_by_hand(vit, native, vit.pos_embed))
    assert out.shape == (2, 64)


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def test_load_swav_style_checkpoint(tmp_path: Path) -> None:
    # SwAV releases a DataParallel state_dict with projection head and prototypes beside it.
    torch.manual_seed(0)
    src = ResNet50()
    state = {f"module.{k}": v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    state["module.projection_head.0.weight"] = torch.zeros(2048, 2048)
    state["module.prototypes.weight"] = torch.zeros(3000, 128)
    path = _save(state, tmp_path / PRETRAINED["resnet50-swav"].expected_file)
    ext = load_pretrained("resnet50-swav", tmp_path, input_size=64)
    assert torch.equal(ext.network.layer2[1].conv2.weight, src.layer2[1].conv2.weight)
    assert torch.equal(ext.network.bn1.running_mean, src.bn1.running_mean)
    assert ext.n_features == 2048
    assert path.is_file()
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        feats = ext(x)
        # the same features by hand: replicate, resize, normalise, run the source network
        y = torch.nn.functional.interpolate(
            x.expand(-1, 3, -1, -1),
            size=(64, 64),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        expected = src.eval()((y - mean) / std)
    torch.testing.assert_close(feats, expected)


class _ChannelMeans(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def test_normalisation_and_eval_mode() -> None:
    ext = PretrainedExtractor(_ChannelMeans(), name="probe", n_features=3, input_size=8)
    ext.train()
    assert not ext.training
    gray = torch.full((1, 1, 8, 8), 0.5)
    out = ext(gray)[0]
    expected = [(0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    torch.testing.assert_close(out, torch.tensor(expected))
    assert ext.feature_prefix == "probe"


@pytest.mark.bad_input("compare")
def test_missing_file_names_expected_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"dino_deitsmall8_pretrain\.pth.*dl\.fbaipublic"):
        load_pretrained("vit-s8-dino", tmp_path)
    with pytest.raises(CheckpointError, match=r"resnet50-0676ba61\.pth"):
        load_pretrained("resnet50", None)
    with pytest.raises(CheckpointError, match="unknown pretrained"):
        load_pretrained("resnet18", tmp_path)


@pytest.mark.bad_input("compare")
def test_wrong_architecture_is_reported(tmp_path: Path) -> None:
    small = VisionTransformer(patch_size=16, embed_dim=64, depth=12, num_heads=2)
    path = _save(small.state_dict(), tmp_path / "dino_vitbase16_pretrain.pth")
    with pytest.raises(CheckpointError, match=r"vit-b16-dino.*shape mismatch"):
        load_pretrained("vit-b16-dino", path)
    _save({"conv1.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_pretrained("resnet50", tmp_path / "x.pth")


def test_dino_vit_teacher_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    vit = build_backbone("vit_small_16")
    state = {f"backbone.{k}": v for k, v in vit.state_dict().items()}
    state["head.mlp.0.weight"] = torch.zeros(4, 4)
    _save({"teacher": state}, tmp_path / "dino_deitsmall16_pretrain.pth")
    ext = load_pretrained("vit-s16-dino", tmp_path, input_size=32)
    assert torch.equal(ext.network.pos_embed, vit.pos_embed)
    with torch.no_grad():
        assert ext(torch.rand(1, 1, 32, 32)).shape == (1, 384)
