"""The published ConvAE through ``phenolapse embed`` reproduces the reference encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.embedding import EmbedConfig, embed_manifest, read_features


def reference_encoder(weights: Path, image: Path) -> np.ndarray:
    """SPEC section 4 restated in plain torch: antialiased resize to 128, [0, 1], encoder."""
    s = torch.load(weights, map_location="cpu", weights_only=True)
    x = torch.from_numpy(np.asarray(Image.open(image).convert("L"), dtype=np.float32) / 255.0)
    x = F.interpolate(x[None, None], size=(128, 128), mode="bilinear", antialias=True)
    with torch.no_grad():
        h = F.max_pool2d(
            F.relu(F.conv2d(x, s["encoder.0.weight"], s["encoder.0.bias"], padding=1)), 2
        )
        h = F.max_pool2d(
            F.relu(F.conv2d(h, s["encoder.3.weight"], s["encoder.3.bias"], padding=1)), 2
        )
        h = F.relu(F.conv2d(h, s["encoder.6.weight"], s["encoder.6.bias"], padding=1))
        z = F.conv2d(h, s["encoder.8.weight"], s["encoder.8.bias"], padding=1)
    assert z.shape == (1, 4, 32, 32)
    return z.flatten().numpy()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture()
def published(shared_data: Path, tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    weights = shared_data / "pheno-ml" / "trained_model.torch"
    images = tmp_path / "images"
    images.mkdir()
    jpg = images / "HCT15_Phase_A1_1_00d00h00m.jpg"
    shutil.copyfile(shared_data / "pheno-ml" / "HCT15_example.jpg", jpg)
    return weights, images, reference_encoder(weights, jpg)


def test_cli_matches_reference_encoder(
    published: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    weights, images, ref = published
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "embed",
            str(images),
            "--weights",
            str(weights),
            "--out",
            str(out),
            "--no-progress",
            "--convae-features",
            "latent",
        ],
    )
    assert result.exit_code == 0, result.output
    meta, feats = read_features(out)
    assert feats.shape == (1, 4096)
    assert Path(meta["image_path"].item()).name == "HCT15_Phase_A1_1_00d00h00m.jpg"
    assert cos(feats[0], ref) >= 0.999  # default precision (bf16 where the CPU has it)
    assert (out / "profiles.parquet").is_file()


def test_fp32_matches_reference_exactly(
    published: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    weights, images, ref = published
    cfg = EmbedConfig(
        precision="fp32", num_workers=0, progress=False, convae_features="latent"
    )
    feats = read_features(embed_manifest(images, weights=weights, out=tmp_path / "o", config=cfg))[
        1
    ]
    assert cos(feats[0], ref) >= 0.99999
    np.testing.assert_allclose(feats[0], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.bad_input("embed")
def test_cli_errors_exit_2(published: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    _, images, _ = published
    bad = tmp_path / "bad.torch"
    bad.write_bytes(b"\x00\x01garbage")
    runner = CliRunner()
    result = runner.invoke(
        app, ["embed", str(images), "--weights", str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "bad.torch" in result.output
    result = runner.invoke(
        app, ["embed", str(tmp_path / "missing"), "--weights", str(bad), "--out", "x"]
    )
    assert result.exit_code == 2 and "missing" in result.output
