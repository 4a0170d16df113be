"""Every command, fed bad input over the results of an earlier good run, fails cleanly.

Each case runs a command on ``phenolapse.cli.app`` where its output folder already holds earlier
results, with one bad input, and checks: a non-zero exit without a traceback, an error message on
stderr that names the offending file, row, well, key or option, and every file that was in the
guarded folders before is byte-identical afterwards, with no file added or removed.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner, Result

from phenolapse.cli import app

N_FEATURES = 8


# ------------------------------------------------------------------------------------------ helpers


def snapshot(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file (hidden ones included) under ``roots``, keyed by path."""
    digests: dict[str, str] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def invoke(args: list[Any]) -> Result:
    """Run the command line in-process with ``args``."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean_failure(
    args: list[Any],
    *,
    guard: list[Path],
    names: list[str],
    code: int | None = None,
    may_change: tuple[str, ...] = (),
) -> Result:
    """Run ``args``; assert a clear non-zero exit naming ``names`` and ``guard`` untouched.

    Files whose path ends with one of ``may_change`` (a run log, a resume marker) may be added
    or rewritten; no other file may appear, change or disappear.
    """
    assert guard and all(g.exists() for g in guard)
    before = snapshot(*guard)
    assert before, "nothing to guard"
    res = invoke(args)
    after = snapshot(*guard)
    assert res.exit_code != 0, res.output
    if code is not None:
        assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        f"crashed with {res.exception!r} instead of a clear error:\n{res.output}"
    )
    for name in names:
        assert name in res.stderr, f"{name!r} not named in stderr:\n{res.stderr}"
    added = sorted(k for k in set(after) - set(before) if not k.endswith(may_change))
    removed = sorted(set(before) - set(after))
    changed = sorted(
        k for k in set(before) & set(after) if before[k] != after[k] and not k.endswith(may_change)
    )
    assert not (added or removed or changed), (added, removed, changed)
    return res


def small_screen(tiny_screen: Any, root: Path) -> tuple[Path, Path]:
    """Copy two control wells and two drugs' replicate wells of the tiny simulated screen."""
    pm = pd.read_csv(tiny_screen.platemap_path)
    treated = pm[pm["role"] == "treatment"]
    sizes = treated.groupby(["drug", "concentration_um"])["well"].transform("size")
    replicated = treated[sizes >= 2].sort_values(["drug", "concentration_um", "well"])
    groups = replicated.groupby(["drug", "concentration_um"]).head(2)
    first_two = groups.drop_duplicates("drug").head(2)[["drug", "concentration_um"]]
    keep = pd.concat(
        [
            pm[pm["role"] == "negative_control"].head(2),
            groups.merge(first_two, on=["drug", "concentration_um"]),
        ]
    )
    images = root / "images"
    for src in sorted(Path(tiny_screen.images_dir).rglob("*.png")):
        well = src.name.split("_")[2]
        if well in set(keep["well"]):
            dst = images / src.relative_to(tiny_screen.images_dir)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    platemap = root / "platemap.csv"
    keep.to_csv(platemap, index=False)
    return images, platemap


def first_image(images: Path) -> Path:
    """The first image file under ``images`` in sorted order."""
    return sorted(images.rglob("*.png"))[0]


def synthetic_profiles(manifest: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Profiles in the documented layout: treated wells drift away from controls over time."""
    rng = np.random.default_rng(seed)
    meta = ["cell_line", "plate", "well", "row", "column", "time_h", "drug", "concentration_um",
            "role"]  # fmt: skip
    prof = manifest[meta].drop_duplicates(["plate", "well", "time_h"]).reset_index(drop=True)
    prof = prof.rename(columns={c: f"Metadata_{c}" for c in meta})
    prof["Metadata_n_images"] = 1
    feats = rng.normal(size=(len(prof), N_FEATURES))
    treated = (prof["Metadata_role"] == "treatment").to_numpy()
    drug_code = pd.factorize(prof["Metadata_drug"])[0]
    drift = np.clip(prof["Metadata_time_h"].to_numpy(), 0, None) / 20.0
    feats[treated, drug_code[treated] % N_FEATURES] += 3 * drift[treated]
    for i in range(N_FEATURES):
        prof[f"f_{i:02d}"] = feats[:, i]
    return prof


# ----------------------------------------------------------------------------------------- fixtures


@dataclass
class Workspace:
    """Inputs and the results of one earlier good run of every command."""

    root: Path
    images: Path
    platemap: Path
    manifest: Path
    weights: Path
    profiles: Path
    outputs: dict[str, Path]

    def bad_images(self, name: str, edit: Callable[[Path], None]) -> Path:
        """A copy of the images folder with ``edit`` applied to it."""
        dst = self.root / "bad" / name / "images"
        if not dst.exists():
            shutil.copytree(self.images, dst)
            edit(dst)
        return dst

    def file(self, name: str, text: str) -> Path:
        """A small text file written under the workspace."""
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def ws(
    tiny_screen: Any, tiny_manifest: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """Run every command once with good input; later cases rerun them into the same folders."""
    from phenolapse.models.convae import ConvAE, save_convae

    root = tmp_path_factory.mktemp("bad_input")
    images, platemap = small_screen(tiny_screen, root / "screen")
    torch.manual_seed(0)
    weights = save_convae(ConvAE(), root / "weights" / "convae.pt")
    outs = {k: root / "out" / k for k in ("ingest", "validate", "train", "embed", "temporal",
                                          "lens", "compare", "run", "config")}  # fmt: skip
    np_ = "--no-progress"
    ok = invoke(["ingest", images, "--platemap", platemap, "-o", outs["ingest"] / "manifest.parquet",
                 np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    manifest = outs["ingest"] / "manifest.parquet"
    ok = invoke(["validate", images, "--platemap", platemap, "--out",
                 outs["validate"] / "problems.csv", np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    ok = invoke(["train", manifest, "--out", outs["train"], "--epochs", "1", "--max-images", "6",
                 "--image-size", "16", "--batch-size", "6", np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    ok = invoke(["embed", manifest, "--weights", weights, "--out", outs["embed"],
                 "--image-size", "16", np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    profiles = root / "profiles" / "profiles.parquet"
    profiles.parent.mkdir()
    synthetic_profiles(tiny_manifest).to_parquet(profiles)
    ok = invoke(["temporal", profiles, "--out", outs["temporal"], "--k", "3", "--no-figures", np_])
    assert ok.exit_code == 0, ok.output
    lens_cfg = root / "inputs" / "lens.yaml"
    lens_cfg.parent.mkdir(exist_ok=True)
    lens_cfg.write_text("head_epochs: 3\nimportance_examples: 0\nintegrated_gradients: false\n")
    ok = invoke(["lens", manifest, "--weights", weights, "--out", outs["lens"], "--config",
                 lens_cfg, "--seed", "0", "--coef", "1", "--epochs", "1", "--image-size", "16",
                 "--last-n", "2", np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    ok = invoke(["compare", "--out", outs["compare"], "-f", f"a={profiles}", "-f",
                 f"b={profiles}", "--cost-images", "0", "--embedding", "pca", "--no-figures",
                 np_])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    run_cfg = outs["config"] / "phenolapse.yaml"
    ok = invoke(["config", "init", run_cfg])
    assert ok.exit_code == 0, ok.output
    good = yaml.safe_load(run_cfg.read_text())
    good["output_dir"] = str(outs["run"])
    good["screen"] = {"images_dir": str(images), "platemap": str(platemap)}
    run_cfg.write_text(yaml.safe_dump(good))
    ok = invoke(["run", run_cfg, "--until", "ingest"])
    assert ok.exit_code == 0, ok.output
    return Workspace(root, images, platemap, manifest, weights, profiles, outs)


# -------------------------------------------------------------------------------------------- cases

Case = tuple[list[Any], list[Path], list[str]]


def _truncate(images: Path) -> None:
    path = first_image(images)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _unparseable(images: Path) -> None:
    shutil.copy2(first_image(images), images / "holiday photo.png")


def _duplicate_row(ws: Workspace) -> Path:
    pm = pd.read_csv(ws.platemap)
    path = ws.root / "inputs" / "platemap_dup.csv"
    path.parent.mkdir(exist_ok=True)
    pd.concat([pm, pm.iloc[[1]]]).to_csv(path, index=False)
    return path


def _bad_manifest(ws: Workspace, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    from phenolapse.data.manifest import read_manifest

    path = ws.root / "inputs" / f"{name}.parquet"
    path.parent.mkdir(exist_ok=True)
    edit(read_manifest(ws.manifest)).to_parquet(path)
    return path


def _corrupt_manifest(ws: Workspace) -> tuple[Path, str]:
    def junk(images: Path) -> None:
        first_image(images).write_bytes(b"not an image at all")

    images = ws.bad_images("junk", junk)
    df = pd.read_parquet(ws.manifest)
    bad = first_image(images)
    df["image_path"] = [str(images / Path(p).relative_to(ws.images)) for p in df["image_path"]]
    path = ws.root / "inputs" / "corrupt_manifest.parquet"
    path.parent.mkdir(exist_ok=True)
    df.to_parquet(path)
    return path, bad.name


def _bad_profiles(ws: Workspace, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    path = ws.root / "inputs" / f"{name}.parquet"
    path.parent.mkdir(exist_ok=True)
    edit(pd.read_parquet(ws.profiles)).to_parquet(path)
    return path


def _nan_profiles(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[5], "f_03"] = np.nan
    return df


def _no_controls(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["Metadata_role"] != "negative_control"]


def _other_wells(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["Metadata_plate"] = "OTHER_PLATE"
    return df


def _nan_well(ws: Workspace) -> str:
    return str(pd.read_parquet(ws.profiles)["Metadata_well"].iloc[5])


# ingest -------------------------------------------------------------------------------------------


def ingest_unparseable(ws: Workspace) -> Case:
    images = ws.bad_images("unparseable", _unparseable)
    out = ws.outputs["ingest"]
    args = ["ingest", images, "--platemap", ws.platemap, "-o", out / "manifest.parquet"]
    return args, [out], ["holiday photo.png"]


def ingest_duplicate_platemap_row(ws: Workspace) -> Case:
    out = ws.outputs["ingest"]
    pm = _duplicate_row(ws)
    well = str(pd.read_csv(ws.platemap)["well"].iloc[1])
    args = ["ingest", ws.images, "--platemap", pm, "-o", out / "manifest.parquet"]
    return args, [out], [pm.name, well]


def ingest_truncated_image(ws: Workspace) -> Case:
    images = ws.bad_images("truncated", _truncate)
    out = ws.outputs["ingest"]
    args = ["ingest", images, "--platemap", ws.platemap, "-o", out / "manifest.parquet", "--verify"]
    return args, [out], [first_image(images).name]


def ingest_missing_platemap(ws: Workspace) -> Case:
    out = ws.outputs["ingest"]
    args = ["ingest", ws.images, "--platemap", ws.root / "nope.csv", "-o", out / "manifest.parquet"]
    return args, [out], ["nope.csv"]


def ingest_bad_pattern(ws: Workspace) -> Case:
    out = ws.outputs["ingest"]
    args = ["ingest", ws.images, "--pattern", "(?P<well>[A-", "-o", out / "manifest.parquet"]
    return args, [out], ["pattern"]


def ingest_out_is_results_folder(ws: Workspace) -> Case:
    earlier = ws.outputs["temporal"]
    args = ["ingest", ws.images, "--platemap", ws.platemap, "-o", earlier, "--no-progress"]
    return args, [earlier], [str(earlier), "manifest.parquet"]


def _blocker(ws: Workspace) -> Path:
    return ws.file("blocker.txt", "a file where the output folder should go\n")


# validate -----------------------------------------------------------------------------------------


def validate_unparseable(ws: Workspace) -> Case:
    images = ws.bad_images("unparseable", _unparseable)
    args = ["validate", images, "--platemap", ws.platemap, "--no-progress"]
    return args, [ws.outputs["validate"], images, ws.platemap], ["holiday photo.png"]


def validate_duplicate_platemap_row(ws: Workspace) -> Case:
    pm = _duplicate_row(ws)
    well = str(pd.read_csv(ws.platemap)["well"].iloc[1])
    args = ["validate", ws.images, "--platemap", pm, "--no-progress"]
    return args, [ws.outputs["validate"], ws.images, pm], [well]


def validate_truncated_image(ws: Workspace) -> Case:
    images = ws.bad_images("truncated", _truncate)
    args = ["validate", images, "--platemap", ws.platemap, "--no-progress"]
    return args, [ws.outputs["validate"], images], [first_image(images).name]


def validate_missing_platemap(ws: Workspace) -> Case:
    args = ["validate", ws.images, "--platemap", ws.root / "nope.csv", "--no-progress"]
    return args, [ws.outputs["validate"], ws.images], ["nope.csv"]


def validate_missing_folder(ws: Workspace) -> Case:
    args = ["validate", ws.root / "no_images", "--no-progress"]
    return args, [ws.outputs["validate"]], ["no_images"]


def validate_out_is_results_folder(ws: Workspace) -> Case:
    earlier = ws.outputs["temporal"]
    args = ["validate", ws.images, "--platemap", ws.platemap, "--out", earlier, "--no-progress"]
    return args, [earlier, ws.images], [str(earlier), "problems.csv"]


def validate_out_under_a_file(ws: Workspace) -> Case:
    blocker = _blocker(ws)
    images = ws.bad_images("unparseable", _unparseable)
    args = ["validate", images, "--out", blocker / "problems.csv", "--no-progress"]
    return args, [blocker, images], ["blocker.txt"]


# simulate -----------------------------------------------------------------------------------------


def _sim_out(ws: Workspace, tiny_screen: Any) -> Path:
    out = ws.root / "out" / "simulate"
    if not out.exists():
        shutil.copytree(tiny_screen.root, out)
    return out


def simulate_bad_preset(ws: Workspace, tiny_screen: Any) -> Case:
    out = _sim_out(ws, tiny_screen)
    return ["simulate", out, "--preset", "huge", "--no-progress"], [out], ["--preset", "huge"]


def simulate_negative_scale(ws: Workspace, tiny_screen: Any) -> Case:
    out = _sim_out(ws, tiny_screen)
    return ["simulate", out, "--scale", "-2", "--no-progress"], [out], ["scale"]


def simulate_unknown_config_key(ws: Workspace, tiny_screen: Any) -> Case:
    out = _sim_out(ws, tiny_screen)
    cfg = ws.file("sim_typo.yaml", "n_wellz: 3\n")
    return ["simulate", out, "--config", cfg, "--no-progress"], [out, cfg], ["n_wellz"]


def simulate_config_not_mapping(ws: Workspace, tiny_screen: Any) -> Case:
    out = _sim_out(ws, tiny_screen)
    cfg = ws.file("sim_list.yaml", "- 1\n- 2\n")
    return ["simulate", out, "--config", cfg, "--no-progress"], [out, cfg], ["sim_list.yaml"]


def simulate_zero_image_size(ws: Workspace, tiny_screen: Any) -> Case:
    out = _sim_out(ws, tiny_screen)
    return ["simulate", out, "--image-size", "0", "--no-progress"], [out], ["image_size"]


def simulate_out_is_file(ws: Workspace, tiny_screen: Any) -> Case:
    blocker = _blocker(ws)
    return ["simulate", blocker, "--no-progress"], [blocker], ["blocker.txt"]


# train --------------------------------------------------------------------------------------------


def train_corrupt_images(ws: Workspace) -> Case:
    def junk(images: Path) -> None:
        for path in images.rglob("*.png"):
            path.write_bytes(b"not an image at all")

    images = ws.bad_images("all_junk", junk)
    df = pd.read_parquet(ws.manifest)
    df["image_path"] = [str(images / Path(p).relative_to(ws.images)) for p in df["image_path"]]
    manifest = ws.root / "inputs" / "all_junk.parquet"
    df.to_parquet(manifest)
    out = ws.outputs["train"]
    args = ["train", manifest, "--out", out, "--resume", "--epochs", "2", "--no-progress"]
    return args, [out, manifest], [str(images), "cannot decode"]


def train_bad_config_key(ws: Workspace) -> Case:
    out = ws.outputs["train"]
    cfg = ws.file("train_typo.yaml", "epochz: 3\n")
    return ["train", ws.manifest, "--out", out, "--config", cfg], [out], ["epochz"]


def train_wrong_type(ws: Workspace) -> Case:
    out = ws.outputs["train"]
    cfg = ws.file("train_type.yaml", "batch_size: lots\n")
    return ["train", ws.manifest, "--out", out, "--config", cfg], [out], ["batch_size"]


def train_missing_manifest(ws: Workspace) -> Case:
    out = ws.outputs["train"]
    return ["train", ws.root / "nope.parquet", "--out", out], [out], ["nope.parquet"]


def train_negative_lr(ws: Workspace) -> Case:
    out = ws.outputs["train"]
    return ["train", ws.manifest, "--out", out, "--lr", "-1"], [out], ["lr"]


def train_init_weights_not_checkpoint(ws: Workspace) -> Case:
    out = ws.root / "out" / "train_fresh"
    out.mkdir(parents=True, exist_ok=True)
    (out / "notes.txt").write_text("earlier notes\n")
    notes = ws.file("notes.pt", "these are not weights\n")
    args = ["train", ws.manifest, "--out", out / "run", "--init-weights", notes, "--epochs", "1",
            "--max-images", "4", "--image-size", "16", "--no-progress"]  # fmt: skip
    return args, [out, notes], ["notes.pt"]


def train_out_is_file(ws: Workspace) -> Case:
    blocker = _blocker(ws)
    args = ["train", ws.manifest, "--out", blocker, "--epochs", "1", "--max-images", "4",
            "--image-size", "16", "--no-progress"]  # fmt: skip
    return args, [blocker], ["blocker.txt"]


# embed --------------------------------------------------------------------------------------------


def embed_other_manifest(ws: Workspace) -> Case:
    manifest, _ = _corrupt_manifest(ws)
    out = ws.outputs["embed"]
    args = ["embed", manifest, "--weights", ws.weights, "--out", out, "--image-size", "16",
            "--no-progress"]  # fmt: skip
    return args, [out, manifest], ["features.zarr", "--overwrite"]


def embed_corrupt_image(ws: Workspace) -> Case:
    manifest, bad = _corrupt_manifest(ws)
    fresh = ws.root / "out" / "embed_fresh" / "run"
    args = ["embed", manifest, "--weights", ws.weights, "--out", fresh, "--image-size", "16",
            "--no-progress"]  # fmt: skip
    return args, [ws.outputs["embed"], manifest, ws.weights], [bad, "--skip-bad"]


def embed_missing_weights(ws: Workspace) -> Case:
    out = ws.outputs["embed"]
    args = ["embed", ws.manifest, "--weights", ws.root / "missing.pt", "--out", out,
            "--image-size", "16", "--no-progress"]  # fmt: skip
    return args, [out], ["missing.pt"]


def embed_weights_not_checkpoint(ws: Workspace) -> Case:
    out = ws.outputs["embed"]
    notes = ws.file("notes.pt", "these are not weights\n")
    args = ["embed", ws.manifest, "--weights", notes, "--out", out, "--image-size", "16",
            "--no-progress"]  # fmt: skip
    return args, [out, notes], ["notes.pt"]


def embed_no_weights(ws: Workspace) -> Case:
    out = ws.outputs["embed"]
    return ["embed", ws.manifest, "--out", out, "--no-progress"], [out], ["--weights"]


def embed_bad_mode(ws: Workspace) -> Case:
    out = ws.outputs["embed"]
    args = ["embed", ws.manifest, "--weights", ws.weights, "--out", out, "--mode", "spiral",
            "--no-progress"]  # fmt: skip
    return args, [out], ["mode"]


def embed_out_is_file(ws: Workspace) -> Case:
    blocker = _blocker(ws)
    args = ["embed", ws.manifest, "--weights", ws.weights, "--out", blocker, "--image-size", "16",
            "--no-progress"]  # fmt: skip
    return args, [blocker], ["blocker.txt"]


# temporal -----------------------------------------------------------------------------------------


def temporal_nan_features(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "nan", _nan_profiles)
    out = ws.outputs["temporal"]
    args = ["temporal", src, "--out", out, "--k", "3", "--no-figures", "--no-progress"]
    return args, [out, src], [_nan_well(ws)]


def temporal_plate_without_controls(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "noctl", _no_controls)
    out = ws.outputs["temporal"]
    args = ["temporal", src, "--out", out, "--k", "3", "--no-figures", "--no-progress"]
    plate = str(pd.read_parquet(ws.profiles)["Metadata_plate"].iloc[0])
    return args, [out, src], [plate, "negative_control"]


def temporal_missing_column(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "norole", lambda d: d.drop(columns=["Metadata_role"]))
    out = ws.outputs["temporal"]
    args = ["temporal", src, "--out", out, "--k", "3", "--no-figures", "--no-progress"]
    return args, [out, src], ["Metadata_role"]


def temporal_missing_file(ws: Workspace) -> Case:
    out = ws.outputs["temporal"]
    args = ["temporal", ws.root / "nope.parquet", "--out", out, "--no-progress"]
    return args, [out], ["nope.parquet"]


def temporal_bad_metric(ws: Workspace) -> Case:
    out = ws.outputs["temporal"]
    args = ["temporal", ws.profiles, "--out", out, "--metric", "manhattan", "--no-figures",
            "--no-progress"]  # fmt: skip
    return args, [out], ["metric"]


def temporal_too_many_clusters(ws: Workspace) -> Case:
    out = ws.outputs["temporal"]
    args = ["temporal", ws.profiles, "--out", out, "--k", "5000", "--no-figures", "--no-progress"]
    return args, [out], ["k=5000"]


def temporal_out_is_file(ws: Workspace) -> Case:
    blocker = _blocker(ws)
    args = ["temporal", ws.profiles, "--out", blocker, "--k", "3", "--no-figures", "--no-progress"]
    return args, [blocker], ["blocker.txt"]


# lens ---------------------------------------------------------------------------------------------


def _lens_args(ws: Workspace, source: Path, *extra: Any) -> list[Any]:
    return ["lens", source, "--weights", ws.weights, "--out", ws.outputs["lens"], "--epochs", "1",
            "--image-size", "16", "--no-progress", *extra]  # fmt: skip


def lens_single_class(ws: Workspace) -> Case:
    def one(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["drug"] == df["drug"].iloc[0]]

    src = _bad_manifest(ws, "one_class", one)
    return _lens_args(ws, src), [ws.outputs["lens"], src], ["one class"]


def lens_labels_missing(ws: Workspace) -> Case:
    def unlabelled(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.loc[df["role"] == "treatment", "drug"] = ""
        return df

    src = _bad_manifest(ws, "unlabelled", unlabelled)
    return _lens_args(ws, src), [ws.outputs["lens"], src], ["drug label"]


def lens_missing_weights(ws: Workspace) -> Case:
    args = _lens_args(ws, ws.manifest)
    args[args.index("--weights") + 1] = ws.root / "missing.pt"
    return args, [ws.outputs["lens"]], ["missing.pt"]


def lens_missing_manifest(ws: Workspace) -> Case:
    return _lens_args(ws, ws.root / "nope.parquet"), [ws.outputs["lens"]], ["nope.parquet"]


def lens_bad_concentration(ws: Workspace) -> Case:
    args = _lens_args(ws, ws.manifest, "--concentration", "most")
    return args, [ws.outputs["lens"]], ["concentration"]


def lens_out_is_file(ws: Workspace) -> Case:
    args = _lens_args(ws, ws.manifest)
    blocker = _blocker(ws)
    args[args.index("--out") + 1] = blocker
    return args, [blocker], ["blocker.txt"]


# compare ------------------------------------------------------------------------------------------


def _compare_args(ws: Workspace, a: Path, b: Path, *extra: Any) -> list[Any]:
    return ["compare", "--out", ws.outputs["compare"], "-f", f"a={a}", "-f", f"b={b}",
            "--cost-images", "0", "--embedding", "pca", "--no-figures", "--no-progress",
            *extra]  # fmt: skip


def compare_nan_features(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "nan", _nan_profiles)
    args = _compare_args(ws, ws.profiles, src)
    return args, [ws.outputs["compare"], src], [_nan_well(ws), "drop"]


def compare_different_wells(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "other_wells", _other_wells)
    return _compare_args(ws, ws.profiles, src), [ws.outputs["compare"], src], ["share no"]


def compare_missing_file(ws: Workspace) -> Case:
    args = _compare_args(ws, ws.profiles, ws.root / "nope.parquet")
    return args, [ws.outputs["compare"]], ["nope.parquet"]


def compare_missing_column(ws: Workspace) -> Case:
    src = _bad_profiles(ws, "norole", lambda d: d.drop(columns=["Metadata_role"]))
    return _compare_args(ws, ws.profiles, src), [ws.outputs["compare"], src], ["Metadata_role"]


def compare_bad_embedding(ws: Workspace) -> Case:
    args = _compare_args(ws, ws.profiles, ws.profiles)
    args[args.index("--embedding") + 1] = "tsne"
    return args, [ws.outputs["compare"]], ["embedding"]


def compare_out_is_file(ws: Workspace) -> Case:
    args = _compare_args(ws, ws.profiles, ws.profiles)
    blocker = _blocker(ws)
    args[args.index("--out") + 1] = blocker
    return args, [blocker], ["blocker.txt"]


# run, config check, config init, demo --------------------------------------------------------------


def _run_config(ws: Workspace, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load((ws.outputs["config"] / "phenolapse.yaml").read_text())
    edit(data)
    return ws.file(name, yaml.safe_dump(data))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


CONFIG_EDITS: dict[str, tuple[str, Any, str]] = {
    "unknown_key": ("trian.epochs", 1, "trian: unknown key"),
    "wrong_type": ("train.epochs", "many", "train.epochs"),
    "missing_path": ("screen.platemap", "/nonexistent/platemap.csv", "screen.platemap"),
}


def _bad_run_config(ws: Workspace, kind: str) -> tuple[Path, str]:
    key, value, message = CONFIG_EDITS[kind]
    return _run_config(ws, f"run_{kind}.yaml", _set(key, value)), message


def run_unknown_key(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "unknown_key")
    return ["run", cfg], [ws.outputs["run"], cfg], [msg]


def run_wrong_type(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "wrong_type")
    return ["run", cfg], [ws.outputs["run"], cfg], [msg]


def run_missing_path(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "missing_path")
    return ["run", cfg], [ws.outputs["run"], cfg], [msg]


def run_not_yaml(ws: Workspace) -> Case:
    cfg = ws.file("run_broken.yaml", "screen: [unclosed\n")
    return ["run", cfg], [ws.outputs["run"], cfg], ["run_broken.yaml"]


def run_unknown_stage(ws: Workspace) -> Case:
    cfg = ws.outputs["config"] / "phenolapse.yaml"
    return ["run", cfg, "--from", "embedd"], [ws.outputs["run"], cfg], ["embedd"]


def run_unparseable_image(ws: Workspace) -> Case:
    images = ws.bad_images("unparseable", _unparseable)
    cfg = _run_config(ws, "run_bad_images.yaml", _set("screen.images_dir", str(images)))
    return ["run", cfg, "--until", "ingest"], [ws.outputs["run"], cfg], ["holiday photo.png"]


def run_output_dir_is_file(ws: Workspace) -> Case:
    blocker = _blocker(ws)
    cfg = _run_config(ws, "run_out_file.yaml", _set("output_dir", str(blocker)))
    return ["run", cfg, "--until", "ingest"], [blocker, cfg, ws.outputs["run"]], ["blocker.txt"]


def _blank_concentration(ws: Workspace) -> tuple[Path, str, int]:
    """A plate map whose first treatment row has an empty concentration: (path, well, line)."""
    pm = pd.read_csv(ws.platemap)
    i = int(np.flatnonzero(pm["role"].to_numpy() == "treatment")[0])
    pm["concentration_um"] = pm["concentration_um"].astype(object)
    pm.loc[pm.index[i], "concentration_um"] = ""
    path = ws.root / "inputs" / "platemap_no_conc.csv"
    path.parent.mkdir(exist_ok=True)
    pm.to_csv(path, index=False)
    return path, str(pm["well"].iloc[i]), i + 2


def run_treatment_without_concentration(ws: Workspace) -> Case:
    pm, well, line = _blank_concentration(ws)
    cfg = _run_config(ws, "run_no_conc.yaml", _set("screen.platemap", str(pm)))
    return ["run", cfg], [ws.outputs["run"], cfg, pm], [pm.name, f"line {line}", well]


def ingest_treatment_without_concentration(ws: Workspace) -> Case:
    pm, well, line = _blank_concentration(ws)
    out = ws.outputs["ingest"]
    args = ["ingest", ws.images, "--platemap", pm, "-o", out / "manifest.parquet"]
    return args, [out, pm], [pm.name, f"line {line}", well, "concentration_um"]


def validate_treatment_without_concentration(ws: Workspace) -> Case:
    pm, well, line = _blank_concentration(ws)
    args = ["validate", ws.images, "--platemap", pm, "--no-progress"]
    return args, [ws.outputs["validate"], pm], [pm.name, f"line {line}", well]


ANCHOR_BOMB = "\n".join(
    ["screen:", "  simulate:", "    preset: tiny", "    overrides:",
     "      a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
) + "\n"  # fmt: skip


def _bomb_config(ws: Workspace) -> Path:
    text = ANCHOR_BOMB + f"output_dir: {ws.outputs['run']}\n"
    return ws.file("run_bomb.yaml", text)


def run_yaml_anchor_bomb(ws: Workspace) -> Case:
    cfg = _bomb_config(ws)
    return ["run", cfg], [ws.outputs["run"], cfg], ["run_bomb.yaml", "screen.simulate.overrides"]


def config_check_yaml_anchor_bomb(ws: Workspace) -> Case:
    cfg = _bomb_config(ws)
    return ["config", "check", cfg], [cfg], ["run_bomb.yaml", "screen.simulate.overrides.a"]


def run_unknown_simulator_override(ws: Workspace) -> Case:
    cfg = _run_config(ws, "run_sim_typo.yaml", lambda d: d.update(
        screen={"simulate": {"preset": "tiny", "overrides": {"n_wellz": 3}}}))  # fmt: skip
    return ["run", cfg], [ws.outputs["run"], cfg], ["screen.simulate", "overrides.n_wellz"]


def config_check_unknown_simulator_override(ws: Workspace) -> Case:
    cfg = _run_config(ws, "run_sim_typo.yaml", lambda d: d.update(
        screen={"simulate": {"preset": "tiny", "overrides": {"n_wellz": 3}}}))  # fmt: skip
    return ["config", "check", cfg], [cfg], ["overrides.n_wellz"]


def run_output_dir_is_image_folder(ws: Workspace) -> Case:
    cfg = _run_config(ws, "run_out_images.yaml", _set("output_dir", str(ws.images)))
    return ["run", cfg], [ws.images, cfg, ws.outputs["run"]], ["output_dir", str(ws.images)]


def config_check_output_dir_is_image_folder(ws: Workspace) -> Case:
    cfg = _run_config(ws, "run_out_images.yaml", _set("output_dir", str(ws.images)))
    return ["config", "check", cfg], [ws.images, cfg], ["output_dir", str(ws.images)]


def run_output_dir_inside_image_folder(ws: Workspace) -> Case:
    inside = ws.images / "results"
    cfg = _run_config(ws, "run_out_in_images.yaml", _set("output_dir", str(inside)))
    return ["run", cfg], [ws.images, cfg], ["output_dir", str(inside), "inside the image folder"]


def config_check_unknown_key(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "unknown_key")
    return ["config", "check", cfg], [ws.outputs["run"], cfg], [msg]


def config_check_wrong_type(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "wrong_type")
    return ["config", "check", cfg], [ws.outputs["run"], cfg], [msg]


def config_check_missing_path(ws: Workspace) -> Case:
    cfg, msg = _bad_run_config(ws, "missing_path")
    return ["config", "check", cfg], [ws.outputs["run"], cfg], [msg]


def config_check_not_yaml(ws: Workspace) -> Case:
    cfg = ws.file("run_broken.yaml", "screen: [unclosed\n")
    return ["config", "check", cfg], [cfg], ["run_broken.yaml"]


def config_check_missing_file(ws: Workspace) -> Case:
    missing = ws.root / "absent.yaml"
    return ["config", "check", missing], [ws.outputs["config"]], ["absent.yaml"]


def config_init_existing_file(ws: Workspace) -> Case:
    cfg = ws.outputs["config"] / "phenolapse.yaml"
    return ["config", "init", cfg], [ws.outputs["config"]], ["phenolapse.yaml", "--force"]


def config_init_existing_folder(ws: Workspace) -> Case:
    return ["config", "init", ws.outputs["run"]], [ws.outputs["run"]], [ws.outputs["run"].name]


def config_init_parent_is_file(ws: Workspace) -> Case:
    cfg = ws.outputs["config"] / "phenolapse.yaml"
    return ["config", "init", cfg / "x.yaml"], [ws.outputs["config"]], ["phenolapse.yaml"]


def demo_unknown_stage(ws: Workspace) -> Case:
    out = ws.outputs["run"]
    return ["demo", "--out", out, "--from", "embedd"], [out], ["embedd"]


def demo_out_is_file(ws: Workspace) -> Case:
    target = ws.outputs["config"] / "phenolapse.yaml"
    return ["demo", "--out", target], [ws.outputs["config"]], ["phenolapse.yaml"]


def demo_bad_seed(ws: Workspace) -> Case:
    out = ws.outputs["run"]
    return ["demo", "--out", out, "--seed", "abc"], [out], ["--seed"]


# The run log and the runner's resume marker of the stage that failed are kept on purpose.
MAY_CHANGE = {"run": ("phenolapse.log", ".stages/ingest.started")}

# Known defects outside the command-line modules: the case fails until they are fixed.
CASES: dict[str, list[Callable[..., Case]]] = {
    "ingest": [ingest_unparseable, ingest_duplicate_platemap_row, ingest_truncated_image,
               ingest_missing_platemap, ingest_bad_pattern, ingest_out_is_results_folder,
               ingest_treatment_without_concentration],
    "validate": [validate_unparseable, validate_duplicate_platemap_row, validate_truncated_image,
                 validate_missing_platemap, validate_missing_folder,
                 validate_out_is_results_folder, validate_out_under_a_file,
                 validate_treatment_without_concentration],
    "simulate": [simulate_bad_preset, simulate_negative_scale, simulate_unknown_config_key,
                 simulate_config_not_mapping, simulate_zero_image_size, simulate_out_is_file],
    "train": [train_corrupt_images, train_bad_config_key, train_wrong_type, train_missing_manifest,
              train_negative_lr, train_init_weights_not_checkpoint, train_out_is_file],
    "embed": [embed_corrupt_image, embed_other_manifest, embed_missing_weights, embed_weights_not_checkpoint,
              embed_no_weights, embed_bad_mode, embed_out_is_file],
    "temporal": [temporal_nan_features, temporal_plate_without_controls, temporal_missing_column,
                 temporal_missing_file, temporal_bad_metric, temporal_too_many_clusters,
                 temporal_out_is_file],
    "lens": [lens_single_class, lens_labels_missing, lens_missing_weights, lens_missing_manifest,
             lens_bad_concentration, lens_out_is_file],
    "compare": [compare_nan_features, compare_different_wells, compare_missing_file,
                compare_missing_column, compare_bad_embedding, compare_out_is_file],
    "run": [run_unknown_key, run_wrong_type, run_missing_path, run_not_yaml, run_unknown_stage,
            run_unparseable_image, run_output_dir_is_file, run_treatment_without_concentration,
            run_yaml_anchor_bomb, run_unknown_simulator_override, run_output_dir_is_image_folder,
            run_output_dir_inside_image_folder],
    "config check": [config_check_unknown_key, config_check_wrong_type, config_check_missing_path,
                     config_check_not_yaml, config_check_missing_file,
                     config_check_yaml_anchor_bomb, config_check_unknown_simulator_override,
                     config_check_output_dir_is_image_folder],
    "config init": [config_init_existing_file, config_init_existing_folder,
                    config_init_parent_is_file],
    "demo": [demo_unknown_stage, demo_out_is_file, demo_bad_seed],
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.__name__,
            marks=[pytest.mark.bad_input(command)],
        )
        for command, cases in CASES.items()
        for case in cases
    ],
)
def test_bad_input_fails_cleanly_and_keeps_earlier_outputs(
    case: Callable[..., Case], ws: Workspace, tiny_screen: Any
) -> None:
    extra = (tiny_screen,) if case.__name__.startswith("simulate") else ()
    args, guard, names = case(ws, *extra)
    assert_clean_failure(args, guard=guard, names=names, may_change=MAY_CHANGE.get(args[0], ()))


def test_every_command_has_bad_input_cases() -> None:
    commands = {"ingest", "validate", "simulate", "train", "embed", "temporal", "lens", "compare",
                "run", "demo", "config init", "config check"}  # fmt: skip
    assert set(CASES) == commands
    assert all(len(cases) >= 3 for cases in CASES.values())
