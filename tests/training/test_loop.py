"""Training on the tiny simulated screen: loss, outputs, features, resume, command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from phenolapse.data.imageio import load_for_model
from phenolapse.data.simulator import load_truth
from phenolapse.errors import ConfigError
from phenolapse.models.convae import ConvAE, load_convae
from phenolapse.training import TrainConfig, TrainResult, list_checkpoints, make_config, train

# Small and fast: 64 px inputs, two views per image (whole frame + one 0.5-0.75 crop).
FAST: dict = {
    "preprocess": {"crop_size": 256, "image_size": 64},
    "crops": [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}],
    "batch_size": 8,
    "progress": False,
}
EPOCHS = 2


@pytest.fixture(scope="module")
def trained(tiny_manifest: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    cfg = make_config({**FAST, "epochs": EPOCHS, "max_images": 64, "val_fraction": 0.15})
    return train(tiny_manifest, out=tmp_path_factory.mktemp("train") / "run", config=cfg)


def test_training_lowers_validation_loss(trained: TrainResult) -> None:
    h = trained.history
    assert h["epoch"].tolist() == list(range(EPOCHS + 1))
    untrained, last = h.iloc[0], h.iloc[-1]
    # BCE above its floor (a perfect reconstruction) shrinks several-fold
    excess0 = untrained["val_loss"] - untrained["val_loss_floor"]
    excess = last["val_loss"] - last["val_loss_floor"]
    assert excess0 > 0 and 0 <= excess < 0.6 * excess0, (excess0, excess)
    assert last["val_mse"] < 0.6 * untrained["val_mse"]
    assert np.isnan(untrained["train_loss"]) and h["train_loss"].iloc[1:].notna().all()
    assert h["lr"].iloc[1:].tolist() == [1e-3] * EPOCHS


@pytest.mark.bad_input("train")
def test_run_folder_outputs(trained: TrainResult) -> None:
    run = trained.run_dir
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == list(trained.history.columns)
    np.testing.assert_allclose(history["val_loss"], trained.history["val_loss"], rtol=1e-12)
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [e for e, _ in list_checkpoints(run)] == list(range(1, EPOCHS + 1))
    assert TrainConfig.from_yaml(run / "config.yaml").epochs == EPOCHS
    final = load_convae(trained.model_path)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(final.state_dict()[key], value), key
    last_ckpt = load_convae(list_checkpoints(run)[-1][1])  # checkpoints load as weights too
    key = "decoder.8.bias"
    assert torch.equal(last_ckpt.state_dict()[key], final.state_dict()[key])
    with pytest.raises(ConfigError, match="resume"):
        train(pd.DataFrame({"image_path": ["x"], "plate": ["P"], "well": ["A1"]}), out=run)


def _well_features(model: ConvAE, rows: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    x = torch.from_numpy(
        np.concatenate([load_for_model(p, cfg.preprocess) for p in rows["image_path"]])
    )
    with torch.no_grad():
        feats = model.features(x).numpy()
    return pd.DataFrame(feats).groupby(rows["well"].to_numpy()).mean().to_numpy()


def test_features_separate_cytotoxic_top_dose_from_controls(
    trained: TrainResult, tiny_screen, tiny_manifest: pd.DataFrame  # type: ignore[no-untyped-def]
) -> None:
    truth = load_truth(tiny_screen.root)
    top = truth.groupby("drug")["concentration_um"].transform("max")
    toxic = truth[(truth["effect"] == "cytotoxic") & (truth["concentration_um"] == top)]
    assert len(toxic) >= 1
    times = sorted(tiny_manifest["time_h"].unique())
    last = tiny_manifest[tiny_manifest["time_h"].isin(times[-3:])]  # the last 3 time points
    controls = last[last["role"] == "negative_control"]
    treated = last.merge(toxic[["drug", "concentration_um"]], on=["drug", "concentration_um"])
    cfg = make_config(FAST)
    fc = _well_features(trained.model, controls, cfg)
    ft = _well_features(trained.model, treated, cfg)
    assert len(fc) >= 3 and len(ft) >= 2
    # every cytotoxic well lies farther from the control mean than any control well
    spread = np.linalg.norm(fc - fc.mean(axis=0), axis=1)
    dist = np.linalg.norm(ft - fc.mean(axis=0), axis=1)
    assert dist.min() > 1.5 * spread.max(), (dist, spread)


@pytest.mark.bad_input("train")
def test_resume_gives_the_same_weights(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    base = {
        **FAST,
        "preprocess": {"image_size": 32},
        "max_images": 16,
        "val_fraction": 0.1,
        "lr_decay_epoch": 1,
        "blur_p": 0.5,
    }
    straight = train(tiny_manifest, out=tmp_path / "a", config=make_config({**base, "epochs": 2}))
    train(tiny_manifest, out=tmp_path / "b", config=make_config({**base, "epochs": 1}))
    resumed = train(
        tiny_manifest, out=tmp_path / "b", config=make_config({**base, "epochs": 2}), resume=True
    )
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    pd.testing.assert_frame_equal(
        straight.history.drop(columns="seconds"), resumed.history.drop(columns="seconds")
    )
    assert straight.history["lr"].tolist()[1:] == pytest.approx([1e-3, 3e-4])
    with pytest.raises(ConfigError, match="lr"):
        train(
            tiny_manifest, out=tmp_path / "b",
            config=make_config({**base, "epochs": 3, "lr": 0.1}), resume=True,
        )


@pytest.mark.bad_input("train")
def test_cli_train_and_resume(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    from phenolapse.cli import app
    from phenolapse.data.manifest import write_manifest

    manifest = write_manifest(tiny_manifest, tmp_path / "manifest.parquet")
    run = tmp_path / "run"
    args = ["train", str(manifest), "--out", str(run), "--epochs", "1", "--max-images", "6",
            "--image-size", "32", "--batch-size", "6", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "validation loss" in result.output
    assert load_convae(run / "model.pt").in_channels == 1
    cfg = TrainConfig.from_yaml(run / "config.yaml")
    assert (cfg.preprocess.image_size, cfg.max_images, cfg.n_views) == (32, 6, 5)
    again = CliRunner().invoke(app, args)  # existing run without --resume: clear error, code 2
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = CliRunner().invoke(
        app,
        ["train", str(manifest), "--out", str(run), "--resume", "--epochs", "2", "--no-progress"],
    )
    assert resumed.exit_code == 0, resumed.output
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1, 2]
    missing = CliRunner().invoke(app, ["train", str(tmp_path / "nope.parquet"), "--out", str(run)])
    assert missing.exit_code == 2


@pytest.mark.slow
def test_longer_training_beats_the_mean_image(
    tiny_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    """At native resolution, training learns structure: BCE falls below that of a flat output."""
    cfg = make_config(
        {
            "preprocess": {"mode": "tile", "crop_size": 64, "image_size": 64},
            "crops": [{"n": 1, "scale": [1.0, 1.0]}],
            "batch_size": 16,
            "epochs": 5,
            "max_images": 40,
            "val_fraction": 0.1,
            "progress": False,
        }
    )
    h = train(tiny_manifest, out=tmp_path / "run", config=cfg).history
    untrained, last = h.iloc[0], h.iloc[-1]
    # a constant 0.5 output scores ln 2 whatever the image; learning must go well below it
    assert last["val_loss"] < np.log(2) - 0.25 * (np.log(2) - last["val_loss_floor"])
    assert last["val_loss"] - last["val_loss_floor"] < 0.75 * (
        untrained["val_loss"] - untrained["val_loss_floor"]
    )
