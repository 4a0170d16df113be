"""Cost of an extractor: seconds per 1,000 images on a fixed sample of the screen's images."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from phenolapse.data.imageio import PreprocessConfig, load_for_model
from phenolapse.models.base import Extractor


@dataclass
class CostResult:
    """Timing of one extractor.

    Attributes
    ----------
    seconds_per_1000_images
        Decoding, preprocessing and the forward pass, per 1,000 images.
    model_seconds_per_1000_images
        The forward pass alone.
    n_images
        Images timed.
    device
        Where the forward pass ran.
    """

    seconds_per_1000_images: float
    model_seconds_per_1000_images: float
    n_images: int
    device: str


def sample_images(paths: Sequence[str | Path], n: int, *, seed: int = 0) -> list[Path]:
    """A fixed random sample of ``n`` image paths (the same for every extractor)."""
    items = [Path(p) for p in paths]
    if len(items) <= n:
        return items
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in idx]


@torch.inference_mode()
def measure_cost(
    extractor: Extractor,
    image_paths: Sequence[str | Path],
    *,
    preprocess: PreprocessConfig | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = False,
) -> CostResult:
    """Time ``extractor`` on ``image_paths`` (one untimed warm-up batch first).

    Images are read and preprocessed as the embedding stage does (``preprocess``, whose
    ``image_size`` is set to the extractor's input size).
    """
    if not image_paths:
        raise ValueError("no images to time the extractor on")
    config = (preprocess or PreprocessConfig.model_validate({})).model_copy(
        update={"image_size": int(extractor.input_size)}
    )
    model = extractor.to(device).eval()
    paths = list(image_paths)
    warm = np.concatenate([load_for_model(p, config) for p in paths[: min(2, len(paths))]])
    model(torch.from_numpy(warm).to(device))
    total = 0.0
    model_time = 0.0
    n = 0
    for start in tqdm(range(0, len(paths), batch_size), disable=not progress, desc=extractor.name):
        t0 = time.perf_counter()
        chunk = paths[start : start + batch_size]
        batch = np.concatenate([load_for_model(p, config) for p in chunk])
        t1 = time.perf_counter()
        out = model(torch.from_numpy(batch).to(device))
        if out.is_cuda:
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        total += t2 - t0
        model_time += t2 - t1
        n += len(chunk)
    return CostResult(
        seconds_per_1000_images=1000.0 * total / n,
        model_seconds_per_1000_images=1000.0 * model_time / n,
        n_images=n,
        device=str(device),
    )
