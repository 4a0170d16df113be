"""The lens with a two-view ResNet as F: ``lens_autoencoder`` in a run, ``--encoder`` on the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.errors import ConfigError
from phenolapse.models.convae import ConvAE, save_convae
from phenolapse.models.random_init import random_resnet
from phenolapse.models.resnet import save_encoder
from phenolapse.pipeline import load_pipeline_config, run_pipeline

SSL_TRAIN = {"objective": "simclr", "encoder": "resnet"}

LENS = {
    "last_time_points": 2,
    "coefs": [1.0],
    "seeds": [0],
    "epochs": 1,
    "head_epochs": 20,
    "batch_size": 32,
    "importance_examples": 1,
    "integrated_gradients": False,
    "progress": False,
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------------ configuration check


@pytest.mark.bad_input("config check")
def test_a_resnet_run_with_the_lens_needs_lens_autoencoder(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", {"train": SSL_TRAIN})
    with pytest.raises(ConfigError, match=r"lens_autoencoder.*stages\.lens: false"):
        load_pipeline_config(path)
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 2
    assert "lens_autoencoder" in res.output
    assert not (tmp_path / "phenolapse_out").exists()  # nothing started


@pytest.mark.parametrize(
    "edit",
    [
        {"stages": {"lens": False}},
        {"lens_autoencoder": "ae.pt"},
        {"stages": {"train": False}, "weights": "ae.pt"},
    ],
    ids=["lens-off", "lens-autoencoder", "weights"],
)
def test_a_resnet_run_is_valid_with_the_lens_off_or_a_convae(
    tmp_path: Path, edit: dict[str, Any]
) -> None:
    (tmp_path / "ae.pt").write_bytes(b"")
    cfg = load_pipeline_config(_write(tmp_path / "c.yaml", {"train": SSL_TRAIN, **edit}))
    if "lens_autoencoder" in edit:  # relative to the YAML file, like every path
        assert cfg.lens_autoencoder == tmp_path / "ae.pt"


@pytest.mark.bad_input("config check")
def test_a_missing_lens_autoencoder_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", {"train": SSL_TRAIN, "lens_autoencoder": "nope.pt"})
    with pytest.raises(ConfigError, match=r"lens_autoencoder: .*nope\.pt does not exist"):
        load_pipeline_config(path)


# ------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random small ResNet (as a two-view run saves it) and a random ConvAE."""
    tmp = tmp_path_factory.mktemp("models")
    resnet = save_encoder(random_resnet(seed=0, widths=(8, 16)), tmp / "resnet.pt", image_size=32)
    torch.manual_seed(0)
    return resnet, save_convae(ConvAE(), tmp / "convae.pt")


def _run_config(tmp: Path, screen_root: Path, resnet: Path, **extra: Any) -> Path:
    return _write(
        tmp / "run.yaml",
        {
            "output_dir": str(tmp / "out"),
            "screen": {
                "images_dir": str(screen_root / "images"),
                "platemap": str(screen_root / "platemap.csv"),
            },
            "preprocess": {"crop_size": 256, "image_size": 32},
            "weights": str(resnet),
            "stages": {"temporal": False, "compare": False, "report": False},
            "embed": {"progress": False, "precision": "fp32"},
            "lens": LENS,
            **extra,
        },
    )


@pytest.fixture(scope="module")
def lens_run(  # type: ignore[no-untyped-def]
    tiny_screen, models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[int]]:
    """A run whose model is the ResNet and whose lens starts from the ConvAE; F's widths seen."""
    import phenolapse.lens.run as lens_run_module

    resnet, convae = models
    tmp = tmp_path_factory.mktemp("lens_run")
    path = _run_config(tmp, Path(tiny_screen.root), resnet, lens_autoencoder=str(convae))
    widths: list[int] = []
    original = lens_run_module.extract_features

    def spy(model, x, **kw):  # type: ignore[no-untyped-def]
        out = original(model, x, **kw)
        widths.append(int(out.shape[1]))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lens_run_module, "extract_features", spy)
        reports = run_pipeline(load_pipeline_config(path), echo=lambda _: None, progress=False)
    assert {r.name: r.status for r in reports}["lens"] == "ran"
    return path, widths


def test_the_lens_stage_uses_the_resnet_as_f(lens_run: tuple[Path, list[int]]) -> None:
    path, widths = lens_run
    lens = path.parent / "out" / "lens"
    for name in ("lens_results.csv", "per_class.csv", "paired_tests.csv", "summary.json"):
        assert (lens / name).is_file(), name
    # the heads saw the ResNet's 8 + 16 stage means, never the ConvAE's pooled activations
    assert widths and set(widths) == {24}
    summary = json.loads((lens / "summary.json").read_text())
    manifest = pd.read_parquet(path.parent / "out" / "manifest.parquet")
    drugs = set(manifest.loc[manifest["role"] == "treatment", "drug"].astype(str))
    assert len(summary["classes"]) == summary["n_classes"] >= 3
    assert drugs <= set(summary["classes"])
    means = summary["pooled_means"]["1.0"]
    for key in ("top1_plain", "top1_lens", "top3_plain", "top3_lens"):
        assert 0 <= means[key] <= 1, key
    assert means["top3_plain"] >= means["top1_plain"]


def test_resume_notices_another_lens_autoencoder(
    lens_run: tuple[Path, list[int]],
    models: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import phenolapse.lens.run as lens_run_module

    path, _ = lens_run
    resnet, _ = models
    cfg = load_pipeline_config(path)
    reports = run_pipeline(cfg, echo=lambda _: None, progress=False)
    assert {r.name: r.status for r in reports}["lens"] == "cached"  # nothing changed

    calls: list[dict[str, Any]] = []

    def stop(source: Any, **kw: Any) -> None:
        calls.append(kw)
        raise RuntimeError("lens called")

    monkeypatch.setattr(lens_run_module, "run_lens", stop)
    torch.manual_seed(1)
    other = save_convae(ConvAE(), tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="lens called"):  # another ConvAE: the lens runs again
        run_pipeline(
            cfg.model_copy(update={"lens_autoencoder": other}), echo=lambda _: None, progress=False
        )
    assert calls[0]["weights"] == other and calls[0]["encoder"] == resnet
    # a ResNet as the run's weights and no lens_autoencoder: a clear error, not a traceback
    with pytest.raises(ConfigError, match=r"lens_autoencoder is not set.*a ResNet.*stages\.lens"):
        run_pipeline(
            cfg.model_copy(update={"lens_autoencoder": None}), echo=lambda _: None, progress=False
        )
    assert calls == [calls[0]]


@pytest.mark.bad_input("lens")
def test_cli_lens_refuses_a_resnet_as_weights(
    models: tuple[Path, Path], tiny_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    resnet, _ = models
    manifest = tmp_path / "manifest.parquet"
    tiny_manifest.to_parquet(manifest)
    res = CliRunner().invoke(
        app, ["lens", str(manifest), "--weights", str(resnet), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert str(resnet) in res.output and "--encoder" in res.output
    assert "Traceback" not in res.output


def test_cli_lens_takes_the_resnet_as_encoder(
    lens_run: tuple[Path, list[int]], models: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = lens_run
    resnet, convae = models
    preprocess = {"crop_size": 256, "image_size": 32}
    config = _write(tmp_path / "lens.yaml", {"preprocess": preprocess, **LENS})
    out = tmp_path / "lens"
    res = CliRunner().invoke(
        app,
        [
            "lens",
            str(path.parent / "out" / "manifest.parquet"),
            "--weights", str(convae),
            "--encoder", str(resnet),
            "--config", str(config),
            "--out", str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "lambda=1" in res.output
    pooled = pd.read_csv(out / "lens_results.csv").query("cell_line == 'pooled'")
    assert len(pooled) == 1 and pooled["top1_lens"].between(0, 1).all()
