"""Extractors on the ``small`` simulated screen: trained ConvAE vs its random-init baseline.

Simulates the screen (or reuses ``--work``), trains a ConvAE on it with a short budget, then
compares on the same wells: the trained ConvAE, the same architecture with random weights (the
baseline), classical intensity/texture features and, when the file exists, the published ConvAE
weights (trained on real Incucyte images). Only the images the comparison uses are embedded
(each drug's top concentration and the controls, last time points).

The last line printed is one JSON object with the trained/random ratios of replicate mAP and
held-out drug-identity accuracy, measured in the same run.

Usage: ``python benchmarks/compare_extractors.py [--work DIR] [--epochs 2] [--max-images 600]``;
``--model PATH --screen DIR --image-size 64`` reuses a model trained elsewhere (e.g. by
``temporal_recovery.py``) on that screen; ``--pooled`` adds both ConvAEs with pooled features
(mean and max over space of every encoder activation, ``convae_features="pooled"``) beside the
flattened latent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from phenolapse.comparison import CompareConfig, run_comparison
from phenolapse.comparison.selection import task_rows
from phenolapse.models.base import ConvAEExtractor, Extractor

PUBLISHED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pheno-ml" / (
    "trained_model.torch"
)


def _subset(manifest: pd.DataFrame, last_time_points: int) -> pd.DataFrame:
    """Images of the top-concentration and control wells at the last time points."""
    meta = pd.DataFrame(
        {
            "Metadata_plate": manifest["plate"].astype(str),
            "Metadata_time_h": manifest["time_h"].astype(float),
            "Metadata_role": manifest["role"].astype(str),
            "Metadata_cell_line": manifest["cell_line"].astype(str),
            "Metadata_drug": manifest["drug"].astype(str),
            "Metadata_concentration_um": manifest["concentration_um"].astype(float),
        }
    )
    rows = task_rows(meta, last_time_points=last_time_points)
    return manifest.iloc[rows].reset_index(drop=True)


def main() -> None:
    """Run the benchmark and print the comparison table and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_compare"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-images", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--whole-view-only", action="store_true",
        help="train on the whole-image view only (cheaper than the reference multi-crop)",
    )
    ap.add_argument("--last-time-points", type=int, default=5)
    ap.add_argument("--embedding", choices=["umap", "pca"], default="umap")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-published", action="store_true")
    ap.add_argument("--init-weights", type=Path, default=None,
                    help="continue training from these ConvAE weights")
    ap.add_argument("--model", type=Path, default=None,
                    help="use these trained ConvAE weights instead of training")
    ap.add_argument("--screen", type=Path, default=None,
                    help="use this simulated screen folder instead of WORK/screen")
    ap.add_argument("--image-size", type=int, default=128, help="model input side (px)")
    ap.add_argument("--crop-size", type=int, default=256, help="centre crop of the frame")
    ap.add_argument("--views", type=int, choices=[0, 1, 2], default=0,
                    help="0: reference multi-crop; 1: whole frame; 2: whole + one 0.5-0.75")
    ap.add_argument("--view-steps", choices=["separate", "joint"], default="separate")
    ap.add_argument("--pooled", action="store_true",
                    help="also compare the per-channel pooled latent of both ConvAEs")
    ap.add_argument("--no-flat", action="store_true",
                    help="skip the flattened-latent ConvAEs (with --pooled)")
    args = ap.parse_args()

    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.training.config import TrainConfig
    from phenolapse.training.loop import train

    work: Path = args.work
    screen_dir = args.screen or work / "screen"
    t0 = time.perf_counter()
    if not (screen_dir / "platemap.csv").exists():
        simulate_screen(screen_dir, preset=args.preset, seed=args.seed)
    manifest = build_manifest(
        screen_dir / "images", platemap=screen_dir / "platemap.csv", progress=False
    )
    t_sim = time.perf_counter() - t0

    model_path = args.model or work / "train" / "model.pt"
    preprocess = {"crop_size": args.crop_size, "image_size": args.image_size}
    t0 = time.perf_counter()
    if not model_path.exists():
        settings = {
            "epochs": args.epochs, "max_images": args.max_images, "device": args.device,
            "seed": args.seed, "lr_decay_epoch": max(1, args.epochs - 1),
            "batch_size": args.batch_size, "progress": False, "preprocess": preprocess,
            "view_steps": args.view_steps,
        }
        if args.init_weights is not None:
            settings["init_weights"] = str(args.init_weights)
        if args.whole_view_only or args.views == 1:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}]
        elif args.views == 2:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}]
        cfg = TrainConfig.model_validate(settings)
        model_path = train(manifest, out=work / "train", config=cfg).model_path
    t_train = time.perf_counter() - t0

    subset = _subset(manifest, args.last_time_points)
    extractors: list[str | Extractor] = (
        [] if args.no_flat else [f"convae-trained:convae={model_path}", "random-convae"]
    )
    extractors.append("classical")
    if args.pooled:
        from phenolapse.models.random_init import random_convae_extractor

        pooled: list[Extractor] = [
            ConvAEExtractor.from_file(
                model_path, input_size=args.image_size, features="pooled"
            ),
            random_convae_extractor(seed=args.seed, input_size=args.image_size, features="pooled"),
        ]
        for ext, name in zip(pooled, ["convae-trained-pooled", "random-convae-pooled"], strict=True):
            ext.name = name
            ext.feature_prefix = name.replace("-", "_")
        extractors += pooled
    if PUBLISHED.is_file() and not args.no_published:
        extractors.append(f"convae-published:convae={PUBLISHED.resolve()}")
    config = CompareConfig.model_validate(
        {"last_time_points": args.last_time_points, "embedding": args.embedding,
         "device": args.device, "seed": args.seed, "cost_images": 64,
         "preprocess": preprocess}
    )
    t0 = time.perf_counter()
    result = run_comparison(
        out=work / "comparison", extractors=extractors, manifest=subset, config=config
    )
    t_cmp = time.perf_counter() - t0
    print(result.paths["markdown"].read_text())

    t = result.table.set_index(["extractor", "metric"])["value"]

    def ratio(metric: str, suffix: str = "") -> float:
        return float(
            t[("convae-trained" + suffix, metric)] / t[("random-convae" + suffix, metric)]
        )

    metrics = {"map_vs_controls": "map_vs_controls", "map_vs_drugs": "map_vs_drugs",
               "drug_identity_top1": "drug_identity_top1_accuracy",
               "drug_identity_top3": "drug_identity_top3_accuracy"}
    summary: dict[str, object] = {"screen": args.preset, "images_embedded": len(subset)}
    for suffix in ([] if args.no_flat else [""]) + (["-pooled"] if args.pooled else []):
        for key, metric in metrics.items():
            summary[f"trained{suffix}_over_random_{key}"] = ratio(metric, suffix)
    summary.update({
        "seconds": {"simulate": t_sim, "train": t_train, "compare": t_cmp},
        "train": {"epochs": args.epochs, "max_images": args.max_images,
                  "init_weights": str(args.init_weights),
                  "batch_size": args.batch_size, "whole_view_only": args.whole_view_only,
                  "image_size": args.image_size, "crop_size": args.crop_size,
                  "views": args.views, "view_steps": args.view_steps,
                  "model": str(model_path)},
    })
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
