"""Fixtures of the embedding tests: a small synthetic plate of images and ConvAE weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding import EmbedConfig
from phenolapse.models.convae import ConvAE, save_convae

WELLS = {
    "A1": ("DrugX", 1.0, "treatment"),
    "A2": ("DrugX", 1.0, "treatment"),
    "B1": ("DMSO", 0.1, "negative_control"),
}
FIELDS = (1, 2)
TIMES_H = (0, 4, 8)
FRAME = (72, 88)  # (height, width)


def write_plate(root: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write 3 wells x 2 fields x 3 time points of 8-bit PNG frames plus a plate map."""
    rng = np.random.default_rng(seed)
    images = root / "images" / "P1"
    images.mkdir(parents=True)
    yy, xx = np.mgrid[0 : FRAME[0], 0 : FRAME[1]]
    for w, well in enumerate(WELLS):
        for field in FIELDS:
            for t in TIMES_H:
                base = 90 + 30 * np.sin((xx + 7 * w) / (5 + t)) * np.cos(yy / (6 + field))
                img = np.clip(base + rng.normal(0, 12, FRAME), 0, 255).astype(np.uint8)
                name = f"SIM_Phase_{well}_{field}_00d{t:02d}h00m.png"
                Image.fromarray(img).save(images / name)
    platemap = root / "platemap.csv"
    pd.DataFrame(
        [
            {"plate": "P1", "well": well, "drug": d, "concentration_um": c, "role": r}
            for well, (d, c, r) in WELLS.items()
        ]
    ).to_csv(platemap, index=False)
    return root / "images", platemap


@pytest.fixture()
def plate(tmp_path: Path) -> tuple[Path, Path]:
    """``(images_dir, platemap)`` of a fresh synthetic 18-image plate."""
    return write_plate(tmp_path / "screen")


@pytest.fixture()
def plate_manifest(plate: tuple[Path, Path]) -> pd.DataFrame:
    """Manifest of :func:`plate`."""
    from phenolapse.data.manifest import build_manifest

    return build_manifest(plate[0], platemap=plate[1], progress=False)


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised (seeded) ConvAE saved as a training checkpoint."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "convae.pt"
    save_convae(ConvAE(), path, epoch=0)
    return path


@pytest.fixture()
def small_config() -> Callable[..., EmbedConfig]:
    """Factory of a fast configuration: 48 px crops resized to 32 px, fp32, one process.

    It takes the flattened latent (the reference's features), whose values the tests compare
    with a direct encoding; the default ``stats`` features have tests of their own.
    """

    def make(**overrides: object) -> EmbedConfig:
        options: dict[str, object] = {
            "preprocess": PreprocessConfig(crop_size=48, image_size=32),
            "batch_size": 4,
            "num_workers": 0,
            "precision": "fp32",
            "chunk_rows": 5,
            "progress": False,
            "convae_features": "latent",
        }
        options.update(overrides)
        return EmbedConfig.model_validate(options)

    return make
