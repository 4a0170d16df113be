"""Split by well, decoded frames and the training configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.errors import ConfigError, ImageReadError, ManifestError
from phenolapse.training.config import CropSpec, TrainConfig, make_config
from phenolapse.training.dataset import FrameStore, MultiCropDataset, split_by_well
from phenolapse.training.transforms import MultiCropTransform


def _manifest(n_wells: int, per_well: int) -> pd.DataFrame:
    rows = [
        {"image_path": f"/x/{p}_{w}_{i}.png", "plate": p, "well": f"A{w}"}
        for p in ("P1", "P2")
        for w in range(1, n_wells + 1)
        for i in range(per_well)
    ]
    return pd.DataFrame(rows)


def test_split_by_well_keeps_wells_whole() -> None:
    df = _manifest(10, 3)  # 20 (plate, well) groups; A1 of P1 and P2 are different wells
    train, val = split_by_well(df, val_fraction=0.2, seed=0)
    assert len(train) + len(val) == 60 and not set(train) & set(val)
    key = df["plate"] + "/" + df["well"]
    assert not set(key.iloc[train]) & set(key.iloc[val])
    assert key.iloc[val].nunique() == 4  # 20 % of 20 wells
    again, _ = split_by_well(df.sample(frac=1, random_state=1), val_fraction=0.2, seed=0)
    assert set(df.sample(frac=1, random_state=1).iloc[again].index) == set(df.iloc[train].index)
    _, other = split_by_well(df, val_fraction=0.2, seed=1)
    assert set(key.iloc[other]) != set(key.iloc[val])
    _, none = split_by_well(df, val_fraction=0.0)
    assert len(none) == 0
    one = _manifest(1, 5).query("plate == 'P1'")
    assert len(split_by_well(one, val_fraction=0.5)[1]) == 0  # a single well cannot be split


@pytest.mark.bad_input("train")
def test_split_rejects_bad_manifests() -> None:
    with pytest.raises(ManifestError, match="well"):
        split_by_well(pd.DataFrame({"image_path": ["a"], "plate": ["P1"]}), val_fraction=0.1)
    with pytest.raises(ManifestError, match="no images"):
        split_by_well(_manifest(1, 1).iloc[:0], val_fraction=0.1)


def _write_images(folder: Path, n: int, *, size: tuple[int, int] = (40, 60)) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_frame_store_cached_equals_lazy_and_is_lossless(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 3)
    cfg = PreprocessConfig(crop_size=20, image_size=8, mode="tile")
    cached = FrameStore(paths, cfg, cache_gb=1.0, progress=False)
    lazy = FrameStore(paths, cfg, cache_gb=0.0, progress=False)
    assert cached.cached is not None and lazy.cached is None
    assert cached.frames_per_image == 6 and len(cached) == 18  # 2 x 3 tiles of 20 px
    assert cached.cached[0].dtype == torch.uint8  # 8-bit data kept losslessly as uint8
    raw = np.asarray(Image.open(paths[1]), dtype=np.float32) / 255.0
    for i in range(len(cached)):
        assert torch.equal(cached.frame(i), lazy.frame(i))
    # frame 7 = image 1, tile 1 (row 0, column 1 of the tile grid)
    assert np.array_equal(cached.frame(7)[0].numpy(), raw[0:20, 20:40])
    frame = cached.frame(0)
    frame += 1.0
    assert float(cached.frame(0).max()) <= 1.0  # the cache is never modified by callers


@pytest.mark.bad_input("train")
def test_frame_store_reports_bad_files(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 2)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(small)
    with pytest.raises(ImageReadError, match=r"small\.png"):
        FrameStore([*paths, small], PreprocessConfig(crop_size=32, image_size=8), progress=False)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        FrameStore([broken], PreprocessConfig(crop_size=32, image_size=8), progress=False)


def test_multicrop_dataset_is_reproducible_per_epoch(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 2, size=(64, 64))
    store = FrameStore(paths, PreprocessConfig(crop_size=64, image_size=16), progress=False)
    ds = MultiCropDataset(store, MultiCropTransform([(2, (0.5, 0.75))], size=16), seed=5)
    ds.set_epoch(1)
    a = ds[1]
    ds.set_epoch(2)
    b = ds[1]
    ds.set_epoch(1)
    assert a.shape == (2, 1, 16, 16)
    assert torch.equal(ds[1], a) and not torch.equal(a, b)


def test_config_defaults_are_the_reference_recipe(tmp_path: Path) -> None:
    cfg = TrainConfig()
    strategy = [(c.n, c.scale) for c in cfg.crops]
    assert strategy == [(1, (1.0, 1.0)), (1, (0.5, 0.75)), (3, (0.5, 0.5))]
    assert cfg.n_views == 5
    assert (cfg.flip_p, cfg.blur_p, cfg.blur_sigma, cfg.blur_kernel) == (0.5, 0.2, (0.1, 2.0), 3)
    assert (cfg.lr, cfg.lr_decay_epoch, cfg.lr_decay, cfg.batch_size) == (1e-3, 5, 0.3, 64)
    assert (cfg.preprocess.crop_size, cfg.preprocess.image_size) == (256, 128)
    path = cfg.model_copy(update={"epochs": 3}).to_yaml(tmp_path / "c.yaml")
    back = TrainConfig.from_yaml(path, lr=0.01)
    assert back.epochs == 3 and back.lr == 0.01 and back.crops == cfg.crops


@pytest.mark.bad_input("train")
def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="crop scale"):
        make_config({"crops": [{"n": 1, "scale": [0.9, 0.5]}]})
    with pytest.raises(ConfigError, match="learning"):
        make_config({"learning": 0.1})  # unknown key: a typo is not silently ignored
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ValueError):
        CropSpec(n=0)
