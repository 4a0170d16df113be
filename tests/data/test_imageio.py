"""Image I/O: exact scaling of 8/16-bit files, per-plate ranges, crops, resize, preprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import ValidationError

from phenolapse.data.imageio import (
    PreprocessConfig,
    center_crop,
    load_for_model,
    plate_intensity_ranges,
    preprocess,
    read_image,
    read_raw,
    resize,
    scale_intensity,
    tile_crops,
)
from phenolapse.errors import ImageReadError

RNG = np.random.default_rng(42)
GRAY8 = RNG.integers(0, 256, (24, 40), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (24, 40), dtype=np.uint16)
RGB8 = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
MULTI16 = RNG.integers(0, 65536, (24, 40, 3), dtype=np.uint16)


def _torch_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return (out[0] if img.ndim == 2 else out.permute(1, 2, 0)).numpy()


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_gray8_lossless(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    if suffix == ".png":
        Image.fromarray(GRAY8).save(path)
    else:
        tifffile.imwrite(path, GRAY8)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == (24, 40)
    np.testing.assert_array_equal(img, GRAY8.astype(np.float32) / np.float32(255))
    assert img.min() >= 0 and img.max() <= 1


def test_gray8_jpeg_exact_for_flat_blocks(tmp_path: Path) -> None:
    # JPEG is lossy, but 8x8 blocks of one value survive quality 100 exactly.
    blocks = RNG.integers(0, 256, (3, 5), dtype=np.uint8)
    raw = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
    path = tmp_path / "img.jpg"
    Image.fromarray(raw).save(path, quality=100)
    img = read_image(path)
    assert img.shape == (24, 40)
    np.testing.assert_array_equal(img, raw.astype(np.float32) / np.float32(255))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_gray16_scaled_by_dtype(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    if suffix == ".png":
        Image.fromarray(GRAY16).save(path)
    else:
        tifffile.imwrite(path, GRAY16)
    assert read_raw(path).dtype == np.uint16
    img = read_image(path)
    assert img.dtype == np.float32
    np.testing.assert_array_equal(img, GRAY16.astype(np.float32) / np.float32(65535))
    corner = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", corner)
    got = read_image(tmp_path / "c.tif")
    assert got[0, 0] == 0.0 and got[0, 1] == 1.0
    assert got[1, 0] == np.float32(32768 / 65535) and got[1, 1] == np.float32(1 / 65535)


@pytest.mark.bad_input("embed")
def test_gray16_fixed_range_exact(tmp_path: Path) -> None:
    raw = np.array([[0, 100, 200, 600], [1100, 1600, 2000, 65535]], dtype=np.uint16)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, raw)
    img = read_image(path, intensity_range=(100, 1100))
    expected = np.array([[0, 0, 0.1, 0.5], [1, 1, 1, 1]], dtype=np.float32)
    np.testing.assert_allclose(img, expected, rtol=0, atol=1e-7)
    assert img[0, 0] == 0.0 and img[1, 0] == 1.0 and img[0, 3] == 0.5
    with pytest.raises(ImageReadError, match=r"intensity range \(5, 5\) is empty"):
        read_image(path, intensity_range=(5, 5))


def test_multichannel_files(tmp_path: Path) -> None:
    Image.fromarray(RGB8).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), RGB8 / np.float32(255))
    rgba = np.concatenate([RGB8, np.full((24, 40, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), RGB8 / np.float32(255))
    tifffile.imwrite(tmp_path / "rgb8.tif", RGB8)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb8.tif"), RGB8 / np.float32(255))
    tifffile.imwrite(tmp_path / "multi16.tif", MULTI16)
    img = read_image(tmp_path / "multi16.tif")
    assert img.shape == (24, 40, 3) and img.dtype == np.float32
    np.testing.assert_array_equal(img, MULTI16.astype(np.float32) / np.float32(65535))
    # channels-first stacks (C, H, W) come back channels-last
    planar = np.moveaxis(MULTI16[:, :, :2], -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar)
    np.testing.assert_array_equal(
        read_image(tmp_path / "planar.tif"),
        MULTI16[:, :, :2].astype(np.float32) / np.float32(65535),
    )


@pytest.mark.bad_input("ingest")
def test_tiff_stacks_are_refused(tmp_path: Path) -> None:
    frames = RNG.integers(0, 65536, (5, 24, 40), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "time.tif", frames, imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(ImageReadError, match=r"time\.tif: a stack of 5 frames \(TIFF axes TYX"):
        read_image(tmp_path / "time.tif")
    tifffile.imwrite(tmp_path / "pages.tif", RNG.integers(0, 255, (12, 24, 40), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"pages\.tif: a stack of 12 frames"):
        read_image(tmp_path / "pages.tif")
    # ImageJ channel stacks are channels, not frames
    tifffile.imwrite(tmp_path / "chan.tif", frames[:3], imagej=True, metadata={"axes": "CYX"})
    np.testing.assert_array_equal(
        read_image(tmp_path / "chan.tif"), np.moveaxis(frames[:3], 0, -1) / np.float32(65535)
    )


def test_rgb_jpeg_close(tmp_path: Path) -> None:
    blocks = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    raw = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
    Image.fromarray(raw).save(tmp_path / "rgb.jpg", quality=100, subsampling=0)
    img = read_image(tmp_path / "rgb.jpg")
    assert img.shape == (24, 40, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, raw / 255.0, atol=2.5 / 255)  # YCbCr round trip


@pytest.mark.bad_input("ingest")
def test_float_tiff(tmp_path: Path) -> None:
    ok = RNG.random((8, 8), dtype=np.float32)
    tifffile.imwrite(tmp_path / "ok.tif", ok)
    np.testing.assert_array_equal(read_image(tmp_path / "ok.tif"), ok)
    tifffile.imwrite(tmp_path / "bad.tif", ok * 3)
    with pytest.raises(ImageReadError, match=r"bad\.tif: floating-point image outside \[0, 1\]"):
        read_image(tmp_path / "bad.tif")
    np.testing.assert_allclose(
        read_image(tmp_path / "bad.tif", intensity_range=(0, 3)), ok, rtol=1e-6, atol=1e-7
    )


@pytest.mark.bad_input("ingest")
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_bad_files_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=f"{empty}: empty \\(0-byte\\) image file"):
        read_image(empty)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match=f"{junk}: cannot decode image"):
        read_image(junk)
    junk_tif = tmp_path / "junk.tif"
    junk_tif.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match=f"{junk_tif}: cannot decode image"):
        read_image(junk_tif)
    with pytest.raises(ImageReadError, match="image file not found"):
        read_image(tmp_path / "absent.png")
    tifffile.imwrite(tmp_path / "int32.tif", np.full((4, 4), -5, dtype=np.int32))
    with pytest.raises(ImageReadError, match=r"int32\.tif: unsupported pixel type int32"):
        read_image(tmp_path / "int32.tif")


def test_scale_intensity_does_not_modify_input() -> None:
    raw = GRAY16.copy()
    scale_intensity(raw, intensity_range=(0, 1000))
    np.testing.assert_array_equal(raw, GRAY16)


# --------------------------------------------------------------------------- per-plate ranges


def _plate_image(path: Path, base: np.ndarray) -> Path:
    tifffile.imwrite(path, base)
    return path


def test_plate_intensity_ranges_per_plate_not_per_image(tmp_path: Path) -> None:
    # Each image holds a 0 and its maximum at positions the [::7] sample reads (0 and 7).
    base = np.full((16, 16), 500, dtype=np.uint16)
    base[0, 0], base[0, 7] = 0, 1000
    dim = _plate_image(tmp_path / "p1_dim.tif", base)
    bright = _plate_image(tmp_path / "p1_bright.tif", base * 2)  # same plate, twice as bright
    other = _plate_image(tmp_path / "p2.tif", base * 8)  # another, much brighter plate
    manifest = pd.DataFrame(
        {"plate": ["P1", "P1", "P2"], "image_path": [str(dim), str(bright), str(other)]}
    )
    config = PreprocessConfig(intensity="plate_percentiles", percentiles=(0, 100))
    ranges = plate_intensity_ranges(manifest, config)
    assert ranges == {"P1": (0.0, 2000.0), "P2": (0.0, 8000.0)}

    a = read_image(dim, intensity_range=ranges["P1"])
    b = read_image(bright, intensity_range=ranges["P1"])
    c = read_image(other, intensity_range=ranges["P2"])
    assert a[1, 1] == 0.25 and b[1, 1] == 0.5 and c[1, 1] == 0.5
    np.testing.assert_array_equal(b, 2 * a)  # the two images keep their ratio
    assert a.max() == 0.5  # per-image scaling would have made it 1

    default = plate_intensity_ranges(manifest, PreprocessConfig(intensity="plate_percentiles"))
    flat = np.concatenate([read_raw(p).ravel()[::7] for p in (dim, bright)]).astype(float)
    assert default["P1"] == tuple(np.percentile(flat, (0.5, 99.5)))
    assert default["P1"] != default["P2"]


def test_plate_intensity_ranges_fixed_and_dtype() -> None:
    manifest = pd.DataFrame({"plate": ["A", "B", "A"], "image_path": ["x", "y", "z"]})
    fixed = PreprocessConfig(intensity="fixed", fixed_range=(100, 4000))
    assert plate_intensity_ranges(manifest, fixed) == {"A": (100, 4000), "B": (100, 4000)}
    assert plate_intensity_ranges(manifest, PreprocessConfig()) == {}


def test_flat_plate_gets_a_nonempty_range(tmp_path: Path) -> None:
    p = _plate_image(tmp_path / "flat.tif", np.full((8, 8), 300, dtype=np.uint16))
    manifest = pd.DataFrame({"plate": ["P"], "image_path": [str(p)]})
    ranges = plate_intensity_ranges(manifest, PreprocessConfig(intensity="plate_percentiles"))
    assert ranges == {"P": (300.0, 301.0)}


# --------------------------------------------------------------------------- crops


@pytest.mark.bad_input("embed")
def test_center_crop_offsets() -> None:
    img = np.arange(520 * 704, dtype=np.float32).reshape(520, 704)
    crop = center_crop(img, 256)
    assert crop.shape == (256, 256)
    np.testing.assert_array_equal(crop, img[132:388, 224:480])
    crop[:] = -1
    assert img.min() == 0  # a copy, never a view of the caller's array
    odd = np.arange(7 * 9).reshape(7, 9)
    np.testing.assert_array_equal(center_crop(odd, 4), odd[1:5, 2:6])
    with pytest.raises(
        ImageReadError, match=r"image of 200x704 px is smaller than the 256 px crop"
    ):
        center_crop(img[:200], 256)


def test_tile_crops_704x520() -> None:
    img = np.arange(520 * 704, dtype=np.float32).reshape(520, 704)
    tiles = tile_crops(img, 256)
    assert tiles.shape == (4, 256, 256)
    # 2 x 2 grid of 512 x 512 centred: 4 px spare top, 96 px spare left
    for k, (top, left) in enumerate([(4, 96), (4, 352), (260, 96), (260, 352)]):
        np.testing.assert_array_equal(tiles[k], img[top : top + 256, left : left + 256])
    rgb = np.stack([img, -img], axis=-1)
    tiles3 = tile_crops(rgb, 256)
    assert tiles3.shape == (4, 256, 256, 2)
    np.testing.assert_array_equal(tiles3[3, :, :, 1], -img[260:516, 352:608])


@pytest.mark.bad_input("embed")
def test_tile_crops_with_stride() -> None:
    img = np.arange(520 * 704, dtype=np.float32).reshape(520, 704)
    tiles = tile_crops(img, 256, stride=128)
    assert tiles.shape == (3 * 4, 256, 256)
    np.testing.assert_array_equal(tiles[0], img[4:260, 32:288])
    np.testing.assert_array_equal(tiles[-1], img[260:516, 416:672])
    with pytest.raises(ValueError, match="stride must be >= 1"):
        tile_crops(img, 256, stride=0)
    with pytest.raises(ImageReadError, match="smaller than the 600 px tile"):
        tile_crops(img, 600)


# --------------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((256, 256), (128, 128)),
        ((520, 704), (128, 128)),
        ((100, 77), (33, 50)),
        ((64, 64), (128, 128)),
        ((30, 40), (97, 13)),
    ],
)
def test_resize_matches_torch_antialiased_bilinear(
    shape: tuple[int, int], size: tuple[int, int]
) -> None:
    img = RNG.random(shape, dtype=np.float32)
    got = resize(img, size)
    assert got.shape == size and got.dtype == np.float32
    np.testing.assert_allclose(got, _torch_resize(img, size), rtol=0, atol=1e-5)


def test_resize_multichannel_and_identity() -> None:
    img = RNG.random((50, 60, 3), dtype=np.float32)
    got = resize(img, 20)
    assert got.shape == (20, 20, 3)
    np.testing.assert_allclose(got, _torch_resize(img, (20, 20)), rtol=0, atol=1e-5)
    same = resize(img, (50, 60))
    np.testing.assert_array_equal(same, img)
    assert same is not img


# --------------------------------------------------------------------------- preprocess


def test_preprocess_modes_and_shapes() -> None:
    img = RNG.random((520, 704), dtype=np.float32)
    before = img.copy()
    center = preprocess(img, PreprocessConfig())
    assert center.shape == (1, 1, 128, 128) and center.dtype == np.float32
    np.testing.assert_allclose(
        center[0, 0], _torch_resize(img[132:388, 224:480], (128, 128)), atol=1e-5
    )
    tiles = preprocess(img, PreprocessConfig(mode="tile"))
    assert tiles.shape == (4, 1, 128, 128)
    np.testing.assert_allclose(
        tiles[3, 0], _torch_resize(img[260:516, 352:608], (128, 128)), atol=1e-5
    )
    full = preprocess(img, PreprocessConfig(mode="full", image_size=64))
    assert full.shape == (1, 1, 64, 64)
    np.testing.assert_allclose(full[0, 0], _torch_resize(img, (64, 64)), atol=1e-5)
    nocrop = preprocess(img, PreprocessConfig(crop_size=None))
    np.testing.assert_array_equal(nocrop, preprocess(img, PreprocessConfig(mode="full")))
    np.testing.assert_array_equal(img, before)


@pytest.mark.bad_input("embed")
def test_preprocess_channels() -> None:
    img = RNG.random((300, 300, 3), dtype=np.float32)
    both = preprocess(img, PreprocessConfig(channels=[2, 0], image_size=64))
    assert both.shape == (1, 2, 64, 64)
    np.testing.assert_allclose(
        both[0, 0], _torch_resize(img[22:278, 22:278, 2], (64, 64)), atol=1e-5
    )
    np.testing.assert_allclose(
        both[0, 1], _torch_resize(img[22:278, 22:278, 0], (64, 64)), atol=1e-5
    )
    assert preprocess(img, PreprocessConfig(image_size=64)).shape == (1, 3, 64, 64)
    assert preprocess(img, PreprocessConfig(mode="tile", crop_size=100, image_size=32)).shape == (
        9,
        3,
        32,
        32,
    )
    with pytest.raises(ImageReadError, match=r"image has 3 channels, asked for \[3\]"):
        preprocess(img, PreprocessConfig(channels=[3]))
    gray = img[:, :, 0]
    assert preprocess(gray, PreprocessConfig(channels=[0])).shape == (1, 1, 128, 128)
    with pytest.raises(ImageReadError, match="grayscale image has no channels"):
        preprocess(gray, PreprocessConfig(channels=[1]))


def test_load_for_model_real_livecell(shared_data: Path) -> None:
    path = shared_data / "livecell-shsy5y" / "SHSY5Y_Phase_B10_1_00d00h00m_1.tif"
    x = load_for_model(path, PreprocessConfig())
    assert x.shape == (1, 1, 128, 128) and x.dtype == np.float32
    with Image.open(path) as im:
        raw = np.asarray(im)
    assert raw.shape == (520, 704) and raw.dtype == np.uint8
    expected = _torch_resize(raw[132:388, 224:480] / np.float32(255), (128, 128))
    np.testing.assert_allclose(x[0, 0], expected, atol=1e-5)
    assert load_for_model(path, PreprocessConfig(mode="tile")).shape == (4, 1, 128, 128)


@pytest.mark.bad_input("embed")
def test_load_for_model_fixed_range_and_errors(tmp_path: Path) -> None:
    raw = np.full((40, 40), 1500, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", raw)
    cfg = PreprocessConfig(intensity="fixed", fixed_range=(1000, 3000), crop_size=32, image_size=16)
    x = load_for_model(tmp_path / "a.tif", cfg)
    np.testing.assert_allclose(x, 0.25, atol=1e-6)
    x = load_for_model(tmp_path / "a.tif", cfg, intensity_range=(0, 3000))
    np.testing.assert_allclose(x, 0.5, atol=1e-6)
    with pytest.raises(ImageReadError, match=r"a\.tif: image of 40x40 px is smaller than the 64"):
        load_for_model(tmp_path / "a.tif", PreprocessConfig(crop_size=64))


@pytest.mark.bad_input("embed")
def test_preprocess_config_validation() -> None:
    with pytest.raises(ValidationError, match="needs fixed_range"):
        PreprocessConfig(intensity="fixed")
    with pytest.raises(ValidationError, match="low < high"):
        PreprocessConfig(fixed_range=(5, 1))
    with pytest.raises(ValidationError, match="percentiles"):
        PreprocessConfig(percentiles=(50, 10))
    with pytest.raises(ValidationError, match="divisible by 4"):
        PreprocessConfig(image_size=130)
    with pytest.raises(ValidationError):
        PreprocessConfig(mode="random")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PreprocessConfig(unknown_option=1)  # type: ignore[call-arg]


def test_tiff_header_matches_what_is_read(tmp_path: Path) -> None:
    from phenolapse.data.imageio import read_header

    cases: dict[str, np.ndarray] = {
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
