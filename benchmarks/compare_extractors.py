"""Extractors on the ``small`` simulated screen: trained ConvAE vs its random-init baseline.

Simulates the screen (or reuses ``--work``), trains a ConvAE on it with a short budget, then
compares on the same wells: the trained ConvAE, the same architecture with random weights (the
baseline), classical intensity/texture features and, when the file exists, the published ConvAE
weights (trained on real Incucyte images). Only the images the comparison uses are embedded
(each drug's top concentration and the controls, last time points).

The last line printed is one JSON object with the trained/random ratios of replicate mAP and
held-out drug-identity accuracy, measured in the same run.

Usage: ``python benchmarks/compare_extractors.py [--work DIR] [--epochs 2] [--max-images 600]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from phenolapse.comparison import CompareConfig, run_comparison
from phenolapse.comparison.selection import task_rows

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
    args = ap.parse_args()

    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.training.config import TrainConfig
    from phenolapse.training.loop import train

    work: Path = args.work
    screen_dir = work / "screen"
    t0 = time.perf_counter()
    if not (screen_dir / "platemap.csv").exists():
        simulate_screen(screen_dir, preset=args.preset, seed=args.seed)
    manifest = build_manifest(
        screen_dir / "images", platemap=screen_dir / "platemap.csv", progress=False
    )
    t_sim = time.perf_counter() - t0

    model_path = work / "train" / "model.pt"
    t0 = time.perf_counter()
    if not model_path.exists():
        settings = {
            "epochs": args.epochs, "max_images": args.max_images, "device": args.device,
            "seed": args.seed, "lr_decay_epoch": max(1, args.epochs - 1),
            "batch_size": args.batch_size, "progress": False,
        }
        if args.init_weights is not None:
            settings["init_weights"] = str(args.init_weights)
        if args.whole_view_only:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}]
        cfg = TrainConfig.model_validate(settings)
        model_path = train(manifest, out=work / "train", config=cfg).model_path
    t_train = time.perf_counter() - t0

    subset = _subset(manifest, args.last_time_points)
    extractors = [f"convae-trained:convae={model_path}", "random-convae", "classical"]
    if PUBLISHED.is_file() and not args.no_published:
        extractors.append(f"convae-published:convae={PUBLISHED.resolve()}")
    config = CompareConfig.model_validate(
        {"last_time_points": args.last_time_points, "embedding": args.embedding,
         "device": args.device, "seed": args.seed, "cost_images": 64}
    )
    t0 = time.perf_counter()
    result = run_comparison(
        out=work / "comparison", extractors=extractors, manifest=subset, config=config
    )
    t_cmp = time.perf_counter() - t0
    print(result.paths["markdown"].read_text())

    t = result.table.set_index(["extractor", "metric"])["value"]

    def ratio(metric: str) -> float:
        return float(t[("convae-trained", metric)] / t[("random-convae", metric)])

    summary = {
        "screen": args.preset,
        "images_embedded": len(subset),
        "trained_over_random_map_vs_controls": ratio("map_vs_controls"),
        "trained_over_random_map_vs_drugs": ratio("map_vs_drugs"),
        "trained_over_random_drug_identity_top1": ratio("drug_identity_top1_accuracy"),
        "trained_over_random_drug_identity_top3": ratio("drug_identity_top3_accuracy"),
        "seconds": {"simulate": t_sim, "train": t_train, "compare": t_cmp},
        "train": {"epochs": args.epochs, "max_images": args.max_images,
                  "init_weights": str(args.init_weights),
                  "batch_size": args.batch_size, "whole_view_only": args.whole_view_only},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
