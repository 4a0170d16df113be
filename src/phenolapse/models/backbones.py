"""ImageNet-pretrained backbones in plain torch: ResNet-50 and the DINO Vision Transformer.

Parameter names follow torchvision's ``resnet50`` and the official DINO / timm ViT, so their
published weight files load unchanged (supervised ImageNet, SwAV and DINO ResNet-50; DINO ViT-S/B
with patch 8 or 16). Nothing is downloaded: the user points to a local weights file, and a missing
file gets a message naming the file expected and where it is published.

As extractors, the networks run in eval mode, resize the input to their own size (224 px),
replicate grayscale to RGB and apply ImageNet normalisation, the input statistics all of these
networks were trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from phenolapse.errors import CheckpointError
from phenolapse.models.base import Extractor
from phenolapse.models.convae import read_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck block (stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output."""
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        out: torch.Tensor = self.relu(y + identity)
        return out


class ResNet50(nn.Module):
    """ResNet-50 with torchvision's module names; ``forward`` returns the 2,048-d pooled features.

    The classification layer ``fc`` is kept (so supervised checkpoints load completely) but not
    applied: features are the global average of the last stage.
    """

    def __init__(self, *, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        layers = []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, 2048)`` of normalised RGB images."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


# --------------------------------------------------------------------------- ViT


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens (``proj`` as in timm/DINO)."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention output, same shape as ``x``."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(b, n, d))
        return out


class Mlp(nn.Module):
    """Two-layer GELU MLP (``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """MLP output."""
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT as in DINO/timm; ``forward`` returns the final-norm class token.

    Position embeddings are interpolated (bicubic) when the input grid differs from the one the
    weights were trained on, as DINO does.
    """

    def __init__(
        self, *, patch_size: int = 8, embed_dim: int = 384, depth: int = 12, num_heads: int = 6,
        img_size: int = 224,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        n_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def _pos_embed(self, n_h: int, n_w: int) -> torch.Tensor:
        pos = self.pos_embed
        n_old = pos.shape[1] - 1
        if n_old == n_h * n_w:
            return pos
        side = int(math.sqrt(n_old))
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(n_h, n_w), mode="bicubic", align_corners=False)
        return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, n_h * n_w, -1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class-token features ``(B, embed_dim)`` of normalised RGB images."""
        b, _, h, w = x.shape
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
        tokens = tokens + self._pos_embed(h // self.patch_size, w // self.patch_size)
        for blk in self.blocks:
            tokens = blk(tokens)
        out: torch.Tensor = self.norm(tokens)[:, 0]
        return out


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained backbone: architecture, expected weights file and where it is published."""

    name: str
    arch: str
    expected_file: str
    source: str
    n_features: int


PRETRAINED: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "resnet50", "resnet50", "resnet50-0676ba61.pth",
            "torchvision ResNet50_Weights.IMAGENET1K_V1 (download.pytorch.org/models/)", 2048,
        ),
        BackboneSpec(
            "resnet50-swav", "resnet50", "swav_800ep_pretrain.pth.tar",
            "SwAV, facebookresearch/swav (dl.fbaipublicfiles.com/deepcluster/)", 2048,
        ),
        BackboneSpec(
            "resnet50-dino", "resnet50", "dino_resnet50_pretrain.pth",
            "DINO, facebookresearch/dino (dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/)",
            2048,
        ),
        BackboneSpec(
            "vit-s8-dino", "vit_small_8", "dino_deitsmall8_pretrain.pth",
            "DINO, facebookresearch/dino (dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/)",
            384,
        ),
        BackboneSpec(
            "vit-s16-dino", "vit_small_16", "dino_deitsmall16_pretrain.pth",
            "DINO, facebookresearch/dino (dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/)",
            384,
        ),
        BackboneSpec(
            "vit-b8-dino", "vit_base_8", "dino_vitbase8_pretrain.pth",
            "DINO, facebookresearch/dino (dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/)",
            768,
        ),
        BackboneSpec(
            "vit-b16-dino", "vit_base_16", "dino_vitbase16_pretrain.pth",
            "DINO, facebookresearch/dino (dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/)",
            768,
        ),
    )
}
"""Known pretrained extractors by name."""


def build_backbone(arch: str) -> nn.Module:
    """Randomly initialised network ``arch`` (``resnet50``, ``vit_small_8``, ``vit_base_16``...)."""
    if arch == "resnet50":
        return ResNet50()
    if arch.startswith(("vit_small_", "vit_base_")):
        size, patch = arch.removeprefix("vit_").split("_")
        dim, heads = (384, 6) if size == "small" else (768, 12)
        return VisionTransformer(patch_size=int(patch), embed_dim=dim, depth=12, num_heads=heads)
    raise ValueError(f"unknown backbone architecture {arch!r}")


_DROPPED_PREFIXES = ("fc.", "head.", "projection_head.", "prototypes.", "heads.")
_STRIPPED_PREFIXES = ("module.", "backbone.", "encoder.")


def _clean_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("teacher", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: not a weights file (expected a state_dict of tensors)")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        key = str(k)
        changed = True
        while changed:
            changed = False
            for prefix in _STRIPPED_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key.removeprefix(prefix), True
        out[key] = v
    return out


def load_backbone_weights(model: nn.Module, path: str | Path, *, name: str) -> nn.Module:
    """Load a published weights file into ``model``; errors list the tensors that do not fit.

    Prefixes added by training wrappers (``module.``, ``backbone.``) are removed, and heads that
    are not part of the feature extractor (classification ``fc``/``head``, SwAV projection and
    prototypes) are ignored.
    """
    path = Path(path)
    state = _clean_state_dict(read_checkpoint(path), path)
    expected = model.state_dict()
    feature_keys = {k for k in expected if not k.startswith(_DROPPED_PREFIXES)}
    missing = sorted(
        k for k in feature_keys - set(state) if not k.endswith("num_batches_tracked")
    )
    unexpected = sorted(
        k for k in set(state) - set(expected) if not k.startswith(_DROPPED_PREFIXES)
    )
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(feature_keys & set(state))
        if state[k].shape != expected[k].shape and k != "pos_embed"
    ]
    examples: list[tuple[list[str], str, object]] = [
        (missing, "missing tensors", missing[:5]),
        (unexpected, "unexpected tensors", unexpected[:5]),
        (wrong, "shape mismatches", "; ".join(wrong[:3])),
    ]
    parts = [f"{len(found)} {what} (e.g. {shown})" for found, what, shown in examples if found]
    if parts:
        hint = f"; expected {PRETRAINED[name].expected_file}" if name in PRETRAINED else ""
        raise CheckpointError(
            f"{path}: does not fit the {name} network: " + ", ".join(parts) + hint
        )
    load = {k: v.float() for k, v in state.items() if k in feature_keys}
    if "pos_embed" in load and isinstance(model, VisionTransformer):
        model.pos_embed = nn.Parameter(torch.zeros_like(load["pos_embed"]))
    model.load_state_dict(load, strict=False)
    return model


# --------------------------------------------------------------------------- extractors


class PretrainedExtractor(Extractor):
    """An ImageNet-pretrained network as an extractor (eval mode, its own normalisation).

    Images ``(B, C, H, W)`` in [0, 1] are replicated to 3 channels when grayscale, resized
    (antialiased bilinear) to ``input_size`` and normalised with the ImageNet mean and std.

    Parameters
    ----------
    network
        A :class:`ResNet50` or :class:`VisionTransformer` returning pooled features.
    name
        Identifier and feature-column prefix.
    n_features
        Length of the network's feature vector.
    input_size
        Side the images are resized to (224: the networks' training resolution).
    """

    def __init__(
        self, network: nn.Module, *, name: str, n_features: int, input_size: int = 224
    ) -> None:
        super().__init__()
        self.network = network
        self.name = name
        self.feature_prefix = name.replace("-", "_")
        self.in_channels = 3
        self.input_size = int(input_size)
        self.n_features = int(n_features)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()

    def train(self, mode: bool = True) -> PretrainedExtractor:
        """Stay in eval mode: batch-norm statistics and dropout stay those of pretraining."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, n_features)`` of images in [0, 1]."""
        x = self.match_channels(x)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear",
                align_corners=False, antialias=True,
            )
        x = (x - self.mean) / self.std
        out: torch.Tensor = self.network(x)
        return out


def missing_weights_message(name: str, path: str | Path | None) -> str:
    """The message shown when a pretrained extractor's weights file is absent."""
    spec = PRETRAINED[name]
    where = f"{path} does not exist" if path is not None else "no weights file given"
    return (
        f"{name}: {where}. It needs the published weights file {spec.expected_file} "
        f"({spec.source}); download it once and pass its path ({name}=PATH, or put it in "
        f"the weights folder). Nothing is downloaded at run time."
    )


def load_pretrained(
    name: str, path: str | Path | None, *, input_size: int = 224
) -> PretrainedExtractor:
    """Build the pretrained extractor ``name`` (see :data:`PRETRAINED`) from a local weights file.

    ``path`` may be the weights file or a folder holding the expected file name.
    """
    if name not in PRETRAINED:
        raise CheckpointError(
            f"unknown pretrained extractor {name!r}; known: {', '.join(sorted(PRETRAINED))}"
        )
    spec = PRETRAINED[name]
    if path is not None and Path(path).is_dir():
        path = Path(path) / spec.expected_file
    if path is None or not Path(path).is_file():
        raise CheckpointError(missing_weights_message(name, path))
    network = load_backbone_weights(build_backbone(spec.arch), path, name=name)
    return PretrainedExtractor(
        network, name=name, n_features=spec.n_features, input_size=input_size
    )
