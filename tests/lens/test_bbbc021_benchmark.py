"""The BBBC021 benchmark script: a tiny synthetic .npz of the same layout; (slow) real data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BenchmarkLoader = Callable[[str], ModuleType]


def _synthetic_npz(path: Path, *, seed: int) -> Path:
    """48 two-channel crops in 8 fields; the drug class is three times brighter."""
    rng = np.random.default_rng(seed)
    n = 48
    moa = np.array(["DMSO", "drug"] * (n // 2))
    field = np.array([f"f{i % 8}" for i in range(n)])
    base = np.where(moa == "drug", 3000, 1000)[:, None, None, None]
    images = (base + rng.normal(0, 200, size=(n, 20, 20, 2))).clip(0, 65535).astype(np.uint16)
    np.savez(path, images=images, moa=moa, field=field)
    return path


@pytest.mark.filterwarnings("ignore:y_pred contains classes:UserWarning")
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
def test_benchmark_on_synthetic_npz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], benchmark_script: BenchmarkLoader
) -> None:
    path = _synthetic_npz(tmp_path / "tiny.npz", seed=0)
    args = ["--data", str(path), "--folds", "2", "--image-size", "16", "--threads", "1"]
    result = benchmark_script("bbbc021_moa").main(args)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    for key in (
        "balanced_accuracy",
        "balanced_accuracy_lens",
        "random_init_balanced_accuracy",
        "baseline_balanced_accuracy",
    ):
        assert 0.0 <= result[key] <= 1.0
    # brightness separates the classes perfectly: the intensity baseline must find it
    assert result["baseline_balanced_accuracy"] == 1.0


def test_benchmark_rejects_single_class(tmp_path: Path, benchmark_script: BenchmarkLoader) -> None:
    path = tmp_path / "one.npz"
    np.savez(
        path,
        images=np.zeros((4, 16, 16, 1), np.uint16),
        moa=np.array(["DMSO"] * 4),
        field=np.array(["a", "a", "b", "b"]),
    )
    with pytest.raises(SystemExit, match="single moa class"):
        benchmark_script("bbbc021_moa").main(["--data", str(path)])


@pytest.mark.slow
def test_benchmark_on_real_bbbc021(shared_data: Path, benchmark_script: BenchmarkLoader) -> None:
    data = shared_data / "bbbc021-mcf7" / "bbbc021_mcf7_dev.npz"
    result = benchmark_script("bbbc021_moa").main(["--data", str(data)])
    # measured 0.948 (seed 0): level with the intensity/texture baseline, short of 0.95
    assert result["balanced_accuracy"] >= 0.94
    assert result["balanced_accuracy"] >= result["baseline_balanced_accuracy"] - 0.01


@pytest.mark.filterwarnings("ignore:y_pred contains classes:UserWarning")
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
def test_benchmark_two_view_objective_over_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], benchmark_script: BenchmarkLoader
) -> None:
    path = _synthetic_npz(tmp_path / "tiny.npz", seed=1)
    args = ["--data", str(path), "--folds", "2", "--image-size", "16", "--threads", "1",
            "--objective", "simclr", "--encoder", "resnet", "--widths", "4", "8",
            "--epochs", "1", "--batch-size", "8", "--seeds", "0", "1"]
    summary = benchmark_script("bbbc021_moa").main(args)
    assert summary["seeds"] == [0, 1] and summary["objective"] == "simclr"
    for key in ("balanced_accuracy", "random_init_balanced_accuracy", "baseline_balanced_accuracy"):
        values = summary[key]
        assert isinstance(values, list) and len(values) == 2
        assert all(0.0 <= v <= 1.0 for v in values)
    assert summary["baseline_balanced_accuracy"] == [1.0, 1.0]
    # the paired differences are those of the per-seed runs
    diffs = summary["trained_minus_random"]
    assert isinstance(diffs, list)
    expected = [round(a - b, 4) for a, b in zip(
        summary["balanced_accuracy"], summary["random_init_balanced_accuracy"], strict=True)]
    assert diffs == pytest.approx(expected, abs=1e-4)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == summary


def test_training_overrides_reach_the_training_config(benchmark_script: BenchmarkLoader) -> None:
    for name in ("bbbc021_moa", "compare_extractors"):
        parse = benchmark_script(name).parse_overrides
        assert parse(["jitter=0", "blur_p=0.25", "temperature=0.1"]) == {
            "jitter": 0, "blur_p": 0.25, "temperature": 0.1
        }
        assert parse([]) == {}
        with pytest.raises(SystemExit, match="KEY=VALUE"):
            parse(["jitter"])
    import argparse

    compare = benchmark_script("compare_extractors")
    args = argparse.Namespace(
        crop_size=256, image_size=64, epochs=2, max_images=10, device="cpu", batch_size=8,
        objective="simclr", encoder="resnet", temporal_positives=0.5, lr=1e-3, widths=[4, 8],
        set=["jitter=0", "view_fraction=1.0"],
    )
    from phenolapse.training.config import TrainConfig

    cfg = TrainConfig.model_validate(compare._train_settings(args, 3))
    assert cfg.jitter == 0 and cfg.view_fraction == 1.0 and cfg.seed == 3
