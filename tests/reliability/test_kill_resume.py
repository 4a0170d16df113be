"""SIGKILL in the middle of embedding, training and a pipeline run; the rerun must match an
uninterrupted run exactly and no half-written file may be left under a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from phenolapse.data.manifest import write_manifest
from phenolapse.models.convae import ConvAE, save_convae

N_EMBED = 96
CHUNK = 16


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def _start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``phenolapse ARGS`` in its own process group (so SIGKILL reaches its workers).

    Its output goes to ``cwd/killed.log`` (a pipe nobody reads could fill up and stall it).
    """
    with open(cwd / "killed.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "phenolapse", *args],
            cwd=cwd,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "phenolapse", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )


def _kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, *, timeout: float = 300
) -> None:
    """SIGKILL ``proc``'s process group as soon as ``ready()``; fails if it exits first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")
            pytest.fail(f"the process ended (rc {proc.returncode}) before the kill point:\n{out}")
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            return
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail("the kill point was not reached in time")


def _check_no_torn_files(folder: Path) -> list[Path]:
    """Every Parquet/CSV under a final name reads back; returns leftover hidden temp files."""
    leftovers = []
    for path in folder.rglob("*"):
        if path.name.endswith(".tmp") or ".tmp" in path.name:
            assert path.name.startswith("."), f"temporary file under a final name: {path}"
            leftovers.append(path)
            continue
        if any(part.startswith(".") and part.endswith(".tmp") for part in path.parts):
            continue
        if path.is_file() and path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.is_file() and path.suffix == ".csv":
            pd.read_csv(path)
    return leftovers


@pytest.fixture()
def embed_inputs(tiny_manifest: pd.DataFrame, tmp_path: Path) -> Path:
    """A manifest of the first images, random ConvAE weights and an embed configuration."""
    write_manifest(tiny_manifest.iloc[:N_EMBED].reset_index(drop=True), tmp_path / "m.parquet")
    torch.manual_seed(0)
    save_convae(ConvAE(), tmp_path / "w.pt")
    (tmp_path / "embed.yaml").write_text(
        f"chunk_rows: {CHUNK}\nbatch_size: 2\nnum_workers: 0\nmicro_batch: 1\n"
    )
    return tmp_path


def _embed_args(out: str) -> list[str]:
    return [
        "embed",
        "m.parquet",
        "--weights",
        "w.pt",
        "--out",
        out,
        "--config",
        "embed.yaml",
        "--precision",
        "fp32",
        "--image-size",
        "64",
        "--no-progress",
    ]


def test_embed_sigkill_then_resume_equals_uninterrupted(embed_inputs: Path) -> None:
    import zarr

    from phenolapse.embedding import read_features, read_profiles

    work = embed_inputs
    ref = _run(_embed_args("ref"), work)
    assert ref.returncode == 0, ref.stdout.decode()

    done_path = work / "run" / "features.zarr"

    def partly_done() -> bool:
        if not (done_path / "done").exists():
            return False
        try:
            n = int(np.asarray(zarr.open_array(str(done_path / "done"), mode="r")[:]).sum())
        except Exception:
            return False
        return 0 < n < N_EMBED

    proc = _start(_embed_args("run"), work)
    _kill_when(proc, partly_done, work / "killed.log")

    # after the kill: whole chunks done, their rows already equal to the reference
    done = np.asarray(zarr.open_array(str(done_path / "done"), mode="r")[:], dtype=bool)
    n_done = int(done.sum())
    assert 0 < n_done < N_EMBED
    assert n_done % CHUNK == 0
    partial = np.asarray(zarr.open_array(str(done_path / "features"), mode="r")[:])
    _, ref_feats = read_features(work / "ref")
    np.testing.assert_allclose(partial[done], ref_feats[done], atol=1e-6, rtol=0)
    assert np.isnan(partial[~done]).all()
    assert not (work / "run" / "profiles.parquet").exists()
    _check_no_torn_files(work / "run")

    rerun = _run(_embed_args("run"), work)
    assert rerun.returncode == 0, rerun.stdout.decode()
    assert f"({N_EMBED} of {N_EMBED} images" in rerun.stdout.decode()
    meta, feats = read_features(work / "run")
    ref_meta, _ = read_features(work / "ref")
    assert len(meta) == N_EMBED
    assert meta["image_path"].is_unique
    pd.testing.assert_frame_equal(meta, ref_meta)
    np.testing.assert_allclose(feats, ref_feats, atol=1e-6, rtol=0)
    pd.testing.assert_frame_equal(
        read_profiles(work / "run" / "profiles.parquet"),
        read_profiles(work / "ref" / "profiles.parquet"),
        atol=1e-6,
    )
    assert not (work / "run" / "features.zarr.lock").exists()
    assert _check_no_torn_files(work / "run") == []  # leftovers of the killed run are swept


TRAIN_YAML = "crops:\n  - {n: 1, scale: [1.0, 1.0]}\nview_steps: joint\n"


def _train_args(out: str, *, resume: bool = False) -> list[str]:
    args = [
        "train",
        "m.parquet",
        "--out",
        out,
        "--max-images",
        "16",
        "--epochs",
        "3",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--num-workers",
        "0",
        "--no-progress",
    ]
    return [*args, "--resume"] if resume else [*args, "--config", "train.yaml"]


@pytest.mark.slow
def test_train_sigkill_then_resume_equals_uninterrupted(
    tiny_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    from phenolapse.training.loop import HISTORY_COLUMNS, list_checkpoints

    write_manifest(tiny_manifest.iloc[:120].reset_index(drop=True), tmp_path / "m.parquet")
    (tmp_path / "train.yaml").write_text(TRAIN_YAML)
    ref = _run(_train_args("ref"), tmp_path)
    assert ref.returncode == 0, ref.stdout.decode()

    run = tmp_path / "run"
    proc = _start(_train_args("run"), tmp_path)
    _kill_when(proc, lambda: bool(list_checkpoints(run)), tmp_path / "killed.log")
    assert not (run / "model.pt").exists()
    kept = [e for e, _ in list_checkpoints(run)]
    assert kept and max(kept) < 3
    _check_no_torn_files(run)

    res = _run(_train_args("run", resume=True), tmp_path)
    assert res.returncode == 0, res.stdout.decode()
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["model"]
    b = torch.load(run / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = pd.read_csv(run / "history.csv")
    ref_hist = pd.read_csv(tmp_path / "ref" / "history.csv")
    assert hist["epoch"].tolist() == [0, 1, 2, 3]
    cols = [c for c in HISTORY_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(hist[cols], ref_hist[cols])
    assert [e for e, _ in list_checkpoints(run)] == [1, 2, 3]
    assert _check_no_torn_files(run) == []  # leftovers of the killed run are swept


PIPELINE_YAML = """\
output_dir: {out}
title: reliability
screen: {{simulate: {{preset: tiny, seed: 0}}}}
preprocess: {{crop_size: 256, image_size: 64}}
stages: {{lens: false, compare: false}}
train:
  epochs: 2
  lr_decay_epoch: 2
  batch_size: 8
  seed: 0
  view_steps: joint
  crops: [{{n: 1, scale: [1.0, 1.0]}}]
  max_images: 16
  device: cpu
  num_workers: 0
embed: {{precision: fp32, num_workers: 0, batch_size: 4, chunk_rows: 16, device: cpu}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_in", ["train", "embed"])
def test_pipeline_sigkill_then_rerun_equals_uninterrupted(kill_in: str, tmp_path: Path) -> None:
    import zarr

    for name in ("ref", "run"):
        (tmp_path / f"{name}.yaml").write_text(PIPELINE_YAML.format(out=name))
    ref = _run(["run", "ref.yaml"], tmp_path)
    assert ref.returncode == 0, ref.stdout.decode()

    run = tmp_path / "run"

    def in_train() -> bool:
        return any((run / "train" / "checkpoints").glob("epoch_*.pt"))

    def in_embed() -> bool:
        done = run / "embed" / "features.zarr" / "done"
        if not done.exists():
            return False
        try:
            n = int(np.asarray(zarr.open_array(str(done), mode="r")[:]).sum())
        except Exception:
            return False
        return n > 0

    proc = _start(["run", "run.yaml"], tmp_path)
    _kill_when(proc, in_train if kill_in == "train" else in_embed, tmp_path / "killed.log")
    assert (run / ".stages" / f"{kill_in}.started").exists()
    assert not (run / ".stages" / f"{kill_in}.json").exists()
    _check_no_torn_files(run)

    res = _run(["run", "run.yaml"], tmp_path)
    assert res.returncode == 0, res.stdout.decode()
    text = res.stdout.decode()
    assert "ingest: up to date" in text
    assert f"{kill_in}: done in" in text
    markers = sorted(p.name for p in (run / ".stages").iterdir())
    assert markers == [
        "embed.json",
        "ingest.json",
        "report.json",
        "simulate.json",
        "temporal.json",
        "train.json",
    ]
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "temporal" / "annotations.csv"),
        pd.read_csv(tmp_path / "ref" / "temporal" / "annotations.csv"),
    )
    a = torch.load(tmp_path / "ref" / "train" / "model.pt", weights_only=True)["model"]
    b = torch.load(run / "train" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (run / "report.html").is_file()
    assert _check_no_torn_files(run) == []  # leftovers of the killed run are swept
