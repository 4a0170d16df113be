"""Self-supervised training of the ConvAE: multi-crop views, BCE reconstruction, Adam.

Outputs in the run folder: ``config.yaml``, ``checkpoints/epoch_XXX.pt`` (every epoch),
``history.csv``, ``loss_curve.png`` and ``model.pt`` (final weights, readable by
:func:`phenolapse.models.convae.load_convae`). Data order and every augmentation derive from
``(seed, epoch, item)``, so a run resumed from a checkpoint gives the same weights as an
uninterrupted one (bit for bit on CPU).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from phenolapse.data.imageio import plate_intensity_ranges
from phenolapse.errors import CheckpointError, ConfigError
from phenolapse.io_utils import FORMAT_VERSION, atomic_path, exclusive_lock, write_csv
from phenolapse.models.convae import ConvAE, load_convae, read_checkpoint, save_convae
from phenolapse.training.config import TrainConfig
from phenolapse.training.dataset import (
    FrameStore,
    MultiCropDataset,
    WholeFrameDataset,
    check_manifest,
    split_by_well,
)
from phenolapse.training.transforms import MultiCropTransform

LOCK_NAME = ".phenolapse-train.lock"

log = logging.getLogger(__name__)

HISTORY_COLUMNS = [
    "epoch", "train_loss", "val_loss", "val_loss_floor", "val_mse", "val_knn", "lr", "seconds"
]
_CKPT_RE = re.compile(r"^epoch_(\d{3,})\.pt$")
# Settings that may change between a run and its resumption without changing the result.
_RESUMABLE_CHANGES = {"epochs", "progress", "num_workers", "cache_gb", "device", "compile"}


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    run_dir
        The run folder.
    model_path
        ``run_dir / "model.pt"``.
    history
        One row per epoch (epoch 0: the untrained model), columns :data:`HISTORY_COLUMNS`;
        ``val_loss_floor`` is the BCE of a perfect reconstruction (the inputs' own entropy), the
        lower bound of ``val_loss``; ``val_knn`` the held-out wells' k-NN balanced accuracy of
        the encoder's pooled features (:class:`phenolapse.training.ssl.Probe`; NaN without
        condition labels). Two-view objectives write ``SSL_HISTORY_COLUMNS`` instead.
    model
        The trained model on the CPU, in eval mode.
    """

    run_dir: Path
    model_path: Path
    history: pd.DataFrame
    model: nn.Module


@dataclass
class _Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> first CUDA device if available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA device is available; use 'cpu'")
    return device


def _init_distributed(config: TrainConfig) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), resolve_device(config.device)
    import torch.distributed as tdist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = config.device != "cpu" and torch.cuda.is_available()
    if want_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return _Dist(world, rank, local_rank), device


def _all_reduce_sum(values: list[float], dist: _Dist, device: torch.device) -> list[float]:
    if not dist.enabled:
        return values
    import torch.distributed as tdist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def bce_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy between a reconstruction and its input (both in [0, 1]), fp32."""
    return F.binary_cross_entropy(reconstruction.float(), target.float())


def train_step(
    net: nn.Module,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> torch.Tensor:
    """One optimizer step reconstructing ``x``; returns the detached loss (no device sync)."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp):
        recon = net(x)
    loss = bce_loss(recon, x)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def evaluate(
    net: nn.Module,
    loader: Iterable[torch.Tensor],
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> tuple[float, float, float, int]:
    """Sums over ``loader`` of per-image BCE, BCE floor (perfect reconstruction) and MSE; count."""
    bce_sum = torch.zeros((), dtype=torch.float64, device=device)
    floor_sum = torch.zeros((), dtype=torch.float64, device=device)
    mse_sum = torch.zeros((), dtype=torch.float64, device=device)
    n = 0
    for batch in loader:
        x = batch.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            recon = net(x)
        recon = recon.float()
        dims = tuple(range(1, x.ndim))
        bce = F.binary_cross_entropy(recon, x, reduction="none").mean(dim=dims)
        bce_sum += bce.double().sum()
        floor = F.binary_cross_entropy(x.float(), x.float(), reduction="none").mean(dim=dims)
        floor_sum += floor.double().sum()
        mse_sum += ((recon - x) ** 2).mean(dim=dims).double().sum()
        n += x.shape[0]
    return float(bce_sum), float(floor_sum), float(mse_sum), n


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))]
    return sorted(found)


def _load_last_checkpoint(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    for epoch, path in reversed(list_checkpoints(run_dir)):
        try:
            ckpt = read_checkpoint(path, map_location="cpu")
        except CheckpointError as exc:
            log.warning("skipping unreadable checkpoint: %s", exc)
            continue
        if not isinstance(ckpt, dict) or not {"model", "optimizer", "epoch", "config"} <= set(ckpt):
            log.warning("skipping %s: not a training checkpoint", path)
            continue
        # settings added since the checkpoint was written take their defaults
        saved = {**TrainConfig().model_dump(mode="json"), **ckpt["config"]}
        now = config.model_dump(mode="json")
        differ = sorted(
            k
            for k in set(saved) | set(now)
            if k not in _RESUMABLE_CHANGES and saved.get(k) != now.get(k)
        )
        if differ:
            raise ConfigError(
                f"{path}: cannot resume, the run was started with different settings for {differ}; "
                f"use the run's config.yaml or start a new run folder"
            )
        if int(ckpt["epoch"]) != epoch:
            raise CheckpointError(f"{path}: holds epoch {ckpt['epoch']}, its name says {epoch}")
        return dict(ckpt)
    return None


def _subsample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(idx) <= n:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


@dataclass
class RunStart:
    """What every training run settles before it loads images: the split, device, checkpoint."""

    manifest: pd.DataFrame
    train_idx: np.ndarray
    val_idx: np.ndarray
    checkpoint: dict[str, Any] | None
    dist: _Dist
    device: torch.device
    amp: bool


def start_run(
    manifest: pd.DataFrame, *, out: Path, config: TrainConfig, resume: bool
) -> RunStart:
    """Refuse to overwrite a run, read the checkpoint to resume, pick the device, split by well.

    At most ``max_images`` training images (and proportionally many validation images) are kept.
    """
    if list_checkpoints(out) and not resume:
        raise ConfigError(
            f"{out} already holds checkpoints of a run; pass resume=True (--resume) to continue it "
            f"or choose a new output folder"
        )
    ckpt = _load_last_checkpoint(out, config) if resume else None
    dist, device = _init_distributed(config)
    amp = config.amp if config.amp is not None else device.type == "cuda"
    manifest = manifest.reset_index(drop=True)
    train_idx, val_idx = split_by_well(manifest, val_fraction=config.val_fraction, seed=config.seed)
    if len(train_idx) == 0:
        raise ConfigError("no training images left after the validation split; lower val_fraction")
    if config.max_images is not None:
        rng = np.random.default_rng(config.seed)
        n_val = math.ceil(config.max_images * config.val_fraction / (1 - config.val_fraction))
        train_idx = _subsample(train_idx, config.max_images, rng)
        val_idx = _subsample(val_idx, n_val, rng)
    return RunStart(manifest, train_idx, val_idx, ckpt, dist, device, amp)


def restore(
    ckpt: dict[str, Any] | None, out: Path, columns: list[str], **states: Any
) -> tuple[pd.DataFrame, int]:
    """Load each of ``states`` (model, optimizer, ...) from the checkpoint's entry of that name.

    Returns the history so far and the first epoch still to train (1 without a checkpoint).
    """
    if ckpt is None:
        return pd.DataFrame(columns=columns, dtype=float), 1
    for key, obj in states.items():
        obj.load_state_dict(ckpt[key])
    history = pd.DataFrame(ckpt["history"], columns=columns).astype(float)
    start_epoch = int(ckpt["epoch"]) + 1
    log.info("resuming %s after epoch %d", out, start_epoch - 1)
    return history, start_epoch


def end_of_epoch(
    *, epoch: int, loss_sum: float, count: int, lr: float, t0: float, dist: _Dist,
    device: torch.device, scores: Callable[[], dict[str, float]], progress: bool,
) -> dict[str, float]:
    """The history row of an epoch: mean training loss over all processes, validation scores."""
    total, n = _all_reduce_sum([loss_sum, float(count)], dist, device)
    row = {"epoch": epoch, "train_loss": total / max(n, 1), **scores(), "lr": lr,
           "seconds": time.perf_counter() - t0}
    if progress:
        knn = row.get("val_knn", math.nan)
        tail = "" if math.isnan(knn) else f", held-out k-NN balanced accuracy {knn:.3f}"
        tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.5f}, validation loss "
                   f"{row['val_loss']:.5f}{tail}, lr {lr:.2g}")
    return row


def optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a (resumed) optimizer's state tensors to ``device``."""
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)


def wrap_for_training(
    model: nn.Module, *, dist: _Dist, device: torch.device, compile_model: bool
) -> nn.Module:
    """``model`` under DistributedDataParallel (several processes) and ``torch.compile``."""
    net: nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compile_model:
        net = torch.compile(net)  # type: ignore[assignment]
    return net


def _build_model(config: TrainConfig, in_channels: int) -> ConvAE:
    if config.init_weights is not None:
        return load_convae(config.init_weights, in_channels=in_channels).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return ConvAE(in_channels=in_channels)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def train(
    manifest: pd.DataFrame,
    *,
    out: Path,
    config: TrainConfig | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a feature extractor on the images of ``manifest`` without labels.

    ``config.objective`` ``reconstruction`` (default) trains the ConvAE to reconstruct multi-crop
    views; ``simclr``, ``vicreg`` and ``dino`` train its encoder or a small ResNet on two views per
    image (:func:`phenolapse.training.ssl.train_ssl`).

    Parameters
    ----------
    manifest
        Image manifest (``image_path``, ``plate``, ``well``; see docs/formats.md).
    out
        Run folder (created). Holding checkpoints already, it needs ``resume=True``.
    config
        Training settings; the default is the reference recipe.
    resume
        Continue from the last complete checkpoint in ``out`` (fresh start when there is none).

    Returns
    -------
    TrainResult

    Two trainings cannot write into one folder at once: the folder is locked while training
    (by the first process of a multi-GPU run), and temporaries left by a killed run are removed.
    """
    out = Path(out)
    check_manifest(manifest)
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(manifest, out=out, config=config, resume=resume)
    with exclusive_lock(out / LOCK_NAME, label=f"{out}: training folder", sweep=out):
        return _train(manifest, out=out, config=config, resume=resume)


def _train(
    manifest: pd.DataFrame,
    *,
    out: Path,
    config: TrainConfig | None,
    resume: bool,
) -> TrainResult:
    """:func:`train` without the folder lock."""
    config = config or TrainConfig()
    if config.objective != "reconstruction":
        from phenolapse.training.ssl import train_ssl

        result: TrainResult = train_ssl(manifest, out=out, config=config, resume=resume)
        return result
    run = start_run(manifest, out=out, config=config, resume=resume)
    ckpt, dist, device, amp = run.checkpoint, run.dist, run.device, run.amp
    is_main = dist.rank == 0
    channels_last = (
        config.channels_last if config.channels_last is not None else device.type == "cuda"
    )
    progress = config.progress and is_main
    manifest, train_idx, val_idx = run.manifest, run.train_idx, run.val_idx
    ranges = plate_intensity_ranges(manifest, config.preprocess, seed=config.seed)
    plates = manifest["plate"].astype(str).to_numpy()
    paths = manifest["image_path"].to_numpy()

    def store(idx: np.ndarray) -> FrameStore:
        return FrameStore(
            [paths[i] for i in idx],
            config.preprocess,
            intensity_ranges=[ranges.get(plates[i]) for i in idx],
            cache_gb=config.cache_gb,
            num_threads=max(1, config.num_workers),
            progress=progress,
        )

    train_store = store(train_idx)
    val_store = store(val_idx) if len(val_idx) else None
    in_channels = int(train_store.frame_shape[0])
    size = config.preprocess.image_size
    transform = MultiCropTransform(
        [(c.n, c.scale) for c in config.crops],
        size=size,
        ratio=config.crop_ratio,
        flip_p=config.flip_p,
        blur_p=config.blur_p,
        blur_sigma=config.blur_sigma,
        blur_kernel=config.blur_kernel,
    )
    train_set = MultiCropDataset(train_store, transform, seed=config.seed)

    model = _build_model(config, in_channels)
    if is_main:  # the inputs loaded: only now does the run folder get its configuration
        out.mkdir(parents=True, exist_ok=True)
        config.to_yaml(out / "config.yaml")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, [config.lr_decay_epoch], gamma=config.lr_decay
    )
    history, start_epoch = restore(
        ckpt, out, HISTORY_COLUMNS, model=model, optimizer=optimizer, scheduler=scheduler
    )
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer_to(optimizer, device)
    net = wrap_for_training(model, dist=dist, device=device, compile_model=config.compile)

    pin = device.type == "cuda"
    val_loader: DataLoader[torch.Tensor] | None = None
    if val_store is not None:
        val_set = WholeFrameDataset(val_store, size=size)
        shard = list(range(dist.rank, len(val_set), dist.world_size))
        val_loader = DataLoader(
            val_set, batch_size=config.batch_size, sampler=shard,
            num_workers=config.num_workers, pin_memory=pin,
        )

    from phenolapse.training.ssl import ConvAEEncoder, load_probe

    probe = (
        load_probe(manifest, train_idx, val_idx, config, train_store=train_store,
                   val_store=val_store)
        if val_store is not None and is_main else None
    )

    def validate() -> dict[str, float]:
        if val_loader is None:
            return {"val_loss": math.nan, "val_loss_floor": math.nan, "val_mse": math.nan,
                    "val_knn": math.nan}
        model.eval()
        sums = evaluate(model, val_loader, device, amp=amp, channels_last=channels_last)
        bce, floor, mse, n_all = _all_reduce_sum([float(v) for v in sums], dist, device)
        knn = probe.score(ConvAEEncoder(model), device) if probe is not None else math.nan
        model.train()
        return {"val_loss": bce / n_all, "val_loss_floor": floor / n_all, "val_mse": mse / n_all,
                "val_knn": knn}

    def record(row: dict[str, float]) -> None:
        nonlocal history
        new = pd.DataFrame([row], columns=HISTORY_COLUMNS).astype(float)
        history = new if history.empty else pd.concat([history, new], ignore_index=True)

    if start_epoch == 1:
        t0 = time.perf_counter()
        val = validate()
        record({"epoch": 0, "train_loss": math.nan, **val, "lr": math.nan,
                "seconds": time.perf_counter() - t0})
        if is_main:
            _write_outputs(out, history)

    model.train()
    for epoch in range(start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        train_set.set_epoch(epoch)
        loader = DataLoader(
            train_set, batch_size=config.batch_size,
            sampler=_epoch_sampler(train_set, dist=dist, seed=config.seed, epoch=epoch),
            num_workers=config.num_workers, pin_memory=pin,
        )
        lr = float(optimizer.param_groups[0]["lr"])
        bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=False)
        loss_sum, n_views = _reconstruction_epoch(
            net, bar, optimizer, device=device, view_steps=config.view_steps, amp=amp,
            channels_last=channels_last,
        )
        scheduler.step()
        record(end_of_epoch(
            epoch=epoch, loss_sum=loss_sum, count=n_views, lr=lr, t0=t0, dist=dist,
            device=device, scores=validate, progress=progress,
        ))
        if is_main:
            _save_checkpoint(out, epoch, model, optimizer, scheduler, config, history)
            _write_outputs(out, history)

    model_path = out / "model.pt"
    final = model.to("cpu")
    final.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    final.eval()
    if is_main:
        save_convae(
            final, model_path, epoch=int(history["epoch"].max()),
            config=config.model_dump(mode="json"), format_version=FORMAT_VERSION,
        )
    return TrainResult(run_dir=out, model_path=model_path, history=history, model=final)


def _epoch_sampler(
    dataset: MultiCropDataset, *, dist: _Dist, seed: int, epoch: int
) -> Iterable[int]:
    """The epoch's order: this process's shard under several processes, else a seeded shuffle."""
    if not dist.enabled:
        return _epoch_order(len(dataset), seed, epoch)
    from torch.utils.data.distributed import DistributedSampler

    sampler: DistributedSampler[int] = DistributedSampler(
        dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return sampler


def _reconstruction_epoch(
    net: nn.Module,
    batches: Any,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    view_steps: str,
    amp: bool,
    channels_last: bool,
) -> tuple[float, int]:
    """One pass over the views: a step per view group (``separate``) or per batch (``joint``).

    Returns the summed loss (weighted by views) and the number of views; ``batches`` may be a
    progress bar, whose postfix shows the running loss.
    """
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_views = 0
    for b, batch in enumerate(batches):
        views = batch.to(device, non_blocking=True)
        groups = (
            [views[:, v] for v in range(views.shape[1])]
            if view_steps == "separate"
            else [views.flatten(0, 1)]
        )
        for x in groups:
            loss = train_step(net, x, optimizer, amp=amp, channels_last=channels_last)
            loss_sum += loss.double() * x.shape[0]
            n_views += x.shape[0]
        if hasattr(batches, "set_postfix") and b % 10 == 0:
            batches.set_postfix(loss=f"{float(loss_sum) / max(n_views, 1):.4f}")
    return float(loss_sum), n_views


def _save_checkpoint(
    out: Path,
    epoch: int,
    model: ConvAE,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    history: pd.DataFrame,
) -> Path:
    """Write ``checkpoints/epoch_XXX.pt`` atomically.

    Holds model, optimizer and scheduler states, the epoch, config and history; the global RNG
    states are recorded too, although resuming needs none (views derive from seed, epoch, item).
    """
    state: dict[str, Any] = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "in_channels": model.in_channels,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "config": config.model_dump(mode="json"),
        "history": {c: [float(v) for v in history[c]] for c in HISTORY_COLUMNS},
        "torch_rng": torch.get_rng_state(),
        "format_version": FORMAT_VERSION,
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    path = out / "checkpoints" / f"epoch_{epoch:03d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _write_outputs(out: Path, history: pd.DataFrame) -> None:
    write_csv(history.astype({"epoch": int}), out / "history.csv")
    from phenolapse.training.plots import plot_loss_curve  # figures only when written

    plot_loss_curve(history, out / "loss_curve.png")
