"""The screen simulator: its images change the way its ground truth says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage, stats

from phenolapse.data.simulator import (
    EFFECT_CLASSES,
    SimulatedScreen,
    SimulationConfig,
    SimulationOutputError,
    image_name,
    load_truth,
    read_simulation_config,
    screen_design,
    simulate_screen,
)
from phenolapse.errors import ConfigError

QUICK = {"image_size": 64, "n_timepoints": 3, "n_drugs": 4, "progress": False}


def image_coverage(path: Path) -> float:
    """Cell-covered fraction of a frame from its pixels alone: local texture above camera noise."""
    img = np.asarray(Image.open(path), dtype=np.float32)
    smooth = ndimage.gaussian_filter(img, 1.0)
    mean = ndimage.uniform_filter(smooth, 5)
    sq = ndimage.uniform_filter(smooth * smooth, 5)
    local_sd = np.sqrt(np.clip(sq - mean * mean, 0, None))
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(local_sd > 4.0, iterations=2))
    return float(ndimage.binary_erosion(mask, iterations=3).mean())


@pytest.fixture(scope="module")
def screen(tiny_screen: SimulatedScreen) -> SimulatedScreen:
    return tiny_screen


@pytest.fixture(scope="module")
def images(screen: SimulatedScreen) -> pd.DataFrame:
    df = pd.read_csv(screen.images_csv_path)
    df["image_coverage"] = [image_coverage(screen.root / p) for p in df["image_path"]]
    return df


@pytest.fixture(scope="module")
def truth(screen: SimulatedScreen) -> pd.DataFrame:
    return load_truth(screen.root)


def _wells(images: pd.DataFrame, drug: str, conc: float) -> pd.DataFrame:
    sel = images[(images["drug"] == drug) & np.isclose(images["concentration_um"], conc)]
    assert len(sel), f"no images of {drug} at {conc}"
    return sel


def _top_dose(truth: pd.DataFrame, drug_class: str) -> pd.Series:
    t = truth[(truth["role"] == "treatment") & (truth["drug_class"] == drug_class)]
    assert len(t), f"no {drug_class} drug in the tiny screen"
    return t.sort_values("concentration_um").iloc[-1]


def test_layout_and_names(screen: SimulatedScreen, images: pd.DataFrame) -> None:
    cfg = read_simulation_config(screen.root)
    platemap = pd.read_csv(screen.platemap_path)
    assert list(platemap.columns[:5]) == ["plate", "well", "drug", "concentration_um", "role"]
    assert len(images) == len(platemap) * cfg.n_fields * cfg.n_timepoints
    assert len(list(screen.images_dir.rglob("*.png"))) == len(images)
    assert all((screen.root / p).is_file() for p in images["mask_path"])
    # replicate wells, DMSO negative controls and PBS untreated wells on every plate
    treat = platemap[platemap["role"] == "treatment"]
    assert treat.groupby(["drug", "concentration_um"]).size().eq(cfg.n_replicates).all()
    assert (platemap["role"] == "negative_control").sum() == cfg.n_dmso_wells
    assert set(platemap.loc[platemap["role"] == "untreated", "drug"]) == {"PBS"}
    # frames before drug addition exist; time_h = elapsed - time_zero
    assert (images["time_h"] < 0).any()
    np.testing.assert_allclose(images["time_h"], images["elapsed_h"] - cfg.time_zero_h)
    first = images.iloc[0]
    assert Path(first["image_path"]).name == image_name(
        first["cell_line"], first["well"], int(first["field"]), float(first["elapsed_h"]), "png"
    )
    img = np.asarray(Image.open(screen.root / first["image_path"]))
    assert img.dtype == np.uint8 and img.shape == (cfg.image_size, cfg.image_size)


def test_manifest_joins_every_image(screen: SimulatedScreen, tiny_manifest: pd.DataFrame) -> None:
    images = pd.read_csv(screen.images_csv_path)
    assert len(tiny_manifest) == len(images)
    m = tiny_manifest.assign(
        rel=[str(Path(p).relative_to(screen.root)) for p in tiny_manifest["image_path"]]
    )
    joined = m.merge(images, left_on="rel", right_on="image_path", suffixes=("", "_sim"))
    assert len(joined) == len(images)
    np.testing.assert_allclose(joined["time_h"], joined["time_h_sim"])
    assert (joined["drug"] == joined["drug_sim"]).all()
    assert (joined["plate"] == joined["plate_sim"]).all()


def test_truth_table(screen: SimulatedScreen, truth: pd.DataFrame) -> None:
    platemap = pd.read_csv(screen.platemap_path)
    assert set(truth["effect"]) <= set(EFFECT_CLASSES)
    for col in ("onset_h", "growth_rate", "growth_factor", "death_rate", "signature",
                "signature_strength", "morphology_only", "drug_class", "effect_level"):  # fmt: skip
        assert col in truth.columns
    keys = set(map(tuple, truth[["drug", "concentration_um"]].to_numpy().tolist()))
    assert keys == set(map(tuple, platemap[["drug", "concentration_um"]].to_numpy().tolist()))
    treat = truth[truth["role"] == "treatment"]
    # the top dose shows the drug's class; low doses never show more than the class
    top = treat.sort_values("concentration_um").groupby("drug").tail(1)
    assert (top["effect"] == top["drug_class"]).all()
    assert set(treat["drug_class"]) == set(EFFECT_CLASSES)
    # a drug that changes morphology and not growth
    morph = treat[treat["morphology_only"]]
    assert len(morph) and (morph["effect"] == "no_effect").all()
    assert (morph["signature"] != "none").all() and (morph["growth_factor"] == 1).all()
    # dose dependence: effect level and signature strength never fall with dose
    for _, g in treat.groupby("drug"):
        g = g.sort_values("concentration_um")
        assert np.all(np.diff(g["effect_level"]) >= 0)
        assert np.all(np.diff(g["signature_strength"]) >= 0)
    controls = truth[truth["role"] != "treatment"]
    assert (controls["effect"] == "no_effect").all() and (controls["signature"] == "none").all()


def test_image_coverage_matches_truth(images: pd.DataFrame) -> None:
    r = np.corrcoef(images["coverage"], images["image_coverage"])[0, 1]
    assert r > 0.95
    assert (images["image_coverage"] - images["coverage"]).abs().mean() < 0.08


def test_control_wells_fill_up(images: pd.DataFrame) -> None:
    ctrl = images[images["role"] == "negative_control"]
    for _, well in ctrl.groupby("well"):
        well = well.sort_values("time_h")
        for col in ("coverage", "image_coverage"):
            assert stats.spearmanr(well["time_h"], well[col])[0] > 0.9, col
            assert well[col].iloc[-1] - well[col].iloc[0] > 0.4, col
        assert 0.05 < well["coverage"].iloc[0] < 0.2
        assert 0.6 < well["coverage"].iloc[-1] < 0.95
        assert well["n_cells"].iloc[-1] > 4 * well["n_cells"].iloc[0]


def test_cytotoxic_top_dose_empties_after_onset(images: pd.DataFrame, truth: pd.DataFrame) -> None:
    row = _top_dose(truth, "cytotoxic")
    sel = _wells(images, row["drug"], row["concentration_um"])
    ctrl_end = images[(images["role"] == "negative_control")].groupby("time_h")["coverage"].mean()
    for _, well in sel.groupby("well"):
        well = well.sort_values("time_h")
        before = well[well["time_h"] <= row["onset_h"]]
        after = well[well["time_h"] > row["onset_h"] + 16]
        for col in ("coverage", "image_coverage", "n_cells"):
            peak = well[col].max()
            assert after[col].iloc[-1] < 0.35 * peak, col
        # growth like control before onset
        assert before["coverage"].iloc[-1] >= before["coverage"].iloc[0]
        assert well["coverage"].iloc[-1] < 0.25 * ctrl_end.iloc[-1]


def test_cytostatic_top_dose_stops_growth(images: pd.DataFrame, truth: pd.DataFrame) -> None:
    row = _top_dose(truth, "cytostatic")
    sel = _wells(images, row["drug"], row["concentration_um"])
    ctrl_all = images[images["role"] == "negative_control"].groupby("time_h")
    ctrl, ctrl_img = ctrl_all["n_cells"].mean(), ctrl_all["image_coverage"].mean()
    for _, well in sel.groupby("well"):
        well = well.sort_values("time_h").set_index("time_h")
        settled = well[well.index >= row["onset_h"] + 8]
        assert settled["n_cells"].max() <= 1.3 * settled["n_cells"].iloc[0]
        assert settled["n_cells"].min() >= 0.8 * settled["n_cells"].iloc[0]  # cells stay alive
        assert well["n_cells"].iloc[-1] < 0.5 * ctrl.iloc[-1]
        # coverage rises only by the enlargement of the cells (size_factor), not by division
        assert settled["image_coverage"].iloc[-1] < 1.6 * settled["image_coverage"].iloc[0]
        assert well["image_coverage"].iloc[-1] < ctrl_img.iloc[-1] - 0.1


def test_replicates_alike_and_unlike_control(images: pd.DataFrame, truth: pd.DataFrame) -> None:
    last = images[images["time_h"] == images["time_h"].max()]
    spread = last[last["role"] == "treatment"].groupby(["drug", "concentration_um"])["coverage"]
    assert (spread.max() - spread.min()).max() < 0.2
    ctrl = last.loc[last["role"] == "negative_control", "coverage"].mean()
    row = _top_dose(truth, "cytotoxic")
    tox = _wells(last, row["drug"], row["concentration_um"])["coverage"].mean()
    assert ctrl - tox > 0.5


def test_signature_masks(
    screen: SimulatedScreen, images: pd.DataFrame, truth: pd.DataFrame
) -> None:
    ctrl = images[images["role"] != "treatment"]
    assert (ctrl["signature_fraction"] == 0).all()
    sample = ctrl.iloc[:: max(1, len(ctrl) // 8)]
    for p in sample["mask_path"]:
        assert np.asarray(Image.open(screen.root / p)).max() == 0
    morph = truth[truth["morphology_only"]].sort_values("concentration_um")
    drug = morph["drug"].iloc[0]
    late = images[(images["drug"] == drug) & (images["time_h"] > morph["onset_h"].max() + 20)]
    by_dose = late.groupby("concentration_um")["signature_fraction"].mean()
    assert by_dose.iloc[-1] > 0.02
    # the share of the cell-covered area that carries the signature grows with dose
    share = (late["signature_fraction"] / late["coverage"]).groupby(late["concentration_um"]).mean()
    assert np.all(np.diff(share.to_numpy()) >= -0.05)
    # a mask pixel lies on or next to a cell, and the mask matches the written fraction
    row = late.sort_values("signature_fraction").iloc[-1]
    mask = np.asarray(Image.open(screen.root / row["mask_path"])) > 0
    assert set(np.unique(np.asarray(Image.open(screen.root / row["mask_path"])))) <= {0, 255}
    assert mask.mean() == pytest.approx(row["signature_fraction"], abs=1e-4)
    img = np.asarray(Image.open(screen.root / row["image_path"]), dtype=np.float32)
    assert abs(img[mask].mean() - 128) > abs(img[~mask].mean() - 128) or img[mask].std() > 8


def test_looks_like_incucyte_phase_contrast(screen: SimulatedScreen, images: pd.DataFrame) -> None:
    ctrl = images[images["role"] == "negative_control"]
    last = ctrl[ctrl["time_h"] == ctrl["time_h"].max()].iloc[0]
    first = ctrl[ctrl["time_h"] == ctrl["time_h"].min()].iloc[0]
    dense = np.asarray(Image.open(screen.root / last["image_path"]), dtype=np.float32)
    sparse = np.asarray(Image.open(screen.root / first["image_path"]), dtype=np.float32)
    # grey background near mid-grey with fine noise, bright halos and dark bodies
    assert abs(np.median(sparse) - 128) < 4
    assert 1.0 < np.percentile(sparse, 75) - np.percentile(sparse, 25) < 8
    assert np.percentile(dense, 99) > 170 and np.percentile(dense, 1) < 80
    assert 10 < dense.std() < 45


def test_resembles_hct15_example(
    screen: SimulatedScreen, images: pd.DataFrame, shared_data: Path
) -> None:
    ref = np.asarray(Image.open(shared_data / "pheno-ml" / "HCT15_example.jpg"), dtype=np.float32)
    ctrl = images[images["role"] == "negative_control"]
    mid = ctrl.iloc[(ctrl["coverage"] - 0.45).abs().argsort()[:3]]
    sims = [np.asarray(Image.open(screen.root / p), dtype=np.float32) for p in mid["image_path"]]
    for sim in sims:
        assert abs(sim.mean() - ref.mean()) < 8
        assert 0.5 < sim.std() / ref.std() < 1.5
        lap_sim = ndimage.laplace(sim).std()
        lap_ref = ndimage.laplace(ref).std()
        assert 0.5 < lap_sim / lap_ref < 2.0


def test_deterministic_and_seeded(tmp_path: Path) -> None:
    a = simulate_screen(tmp_path / "a", preset="tiny", seed=3, **QUICK)
    b = simulate_screen(tmp_path / "b", preset="tiny", seed=3, **QUICK)
    c = simulate_screen(tmp_path / "c", preset="tiny", seed=4, **QUICK)
    ia, ib = pd.read_csv(a.images_csv_path), pd.read_csv(b.images_csv_path)
    pd.testing.assert_frame_equal(ia, ib)
    pd.testing.assert_frame_equal(load_truth(a.root), load_truth(b.root))
    for p in ia["image_path"].iloc[::7]:
        assert (a.root / p).read_bytes() == (b.root / p).read_bytes()
    assert not load_truth(a.root).equals(load_truth(c.root))


@pytest.mark.slow
def test_parallel_workers_match_serial(tmp_path: Path) -> None:
    one = simulate_screen(tmp_path / "one", preset="tiny", seed=1, workers=1, **QUICK)
    two = simulate_screen(tmp_path / "two", preset="tiny", seed=1, workers=2, **QUICK)
    pd.testing.assert_frame_equal(
        pd.read_csv(one.images_csv_path), pd.read_csv(two.images_csv_path)
    )


@pytest.mark.bad_input("simulate")
def test_output_folder_rules(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(SimulationOutputError, match="not empty"):
        simulate_screen(busy, preset="tiny", **QUICK)
    assert (busy / "notes.txt").read_text() == "keep me"
    out = simulate_screen(tmp_path / "sim", preset="tiny", **QUICK)
    again = simulate_screen(tmp_path / "sim", preset="tiny", seed=2, **QUICK)  # replaces it
    assert again.root == out.root and read_simulation_config(out.root).seed == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_formats(tmp_path: Path) -> None:
    for fmt in ("jpg", "tif"):
        s = simulate_screen(tmp_path / fmt, preset="tiny", image_format=fmt, **QUICK)
        df = pd.read_csv(s.images_csv_path)
        assert df["image_path"].str.endswith(f".{fmt}").all()
        assert df["mask_path"].str.endswith(".png").all()
        img = np.asarray(Image.open(s.root / df["image_path"].iloc[0]))
        assert img.shape == (64, 64) and img.dtype == np.uint8


@pytest.mark.bad_input("simulate")
def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="unknown simulator preset"):
        SimulationConfig.preset("huge")
    with pytest.raises(ConfigError, match="n_wellz"):
        SimulationConfig.preset("tiny", n_wellz=3)
    with pytest.raises(ConfigError):
        SimulationConfig.preset("tiny", concentrations_um=[1.0, -1.0])
    with pytest.raises(ConfigError, match="plates_per_cell_line"):
        screen_design(SimulationConfig.preset("paper", plates_per_cell_line=1))


def test_paper_design_mirrors_reference() -> None:
    cfg = SimulationConfig.preset("paper")
    platemap, truth = screen_design(cfg)
    treat = truth[truth["role"] == "treatment"]
    assert treat["cell_line"].nunique() == 21 and treat["drug"].nunique() == 31
    assert treat["concentration_um"].nunique() == 5
    assert len(treat) == 21 * 31 * 5
    assert platemap["plate"].nunique() == 42
    assert platemap.groupby("plate").size().max() <= 384
    reps = (
        platemap[platemap["role"] == "treatment"]
        .groupby(["plate", "drug", "concentration_um"])
        .size()
    )
    assert (reps == 4).all()
    assert cfg.time_step_h == 2 and cfg.elapsed_hours[-1] - cfg.time_zero_h >= 96
    small, _ = screen_design(SimulationConfig.preset("paper", scale=0.1))
    assert small["plate"].str.split("_").str[0].nunique() == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_preset_has_every_effect_class(seed: int) -> None:
    _, truth = screen_design(SimulationConfig.preset("small", seed=seed))
    treat = truth[truth["role"] == "treatment"]
    assert treat["cell_line"].nunique() == 3
    share = treat["effect"].value_counts(normalize=True)
    assert set(share.index) == set(EFFECT_CLASSES)
    assert share.min() >= 0.1
    assert treat["morphology_only"].any()


@pytest.mark.bad_input("simulate")
def test_cli_simulate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from phenolapse.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["simulate", str(out), "--seed", "5", "--image-size", "64",
                              "--no-progress", "--format", "jpg"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert read_simulation_config(out).seed == 5
    assert pd.read_csv(out / "images.csv")["image_path"].str.endswith(".jpg").all()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    res = runner.invoke(app, ["simulate", str(busy), "--no-progress"])
    assert res.exit_code == 2
    assert "not empty" in res.output
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("n_timepoints: 3\nimage_size: 64\nn_drugs: 4\nseed: 7\n")
    res = runner.invoke(
        app, ["simulate", str(tmp_path / "y"), "--config", str(cfg), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert read_simulation_config(tmp_path / "y").seed == 7
    res = runner.invoke(app, ["simulate", str(tmp_path / "z"), "--scale", "-1", "--no-progress"])
    assert res.exit_code == 2
