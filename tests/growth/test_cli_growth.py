"""``phenolapse growth`` end to end on small synthetic exports, and its clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from phenolapse.cli import app


def run(args: list[object]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_growth_command_writes_tables_figures_report(
    toy_inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = run(
        [
            "growth",
            toy_inputs["phase"],
            toy_inputs["red"],
            "--platemap",
            toy_inputs["platemap"],
            "--out",
            out,
            "--at",
            30,
        ]
    )
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {
        "gr.csv",
        "gr_metrics.csv",
        "dose_response.csv",
        "annotations.csv",
        "growth.csv",
        "report.html",
        "growth_config.yaml",
        "figures",
    } <= names
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {
        "potency_TOY_TOY_plate-1.png",
        "dose_response_TOY_TOY_plate-1_tox.png",
        "growth_TOY_TOY_plate-1_stat.png",
    } <= figs
    gr = pd.read_csv(out / "gr.csv")
    assert {
        "cell_line",
        "drug",
        "concentration_um",
        "time_h",
        "GR",
        "GR_static",
        "GR_toxic",
    } <= set(gr.columns)
    ann = pd.read_csv(out / "annotations.csv").set_index(["drug", "concentration_um"])
    assert ann.loc[("tox", 10.0), "effect"] == "cytotoxic"
    assert ann.loc[("stat", 10.0), "effect"] == "cytostatic"
    assert ann.loc[("stat", 0.01), "effect"] == "no_effect"
    assert ann.loc[("tox", 10.0), "onset_h"] <= 12
    dr = pd.read_csv(out / "dose_response.csv")
    assert 30.0 in set(dr["time_h"])  # the extra time point
    stat48 = dr[(dr["drug"] == "stat") & (dr["time_h"] == 48.0)].iloc[0]
    assert stat48["ec50_low"] < stat48["ec50_um"] < stat48["ec50_high"]
    m = pd.read_csv(out / "gr_metrics.csv")
    stat = m[(m["drug"] == "stat") & (m["time_h"] == 48.0)].iloc[0]
    assert stat["GRinf"] == pytest.approx(0.0, abs=0.08) and stat["GEC50"] == pytest.approx(
        0.3, rel=0.3
    )
    html = (out / "report.html").read_text()
    assert "Potency over time" in html and "Effect calls from growth" in html


def test_growth_command_gr_table(tmp_path: Path) -> None:
    rows = []
    for conc in [0.001, 0.01, 0.1, 1, 10]:
        rows.append(
            {
                "cell_line": "L<1>",
                "agent": "d",
                "time": 72,
                "concentration": conc,
                "cell_count": 100 + 900 / (1 + conc / 0.1),
                "cell_count__ctrl": 1000,
                "cell_count__time0": 100,
            }
        )
    path = tmp_path / "gr.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    res = run(["growth", path, "--out", out, "--no-figures"])
    assert res.exit_code == 0, res.output
    gr = pd.read_csv(out / "gr.csv")
    assert (
        list(gr.columns[:4]) == ["cell_line", "drug", "concentration_um", "time_h"] and len(gr) == 5
    )
    assert "L&lt;1&gt;" in (out / "report.html").read_text()  # user strings escaped


@pytest.mark.bad_input("growth")
def test_growth_without_platemap_is_refused(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    res = run(["growth", toy_inputs["phase"], "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "--platemap" in res.stderr and "B2" in res.stderr


@pytest.mark.bad_input("growth")
def test_growth_platemap_missing_well(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    pm = pd.read_csv(toy_inputs["platemap"])
    short = tmp_path / "short.csv"
    pm[pm["well"] != "C3"].to_csv(short, index=False)
    res = run(["growth", toy_inputs["phase"], "--platemap", short, "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "C3" in res.stderr and "short.csv" in res.stderr


@pytest.mark.bad_input("growth")
def test_growth_bad_gr_table_value(tmp_path: Path) -> None:
    path = tmp_path / "gr.tsv"
    path.write_text(
        "concentration\tcell_count\tcell_count__ctrl\tcell_count__time0\n1\t10\t20\t5\n2\tten\t20\t5\n"
    )
    res = run(["growth", path, "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "gr.tsv, row 3: cell_count 'ten'" in res.stderr


@pytest.mark.bad_input("growth")
def test_growth_unknown_metric_and_no_controls(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    res = run(
        [
            "growth",
            toy_inputs["phase"],
            "--platemap",
            toy_inputs["platemap"],
            "--metric",
            "cell_count",
            "--out",
            tmp_path / "o",
        ]
    )
    assert res.exit_code == 2 and "cell_count" in res.stderr and "confluence" in res.stderr
    pm = pd.read_csv(toy_inputs["platemap"])
    pm.loc[pm["role"] == "negative_control", "role"] = "untreated"
    noctrl = tmp_path / "noctrl.csv"
    pm.to_csv(noctrl, index=False)
    res = run(["growth", toy_inputs["phase"], "--platemap", noctrl, "--out", tmp_path / "o2"])
    assert res.exit_code == 2 and "negative_control" in res.stderr


def test_growth_outputs_documented(toy_inputs: dict[str, Path], tmp_path: Path) -> None:
    import importlib.util

    doc_test = Path(__file__).resolve().parents[1] / "test_docs_formats.py"
    spec = importlib.util.spec_from_file_location("docs_formats", doc_test)
    assert spec is not None and spec.loader is not None
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    out = tmp_path / "out"
    args = ["growth", toy_inputs["phase"], toy_inputs["red"], "--platemap", toy_inputs["platemap"]]
    assert run([*args, "--out", out]).exit_code == 0
    assert docs.check_tables(out) == {}
    assert docs.undocumented({p.name for p in out.iterdir()}) == []
    assert docs.undocumented({p.stem for p in (out / "figures").iterdir()}) == []
    ann = pd.read_csv(out / "annotations.csv")
    assert all(f"`{r}`" in docs.TEXT for r in set(ann["death_rule"]))


@pytest.mark.bad_input("growth")
def test_failed_run_leaves_earlier_results_untouched(
    toy_inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    good = ["growth", toy_inputs["phase"], "--platemap", toy_inputs["platemap"], "--no-figures"]
    assert run([*good, "--out", out]).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = run([*good, "--out", out, "--group-by", "no_such_column"])
    assert res.exit_code == 2 and "no_such_column" in res.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
