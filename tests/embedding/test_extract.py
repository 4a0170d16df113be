"""Streaming extraction: values against direct encoding, resume, bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from phenolapse.data.imageio import PreprocessConfig, load_for_model
from phenolapse.embedding import EmbedConfig, embed_manifest, read_features, read_profiles
from phenolapse.embedding.store import FeatureStore
from phenolapse.errors import (
    CheckpointError,
    FeatureTableError,
    ImageReadError,
    ManifestError,
    OutputLockedError,
)
from phenolapse.models.base import ConvAEExtractor
from phenolapse.models.convae import ConvAE, load_convae

Config = Callable[..., EmbedConfig]


def direct_features(paths: list[str], weights: Path, pre: PreprocessConfig) -> np.ndarray:
    """Reference: one image at a time, fp32, mean over its crops."""
    model = load_convae(weights)
    out = []
    with torch.no_grad():
        for p in paths:
            x = torch.from_numpy(load_for_model(p, pre))
            out.append(model.features(x).mean(0).numpy())
    return np.stack(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class CountingExtractor(ConvAEExtractor):
    """ConvAE extractor that counts the crops it encodes (in the class: runs use a copy)."""

    seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).seen += int(x.shape[0])
        return super().forward(x)


def test_features_equal_direct_encoding(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    cfg = small_config(num_workers=1)
    before = plate_manifest.copy()
    store = embed_manifest(plate_manifest, weights=weights, out=tmp_path / "run", config=cfg)
    pd.testing.assert_frame_equal(plate_manifest, before)  # caller's table untouched
    assert store == tmp_path / "run" / "features.zarr"
    meta, feats = read_features(tmp_path / "run")
    assert meta["image_path"].tolist() == plate_manifest["image_path"].tolist()
    assert feats.shape == (18, 4 * 8 * 8) and feats.dtype == np.float32
    expected = direct_features(meta["image_path"].tolist(), weights, cfg.preprocess)
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    attrs = FeatureStore(store).attrs
    assert attrs["format_version"] == 1 and attrs["n_features"] == 256
    assert attrs["extractor"]["name"] == "convae" and attrs["feature_prefix"] == "convae"

    prof = read_profiles(tmp_path / "run" / "profiles.parquet")
    assert len(prof) == 3 * 3  # wells x time points
    assert (prof["Metadata_n_images"] == 2).all()  # two fields per well
    row = prof[(prof["Metadata_well"] == "A2") & (prof["Metadata_time_h"] == 4.0)]
    sel = ((meta["well"] == "A2") & (meta["time_h"] == 4.0)).to_numpy()
    np.testing.assert_allclose(
        row.filter(like="convae_").to_numpy()[0], feats[sel].mean(0), rtol=1e-5, atol=1e-6
    )
    assert row["Metadata_drug"].item() == "DrugX" and row["Metadata_role"].item() == "treatment"


def test_pooled_convae_features_from_the_command_line(
    plate_manifest: pd.DataFrame, weights: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from phenolapse.cli import app

    plate_manifest.to_parquet(tmp_path / "m.parquet")
    args = ["embed", str(tmp_path / "m.parquet"), "--weights", str(weights), "--out"]
    opts = ["--crop-size", "48", "--image-size", "32", "--num-workers", "0", "--precision", "fp32"]
    opts.append("--no-progress")
    result = CliRunner().invoke(
        app, [*args, str(tmp_path / "run"), *opts, "--convae-features", "pooled"]
    )
    assert result.exit_code == 0, result.output
    meta, feats = read_features(tmp_path / "run")
    assert feats.shape == (18, 456)
    model = load_convae(weights)
    pre = PreprocessConfig(crop_size=48, image_size=32)
    with torch.no_grad():
        first = model.pooled_features(torch.from_numpy(load_for_model(meta["image_path"][0], pre)))
    np.testing.assert_allclose(feats[0], first.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    bad = CliRunner().invoke(
        app, [*args, str(tmp_path / "bad"), *opts, "--convae-features", "flat"]
    )
    assert bad.exit_code == 2 and "convae_features" in bad.output


def test_bf16_channels_last_close_to_fp32(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    fp32 = embed_manifest(
        plate_manifest, weights=weights, out=tmp_path / "a", config=small_config()
    )
    ext = ConvAEExtractor(load_convae(weights), input_size=32)
    bf16 = embed_manifest(
        plate_manifest,
        extractor=ext,
        out=tmp_path / "b",
        config=small_config(precision="bf16", channels_last=True, micro_batch=2),
    )
    a, b = read_features(fp32)[1], read_features(bf16)[1]
    assert not np.array_equal(a, b)  # reduced precision really ran
    assert cosine(a, b).min() >= 0.999
    assert ext.encoder[0].weight.is_contiguous()  # the caller's module keeps its layout


def test_tile_mode_averages_tiles(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    pre = PreprocessConfig(crop_size=32, image_size=32, mode="tile")  # 72x88 -> 2x2 tiles
    cfg = small_config(preprocess=pre)
    embed_manifest(plate_manifest.iloc[:4], weights=weights, out=tmp_path / "t", config=cfg)
    meta, feats = read_features(tmp_path / "t")
    model = load_convae(weights)
    for i, path in enumerate(meta["image_path"]):
        crops = load_for_model(path, pre)
        assert crops.shape == (4, 1, 32, 32)
        with torch.no_grad():
            each = model.features(torch.from_numpy(crops)).numpy()
        np.testing.assert_allclose(feats[i], each.mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.bad_input("embed")
def test_resume_after_corrupt_image_computes_only_missing_rows(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    paths = plate_manifest["image_path"].tolist()
    bad = 11
    good_bytes = Path(paths[bad]).read_bytes()
    Path(paths[bad]).write_bytes(good_bytes[: len(good_bytes) // 3])  # truncated PNG
    cfg = small_config(batch_size=2)
    out = tmp_path / "run"
    with pytest.raises(ImageReadError, match=Path(paths[bad]).name):
        embed_manifest(plate_manifest, weights=weights, out=out, config=cfg)
    done = FeatureStore(out / "features.zarr").done_mask()
    assert done[:bad].all() and not done[bad:].any()  # everything before the bad file is kept
    n_done = int(done.sum())
    partial = read_features(out, drop_missing=True)[1]

    Path(paths[bad]).write_bytes(good_bytes)  # the user fixes the file and reruns
    counting = CountingExtractor(load_convae(weights), input_size=32)
    CountingExtractor.seen = 0
    embed_manifest(plate_manifest, extractor=counting, out=out, config=cfg)
    assert CountingExtractor.seen == len(paths) - n_done
    meta, feats = read_features(out)
    assert len(meta) == len(paths) and meta["image_path"].is_unique
    np.testing.assert_allclose(feats[:n_done], partial[:n_done])
    np.testing.assert_allclose(
        feats, direct_features(paths, weights, cfg.preprocess), rtol=1e-4, atol=1e-5
    )
    CountingExtractor.seen = 0
    embed_manifest(plate_manifest, extractor=counting, out=out, config=cfg)
    assert CountingExtractor.seen == 0  # complete: nothing recomputed


def test_skip_bad_images(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    paths = plate_manifest["image_path"].tolist()
    Path(paths[4]).write_bytes(b"not an image at all")
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=Path(paths[4]).name):
        embed_manifest(
            plate_manifest, weights=weights, out=out, config=small_config(on_error="skip")
        )
    meta, _ = read_features(out, drop_missing=True)
    assert len(meta) == 17 and paths[4] not in set(meta["image_path"])
    skipped = FeatureStore(out / "features.zarr").skipped()
    assert skipped["image_path"].tolist() == [paths[4]]
    prof = read_profiles(out / "profiles.parquet")
    row = plate_manifest.iloc[4]
    hit = prof[(prof["Metadata_well"] == row["well"]) & (prof["Metadata_time_h"] == row["time_h"])]
    assert hit["Metadata_n_images"].item() == 1  # only the other field
    assert np.isfinite(prof.filter(like="convae_").to_numpy()).all()


@pytest.mark.bad_input("embed")
def test_folder_input_and_other_manifest_refused(
    plate: tuple[Path, Path], weights: Path, small_config: Config, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    embed_manifest(plate[0], weights=weights, out=out, config=small_config(), platemap=plate[1])
    meta, _ = read_features(out)
    assert len(meta) == 18 and set(meta["drug"]) == {"DrugX", "DMSO"}
    from phenolapse.data.manifest import build_manifest

    fewer = build_manifest(plate[0], platemap=plate[1], progress=False).iloc[:10]
    with pytest.raises(FeatureTableError, match="another manifest"):
        embed_manifest(fewer, weights=weights, out=out, config=small_config())
    torch.manual_seed(1)
    other = ConvAEExtractor(ConvAE(), input_size=32)
    with pytest.raises(FeatureTableError, match="weights_sha256"):
        embed_manifest(plate[0], extractor=other, out=out, config=small_config())
    embed_manifest(fewer, weights=weights, out=out, config=small_config(), overwrite=True)
    assert len(read_features(out)[0]) == 10


@pytest.mark.bad_input("embed")
def test_bad_inputs(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match="no rows"):
        embed_manifest(
            plate_manifest.iloc[:0], weights=weights, out=tmp_path / "e", config=small_config()
        )
    wrong = tmp_path / "wrong.pt"
    state = ConvAE().state_dict()
    state["encoder.3.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(state, wrong)
    with pytest.raises(CheckpointError, match=r"encoder\.3\.weight"):
        embed_manifest(plate_manifest, weights=wrong, out=tmp_path / "w", config=small_config())
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights")
    with pytest.raises(CheckpointError, match=r"notes\.pt"):
        embed_manifest(plate_manifest, weights=text, out=tmp_path / "n", config=small_config())
    assert not (tmp_path / "w").exists() and not (tmp_path / "n").exists()


def test_output_lock(
    plate_manifest: pd.DataFrame, weights: Path, small_config: Config, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    lock = out / "features.zarr.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    with pytest.raises(OutputLockedError, match="feature store is in use by pid"):
        embed_manifest(plate_manifest, weights=weights, out=out, config=small_config())
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))  # stale
    embed_manifest(plate_manifest, weights=weights, out=out, config=small_config())
    assert not lock.exists()
