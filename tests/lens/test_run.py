"""The lens stage end to end on the tiny simulated screen (random-init extractor, small inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from phenolapse.lens import LensConfig, LensDataError, run_lens
from phenolapse.lens.data import well_split_mask
from phenolapse.models.convae import ConvAE, save_convae
from phenolapse.report.lens_figures import write_lens_figures


def _config(**kw: object) -> LensConfig:
    base: dict[str, object] = {
        "preprocess": {"crop_size": 256, "image_size": 32},
        "last_time_points": 2,
        "coefs": [1.0],
        "seeds": [0, 1],
        "epochs": 1,
        "head_epochs": 20,
        "batch_size": 32,
        "importance_examples": 1,
        "ig_steps": 4,
        "progress": False,
    }
    base.update(kw)
    return LensConfig.model_validate(base)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_convae(ConvAE(), tmp_path_factory.mktemp("w") / "convae.pt")


def test_run_lens_on_tiny_screen(
    tiny_manifest: pd.DataFrame, weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lens"
    result = run_lens(tiny_manifest, weights=weights, out=out, config=_config())
    write_lens_figures(result)
    for name in (
        "lens_results.csv",
        "per_class.csv",
        "paired_tests.csv",
        "confusion_matrix.csv",
        "confusion_matrix_lens.csv",
        "confusion_matrix.png",
        "lens_boxplot.png",
        "summary.json",
        "importance/examples.csv",
        "importance/signature_overlap.csv",
    ):
        assert (out / name).is_file(), name
    assert list((out / "importance").glob("*.png"))
    summary = json.loads((out / "summary.json").read_text())
    drugs = tiny_manifest.loc[tiny_manifest["role"] == "treatment", "drug"].unique()
    controls = tiny_manifest.loc[tiny_manifest["role"] != "treatment", "drug"].unique()
    assert summary["n_classes"] == len(drugs) + len(controls) == len(result.classes)
    res = result.results
    assert len(res) == 2 and set(res["seed"]) == {0, 1}
    for k in ("top1", "top3"):
        for kind in ("plain", "lens", "reconstruction"):
            assert ((res[f"{k}_{kind}"] >= 0) & (res[f"{k}_{kind}"] <= 1)).all()
    assert (res["top3_plain"] >= res["top1_plain"]).all()
    # per-class recalls, weighted by class size, give back the pooled top-1
    for seed, pc in result.per_class.groupby("seed"):
        pooled = res.loc[res["seed"] == seed].iloc[0]
        w = pc["n_images"] / pc["n_images"].sum()
        assert float((w * pc["top1_plain"]).sum()) == pytest.approx(pooled["top1_plain"])
        assert float((w * pc["top3_lens"]).sum()) == pytest.approx(pooled["top3_lens"])
        assert float((w * pc["top1_classical"]).sum()) == pytest.approx(pooled["top1_classical"])
        assert float((w * pc["top3_classical"]).sum()) == pytest.approx(pooled["top3_classical"])
        assert pc["n_images"].sum() == pooled["n_test"]
    cm = pd.read_csv(out / "confusion_matrix.csv").set_index("true")
    assert list(cm.columns) == result.classes
    assert int(cm.to_numpy().sum()) == int(res["n_test"].sum())
    # the simulator's signature masks were found and compared with the maps
    ov = result.overlap
    assert len(ov) > 0 and ov["inside"].notna().any()  # drugs without a signature: NaN
    assert "signature_overlap" in summary


def test_split_used_by_run_is_grouped(tiny_manifest: pd.DataFrame) -> None:
    from phenolapse.lens.data import select_classification_images, well_groups

    meta = select_classification_images(tiny_manifest, last_n_timepoints=3)
    g = well_groups(meta)
    test = well_split_mask(meta, seed=0)
    assert not set(g[test]) & set(g[~test])
    assert np.unique(meta.loc[test, "label"]).size == meta["label"].nunique()


@pytest.mark.bad_input("lens")
def test_run_lens_bad_input(tiny_manifest: pd.DataFrame, weights: Path, tmp_path: Path) -> None:
    only_dmso = tiny_manifest[tiny_manifest["role"] != "treatment"]
    only_dmso = only_dmso[only_dmso["drug"] == only_dmso["drug"].iloc[0]]
    with pytest.raises(LensDataError, match="one class"):
        run_lens(only_dmso, weights=weights, out=tmp_path / "x", config=_config())
    from phenolapse.errors import CheckpointError

    with pytest.raises(CheckpointError):
        run_lens(
            tiny_manifest, weights=tmp_path / "missing.pt", out=tmp_path / "y", config=_config()
        )


@pytest.mark.bad_input("lens")
def test_cli_lens(tiny_manifest: pd.DataFrame, weights: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from phenolapse.cli import app
    from phenolapse.data.manifest import write_manifest

    manifest = write_manifest(tiny_manifest, tmp_path / "manifest.parquet")
    runner = CliRunner()
    bad = runner.invoke(
        app, ["lens", str(tmp_path / "nope.parquet"), "--weights", str(weights), "--out", "o"]
    )
    assert bad.exit_code == 2
    cfg = tmp_path / "lens.yaml"
    cfg.write_text("head_epochs: 5\nimportance_examples: 0\nintegrated_gradients: false\n")
    ok = runner.invoke(
        app,
        [
            "lens", str(manifest), "--weights", str(weights), "--out", str(tmp_path / "out"),
            "--config", str(cfg), "--seed", "0", "--coef", "-1", "--epochs", "1",
            "--image-size", "16", "--last-n", "1", "--orientations", "8", "--no-progress",
        ],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    res = pd.read_csv(tmp_path / "out" / "lens_results.csv")
    assert res["coef"].tolist() == [-1.0]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["orientations"] == 8
    four = runner.invoke(
        app,
        [
            "lens", str(manifest), "--weights", str(weights), "--out", str(tmp_path / "o4"),
            "--orientations", "4", "--no-progress",
        ],
    )  # fmt: skip
    assert four.exit_code != 0 and "orientations" in four.output
    assert not (tmp_path / "o4" / "lens_results.csv").exists()


def test_warning_when_reconstructions_lose_the_signal() -> None:
    from phenolapse.lens.run import _signal_warnings

    def means(plain: float, recon: float) -> pd.DataFrame:
        return pd.DataFrame({"top1_plain": [plain], "top1_reconstruction": [recon]}, index=[1.0])

    # the demo's case: plain 0.24, reconstructions 0.117, chance 0.125
    (text,) = _signal_warnings(means(0.24, 0.117), 0.125)
    assert "0.117" in text and "0.240" in text and "cannot be judged" in text
    # the small screen's case: reconstructions keep most of the gain (0.499 vs 0.562, chance 0.1)
    assert _signal_warnings(means(0.562, 0.499), 0.1) == []
    # a quarter of the gain is the threshold: 0.1 + 0.25 * 0.4 = 0.2
    assert _signal_warnings(means(0.5, 0.21), 0.1) == []
    assert len(_signal_warnings(means(0.5, 0.19), 0.1)) == 1
    # nothing to say when the plain head itself is at chance or no reconstruction head ran
    assert _signal_warnings(means(0.1, 0.05), 0.1) == []
    assert _signal_warnings(pd.DataFrame({"top1_plain": [0.5]}), 0.1) == []
