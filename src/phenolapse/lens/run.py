"""The lens stage end to end: select images, split by well, train plain and lens heads, evaluate.

Outputs in ``out``: ``lens_results.csv`` (held-out top-1/top-3 per seed, lambda and cell line),
``per_class.csv``, ``paired_tests.csv``, ``confusion_matrix.csv`` / ``confusion_matrix_lens.csv``,
``importance/`` (``examples.csv``, ``signature_overlap.csv``) and ``summary.json`` (configuration,
classes, means, paired tests, signature overlap). The figures (``confusion_matrix.png``,
``lens_boxplot.png``, the image | map panels in ``importance/``) are drawn from the returned
:class:`LensResult` by :func:`phenolapse.report.lens_figures.write_lens_figures`.

:func:`run_lens` reads as its steps: load the screen, extract features, then per seed split the
wells, fit the heads and, per lambda, the lens; finally mine and measure the importance maps of
one showcase fit, summarise and write.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from phenolapse.artefacts import METADATA_NAME, PARQUET_SUFFIXES, read_table
from phenolapse.data.imageio import preprocess, read_image
from phenolapse.errors import ConfigError, ManifestError
from phenolapse.io_utils import write_csv, write_json
from phenolapse.lens.config import LensConfig
from phenolapse.lens.data import (
    check_split,
    load_images,
    select_classification_images,
    signature_mask_path,
    well_split_mask,
)
from phenolapse.lens.importance import (
    MINING_RULES,
    importance_map,
    integrated_gradients,
    mask_overlap,
    mine_examples,
)
from phenolapse.lens.metrics import (
    confusion_matrix,
    paired_test,
    per_class_accuracy,
    top_k_accuracy,
)
from phenolapse.lens.model import (
    LinearHead,
    batched,
    extract_features,
    freeze,
    predict_proba,
    train_head,
    train_lens,
)
from phenolapse.models.convae import ConvAE, load_convae
from phenolapse.training.loop import resolve_device
from phenolapse.vocabulary import CONTROL_ROLES

log = logging.getLogger(__name__)


IMPORTANCE_DIR = "importance"


@dataclass
class ImportancePanel:
    """One chosen example: ``image | importance map [| integrated gradients]``.

    Drawn as ``importance/<name>.png``; ``name`` is the mining rule and a running number.
    """

    name: str
    image: np.ndarray  # (C, H, W) at model size
    importance: np.ndarray  # (H, W)
    attribution: np.ndarray | None  # (H, W) integrated gradients, when computed
    title: str


@dataclass
class LensResult:
    """What :func:`run_lens` computed; the same tables are written to ``out``.

    ``confusion_plain`` and ``confusion_lens`` (per lambda) sum the test predictions over the
    seeds; ``panels`` are the examples the figures show.
    """

    out: Path
    classes: list[str]
    results: pd.DataFrame
    per_class: pd.DataFrame
    tests: pd.DataFrame
    examples: pd.DataFrame
    overlap: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    confusion_plain: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    confusion_lens: dict[float, np.ndarray] = field(default_factory=dict)
    panels: list[ImportancePanel] = field(default_factory=list)


def read_lens_source(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Image rows from a manifest (Parquet/CSV), a ``features.zarr`` folder, or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    table = path / METADATA_NAME if path.is_dir() else path
    if path.is_dir() and not table.is_file():
        raise ManifestError(f"{path}: a folder but not a features.zarr store (no {METADATA_NAME})")
    if not table.is_file():
        raise ManifestError(f"{path}: manifest or features file not found")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if table.suffix.lower() in PARQUET_SUFFIXES:
        return read_table(table, error=ManifestError)
    raise ManifestError(f"{path}: expected a manifest .parquet/.csv or a features.zarr folder")


def evaluate_topk(
    proba: np.ndarray, y: np.ndarray, cell_lines: np.ndarray
) -> list[tuple[str, int, float, float]]:
    """``(group, n, top1, top3)`` for all test images pooled, then per cell line when several."""
    groups = [("pooled", np.ones(len(y), bool))]
    if len(np.unique(cell_lines)) > 1:
        groups += [(str(c), cell_lines == c) for c in np.unique(cell_lines)]
    return [
        (
            name,
            int(sel.sum()),
            top_k_accuracy(y[sel], proba[sel], 1),
            top_k_accuracy(y[sel], proba[sel], 3),
        )
        for name, sel in groups
    ]


def _load_masks(paths: list[Path], config: LensConfig, crop: np.ndarray) -> np.ndarray | None:
    """Signature masks at model size (rows without a mask file: None overall)."""
    if not paths or not all(p.is_file() for p in paths):
        return None
    cfg = config.preprocess.model_copy(
        update={"channels": None, "intensity": "dtype", "fixed_range": None}
    )
    out = []
    for p, c in zip(paths, crop, strict=True):
        m = read_image(p)
        if m.ndim == 3:
            m = m.max(axis=2)
        out.append(preprocess(m, cfg)[c, 0] > 0.5)
    return np.stack(out)


def _options(config: LensConfig, *names: str) -> dict[str, Any]:
    """The options ``names`` of ``config``, as keyword arguments of the functions named alike."""
    return {name: getattr(config, name) for name in names}


def fit_head_predict(
    x: np.ndarray,
    y: np.ndarray,
    *,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    n_classes: int,
    config: LensConfig,
    seed: int,
) -> tuple[LinearHead, np.ndarray]:
    """A linear head trained on the training rows of ``x``; class probabilities of the test rows."""
    head = train_head(
        x[train_idx],
        y[train_idx],
        n_classes=n_classes,
        epochs=config.head_epochs,
        lr=config.head_lr,
        weight_decay=config.head_weight_decay,
        seed=seed,
    )
    with torch.no_grad():
        proba = torch.softmax(head(torch.as_tensor(x[test_idx])), dim=1).numpy()
    return head, proba


@dataclass
class _Screen:
    """The selected images as the heads and the lens see them: one row per crop."""

    meta: pd.DataFrame  # one row per selected image
    classes: list[str]
    control_classes: list[int]
    images: np.ndarray  # (crops, C, H, W) at model size
    row_of: np.ndarray  # crop -> row of ``meta``
    crop: np.ndarray  # crop -> its number within the image
    y: np.ndarray  # crop -> class index
    cell_lines: np.ndarray
    paths: np.ndarray  # crop -> image path


@dataclass
class _Features:
    """Features of every crop: ``F(x)``; ``F(AE(x))`` and classical ones when configured."""

    plain: np.ndarray
    reconstruction: np.ndarray | None
    classical: np.ndarray | None


@dataclass
class _Split:
    """One seed's split by well: training, test and lens-training crops."""

    seed: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    lens_idx: np.ndarray


@dataclass
class _Heads:
    """The heads one split fits once: plain on ``F(x)``, the comparisons, the lens's start."""

    plain: LinearHead
    plain_proba: np.ndarray
    plain_eval: list[tuple[str, int, float, float]]
    plain_per_class: pd.DataFrame
    start: LinearHead  # the head the lens starts from (plain, or on F(AE(x)))
    classical_eval: list[tuple[str, int, float, float]] | None
    classical_per_class: pd.DataFrame | None
    reconstruction_eval: list[tuple[str, int, float, float]] | None


@dataclass
class _LensFit:
    """A lens and its head trained on one split with one lambda, and their test predictions."""

    coef: float
    lens: ConvAE
    head: LinearHead
    final_bce: float
    final_ce: float
    proba: np.ndarray


@dataclass
class _Showcase:
    """The (seed, lambda) whose importance maps are mined, measured and drawn."""

    split: _Split
    heads: _Heads
    fit: _LensFit


@dataclass
class _Tally:
    """Per-fit rows of the result tables and the summed confusion matrices."""

    classes: list[str]
    coefs: list[float]
    rows: list[dict[str, Any]] = field(default_factory=list)
    class_frames: list[pd.DataFrame] = field(default_factory=list)
    confusion_plain: np.ndarray = field(init=False)
    confusion_lens: dict[float, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.classes)
        self.confusion_plain = np.zeros((n, n), np.int64)
        self.confusion_lens = {c: np.zeros((n, n), np.int64) for c in self.coefs}

    def add_heads(self, y_test: np.ndarray, heads: _Heads) -> None:
        """Count the plain head's test predictions of one split."""
        n = len(self.classes)
        self.confusion_plain += confusion_matrix(y_test, heads.plain_proba.argmax(1), n)

    def add_lens(self, screen: _Screen, split: _Split, heads: _Heads, fit: _LensFit) -> None:
        """Rows of ``lens_results.csv`` and ``per_class.csv`` for one (seed, lambda)."""
        y_test = screen.y[split.test_idx]
        n = len(self.classes)
        self.confusion_lens[fit.coef] += confusion_matrix(y_test, fit.proba.argmax(1), n)
        lens_eval = evaluate_topk(fit.proba, y_test, screen.cell_lines[split.test_idx])
        for j, ((name, n_test, p1, p3), (_, _, l1, l3)) in enumerate(
            zip(heads.plain_eval, lens_eval, strict=True)
        ):
            extra: dict[str, float] = {}
            if heads.reconstruction_eval is not None:
                extra["top1_reconstruction"] = heads.reconstruction_eval[j][2]
                extra["top3_reconstruction"] = heads.reconstruction_eval[j][3]
            if heads.classical_eval is not None:
                extra["top1_classical"] = heads.classical_eval[j][2]
                extra["top3_classical"] = heads.classical_eval[j][3]
            self.rows.append(
                {
                    "seed": split.seed,
                    "coef": fit.coef,
                    "cell_line": name,
                    "n_test": n_test,
                    "top1_plain": p1,
                    "top3_plain": p3,
                    "top1_lens": l1,
                    "top3_lens": l3,
                    "final_bce": fit.final_bce,
                    "final_ce": fit.final_ce,
                    **extra,
                }
            )
        pc_lens = per_class_accuracy(fit.proba, y_test, self.classes)
        frame = heads.plain_per_class.rename(
            columns={"top1": "top1_plain", "top3": "top3_plain"}
        ).assign(
            seed=split.seed,
            coef=fit.coef,
            top1_lens=pc_lens["top1"].to_numpy(),
            top3_lens=pc_lens["top3"].to_numpy(),
        )
        if heads.classical_per_class is not None:
            frame["top1_classical"] = heads.classical_per_class["top1"].to_numpy()
            frame["top3_classical"] = heads.classical_per_class["top3"].to_numpy()
        self.class_frames.append(frame)

    def tables(self, *, classical: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``lens_results.csv`` and ``per_class.csv`` as DataFrames."""
        per_class = pd.concat(self.class_frames, ignore_index=True)
        columns = ["seed", "coef", "class", "n_images"]
        columns += ["top1_plain", "top1_lens", "top3_plain", "top3_lens"]
        if classical:
            columns += ["top1_classical", "top3_classical"]
        return pd.DataFrame(self.rows), per_class[columns]


def run_lens(
    source: str | Path | pd.DataFrame,
    *,
    weights: str | Path | ConvAE,
    out: str | Path,
    config: LensConfig | None = None,
    encoder: str | Path | nn.Module | None = None,
) -> LensResult:
    """Classify drugs from single images with and without the lens, on held-out wells.

    Writes the tables and ``summary.json`` into ``out``; the figures are drawn from the result
    by :func:`phenolapse.report.lens_figures.write_lens_figures`.

    Parameters
    ----------
    source
        Manifest (with plate-map columns) or a ``features.zarr`` folder whose metadata lists images.
    weights
        The trained ConvAE (file or model): its encoder is the frozen ``F``, the whole model ``AE``
        (the lens starts from it and reconstructions are its).
    encoder
        Another frozen ``F`` (a weights file any ``phenolapse train`` run wrote, or a module mapping
        images to features), e.g. a two-view-trained ResNet; ``feature_mode`` then does not apply.
    out
        Output folder (created).
    config
        :class:`LensConfig`; defaults reproduce the reference's class selection.
    """
    config = config or LensConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = select_classification_images(
        read_lens_source(source),
        concentration=config.concentration,
        last_n_timepoints=config.last_time_points,
        include_controls=config.include_controls,
    )
    ae = weights if isinstance(weights, ConvAE) else load_convae(weights, map_location="cpu")
    ae = freeze(copy.deepcopy(ae))
    device = resolve_device(config.device)
    screen = _load_screen(meta, config=config, in_channels=ae.in_channels)
    ae.to(device)
    enc = ae if encoder is None else _frozen_encoder(encoder, config).to(device)
    feats = _extract(screen.images, ae, enc, config=config, device=device)
    tally = _Tally(screen.classes, list(config.coefs))
    show: _Showcase | None = None
    for seed in config.seeds:
        split = _split(screen, config=config, seed=seed)
        heads = _fit_heads(screen, feats, split, config=config)
        tally.add_heads(screen.y[split.test_idx], heads)
        for coef in config.coefs:
            fit = _fit_lens(
                screen, feats, split, heads, ae=ae, enc=enc, coef=coef, config=config,
                device=device,
            )
            tally.add_lens(screen, split, heads, fit)
            if show is None or (show.fit.coef == 0 and coef != 0 and show.split.seed == seed):
                # the first fit, unless lambda 0 came first: then that seed's first lambda > 0
                show = _Showcase(split, heads, fit)
    assert show is not None
    results, per_class = tally.tables(classical=feats.classical is not None)
    tests = _paired_tests(results)
    examples, overlap, panels = _importance(
        screen, show, ae, enc, config=config, device=device
    )
    summary = _summary(
        config,
        classes=screen.classes,
        meta=meta,
        results=results,
        tests=tests,
        overlap=overlap,
        examples=examples,
    )
    result = LensResult(
        out,
        screen.classes,
        results,
        per_class,
        tests,
        examples,
        overlap,
        summary,
        confusion_plain=tally.confusion_plain,
        confusion_lens=tally.confusion_lens,
        panels=panels,
    )
    _write(result)
    return result


def _frozen_encoder(encoder: str | Path | nn.Module, config: LensConfig) -> nn.Module:
    """The frozen ``F`` given apart from the ConvAE: a module, or loaded from its weights file."""
    if not isinstance(encoder, nn.Module):
        from phenolapse.models.base import load_extractor

        encoder = load_extractor(encoder, input_size=config.preprocess.image_size,
                                 features="pooled")
    return freeze(copy.deepcopy(encoder))


def _load_screen(meta: pd.DataFrame, *, config: LensConfig, in_channels: int) -> _Screen:
    """Load and crop the selected images; class index, cell line and path of every crop."""
    classes = sorted(meta["label"].unique().tolist())
    class_index = {c: i for i, c in enumerate(classes)}
    control_classes = sorted(
        {class_index[c] for c in meta.loc[meta["role"].isin(CONTROL_ROLES), "label"]}
    )
    images, row_of = load_images(meta, config.preprocess, progress=config.progress)
    if images.shape[1] != in_channels:
        raise ConfigError(
            f"images have {images.shape[1]} channels but the weights expect {in_channels}; "
            f"set preprocess.channels or use matching weights"
        )
    return _Screen(
        meta=meta,
        classes=classes,
        control_classes=control_classes,
        images=images,
        row_of=row_of,
        crop=np.arange(len(row_of)) - np.searchsorted(row_of, row_of),
        y=meta["label"].map(class_index).to_numpy()[row_of],
        cell_lines=meta["cell_line"].astype(str).to_numpy()[row_of],
        paths=meta["image_path"].astype(str).to_numpy()[row_of],
    )


def _extract(
    images: np.ndarray, ae: ConvAE, enc: nn.Module, *, config: LensConfig, device: torch.device
) -> _Features:
    """``F(x)`` of every crop, and ``F(AE(x))`` / classical features when the config asks."""
    mode, turns = config.feature_mode, config.orientations
    plain = batched(
        lambda x: extract_features(enc, x, mode=mode, orientations=turns),
        images,
        batch_size=config.batch_size,
        device=device,
    )
    reconstruction: np.ndarray | None = None
    if config.head_init == "reconstruction":
        reconstruction = batched(
            lambda x: extract_features(enc, ae(x), mode=mode, orientations=turns),
            images,
            batch_size=config.batch_size,
            device=device,
        )
    classical: np.ndarray | None = None
    if config.classical_baseline:
        from phenolapse.models.classical import classical_features_batch

        classical = classical_features_batch(np.moveaxis(images, 1, -1).clip(0, 1))
    return _Features(plain=plain, reconstruction=reconstruction, classical=classical)


def _split(screen: _Screen, *, config: LensConfig, seed: int) -> _Split:
    """Split the wells (each class in both parts); at most ``max_train_images`` for the lens."""
    test_rows = well_split_mask(screen.meta, test_fraction=config.test_fraction, seed=seed)
    check_split(screen.meta["label"].to_numpy(), test_rows, screen.classes)
    test = test_rows[screen.row_of]
    train_idx = np.flatnonzero(~test)
    lens_idx = train_idx
    if config.max_train_images is not None and len(train_idx) > config.max_train_images:
        rng = np.random.default_rng(seed)
        lens_idx = np.sort(rng.choice(train_idx, config.max_train_images, replace=False))
    return _Split(seed=seed, train_idx=train_idx, test_idx=np.flatnonzero(test), lens_idx=lens_idx)


def _fit_heads(
    screen: _Screen, feats: _Features, split: _Split, *, config: LensConfig
) -> _Heads:
    """Fit the plain head and the configured comparison heads on one split; score them."""
    fit = partial(
        fit_head_predict,
        y=screen.y,
        train_idx=split.train_idx,
        test_idx=split.test_idx,
        n_classes=len(screen.classes),
        config=config,
        seed=split.seed,
    )
    y_test = screen.y[split.test_idx]
    cell_lines = screen.cell_lines[split.test_idx]
    plain, plain_proba = fit(feats.plain)
    classical_eval = classical_per_class = None
    if feats.classical is not None:
        _, proba = fit(feats.classical)
        classical_eval = evaluate_topk(proba, y_test, cell_lines)
        classical_per_class = per_class_accuracy(proba, y_test, screen.classes)
    start, reconstruction_eval = plain, None
    if feats.reconstruction is not None:
        start, proba = fit(feats.reconstruction)
        reconstruction_eval = evaluate_topk(proba, y_test, cell_lines)
    return _Heads(
        plain=plain,
        plain_proba=plain_proba,
        plain_eval=evaluate_topk(plain_proba, y_test, cell_lines),
        plain_per_class=per_class_accuracy(plain_proba, y_test, screen.classes),
        start=start,
        classical_eval=classical_eval,
        classical_per_class=classical_per_class,
        reconstruction_eval=reconstruction_eval,
    )


def _fit_lens(
    screen: _Screen,
    feats: _Features,
    split: _Split,
    heads: _Heads,
    *,
    ae: ConvAE,
    enc: nn.Module,
    coef: float,
    config: LensConfig,
    device: torch.device,
) -> _LensFit:
    """Train a lens and its head with weight ``coef`` on the split; predict the test crops."""
    start = heads.start
    if config.head_init == "random":
        torch.manual_seed(split.seed)
        start = LinearHead(
            feats.plain.shape[1],
            len(screen.classes),
            mean=heads.plain.mean.numpy(),
            std=heads.plain.std.numpy(),
        )
    lens, head, hist = train_lens(
        ae,
        screen.images[split.lens_idx],
        screen.y[split.lens_idx],
        n_classes=len(screen.classes),
        coef=coef,
        head=start,
        detach=config.detach_classification,
        seed=split.seed,
        device=device,
        encoder=None if enc is ae else enc,
        **_options(
            config,
            "init",
            "feature_mode",
            "orientations",
            "epochs",
            "lens_lr",
            "head_lr",
            "batch_size",
            "progress",
        ),
    )
    proba = predict_proba(
        enc,
        head,
        screen.images[split.test_idx],
        lens=lens,
        **_options(config, "feature_mode", "orientations"),
        device=device,
    )
    return _LensFit(
        coef=coef, lens=lens, head=head, final_bce=hist.bce[-1], final_ce=hist.ce[-1], proba=proba
    )


def _paired_tests(results: pd.DataFrame) -> pd.DataFrame:
    """Paired tests of lens vs plain over seeds x cell lines (pooled when a single cell line)."""
    rows = []
    for coef, sub in results.groupby("coef", sort=False):
        units = sub[sub["cell_line"] != "pooled"]
        if units.empty:
            units = sub
        for k in ("top1", "top3"):
            t = paired_test(units[f"{k}_plain"].to_numpy(), units[f"{k}_lens"].to_numpy())
            rows.append(
                {
                    "coef": coef,
                    "metric": k,
                    "plain_mean": float(units[f"{k}_plain"].mean()),
                    "lens_mean": float(units[f"{k}_lens"].mean()),
                    **t,
                }
            )
    return pd.DataFrame(rows)


def _importance(
    screen: _Screen, show: _Showcase, ae: ConvAE, enc: nn.Module, *, config: LensConfig,
    device: torch.device,
) -> tuple[pd.DataFrame, pd.DataFrame, list[ImportancePanel]]:
    """Importance maps of the showcase fit's test crops: mined examples, overlap with the
    signature masks, and the panels of the chosen examples (with integrated gradients)."""
    test_idx = show.split.test_idx
    lens = show.fit.lens
    plain_proba, lens_proba = show.heads.plain_proba, show.fit.proba
    classes, y_test = screen.classes, screen.y[test_idx]
    x_test = screen.images[test_idx]
    maps = importance_map(
        batched(ae, x_test, batch_size=config.batch_size, device=device),
        batched(lens, x_test, batch_size=config.batch_size, device=device),
        exponent=config.importance_exponent,
    )
    examples = mine_examples(
        y_test,
        plain_proba,
        lens_proba,
        control_classes=screen.control_classes,
        margin=config.confidence_margin,
    )
    examples["image"] = test_idx[examples["index"].to_numpy()]
    examples["image_path"] = screen.paths[examples["image"].to_numpy()]
    for c in ("label", "plain_pred", "lens_pred"):
        examples[c] = [classes[i] for i in examples[c]]
    examples.insert(0, "seed", show.split.seed)
    examples.insert(1, "coef", show.fit.coef)

    drug = ~np.isin(y_test, screen.control_classes)
    overlap = _signature_overlap(screen, test_idx[drug], maps[drug], config=config)

    chosen = examples.groupby("rule", sort=True).head(config.importance_examples)
    if chosen.empty and config.importance_examples:
        # No image met a mining rule: show the drug images the lens changed most, for inspection.
        order = np.argsort(-maps.reshape(len(maps), -1).mean(axis=1))
        pick = [i for i in order if drug[i]][: config.importance_examples]
        chosen = pd.DataFrame({"index": pick, "rule": "top_change"})
    ig_maps: np.ndarray | None = None
    if config.integrated_gradients and len(chosen):
        sel = chosen["index"].to_numpy()
        ig_maps = integrated_gradients(
            enc,
            show.fit.head,
            x_test[sel],
            y_test[sel],
            lens=lens,
            **_options(config, "feature_mode", "orientations"),
            steps=config.ig_steps,
        )
    panels = []
    for j, (_, row) in enumerate(chosen.iterrows()):
        i = int(row["index"])
        title = (
            f"rule {row['rule']}: {classes[y_test[i]]}  "
            f"plain {classes[int(plain_proba[i].argmax())]} ({plain_proba[i, y_test[i]]:.2f})  "
            f"lens {classes[int(lens_proba[i].argmax())]} ({lens_proba[i, y_test[i]]:.2f})"
        )
        panels.append(
            ImportancePanel(
                name=f"{row['rule']}_{j:03d}",
                image=x_test[i],
                importance=maps[i],
                attribution=None if ig_maps is None else ig_maps[j],
                title=title,
            )
        )
    return examples, overlap, panels


def _signature_overlap(
    screen: _Screen, idx: np.ndarray, maps: np.ndarray, *, config: LensConfig
) -> pd.DataFrame:
    """Overlap of the maps of drug crops ``idx`` with their signature masks (empty without)."""
    mask_paths = [signature_mask_path(p) for p in screen.paths[idx]]
    masks = _load_masks(mask_paths, config, screen.crop[idx]) if len(idx) else None
    if masks is None:
        return pd.DataFrame(columns=["image_path", "label", "inside", "outside", "ratio", "auc"])
    overlap = mask_overlap(maps, masks)
    overlap.insert(0, "image_path", screen.paths[idx])
    overlap.insert(1, "label", [screen.classes[i] for i in screen.y[idx]])
    return overlap


def _signal_warnings(means: pd.DataFrame, chance_top1: float) -> list[str]:
    """Warnings when the autoencoder's reconstructions lose the class signal the plain head finds.

    The lens starts from reconstructions ``AE(x)``; when a head on ``F(AE(x))`` keeps less than a
    quarter of the plain head's gain over chance, the lens's numbers say more about the
    autoencoder than about the lens.
    """
    if "top1_reconstruction" not in means.columns or means.empty:
        return []
    plain = float(means["top1_plain"].iloc[0])
    recon = float(means["top1_reconstruction"].iloc[0])
    if plain <= chance_top1 or recon - chance_top1 >= 0.25 * (plain - chance_top1):
        return []
    return [
        f"a head on features of the autoencoder's reconstructions F(AE(x)) scores top-1 "
        f"{recon:.3f} against {plain:.3f} on F(x) (chance {chance_top1:.3f}): the reconstructions "
        "lose most of the class signal, so the lens, which starts from them, cannot be judged "
        "with these weights; use weights that reconstruct the images (train longer, or start "
        "from published weights)"
    ]


def _summary(
    config: LensConfig,
    *,
    classes: list[str],
    meta: pd.DataFrame,
    results: pd.DataFrame,
    tests: pd.DataFrame,
    overlap: pd.DataFrame,
    examples: pd.DataFrame,
) -> dict[str, Any]:
    pooled = results[results["cell_line"] == "pooled"]
    cols = [c for c in results.columns if c.startswith(("top1_", "top3_"))]
    means = pooled.groupby("coef")[cols].mean()
    summary: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "classes": classes,
        "n_classes": len(classes),
        "chance_top1": 1.0 / len(classes),
        "chance_top3": min(3, len(classes)) / len(classes),
        "n_images": len(meta),
        "n_wells": int(meta.groupby(["plate", "well"]).ngroups),
        "cell_lines": sorted(meta["cell_line"].astype(str).unique().tolist()),
        "pooled_means": {str(k): v for k, v in means.to_dict(orient="index").items()},
        "paired_tests": tests.to_dict(orient="records"),
        "mined_examples": {r: int((examples["rule"] == r).sum()) for r in MINING_RULES},
        "mining_rules": MINING_RULES,
    }
    summary["warnings"] = _signal_warnings(means, 1.0 / len(classes))
    for text in summary["warnings"]:
        log.warning(text)
    if len(overlap) and overlap["inside"].notna().any():
        summary["signature_overlap"] = {
            "n_images": int(overlap["inside"].notna().sum()),
            "mean_inside": float(overlap["inside"].mean()),
            "mean_outside": float(overlap["outside"].mean()),
            "mean_ratio": float(overlap["ratio"].mean()),
            "mean_auc": float(overlap["auc"].mean()),
        }
    return summary


def _write(result: LensResult) -> None:
    """The tables and ``summary.json`` of ``result`` in ``result.out``."""
    out, classes = result.out, result.classes
    write_csv(result.results, out / "lens_results.csv")
    write_csv(result.per_class, out / "per_class.csv")
    write_csv(result.tests, out / "paired_tests.csv")
    first = next(iter(result.confusion_lens))
    for name, cm in (
        ("confusion_matrix.csv", result.confusion_plain),
        ("confusion_matrix_lens.csv", result.confusion_lens[first]),
    ):
        table = pd.DataFrame(cm, index=classes, columns=classes).rename_axis("true").reset_index()
        write_csv(table, out / name)
    imp_dir = out / IMPORTANCE_DIR
    imp_dir.mkdir(parents=True, exist_ok=True)
    write_csv(result.examples, imp_dir / "examples.csv")
    write_csv(result.overlap, imp_dir / "signature_overlap.csv")
    write_json(result.summary, out / "summary.json")
