"""Two writers into one output folder: the second is refused, the first finishes intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from phenolapse.data.manifest import write_manifest
from phenolapse.models.convae import ConvAE, save_convae

N_IMAGES = 120


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "phenolapse", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def test_two_embeds_into_one_folder(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    from phenolapse.embedding import embed_manifest, read_features
    from phenolapse.embedding.config import EmbedConfig

    write_manifest(tiny_manifest.iloc[:N_IMAGES].reset_index(drop=True), tmp_path / "m.parquet")
    torch.manual_seed(1)
    save_convae(ConvAE(), tmp_path / "w.pt")
    (tmp_path / "embed.yaml").write_text("chunk_rows: 16\nbatch_size: 2\nnum_workers: 0\n")
    args = [
        "embed",
        "m.parquet",
        "--weights",
        "w.pt",
        "--out",
        "out",
        "--config",
        "embed.yaml",
        "--precision",
        "fp32",
        "--image-size",
        "64",
        "--no-progress",
    ]
    procs = [
        subprocess.Popen(
            _cmd(*args),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    texts = [(p.returncode, o.decode(), e.decode()) for p, (o, e) in zip(procs, outs, strict=True)]
    codes = sorted(rc for rc, _, _ in texts)
    assert codes == [0, 2], texts
    loser = next(t for t in texts if t[0] == 2)
    winner = next(t for t in texts if t[0] == 0)
    assert "out/features.zarr: feature store is in use by pid" in loser[2]
    assert "wait for it to finish" in loser[2]
    assert f"({N_IMAGES} of {N_IMAGES} images" in winner[1]

    cfg = EmbedConfig.model_validate(
        {
            "chunk_rows": 16,
            "batch_size": 2,
            "num_workers": 0,
            "precision": "fp32",
            "preprocess": {"image_size": 64},
            "progress": False,
        }
    )
    ref = embed_manifest(
        tmp_path / "m.parquet", weights=tmp_path / "w.pt", out=tmp_path / "ref", config=cfg
    )
    meta, feats = read_features(tmp_path / "out")
    ref_meta, ref_feats = read_features(ref)
    assert len(meta) == N_IMAGES
    pd.testing.assert_frame_equal(meta, ref_meta)
    np.testing.assert_allclose(feats, ref_feats, atol=1e-6, rtol=0)
    assert not (tmp_path / "out" / "features.zarr.lock").exists()


def test_run_into_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    from phenolapse.pipeline.runner import LOCK_NAME, output_lock

    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "output_dir: out\nscreen: {simulate: {preset: tiny, seed: 0}}\n"
        "stages: {lens: false, compare: false}\n"
    )
    with output_lock(out):
        proc = subprocess.run(
            _cmd("run", str(cfg)),
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert proc.returncode == 2, proc.stderr
    assert f"{out.resolve()}: output folder is in use by pid {os.getpid()} on" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_two_pipeline_runs_into_one_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "output_dir: out\nscreen: {simulate: {preset: tiny, seed: 0}}\n"
        "preprocess: {crop_size: 256, image_size: 64}\n"
        "stages: {lens: false, compare: false, train: false, report: false}\n"
        "weights: w.pt\nembed: {precision: fp32, num_workers: 0}\n"
    )
    torch.manual_seed(0)
    save_convae(ConvAE(), tmp_path / "w.pt")
    procs = [
        subprocess.Popen(
            _cmd("run", str(cfg)),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    texts = [(p.returncode, o, e) for p, (o, e) in zip(procs, outs, strict=True)]
    assert sorted(rc for rc, _, _ in texts) == [0, 2], texts
    loser = next(t for t in texts if t[0] == 2)
    assert "output folder is in use by pid" in loser[2]
    markers = sorted(p.name for p in (tmp_path / "out" / ".stages").iterdir())
    assert markers == ["embed.json", "ingest.json", "simulate.json", "temporal.json"]
    ann = pd.read_csv(tmp_path / "out" / "temporal" / "annotations.csv")
    assert len(ann) > 0


def test_training_into_a_folder_in_use_is_refused(
    tiny_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    from phenolapse.errors import OutputLockedError
    from phenolapse.io_utils import exclusive_lock
    from phenolapse.training import TrainConfig, train
    from phenolapse.training.loop import LOCK_NAME

    run = tmp_path / "run"
    with exclusive_lock(run / LOCK_NAME, label="held"):
        with pytest.raises(OutputLockedError, match=f"{run}: training folder is in use by pid"):
            train(tiny_manifest, out=run, config=TrainConfig(epochs=1))
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing was written
    assert not run.exists() or list(run.iterdir()) == []
