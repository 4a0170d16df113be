"""``phenolapse run`` end to end on the tiny screen: outputs, report, caching, headless rendering."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.report.pipeline_report import SECTION_TITLES


def _config(tmp: Path, screen_root: Path, **temporal: object) -> Path:
    cfg = {
        "output_dir": str(tmp / "out"),
        "title": "tiny <b>screen</b>",
        "screen": {
            "images_dir": str(screen_root / "images"),
            "platemap": str(screen_root / "platemap.csv"),
        },
        "preprocess": {"image_size": 64},
        "stages": {"lens": False, "compare": False},
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "max_images": 32,
            "crops": [{"n": 1, "scale": [1.0, 1.0]}],
            "progress": False,
        },
        "embed": {"progress": False, "precision": "fp32"},
        "temporal": {"progress": False, **temporal},
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def pipeline_run(tiny_screen, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("run")
    cfg = _config(tmp, Path(tiny_screen.root))
    res = CliRunner().invoke(app, ["run", str(cfg)])
    assert res.exit_code == 0, res.output
    return tmp, cfg, res.output


def _markers(out: Path) -> dict[str, float]:
    return {p.stem: json.loads(p.read_text())["finished"] for p in (out / ".stages").glob("*.json")}


def test_run_writes_every_stage_output_and_report(pipeline_run: tuple[Path, Path, str]) -> None:
    tmp, _, output = pipeline_run
    out = tmp / "out"
    for rel in (
        "manifest.parquet",
        "train/model.pt",
        "train/history.csv",
        "embed/profiles.parquet",
        "temporal/annotations.csv",
        "temporal/distances.parquet",
        "report.html",
        "phenolapse.log",
    ):
        assert (out / rel).exists(), rel
    assert f"report: {out / 'report.html'}" in output
    html = (out / "report.html").read_text()
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in html, title
    assert "tiny &lt;b&gt;screen&lt;/b&gt;" in html  # the user's title is escaped
    assert html.count('src="data:image/png;base64,') >= 3  # loss curve, clusters, heatmap
    pages = sorted((out / "report").glob("*.html"))  # one per drug, with its curves and strips
    assert pages and all(f'href="report/{p.name}"' in html for p in pages)
    assert all(p.read_text().count('src="data:image/png;base64,') >= 2 for p in pages)
    assert "420 images" in html
    # growth measured on the images gives potency over time, shown in the growth section
    metrics = pd.read_csv(out / "temporal" / "gr_metrics.csv")
    assert {"cell_line", "plate", "drug", "time_h", "GR50", "GRmax"} <= set(metrics.columns)
    growth_part = html[html.index(f"<h2>{SECTION_TITLES[3]}</h2>") :]
    assert "GR50 and GRmax against time per drug" in growth_part
    assert set(_markers(out)) == {"ingest", "train", "embed", "temporal", "report"}


def test_rerun_unchanged_recomputes_nothing(pipeline_run: tuple[Path, Path, str]) -> None:
    tmp, cfg, _ = pipeline_run
    before = _markers(tmp / "out")
    res = CliRunner().invoke(app, ["run", str(cfg)])
    assert res.exit_code == 0, res.output
    assert _markers(tmp / "out") == before
    assert res.output.count("up to date") == 5


def test_changing_a_temporal_option_reruns_temporal_onwards(
    pipeline_run: tuple[Path, Path, str], tiny_screen
) -> None:  # type: ignore[no-untyped-def]
    tmp, _, _ = pipeline_run
    out = tmp / "out"
    before = _markers(out)
    cfg = _config(tmp, Path(tiny_screen.root), distance={"metric": "cosine"})
    res = CliRunner().invoke(app, ["run", str(cfg)])
    assert res.exit_code == 0, res.output
    after = _markers(out)
    assert sorted(s for s in after if after[s] != before[s]) == ["report", "temporal"]
    assert all(after[s] == before[s] for s in ("ingest", "train", "embed"))


def _write_exports(confluence: pd.DataFrame, platemap: Path, folder: Path) -> list[Path]:
    """Incucyte-style exports (one per plate) of a confluence table, in percent x 0.9."""
    pm = pd.read_csv(platemap)
    tz = pm.groupby("plate")["time_zero"].first() if "time_zero" in pm else pd.Series(dtype=float)
    folder.mkdir()
    paths = []
    for (line, plate), grp in confluence.groupby(["cell_line", "plate"]):
        wide = grp.pivot_table(index="time_h", columns="well", values="confluence") * 90.0
        lines = [f"Label: {plate}", "Metric: Phase Object Confluence (Percent)"]
        lines += [f"Cell Type: {line}", "", "\t".join(["Date Time", "Elapsed", *wide.columns])]
        for t, row in wide.iterrows():
            elapsed = float(t) + float(tz.get(plate, 0.0))
            lines.append("\t".join(["", f"{elapsed:g}", *(f"{v:.6f}" for v in row)]))
        paths.append(folder / f"{plate}.txt")
        paths[-1].write_text("\n".join(lines) + "\n")
    return paths


def test_growth_exports_replace_image_confluence(
    pipeline_run: tuple[Path, Path, str], tiny_screen
) -> None:  # type: ignore[no-untyped-def]
    tmp, _, _ = pipeline_run
    out = tmp / "out"
    measured = pd.read_csv(out / "temporal" / "confluence.csv")
    root = Path(tiny_screen.root)
    exports = _write_exports(measured, root / "platemap.csv", tmp / "exports")
    before = _markers(out)
    cfg = _config(tmp, root, distance={"metric": "cosine"})  # as the test above left it
    data = yaml.safe_load(cfg.read_text())
    data["screen"]["growth_exports"] = [str(p.relative_to(tmp)) for p in exports]
    cfg.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["run", str(cfg)])
    assert res.exit_code == 0, res.output
    after = _markers(out)
    assert sorted(s for s in after if after[s] != before[s]) == ["report", "temporal"]
    read = pd.read_csv(out / "temporal" / "confluence.csv")
    key = ["plate", "well", "time_h"]
    both = measured.merge(read, on=key, suffixes=("_img", "_export"))
    assert len(both) == len(measured)
    np.testing.assert_allclose(both["confluence_export"], 0.9 * both["confluence_img"], atol=1e-6)
    html = (out / "report.html").read_text()
    assert "GR50 and GRmax against time per drug" in html


def test_report_renders_in_headless_chromium(pipeline_run: tuple[Path, Path, str]) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium browser installed (Debian package 'chromium')")
    tmp, _, _ = pipeline_run
    report = tmp / "out" / "report.html"
    shot = tmp / "shot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chrome-profile'}",
    ]
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1280)
    assert img.std() > 20  # text, tables and figures, not a blank page
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", report.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert dom.count("<img") >= 3
    assert all(title.split(":")[0] in dom for title in SECTION_TITLES)


@pytest.mark.slow
def test_demo_drugs_at_10_um_leave_the_control_band(tmp_path: Path) -> None:
    """The demo's cytostatic Drug03 and mixed Drug04 at 10 µM leave the control band.

    Measured (default demo): Drug03 up to 2.0 control spreads from 28 h, Drug04 up to 1.3 from
    60 h (the report's curves draw the band from 0 to 1).
    """
    import pandas as pd

    from phenolapse.pipeline.demo import demo_config
    from phenolapse.pipeline.stages import run_pipeline

    cfg = demo_config(tmp_path / "demo")
    cfg = cfg.model_copy(
        update={"stages": cfg.stages.model_copy(update={"lens": False, "compare": False})}
    )
    run_pipeline(cfg)
    d = pd.read_parquet(tmp_path / "demo" / "temporal" / "distances.parquet")
    ann = pd.read_csv(tmp_path / "demo" / "temporal" / "annotations.csv")
    for drug in ("Drug03", "Drug04"):
        late = d[
            (d["Metadata_drug"] == drug)
            & (d["Metadata_concentration_um"] == 10.0)
            & (d["Metadata_time_h"] > 40)
        ]
        assert late["relative_distance"].max() > 1.0, drug
        onset = ann[(ann["drug"] == drug) & (ann["concentration_um"] == 10.0)]["onset_h"]
        assert onset.notna().all(), drug
