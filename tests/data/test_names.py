"""File-name parsing: built-in Incucyte and reference schemes, custom patterns, well ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phenolapse.data.names import ParsedName, canonical_well, parse_name, split_well
from phenolapse.errors import ParseError, PhenolapseError


def test_incucyte_name_with_tile() -> None:
    p = parse_name("SHSY5Y_Phase_B10_1_02d08h00m_3.tif")
    assert p == ParsedName(
        cell_line="SHSY5Y",
        plate=None,
        well="B10",
        row="B",
        column=10,
        field=1,
        tile=3,
        elapsed_h=56.0,
        timestamp=None,
    )


def test_incucyte_name_without_tile_and_with_minutes() -> None:
    p = parse_name(Path("/some/dir/A549_NucLight_Phase_C07_12_10d23h45m.PNG"))
    assert (p.cell_line, p.well, p.row, p.column, p.field, p.tile) == ("A549", "C7", "C", 7, 12, 1)
    assert p.elapsed_h == pytest.approx(10 * 24 + 23 + 45 / 60, abs=1e-12)
    assert p.plate is None and p.timestamp is None


def test_incucyte_name_without_middle_part() -> None:
    p = parse_name("HCT15_D4_2_00d01h30m.jpeg")
    assert (p.cell_line, p.well, p.field, p.tile, p.elapsed_h) == ("HCT15", "D4", 2, 1, 1.5)


def test_reference_name_absolute_timestamp() -> None:
    p = parse_name("ACHN_CL3_P1_C15_1_2019y08m30d_00h21m.jpg")
    assert (p.cell_line, p.plate, p.well, p.row, p.column, p.field, p.tile) == (
        "ACHN",
        "P1",
        "C15",
        "C",
        15,
        1,
        1,
    )
    assert p.timestamp == dt.datetime(2019, 8, 30, 0, 21)
    assert p.elapsed_h is None


def test_real_livecell_names(shared_data: Path) -> None:
    files = sorted((shared_data / "livecell-shsy5y").glob("*.tif"))
    assert len(files) == 176
    parsed = [parse_name(f) for f in files]
    assert {p.cell_line for p in parsed} == {"SHSY5Y"}
    assert {p.well for p in parsed} == {"B10", "C10"}
    assert {p.field for p in parsed} == {1}
    assert {p.tile for p in parsed} == {1, 2, 3, 4}
    times = sorted({p.elapsed_h for p in parsed if p.elapsed_h is not None})
    assert times == [4.0 * i for i in range(22)]  # 22 time points, 0 .. 84 h
    assert all(p.plate is None and p.timestamp is None for p in parsed)
    # each (well, tile, time) exactly once
    assert len({(p.well, p.tile, p.elapsed_h) for p in parsed}) == 176


def test_custom_pattern_elapsed_hours() -> None:
    pattern = r"^(?P<plate>P\d+)-(?P<well>[A-P]\d+)-s(?P<field>\d+)-t(?P<time_h>[\d.]+)h\.tif$"
    p = parse_name("P7-H012-s3-t12.5h.tif", pattern)
    assert (p.plate, p.well, p.row, p.column, p.field, p.tile) == ("P7", "H12", "H", 12, 3, 1)
    assert p.elapsed_h == 12.5
    assert p.cell_line == "unknown"


def test_custom_pattern_absolute_time() -> None:
    pattern = (
        r"(?P<cell_line>\w+?)__(?P<well>\w\d+)__(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
        r"T(?P<hour>\d\d)(?P<minute>\d\d)\.png"
    )
    p = parse_name("MCF7__B02__2021-03-04T0510.png", pattern)
    assert (p.cell_line, p.well, p.field) == ("MCF7", "B2", 1)
    assert p.timestamp == dt.datetime(2021, 3, 4, 5, 10)


@pytest.mark.parametrize(
    ("name", "well"),
    [("r02c05f03-sk4.tiff", "B5"), ("r26c12f01-sk0.tiff", "Z12"), ("r27c01f01-sk0.tiff", "AA1")],
)
def test_custom_pattern_numeric_row_and_column(name: str, well: str) -> None:
    pattern = r"r(?P<row>\d+)c(?P<column>\d+)f(?P<field>\d+)-sk(?P<time_h>\d+)"
    p = parse_name(name, pattern)
    assert p.well == well
    assert p.field == int(name[7:9])
    assert p.elapsed_h == float(name.split("sk")[1].split(".")[0])
    q = parse_name("row_c_col_07_t2.png", r"row_(?P<row>[a-z])_col_(?P<column>\d+)_t(?P<time_h>\d)")
    assert (q.well, q.row, q.column) == ("C7", "C", 7)


@pytest.mark.bad_input("ingest")
def test_custom_pattern_errors_name_the_file() -> None:
    with pytest.raises(ParseError, match=r"other_name\.tif: does not match the naming pattern"):
        parse_name("other_name.tif", r"(?P<well>[A-H]\d+)_t(?P<time_h>\d+)\.tif")
    with pytest.raises(
        ParseError, match=r"must have a named group 'well' \(or 'row' and 'column'\)"
    ):
        parse_name("x_7.tif", r"x_(?P<field>\d+)\.tif")
    with pytest.raises(ParseError, match=r"invalid naming pattern '\(\?P<well>': "):
        parse_name("x_7.tif", r"(?P<well>")
    with pytest.raises(ParseError, match=r"x_\.tif: the naming pattern must have a named group"):
        parse_name("x_.tif", r"x_(?P<well>\w\d)?(?P<time_h>\d)?\.tif")
    with pytest.raises(ParseError, match=r"A1\.tif: the naming pattern captured no time"):
        parse_name("A1.tif", r"(?P<well>A1)\.tif")
    with pytest.raises(ParseError, match=r"Z0_t1\.tif: .*not a well id"):
        parse_name("Z0_t1.tif", r"(?P<well>Z0)_t(?P<time_h>\d)\.tif")


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize(
    "name",
    [
        "notes.tif",
        "SHSY5Y_Phase_B10_1_2d.tif",
        "SHSY5Y_Phase_B10_1_02d08h00m_3.bmp",
        "SHSY5Y_Phase_B10_x_02d08h00m.tif",
        "SHSY5Y_Phase_10B_1_02d08h00m.tif",
    ],
)
def test_unparseable_names(name: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_name(Path("/data/plate1") / name)
    msg = str(info.value)
    assert msg.startswith(name + ": file name not understood")
    assert "--pattern" in msg
    assert isinstance(info.value, PhenolapseError)


@pytest.mark.bad_input("ingest")
def test_invalid_times_are_errors() -> None:
    with pytest.raises(ParseError, match=r"X_A1_1_00d01h60m\.tif: 60 minutes is not a valid time"):
        parse_name("X_A1_1_00d01h60m.tif")
    with pytest.raises(ParseError, match=r"X_Y_P1_A1_1_2019y13m30d_00h21m\.jpg: invalid timestamp"):
        parse_name("X_Y_P1_A1_1_2019y13m30d_00h21m.jpg")


@pytest.mark.bad_input("ingest")
def test_well_with_column_zero_is_an_error() -> None:
    with pytest.raises(ParseError, match=r"X_A00_1_00d01h00m\.tif: .*'A00'"):
        parse_name("X_A00_1_00d01h00m.tif")


@pytest.mark.parametrize(
    ("well", "expected"),
    [
        ("A1", ("A", 1)),
        ("A01", ("A", 1)),
        ("a001", ("A", 1)),
        ("A10", ("A", 10)),
        ("A010", ("A", 10)),
        ("b03", ("B", 3)),
        (" C7 ", ("C", 7)),
        ("AF48", ("AF", 48)),
        ("P24", ("P", 24)),
    ],
)
def test_split_and_canonical_well(well: str, expected: tuple[str, int]) -> None:
    assert split_well(well) == expected
    assert canonical_well(well) == f"{expected[0]}{expected[1]}"


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize("well", ["", "A", "1A", "A0", "A00", "ABC1", "A1B", "A-1", "A1234"])
def test_invalid_well_ids(well: str) -> None:
    with pytest.raises(ParseError, match="not a well id"):
        canonical_well(well)


def test_a1_is_never_a10() -> None:
    assert canonical_well("A1") == canonical_well("A01") == canonical_well("a001") == "A1"
    assert canonical_well("A10") == canonical_well("A010") == "A10"
    assert canonical_well("A1") != canonical_well("A10")
    assert parse_name("X_P_A01_1_00d00h00m.tif").well == "A1"
    assert parse_name("X_P_A10_1_00d00h00m.tif").well == "A10"


_rows = st.sampled_from(["A", "B", "H", "P", "AA", "AF", "a", "h"])


@given(
    cell=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789-", min_size=1, max_size=10),
    middle=st.sampled_from(["Phase", "Phase_Contrast", "NucLight_Red", "x"]),
    row=_rows,
    col=st.integers(1, 48),
    pad=st.booleans(),
    field=st.integers(1, 99),
    days=st.integers(0, 99),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    tile=st.one_of(st.none(), st.integers(1, 16)),
    ext=st.sampled_from(["tif", "tiff", "png", "jpg", "jpeg", "TIF"]),
)
def test_incucyte_name_round_trip(
    cell: str,
    middle: str,
    row: str,
    col: int,
    pad: bool,
    field: int,
    days: int,
    hours: int,
    minutes: int,
    tile: int | None,
    ext: str,
) -> None:
    well = f"{row}{col:02d}" if pad else f"{row}{col}"
    name = f"{cell}_{middle}_{well}_{field}_{days:02d}d{hours:02d}h{minutes:02d}m"
    name += f"_{tile}" if tile is not None else ""
    p = parse_name(f"{name}.{ext}")
    assert p.cell_line == cell
    assert p.well == f"{row.upper()}{col}"
    assert (p.row, p.column, p.field) == (row.upper(), col, field)
    assert p.tile == (1 if tile is None else tile)
    assert p.elapsed_h == pytest.approx(days * 24 + hours + minutes / 60, abs=1e-9)
    assert p.plate is None and p.timestamp is None


@given(row=_rows, col=st.integers(1, 999), zeros=st.integers(0, 3))
def test_canonical_well_idempotent_and_padding_invariant(row: str, col: int, zeros: int) -> None:
    padded = f"{row}{'0' * zeros}{col}"
    canonical = canonical_well(padded)
    assert canonical == f"{row.upper()}{col}"
    assert canonical_well(canonical) == canonical
    assert canonical_well(canonical.lower()) == canonical
