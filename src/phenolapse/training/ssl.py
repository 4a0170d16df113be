"""Self-supervised training by two views per image: SimCLR, VICReg or DINO, on either encoder.

The frames (the preprocessing's crop, resized to ``image_size``) are decoded once and kept in RAM
as 8-bit. A view is a random square crop of side ``view_fraction * image_size`` at the frames'
own magnification (cell size is a drug signal: views are never zoomed), a random flip and
quarter turn, a mild brightness/contrast jitter and an optional blur. With
``temporal_positives > 0`` that fraction of the pairs takes its second view from the same well,
field and tile at the neighbouring time point (at most ``temporal_max_gap_h`` away).

Every epoch (and once before training) the run scores its encoder on the held-out wells:
``val_loss`` is the objective on fixed views of them and ``val_knn`` the balanced accuracy of a
5-nearest-neighbour vote (cosine, on features standardised by the training frames) that names
each held-out frame's condition (cell line, drug, concentration) from the training wells' frames
of the later half of the screen, where effects show. Outputs are those of the reconstruction
run: ``config.yaml``, ``checkpoints/``, ``history.csv``, ``loss_curve.png``, ``model.pt``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from phenolapse.data.imageio import plate_intensity_ranges
from phenolapse.errors import ConfigError
from phenolapse.io_utils import FORMAT_VERSION, atomic_path
from phenolapse.models.convae import ConvAE, load_convae, pooled_encoder_features, save_convae
from phenolapse.models.resnet import SmallResNet, save_encoder
from phenolapse.training.config import TrainConfig
from phenolapse.training.dataset import FrameStore, item_generator
from phenolapse.training.objectives import DINO, Objective, build_objective
from phenolapse.training.transforms import gaussian_blur, resize

log = logging.getLogger(__name__)

KNN_K = 5
KNN_MAX_REFERENCE = 4000


class ConvAEEncoder(nn.Module):
    """The ConvAE's encoder with position-free pooled features (mean and max of every layer)."""

    def __init__(self, model: ConvAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pooled_encoder_features(self.model.encoder, x)


def build_encoder(config: TrainConfig, in_channels: int) -> tuple[nn.Module, nn.Module, int]:
    """``(module to save, module giving features, feature length)`` of the configured encoder."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.encoder == "resnet":
            res = SmallResNet(in_channels=in_channels, widths=tuple(config.resnet_widths))
            return res, res, res.n_features
        ae = (
            load_convae(config.init_weights, in_channels=in_channels).train()
            if config.init_weights is not None
            else ConvAE(in_channels=in_channels)
        )
        enc = ConvAEEncoder(ae)
        with torch.no_grad():
            n = enc(torch.zeros(2, in_channels, 16, 16)).shape[1]
        return ae, enc, int(n)


@dataclass
class FrameBank:
    """Frames at model size, 8-bit in RAM, with what the views and the validation need.

    Attributes
    ----------
    frames
        ``(N, C, S, S)`` uint8.
    rows
        Manifest row of each frame.
    neighbours
        For each frame, the frames of the same well, field and tile at the adjacent time points
        within the allowed gap (possibly empty).
    """

    frames: torch.Tensor
    rows: np.ndarray
    neighbours: list[np.ndarray]

    def subset(self, idx: np.ndarray) -> FrameBank:
        """The frames ``idx`` (image positions when one frame per image) as a bank of their own."""
        idx = np.asarray(idx)
        return FrameBank(self.frames[torch.as_tensor(idx, dtype=torch.long)], self.rows[idx],
                         [self.neighbours[i] for i in idx])

    def batch(self, idx: np.ndarray | list[int]) -> torch.Tensor:
        """Frames ``idx`` as float32 in [0, 1]."""
        return self.frames[torch.as_tensor(idx, dtype=torch.long)].float() / 255.0


def load_bank(
    manifest: pd.DataFrame,
    rows: np.ndarray,
    config: TrainConfig,
    ranges: dict[str, tuple[float, float]],
    *,
    progress: bool,
) -> FrameBank:
    """Decode the images of manifest positions ``rows`` into a :class:`FrameBank`."""
    paths = manifest["image_path"].to_numpy()
    plates = manifest["plate"].astype(str).to_numpy()
    store = FrameStore(
        [paths[i] for i in rows], config.preprocess,
        intensity_ranges=[ranges.get(plates[i]) for i in rows], cache_gb=0, progress=False,
    )
    return bank_from_store(
        store, np.arange(len(rows)), manifest, rows, config, progress=progress
    )


def bank_from_store(
    store: FrameStore,
    images: np.ndarray,
    manifest: pd.DataFrame,
    rows: np.ndarray,
    config: TrainConfig,
    *,
    progress: bool = False,
) -> FrameBank:
    """The frames of ``store``'s images ``images`` (manifest positions ``rows``) at model size.

    Frames come from the store's cache when it holds them, else they are decoded (in
    ``num_workers`` threads).
    """
    size = config.preprocess.image_size
    k = store.frames_per_image

    def one(image: int) -> torch.Tensor:
        frames = torch.stack([store.frame(int(image) * k + t) for t in range(k)])
        return (resize(frames, size).clamp(0, 1) * 255).round().to(torch.uint8)

    with ThreadPoolExecutor(max(1, config.num_workers)) as pool:
        it = pool.map(one, images)
        out = list(tqdm(it, total=len(images), desc="decode", disable=not progress, leave=False))
    frame_rows = np.repeat(np.asarray(rows), k)
    tiles = np.tile(np.arange(k), len(rows))
    return FrameBank(torch.cat(out), frame_rows, _neighbours(manifest, frame_rows, tiles, config))


def _neighbours(
    manifest: pd.DataFrame, frame_rows: np.ndarray, tiles: np.ndarray, config: TrainConfig
) -> list[np.ndarray]:
    """Adjacent-time frames of each frame's (plate, well, field, tile) within the gap."""
    empty = np.zeros(0, dtype=np.int64)
    out = [empty] * len(frame_rows)
    if config.temporal_positives == 0 or "time_h" not in manifest.columns:
        return out
    sub = manifest.iloc[frame_rows]
    keys = pd.DataFrame({
        "plate": sub["plate"].astype(str).to_numpy(),
        "well": sub["well"].astype(str).to_numpy(),
        "field": sub["field"].astype(str).to_numpy() if "field" in sub else "1",
        "tile": tiles,
        "time": pd.to_numeric(sub["time_h"], errors="coerce").to_numpy(),
        "pos": np.arange(len(frame_rows)),
    })
    gap = config.temporal_max_gap_h
    for _, g in keys.dropna(subset=["time"]).groupby(["plate", "well", "field", "tile"]):
        g = g.sort_values("time")
        times, pos = g["time"].to_numpy(), g["pos"].to_numpy()
        for i in range(len(g)):
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(g)
                    and (gap is None or abs(times[j] - times[i]) <= gap)]
            out[pos[i]] = pos[near].astype(np.int64)
    return out


def make_views(
    x: torch.Tensor, config: TrainConfig, generator: torch.Generator
) -> torch.Tensor:
    """One augmented view of each frame of ``x`` ``(B, C, S, S)``: crop, flip/turn, jitter, blur."""
    b, _, s, _ = x.shape
    v = max(8, round(config.view_fraction * s))
    top = torch.randint(0, s - v + 1, (b,), generator=generator)
    left = torch.randint(0, s - v + 1, (b,), generator=generator)
    turns = torch.randint(0, 4, (b,), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    contrast = 1 + config.jitter * (2 * torch.rand(b, generator=generator) - 1)
    shift = 0.5 * config.jitter * (2 * torch.rand(b, generator=generator) - 1)
    blur = torch.rand(b, generator=generator) < config.blur_p
    sigma = config.blur_sigma[0] + (config.blur_sigma[1] - config.blur_sigma[0]) * torch.rand(
        b, generator=generator
    )
    out = []
    for i in range(b):
        t, lft = int(top[i]), int(left[i])
        view = x[i, :, t:t + v, lft:lft + v]
        if flips[i]:
            view = view.flip(-1)
        view = torch.rot90(view, int(turns[i]), dims=(-2, -1))
        mean = view.mean()
        view = (view - mean) * contrast[i] + mean + shift[i] * view.std()
        if blur[i]:
            view = gaussian_blur(view, float(sigma[i]), kernel_size=config.blur_kernel)
        out.append(view.clamp(0, 1))
    return torch.stack(out)


def condition_labels(manifest: pd.DataFrame) -> np.ndarray | None:
    """``cell line | drug | concentration`` (``control`` for control wells) per row, or None."""
    if "drug" not in manifest.columns:
        return None
    drug = manifest["drug"].astype(str).fillna("")
    conc = manifest.get("concentration_um", pd.Series("", index=manifest.index)).astype(str)
    label = drug + "@" + conc
    if "role" in manifest.columns:
        role = manifest["role"].astype(str)
        is_control = role.str.contains("control", case=False) | role.isin(["dmso", "negative"])
        label = label.where(~is_control, "control:" + role)
    if "cell_line" in manifest.columns:
        label = manifest["cell_line"].astype(str) + "|" + label
    return label.to_numpy()


@torch.no_grad()
def encode_bank(
    features: nn.Module, bank: FrameBank, idx: np.ndarray, device: torch.device, batch: int = 256
) -> np.ndarray:
    """Features of the whole frames ``idx`` of ``bank`` (eval mode), ``(len(idx), D)``."""
    was = features.training
    features.eval()
    parts = []
    for start in range(0, len(idx), batch):
        x = bank.batch(idx[start:start + batch]).to(device)
        parts.append(features(x).float().cpu().numpy())
    features.train(was)
    d = parts[0].shape[1] if parts else 0
    return np.concatenate(parts) if parts else np.zeros((0, d), np.float32)


def knn_balanced_accuracy(
    ref: np.ndarray, ref_labels: np.ndarray, query: np.ndarray, query_labels: np.ndarray,
    *, k: int = KNN_K,
) -> float:
    """Balanced accuracy of a cosine k-NN vote naming each query's label from the references.

    Features are standardised with the references' mean and spread first; queries whose label
    no reference has are left out. NaN when nothing is left.
    """
    keep = np.isin(query_labels, ref_labels)
    if not keep.any() or len(ref) < k:
        return math.nan
    query, query_labels = query[keep], query_labels[keep]
    mu, sd = ref.mean(axis=0), ref.std(axis=0)
    sd[sd < 1e-8] = 1.0
    r = (ref - mu) / sd
    q = (query - mu) / sd
    r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-12
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    nearest = np.argsort(-(q @ r.T), axis=1)[:, :k]
    votes = ref_labels[nearest]
    pred = np.array([pd.Series(v).mode().iloc[0] for v in votes])
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # a vote may name a condition no held-out well has
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(query_labels, pred))


@dataclass
class Probe:
    """Fixed frames and labels of the per-epoch k-NN score: training wells vs held-out wells."""

    ref: FrameBank
    ref_labels: np.ndarray
    query: FrameBank
    query_labels: np.ndarray

    def score(self, features: nn.Module, device: torch.device) -> float:
        """Held-out balanced accuracy of the k-NN vote on ``features``."""
        ref = encode_bank(features, self.ref, np.arange(len(self.ref.frames)), device)
        query = encode_bank(features, self.query, np.arange(len(self.query.frames)), device)
        return knn_balanced_accuracy(ref, self.ref_labels, query, self.query_labels)


def probe_rows(
    manifest: pd.DataFrame, rows: np.ndarray, seed: int, cap: int | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions among ``rows`` of the later-half images with a condition label, and the labels."""
    labels = condition_labels(manifest)
    if labels is None or "time_h" not in manifest.columns or len(rows) == 0:
        return None
    times = pd.to_numeric(manifest["time_h"], errors="coerce").to_numpy()
    keep = np.flatnonzero(times[rows] >= np.nanmedian(times))
    if cap is not None and len(keep) > cap:
        keep = np.sort(np.random.default_rng(seed).choice(keep, cap, replace=False))
    return keep, labels[np.asarray(rows)[keep]]


def make_probe(
    manifest: pd.DataFrame, train_bank: FrameBank, val_bank: FrameBank | None, seed: int
) -> Probe | None:
    """The k-NN probe from frame banks already in RAM (None without labels or held-out wells)."""
    if val_bank is None:
        return None
    ref = probe_rows(manifest, train_bank.rows, seed, KNN_MAX_REFERENCE)
    query = probe_rows(manifest, val_bank.rows, seed, None)
    if ref is None or query is None or len(query[0]) == 0 or len(ref[0]) < KNN_K:
        return None
    return Probe(train_bank.subset(ref[0]), ref[1], val_bank.subset(query[0]), query[1])


def load_probe(
    manifest: pd.DataFrame, train_rows: np.ndarray, val_rows: np.ndarray, config: TrainConfig,
    *, train_store: FrameStore, val_store: FrameStore, cap: int = 1000,
) -> Probe | None:
    """The k-NN probe from the frame stores of a run that keeps no frame bank.

    ``train_store`` and ``val_store`` hold the images of ``train_rows`` and ``val_rows`` in that
    order; their cached frames are reused.
    """
    ref = probe_rows(manifest, train_rows, config.seed, cap)
    query = probe_rows(manifest, val_rows, config.seed, cap)
    if ref is None or query is None or len(query[0]) == 0 or len(ref[0]) < KNN_K:
        return None
    plain = config.model_copy(update={"temporal_positives": 0.0})
    ref_bank = bank_from_store(train_store, ref[0], manifest, np.asarray(train_rows)[ref[0]], plain)
    query_bank = bank_from_store(
        val_store, query[0], manifest, np.asarray(val_rows)[query[0]], plain
    )
    k = train_store.frames_per_image
    return Probe(ref_bank, np.repeat(ref[1], k), query_bank, np.repeat(query[1], k))


def pair_batch(
    bank: FrameBank, idx: list[int], config: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views per frame; the second from a neighbouring time point for a fraction of them."""
    partner = list(idx)
    if config.temporal_positives > 0:
        draws = torch.rand(len(idx), generator=gen).tolist()
        for i, frame in enumerate(idx):
            near = bank.neighbours[frame]
            if len(near) and draws[i] < config.temporal_positives:
                partner[i] = int(near[int(torch.randint(0, len(near), (), generator=gen))])
    return make_views(bank.batch(idx), config, gen), make_views(bank.batch(partner), config, gen)


def objective_loss(
    features: nn.Module, objective: Objective, x1: torch.Tensor, x2: torch.Tensor, amp: bool
) -> torch.Tensor:
    """The objective's loss of two view batches through the encoder."""
    if isinstance(objective, DINO):
        objective.set_views(x1, x2)
    with torch.autocast(device_type=x1.device.type, dtype=torch.bfloat16, enabled=amp):
        f = features(torch.cat([x1, x2]))
        f1, f2 = f.float().chunk(2)
        return objective.loss(f1, f2)


def validate(
    features: nn.Module, objective: Objective, train_bank: FrameBank, val_bank: FrameBank | None,
    probe: Probe | None, config: TrainConfig, device: torch.device, amp: bool,
) -> dict[str, float]:
    """``val_loss`` (fixed views of held-out frames) and ``val_knn`` (the k-NN probe)."""
    out = {"val_loss": math.nan, "val_knn": math.nan}
    if val_bank is None:
        return out
    was = features.training
    features.eval()
    objective.eval()
    gen = item_generator(config.seed, 2**31, 0)  # fixed views, apart from any epoch's
    losses = []
    with torch.no_grad():
        n = len(val_bank.frames)
        for start in range(0, n, config.batch_size):
            idx = list(range(start, min(n, start + config.batch_size)))
            if len(idx) < 2:
                continue
            x1, x2 = pair_batch(val_bank, idx, config, gen)
            loss = objective_loss(features, objective, x1.to(device), x2.to(device), amp)
            losses.append(float(loss) * len(idx))
    if losses:
        out["val_loss"] = sum(losses) / len(val_bank.frames)
    if probe is not None:
        out["val_knn"] = probe.score(features, device)
    features.train(was)
    objective.train(was)
    return out


def objective_and_optimizer(
    config: TrainConfig, model: nn.Module, features: nn.Module, n_features: int
) -> tuple[Objective, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The seeded objective (head; DINO's teacher bound to ``features``), AdamW and its cosine."""
    with torch.random.fork_rng(devices=[]):  # the head's initialisation is seeded too
        torch.manual_seed(config.seed + 1)
        objective = build_objective(config.objective, n_features, temperature=config.temperature)
    if isinstance(objective, DINO):
        objective.bind(features)
    params = list(model.parameters()) + [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return objective, optimizer, scheduler


def two_view_step(
    net: nn.Module,
    features: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    views: tuple[torch.Tensor, torch.Tensor],
    *,
    device: torch.device,
    amp: bool,
) -> float:
    """One optimizer step on a pair of view batches; ``net`` may wrap ``features`` (DDP, compile).

    Returns the batch's loss.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = objective_loss(net, objective, views[0].to(device), views[1].to(device), amp)
    loss.backward()
    optimizer.step()
    objective.after_step(features)
    return float(loss.detach())


def save_model(model: nn.Module, path: Path, config: TrainConfig, epoch: int) -> Path:
    """Write ``model.pt`` in the format the extractors read (ConvAE or ResNet encoder)."""
    extra: dict[str, Any] = {
        "epoch": epoch, "config": config.model_dump(mode="json"),
        "format_version": FORMAT_VERSION, "objective": config.objective,
        "image_size": config.preprocess.image_size,
    }
    if isinstance(model, SmallResNet):
        return save_encoder(model, path, **extra)
    assert isinstance(model, ConvAE)
    return save_convae(model, path, **extra)


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def check_objective(config: TrainConfig) -> None:
    """Refuse settings the self-supervised run cannot honour."""
    if config.encoder == "resnet" and config.init_weights is not None:
        raise ConfigError("init_weights holds ConvAE weights; the ResNet encoder starts at random")
    if config.batch_size < 2:
        raise ConfigError(f"{config.objective} needs batches of at least 2 images")


SSL_HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_knn", "lr", "seconds"]


def train_ssl(
    manifest: pd.DataFrame, *, out: Path, config: TrainConfig, resume: bool
) -> Any:
    """Self-supervised training with ``config.objective``; returns a ``TrainResult``.

    Called by :func:`phenolapse.training.loop.train` (which holds the folder lock).
    """
    from phenolapse.training.loop import (
        TrainResult,
        _epoch_order,
        end_of_epoch,
        optimizer_to,
        restore,
        start_run,
        wrap_for_training,
    )
    from phenolapse.training.plots import plot_loss_curve

    check_objective(config)
    run = start_run(manifest, out=out, config=config, resume=resume)
    ckpt, dist, device, amp = run.checkpoint, run.dist, run.device, run.amp
    is_main = dist.rank == 0
    progress = config.progress and is_main
    manifest, train_idx, val_idx = run.manifest, run.train_idx, run.val_idx
    ranges = plate_intensity_ranges(manifest, config.preprocess, seed=config.seed)
    train_bank = load_bank(manifest, train_idx, config, ranges, progress=progress)
    val_bank = load_bank(manifest, val_idx, config, ranges, progress=progress) if len(
        val_idx) else None
    probe = make_probe(manifest, train_bank, val_bank, config.seed)
    in_channels = int(train_bank.frames.shape[1])

    model, features, n_features = build_encoder(config, in_channels)
    objective, optimizer, scheduler = objective_and_optimizer(config, model, features, n_features)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        config.to_yaml(out / "config.yaml")
    history, start_epoch = restore(
        ckpt, out, SSL_HISTORY_COLUMNS, model=model, objective=objective, optimizer=optimizer,
        scheduler=scheduler,
    )
    model.to(device)
    objective.to(device)
    optimizer_to(optimizer, device)
    net = wrap_for_training(features, dist=dist, device=device, compile_model=config.compile)

    def record(row: dict[str, float]) -> None:
        nonlocal history
        new = pd.DataFrame([row], columns=SSL_HISTORY_COLUMNS).astype(float)
        history = new if history.empty else pd.concat([history, new], ignore_index=True)
        if is_main:
            from phenolapse.io_utils import write_csv

            write_csv(history.astype({"epoch": int}), out / "history.csv")
            plot_loss_curve(history, out / "loss_curve.png")

    def scores() -> dict[str, float]:
        return validate(features, objective, train_bank, val_bank, probe, config, device, amp)

    if start_epoch == 1:
        t0 = time.perf_counter()
        record({"epoch": 0, "train_loss": math.nan, **scores(), "lr": math.nan,
                "seconds": time.perf_counter() - t0})

    features.train()
    objective.train()
    n_frames = len(train_bank.frames)
    per_rank = n_frames // dist.world_size
    for epoch in range(start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        order = _epoch_order(n_frames, config.seed, epoch)
        order = order[dist.rank * per_rank:(dist.rank + 1) * per_rank]
        n_batches = max(1, len(order) // config.batch_size)  # full batches: BN and negatives
        lr = float(optimizer.param_groups[0]["lr"])
        loss_sum, n_seen = 0.0, 0
        bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{config.epochs}",
                   disable=not progress, leave=False)
        for b in bar:
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            if len(idx) < 2:
                continue
            gen = item_generator(config.seed, epoch, b * dist.world_size + dist.rank)
            loss = two_view_step(
                net, features, objective, optimizer, pair_batch(train_bank, idx, config, gen),
                device=device, amp=amp,
            )
            loss_sum += loss * len(idx)
            n_seen += len(idx)
            if progress and (b % 10 == 0 or b == n_batches - 1):
                bar.set_postfix(loss=f"{loss_sum / max(n_seen, 1):.4f}")
        scheduler.step()
        record(end_of_epoch(
            epoch=epoch, loss_sum=loss_sum, count=n_seen, lr=lr, t0=t0, dist=dist,
            device=device, scores=scores, progress=progress,
        ))
        if is_main:
            save_state(out / "checkpoints" / f"epoch_{epoch:03d}.pt", {
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "objective": {k: v.detach().cpu() for k, v in objective.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "config": config.model_dump(mode="json"),
                "history": {c: [float(v) for v in history[c]] for c in SSL_HISTORY_COLUMNS},
                "format_version": FORMAT_VERSION,
            })

    final = model.to("cpu").eval()
    model_path = out / "model.pt"
    if is_main:
        save_model(final, model_path, config, int(history["epoch"].max()))
    return TrainResult(run_dir=out, model_path=model_path, history=history, model=final)


def fit_two_view(
    frames: torch.Tensor, config: TrainConfig, *, device: str | torch.device = "cpu"
) -> nn.Module:
    """Train the configured encoder on in-memory frames ``(N, C, S, S)`` in [0, 1]; no files.

    The same views, objective, optimizer and schedule as :func:`train_ssl`, without validation,
    checkpoints or time-aware positives (frames carry no time); returns the trained module that
    :func:`save_model` would save (a ``SmallResNet`` or a ``ConvAE``), in eval mode on the CPU.
    """
    check_objective(config)
    device = torch.device(device)
    q = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    bank = FrameBank(q, np.arange(len(q)), [np.zeros(0, dtype=np.int64)] * len(q))
    model, features, n_features = build_encoder(config, int(frames.shape[1]))
    objective, optimizer, scheduler = objective_and_optimizer(config, model, features, n_features)
    model.to(device).train()
    objective.to(device).train()
    from phenolapse.training.loop import _epoch_order

    for epoch in range(1, config.epochs + 1):
        order = _epoch_order(len(bank.frames), config.seed, epoch)
        for b in range(max(1, len(order) // config.batch_size)):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            if len(idx) < 2:
                continue
            views = pair_batch(bank, idx, config, item_generator(config.seed, epoch, b))
            two_view_step(features, features, objective, optimizer, views, device=device,
                          amp=False)
        scheduler.step()
    return model.to("cpu").eval()
