"""Held-out drug classification on the ``small`` simulated screen: ConvAE features vs classical ones.

Simulates the screen (or reuses ``--work``), adapts the published ConvAE to it without labels (a
short self-supervised training started from the published weights), then runs the lens stage
(:func:`phenolapse.lens.run_lens`) over three well splits with the published weights: plain head
on pooled ConvAE features, the same head after the lens, and the same head on classical
intensity/texture features of the same images and splits. The adapted ConvAE's features get the
same plain head on the same splits, as one more column.

Images: 128-px tiles of each 256-px frame resized to 64 px (the 2x downscale the published
weights were trained at), each drug's top concentration and the controls, last 8 time points.
ConvAE features are averaged over each tile's 8 rotations and mirror images (``orientations: 8``).

Prints one row per split seed (pooled over cell lines), chance, the paired tests (lens vs plain
and ConvAE vs classical over seeds x cell lines), the mean per-class recall of the drugs that draw
a signature and of the control-like classes (controls and drugs without one, which look alike by
construction; from the simulator's ``truth.csv``), and as the last line one JSON object.

``--encoder RUN/model.pt`` makes another trained encoder ``F`` (e.g. a two-view ResNet trained
on the same tiles: ``phenolapse train --objective simclr --encoder resnet``); the lens still
starts from the published ConvAE.

Usage: ``python benchmarks/lens_small_screen.py [--work DIR] [--threads 2]``; about 16 minutes
on two CPU cores (6 with ``--orientations 1``, no orientation averaging).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from phenolapse.lens import LensConfig, paired_test, run_lens
from phenolapse.lens.data import load_images, select_classification_images, well_split_mask
from phenolapse.lens.model import batched, extract_features
from phenolapse.lens.run import evaluate_topk, fit_head_predict
from phenolapse.models.convae import load_convae

PUBLISHED = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pheno-ml" / "trained_model.torch"
)


def lens_config(
    *, seeds: list[int], max_train_images: int, epochs: int, orientations: int = 8
) -> LensConfig:
    """The lens settings of this benchmark (and of the slow test on the same screen)."""
    return LensConfig.model_validate(
        {
            "preprocess": {"crop_size": 128, "image_size": 64, "mode": "tile"},
            "feature_mode": "pooled",
            "orientations": orientations,
            "last_time_points": 8,
            "coefs": [1.0],
            "seeds": seeds,
            "lens_lr": 5e-5,
            "epochs": epochs,
            "head_epochs": 200,
            "max_train_images": max_train_images,
            "importance_examples": 3,
            "ig_steps": 8,
            "progress": False,
        }
    )


def plain_head_scores(manifest: pd.DataFrame, weights: Path, config: LensConfig) -> pd.DataFrame:
    """Held-out top-1/top-3 of the plain head on ``weights``' features, splits as in run_lens."""
    meta = select_classification_images(
        manifest,
        concentration=config.concentration,
        last_n_timepoints=config.last_time_points,
        include_controls=config.include_controls,
    )
    classes = sorted(meta["label"].unique().tolist())
    y_row = meta["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    images, row_of = load_images(meta, config.preprocess, progress=False)
    y = y_row[row_of]
    ae = load_convae(weights, map_location="cpu").eval()
    feats = batched(
        lambda x: extract_features(
            ae, x, mode=config.feature_mode, orientations=config.orientations
        ),
        images,
        batch_size=config.batch_size,
    )
    cell_lines = meta["cell_line"].astype(str).to_numpy()[row_of]
    rows = []
    for seed in config.seeds:
        test = well_split_mask(meta, test_fraction=config.test_fraction, seed=seed)[row_of]
        tr, te = np.flatnonzero(~test), np.flatnonzero(test)
        _, proba = fit_head_predict(
            feats, y, train_idx=tr, test_idx=te, n_classes=len(classes), config=config, seed=seed
        )
        for name, _, top1, top3 in evaluate_topk(proba, y[te], cell_lines[te]):
            rows.append({"seed": seed, "cell_line": name, "top1": top1, "top3": top3})
    return pd.DataFrame(rows)


def adapt_convae(
    manifest: pd.DataFrame, out: Path, *, init: Path, epochs: int, max_images: int, seed: int
) -> Path:
    """Self-supervised training started from ``init`` on the screen's tiles (no labels)."""
    from phenolapse.training.config import TrainConfig
    from phenolapse.training.loop import train

    cfg = TrainConfig.model_validate(
        {
            "preprocess": {"crop_size": 128, "image_size": 64, "mode": "tile"},
            "crops": [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}],
            "view_steps": "joint",
            "epochs": epochs,
            "lr_decay_epoch": max(1, epochs - 1),
            "batch_size": 32,
            "max_images": max_images,
            "init_weights": str(init),
            "device": "cpu",
            "seed": seed,
            "progress": False,
        }
    )
    return train(manifest, out=out, config=cfg).model_path


def class_groups(truth: pd.DataFrame, classes: list[str]) -> dict[str, list[str]]:
    """The classes split by the simulator's truth at each drug's top concentration.

    ``signature``: drugs that draw a morphological signature there; ``control_like``: the
    controls and the drugs that draw none (they look alike by construction).
    """
    top = truth[truth["role"] == "treatment"]
    top = top[top["concentration_um"] == top.groupby("drug")["concentration_um"].transform("max")]
    drawn = set(top.loc[top["signature"] != "none", "drug"].astype(str))
    return {
        "signature": [c for c in classes if c in drawn],
        "control_like": [c for c in classes if c not in drawn],
    }


def per_group_recall(per_class: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Mean per-class recall (top-1, top-3) of each group, per seed: plain, lens and classical."""
    rows = []
    cols = [
        "top1_plain",
        "top3_plain",
        "top1_lens",
        "top3_lens",
        "top1_classical",
        "top3_classical",
    ]
    for name, members in groups.items():
        sub = per_class[per_class["class"].isin(members)]
        for seed, g in sub.groupby("seed"):
            rows.append({"group": name, "seed": seed, "n_classes": len(members), **g[cols].mean()})
    return pd.DataFrame(rows)


def _units(results: pd.DataFrame) -> pd.DataFrame:
    """Seed x cell-line rows (the units of the paired tests), sorted."""
    sub = results[results["cell_line"] != "pooled"]
    return sub.sort_values(["seed", "cell_line"]).reset_index(drop=True)


def main() -> None:
    """Run the benchmark and print the table, the paired tests and one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_lens_small"))
    ap.add_argument("--screen-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weights", type=Path, default=PUBLISHED, help="published ConvAE weights")
    ap.add_argument("--adapt-epochs", type=int, default=1)
    ap.add_argument("--adapt-images", type=int, default=200, help="frames (4 tiles each)")
    ap.add_argument("--no-adapt", action="store_true", help="skip the adapted ConvAE column")
    ap.add_argument("--max-train-images", type=int, default=500, help="lens training tiles")
    ap.add_argument("--lens-epochs", type=int, default=1)
    ap.add_argument("--orientations", type=int, choices=(1, 8), default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", type=Path, default=None,
                    help="F for the heads and the lens: weights of any phenolapse train run (e.g. "
                    "a two-view ResNet); the lens still starts from --weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.weights.is_file():
        raise SystemExit(f"{args.weights}: published ConvAE weights not found (--weights)")

    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen

    work: Path = args.work
    screen_dir = work / "screen"
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if not (screen_dir / "platemap.csv").exists():
        simulate_screen(screen_dir, preset="small", seed=args.screen_seed, progress=False)
    manifest = build_manifest(
        screen_dir / "images", platemap=screen_dir / "platemap.csv", progress=False
    )
    seconds["simulate"] = time.perf_counter() - t0

    config = lens_config(
        seeds=args.seeds,
        max_train_images=args.max_train_images,
        epochs=args.lens_epochs,
        orientations=args.orientations,
    )
    adapted: pd.DataFrame | None = None
    if not args.no_adapt:
        t0 = time.perf_counter()
        model = work / "adapt" / "model.pt"
        if not model.is_file():
            model = adapt_convae(
                manifest,
                work / "adapt",
                init=args.weights,
                epochs=args.adapt_epochs,
                max_images=args.adapt_images,
                seed=args.screen_seed,
            )
        seconds["adapt"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        adapted = plain_head_scores(manifest, model, config)
        seconds["adapted_head"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = run_lens(
        manifest, weights=args.weights, out=work / "lens", config=config, encoder=args.encoder
    )
    seconds["run_lens"] = time.perf_counter() - t0

    res = result.results
    pooled = res[res["cell_line"] == "pooled"].set_index("seed")
    chance1, chance3 = result.summary["chance_top1"], result.summary["chance_top3"]
    table = pd.DataFrame(
        {
            "top1_plain": pooled["top1_plain"],
            "top1_lens": pooled["top1_lens"],
            "top1_classical": pooled["top1_classical"],
            "top1_recon": pooled["top1_reconstruction"],
            "top3_plain": pooled["top3_plain"],
            "top3_lens": pooled["top3_lens"],
            "top3_recon": pooled["top3_reconstruction"],
            "top3_classical": pooled["top3_classical"],
        }
    )
    if adapted is not None:
        ad = adapted[adapted["cell_line"] == "pooled"].set_index("seed")
        table["top1_adapted"] = ad["top1"]
        table["top3_adapted"] = ad["top3"]
    table["chance_top1"] = chance1
    table["chance_top3"] = chance3
    table.loc["mean"] = table.mean()
    print(f"classes: {result.classes}  (n_test per seed: {pooled['n_test'].tolist()})")
    print(table.round(3).to_string())

    units = _units(res)
    tests: dict[str, Any] = {}
    for k in ("top1", "top3"):
        tests[f"lens_vs_plain_{k}"] = paired_test(
            units[f"{k}_plain"].to_numpy(), units[f"{k}_lens"].to_numpy()
        )
        tests[f"lens_vs_reconstruction_{k}"] = paired_test(
            units[f"{k}_reconstruction"].to_numpy(), units[f"{k}_lens"].to_numpy()
        )
        tests[f"plain_vs_classical_{k}"] = paired_test(
            units[f"{k}_classical"].to_numpy(), units[f"{k}_plain"].to_numpy()
        )
        if adapted is not None:
            ad_units = _units(adapted)
            tests[f"adapted_vs_classical_{k}"] = paired_test(
                units[f"{k}_classical"].to_numpy(), ad_units[k].to_numpy()
            )
    groups = class_groups(pd.read_csv(screen_dir / "truth.csv"), result.classes)
    by_group = per_group_recall(result.per_class, groups)
    group_means = by_group.groupby("group").mean(numeric_only=True).drop(columns="seed")
    print("\nmean per-class recall by class group (simulator truth), mean over seeds:")
    for name, members in groups.items():
        print(f"  {name}: {', '.join(members)}")
    print(group_means.round(3).to_string())
    # units of this test: seed x signature class (per-class recall of the pooled test images)
    sig = result.per_class[result.per_class["class"].isin(groups["signature"])]
    sig = sig.sort_values(["seed", "class"])
    for k in ("top1", "top3"):
        tests[f"signature_classes_plain_vs_classical_{k}"] = paired_test(
            sig[f"{k}_classical"].to_numpy(), sig[f"{k}_plain"].to_numpy()
        )
    print("\npaired tests over seeds x cell lines (difference = second - first):")
    for name, t in tests.items():
        print(
            f"  {name:28s} mean diff {t['mean_difference']:+.3f}  n={int(t['n_pairs'])}  "
            f"wilcoxon p={t['wilcoxon_p']:.3g}  t-test p={t['ttest_p']:.3g}"
        )
    means: dict[str, float] = {
        str(k): float(np.asarray(table.loc["mean", k])) for k in table.columns
    }
    summary: dict[str, Any] = {
        "screen": "small",
        "screen_seed": args.screen_seed,
        "seeds": args.seeds,
        "n_classes": len(result.classes),
        "chance_top1": chance1,
        "chance_top3": chance3,
        "means": {k: v for k, v in means.items() if not k.startswith("chance")},
        "top3_plain_minus_classical": means["top3_plain"] - means["top3_classical"],
        "top3_lens_minus_plain": means["top3_lens"] - means["top3_plain"],
        "top3_lens_minus_reconstruction": means["top3_lens"] - means["top3_recon"],
        "class_groups": groups,
        "class_group_recall": {
            str(g): {str(k): float(v) for k, v in row.items()} for g, row in group_means.iterrows()
        },
        "paired_tests": tests,
        "seconds": seconds,
        "threads": args.threads,
        "lens_config": config.model_dump(mode="json"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
