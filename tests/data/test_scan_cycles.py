"""Scan cycles: images of one plate taken minutes apart are one time point; plate-map text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.data.manifest import _tolerance_min, scan_cycles
from phenolapse.data.platemap import case_conflicts, normalize_text, read_platemap
from phenolapse.errors import PlateMapError


def _scan(starts_min: list[float], wells: int, step_min: float) -> tuple[np.ndarray, list[str]]:
    hours = [(s + i * step_min) / 60 for s in starts_min for i in range(wells)]
    keys = [f"A{i + 1}" for _ in starts_min for i in range(wells)]
    return np.asarray(hours), keys


def test_wells_minutes_apart_form_one_cycle_each_scan() -> None:
    hours, keys = _scan([0, 240, 480], wells=8, step_min=3)
    cycles, span = scan_cycles(hours, keys, tolerance_h=0.5)
    np.testing.assert_array_equal(np.unique(cycles), [0.0, 4.0, 8.0])
    assert span == pytest.approx(21 / 60)
    assert _tolerance_min(hours, keys) == 30.0


def test_back_to_back_scans_split_on_a_returning_well() -> None:
    # hourly scans that take 45 min: the gap between scans (15 min) is below the tolerance
    hours, keys = _scan([0, 60, 120], wells=10, step_min=5)
    assert _tolerance_min(hours, keys) == 30.0
    cycles, _ = scan_cycles(hours, keys, tolerance_h=0.5)
    np.testing.assert_array_equal(np.unique(cycles), [0.0, 1.0, 2.0])
    assert (pd.Series(cycles).value_counts() == 10).all()


def test_short_interval_lowers_the_default_tolerance() -> None:
    hours, keys = _scan([0, 20, 40], wells=2, step_min=1)
    assert _tolerance_min(hours, keys) == pytest.approx(10.0)


def test_zero_tolerance_keeps_every_time_and_duplicates_stay_together() -> None:
    hours, keys = _scan([0, 240], wells=3, step_min=2)
    cycles, _ = scan_cycles(hours, keys, tolerance_h=0.0)
    np.testing.assert_array_equal(cycles, hours)
    dup, _ = scan_cycles(np.array([0.0, 0.02, 4.0]), ["A1", "A1", "A1"], tolerance_h=0.5)
    np.testing.assert_array_equal(dup, [0.0, 0.0, 4.0])  # a re-saved file: one slot, flagged later


def test_normalize_text() -> None:
    assert normalize_text(" drug\u200b03\u00a0 ") == "drug03"
    assert normalize_text("a \t b") == "a b"
    assert normalize_text("Cafe\u0301") == "Caf\u00e9"


def test_case_conflicts_name_both_spellings() -> None:
    pm = pd.DataFrame({"drug": ["drug03", "Drug03", "taxol", ""]})
    (msg,) = case_conflicts(pm)
    assert "'Drug03' and 'drug03'" in msg


def test_blank_rows_skipped_and_lines_still_counted(tmp_path: Path) -> None:
    path = tmp_path / "pm.csv"
    path.write_text(
        "plate,well,drug,concentration_um,role\n,,,,\nP1,A1,x,1,treatment\nP1,A2,y,abc,treatment\n"
    )
    with pytest.raises(PlateMapError, match=r"line 4: concentration_um 'abc'"):
        read_platemap(path)
    path.write_text("plate;well;drug;concentration_um;role\nP1;A1;x;1;treatment\n;;;;\n")
    assert read_platemap(path)["well"].tolist() == ["A1"]


def test_tiff_header_matches_what_is_read(tmp_path: Path) -> None:
    import tifffile

    from phenolapse.data.imageio import read_header, read_raw

    cases = {
        "gray16.tif": np.zeros((20, 30), np.uint16),
        "two_channels.tif": np.zeros((2, 20, 30), np.uint16),
        "float.tif": np.zeros((20, 30), np.float32),
    }
    for file, arr in cases.items():
        tifffile.imwrite(tmp_path / file, arr)
        header, raw = read_header(tmp_path / file), read_raw(tmp_path / file)
        assert (header.height, header.width) == raw.shape[:2]
        assert header.channels == (raw.shape[2] if raw.ndim == 3 else 1)
    assert read_header(tmp_path / "gray16.tif").bits == "16-bit"
    assert read_header(tmp_path / "float.tif").bits == "32-bit float"
