"""``phenolapse run`` and ``demo`` with messy inputs: what they may delete, stale labels, names.

An earlier good run (random ConvAE weights, no training, 16-px inputs, a few wells of the tiny
simulated screen) is the starting point of every case; each case checks the exit code, a message
naming the folder, file, key or line at fault, and that earlier outputs are byte-identical.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from phenolapse.embedding import read_profiles

_HERE = Path(__file__).resolve().parent


def _cli_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bad_input_cli", _HERE / "test_bad_input_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bad_input_cli", module)
    spec.loader.exec_module(module)
    return module


H = _cli_helpers()
assert_clean_failure, invoke, snapshot = H.assert_clean_failure, H.invoke, H.snapshot


def fast_config(images: Path, platemap: Path, weights: Path, out: Path | str) -> dict[str, Any]:
    """A run that takes seconds: given weights, 16-px inputs, no lens or comparison."""
    return {
        "output_dir": str(out),
        "title": "bad input",
        "screen": {"images_dir": str(images), "platemap": str(platemap)},
        "preprocess": {"image_size": 16},
        "weights": str(weights),
        "stages": {"train": False, "lens": False, "compare": False},
        "embed": {"precision": "fp32", "num_workers": 0, "batch_size": 32},
        "temporal": {"cluster": {"k": 2}},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as YAML at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def make_project(tiny_screen: Any, root: Path) -> tuple[Path, Path, Path]:
    """A project folder: ``images/``, ``platemap.csv`` and ``convae.pt`` (random weights)."""
    from phenolapse.models.convae import ConvAE, save_convae

    images, platemap = H.small_screen(tiny_screen, root)
    torch.manual_seed(0)
    weights = save_convae(ConvAE(), root / "convae.pt")
    return images, platemap, weights


@pytest.fixture(scope="module")
def project(tiny_screen: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project and the result of one good run into ``out/run``."""
    root = tmp_path_factory.mktemp("pipeline_bad_input")
    images, platemap, weights = make_project(tiny_screen, root / "project")
    out = root / "out" / "run"
    cfg = write_config(root / "run.yaml", fast_config(images, platemap, weights, out))
    res = invoke(["run", cfg])
    assert res.exit_code == 0, res.output
    return {"root": root, "images": images, "platemap": platemap, "weights": weights,
            "out": out, "config": cfg, "output": res.output}  # fmt: skip


def _edit_config(project: dict[str, Any], name: str, **changes: Any) -> Path:
    data = yaml.safe_load(project["config"].read_text())
    data.update(changes)
    return write_config(project["root"] / "inputs" / name, data)


# ------------------------------------------------------------------ deleting only what it wrote


@pytest.mark.bad_input("run")
def test_run_refuses_folders_it_did_not_write(project: dict[str, Any]) -> None:
    proj = project["root"] / "lab_project"
    for name in ("train", "compare"):
        (proj / name).mkdir(parents=True)
        (proj / name / "notes.txt").write_text(f"my own {name} notes\n")
    data = fast_config(project["images"], project["platemap"], project["weights"], ".")
    data.pop("weights")
    data["stages"] = {"train": True, "lens": False, "compare": True}
    cfg = write_config(proj / "phenolapse.yaml", data)
    res = assert_clean_failure(
        ["run", cfg], guard=[proj], names=[str(proj / "train"), "not written by phenolapse"], code=2
    )
    assert "Traceback" not in res.output
    assert sorted(p.name for p in proj.iterdir()) == ["compare", "phenolapse.yaml", "train"]


@pytest.mark.bad_input("run")
@pytest.mark.parametrize("where", ["root", "home", "image_folder", "above_images", "in_images"])
def test_run_refuses_output_dir_at_root_home_or_meeting_the_images(
    project: dict[str, Any], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    images: Path = project["images"]
    home = project["root"] / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    out = {"root": Path("/"), "home": home, "image_folder": images,
           "above_images": images.parent, "in_images": images / "results"}[where]  # fmt: skip
    cfg = _edit_config(project, f"out_{where}.yaml", output_dir=str(out))
    guard = [images, project["out"], home / ".keep"]
    (home / ".keep").write_text("")
    assert_clean_failure(["run", cfg], guard=guard, names=["output_dir", str(out)], code=2)
    assert not (images / "results").exists()


def test_rerun_replaces_only_its_own_folders(project: dict[str, Any]) -> None:
    from phenolapse.pipeline.runner import WRITTEN_NAME, read_written

    out: Path = project["out"]
    assert (out / WRITTEN_NAME).is_file()
    assert {"manifest.parquet", "embed", "temporal", "report.html", "report"} <= read_written(out)
    (out / "my_notes").mkdir()
    (out / "my_notes" / "a.txt").write_text("keep me\n")
    res = invoke(["run", project["config"], "--from", "embed"])
    assert res.exit_code == 0, res.output
    assert (out / "my_notes" / "a.txt").read_text() == "keep me\n"


# --------------------------------------------------------------- a corrected plate map relabels


@pytest.mark.bad_input("run")
def test_rerun_after_fixing_the_platemap_takes_the_new_labels(
    project: dict[str, Any], tiny_screen: Any, tmp_path: Path
) -> None:
    images, platemap, weights = make_project(tiny_screen, tmp_path / "p")
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "run.yaml", fast_config(images, platemap, weights, out))
    assert invoke(["run", cfg]).exit_code == 0
    features = out / "embed" / "features.zarr" / "features"
    before = snapshot(features)
    pm = pd.read_csv(platemap)
    old = str(pm.loc[pm["role"] == "treatment", "drug"].iloc[0])
    pm.loc[pm["drug"] == old, "drug"] = "corrected-name"
    pm.to_csv(platemap, index=False)
    res = invoke(["run", cfg])
    assert res.exit_code == 0, res.output
    assert snapshot(features) == before  # features kept: the images did not change
    prof = read_profiles(out / "embed" / "profiles.parquet")
    assert "corrected-name" in set(prof["Metadata_drug"]) and old not in set(prof["Metadata_drug"])
    ann = pd.read_csv(out / "temporal" / "annotations.csv")
    assert "corrected-name" in set(ann["drug"]) and old not in set(ann["drug"])
    assert "corrected-name" in (out / "report.html").read_text()


@pytest.mark.bad_input("embed")
def test_embed_resume_takes_metadata_from_the_current_manifest(
    project: dict[str, Any], tmp_path: Path
) -> None:
    from phenolapse.data.manifest import read_manifest

    manifest = project["out"] / "manifest.parquet"
    out = tmp_path / "embed"
    args = ["embed", manifest, "--weights", project["weights"], "--out", out, "--image-size",
            "16", "--no-progress"]  # fmt: skip
    assert invoke(args).exit_code == 0
    df = read_manifest(manifest)
    df.loc[df["role"] == "treatment", "concentration_um"] *= 10
    fixed = tmp_path / "fixed.parquet"
    df.to_parquet(fixed)
    args[1] = fixed
    res = invoke(args)
    assert res.exit_code == 0, res.output
    prof = read_profiles(out / "profiles.parquet")
    want = sorted(df.loc[df["role"] == "treatment", "concentration_um"].unique())
    got = sorted(prof.loc[prof["Metadata_role"] == "treatment", "Metadata_concentration_um"].unique())
    assert got == want


# ------------------------------------------------------------------ drug names never pick paths


@pytest.mark.bad_input("run")
def test_drug_names_do_not_choose_figure_paths(tiny_screen: Any, tmp_path: Path) -> None:
    images, platemap, weights = make_project(tiny_screen, tmp_path / "p")
    pm = pd.read_csv(platemap)
    drugs = sorted(pm.loc[pm["role"] == "treatment", "drug"].unique())
    names = {drugs[0]: "AZD-1.1", drugs[1]: "../../../../AZD-1.2"}
    pm["drug"] = pm["drug"].replace(names)
    pm.to_csv(platemap, index=False)
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "run.yaml", fast_config(images, platemap, weights, out))
    res = invoke(["run", cfg])
    assert res.exit_code == 0, res.output
    figures = out / "temporal" / "figures"
    mapping = pd.read_csv(figures / "figure_names.csv")
    curves = mapping[mapping["figure"] == "curves"]
    assert sorted(curves["drug"]) == sorted(names.values())
    assert curves["file"].is_unique and all((figures / f).is_file() for f in mapping["file"])
    assert all("/" not in f and not f.startswith(".") for f in mapping["file"])
    outside = [p for p in tmp_path.rglob("*.png") if out not in p.parents and images not in p.parents]
    assert outside == []
    html = (out / "report.html").read_text()
    pages = sorted((out / "report").glob("*.html"))
    assert len(pages) == 2
    for name in names.values():
        assert f">{name}</a>" in html.replace("&#x27;", "'")
    assert any("AZD-1.1" in p.read_text() for p in pages)


# ------------------------------------------------------------- moved projects, progress, extras


@pytest.mark.bad_input("run")
def test_rerun_after_moving_the_project_folder(tiny_screen: Any, tmp_path: Path) -> None:
    images, platemap, weights = make_project(tiny_screen, tmp_path / "a" / "project")
    proj = images.parent
    cfg = fast_config(images.relative_to(proj), platemap.relative_to(proj),
                      weights.relative_to(proj), "out")  # fmt: skip
    cfg["stages"]["temporal"] = False  # the embed stage is the one that met the moved images
    write_config(proj / "run.yaml", cfg)
    assert invoke(["run", proj / "run.yaml"]).exit_code == 0
    moved = tmp_path / "b" / "project"
    moved.parent.mkdir()
    shutil.move(proj, moved)
    res = invoke(["run", moved / "run.yaml"])
    assert res.exit_code == 0, res.output
    assert "overwrite" not in res.output
    assert "computing the features again" in (moved / "out" / "phenolapse.log").read_text()
    prof = read_profiles(moved / "out" / "embed" / "profiles.parquet")
    assert len(prof)
    manifest = pd.read_parquet(moved / "out" / "manifest.parquet")
    assert all(str(p).startswith(str(moved)) for p in manifest["image_path"])


def test_log_output_has_lines_not_progress_bars(project: dict[str, Any]) -> None:
    output = project["output"]  # CliRunner's stderr is not a terminal
    assert "\r" not in output and "it/s" not in output and "%|" not in output
    assert "[1/4] ingest ..." in output and "embed: done in" in output


@pytest.mark.bad_input("run")
def test_run_names_missing_extras_before_any_work(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import phenolapse.extras

    monkeypatch.setattr(phenolapse.extras, "installed", lambda m: m not in {"captum", "copairs"})
    out = project["root"] / "out" / "extras"
    cfg = _edit_config(project, "extras.yaml", output_dir=str(out),
                       stages={"train": False, "lens": True, "compare": True})  # fmt: skip
    guard = [project["out"], cfg]
    res = assert_clean_failure(
        ["run", cfg],
        guard=guard,
        names=["lens.integrated_gradients", "captum", "copairs", "pip install 'phenolapse[analysis]'"],
        code=2,
    )
    assert not out.exists() and "Traceback" not in res.output


@pytest.mark.bad_input("demo")
def test_demo_runs_on_the_base_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import phenolapse.extras
    import phenolapse.pipeline.stages

    seen: list[Any] = []
    monkeypatch.setattr(phenolapse.extras, "installed", lambda m: m not in H_EXTRAS)
    monkeypatch.setattr(
        phenolapse.pipeline.stages, "run_pipeline", lambda cfg, **kw: seen.append(cfg) or []
    )
    res = invoke(["demo", "--out", tmp_path / "demo"])
    assert res.exit_code == 0, res.output
    assert "captum" in res.stderr and "phenolapse[analysis]" in res.stderr
    (cfg,) = seen
    assert not cfg.lens.integrated_gradients and not cfg.stages.compare


H_EXTRAS = {"captum", "copairs", "umap", "tslearn"}


def test_report_stays_small_with_one_page_per_drug(project: dict[str, Any]) -> None:
    out: Path = project["out"]
    html = (out / "report.html").read_text()
    pm = pd.read_csv(project["platemap"])
    drugs = sorted(pm.loc[pm["role"] == "treatment", "drug"].unique())
    pages = sorted((out / "report").glob("*.html"))
    assert len(pages) == len(drugs)
    assert all(f">{d}</a>" in html for d in drugs)
    figures = [p for p in (out / "temporal" / "figures").glob("*.png")]
    full = sum(p.stat().st_size for p in figures) * 4 / 3
    assert len(html) < 0.25 * full  # figures scaled down; per-drug ones on their pages
    potency = list((out / "temporal" / "potency").glob("*.png"))  # one per cell line and plate
    assert potency
    # clusters and heatmap in the temporal section, potency over time in the growth section
    assert html.count("<img") == len(figures) - 2 * len(drugs) + len(potency)
