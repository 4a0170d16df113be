"""``phenolapse ingest`` on the real LIVECell folder and on bad inputs (exit 2, old output kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from phenolapse.cli import app
from phenolapse.data.manifest import MANIFEST_COLUMNS, read_manifest

runner = CliRunner()


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    return path


def _screen(root: Path) -> Path:
    images = root / "images"
    for well in ("A1", "A10"):
        for h in (0, 4, 8):
            _png(images / "P1" / f"HT29_Phase_{well}_1_00d{h:02d}h00m.png")
    (root / "pm.csv").write_text(
        "plate,well,drug,concentration_um,role\nP1,A01,DMSO,0,negative_control\n"
        "P1,A10,taxol,0.1,treatment\n"
    )
    return images


def _ingest(*args: str | Path) -> Result:
    return runner.invoke(app, ["ingest", *map(str, args), "--no-progress"])


def _assert_only(folder: Path, names: list[str]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_ingest_livecell(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "manifest.parquet"
    res = runner.invoke(
        app, ["ingest", str(shared_data / "livecell-shsy5y"), "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert f"wrote {out} (176 images)" in res.stdout
    m = read_manifest(out)
    assert list(m.columns) == MANIFEST_COLUMNS
    assert len(m) == 176
    assert set(m["well"]) == {"B10", "C10"}
    assert set(m["tile"]) == {1, 2, 3, 4}
    assert sorted(m["time_h"].unique()) == [4.0 * i for i in range(22)]
    _assert_only(tmp_path, ["manifest.parquet"])

    res = runner.invoke(
        app,
        [
            "ingest",
            str(shared_data / "livecell-shsy5y"),
            "--out",
            str(out),
            "--time-zero",
            "-4",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(read_manifest(out)["time_h"].unique()) == [4.0 * i + 4 for i in range(22)]


def test_ingest_with_platemap(tmp_path: Path) -> None:
    images = _screen(tmp_path)
    out = tmp_path / "out" / "manifest.parquet"
    res = runner.invoke(
        app,
        [
            "ingest",
            str(images),
            "-o",
            str(out),
            "--platemap",
            str(tmp_path / "pm.csv"),
            "--time-zero",
            "4",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert list(zip(m["well"], m["time_h"], m["drug"], strict=True)) == [
        ("A1", -4.0, "DMSO"),
        ("A1", 0.0, "DMSO"),
        ("A1", 4.0, "DMSO"),
        ("A10", -4.0, "taxol"),
        ("A10", 0.0, "taxol"),
        ("A10", 4.0, "taxol"),
    ]
    assert set(m["plate"]) == {"P1"}
    assert list(m["role"]) == ["negative_control"] * 3 + ["treatment"] * 3


def test_ingest_reference_names_iso_time_zero(tmp_path: Path) -> None:
    for stamp in ("2019y08m30d_00h21m", "2019y08m30d_12h21m"):
        _png(tmp_path / "img" / f"ACHN_CL3_P1_C15_1_{stamp}.jpg")
    out = tmp_path / "m.parquet"
    res = runner.invoke(
        app,
        [
            "ingest",
            str(tmp_path / "img"),
            "--out",
            str(out),
            "--time-zero",
            "2019-08-30T06:21:00",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert list(m["time_h"]) == [-6.0, 6.0]
    assert list(m["plate"]) == ["P1", "P1"]


def test_ingest_custom_pattern(tmp_path: Path) -> None:
    _png(tmp_path / "img" / "plateX-B03-t1.5.tif")
    _png(tmp_path / "img" / "plateX-B03-t3.tif")
    out = tmp_path / "m.parquet"
    pattern = r"(?P<plate>\w+)-(?P<well>[A-P]\d+)-t(?P<time_h>[\d.]+)\.tif"
    res = runner.invoke(
        app,
        ["ingest", str(tmp_path / "img"), "--out", str(out), "--pattern", pattern, "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    m = read_manifest(out)
    assert list(zip(m["plate"], m["well"], m["time_h"], strict=True)) == [
        ("plateX", "B3", 1.5),
        ("plateX", "B3", 3.0),
    ]


@pytest.fixture()
def old_output(tmp_path: Path) -> Path:
    out = tmp_path / "result" / "manifest.parquet"
    out.parent.mkdir()
    out.write_bytes(b"previous manifest")
    return out


def _assert_failed(res: Result, out: Path, *fragments: str) -> None:
    assert res.exit_code == 2, res.output
    stderr = res.stderr
    assert stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in stderr
    assert out.read_bytes() == b"previous manifest"
    _assert_only(out.parent, ["manifest.parquet"])


@pytest.mark.bad_input("ingest")
def test_unparseable_name(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    _png(images / "P1" / "snapshot.png")
    res = _ingest(images, "--out", old_output, "--platemap", tmp_path / "pm.csv")
    _assert_failed(res, old_output, "snapshot.png: file name not understood", "--skip-bad")


def test_skip_bad_writes_report(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    bad = _png(images / "P1" / "snapshot.png")
    empty = images / "P1" / "HT29_Phase_A1_1_00d12h00m.png"
    empty.write_bytes(b"")
    res = _ingest(images, "--out", old_output, "--platemap", tmp_path / "pm.csv", "--skip-bad")
    assert res.exit_code == 0, res.output
    assert "skipped 2 files" in res.stderr
    report = old_output.with_name("manifest.skipped.csv")
    _assert_only(old_output.parent, ["manifest.parquet", "manifest.skipped.csv"])
    skipped = pd.read_csv(report)
    assert list(skipped.columns) == ["path", "reason"]
    assert sorted(skipped["path"]) == sorted([str(bad), str(empty)])
    reasons = dict(zip(skipped["path"], skipped["reason"], strict=True))
    assert "file name not understood" in reasons[str(bad)]
    assert "empty (0-byte) image file" in reasons[str(empty)]
    m = read_manifest(old_output)
    assert len(m) == 6
    assert str(bad) not in set(m["image_path"]) and str(empty) not in set(m["image_path"])


@pytest.mark.bad_input("ingest")
def test_image_without_platemap_row(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    lonely = _png(images / "P1" / "HT29_Phase_B7_1_00d00h00m.png")
    res = _ingest(images, "--out", old_output, "--platemap", tmp_path / "pm.csv")
    _assert_failed(res, old_output, f"{lonely}: no plate-map row for plate 'P1' well B7")
    # skipping bad files does not hide a plate map that misses wells
    res = _ingest(images, "--out", old_output, "--platemap", tmp_path / "pm.csv", "--skip-bad")
    _assert_failed(res, old_output, "no plate-map row for plate 'P1' well B7")


@pytest.mark.bad_input("ingest")
def test_duplicate_platemap_row(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    pm = tmp_path / "pm.csv"
    pm.write_text(pm.read_text() + "P1,A1,other,1,treatment\n")
    res = _ingest(images, "--out", old_output, "--platemap", pm)
    _assert_failed(res, old_output, str(pm), "duplicate rows for plate 'P1' well A1 (lines [2, 4])")


@pytest.mark.bad_input("ingest")
def test_bad_platemap_value(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    pm = tmp_path / "pm.csv"
    pm.write_text("plate,well,drug,concentration_um,role\nP1,A1,DMSO,zero,negative_control\n")
    res = _ingest(images, "--out", old_output, "--platemap", pm)
    _assert_failed(res, old_output, f"{pm}, line 2: concentration_um 'zero' is not a number")


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a PNG"])
def test_zero_byte_or_corrupt_image(tmp_path: Path, old_output: Path, content: bytes) -> None:
    images = _screen(tmp_path)
    broken = images / "P1" / "HT29_Phase_A1_1_00d12h00m.png"
    broken.write_bytes(content)
    res = _ingest(images, "--out", old_output, "--platemap", tmp_path / "pm.csv")
    _assert_failed(res, old_output, f"{broken}: ")


@pytest.mark.bad_input("ingest")
def test_corrupt_image_found_with_verify(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    good = images / "P1" / "HT29_Phase_A1_1_00d00h00m.png"
    data = good.read_bytes()
    cut = images / "P1" / "HT29_Phase_A1_1_00d12h00m.png"
    cut.write_bytes(data[: len(data) // 2])
    res = _ingest(images, "--out", old_output, "--verify")
    _assert_failed(res, old_output, f"{cut}: cannot decode image")


@pytest.mark.bad_input("ingest")
def test_empty_folder(tmp_path: Path, old_output: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = _ingest(tmp_path / "empty", "--out", old_output)
    _assert_failed(res, old_output, f"{tmp_path / 'empty'}: no image files found")


@pytest.mark.bad_input("ingest")
def test_bad_time_zero(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    res = _ingest(images, "--out", old_output, "--time-zero", "noon")
    _assert_failed(res, old_output, "time_zero 'noon' is neither a number of hours nor an ISO")


@pytest.mark.bad_input("ingest")
def test_bad_pattern(tmp_path: Path, old_output: Path) -> None:
    images = _screen(tmp_path)
    res = _ingest(images, "--out", old_output, "--pattern", "(?P<well>[A-H]")
    _assert_failed(res, old_output, "invalid naming pattern '(?P<well>[A-H]'")
