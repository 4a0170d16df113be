"""Readers of growth inputs and the scan-cycle grouping of time stamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.data.incucyte import (
    metric_name,
    read_incucyte_export,
    read_platemap_xml,
    sniff_input,
)
from phenolapse.errors import FeatureTableError
from phenolapse.temporal.growth_course import group_scan_times, prepare, time_course_gr
from phenolapse.temporal.growth_run import load_growth_inputs


def test_metric_names() -> None:
    assert metric_name("Phase Object Confluence (Percent)") == "confluence"
    assert metric_name("Phase Object Count (per Well)") == "cell_count"
    assert metric_name("Red Object Area (Percent)") == "red_area"
    assert metric_name("Red Object Count (per Image)") == "red_count"
    assert metric_name("Green Object Confluence (Percent)") == "green_area"


def test_export_decimal_comma_and_header(toy_inputs: dict[str, Path]) -> None:
    red = read_incucyte_export(toy_inputs["red"])
    phase = read_incucyte_export(toy_inputs["phase"])
    assert set(red["metric"]) == {"red_area"} and set(phase["metric"]) == {"confluence"}
    assert set(red["plate"]) == {"TOY_plate-1"} and set(red["cell_line"]) == {"TOY"}
    b2 = red[(red["well"] == "B2") & (red["time_h"] == 8.0)]["value"].iloc[0]
    assert b2 == pytest.approx(0.05 + 0.0005 * 8, abs=1e-6)
    assert sniff_input(toy_inputs["phase"]) == "incucyte"


def test_scan_cycles_are_one_time_point() -> None:
    stamps = [0.0, 0.05, 0.1, 3.95, 4.0, 4.1, 8.0]
    labels = group_scan_times(stamps, tolerance_h=0.5)
    assert list(labels) == [0.05, 0.05, 0.05, 4.0, 4.0, 4.0, 8.0]


def test_gr_does_not_depend_on_minutes_between_wells(toy_inputs: dict[str, Path]) -> None:
    _kind, long = load_growth_inputs([toy_inputs["phase"]], platemap=toy_inputs["platemap"])
    base = time_course_gr(prepare(long), metric="confluence")
    shifted = long.copy()
    wells = sorted(shifted["well"].unique())
    offset = {w: i * 2.0 / 60 for i, w in enumerate(wells)}  # 2 minutes apart
    shifted["time_h"] = shifted["time_h"] + shifted["well"].map(offset)
    moved = time_course_gr(prepare(shifted), metric="confluence")
    assert len(moved) == len(base)
    assert np.allclose(moved["GR"].to_numpy(), base["GR"].to_numpy(), equal_nan=True)
    assert moved["time_h"].nunique() == base["time_h"].nunique() == 13


def test_platemap_xml_fields(tmp_path: Path) -> None:
    xml = """<?xml version="1.0" encoding="utf-8"?><plateMap><wellStore><wells>
    <well row="0" col="0"><items>
      <wellItem type="Compound" concentration="250" concentrationUnits="nM">
        <referenceItem type="Compound" description="Drug X" /></wellItem>
      <wellItem type="CellType" passage="5" seedingDensity="2000" seedingDensityUnits="cells/well">
        <referenceItem type="CellType" description="A549" /></wellItem>
    </items></well>
    <well row="1" col="11"><items>
      <wellItem type="Compound" concentration="0.1" concentrationUnits="%">
        <referenceItem type="Compound" description="DMSO" /></wellItem>
    </items></well>
    <well row="2" col="2" /></wells></wellStore></plateMap>"""
    path = tmp_path / "p.PlateMap"
    path.write_text(xml, encoding="utf-8")
    pm = read_platemap_xml(path).set_index("well")
    assert pm.loc["A1", "drug"] == "Drug X" and pm.loc["A1", "concentration_um"] == pytest.approx(
        0.25
    )
    assert pm.loc["A1", "cell_line"] == "A549" and pm.loc["A1", "passage"] == "5"
    assert pm.loc["A1", "seeding_density"] == "2000 cells/well"
    assert pm.loc["B12", "role"] == "negative_control" and pm.loc["C3", "role"] == "blank"


def test_long_table_input(tmp_path: Path, toy_inputs: dict[str, Path]) -> None:
    long = read_incucyte_export(toy_inputs["phase"])
    path = tmp_path / "long.csv"
    long[["plate", "well", "time_h", "metric", "value"]].to_csv(path, index=False)
    assert sniff_input(path) == "long"
    kind, table = load_growth_inputs([path], platemap=toy_inputs["platemap"])
    assert kind == "time_course" and set(table["drug"].dropna()) >= {"tox", "stat", "DMSO"}


@pytest.mark.bad_input("growth")
def test_readers_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(
        "Metric: Phase Object Confluence (Percent)\n\nDate Time\tElapsed\tA1\nx\t0\t1.0\nx\t4\tabc\n"
    )
    with pytest.raises(FeatureTableError, match=r"bad.txt, line 5, column 'A1'"):
        read_incucyte_export(bad)
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(other, index=False)
    with pytest.raises(FeatureTableError, match=r"other\.csv: not a growth input"):
        sniff_input(other)


def test_confluence_table_for_the_temporal_stage(toy_inputs: dict[str, Path]) -> None:
    from phenolapse.data.incucyte import to_confluence_table
    from phenolapse.temporal.growth import GROWTH_COLUMNS, growth_rate_inhibition

    _kind, long = load_growth_inputs([toy_inputs["phase"]], platemap=toy_inputs["platemap"])
    table = to_confluence_table(long)
    assert sorted(table.columns) == sorted(GROWTH_COLUMNS)
    assert table["confluence"].between(0, 1).all()
    gr = growth_rate_inhibition(table)
    ours = time_course_gr(prepare(long), metric="confluence")
    a = gr[(gr["drug"] == "stat") & (gr["time_h"] == 48.0)].set_index("concentration_um")["gr"]
    b = ours[(ours["drug"] == "stat") & (ours["time_h"] == 48.0)].set_index("concentration_um")[
        "GR"
    ]
    assert np.allclose(a.sort_index().to_numpy(), b.sort_index().to_numpy())
