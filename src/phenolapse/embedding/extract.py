"""Batched, streaming, resumable feature extraction: image files -> ``features.zarr``.

``embed_manifest`` reads images with parallel decoding workers (a torch ``DataLoader``; pinned
memory on CUDA), encodes them in batches (mixed precision and channels-last where the hardware
gains from it), averages each image's crops, and writes the rows chunk by chunk into the feature
store (:mod:`phenolapse.embedding.store`). Memory is constant in the number of images. A rerun
into the same output computes only the rows not yet done; unreadable images stop the run (rows
already written are kept) or are skipped and listed, as the user chooses.

Output layout of ``out`` (a folder)::

    out/features.zarr      per-image features + manifest rows (read with read_features)
    out/profiles.parquet   one profile per (plate, well, time point) (read with read_profiles)
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from phenolapse.artefacts import (
    NORMALIZED_NAME,
    PROFILES_NAME,
    SKIPPED_NAME,
    FeatureStore,
    create_store,
    read_manifest,
    read_profiles,
    resolve_store,
    validate_manifest,
    write_profiles,
)
from phenolapse.data.imageio import load_for_model, plate_intensity_ranges
from phenolapse.embedding.config import EmbedConfig
from phenolapse.embedding.normalize import NormalizationConfig, normalize_profiles
from phenolapse.embedding.profiles import profiles_from_store
from phenolapse.embedding.store import output_lock
from phenolapse.errors import (
    ConfigError,
    FeatureTableError,
    ImageReadError,
    ManifestError,
    PhenolapseError,
)
from phenolapse.models.base import Extractor, load_extractor

log = logging.getLogger(__name__)


class StoreMismatchError(FeatureTableError):
    """An existing feature store was made from other images, weights or preprocessing."""


# ----------------------------------------------------------------------------------------------
# inputs


def resolve_manifest(
    manifest: pd.DataFrame | str | Path, *, platemap: Path | None = None
) -> pd.DataFrame:
    """A validated manifest from a table, a manifest Parquet file or a folder of images."""
    from phenolapse.data.manifest import build_manifest

    if isinstance(manifest, pd.DataFrame):
        df = validate_manifest(manifest)
    else:
        path = Path(manifest)
        if path.is_dir():
            df = build_manifest(path, platemap=platemap, progress=False)
        elif path.is_file():
            df = read_manifest(path)
        else:
            raise ManifestError(f"{path}: no such manifest file or image folder")
        if platemap is not None and not path.is_dir():
            raise ConfigError(
                "a plate map applies to an image folder; the manifest already has one"
            )
    df = df.reset_index(drop=True).copy()
    df.attrs = {}
    return df


def resolve_extractor(
    weights: str | Path | None, extractor: Extractor | None, config: EmbedConfig
) -> Extractor:
    """The extractor to run: ``extractor`` as given, or a ConvAE loaded from ``weights``."""
    if (weights is None) == (extractor is None):
        raise ConfigError("give exactly one of 'weights' (ConvAE weights file) or 'extractor'")
    if extractor is None:
        assert weights is not None
        extractor = load_extractor(
            weights,
            input_size=config.preprocess.image_size,
            features=config.convae_features,
        )
    if not isinstance(extractor, Extractor):
        raise ConfigError(
            f"extractor must be a phenolapse.models.base.Extractor, got {type(extractor)}"
        )
    if extractor.input_size != config.preprocess.image_size:
        raise ConfigError(
            f"{extractor.name} takes {extractor.input_size} px inputs but preprocessing makes "
            f"{config.preprocess.image_size} px; set preprocess.image_size={extractor.input_size}"
        )
    return extractor


def extractor_fingerprint(extractor: Extractor) -> str:
    """SHA-256 of the extractor's weights: refuses resuming with different weights."""
    digest = hashlib.sha256()
    for key, tensor in extractor.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# runtime choices


@dataclass(frozen=True)
class Runtime:
    """Resolved device, precision, layout and batching of one run."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    micro_batch: int
    num_workers: int

    @property
    def precision(self) -> str:
        """Short name of the compute precision."""
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _cpu_bf16_native() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_runtime(config: EmbedConfig, *, device: str | None = None) -> Runtime:
    """Pick device, precision, memory layout, micro-batch and worker count for ``config``.

    On CPU the ConvAE runs fastest one image at a time in channels-last bf16 (activations stay in
    cache; native bf16 units), on GPU in large channels-last bf16 batches.
    """
    name = device or config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use device='cpu'")
    dev = torch.device(name)
    cuda = dev.type == "cuda"
    precision = config.precision
    if precision == "auto":
        if cuda:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if _cpu_bf16_native() else "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = True
    micro = config.micro_batch
    if micro is None:
        micro = 1 if not cuda else 1 << 16
    workers = config.num_workers
    if workers is None:
        workers = min(16, _cpu_count()) if cuda else max(1, _cpu_count() - 1)
    return Runtime(dev, dtype, bool(channels_last), int(micro), int(workers))


# ----------------------------------------------------------------------------------------------
# reading


class _ImageRows(torch.utils.data.Dataset[tuple[int, torch.Tensor | None, str]]):
    """Decodes and preprocesses the manifest rows to compute; errors are returned, not raised."""

    def __init__(
        self,
        paths: list[str],
        plates: list[str],
        rows: np.ndarray,
        config: EmbedConfig,
        ranges: dict[str, tuple[float, float]],
    ) -> None:
        self.paths = paths
        self.plates = plates
        self.rows = rows
        self.preprocess = config.preprocess
        self.ranges = ranges

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> tuple[int, torch.Tensor | None, str]:
        row = int(self.rows[k])
        path = self.paths[row]
        try:
            arr = load_for_model(
                path, self.preprocess, intensity_range=self.ranges.get(self.plates[row])
            )
        except PhenolapseError as exc:
            return row, None, str(exc)
        except Exception as exc:
            return row, None, f"{path}: cannot read ({type(exc).__name__}: {exc})"
        return row, torch.from_numpy(arr), ""


def _collate(
    items: list[tuple[int, torch.Tensor | None, str]],
) -> tuple[list[int], torch.Tensor | None, list[int], list[tuple[int, str]]]:
    rows = [r for r, x, _ in items if x is not None]
    tensors = [x for _, x, _ in items if x is not None]
    counts = [int(x.shape[0]) for x in tensors]
    errors = [(r, e) for r, x, e in items if x is None]
    crops = torch.cat(tensors) if tensors else None
    return rows, crops, counts, errors


# ----------------------------------------------------------------------------------------------
# writing


class _ChunkWriter:
    """Collects computed rows per Zarr chunk and writes each chunk once all its rows are in."""

    def __init__(self, store: FeatureStore, rows: np.ndarray) -> None:
        self.store = store
        self.size = store.chunk_rows
        chunks, counts = np.unique(rows // self.size, return_counts=True)
        self.pending = dict(zip(chunks.tolist(), counts.tolist(), strict=True))
        self.buffers: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}

    def _buffer(self, chunk: int) -> tuple[np.ndarray, np.ndarray, int]:
        if chunk not in self.buffers:
            start = chunk * self.size
            stop = min(start + self.size, self.store.n_rows)
            done = np.asarray(self.store.done[start:stop], dtype=bool)
            if done.any():
                values = self.store.read_rows(start, stop)
                values[~done] = np.nan
            else:
                values = np.full((stop - start, self.store.n_features), np.nan, dtype=np.float32)
            self.buffers[chunk] = (values, done, 0)
        return self.buffers[chunk]

    def put(self, row: int, vector: np.ndarray | None) -> None:
        """Store the features of ``row`` (None: the image was skipped, the row stays empty)."""
        chunk = row // self.size
        values, done, new = self._buffer(chunk)
        if vector is not None:
            values[row - chunk * self.size] = vector
            done[row - chunk * self.size] = True
            new += 1
        self.buffers[chunk] = (values, done, new)
        self.pending[chunk] -= 1
        if self.pending[chunk] == 0:
            self._write(chunk)

    def _write(self, chunk: int) -> None:
        values, done, new = self.buffers.pop(chunk)
        if new:
            self.store.write_chunk(chunk, values, done)

    def flush(self) -> None:
        """Write every partly filled chunk (on interruption: nothing computed is lost)."""
        for chunk in list(self.buffers):
            self._write(chunk)


# ----------------------------------------------------------------------------------------------
# encoding


def _prepare_model(extractor: Extractor, runtime: Runtime, *, compile: bool) -> torch.nn.Module:
    """A copy of ``extractor`` on the run's device and layout (the caller's module is untouched)."""
    model: torch.nn.Module = copy.deepcopy(extractor).to(runtime.device).eval()
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model


def _encode(
    model: torch.nn.Module, crops: torch.Tensor, counts: list[int], runtime: Runtime
) -> np.ndarray:
    x = crops.to(runtime.device, non_blocking=True)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    outs = []
    autocast = runtime.dtype != torch.float32
    with torch.autocast(runtime.device.type, dtype=runtime.dtype, enabled=autocast):
        for i in range(0, x.shape[0], runtime.micro_batch):
            outs.append(model(x[i : i + runtime.micro_batch]).float())
    out = torch.cat(outs)
    if len(set(counts)) == 1:
        vec = out.view(len(counts), counts[0], -1).mean(dim=1)
    else:
        seg = torch.repeat_interleave(
            torch.arange(len(counts), device=out.device), torch.tensor(counts, device=out.device)
        )
        vec = torch.zeros(len(counts), out.shape[1], device=out.device).index_add_(0, seg, out)
        vec /= torch.tensor(counts, device=out.device, dtype=vec.dtype)[:, None]
    return vec.cpu().numpy()


def encode_rows(
    store_path: Path,
    rows: np.ndarray,
    extractor: Extractor,
    config: EmbedConfig,
    *,
    device: str | None = None,
    desc: str = "embedding",
) -> list[tuple[str, str]]:
    """Compute and write the features of ``rows`` of an existing store.

    Returns the ``(image_path, reason)`` of the images skipped (``on_error="skip"``); with
    ``on_error="raise"`` the first unreadable image raises :class:`ImageReadError` after the rows
    already computed are written.
    """
    store = FeatureStore(store_path, mode="r+")
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        return []
    meta = store.metadata()
    runtime = resolve_runtime(config, device=device)
    ranges = {
        str(k): (float(v[0]), float(v[1]))
        for k, v in store.attrs.get("intensity_ranges", {}).items()
    }
    dataset = _ImageRows(
        meta["image_path"].astype(str).tolist(),
        meta["plate"].astype(str).tolist(),
        rows,
        config,
        ranges,
    )
    cuda = runtime.device.type == "cuda"
    workers = min(runtime.num_workers, max(0, len(rows) // max(1, config.batch_size)))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=False, num_workers=workers,
        collate_fn=_collate, pin_memory=cuda, prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    model = _prepare_model(extractor, runtime, compile=config.compile)
    writer = _ChunkWriter(store, rows)
    skipped: list[tuple[str, str]] = []
    bar = tqdm(total=len(rows), desc=desc, unit="img", disable=not config.progress, leave=False)
    try:
        with torch.inference_mode():
            for batch_rows, crops, counts, errors in loader:
                if crops is not None:
                    vectors = _encode(model, crops, counts, runtime)
                    if not np.isfinite(vectors).all():
                        bad = batch_rows[int(np.flatnonzero(~np.isfinite(vectors).all(1))[0])]
                        raise FeatureTableError(
                            f"{dataset.paths[bad]}: the extractor returned NaN or infinite "
                            f"features (precision {runtime.precision}); rerun with precision='fp32'"
                        )
                    for row, vec in zip(batch_rows, vectors, strict=True):
                        writer.put(row, vec)
                for row, reason in errors:
                    if config.on_error == "raise":
                        raise ImageReadError(
                            f"{reason}\nThe features computed so far are saved; fix or remove the "
                            f"file and rerun to finish, or pass on_error='skip' (--skip-bad; "
                            "embed.on_error: skip in a run configuration)."
                        )
                    warnings.warn(f"skipped unreadable image {reason}", stacklevel=2)
                    skipped.append((dataset.paths[row], reason))
                    writer.put(row, None)
                bar.update(len(batch_rows) + len(errors))
    finally:
        bar.close()
        writer.flush()
    return skipped


# ----------------------------------------------------------------------------------------------
# driver


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """``(features.zarr, profiles.parquet)`` for an output folder (or a ``.zarr`` path)."""
    store = resolve_store(out)
    return store, store.parent / PROFILES_NAME


def prepare_store(
    manifest: pd.DataFrame,
    extractor: Extractor,
    store_path: Path,
    config: EmbedConfig,
    *,
    overwrite: bool = False,
) -> np.ndarray:
    """Create the store, or reopen it for resuming; returns the rows still to compute.

    A store written from another manifest, extractor, weights or preprocessing is refused (or
    replaced with ``overwrite=True``).
    """
    describe = extractor.describe()
    fingerprint = {
        "extractor": describe,
        "weights_sha256": extractor_fingerprint(extractor),
        "preprocess": config.preprocess.model_dump(mode="json"),
    }
    if store_path.exists() and overwrite:
        import shutil

        shutil.rmtree(store_path)
    if store_path.exists():
        store = FeatureStore(store_path)
        old = store.attrs.get("fingerprint")
        if old != fingerprint:
            what = [k for k in fingerprint if (old or {}).get(k) != fingerprint[k]]
            raise StoreMismatchError(
                f"{store_path}: holds features made with a different {', '.join(what)}; "
                f"write to another output folder or pass overwrite=True (--overwrite)"
            )
        stored = store.metadata()["image_path"].astype(str).to_numpy()
        current = manifest["image_path"].astype(str).to_numpy()
        if len(stored) != len(current) or (stored != current).any():
            diff = (
                f"{len(stored)} images stored, {len(current)} in the manifest"
                if len(stored) != len(current)
                else f"row {int(np.flatnonzero(stored != current)[0])} differs"
            )
            raise StoreMismatchError(
                f"{store_path}: holds features of another manifest ({diff}); write to another "
                f"output folder or pass overwrite=True (--overwrite)"
            )
        _refresh_metadata(store, manifest)
        return np.flatnonzero(~store.done_mask())
    ranges = plate_intensity_ranges(manifest, config.preprocess)
    create_store(
        store_path,
        manifest,
        n_features=extractor.n_features,
        chunk_rows=config.chunk_rows,
        attrs={
            "extractor": describe,
            "feature_prefix": extractor.feature_prefix,
            "fingerprint": fingerprint,
            "intensity_ranges": {k: list(v) for k, v in ranges.items()},
            "config": config.model_dump(mode="json"),
        },
    )
    return np.arange(len(manifest))


def _refresh_metadata(store: FeatureStore, manifest: pd.DataFrame) -> None:
    """Store the current manifest's rows: features are kept by image, labels come from the manifest.

    A corrected plate map changes drug, concentration, role or time of images already encoded;
    their features stay valid, their metadata must not.
    """
    if store.write_metadata(manifest):
        log.info("%s: metadata updated from the current manifest", store.path)


def finish(
    store_path: Path, profiles_path: Path, config: EmbedConfig, skipped: list[tuple[str, str]]
) -> None:
    """Record skipped images and write the profiles of every computed image."""
    store = FeatureStore(store_path)
    table = pd.DataFrame(skipped, columns=["image_path", "reason"])
    store.write_skipped(table)
    missing = int((~store.done_mask()).sum())
    if missing:
        warnings.warn(
            f"{store_path}: {missing} image(s) without features (listed in "
            f"{store_path / SKIPPED_NAME}); they are left out of the profiles",
            stacklevel=3,
        )
    if config.profiles and missing < store.n_rows:
        profiles_from_store(
            store_path, profiles_path, aggregation=config.aggregation, progress=config.progress
        )
        write_normalized_profiles(profiles_path, config.normalization)


def write_normalized_profiles(profiles_path: Path, config: NormalizationConfig) -> Path | None:
    """Write ``profiles_normalized.parquet`` beside ``profiles_path`` (see ``normalize``).

    When the profiles cannot be normalised (a plate with too few wells) the reason is given as a
    warning, an earlier normalised table is removed (it would no longer match) and None returned.
    """
    target = profiles_path.with_name(NORMALIZED_NAME)
    profiles = read_profiles(profiles_path)
    try:
        result = normalize_profiles(profiles, config=config)
    except FeatureTableError as exc:
        target.unlink(missing_ok=True)
        warnings.warn(f"{target.name} not written: {exc}", stacklevel=2)
        return None
    if not result.dropped.empty:
        log.info(
            "%d feature(s) dropped by the normalisation (e.g. %s)",
            len(result.dropped),
            ", ".join(result.dropped["feature"].head(3)),
        )
    return write_profiles(
        result.profiles,
        target,
        kind="profiles_normalized",
        normalization=config.model_dump(mode="json"),
        dropped_features=result.dropped["feature"].tolist(),
        fallback_plates=result.fallback_plates,
    )


def embed_manifest(
    manifest: pd.DataFrame | str | Path,
    *,
    weights: str | Path | None = None,
    extractor: Extractor | None = None,
    out: str | Path,
    config: EmbedConfig | None = None,
    overwrite: bool = False,
    platemap: str | Path | None = None,
) -> Path:
    """Encode every image of a manifest into ``out/features.zarr`` and ``out/profiles.parquet``.

    Parameters
    ----------
    manifest
        Manifest table, manifest Parquet file, or a folder of images (a manifest is built from
        the file names, with ``platemap`` if given).
    weights
        ConvAE weights file (published state_dict or training checkpoint).
    extractor
        Any :class:`~phenolapse.models.base.Extractor` instead of ``weights``.
    out
        Output folder (or the ``.zarr`` path itself; profiles go beside it).
    config
        Preprocessing, batching, device, precision, error policy.
    overwrite
        Replace an existing store instead of resuming it.
    platemap
        Plate map used when ``manifest`` is a folder of images.

    Returns
    -------
    Path
        The ``features.zarr`` store, readable with :func:`read_features`.
    """
    config = config or EmbedConfig()
    df = resolve_manifest(manifest, platemap=None if platemap is None else Path(platemap))
    model = resolve_extractor(weights, extractor, config)
    store_path, profiles_path = output_paths(out)
    with output_lock(store_path):
        rows = prepare_store(df, model, store_path, config, overwrite=overwrite)
        if len(rows) < len(df):
            log.info("resuming %s: %d of %d images left", store_path, len(rows), len(df))
        skipped = encode_rows(store_path, rows, model, config)
        finish(store_path, profiles_path, config, skipped)
    return store_path


def describe_runtime(config: EmbedConfig, *, device: str | None = None) -> dict[str, Any]:
    """The device, precision, layout and worker count a run with ``config`` would use."""
    rt = resolve_runtime(config, device=device)
    return {
        "device": str(rt.device),
        "precision": rt.precision,
        "channels_last": rt.channels_last,
        "micro_batch": rt.micro_batch,
        "num_workers": rt.num_workers,
    }
