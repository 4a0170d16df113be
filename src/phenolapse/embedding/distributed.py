"""Distributed feature extraction on Dask: the same embed step, split over workers.

The parent creates (or reopens, for resuming) ``out/features.zarr`` exactly as
:func:`~phenolapse.embedding.embed_manifest` does, splits the rows still to compute into one
shard per worker along the store's row chunks, and each worker encodes its shard straight into
its own chunks of the shared store (chunks never overlap, so no locking is needed). The parent
then lists skipped images and writes the profiles. The output is the same on-disk format as a
single-process run, with the same values.

Usage::

    from phenolapse.embedding import EmbedConfig, embed_distributed

    # one machine: a LocalCluster with one worker process per GPU (2 on a CPU-only machine)
    embed_distributed("manifest.parquet", weights="convae.torch", out="run1")

    # a cluster: start ``dask scheduler`` and one ``dask worker tcp://host:8786 --nthreads 1``
    # per GPU (with dask-cuda: ``dask cuda worker tcp://host:8786``); image files and the output
    # folder must be on a file system every worker sees.
    embed_distributed("manifest.parquet", weights="convae.torch", out="/shared/run1",
                      scheduler="tcp://host:8786", config=EmbedConfig(device="cuda"))

Workers on a machine with several GPUs each take the GPU of their rank among that machine's
workers. Command line: ``phenolapse embed ... --distributed [--scheduler ADDRESS]``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolapse.embedding.config import EmbedConfig
from phenolapse.embedding.extract import (
    encode_rows,
    finish,
    output_paths,
    prepare_store,
    resolve_extractor,
    resolve_manifest,
)
from phenolapse.embedding.store import output_lock
from phenolapse.errors import ConfigError
from phenolapse.models.base import Extractor, load_extractor


def split_rows(rows: np.ndarray, chunk_rows: int, n_shards: int) -> list[np.ndarray]:
    """Split row indices into at most ``n_shards`` shards of whole chunks, balanced by count."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        return []
    chunks = rows // chunk_rows
    bounds = np.flatnonzero(np.diff(chunks)) + 1
    groups = np.split(rows, bounds)
    n_shards = max(1, min(n_shards, len(groups)))
    before = np.cumsum([0] + [len(g) for g in groups[:-1]])
    shard_of = np.minimum(before * n_shards // len(rows), n_shards - 1)
    return [
        np.concatenate([g for g, s in zip(groups, shard_of, strict=True) if s == k])
        for k in np.unique(shard_of)
    ]


def _run_shard(
    store_path: str,
    rows: np.ndarray,
    model: Extractor | str,
    config_json: dict[str, Any],
    host_rank: int,
    index: int,
) -> list[tuple[str, str]]:
    """Worker side: encode ``rows`` into the shared store; returns the skipped images."""
    import torch

    config = EmbedConfig.model_validate(config_json)
    extractor = (
        load_extractor(
            model, input_size=config.preprocess.image_size, features=config.convae_features
        )
        if isinstance(model, str)
        else model
    )
    device = config.device
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{host_rank % torch.cuda.device_count()}"
    elif device == "auto":
        device = "cpu"
    if multiprocessing.current_process().daemon:
        config = config.model_copy(update={"num_workers": 0})  # daemons may not fork loaders
    return encode_rows(
        Path(store_path), rows, extractor, config, device=device, desc=f"shard {index}"
    )


@contextlib.contextmanager
def _client(scheduler: str | None, n_workers: int, threads_per_worker: int) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _host_ranks(workers: list[str]) -> dict[str, int]:
    """Rank of each worker among the workers of its host (picks that host's GPU)."""
    ranks: dict[str, int] = {}
    seen: dict[str, int] = {}
    for address in sorted(workers):
        host = address.rsplit(":", 1)[0]
        ranks[address] = seen.get(host, 0)
        seen[host] = ranks[address] + 1
    return ranks


def embed_distributed(
    manifest: pd.DataFrame | str | Path,
    *,
    weights: str | Path | None = None,
    extractor: Extractor | None = None,
    out: str | Path,
    config: EmbedConfig | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    overwrite: bool = False,
    platemap: str | Path | None = None,
) -> Path:
    """Like :func:`~phenolapse.embedding.embed_manifest`, on a Dask cluster.

    Parameters
    ----------
    manifest, weights, extractor, out, config, overwrite, platemap
        As for :func:`~phenolapse.embedding.embed_manifest`.
    scheduler
        Address of a running Dask scheduler; None starts a ``LocalCluster``.
    n_workers
        Worker processes of the LocalCluster; None: one per GPU, or 2 without GPUs.
    threads_per_worker
        Threads of each LocalCluster worker.

    Returns
    -------
    Path
        The ``features.zarr`` store.
    """
    import torch

    config = config or EmbedConfig()
    if n_workers is None:
        n_workers = torch.cuda.device_count() or 2
    if n_workers < 1:
        raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
    df = resolve_manifest(manifest, platemap=None if platemap is None else Path(platemap))
    model = resolve_extractor(weights, extractor, config)
    payload: Extractor | str = str(Path(weights).resolve()) if weights is not None else model
    store_path, profiles_path = output_paths(out)
    store_path = store_path.resolve()
    with output_lock(store_path):
        rows = prepare_store(df, model, store_path, config, overwrite=overwrite)
        skipped: list[tuple[str, str]] = []
        if len(rows):
            with _client(scheduler, n_workers, threads_per_worker) as client:
                workers = sorted(client.scheduler_info()["workers"])
                if not workers:
                    raise ConfigError(f"the Dask scheduler {scheduler} has no workers")
                from phenolapse.embedding.store import FeatureStore

                chunk_rows = FeatureStore(store_path).chunk_rows
                shards = split_rows(rows, chunk_rows, len(workers))
                ranks = _host_ranks(workers)
                worker_config = config.model_copy(update={"progress": False}).model_dump(
                    mode="json"
                )
                futures = [
                    client.submit(
                        _run_shard,
                        str(store_path),
                        shard,
                        payload,
                        worker_config,
                        ranks[workers[i]],
                        i,
                        workers=[workers[i]],
                        allow_other_workers=False,
                        pure=False,
                    )
                    for i, shard in enumerate(shards)
                ]
                for part in client.gather(futures):
                    skipped.extend(part)
        finish(store_path, profiles_path, config, skipped)
    return store_path
