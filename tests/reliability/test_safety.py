"""Untrusted inputs: pickled checkpoints, YAML tags, HTML in names, symlinks in the image folder."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from phenolapse.data.manifest import build_manifest, find_images
from phenolapse.errors import CheckpointError, ConfigError
from phenolapse.models.convae import ConvAE, load_convae


class _Exploit:
    """Unpickling this object would run a shell command creating ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.bad_input("embed")
def test_malicious_torch_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    state = {k: v for k, v in ConvAE().state_dict().items()}
    path = tmp_path / "evil.pt"
    torch.save({"model": state, "payload": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to load") as info:
        load_convae(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.bad_input("embed")
def test_malicious_plain_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.torch"
    with open(path, "wb") as fh:
        pickle.dump({"model": _Exploit(marker)}, fh, protocol=2)
    with pytest.raises(CheckpointError):
        load_convae(path)
    assert not marker.exists()


@pytest.mark.bad_input("config check")
def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    from phenolapse.pipeline.config import load_pipeline_config

    marker = tmp_path / "executed"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"output_dir: out\ntitle: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline_config(cfg)
    cfg.write_text("title: !!python/object:phenolapse.pipeline.config.PipelineConfig {}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline_config(cfg)
    assert not marker.exists()


def test_report_escapes_drug_names(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    from phenolapse.data.manifest import write_manifest
    from phenolapse.pipeline.config import PipelineConfig
    from phenolapse.report.pipeline_report import build_pipeline_report

    evil = "<script>alert(1)</script>"
    df = tiny_manifest.copy()
    treated = df["role"] == "treatment"
    first_drug = df.loc[treated, "drug"].iloc[0]
    df.loc[df["drug"] == first_drug, "drug"] = evil
    write_manifest(df, tmp_path / "manifest.parquet")
    path = build_pipeline_report(
        tmp_path, PipelineConfig(title=evil), {"ingest": {"manifest": "manifest.parquet"}}
    )
    text = path.read_text(encoding="utf-8")
    assert evil not in text
    assert "alert(1)" in text
    # the title (twice: <title>, <h1>) and the plate-design table row
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "<script" not in text.lower()


def test_image_paths_come_from_the_folder_walk(tiny_screen, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = sorted(Path(tiny_screen.images_dir).rglob("*.png"))
    plate_dir = src[0].parent
    names = sorted(p.name for p in plate_dir.glob("*.png"))[:3]
    root = tmp_path / "images"
    (root / plate_dir.name).mkdir(parents=True)
    outside = tmp_path / "outside"
    outside_dir = tmp_path / "outside_dir"
    outside.mkdir()
    outside_dir.mkdir()
    shutil.copy(plate_dir / names[0], root / plate_dir.name / names[0])
    shutil.copy(plate_dir / names[1], outside / names[1])
    shutil.copy(plate_dir / names[2], outside_dir / names[2])
    # a symlinked file and a symlinked folder, both pointing outside the image folder
    (root / plate_dir.name / names[1]).symlink_to(outside / names[1])
    (root / "linked").symlink_to(outside_dir, target_is_directory=True)

    found = find_images(root)
    # symlinked files are followed (their path stays inside the folder), symlinked folders are not
    assert [p.name for p in found] == names[:2]
    assert all(p.parent == root / plate_dir.name for p in found)
    assert found[1].resolve() == (outside / names[1]).resolve()

    # a plate map with path-like drug names and extra columns cannot redirect image_path
    pm = pd.read_csv(tiny_screen.platemap_path)
    pm["drug"] = pm["drug"].where(pm["role"] != "treatment", "../../../etc/passwd")
    pm["image_path"] = "/etc/passwd"
    pm_path = tmp_path / "platemap.csv"
    pm.to_csv(pm_path, index=False)
    df = build_manifest(root, platemap=pm_path, progress=False)
    paths = [Path(p) for p in df["image_path"]]
    assert sorted(paths) == found
    assert set(df.loc[df["role"] == "treatment", "drug"]) <= {"../../../etc/passwd"}
    assert all(os.path.commonpath([p, root]) == str(root) for p in paths)
