"""Growth exports in ``phenolapse temporal --incucyte`` and ``phenolapse run``; potency over time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.errors import ConfigError, FeatureTableError
from phenolapse.pipeline.config import load_pipeline_config
from phenolapse.pipeline.potency import potency_over_time, write_potency
from phenolapse.report.pipeline_report import build_pipeline_report

TIMES = [4.0 * i for i in range(13)]


def toy_profiles(platemap: Path, *, plate: str = "TOY_plate-1", cell_line: str = "TOY") -> Path:
    """Profiles of the toy plate: 6 features, treated wells drift with dose and time."""
    pm = pd.read_csv(platemap)
    pm = pm[pm["role"] != "untreated"]
    rng = np.random.default_rng(1)
    rows = []
    for _, r in pm.iterrows():
        conc = float(r["concentration_um"]) if r["role"] == "treatment" else 0.0
        for t in TIMES:
            shift = np.log10(1 + conc * 10) * t / 48.0
            feats = rng.normal(0, 0.1, 6) + shift * np.array([1, -1, 0.5, 0, 0, 0])
            rows.append(
                {
                    "Metadata_cell_line": cell_line,
                    "Metadata_plate": plate,
                    "Metadata_well": r["well"],
                    "Metadata_time_h": t,
                    "Metadata_drug": r["drug"],
                    "Metadata_concentration_um": r["concentration_um"],
                    "Metadata_role": r["role"],
                    **{f"f{i}": v for i, v in enumerate(feats)},
                }
            )
    path = platemap.parent / "profiles.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_temporal_reads_incucyte_exports(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    profiles = toy_profiles(toy_inputs["platemap"])
    out = tmp_path / "out"
    args = [
        "temporal",
        profiles,
        "--incucyte",
        toy_inputs["phase"],
        "--incucyte",
        toy_inputs["red"],
        "--platemap",
        toy_inputs["platemap"],
        "--out",
        out,
        "--k",
        "2",
        "--no-figures",
        "--no-progress",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    conf = pd.read_csv(out / "confluence.csv")
    assert set(conf["plate"]) == {"TOY_plate-1"}
    assert "E2" not in set(conf["well"]) or (conf["role"] != "blank").all()
    b2 = conf[conf["well"] == "B2"].sort_values("time_h")
    np.testing.assert_allclose(b2["confluence"].iloc[0], 0.10, rtol=0.05)  # 10 % at 0 h
    gr = pd.read_csv(out / "gr.csv")
    end = gr[(gr["time_h"] == 48) & (gr["concentration_um"] == 10)].set_index("drug")["gr"]
    # control 0.03 / h; at 10 uM stat grows 0.0000 / h (GR 0), tox -0.03 / h (GR 2^-1 - 1)
    assert end["stat"] == pytest.approx(0.0, abs=0.03)
    assert end["tox"] == pytest.approx(-0.5, abs=0.03)
    # an export of another plate than the profiles' is a clear error
    args[1] = toy_profiles(toy_inputs["platemap"], plate="P9")
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 2
    assert "none match" in res.output and "TOY_plate-1" in res.output


def test_incucytedrc_export_and_platemap_xml(shared_data: Path) -> None:
    from phenolapse.data.incucyte import read_confluence_exports

    folder = shared_data / "growth-real" / "incucytedrc"
    if not (folder / "example_data.txt").is_file():
        pytest.skip("IncucyteDRC example data absent")
    g = read_confluence_exports([folder / "example_data.txt"], platemap=folder / "example.PlateMap")
    assert set(g["plate"]) == {"DJ_MDA-MB-468_30-1-2014"}
    assert (g["confluence"].between(0, 1)).all()
    assert {"negative_control", "treatment"} <= set(g["role"])
    first = g[(g["well"] == "B2") & (g["time_h"] == 0)]["confluence"]
    assert first.iloc[0] == pytest.approx(0.1575452)


def test_potency_over_time_from_confluence(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    from phenolapse.data.incucyte import read_confluence_exports

    growth = read_confluence_exports([toy_inputs["phase"]], platemap=toy_inputs["platemap"])
    metrics = potency_over_time(growth)
    assert set(metrics["drug"]) == {"stat", "tox"}
    late = metrics[metrics["time_h"] == 48].set_index("drug")
    # rate(c) = 0.03 + (r_top - 0.03) / (1 + (0.3 / c)^2); GR = 0.5 where rate / 0.03 = log2 1.5,
    # so GR50 = 0.3 * sqrt(f / (1 - f)) with f = (1 - log2 1.5) * 0.03 / (0.03 - r_top)
    for drug, top in (("stat", 0.0), ("tox", -0.03)):
        f = (1 - np.log2(1.5)) * 0.03 / (0.03 - top)
        assert late.loc[drug, "GR50"] == pytest.approx(0.3 * np.sqrt(f / (1 - f)), rel=0.05)
    assert late.loc["tox", "GRmax"] == pytest.approx(-0.5, abs=0.05)
    few = potency_over_time(growth, max_time_points=4)
    assert sorted(few["time_h"].unique()) == [4.0, 20.0, 32.0, 48.0]  # spread, the last kept
    pd.testing.assert_frame_equal(
        few[few["time_h"] == 48].reset_index(drop=True),
        metrics[metrics["time_h"] == 48].reset_index(drop=True),
    )
    files = write_potency(growth, tmp_path / "temporal")
    assert (tmp_path / "temporal" / "gr_metrics.csv").is_file()
    assert any(p.name == "potency_TOY_TOY_plate-1.png" for p in files.values())


def test_report_shows_potency_figures(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    from phenolapse.data.incucyte import read_confluence_exports
    from phenolapse.pipeline.config import PipelineConfig

    growth = read_confluence_exports([toy_inputs["phase"]], platemap=toy_inputs["platemap"])
    out = tmp_path / "run"
    tdir = out / "temporal"
    tdir.mkdir(parents=True)
    growth.to_csv(tdir / "confluence.csv", index=False)
    write_potency(growth, tdir)
    pd.DataFrame({"effect": ["cytotoxic", "cytostatic"]}).to_csv(
        tdir / "annotations.csv", index=False
    )
    report = build_pipeline_report(out, PipelineConfig(), {"temporal": {}})
    html = report.read_text()
    growth_part = html[html.index("Growth-rate inhibition</h2>") :]
    assert "GR50 and GRmax against time per drug" in growth_part
    assert growth_part.count("data:image/png;base64") >= 1
    assert "GR metrics per drug at the last time point" in growth_part
    temporal_part = html[
        html.index("Temporal drug effects</h2>") : html.index("Growth-rate inhibition</h2>")
    ]
    assert "potency" not in temporal_part  # the figures sit in the growth section only


def _config(tmp_path: Path, screen: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(f"output_dir: out\nscreen:\n  images_dir: images\n{screen}")
    return path


def test_run_config_growth_exports(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    phase = toy_inputs["phase"]
    cfg = load_pipeline_config(
        _config(tmp_path, f"  growth_exports: [{phase.name}]\n  time_zero: 4\n")
    )
    assert cfg.screen.growth_exports == [tmp_path / phase.name]  # relative to the config file
    assert cfg.screen.growth_time_zero() == 4.0
    with pytest.raises(ConfigError, match=r"screen.growth_exports\[1\]: .*missing.txt"):
        load_pipeline_config(_config(tmp_path, f"  growth_exports: [{phase.name}, missing.txt]\n"))
    with pytest.raises(ConfigError, match=r"screen\.time_zero"):
        load_pipeline_config(
            _config(tmp_path, f"  growth_exports: [{phase.name}]\n  time_zero: 2020-01-01T10:00\n")
        )


def test_run_stage_key_follows_export_content(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    from phenolapse.pipeline.runner import StageContext
    from phenolapse.pipeline.stages import _temporal_fp

    phase = toy_inputs["phase"]
    cfg = load_pipeline_config(
        _config(
            tmp_path,
            f"  growth_exports: [{phase.name}]\n  growth_platemap: {toy_inputs['platemap'].name}\n",
        )
    )
    ctx = StageContext(out_dir=tmp_path / "out", config=cfg, outputs={})
    before = _temporal_fp(ctx)
    phase.write_text(phase.read_text().replace("Notes: ", "Notes: edited"))
    assert _temporal_fp(ctx) != before


def test_exports_without_platemap_or_readout(toy_inputs: dict[str, Path]) -> None:
    from phenolapse.data.incucyte import read_confluence_exports

    with pytest.raises(FeatureTableError, match="plate map"):
        read_confluence_exports([toy_inputs["phase"]])
    with pytest.raises(FeatureTableError, match="given twice"):
        read_confluence_exports([toy_inputs["phase"]] * 2, platemap=toy_inputs["platemap"])
    with pytest.raises(FeatureTableError, match="no 'confluence' readout"):
        read_confluence_exports([toy_inputs["red"]], platemap=toy_inputs["platemap"])


def test_report_embeds_few_potency_figures(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    from phenolapse.data.incucyte import read_confluence_exports
    from phenolapse.report.growth_figures import plot_potency
    from phenolapse.report.html import Figure, Text
    from phenolapse.report.pipeline_report import potency_blocks

    growth = read_confluence_exports([toy_inputs["phase"]], platemap=toy_inputs["platemap"])
    metrics = potency_over_time(growth)
    # 24 drugs on one plate: distinct looks, legend beside the axes
    many = pd.concat(
        [metrics.assign(drug=f"{d}{i:02d}") for i in range(12) for d in ("a", "b")],
        ignore_index=True,
    )
    tdir = tmp_path / "temporal"
    tdir.mkdir()
    metrics.to_csv(tdir / "gr_metrics.csv", index=False)
    for i in range(8):
        plot_potency(many, title=f"plate {i}", path=tdir / "potency" / f"potency_P{i}.png")
    blocks = potency_blocks(tdir, limit=6)
    assert sum(isinstance(b, Figure) for b in blocks) == 6
    assert any(isinstance(b, Text) and "2 more potency figure" in b.text for b in blocks)
