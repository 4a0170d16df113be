"""Manifest building: names + folders + plate map -> one row per image, and every bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from phenolapse.data.manifest import (
    MANIFEST_COLUMNS,
    _tolerance_min,
    build_manifest,
    read_manifest,
    scan_cycles,
    skipped_table,
    summarize_manifest,
    validate_manifest,
    write_manifest,
)
from phenolapse.errors import ManifestError, PlateMapError

PM_HEADER = "plate,well,drug,concentration_um,role\n"


def _png(path: Path, value: int = 0, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def _incucyte(root: Path, well: str, hours: int, *, cell: str = "C", field: int = 1) -> Path:
    return _png(root / f"{cell}_Phase_{well}_{field}_{hours // 24:02d}d{hours % 24:02d}h00m.png")


# --------------------------------------------------------------------------- real data


def test_livecell_manifest(shared_data: Path) -> None:
    folder = shared_data / "livecell-shsy5y"
    m = build_manifest(folder, progress=False)
    assert list(m.columns) == MANIFEST_COLUMNS
    assert len(m) == 176
    assert set(m["cell_line"]) == {"SHSY5Y"}
    assert set(m["plate"]) == {"SHSY5Y"}  # no plate field, no sub-folder: the cell line
    assert set(m["well"]) == {"B10", "C10"}
    assert set(m["row"]) == {"B", "C"} and set(m["column"]) == {10}
    assert set(m["field"]) == {1}
    assert set(m["tile"]) == {1, 2, 3, 4}
    assert sorted(m["time_h"].unique()) == [4.0 * i for i in range(22)]
    assert (m.groupby(["well", "tile"]).size() == 22).all()
    assert set(m["role"]) == {"unknown"} and set(m["drug"]) == {""}
    assert m["concentration_um"].isna().all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in m["image_path"])
    # sorted by plate, well, field, tile, time
    first = m.iloc[0]
    assert (first["well"], first["tile"], first["time_h"]) == ("B10", 1, 0.0)
    assert Path(first["image_path"]).name == "SHSY5Y_Phase_B10_1_00d00h00m_1.tif"
    assert m.iloc[21]["time_h"] == 84.0 and m.iloc[22]["tile"] == 2
    summary = summarize_manifest(m)
    assert summary.to_dict("records") == [
        {
            "cell_line": "SHSY5Y",
            "plate": "SHSY5Y",
            "wells": 2,
            "fields": 1,
            "tiles": 4,
            "time_points": 22,
            "images": 176,
            "first_h": 0.0,
            "last_h": 84.0,
        }
    ]


def test_livecell_with_platemap_and_time_zero(shared_data: Path, tmp_path: Path) -> None:
    pm = tmp_path / "pm.csv"
    pm.write_text("well,drug,concentration_um\nB010,PBS,\nC10,DMSO,0\n")
    m = build_manifest(shared_data / "livecell-shsy5y", platemap=pm, time_zero=4, progress=False)
    b10, c10 = m[m["well"] == "B10"], m[m["well"] == "C10"]
    assert len(b10) == len(c10) == 88
    assert set(b10["drug"]) == {"PBS"} and set(b10["role"]) == {"untreated"}
    assert set(c10["drug"]) == {"DMSO"} and set(c10["role"]) == {"negative_control"}
    assert set(c10["concentration_um"]) == {0.0}
    assert sorted(m["time_h"].unique()) == [4.0 * i - 4 for i in range(22)]


def test_simulated_screen_manifest_matches_truth(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    m = build_manifest(tiny_screen.images_dir, platemap=tiny_screen.platemap_path, progress=False)
    truth = pd.read_csv(tiny_screen.images_csv_path)
    truth["image_path"] = [str((tiny_screen.root / p).resolve()) for p in truth["image_path"]]
    assert len(m) == len(truth)
    both = m.merge(truth, on="image_path", suffixes=("", "_truth"), validate="one_to_one")
    assert len(both) == len(truth)
    assert (both["plate"] == both["plate_truth"].astype(str)).all()
    assert (both["well"] == both["well_truth"]).all()
    assert (both["field"] == both["field_truth"]).all()
    np.testing.assert_allclose(both["time_h"], both["time_h_truth"], atol=1e-6)
    pm = pd.read_csv(tiny_screen.platemap_path)
    assert set(m["role"]) <= set(pm["role"]) and m["role"].ne("unknown").all()


# --------------------------------------------------------------------------- times


def test_incucyte_numeric_time_zero_gives_negative_times(tmp_path: Path) -> None:
    for h in (0, 2, 4, 56):
        _incucyte(tmp_path, "A1", h)
    m = build_manifest(tmp_path, time_zero=4.0, progress=False)
    assert list(m["time_h"]) == [-4.0, -2.0, 0.0, 52.0]
    m = build_manifest(tmp_path, time_zero="4", progress=False)
    assert list(m["time_h"]) == [-4.0, -2.0, 0.0, 52.0]
    m = build_manifest(tmp_path, progress=False)
    assert list(m["time_h"]) == [0.0, 2.0, 4.0, 56.0]


@pytest.mark.bad_input("ingest")
def test_elapsed_names_refuse_a_datetime_time_zero(tmp_path: Path) -> None:
    _incucyte(tmp_path, "A1", 1)
    with pytest.raises(ManifestError, match="time_zero must be a number of hours"):
        build_manifest(tmp_path, time_zero="2019-08-30T12:00", progress=False)


def _reference_images(root: Path) -> None:
    for stamp in ("2019y08m30d_00h21m", "2019y08m30d_12h21m", "2019y08m31d_00h51m"):
        _png(root / f"ACHN_CL3_P1_C15_1_{stamp}.jpg")


def test_reference_names_with_iso_time_zero(tmp_path: Path) -> None:
    _reference_images(tmp_path)
    m = build_manifest(tmp_path, time_zero="2019-08-30T06:21", progress=False)
    assert list(m["plate"]) == ["P1"] * 3
    assert list(m["well"]) == ["C15"] * 3
    assert list(m["cell_line"]) == ["ACHN"] * 3
    assert list(m["time_h"]) == [-6.0, 6.0, 18.5]
    m = build_manifest(tmp_path, time_zero=dt.datetime(2019, 8, 30, 0, 21), progress=False)
    assert list(m["time_h"]) == [0.0, 12.0, 24.5]


def test_reference_names_without_time_zero_start_at_first_image(tmp_path: Path) -> None:
    _reference_images(tmp_path)
    m = build_manifest(tmp_path, progress=False)
    assert list(m["time_h"]) == [0.0, 12.0, 24.5]


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize(
    ("time_zero", "error", "message"),
    [
        (5.0, ManifestError, "time_zero must be an ISO date-time"),
        ("yesterday", PlateMapError, "--time-zero: time_zero 'yesterday' is neither"),
        ("2019-08-30T06:21+02:00", PlateMapError, "has a time-zone offset"),
    ],
)
def test_reference_names_bad_time_zero(
    tmp_path: Path, time_zero: object, error: type[Exception], message: str
) -> None:
    _reference_images(tmp_path)
    with pytest.raises(error, match=message):
        build_manifest(tmp_path, time_zero=time_zero, progress=False)  # type: ignore[arg-type]


def test_platemap_time_zero_per_plate(tmp_path: Path) -> None:
    for plate in ("P1", "P2"):
        _incucyte(tmp_path / plate, "A1", 10)
    pm = tmp_path / "pm.csv"
    pm.write_text(
        "plate,well,drug,concentration_um,role,time_zero\n"
        "P1,A1,x,1,treatment,2\nP2,A1,x,1,treatment,6.5\n"
    )
    m = build_manifest(tmp_path, platemap=pm, time_zero=100, progress=False)
    assert dict(zip(m["plate"], m["time_h"], strict=True)) == {"P1": 8.0, "P2": 3.5}
    assert "time_zero" not in m.columns


@pytest.mark.bad_input("ingest")
def test_mixed_time_schemes_on_one_plate(tmp_path: Path) -> None:
    _png(tmp_path / "P1" / "C_Phase_A1_1_00d01h00m.png")
    _png(tmp_path / "P1" / "C_CL1_P1_A2_1_2020y01m01d_00h00m.png")
    with pytest.raises(ManifestError, match="plate 'P1' mixes elapsed-time and absolute"):
        build_manifest(tmp_path, progress=False)


# --------------------------------------------------------------------------- joins


def test_wells_join_exactly_a1_never_a10(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _png(images / "C_Phase_A01_1_00d00h00m.png")
    _png(images / "C_Phase_A1_1_00d01h00m.png")
    _png(images / "C_Phase_A10_1_00d00h00m.png")
    _png(images / "C_Phase_A10_1_00d01h00m.png")
    pm = tmp_path / "pm.csv"
    pm.write_text(PM_HEADER + "C,A10,ten,10,treatment\nC,A01,one,1,treatment\n")
    m = build_manifest(images, platemap=pm, progress=False)
    got = sorted(zip(m["well"], m["time_h"], m["drug"], m["concentration_um"], strict=True))
    assert got == [
        ("A1", 0.0, "one", 1.0),
        ("A1", 1.0, "one", 1.0),
        ("A10", 0.0, "ten", 10.0),
        ("A10", 1.0, "ten", 10.0),
    ]


def test_plate_from_subfolder(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _incucyte(images / "plateA", "B2", 0)
    _incucyte(images / "plateB" / "day1", "B2", 0)
    pm = tmp_path / "pm.csv"
    pm.write_text(PM_HEADER + "plateA,B2,x,1,treatment\nplateB,B02,y,2,treatment\n")
    m = build_manifest(images, platemap=pm, progress=False)
    assert list(zip(m["plate"], m["drug"], strict=True)) == [("plateA", "x"), ("plateB", "y")]


def test_platemap_without_plate_column_and_extra_columns(tmp_path: Path) -> None:
    for w in ("A1", "A2", "A3"):
        _incucyte(tmp_path / "images", w, 0)
    pm = tmp_path / "pm.csv"
    pm.write_text(
        "well,drug,concentration_um,row,column,supplier\n"
        "A1,DMSO,0,A,1,s1\nA2,PBS,,A,2,s2\nA3,taxol,0.5,A,3,s3\n"
    )
    m = build_manifest(tmp_path / "images", platemap=pm, progress=False)
    assert list(m.columns) == [*MANIFEST_COLUMNS, "supplier"]
    assert list(m["role"]) == ["negative_control", "untreated", "treatment"]
    assert list(m["supplier"]) == ["s1", "s2", "s3"]
    assert list(m["column"]) == [1, 2, 3]
    assert list(m["plate"]) == ["C"] * 3


def test_platemap_dataframe_is_accepted(tmp_path: Path) -> None:
    _incucyte(tmp_path, "D4", 0)
    pm = pd.DataFrame({"well": ["D04"], "drug": ["x"], "concentration_um": [3]})
    m = build_manifest(tmp_path, platemap=pm, progress=False)
    assert (m.loc[0, "drug"], m.loc[0, "concentration_um"], m.loc[0, "role"]) == (
        "x",
        3.0,
        "treatment",
    )
    assert list(pm["well"]) == ["D04"]


@pytest.mark.bad_input("ingest")
def test_image_without_platemap_row(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _incucyte(images, "A1", 0)
    lonely = _incucyte(images, "A10", 0)
    pm = tmp_path / "pm.csv"
    pm.write_text(PM_HEADER + "C,A1,x,1,treatment\n")
    with pytest.raises(PlateMapError) as info:
        build_manifest(images, platemap=pm, progress=False)
    msg = str(info.value)
    assert msg.startswith("1 images do not join the plate map")
    assert f"{lonely}: no plate-map row for plate 'C' well A10" in msg


@pytest.mark.bad_input("ingest")
def test_image_on_unknown_plate(tmp_path: Path) -> None:
    img = _incucyte(tmp_path / "images" / "P9", "A1", 0)
    pm = tmp_path / "pm.csv"
    pm.write_text(PM_HEADER + "P1,A1,x,1,treatment\n")
    with pytest.raises(PlateMapError, match=r"plate 'P9' is not in the plate map") as info:
        build_manifest(tmp_path / "images", platemap=pm, progress=False)
    assert str(img) in str(info.value)


@pytest.mark.bad_input("ingest")
def test_duplicate_platemap_row(tmp_path: Path) -> None:
    _incucyte(tmp_path / "images", "A1", 0)
    pm = tmp_path / "pm.csv"
    pm.write_text(PM_HEADER + "C,A1,x,1,treatment\nC,A01,y,1,treatment\n")
    with pytest.raises(
        PlateMapError, match=r"duplicate rows for plate 'C' well A1 \(lines \[2, 3\]\)"
    ):
        build_manifest(tmp_path / "images", platemap=pm, progress=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=st.dictionaries(
        keys=st.tuples(
            st.sampled_from(["P1", "P2", "P3"]),
            st.sampled_from(["A", "B", "H"]),
            st.sampled_from([1, 2, 10, 11, 12]),
        ),
        values=st.tuples(st.sampled_from(["d1", "d2", "d3", "DMSO"]), st.integers(0, 1000)),
        min_size=1,
        max_size=12,
    ),
    pad=st.booleans(),
)
def test_random_platemaps_join_each_image_to_its_own_row(
    layout: dict[tuple[str, str, int], tuple[str, int]], pad: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = [PM_HEADER]
        for (plate, row, col), (drug, conc) in layout.items():
            name_well = f"{row}{col:02d}" if pad else f"{row}{col}"
            map_well = f"{row}{col}" if pad else f"{row}{col:02d}"
            _incucyte(root / "images" / plate, name_well, 0)
            _incucyte(root / "images" / plate, name_well, 3)
            lines.append(f"{plate},{map_well},{drug},{conc / 100},\n")
        (root / "pm.csv").write_text("".join(lines))
        m = build_manifest(root / "images", platemap=root / "pm.csv", progress=False)
        assert len(m) == 2 * len(layout)
        for r in m.to_dict("records"):
            drug, conc = layout[(r["plate"], r["row"], r["column"])]
            assert r["well"] == f"{r['row']}{r['column']}"
            assert (r["drug"], r["concentration_um"]) == (drug, conc / 100)
            assert r["role"] == ("negative_control" if drug == "DMSO" else "treatment")


# --------------------------------------------------------------------------- bad files


@pytest.mark.bad_input("ingest")
def test_unparseable_name_raises_or_is_skipped(tmp_path: Path) -> None:
    good = _incucyte(tmp_path, "A1", 0)
    bad = _png(tmp_path / "overview_scan.png")
    with pytest.raises(ManifestError) as info:
        build_manifest(tmp_path, progress=False)
    msg = str(info.value)
    assert msg.startswith(f"1 of 2 files under {tmp_path} cannot be used (--skip-bad")
    assert "overview_scan.png: file name not understood" in msg
    m = build_manifest(tmp_path, on_error="skip", progress=False)
    assert list(m["image_path"]) == [str(good)]
    skipped = skipped_table(m)
    assert list(skipped.columns) == ["path", "reason"]
    assert list(skipped["path"]) == [str(bad)]
    assert "file name not understood" in skipped.loc[0, "reason"]


@pytest.mark.bad_input("ingest")
def test_zero_byte_and_corrupt_images(tmp_path: Path) -> None:
    good = _incucyte(tmp_path, "A1", 0)
    empty = tmp_path / "C_Phase_A1_1_00d01h00m.png"
    empty.write_bytes(b"")
    junk = tmp_path / "C_Phase_A1_1_00d02h00m.tif"
    junk.write_bytes(b"this is not a TIFF file at all")
    with pytest.raises(ManifestError) as info:
        build_manifest(tmp_path, progress=False)
    msg = str(info.value)
    assert msg.startswith("2 of 3 files")
    assert f"{empty}: empty (0-byte) image file" in msg
    assert f"{junk}: not a readable image" in msg
    m = build_manifest(tmp_path, on_error="skip", progress=False)
    assert list(m["image_path"]) == [str(good)]
    assert sorted(skipped_table(m)["path"]) == sorted([str(empty), str(junk)])


@pytest.mark.bad_input("ingest")
def test_truncated_image_found_when_verifying(tmp_path: Path) -> None:
    good = _png(tmp_path / "C_Phase_A1_1_00d00h00m.png", size=64)
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(buf, format="PNG")
    truncated = tmp_path / "C_Phase_A1_1_00d01h00m.png"
    truncated.write_bytes(buf.getvalue()[:300])  # valid header, cut data
    assert len(build_manifest(tmp_path, progress=False)) == 2  # the header alone looks fine
    with pytest.raises(ManifestError, match="cannot decode image") as info:
        build_manifest(tmp_path, verify_images=True, progress=False)
    assert str(truncated) in str(info.value)
    m = build_manifest(tmp_path, verify_images=True, on_error="skip", progress=False)
    assert list(m["image_path"]) == [str(good)]
    assert list(skipped_table(m)["path"]) == [str(truncated)]


@pytest.mark.bad_input("ingest")
def test_all_files_bad_even_when_skipping(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    with pytest.raises(ManifestError, match="none of the 1 image files could be used"):
        build_manifest(tmp_path, on_error="skip", progress=False)


@pytest.mark.bad_input("ingest")
def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=f"{tmp_path}: no image files found"):
        build_manifest(tmp_path, progress=False)
    (tmp_path / "notes.txt").write_text("x")
    _png(tmp_path / ".hidden" / "C_Phase_A1_1_00d00h00m.png")
    with pytest.raises(ManifestError, match="no image files found"):
        build_manifest(tmp_path, progress=False)
    with pytest.raises(ManifestError, match="image folder not found"):
        build_manifest(tmp_path / "absent", progress=False)


@pytest.mark.bad_input("ingest")
def test_two_files_for_one_image_slot(tmp_path: Path) -> None:
    a = _png(tmp_path / "C_Phase_A1_1_00d01h00m.png")
    b = _png(tmp_path / "C_Phase_A01_1_00d01h00m.tif")
    with pytest.raises(ManifestError, match="several files for the same plate") as info:
        build_manifest(tmp_path, progress=False)
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_custom_pattern(tmp_path: Path) -> None:
    for plate, well, t in [("P2", "B03", "1.5"), ("P2", "B03", "0"), ("P1", "C12", "7")]:
        _png(tmp_path / f"{plate}-{well}-s2-t{t}h.tif")
    pattern = r"(?P<plate>P\d)-(?P<well>\w\d+)-s(?P<field>\d)-t(?P<time_h>[\d.]+)h\.tif"
    m = build_manifest(tmp_path, pattern=pattern, progress=False)
    got = list(zip(m["plate"], m["well"], m["field"], m["time_h"], strict=True))
    assert got == [("P1", "C12", 2, 7.0), ("P2", "B3", 2, 0.0), ("P2", "B3", 2, 1.5)]
    assert set(m["cell_line"]) == {"unknown"}


@pytest.mark.bad_input("ingest")
def test_bad_pattern_is_reported_once(tmp_path: Path) -> None:
    for h in range(3):
        _incucyte(tmp_path, "A1", h)
    with pytest.raises(ManifestError, match=r"^invalid naming pattern '\[A-': "):
        build_manifest(tmp_path, pattern="[A-", progress=False)
    with pytest.raises(
        ManifestError, match=r"^naming pattern 'C_(.*)' must have a named group 'well'"
    ):
        build_manifest(tmp_path, pattern=r"C_(?P<cell>\w+)", progress=False)


# --------------------------------------------------------------------------- reading/writing


def test_write_and_read_manifest(tmp_path: Path) -> None:
    _incucyte(tmp_path / "img", "A1", 0)
    _incucyte(tmp_path / "img", "A1", 4)
    m = build_manifest(tmp_path / "img", progress=False)
    out = write_manifest(m, tmp_path / "out" / "manifest.parquet")
    meta = pq.read_schema(out).metadata[b"phenolapse"]
    assert json.loads(meta) == {"format_version": 1, "kind": "manifest"}
    back = read_manifest(out)
    pd.testing.assert_frame_equal(back, m, check_dtype=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["manifest.parquet"]


@pytest.mark.bad_input("ingest")
def test_write_manifest_invalid_leaves_old_file(tmp_path: Path) -> None:
    out = tmp_path / "manifest.parquet"
    out.write_bytes(b"old")
    with pytest.raises(ManifestError, match="missing column"):
        write_manifest(pd.DataFrame({"image_path": ["x"]}), out)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.parquet"]


def _valid() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_path": ["/a.png", "/b.png"],
            "cell_line": ["C", "C"],
            "plate": ["P", "P"],
            "well": ["A1", "A1"],
            "row": ["A", "A"],
            "column": [1, 1],
            "field": [1, 1],
            "tile": [1, 1],
            "time_h": [0.0, 1.0],
            "drug": ["", ""],
            "concentration_um": [np.nan, np.nan],
            "role": ["unknown", "unknown"],
        }
    )


@pytest.mark.bad_input("ingest")
def test_validate_manifest_errors(tmp_path: Path) -> None:
    assert validate_manifest(_valid()) is not None
    df = _valid()
    df.loc[1, "role"] = "poison"
    with pytest.raises(ManifestError, match=r"unknown role\(s\) \['poison'\]"):
        validate_manifest(df)
    df = _valid()
    df.loc[1, "image_path"] = "/a.png"
    with pytest.raises(ManifestError, match=r"image listed more than once:\n  /a.png"):
        validate_manifest(df)
    df = _valid()
    df.loc[1, "time_h"] = np.nan
    with pytest.raises(ManifestError, match=r"row 1: time_h is missing \(/b.png\)"):
        validate_manifest(df)
    with pytest.raises(ManifestError, match="no rows"):
        validate_manifest(_valid().iloc[:0])
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['role'\]"):
        validate_manifest(_valid().drop(columns="role"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match=f"{bad}: cannot read as Parquet"):
        read_manifest(bad)
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.parquet")


# --------------------------------------------------------------------------- scan cycles


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
