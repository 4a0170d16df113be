"""Training data: split by well, decoded frames (in RAM when they fit), datasets of views.

A *frame* is one crop of one image as the model's views are cut from it (``crop_size`` px, before
the resize to ``image_size``). Each image yields one frame (``center``/``full``) or several
(``tile``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from phenolapse.data.imageio import (
    PreprocessConfig,
    center_crop,
    read_image,
    select_channels,
    tile_crops,
)
from phenolapse.errors import ImageReadError, ManifestError
from phenolapse.training.transforms import MultiCropTransform, resize

REQUIRED_COLUMNS = ("image_path", "plate", "well")


def check_manifest(manifest: pd.DataFrame) -> None:
    """Raise :class:`ManifestError` if ``manifest`` is empty or lacks the columns training needs."""
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(
            f"manifest lacks column(s) {missing}; build it with `phenolapse ingest`"
        )
    if len(manifest) == 0:
        raise ManifestError("manifest has no images; nothing to train on")


def split_by_well(
    manifest: pd.DataFrame, *, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions ``(train, validation)`` with every (plate, well) on one side only.

    About ``val_fraction`` of the wells (at least one when ``val_fraction > 0`` and there are two or
    more wells) go to validation; which ones depends only on ``seed`` and the set of wells.
    """
    check_manifest(manifest)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    keys = manifest["plate"].astype(str) + "\x00" + manifest["well"].astype(str)
    groups = np.array(sorted(keys.unique()))
    n_val = round(val_fraction * len(groups))
    n_val = min(max(n_val, 1), len(groups) - 1) if val_fraction > 0 and len(groups) >= 2 else 0
    rng = np.random.default_rng(seed)
    val_groups = set(groups[rng.permutation(len(groups))[:n_val]])
    is_val = keys.isin(val_groups).to_numpy()
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def decode_frames(
    path: str | Path,
    config: PreprocessConfig,
    *,
    intensity_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Frames of one image, ``(n_frames, C, H, W)`` float32 in [0, 1], before the final resize."""
    if intensity_range is None and config.intensity == "fixed":
        intensity_range = config.fixed_range
    img = read_image(path, intensity_range=intensity_range)
    try:
        img = select_channels(img, config.channels)
        if config.mode == "full" or config.crop_size is None:
            frames = img[None]
        elif config.mode == "center":
            frames = center_crop(img, config.crop_size)[None]
        else:
            frames = tile_crops(img, config.crop_size)
    except ImageReadError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc
    frames = frames[:, None] if frames.ndim == 3 else np.moveaxis(frames, -1, 1)
    return np.ascontiguousarray(frames, dtype=np.float32)


class FrameStore:
    """Frames of a list of images, decoded once and kept in RAM or decoded on demand.

    8-bit data are kept as uint8 (lossless); other data as float32.

    Parameters
    ----------
    paths
        Image files.
    config
        Preprocessing (crop mode and size, channels, intensity scaling).
    intensity_ranges
        Raw intensity range per image (same length as ``paths``) or None.
    cache_gb
        Decode everything now when the frames take at most this many GiB as float32, else
        decode on each access (0: never cache).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        config: PreprocessConfig,
        *,
        intensity_ranges: Sequence[tuple[float, float] | None] | None = None,
        cache_gb: float = 4.0,
        num_threads: int = 1,
        progress: bool = True,
    ) -> None:
        if len(paths) == 0:
            raise ManifestError("no images to train on")
        self.paths = [Path(p) for p in paths]
        self.config = config
        self.ranges = (
            list(intensity_ranges) if intensity_ranges is not None else [None] * len(paths)
        )
        first = self._decode(0)
        self.frames_per_image = first.shape[0]
        self.frame_shape = tuple(first.shape[1:])
        self.cached: list[torch.Tensor] | None = None
        if 0 < self.nbytes_estimate <= cache_gb * 2**30:
            self.cached = self._decode_all(first, num_threads=num_threads, progress=progress)

    def _decode(self, i: int) -> np.ndarray:
        return decode_frames(self.paths[i], self.config, intensity_range=self.ranges[i])

    def _check_count(self, image: int, frames: np.ndarray) -> None:
        if frames.shape[0] != self.frames_per_image:
            raise ImageReadError(
                f"{self.paths[image]}: gives {frames.shape[0]} tiles, the first image "
                f"{self.frames_per_image}; tile mode needs frames of one size"
            )

    def _pack(self, frames: np.ndarray) -> torch.Tensor:
        q = np.round(frames * np.float32(255.0))
        if np.array_equal(q.astype(np.float32) / np.float32(255.0), frames):
            return torch.from_numpy(q.astype(np.uint8))
        return torch.from_numpy(frames)

    def _decode_all(
        self, first: np.ndarray, *, num_threads: int, progress: bool
    ) -> list[torch.Tensor]:
        out = [self._pack(first)]
        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            it = pool.map(self._decode, range(1, len(self.paths)))
            n = len(self.paths) - 1
            bar = tqdm(it, total=n, desc="decode", disable=not progress, leave=False)
            for i, frames in enumerate(bar, start=1):
                self._check_count(i, frames)
                out.append(self._pack(frames))
        return out

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.paths) * self.frames_per_image

    @property
    def nbytes_estimate(self) -> int:
        """Bytes the frames would take in RAM as float32."""
        return len(self) * int(np.prod(self.frame_shape)) * 4

    def frame(self, index: int) -> torch.Tensor:
        """Frame ``index`` as a new float32 ``(C, H, W)`` tensor (the cache is untouched)."""
        image, tile = divmod(index, self.frames_per_image)
        if self.cached is not None:
            t = self.cached[image][tile]
        else:
            frames = self._decode(image)
            self._check_count(image, frames)
            t = torch.from_numpy(frames[tile])
        if t.dtype == torch.uint8:
            return t.float() / 255.0
        return t.clone()


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """Generator for one item of one epoch: independent of order, workers and resumption."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class MultiCropDataset(Dataset[torch.Tensor]):
    """Item ``i``: the augmented views ``(V, C, S, S)`` of frame ``i`` for the current epoch."""

    def __init__(self, store: FrameStore, transform: MultiCropTransform, *, seed: int = 0) -> None:
        self.store = store
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentations of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> torch.Tensor:
        gen = item_generator(self.seed, self.epoch, index)
        return self.transform(self.store.frame(index), gen)


class WholeFrameDataset(Dataset[torch.Tensor]):
    """Item ``i``: frame ``i`` resized to ``size`` without augmentation, ``(C, S, S)``."""

    def __init__(self, store: FrameStore, *, size: int) -> None:
        self.store = store
        self.size = size

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> torch.Tensor:
        return resize(self.store.frame(index), self.size)
