"""Plate maps: reading, canonical wells, inferred roles, and errors that name the CSV line."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from phenolapse.data.platemap import (
    ROLES,
    case_conflicts,
    normalize_text,
    read_platemap,
    validate_platemap,
)
from phenolapse.errors import PhenolapseError, PlateMapError


def _csv(tmp_path: Path, text: str, name: str = "platemap.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_platemap_normalises(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "plate,well,drug,concentration_um,role,notes\n"
        "P1,A01,staurosporine,0.1,treatment,x\n"
        "P1,a10, DMSO ,0,Negative_Control,\n"
        "P2,A1,PBS,,untreated,y\n",
    )
    pm = read_platemap(path)
    assert list(pm["plate"]) == ["P1", "P1", "P2"]
    assert list(pm["well"]) == ["A1", "A10", "A1"]
    assert list(pm["drug"]) == ["staurosporine", "DMSO", "PBS"]
    assert pm["concentration_um"].iloc[0] == 0.1
    assert pm["concentration_um"].iloc[1] == 0.0
    assert math.isnan(pm["concentration_um"].iloc[2])
    assert list(pm["role"]) == ["treatment", "negative_control", "untreated"]
    assert list(pm["notes"]) == ["x", "", "y"]


def test_platemap_without_plate_column(tmp_path: Path) -> None:
    pm = read_platemap(_csv(tmp_path, "well,drug,concentration_um,role\nB2,taxol,1,treatment\n"))
    assert list(pm["plate"]) == [""]
    assert pm.loc[0, "well"] == "B2"


@pytest.mark.parametrize("role_column", [False, True])
def test_roles_are_inferred_from_drug(tmp_path: Path, role_column: bool) -> None:
    rows = [
        ("A1", "DMSO", "0"),
        ("A2", "vehicle", "0"),
        ("A3", "PBS", ""),
        ("A4", "", ""),
        ("A5", "none", ""),
        ("A6", "medium", ""),
        ("A7", "Untreated", ""),
        ("A8", "bortezomib", "0.01"),
    ]
    header = "well,drug,concentration_um" + (",role" if role_column else "")
    body = "".join(f"{w},{d},{c}" + ("," if role_column else "") + "\n" for w, d, c in rows)
    pm = read_platemap(_csv(tmp_path, header + "\n" + body))
    assert list(pm["role"]) == [
        "negative_control",
        "negative_control",
        "untreated",
        "untreated",
        "untreated",
        "untreated",
        "untreated",
        "treatment",
    ]


def test_same_well_on_two_plates_is_fine(tmp_path: Path) -> None:
    pm = read_platemap(
        _csv(
            tmp_path,
            "plate,well,drug,concentration_um,role\n1,A1,x,1,treatment\n2,A01,y,2,treatment\n",
        )
    )
    assert list(zip(pm["plate"], pm["well"], pm["drug"], strict=True)) == [
        ("1", "A1", "x"),
        ("2", "A1", "y"),
    ]


@pytest.mark.bad_input("ingest")
def test_duplicate_row_names_both_lines(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "plate,well,drug,concentration_um,role\n"
        "P1,A1,x,1,treatment\n"
        "P1,B1,x,2,treatment\n"
        "P1,A01,y,3,treatment\n",
    )
    with pytest.raises(PlateMapError) as info:
        read_platemap(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "duplicate rows for plate 'P1' well A1 (lines [2, 4])" in msg


def test_duplicate_allowed_for_different_cell_lines(tmp_path: Path) -> None:
    pm = read_platemap(
        _csv(
            tmp_path,
            "cell_line,well,drug,concentration_um,role\nA549,A1,x,1,treatment\nHeLa,A1,x,1,treatment\n",
        )
    )
    assert len(pm) == 2


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("P1,A3,x,ten,treatment", r"line 4: concentration_um 'ten' is not a number"),
        ("P1,A3,x,-1,treatment", r"line 4: negative concentration_um -1(\.0)?$"),
        ("P1,A3,x,1,poison", r"line 4: unknown role 'poison'; use one of"),
        ("P1,A0,x,1,treatment", r"line 4: not a well id: 'A0'"),
        ("P1,3A,x,1,treatment", r"line 4: not a well id: '3A'"),
        ("P1,A3,,1,treatment", r"line 4: treatment well A3 has no drug"),
    ],
)
def test_bad_rows_name_the_csv_line(tmp_path: Path, bad_line: str, expected: str) -> None:
    path = _csv(
        tmp_path,
        "plate,well,drug,concentration_um,role\nP1,A1,x,1,treatment\nP1,A2,DMSO,0,negative_control\n"
        + bad_line
        + "\n",
    )
    with pytest.raises(PlateMapError, match=expected) as info:
        read_platemap(path)
    assert str(info.value).startswith(f"{path}, line 4:")


@pytest.mark.bad_input("ingest")
def test_missing_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "plate,well,compound,role\nP1,A1,x,treatment\n")
    with pytest.raises(PlateMapError) as info:
        read_platemap(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: missing column(s) ['drug', 'concentration_um']")
    assert "compound" in msg  # lists what was found


@pytest.mark.bad_input("ingest")
def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(PlateMapError, match="has no rows"):
        read_platemap(_csv(tmp_path, "plate,well,drug,concentration_um,role\n"))
    with pytest.raises(PlateMapError, match="cannot read as CSV"):
        read_platemap(_csv(tmp_path, "", name="empty.csv"))
    with pytest.raises(PlateMapError, match="plate map not found"):
        read_platemap(tmp_path / "nope.csv")


def test_validate_does_not_modify_the_input() -> None:
    df = pd.DataFrame(
        {"well": ["A01", "B03"], "drug": ["DMSO", "x"], "concentration_um": ["0", "1.5"]}
    )
    before = df.copy()
    out = validate_platemap(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(out["well"]) == ["A1", "B3"]
    assert list(out["concentration_um"]) == [0.0, 1.5]
    assert list(out["role"]) == ["negative_control", "treatment"]
    assert set(out["role"]) <= set(ROLES)


def test_errors_are_phenolapse_errors() -> None:
    assert issubclass(PlateMapError, PhenolapseError)


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
