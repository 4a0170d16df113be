"""Image reading and preprocessing shared by every stage.

Images are returned as float32 arrays in [0, 1]: ``(H, W)`` for grayscale, ``(H, W, C)`` for
multi-channel. 8-bit images are divided by 255. 16-bit images are scaled by a fixed range or by
per-plate percentiles (:func:`plate_intensity_ranges`), never per image: per-image scaling would
erase real differences in brightness between wells. Resizing is antialiased bilinear, matching
``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageSequence, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from phenolapse.errors import ImageReadError

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg"})
MAX_PIXELS = 2 * int(Image.MAX_IMAGE_PIXELS or 89_478_485)
"""Largest frame read (pixels, about 179 million): bigger files are refused, never decoded."""

_SPLIT_FRAMES = (
    "split stitched frames into fields or tiles of at most a few thousand pixels a side "
    "(one file each)"
)
_PIL_BITS = {"1": "8-bit", "L": "8-bit", "P": "8-bit", "LA": "8-bit", "RGB": "8-bit",
             "RGBA": "8-bit", "CMYK": "8-bit", "YCbCr": "8-bit", "I": "32-bit integer",
             "F": "32-bit float"}  # fmt: skip
_PIL_CHANNELS = {"RGB": 3, "RGBA": 3, "YCbCr": 3}


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding the pixels."""

    width: int
    height: int
    bits: str
    channels: int

    def describe(self) -> str:
        """E.g. ``640x480 px, 8-bit grayscale``."""
        kind = "grayscale" if self.channels == 1 else f"{self.channels}-channel (colour)"
        return f"{self.width}x{self.height} px, {self.bits} {kind}"


def _too_large(path: Path, pixels: int) -> ImageReadError:
    return ImageReadError(
        f"{path}: a frame of {pixels / 1e6:.0f} million pixels, more than the "
        f"{MAX_PIXELS / 1e6:.0f} million phenolapse reads; {_SPLIT_FRAMES}"
    )


def read_header(path: str | Path) -> ImageHeader:
    """Frame size, bit depth and channels from the file header (cheap: pixels are not decoded).

    Raises
    ------
    ImageReadError
        For frames larger than :data:`MAX_PIXELS`.
    OSError, ValueError
        When the header cannot be read (not an image).
    """
    path = Path(path)
    if path.suffix.lower() in {".tif", ".tiff"}:
        header = _tiff_header(path)
        if header is not None:
            if header.width * header.height > MAX_PIXELS:
                raise _too_large(path, header.width * header.height)
            return header
    try:
        with Image.open(path) as im:
            w, h = im.size
            mode = im.mode
    except Image.DecompressionBombError as exc:
        found = [int(n) for n in re.findall(r"\((\d+) pixels\)", str(exc))]
        raise _too_large(path, found[0] if found else MAX_PIXELS + 1) from exc
    if w * h > MAX_PIXELS:
        raise _too_large(path, w * h)
    bits = "16-bit" if mode.startswith("I;16") else _PIL_BITS.get(mode, mode)
    return ImageHeader(w, h, bits, _PIL_CHANNELS.get(mode, 1))


class PreprocessConfig(BaseModel):
    """How a raw frame becomes the model's input.

    Attributes
    ----------
    crop_size
        Side of the square crop(s) taken from the raw frame (the reference: 256); None keeps the
        whole frame (``mode="full"`` also does).
    image_size
        Side of the model input after antialiased resize (the reference: 128).
    mode
        ``center``: one centre crop; ``tile``: every non-overlapping ``crop_size`` tile of the frame
        (features are later averaged); ``full``: the whole frame resized.
    channels
        Channel indices to keep from multi-channel images (None: all).
    intensity
        ``dtype``: 8-bit /255, 16-bit /65535; ``fixed``: ``fixed_range``; ``plate_percentiles``:
        ``percentiles`` of a sample of each plate's images.
    fixed_range
        ``(low, high)`` raw values mapped to 0 and 1 when ``intensity="fixed"``.
    percentiles
        Low and high percentiles (0-100) mapped to 0 and 1 when ``intensity="plate_percentiles"``.
    percentile_sample
        Images per plate sampled to estimate the percentiles.
    """

    model_config = ConfigDict(extra="forbid")

    crop_size: int | None = Field(default=256, ge=4)
    image_size: int = Field(default=128, ge=4)
    mode: Literal["center", "tile", "full"] = "center"
    channels: list[int] | None = None
    intensity: Literal["dtype", "fixed", "plate_percentiles"] = "dtype"
    fixed_range: tuple[float, float] | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    percentile_sample: int = Field(default=32, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PreprocessConfig:
        if self.intensity == "fixed" and self.fixed_range is None:
            raise ValueError("intensity='fixed' needs fixed_range=(low, high)")
        if self.fixed_range is not None and not self.fixed_range[0] < self.fixed_range[1]:
            raise ValueError(f"fixed_range must be (low, high) with low < high: {self.fixed_range}")
        if not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100: {self.percentiles}")
        if self.image_size % 4:
            raise ValueError(
                f"image_size must be divisible by 4 (ConvAE latent): {self.image_size}"
            )
        return self


def read_raw(path: str | Path) -> np.ndarray:
    """Decode an image file into its native dtype, ``(H, W)`` or ``(H, W, C)``."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty (0-byte) image file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".tif", ".tiff"}:
            arr = _read_tiff(path)
        else:
            with Image.open(path) as im:
                im.load()
                arr = _gray_if_equal(_pil_to_array(im))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_large(path, MAX_PIXELS + 1) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(
            f"{path}: cannot decode image ({exc}); the file may be corrupt or truncated"
        ) from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ImageReadError(f"{path}: unsupported image shape {arr.shape}")
    return arr


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode in {"RGBA", "LA"}:
        im = im.convert(im.mode[:-1])
    if im.mode in {"P", "1", "CMYK", "YCbCr"}:
        im = im.convert("L")
    if im.mode in {"I;16", "I;16B", "I;16L"}:
        return np.asarray(im, dtype=np.uint16)
    arr = np.asarray(im)
    if im.mode == "I":
        arr = arr.astype(np.int64)
        if arr.min() >= 0 and arr.max() <= 65535:
            return arr.astype(np.uint16)
        raise ImageReadError(f"32-bit integer image with values outside 0..65535 ({im.mode})")
    return arr


def _tiff_header(path: Path) -> ImageHeader | None:
    """The header of a TIFF's first series as :func:`read_raw` will return it; None if unreadable."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = str(series.axes)
            shape = tuple(int(n) for n in series.shape)
            dtype = np.dtype(series.dtype)
    except Exception:
        return None
    channels = 1
    if axes[-1:] == "S" and len(shape) >= 3:
        channels, plane = shape[-1], shape[-3:-1]
    elif len(shape) == 3 and shape[0] <= 8 and shape[2] > 8:
        channels, plane = shape[0], shape[1:]
    else:
        plane = shape[-2:]
    if len(plane) < 2:
        return None
    if np.issubdtype(dtype, np.floating):
        bits = f"{dtype.itemsize * 8}-bit float"
    elif dtype.itemsize == 4:
        bits = "32-bit integer"
    else:
        bits = f"{dtype.itemsize * 8}-bit"
    return ImageHeader(int(plane[1]), int(plane[0]), bits, int(channels))


def _gray_if_equal(arr: np.ndarray) -> np.ndarray:
    """A grayscale picture saved as RGB (three equal channels) back to one channel."""
    if (
        arr.ndim == 3
        and arr.shape[2] == 3
        and (arr[:, :, 0] == arr[:, :, 1]).all()
        and (arr[:, :, 0] == arr[:, :, 2]).all()
    ):
        return np.ascontiguousarray(arr[:, :, 0])
    return arr


def _stack_error(path: Path, frames: int, detail: str) -> ImageReadError:
    return ImageReadError(
        f"{path}: a stack of {frames} frames ({detail}); phenolapse reads one frame per file "
        "(up to 8 channels), whatever the compression: save each time point or z-plane as its "
        "own file"
    )


def _check_tiff_shape(path: Path, axes: str, shape: tuple[int, ...]) -> None:
    """Refuse stacks of frames (time, z, more than 8 pages) and frames over MAX_PIXELS."""
    stack = {a: n for a, n in zip(axes, shape, strict=False) if a in "TZ" and n > 1}
    if stack or (len(shape) == 3 and shape[0] > 8 and shape[2] > 8 and axes[-1:] != "S"):
        raise _stack_error(path, shape[0], f"TIFF axes {axes}, shape {shape}")
    plane = shape[:2] if axes[-1:] == "S" else shape[-2:]
    if int(np.prod(plane)) > MAX_PIXELS:
        raise _too_large(path, int(np.prod(plane)))


def _read_tiff(path: Path) -> np.ndarray:
    """Decode a TIFF with tifffile, or page by page with Pillow where tifffile lacks the codec.

    Stacks are judged on the header's shape before any decoding, so a compressed stack is treated
    exactly like an uncompressed one.
    """
    import tifffile

    arr: np.ndarray | None = None
    axes = ""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = str(series.axes)
            _check_tiff_shape(path, axes, tuple(int(n) for n in series.shape))
            try:
                arr = np.asarray(series.asarray())
            except Exception:
                arr = None  # a compression tifffile cannot decode without imagecodecs (LZW, ...)
    except ImageReadError:
        raise
    except Exception:
        arr = None
    if arr is None:
        with Image.open(path) as im:
            pages = [_pil_to_array(page) for page in ImageSequence.Iterator(im)]
        if len(pages) == 1:
            return pages[0]
        if len({p.shape for p in pages}) > 1:
            raise ImageReadError(f"{path}: TIFF pages of different sizes; save one frame per file")
        arr = np.stack(pages)
        axes = axes if len(axes) == arr.ndim else "I" + "YXS"[: arr.ndim - 1]
        _check_tiff_shape(path, axes, arr.shape)
    if arr.size == 0:
        raise ImageReadError(
            f"{path}: cannot decode image (no image data); the file may be corrupt or truncated"
        )
    if arr.ndim == 3 and arr.shape[0] <= 8 and arr.shape[2] > 8:
        arr = np.moveaxis(arr, 0, -1)  # channels-first TIFF stacks
    return arr


def scale_intensity(
    raw: np.ndarray, *, intensity_range: tuple[float, float] | None = None, path: str | Path = "?"
) -> np.ndarray:
    """Map a raw array to float32 [0, 1] (see module docstring for the rule)."""
    if raw.dtype == np.uint8 and intensity_range is None:
        return raw.astype(np.float32) / np.float32(255.0)
    if intensity_range is not None:
        low, high = float(intensity_range[0]), float(intensity_range[1])
        if not high > low:
            raise ImageReadError(f"{path}: intensity range {intensity_range} is empty")
        out = (raw.astype(np.float32) - np.float32(low)) / np.float32(high - low)
        return np.clip(out, 0.0, 1.0, out=out)
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(raw.dtype, np.floating):
        if np.nanmin(raw) < 0 or np.nanmax(raw) > 1:
            raise ImageReadError(
                f"{path}: floating-point image outside [0, 1]; give an intensity range"
            )
        return raw.astype(np.float32)
    raise ImageReadError(f"{path}: unsupported pixel type {raw.dtype} (use 8- or 16-bit images)")


def read_image(
    path: str | Path, *, intensity_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Read an image file as float32 in [0, 1], ``(H, W)`` or ``(H, W, C)``.

    Parameters
    ----------
    path
        TIFF, PNG or JPEG file.
    intensity_range
        ``(low, high)`` raw values mapped to 0 and 1 (clipped); None: by dtype.
    """
    raw = read_raw(path)
    img = scale_intensity(raw, intensity_range=intensity_range, path=path)
    if not np.isfinite(img).all():
        raise ImageReadError(f"{path}: image contains NaN or infinite values")
    return img


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Central ``size`` x ``size`` crop; frames smaller than ``size`` are an error."""
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ImageReadError(f"image of {h}x{w} px is smaller than the {size} px crop")
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size].copy()


def tile_crops(img: np.ndarray, size: int, *, stride: int | None = None) -> np.ndarray:
    """All ``size`` x ``size`` tiles on a grid centred in the frame (``stride`` default: size)."""
    stride = size if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ImageReadError(f"image of {h}x{w} px is smaller than the {size} px tile")
    ny, nx = (h - size) // stride + 1, (w - size) // stride + 1
    oy = (h - (size + (ny - 1) * stride)) // 2
    ox = (w - (size + (nx - 1) * stride)) // 2
    tiles = [
        img[oy + i * stride : oy + i * stride + size, ox + j * stride : ox + j * stride + size]
        for i in range(ny)
        for j in range(nx)
    ]
    return np.stack(tiles).copy()


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a float image to ``size`` (square or ``(h, w)``)."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if img.shape[:2] == (out_h, out_w):
        return img.astype(np.float32, copy=True)
    if img.ndim == 2:
        pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
        return np.asarray(pil.resize((out_w, out_h), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.stack([resize(img[:, :, c], (out_h, out_w)) for c in range(img.shape[2])], axis=-1)


def select_channels(img: np.ndarray, channels: Sequence[int] | None) -> np.ndarray:
    """Keep ``channels`` of an ``(H, W, C)`` image; grayscale passes through when ``[0]``."""
    if channels is None:
        return img
    if img.ndim == 2:
        if list(channels) != [0]:
            raise ImageReadError(f"grayscale image has no channels {list(channels)}")
        return img
    if max(channels) >= img.shape[2]:
        raise ImageReadError(f"image has {img.shape[2]} channels, asked for {list(channels)}")
    return img[:, :, list(channels)]


def preprocess(img: np.ndarray, config: PreprocessConfig | None = None) -> np.ndarray:
    """Crop, resize and move channels first: ``(n_crops, C, image_size, image_size)`` float32."""
    config = config or PreprocessConfig()
    img = select_channels(img, config.channels)
    if config.mode == "full" or config.crop_size is None:
        crops = img[None]
    elif config.mode == "center":
        crops = center_crop(img, config.crop_size)[None]
    else:
        crops = tile_crops(img, config.crop_size)
    out = np.stack([resize(c, config.image_size) for c in crops])
    out = out[:, None] if out.ndim == 3 else np.moveaxis(out, -1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def load_for_model(
    path: str | Path,
    config: PreprocessConfig | None = None,
    *,
    intensity_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Read ``path`` and :func:`preprocess` it; errors name the file."""
    config = config or PreprocessConfig()
    if intensity_range is None and config.intensity == "fixed":
        intensity_range = config.fixed_range
    img = read_image(path, intensity_range=intensity_range)
    try:
        return preprocess(img, config)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc


def plate_intensity_ranges(
    manifest: pd.DataFrame, config: PreprocessConfig, *, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Per-plate ``(low, high)`` raw intensity percentiles from a sample of each plate's images.

    Returns an empty dict unless ``config.intensity == "plate_percentiles"``; with ``fixed`` every
    plate gets ``config.fixed_range``.
    """
    plates = manifest["plate"].astype(str).unique()
    if config.intensity == "dtype":
        return {}
    if config.intensity == "fixed":
        assert config.fixed_range is not None
        return {p: config.fixed_range for p in plates}
    rng = np.random.default_rng(seed)
    ranges: dict[str, tuple[float, float]] = {}
    for plate, rows in manifest.groupby(manifest["plate"].astype(str)):
        paths = rows["image_path"].to_numpy()
        pick = rng.choice(len(paths), size=min(config.percentile_sample, len(paths)), replace=False)
        values = np.concatenate(
            [
                select_channels(read_raw(paths[i]), config.channels).ravel()[::7]
                for i in sorted(pick)
            ]
        ).astype(np.float64)
        low, high = np.percentile(values, config.percentiles)
        if not high > low:
            high = low + 1.0
        ranges[str(plate)] = (float(low), float(high))
    return ranges
