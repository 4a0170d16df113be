"""Two-view self-supervised training on the tiny simulated screen: outputs, twin, resume, probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from phenolapse.comparison.extractors import build_extractor, offline_extractor_specs
from phenolapse.errors import ConfigError
from phenolapse.models.base import ConvAEExtractor, ResNetExtractor, load_extractor
from phenolapse.models.random_init import random_resnet
from phenolapse.training import list_checkpoints, make_config, train
from phenolapse.training.ssl import (
    FrameBank,
    _neighbours,
    condition_labels,
    knn_balanced_accuracy,
    make_views,
)

FAST: dict = {
    "preprocess": {"crop_size": 256, "image_size": 32},
    "objective": "simclr",
    "encoder": "resnet",
    "resnet_widths": [8, 16],
    "batch_size": 16,
    "max_images": 96,
    "val_fraction": 0.2,
    "progress": False,
}


@pytest.fixture(scope="module")
def ssl_run(tiny_manifest: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cfg = make_config({**FAST, "epochs": 2, "temporal_positives": 0.5})
    return train(tiny_manifest, out=tmp_path_factory.mktemp("ssl") / "run", config=cfg)


def test_outputs_and_history(ssl_run) -> None:  # type: ignore[no-untyped-def]
    h = ssl_run.history
    assert h["epoch"].tolist() == [0, 1, 2]
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "val_knn", "lr", "seconds"]
    assert h["val_loss"].notna().all() and h["train_loss"].iloc[1:].notna().all()
    # NT-Xent with 2B - 1 = 31 candidates: chance is log(31); training goes below it
    assert h["train_loss"].iloc[-1] < np.log(31)
    assert h["val_knn"].between(0, 1).all()
    run = ssl_run.run_dir
    assert (run / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert [e for e, _ in list_checkpoints(run)] == [1, 2]
    saved = pd.read_csv(run / "history.csv")
    np.testing.assert_allclose(saved["val_knn"], h["val_knn"])


def test_model_loads_as_an_extractor_and_has_a_random_twin(ssl_run) -> None:  # type: ignore[no-untyped-def]
    ext = load_extractor(ssl_run.model_path)
    assert isinstance(ext, ResNetExtractor)
    assert ext.input_size == 32 and ext.n_features == 8 + 16
    x = torch.rand(3, 1, 32, 32)
    out = ext(x)
    assert out.shape == (3, 24) and torch.isfinite(out).all()
    for key, value in ssl_run.model.state_dict().items():
        assert torch.equal(ext.model.state_dict()[key], value), key
    # the random twin is the run's own starting point: same draw, different from the trained
    twin = random_resnet(seed=0, widths=(8, 16))
    first = next(iter(twin.state_dict()))
    assert not torch.equal(twin.state_dict()[first], ext.model.state_dict()[first])
    # the comparison's spec names build both
    trained = build_extractor(f"ssl:trained={ssl_run.model_path}")
    assert isinstance(trained, ResNetExtractor) and trained.name == "ssl"
    rnd = build_extractor("random-resnet", input_size=32)
    assert isinstance(rnd, ResNetExtractor) and rnd.n_features == 480
    exact = build_extractor(f"random-resnet={ssl_run.model_path}")
    assert isinstance(exact, ResNetExtractor) and exact.model.widths == (8, 16)
    assert exact.input_size == 32
    for key, value in twin.state_dict().items():
        assert torch.equal(exact.model.state_dict()[key], value), key
    # the pipeline's offline specs pair a trained ResNet with that twin
    specs = offline_extractor_specs(convae_weights=ssl_run.model_path)
    assert specs == [f"resnet:trained={ssl_run.model_path}",
                     f"random-resnet={ssl_run.model_path}", "classical"]


def test_resume_after_a_crash_gives_the_same_weights(
    tiny_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    cfg = make_config({**FAST, "epochs": 2, "max_images": 48})
    full = train(tiny_manifest, out=tmp_path / "full", config=cfg)
    crashed = tmp_path / "crashed"
    train(tiny_manifest, out=crashed, config=cfg)
    # a run killed during epoch 2: its last checkpoint and the final weights never got written
    (crashed / "checkpoints" / "epoch_002.pt").unlink()
    (crashed / "model.pt").unlink()
    with pytest.raises(ConfigError, match="resume"):
        train(tiny_manifest, out=crashed, config=cfg)
    resumed = train(tiny_manifest, out=crashed, config=cfg, resume=True)
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    np.testing.assert_allclose(resumed.history["train_loss"], full.history["train_loss"])


def test_published_convae_and_ssl_convae_load_through_the_same_door(
    tiny_manifest: pd.DataFrame, tmp_path: Path, shared_data: Path
) -> None:
    cfg = make_config({**FAST, "encoder": "convae", "objective": "vicreg", "epochs": 1,
                       "max_images": 48, "preprocess": {"crop_size": 256, "image_size": 32}})
    run = train(tiny_manifest, out=tmp_path / "vic", config=cfg)
    ext = load_extractor(run.model_path, input_size=32)
    assert isinstance(ext, ConvAEExtractor) and ext.features == "stats"
    published = shared_data / "pheno-ml" / "trained_model.torch"
    if not published.is_file():
        pytest.skip(f"published weights absent: {published}")
    pub = load_extractor(published, features="latent")
    assert isinstance(pub, ConvAEExtractor) and pub.n_features == 4 * 32 * 32


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="decoder"):
        make_config({"objective": "reconstruction", "encoder": "resnet"})
    with pytest.raises(ConfigError, match="two-view"):
        make_config({"temporal_positives": 0.5})


def test_views_keep_magnification_and_stay_in_range() -> None:
    cfg = make_config({**FAST, "view_fraction": 0.5, "blur_p": 1.0})
    x = torch.rand(5, 1, 32, 32)
    v = make_views(x, cfg, torch.Generator().manual_seed(0))
    assert v.shape == (5, 1, 16, 16)  # a crop, never a zoom
    assert float(v.min()) >= 0 and float(v.max()) <= 1
    again = make_views(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(v, again)


def test_temporal_neighbours_are_the_adjacent_time_points_of_the_same_well() -> None:
    manifest = pd.DataFrame({
        "plate": ["P"] * 5, "well": ["A1", "A1", "A1", "B1", "A1"], "field": [1] * 5,
        "time_h": [0.0, 6.0, 12.0, 6.0, 48.0],
    })
    cfg = make_config({**FAST, "temporal_positives": 1.0, "temporal_max_gap_h": 12})
    near = _neighbours(manifest, np.arange(5), np.zeros(5, dtype=int), cfg)
    assert sorted(near[0].tolist()) == [1]
    assert sorted(near[1].tolist()) == [0, 2]
    assert sorted(near[2].tolist()) == [1]  # 48 h is beyond the 12 h gap
    assert near[3].tolist() == [] and near[4].tolist() == []
    bank = FrameBank(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), np.arange(5), near)
    assert bank.subset(np.array([1, 2])).neighbours[0].tolist() == [0, 2]


def test_condition_labels_and_knn_probe() -> None:
    manifest = pd.DataFrame({
        "cell_line": ["X", "X", "X"], "drug": ["DMSO", "D1", "D1"],
        "concentration_um": [0.0, 1.0, 10.0], "role": ["negative_control", "treatment", "treatment"],
    })
    labels = condition_labels(manifest)
    assert labels is not None
    assert labels.tolist() == ["X|control:negative_control", "X|D1@1.0", "X|D1@10.0"]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 5
    ref = np.concatenate([c + rng.normal(size=(20, 6)) for c in centres])
    ref_labels = np.repeat(["a", "b", "c"], 20)
    query = np.concatenate([c + rng.normal(size=(5, 6)) for c in centres])
    query_labels = np.repeat(["a", "b", "c"], 5)
    assert knn_balanced_accuracy(ref, ref_labels, query, query_labels) == 1.0
    shuffled = rng.permutation(ref_labels)
    assert knn_balanced_accuracy(ref, shuffled, query, query_labels) < 0.7


def test_cli_trains_a_two_view_model(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    from phenolapse.cli import app

    path = tmp_path / "manifest.parquet"
    tiny_manifest.to_parquet(path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", str(path), "--out", str(out), "--objective", "dino", "--encoder", "resnet",
        "--epochs", "1", "--max-images", "48", "--image-size", "32", "--batch-size", "16",
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "k-NN balanced accuracy" in result.output
    assert isinstance(load_extractor(out / "model.pt"), ResNetExtractor)


def test_a_two_view_resnet_serves_as_the_lens_extractor(ssl_run) -> None:  # type: ignore[no-untyped-def]
    from phenolapse.lens.model import extract_features, predict_proba, train_lens
    from phenolapse.models.random_init import random_convae

    encoder = ssl_run.model
    x = np.random.default_rng(0).random((24, 1, 32, 32)).astype(np.float32)
    y = np.repeat([0, 1, 2], 8)
    feats = extract_features(encoder, torch.as_tensor(x), orientations=8)
    assert feats.shape == (24, 24)
    lens, head, hist = train_lens(
        random_convae(seed=0), x, y, n_classes=3, coef=1.0, epochs=1, batch_size=8,
        encoder=encoder, progress=False,
    )
    assert len(hist.bce) == 1 and np.isfinite(hist.ce[0])
    proba = predict_proba(encoder, head, x, lens=lens)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # F stayed frozen: the encoder's weights are those of the run
    for key, value in load_extractor(ssl_run.model_path).model.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key


@pytest.mark.parametrize("name", ["ssl_cpu.yaml", "ssl_gpu.yaml"])
def test_example_recipes_configure_every_stage_alike(name: str) -> None:
    from phenolapse.cli._common import config_from_options
    from phenolapse.comparison import CompareConfig
    from phenolapse.embedding.config import EmbedConfig
    from phenolapse.training.config import TrainConfig

    path = Path(__file__).resolve().parents[2] / "examples" / name
    train_cfg = config_from_options(TrainConfig, path, section="train")
    assert train_cfg.objective == "dino" and train_cfg.encoder == "resnet"
    assert train_cfg.temporal_positives == 0.5
    assert train_cfg.jitter == 0.0  # brightness is kept as a signal
    size = train_cfg.preprocess.image_size
    assert config_from_options(EmbedConfig, path, section="embed").preprocess.image_size == size
    assert config_from_options(CompareConfig, path, section="compare").preprocess.image_size == size


def test_run_lens_with_a_two_view_encoder_as_f(
    ssl_run, tiny_manifest: pd.DataFrame, tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import phenolapse.lens.run as lens_run
    from phenolapse.lens import LensConfig, run_lens
    from phenolapse.models.convae import ConvAE, save_convae

    widths: list[int] = []
    original = lens_run.extract_features

    def spy(model, x, **kw):  # type: ignore[no-untyped-def]
        out = original(model, x, **kw)
        widths.append(int(out.shape[1]))
        return out

    monkeypatch.setattr(lens_run, "extract_features", spy)

    torch.manual_seed(0)
    ae = save_convae(ConvAE(), tmp_path / "convae.pt")
    config = LensConfig.model_validate({
        "preprocess": {"crop_size": 256, "image_size": 32}, "last_time_points": 2,
        "coefs": [1.0], "seeds": [0], "epochs": 1, "head_epochs": 20, "batch_size": 32,
        "importance_examples": 1, "ig_steps": 4, "progress": False,
    })
    result = run_lens(tiny_manifest, weights=ae, out=tmp_path / "lens", config=config,
                      encoder=ssl_run.model_path)
    pooled = result.results[result.results["cell_line"] == "pooled"]
    assert len(pooled) == 1
    for col in ("top1_plain", "top1_lens", "top3_plain"):
        assert 0 <= float(pooled[col].iloc[0]) <= 1
    # the heads saw the ResNet's 8 + 16 stage means, never the ConvAE's 456 pooled activations
    assert widths and set(widths) == {24}
