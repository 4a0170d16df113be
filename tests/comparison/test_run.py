"""The comparison driver: tables, files, command line, and extractors run on a screen."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from phenolapse.comparison import CompareConfig, compare_profiles, run_comparison, split_profiles
from phenolapse.comparison.extractors import build_extractor
from phenolapse.errors import CheckpointError
from phenolapse.report.comparison_figures import write_comparison_figures

FAST = {"embedding": "pca", "null_size": 100, "progress": False, "min_cluster_sizes": [3, 5]}


def _value(table: pd.DataFrame, extractor: str, metric: str) -> float:
    sel = table.loc[(table["extractor"] == extractor) & (table["metric"] == metric), "value"]
    assert len(sel) == 1, (extractor, metric)
    return float(sel.iloc[0])


def test_informative_extractor_beats_noise(make_profiles: Callable[..., pd.DataFrame]) -> None:
    good = split_profiles(make_profiles(signal=4.0, seed=0), name="good")
    noise = split_profiles(make_profiles(signal=0.0, seed=1), name="noise")
    res = compare_profiles([good, noise], config=CompareConfig(**FAST))
    t = res.table
    assert list(t.columns) == ["extractor", "task", "metric", "value"]
    assert set(t["task"]) == {"replicate_retrieval", "clustering", "classification", "info"}
    assert _value(t, "good", "map_vs_controls") == pytest.approx(1.0)
    assert _value(t, "good", "map_vs_drugs") == pytest.approx(1.0)
    assert _value(t, "noise", "map_vs_drugs") < 0.75
    assert _value(t, "good", "drug_identity_top1_accuracy") == pytest.approx(1.0)
    assert _value(t, "noise", "drug_identity_top1_accuracy") < 0.6
    assert _value(t, "good", "adjusted_rand_index") > _value(t, "noise", "adjusted_rand_index")
    assert _value(t, "good", "replicate_distance_ratio_cosine") < 0.5
    # single cell line, 4 drugs x 3 top-concentration wells + 4 controls, 3 time points
    assert _value(t, "good", "n_wells_used") == 16
    assert _value(t, "good", "n_profiles_used") == 48


def test_several_cell_lines(make_profiles: Callable[..., pd.DataFrame]) -> None:
    df = make_profiles(n_cell_lines=2, seed=3)
    res = compare_profiles([split_profiles(df, name="x")], config=CompareConfig(**FAST))
    assert set(res.details["clustering"]["cell_line"]) == {"CL0", "CL1"}
    assert set(res.details["retrieval"]["cell_line"]) == {"CL0", "CL1"}
    assert _value(res.table, "x", "map_vs_drugs") == pytest.approx(1.0)


def test_run_writes_tables_and_figures(
    make_profiles: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    a = make_profiles(seed=0)
    a.to_parquet(tmp_path / "a.parquet")
    b = make_profiles(seed=1).iloc[::-1]  # reversed rows, one well missing
    b = b.loc[b["Metadata_well"] != "A2"]
    b.to_parquet(tmp_path / "b.parquet")
    out = tmp_path / "out"
    res = run_comparison(
        out=out, features={"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"},
        config=CompareConfig(**FAST),
    )
    write_comparison_figures(res.table, res.details, out)
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == ["extractor", "task", "metric", "value"]
    pd.testing.assert_frame_equal(table, res.table, check_dtype=False)
    md = (out / "comparison.md").read_text()
    assert "| task | metric | a | b |" in md
    assert "| replicate_retrieval | map_vs_controls |" in md
    assert json.loads((out / "alignment.json").read_text())["rows_dropped"] == {"a": 3, "b": 0}
    for name in ("replicate_retrieval", "clustering", "classification"):
        assert (out / f"fig_{name}.png").stat().st_size > 1000
    assert not (out / "fig_cost.png").exists()


@pytest.mark.bad_input("compare")
def test_cli_compare(make_profiles: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    from phenolapse.cli.compare import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Test app."""

    make_profiles(seed=0).to_parquet(tmp_path / "a.parquet")
    bad = make_profiles(seed=1)
    bad.loc[0, "feat_0000"] = float("nan")
    bad.to_parquet(tmp_path / "bad.parquet")
    runner = CliRunner()
    base = ["compare", "-o", str(tmp_path / "out"), "--embedding", "pca", "--no-progress",
            "--no-figures", "-f", f"a={tmp_path / 'a.parquet'}",
            "-f", f"b={tmp_path / 'bad.parquet'}"]
    res = runner.invoke(app, base)
    assert res.exit_code == 2
    assert "NaN" in res.output and "--drop-nan" in res.output
    res = runner.invoke(app, [*base, "--drop-nan"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert set(table["extractor"]) == {"a", "b"}


@pytest.fixture(scope="module")
def late_manifest(tiny_manifest: pd.DataFrame) -> pd.DataFrame:
    """The tiny screen's last time point: top-concentration and control wells only."""
    m = tiny_manifest
    last = m["time_h"] == m["time_h"].max()
    top = m["concentration_um"] == m.loc[m["role"] == "treatment", "concentration_um"].max()
    keep = last & ((m["role"] == "negative_control") | ((m["role"] == "treatment") & top))
    return m.loc[keep].reset_index(drop=True)


def test_extractors_on_a_screen_with_pretrained_file(
    late_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    import torch

    from phenolapse.models.backbones import ResNet50

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    state = {k: v for k, v in ResNet50().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, weights / "dino_resnet50_pretrain.pth")
    cfg = CompareConfig(**FAST, last_time_points=1, cost_images=4, weights_dir=weights)
    # the published file is found in the weights folder; 64 px input keeps the test fast
    resnet = build_extractor("resnet50-dino", weights_dir=weights, input_size=64)
    res = run_comparison(
        out=tmp_path / "out", extractors=["random-convae", "classical", resnet],
        manifest=late_manifest, config=cfg,
    )
    t = res.table
    assert res.n_profiles == late_manifest.groupby(["plate", "well"]).ngroups
    metrics = {e: set(zip(t.loc[t.extractor == e, "task"], t.loc[t.extractor == e, "metric"],
                          strict=True))
               for e in ("random-convae", "classical", "resnet50-dino")}
    assert metrics["resnet50-dino"] == metrics["random-convae"] == metrics["classical"]
    assert _value(t, "resnet50-dino", "n_features") == 2048
    assert _value(t, "random-convae", "n_features") == 4096
    for e in metrics:
        assert _value(t, e, "seconds_per_1000_images") > 0
        assert not math.isnan(_value(t, e, "drug_vs_control_roc_auc"))
    write_comparison_figures(res.table, res.details, tmp_path / "out")
    assert (tmp_path / "out" / "fig_cost.png").exists()


@pytest.mark.bad_input("compare")
def test_missing_pretrained_file_is_named(late_manifest: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"dino_vitbase8_pretrain\.pth"):
        run_comparison(
            out=tmp_path / "out", extractors=["vit-b8-dino"], manifest=late_manifest,
            config=CompareConfig(**FAST, weights_dir=tmp_path),
        )
