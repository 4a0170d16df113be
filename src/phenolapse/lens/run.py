"""The lens stage end to end: select images, split by well, train plain and lens heads, evaluate.

Outputs in ``out``: ``lens_results.csv`` (held-out top-1/top-3 per seed, lambda and cell line),
``per_class.csv``, ``paired_tests.csv``, ``confusion_matrix.csv`` / ``confusion_matrix_lens.csv`` /
``confusion_matrix.png``, ``lens_boxplot.png``, ``importance/`` (image | map panels,
``examples.csv``, ``signature_overlap.csv``) and ``summary.json`` (configuration, classes, means,
paired tests, signature overlap).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from phenolapse.data.imageio import preprocess, read_image
from phenolapse.errors import ConfigError, ManifestError
from phenolapse.io_utils import write_csv, write_json
from phenolapse.lens.config import LensConfig
from phenolapse.lens.data import (
    CONTROL_ROLES,
    check_split,
    load_images,
    select_classification_images,
    signature_mask_path,
    split_by_well,
)
from phenolapse.lens.importance import (
    MINING_RULES,
    importance_map,
    integrated_gradients,
    mask_overlap,
    mine_examples,
)
from phenolapse.lens.metrics import confusion_matrix, paired_test, per_class_accuracy, topk_accuracy
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

log = logging.getLogger(__name__)


@dataclass
class LensResult:
    """What :func:`run_lens` computed; the same tables are written to ``out``."""

    out: Path
    classes: list[str]
    results: pd.DataFrame
    per_class: pd.DataFrame
    tests: pd.DataFrame
    examples: pd.DataFrame
    overlap: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def read_lens_source(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Image rows from a manifest (Parquet/CSV), a ``features.zarr`` folder, or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if path.is_dir():
        meta = path / "metadata.parquet"
        if not meta.is_file():
            raise ManifestError(
                f"{path}: a folder but not a features.zarr store (no metadata.parquet)"
            )
        return pd.read_parquet(meta)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest or features file not found")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
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
            topk_accuracy(proba[sel], y[sel], 1),
            topk_accuracy(proba[sel], y[sel], 3),
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


def fit_head_predict(
    x: np.ndarray,
    y: np.ndarray,
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


def run_lens(
    source: str | Path | pd.DataFrame,
    *,
    weights: str | Path | ConvAE,
    out: str | Path,
    config: LensConfig | None = None,
) -> LensResult:
    """Classify drugs from single images with and without the lens, on held-out wells.

    Parameters
    ----------
    source
        Manifest (with plate-map columns) or a ``features.zarr`` folder whose metadata lists images.
    weights
        The trained ConvAE (file or model): its encoder is the frozen ``F``, the whole model ``AE``.
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
        last_n_timepoints=config.last_n_timepoints,
        include_controls=config.include_controls,
    )
    classes = sorted(meta["label"].unique().tolist())
    class_index = {c: i for i, c in enumerate(classes)}
    control_classes = sorted(
        {class_index[c] for c in meta.loc[meta["role"].isin(CONTROL_ROLES), "label"]}
    )
    ae = weights if isinstance(weights, ConvAE) else load_convae(weights, map_location="cpu")
    ae = freeze(copy.deepcopy(ae))
    device = torch.device(config.device)
    images, row_of = load_images(meta, config.preprocess, progress=config.progress)
    if images.shape[1] != ae.in_channels:
        raise ConfigError(
            f"images have {images.shape[1]} channels but the weights expect {ae.in_channels}; "
            f"set preprocess.channels or use matching weights"
        )
    crop = np.arange(len(row_of)) - np.searchsorted(row_of, row_of)
    y = meta["label"].map(class_index).to_numpy()[row_of]
    cell_lines = meta["cell_line"].astype(str).to_numpy()[row_of]
    extractor = ae.to(device)
    mode = config.feature_mode
    turns = config.orientations
    feats = batched(
        lambda x: extract_features(extractor, x, mode=mode, orientations=turns),
        images,
        batch_size=config.batch_size,
        device=device,
    )

    recon_feats: np.ndarray | None = None
    if config.head_init == "reconstruction":
        recon_feats = batched(
            lambda x: extract_features(extractor, extractor(x), mode=mode, orientations=turns),
            images,
            batch_size=config.batch_size,
            device=device,
        )

    classical: np.ndarray | None = None
    if config.classical_baseline:
        from phenolapse.models.classical import classical_features_batch

        classical = classical_features_batch(np.moveaxis(images, 1, -1).clip(0, 1))

    result_rows: list[dict[str, Any]] = []
    class_frames: list[pd.DataFrame] = []
    n_cls = len(classes)
    cm_plain = np.zeros((n_cls, n_cls), np.int64)
    cm_lens = {c: np.zeros((n_cls, n_cls), np.int64) for c in config.coefs}
    kept: dict[str, Any] = {}
    for seed in config.seeds:
        test_rows = split_by_well(meta, test_fraction=config.test_fraction, seed=seed)
        check_split(meta["label"].to_numpy(), test_rows, classes)
        test = test_rows[row_of]
        train_idx = np.flatnonzero(~test)
        test_idx = np.flatnonzero(test)
        lens_idx = train_idx
        if config.max_train_images is not None and len(train_idx) > config.max_train_images:
            rng = np.random.default_rng(seed)
            lens_idx = np.sort(rng.choice(train_idx, config.max_train_images, replace=False))

        plain, plain_proba = fit_head_predict(feats, y, train_idx, test_idx, n_cls, config, seed)
        y_test = y[test_idx]
        cm_plain += confusion_matrix(y_test, plain_proba.argmax(1), n_cls)
        plain_eval = evaluate_topk(plain_proba, y_test, cell_lines[test_idx])
        pc_plain = per_class_accuracy(plain_proba, y_test, classes)
        base_eval = None
        pc_base: pd.DataFrame | None = None
        if classical is not None:
            _, base_proba = fit_head_predict(classical, y, train_idx, test_idx, n_cls, config, seed)
            base_eval = evaluate_topk(base_proba, y_test, cell_lines[test_idx])
            pc_base = per_class_accuracy(base_proba, y_test, classes)
        recon_eval = None
        head0 = plain
        if recon_feats is not None:
            head0, recon_proba = fit_head_predict(
                recon_feats, y, train_idx, test_idx, n_cls, config, seed
            )
            recon_eval = evaluate_topk(recon_proba, y_test, cell_lines[test_idx])
        for coef in config.coefs:
            if config.head_init == "random":
                torch.manual_seed(seed)
                head0 = LinearHead(
                    feats.shape[1], n_cls, mean=plain.mean.numpy(), std=plain.std.numpy()
                )
            lens, head, hist = train_lens(
                ae,
                images[lens_idx],
                y[lens_idx],
                n_classes=n_cls,
                coef=coef,
                head=head0,
                detach=config.detach_classification,
                init=config.init,
                feature_mode=mode,
                orientations=turns,
                epochs=config.epochs,
                lens_lr=config.lens_lr,
                head_lr=config.head_lr,
                batch_size=config.batch_size,
                seed=seed,
                device=device,
                progress=config.progress,
            )
            lens_proba = predict_proba(
                extractor,
                head,
                images[test_idx],
                lens=lens,
                feature_mode=mode,
                orientations=turns,
                device=device,
            )
            cm_lens[coef] += confusion_matrix(y_test, lens_proba.argmax(1), n_cls)
            lens_eval = evaluate_topk(lens_proba, y_test, cell_lines[test_idx])
            for j, ((name, n, p1, p3), (_, _, l1, l3)) in enumerate(
                zip(plain_eval, lens_eval, strict=True)
            ):
                extra: dict[str, float] = {}
                if recon_eval is not None:
                    extra["top1_reconstruction"] = recon_eval[j][2]
                    extra["top3_reconstruction"] = recon_eval[j][3]
                if base_eval is not None:
                    extra["top1_classical"] = base_eval[j][2]
                    extra["top3_classical"] = base_eval[j][3]
                result_rows.append(
                    {
                        "seed": seed,
                        "coef": coef,
                        "cell_line": name,
                        "n_test": n,
                        "top1_plain": p1,
                        "top3_plain": p3,
                        "top1_lens": l1,
                        "top3_lens": l3,
                        "final_bce": hist.bce[-1],
                        "final_ce": hist.ce[-1],
                        **extra,
                    }
                )
            pc_lens = per_class_accuracy(lens_proba, y_test, classes)
            frame = pc_plain.rename(columns={"top1": "top1_plain", "top3": "top3_plain"}).assign(
                seed=seed,
                coef=coef,
                top1_lens=pc_lens["top1"].to_numpy(),
                top3_lens=pc_lens["top3"].to_numpy(),
            )
            if pc_base is not None:
                frame["top1_classical"] = pc_base["top1"].to_numpy()
                frame["top3_classical"] = pc_base["top3"].to_numpy()
            class_frames.append(frame)
            if not kept or (kept["coef"] == 0 and coef != 0 and kept["seed"] == seed):
                kept = {
                    "seed": seed,
                    "coef": coef,
                    "lens": lens,
                    "head": head,
                    "plain": plain,
                    "test_idx": test_idx,
                    "plain_proba": plain_proba,
                    "lens_proba": lens_proba,
                }
    results = pd.DataFrame(result_rows)
    per_class = pd.concat(class_frames, ignore_index=True)
    per_class_columns = ["seed", "coef", "class", "n_images"]
    per_class_columns += ["top1_plain", "top1_lens", "top3_plain", "top3_lens"]
    if classical is not None:
        per_class_columns += ["top1_classical", "top3_classical"]
    per_class = per_class[per_class_columns]
    tests = _paired_tests(results)
    examples, overlap = _importance(
        kept, meta, images, row_of, crop, y, classes, control_classes, extractor, ae, config, out
    )
    summary = _summary(config, classes, meta, results, tests, overlap, examples)
    _write(out, classes, results, per_class, tests, cm_plain, cm_lens, summary)
    return LensResult(out, classes, results, per_class, tests, examples, overlap, summary)


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
    kept: dict[str, Any],
    meta: pd.DataFrame,
    images: np.ndarray,
    row_of: np.ndarray,
    crop: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    control_classes: list[int],
    extractor: ConvAE,
    ae: ConvAE,
    config: LensConfig,
    out: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from phenolapse.report.lens_figures import save_importance_panel

    test_idx = kept["test_idx"]
    lens: ConvAE = kept["lens"]
    device = torch.device(config.device)
    x_test = images[test_idx]
    maps = importance_map(
        batched(ae, x_test, batch_size=config.batch_size, device=device),
        batched(lens, x_test, batch_size=config.batch_size, device=device),
        exponent=config.importance_exponent,
    )
    examples = mine_examples(
        y[test_idx],
        kept["plain_proba"],
        kept["lens_proba"],
        control_classes=control_classes,
        margin=config.confidence_margin,
    )
    examples["image"] = test_idx[examples["index"].to_numpy()]
    paths = meta["image_path"].astype(str).to_numpy()[row_of]
    examples["image_path"] = paths[examples["image"].to_numpy()]
    for c in ("label", "plain_pred", "lens_pred"):
        examples[c] = [classes[i] for i in examples[c]]
    examples.insert(0, "seed", kept["seed"])
    examples.insert(1, "coef", kept["coef"])
    imp_dir = out / "importance"
    imp_dir.mkdir(parents=True, exist_ok=True)

    drug = ~np.isin(y[test_idx], control_classes)
    mask_paths = [signature_mask_path(p) for p in paths[test_idx[drug]]]
    masks = _load_masks(mask_paths, config, crop[test_idx[drug]]) if drug.any() else None
    if masks is not None:
        ov = mask_overlap(maps[drug], masks)
        ov.insert(0, "image_path", paths[test_idx[drug]])
        ov.insert(1, "label", [classes[i] for i in y[test_idx[drug]]])
    else:
        ov = pd.DataFrame(columns=["image_path", "label", "inside", "outside", "ratio", "auc"])

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
            extractor,
            kept["head"],
            x_test[sel],
            y[test_idx][sel],
            lens=lens,
            feature_mode=config.feature_mode,
            orientations=config.orientations,
            steps=config.ig_steps,
        )
    for j, (_, row) in enumerate(chosen.iterrows()):
        i = int(row["index"])
        title = (
            f"rule {row['rule']}: {classes[y[test_idx][i]]}  "
            f"plain {classes[int(kept['plain_proba'][i].argmax())]} "
            f"({kept['plain_proba'][i, y[test_idx][i]]:.2f})  "
            f"lens {classes[int(kept['lens_proba'][i].argmax())]} "
            f"({kept['lens_proba'][i, y[test_idx][i]]:.2f})"
        )
        save_importance_panel(
            x_test[i],
            maps[i],
            imp_dir / f"{row['rule']}_{j:03d}.png",
            title=title,
            attribution=None if ig_maps is None else ig_maps[j],
        )
    write_csv(examples, imp_dir / "examples.csv")
    write_csv(ov, imp_dir / "signature_overlap.csv")
    return examples, ov


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


def _write(
    out: Path,
    classes: list[str],
    results: pd.DataFrame,
    per_class: pd.DataFrame,
    tests: pd.DataFrame,
    cm_plain: np.ndarray,
    cm_lens: dict[float, np.ndarray],
    summary: dict[str, Any],
) -> None:
    from phenolapse.report.lens_figures import plot_confusion_matrices, plot_lens_boxplot

    write_csv(results, out / "lens_results.csv")
    write_csv(per_class, out / "per_class.csv")
    write_csv(tests, out / "paired_tests.csv")
    first = next(iter(cm_lens))
    write_csv(
        pd.DataFrame(cm_plain, index=classes, columns=classes).rename_axis("true").reset_index(),
        out / "confusion_matrix.csv",
    )
    write_csv(
        pd.DataFrame(cm_lens[first], index=classes, columns=classes)
        .rename_axis("true")
        .reset_index(),
        out / "confusion_matrix_lens.csv",
    )
    plot_confusion_matrices(
        {"plain head on F(x)": cm_plain, f"lens head on F(L(x)), lambda={first:g}": cm_lens[first]},
        classes,
        out / "confusion_matrix.png",
    )
    plot_lens_boxplot(results, out / "lens_boxplot.png")
    write_json(summary, out / "summary.json")
