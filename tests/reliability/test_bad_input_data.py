"""Messy lab data at the data commands (ingest, validate, embed of a folder), through the CLI.

Every failure case runs where an earlier good ``ingest`` and ``validate`` left their outputs, and
checks: the exit code, no traceback, a message on stderr that names the file, row, well, plate
or option at fault, and every earlier output byte-identical with no file added or removed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import struct
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from PIL import Image
from typer.testing import Result

from phenolapse.data.manifest import read_manifest

RNG = np.random.default_rng(0)
SIZE = 32
PM_HEADER = "plate,well,drug,concentration_um,role\n"

# ------------------------------------------------------------------------------------------ helpers


def _cli_helpers() -> ModuleType:
    """The helpers of ``test_bad_input_cli.py`` (snapshot, invoke, assert_clean_failure)."""
    path = Path(__file__).resolve().parent / "test_bad_input_cli.py"
    spec = importlib.util.spec_from_file_location("bad_input_cli", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bad_input_cli", module)
    spec.loader.exec_module(module)
    return module


H = _cli_helpers()
invoke, snapshot = H.invoke, H.snapshot


def assert_clean_failure(
    args: list[Any], *, guard: list[Path], names: list[str], code: int
) -> Result:
    """Run ``args``; assert exit ``code`` naming ``names`` on stderr, ``guard`` untouched and
    no traceback in the output."""
    res: Result = H.assert_clean_failure(args, guard=guard, names=names, code=code)
    assert "Traceback" not in res.output
    return res


def gray(value: int | None = None, size: int = SIZE) -> np.ndarray:
    """A random 8-bit grayscale frame (or a constant one)."""
    if value is not None:
        return np.full((size, size), value, np.uint8)
    return RNG.integers(20, 236, (size, size), dtype=np.uint8)


def name(well: str, hours: int, ext: str = "png", cell: str = "HT29") -> str:
    """An Incucyte elapsed-time file name."""
    return f"{cell}_Phase_{well}_1_{hours // 24:02d}d{hours % 24:02d}h00m.{ext}"


def screen(root: Path, wells: tuple[str, ...] = ("B2", "B3", "B4"), plate: str = "P1") -> Path:
    """One plate of 8-bit PNG frames: ``wells`` x 3 time points, in ``root/images/<plate>``."""
    folder = root / "images" / plate
    folder.mkdir(parents=True, exist_ok=True)
    for well in wells:
        for hours in (0, 4, 8):
            Image.fromarray(gray()).save(folder / name(well, hours))
    return root / "images"


def platemap(root: Path, rows: list[str], *, header: str = PM_HEADER) -> Path:
    """A plate-map CSV with ``rows`` (UTF-8)."""
    path = root / "platemap.csv"
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


GOOD_ROWS = ["P1,B2,DMSO,0,negative_control", "P1,B3,taxol,1,treatment",
             "P1,B4,taxol,1,treatment"]  # fmt: skip


class Earlier:
    """A screen, its plate map, and the outputs of an earlier good ingest and validate."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = screen(root)
        self.platemap = platemap(root, GOOD_ROWS)
        self.out = root / "out"
        self.manifest = self.out / "manifest.parquet"
        res = invoke(["ingest", self.images, "--platemap", self.platemap, "-o", self.manifest,
                      "--no-progress"])  # fmt: skip
        assert res.exit_code == 0, res.output
        res = invoke(["validate", self.images, "--platemap", self.platemap, "--out",
                      self.out / "problems.csv", "--no-progress"])  # fmt: skip
        assert res.exit_code == 0, res.output

    @property
    def plate(self) -> Path:
        return self.images / "P1"

    def ingest(self, *extra: Any, platemap: Path | None = None) -> list[Any]:
        return ["ingest", self.images, "--platemap", platemap or self.platemap, "-o",
                self.manifest, "--no-progress", *extra]  # fmt: skip

    def validate(self, *extra: Any, platemap: Path | None = None) -> list[Any]:
        return ["validate", self.images, "--platemap", platemap or self.platemap,
                "--no-progress", *extra]  # fmt: skip


@pytest.fixture()
def earlier(tmp_path: Path) -> Earlier:
    return Earlier(tmp_path)


# ------------------------------------------------- 3: wells imaged minutes apart are one time point


def _minutes_apart(root: Path) -> tuple[Path, Path]:
    """Reference-screen names: 4 wells, 3 scans 4 h apart, each well 7 min after the previous."""
    folder = root / "images"
    folder.mkdir(parents=True)
    start = dt.datetime(2019, 8, 30, 0, 0)
    for scan in range(3):
        for i, well in enumerate(("C13", "C14", "C15", "C16")):
            t = start + dt.timedelta(hours=4 * scan, minutes=7 * i)
            stamp = f"{t:%Y}y{t:%m}m{t:%d}d_{t:%H}h{t:%M}m"
            Image.fromarray(gray()).save(folder / f"ACHN_CL3_P1_{well}_1_{stamp}.jpg")
    pm = platemap(root, ["P1,C13,DMSO,0,negative_control", "P1,C14,DMSO,0,negative_control",
                         "P1,C15,taxol,1,treatment", "P1,C16,taxol,1,treatment"])  # fmt: skip
    return folder, pm


@pytest.mark.bad_input("validate")
def test_wells_minutes_apart_are_one_scan_cycle(tmp_path: Path) -> None:
    images, pm = _minutes_apart(tmp_path)
    out = tmp_path / "manifest.parquet"
    res = invoke(["ingest", images, "--platemap", pm, "--time-zero", "2019-08-30T00:00", "-o",
                  out, "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "12 distinct times -> 3 time points" in res.output
    m = read_manifest(out)
    assert sorted(m["time_h"].unique()) == [0.0, 4.0, 8.0]  # scan start
    assert (m.groupby("time_h")["well"].nunique() == 4).all()  # replicates pool
    res = invoke(["validate", images, "--platemap", pm, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "plate P1: 12 images at 12 distinct times -> 3 time points" in res.output
    assert "tolerance 30 min" in res.output
    # 0 keeps every distinct time: the wells no longer share time points, and validate says so
    res = invoke(["validate", images, "--no-progress", "--time-tolerance-min", "0"])
    assert res.exit_code == 1
    assert "missing time points" in res.stderr
    # the scan takes 21 min: a 5-min tolerance splits it, a 2-hour one cannot merge two scans
    res = invoke(["ingest", images, "-o", out, "--no-progress", "--time-tolerance-min", "120",
                  "--time-zero", "2019-08-30T00:00"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(read_manifest(out)["time_h"].unique()) == [0.0, 4.0, 8.0]


@pytest.mark.bad_input("ingest")
def test_negative_time_tolerance_is_refused(earlier: Earlier) -> None:
    assert_clean_failure(earlier.ingest("--time-tolerance-min", "-5"), guard=[earlier.out],
                         names=["--time-tolerance-min"], code=2)  # fmt: skip


# --------------------------------------------------------------------- 4: mixed bit depth, one plate


@pytest.mark.bad_input("validate")
def test_sixteen_bit_well_in_eight_bit_plate(earlier: Earlier) -> None:
    odd = earlier.plate / name("B5", 0, "tif")
    tifffile.imwrite(odd, gray().astype(np.uint16))  # 8-bit values in a 16-bit file
    res = assert_clean_failure(earlier.validate(), guard=[earlier.out], code=1,
                               names=[str(odd), "16-bit", "8-bit", "bit depth"])  # fmt: skip
    assert "plate P1: uint8 pixels" in res.output
    assert_clean_failure(earlier.ingest(), guard=[earlier.out], code=2,
                         names=[str(odd), "16-bit", "--skip-bad"])  # fmt: skip
    res = invoke(earlier.ingest("--skip-bad", "-o", earlier.root / "new.parquet"))
    assert res.exit_code == 0, res.output
    assert str(odd) not in set(read_manifest(earlier.root / "new.parquet")["image_path"])


@pytest.mark.bad_input("validate")
def test_dim_image_in_sixteen_bit_plate(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "P1"
    folder.mkdir(parents=True)
    for well in ("B2", "B3"):
        for hours in (0, 4):
            tifffile.imwrite(folder / name(well, hours, "tif"), gray().astype(np.uint16) * 200)
    dim = folder / name("B3", 8, "tif")
    tifffile.imwrite(dim, gray().astype(np.uint16))  # an 8-bit export among 16-bit ones
    tifffile.imwrite(folder / name("B2", 8, "tif"), gray().astype(np.uint16) * 200)
    res = invoke(["validate", tmp_path / "images", "--no-progress"])
    assert res.exit_code == 1
    assert "[intensity range]" in res.stderr
    assert str(dim) in res.stderr


# ------------------------------------------------------- 5: compressed stacks are stacks as well


@pytest.mark.bad_input("validate")
@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_multi_page_tiff_refused_whatever_the_compression(
    earlier: Earlier, compression: str | None
) -> None:
    stack = earlier.plate / name("B2", 12, "tif")
    pages = [Image.fromarray(gray()) for _ in range(12)]
    pages[0].save(stack, save_all=True, append_images=pages[1:], compression=compression)
    names = [str(stack), "stack of 12 frames", "whatever the compression"]
    assert_clean_failure(earlier.validate(), guard=[earlier.out], names=names, code=1)
    assert_clean_failure(earlier.ingest("--verify"), guard=[earlier.out], names=names, code=2)


def test_compressed_and_plain_channel_stacks_read_alike(tmp_path: Path) -> None:
    from phenolapse.data.imageio import read_raw

    pages = [Image.fromarray(gray()) for _ in range(3)]
    pages[0].save(tmp_path / "lzw.tif", save_all=True, append_images=pages[1:],
                  compression="tiff_lzw")  # fmt: skip
    pages[0].save(tmp_path / "raw.tif", save_all=True, append_images=pages[1:])
    np.testing.assert_array_equal(read_raw(tmp_path / "lzw.tif"), read_raw(tmp_path / "raw.tif"))


# ------------------------------------------------------------------------ 7: smaller silent gaps


@pytest.mark.bad_input("validate")
def test_platemap_well_without_images(earlier: Earlier) -> None:
    pm = platemap(earlier.root, [*GOOD_ROWS, "P1,B5,taxol,1,treatment"])
    assert_clean_failure(earlier.validate(platemap=pm), guard=[earlier.out], code=1,
                         names=["plate map", "P1 B5", "no images"])  # fmt: skip
    res = invoke(earlier.ingest("-o", earlier.root / "new.parquet", platemap=pm))
    assert res.exit_code == 0, res.output
    assert "warning" in res.stderr and "P1 B5" in res.stderr


def test_names_normalised_and_case_only_differences_warned(earlier: Earlier) -> None:
    pm = platemap(earlier.root, ["P1,B2,drug03,1,treatment", "P1,B3,drug03\u200b ,1,treatment",
                                 "P1,B4,Drug03,1,treatment"])  # fmt: skip
    new = earlier.root / "new.parquet"
    res = invoke(earlier.ingest("-o", new, platemap=pm))
    assert res.exit_code == 0, res.output
    m = read_manifest(new)
    assert sorted(m["drug"].unique()) == ["Drug03", "drug03"]  # zero-width space gone
    assert "'Drug03' and 'drug03' differ only in upper/lower case" in res.stderr
    res = invoke(earlier.validate(platemap=pm))
    assert res.exit_code == 0, res.output
    assert "differ only in upper/lower case" in res.stderr


@pytest.mark.bad_input("ingest")
def test_blank_time_zero_for_one_plate(earlier: Earlier) -> None:
    screen(earlier.root, plate="P2")
    rows = [f"{r},2" for r in GOOD_ROWS] + [
        f"P2,{w},DMSO,0,negative_control," for w in ("B2", "B3", "B4")
    ]
    pm = platemap(earlier.root, rows, header="plate,well,drug,concentration_um,role,time_zero\n")
    assert_clean_failure(earlier.ingest(platemap=pm), guard=[earlier.out], code=2,
                         names=["plate 'P2'", "time_zero"])  # fmt: skip
    res = invoke(earlier.ingest("-o", earlier.root / "new.parquet", "--time-zero", "1",
                                platemap=pm))  # fmt: skip
    assert res.exit_code == 0, res.output
    m = read_manifest(earlier.root / "new.parquet")
    assert sorted(m.loc[m["plate"] == "P2", "time_h"].unique()) == [-1.0, 3.0, 7.0]
    assert sorted(m.loc[m["plate"] == "P1", "time_h"].unique()) == [-2.0, 2.0, 6.0]


@pytest.mark.bad_input("validate")
def test_one_well_with_another_frame_size(earlier: Earlier) -> None:
    odd = [earlier.plate / name("B5", h) for h in (0, 4, 8)]
    for path in odd:
        Image.fromarray(gray(size=48)).save(path)
    assert_clean_failure(earlier.validate(), guard=[earlier.out], code=1,
                         names=[str(odd[0]), "48x48 px", "32x32 px", "frame size"])  # fmt: skip
    assert_clean_failure(earlier.ingest(), guard=[earlier.out], code=2,
                         names=[str(odd[0]), "frame size"])  # fmt: skip


# --------------------------------------------------------------- 9: one RGB JPEG among grayscale


@pytest.mark.bad_input("validate")
def test_colour_jpeg_among_grayscale(earlier: Earlier) -> None:
    colour = earlier.plate / name("B2", 12, "jpg")
    rgb = np.stack([gray(), gray(), gray()], axis=-1)
    Image.fromarray(rgb).save(colour, quality=95)
    names = [str(colour), "colour", "grayscale"]
    assert_clean_failure(earlier.validate(), guard=[earlier.out], names=names, code=1)
    assert_clean_failure(earlier.ingest(), guard=[earlier.out], names=names, code=2)


@pytest.mark.bad_input("run")
def test_run_stops_at_ingest_on_a_colour_image(earlier: Earlier) -> None:
    colour = earlier.plate / name("B2", 12, "jpg")
    Image.fromarray(np.stack([gray(), gray(), gray()], axis=-1)).save(colour)
    cfg = earlier.root / "phenolapse.yaml"
    assert invoke(["config", "init", cfg]).exit_code == 0
    data = yaml.safe_load(cfg.read_text())
    data["output_dir"] = str(earlier.root / "run")
    data["screen"] = {"images_dir": str(earlier.images), "platemap": str(earlier.platemap)}
    cfg.write_text(yaml.safe_dump(data))
    assert_clean_failure(["run", cfg, "--until", "ingest"], guard=[earlier.out, cfg], code=2,
                         names=[str(colour), "grayscale", "skip_bad"])  # fmt: skip


@pytest.mark.bad_input("ingest")
def test_colour_plate_beside_a_grayscale_one(earlier: Earlier) -> None:
    colour = earlier.images / "P2" / name("B2", 0)
    colour.parent.mkdir()
    Image.fromarray(np.stack([gray(), gray(), gray()], axis=-1)).save(colour)
    assert_clean_failure(earlier.ingest(), guard=[earlier.out], code=2,
                         names=[str(colour), "of the screen", "grayscale"])  # fmt: skip


def test_grayscale_saved_as_rgb_is_grayscale(earlier: Earlier) -> None:
    (earlier.plate / name("B2", 8)).unlink()
    as_rgb = earlier.plate / name("B2", 8, "jpg")
    Image.fromarray(gray()).convert("RGB").save(as_rgb, quality=95)
    res = invoke(earlier.validate())
    assert res.exit_code == 0, res.output


@pytest.mark.bad_input("embed")
def test_embed_folder_with_colour_image_among_grayscale(earlier: Earlier, weights: Path) -> None:
    colour = earlier.plate / name("B2", 12, "png")
    Image.fromarray(np.stack([gray(), gray(), gray()], axis=-1)).save(colour)
    out = earlier.root / "embedded"
    res = invoke(["embed", earlier.images, "--weights", weights, "--out", out, "--mode", "full",
                  "--image-size", "16", "--no-progress"])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)
    assert str(colour) in res.stderr and "grayscale" in res.stderr


# ------------------------------------------------------------- 10: frames over 179 million pixels


def _huge_png_header(path: Path, width: int = 20_000, height: int = 10_000) -> None:
    """A PNG whose header claims a 200-million-pixel frame (no pixel data is written)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.mark.bad_input("ingest")
def test_frame_over_the_pixel_limit(earlier: Earlier) -> None:
    huge = earlier.plate / name("B2", 12)
    _huge_png_header(huge)
    names = [str(huge), "200 million pixels", "split stitched frames"]
    assert_clean_failure(earlier.validate(), guard=[earlier.out], names=names, code=1)
    assert_clean_failure(earlier.ingest(), guard=[earlier.out], names=names, code=2)
    new = earlier.root / "new.parquet"
    res = invoke(earlier.ingest("--skip-bad", "-o", new))
    assert res.exit_code == 0, res.output
    skipped = pd.read_csv(earlier.root / "new.skipped.csv")
    assert skipped["path"].tolist() == [str(huge)]


# ------------------------------------------------------- 14: spreadsheet leftovers and encodings


def test_trailing_empty_rows_are_skipped(earlier: Earlier) -> None:
    pm = platemap(earlier.root, [*GOOD_ROWS, ",,,,", " , ,,,", ",,,,"])
    res = invoke(earlier.ingest("-o", earlier.root / "new.parquet", platemap=pm))
    assert res.exit_code == 0, res.output
    assert len(read_manifest(earlier.root / "new.parquet")) == 9


@pytest.mark.bad_input("ingest")
def test_windows_1252_platemap(earlier: Earlier) -> None:
    pm = earlier.root / "platemap_1252.csv"
    text = PM_HEADER + "\n".join([*GOOD_ROWS[:2], "P1,B4,\u00b5-taxol,1,treatment"]) + "\n"
    pm.write_bytes(text.encode("cp1252"))
    assert_clean_failure(earlier.ingest(platemap=pm), guard=[earlier.out], code=2,
                         names=[str(pm), "line 4", "Windows-1252", "CSV UTF-8"])  # fmt: skip
    assert_clean_failure(earlier.validate(platemap=pm), guard=[earlier.out], code=1,
                         names=[str(pm), "CSV UTF-8"])  # fmt: skip


def test_utf16_tab_separated_platemap_is_read(earlier: Earlier) -> None:
    pm = earlier.root / "platemap.txt"
    rows = [PM_HEADER.strip(), *GOOD_ROWS[:2], "P1,B4,\u00b5-taxol,1,treatment"]
    pm.write_text("\r\n".join(r.replace(",", "\t") for r in rows) + "\r\n", encoding="utf-16")
    new = earlier.root / "new.parquet"
    res = invoke(earlier.ingest("-o", new, platemap=pm))
    assert res.exit_code == 0, res.output
    assert "\u00b5-taxol" in set(read_manifest(new)["drug"])


@pytest.mark.bad_input("ingest")
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_excel_workbook_platemap(earlier: Earlier, suffix: str) -> None:
    pm = earlier.root / f"platemap{suffix}"
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    pm.write_bytes(buf.getvalue())  # an .xlsx is a zip archive, whatever its name
    assert_clean_failure(earlier.ingest(platemap=pm), guard=[earlier.out], code=2,
                         names=[str(pm), "workbook", "CSV UTF-8"])  # fmt: skip


# -------------------------------------------------------- 15: manifest name and Ctrl-C messages


@pytest.mark.bad_input("ingest")
def test_manifest_named_csv_is_refused(earlier: Earlier) -> None:
    target = earlier.out / "manifest.csv"
    assert_clean_failure(earlier.ingest("-o", target), guard=[earlier.out], code=2,
                         names=[str(target), ".parquet"])  # fmt: skip
    assert not target.exists()


def test_ctrl_c_during_ingest_says_what_to_do(
    earlier: Earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phenolapse.data.manifest as manifest_module

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(manifest_module, "build_manifest", interrupted)
    res = assert_clean_failure(earlier.ingest(), guard=[earlier.out], code=130,
                               names=[str(earlier.manifest), "rerun"])  # fmt: skip
    assert "unchanged" in res.stderr


def test_ctrl_c_during_embed_says_a_rerun_resumes(
    earlier: Earlier, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phenolapse.embedding as embedding

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(embedding, "embed_manifest", interrupted)
    out = earlier.root / "embedded"
    res = invoke(["embed", earlier.manifest, "--weights", weights, "--out", out, "--no-progress"])
    assert res.exit_code == 130, res.output
    assert "rerun the same command to resume" in res.stderr


# ------------------------------------------------------ 16: embed a plain folder of any file names


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from phenolapse.models.convae import ConvAE, save_convae

    torch.manual_seed(0)
    return save_convae(ConvAE(), tmp_path_factory.mktemp("weights") / "convae.pt")


def test_embed_plain_folder_of_any_names(tmp_path: Path, weights: Path) -> None:
    from phenolapse.embedding import read_features

    folder = tmp_path / "pictures"
    (folder / "more").mkdir(parents=True)
    Image.fromarray(gray()).save(folder / "HCT15_example.jpg")
    Image.fromarray(gray()).convert("RGB").save(folder / "more" / "img 2.png")
    Image.fromarray(gray()).save(folder / name("B2", 4))
    out = tmp_path / "out"
    res = invoke(["embed", folder, "--weights", weights, "--out", out, "--mode", "full",
                  "--image-size", "16", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "2 of 3 file names are not understood" in res.stderr
    meta, feats = read_features(out / "features.zarr")
    assert len(meta) == 3 and np.isfinite(feats).all()
    by_file = meta.set_index(meta["image_path"].map(lambda p: Path(p).name))
    assert by_file.loc[name("B2", 4), "well"] == "B2"
    assert by_file.loc[name("B2", 4), "time_h"] == 4.0
    assert by_file.loc["HCT15_example.jpg", "well"] == "HCT15_example"
    assert np.isnan(float(by_file.loc["HCT15_example.jpg", "time_h"]))  # type: ignore[arg-type]
    assert by_file.loc["img 2.png", "plate"] == "more"
    profiles = pd.read_parquet(out / "profiles.parquet")
    assert len(profiles) == 3
    alone = tmp_path / "one"
    alone.mkdir()
    Image.fromarray(gray()).save(alone / "HCT15_example.jpg")
    res = invoke(["embed", alone, "--weights", weights, "--out", tmp_path / "out_one", "--mode",
                  "full", "--image-size", "16", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(tmp_path / "out_one" / "profiles.parquet")) == 1
