"""Extractors on the ``small`` simulated screen: a trained encoder vs its random-init twin.

With ``--objective simclr|vicreg|dino`` (and ``--encoder resnet``) the encoder is trained on two
views per image (:mod:`phenolapse.training.ssl`) and compared with its exact random-init twin
(``random-resnet`` / ``random-convae`` of the same seed) and classical features; ``--seeds 0 1 2``
repeats simulation, training and comparison per seed and prints the paired differences (trained
minus random, trained minus classical) per seed and metric, then one JSON line.

Simulates the screen (or reuses ``--work``), trains a ConvAE on it with a short budget, then
compares on the same wells: the trained ConvAE, the same architecture with random weights (the
baseline), classical intensity/texture features and, when the file exists, the published ConvAE
weights (trained on real Incucyte images). Only the images the comparison uses are embedded
(each drug's top concentration and the controls, last time points).

The last line printed is one JSON object with the trained/random ratios of replicate mAP and
held-out drug-identity accuracy, measured in the same run.

Usage: ``python benchmarks/compare_extractors.py [--work DIR] [--epochs 2] [--max-images 600]``;
``--objective simclr --encoder resnet --temporal-positives 1 --image-size 64 --seeds 0 1 2
--screens S0 S1 S2`` is the self-supervised comparison (``--screens`` reuses simulated screens);
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


METRICS = {"map_vs_controls": "map_vs_controls", "map_vs_drugs": "map_vs_drugs",
           "drug_identity_top1": "drug_identity_top1_accuracy",
           "drug_identity_top3": "drug_identity_top3_accuracy"}


def _train_settings(args: argparse.Namespace, seed: int) -> dict[str, object]:
    preprocess = {"crop_size": args.crop_size, "image_size": args.image_size}
    settings: dict[str, object] = {
        "epochs": args.epochs, "max_images": args.max_images, "device": args.device,
        "seed": seed, "batch_size": args.batch_size, "progress": False,
        "preprocess": preprocess, "objective": args.objective, "encoder": args.encoder,
    }
    if args.objective == "reconstruction":
        settings.update({"lr_decay_epoch": max(1, args.epochs - 1), "view_steps": args.view_steps})
        if args.init_weights is not None:
            settings["init_weights"] = str(args.init_weights)
        if args.whole_view_only or args.views == 1:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}]
        elif args.views == 2:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}]
    else:
        settings.update({"temporal_positives": args.temporal_positives, "lr": args.lr,
                         "resnet_widths": args.widths})
    settings.update(parse_overrides(args.set))
    return settings


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs (VALUE read as YAML) for :class:`TrainConfig` fields."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run_seed(args: argparse.Namespace, seed: int, screen_dir: Path, work: Path) -> dict[str, object]:
    """Simulate (unless given), train, compare; the metrics of every extractor of one seed."""
    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.training.config import TrainConfig
    from phenolapse.training.loop import train

    t0 = time.perf_counter()
    if not (screen_dir / "platemap.csv").exists():
        simulate_screen(screen_dir, preset=args.preset, seed=seed)
    manifest = build_manifest(
        screen_dir / "images", platemap=screen_dir / "platemap.csv", progress=False
    )
    t_sim = time.perf_counter() - t0
    model_path = args.model or work / "train" / "model.pt"
    t0 = time.perf_counter()
    if not model_path.exists():
        cfg = TrainConfig.model_validate(_train_settings(args, seed))
        model_path = train(manifest, out=work / "train", config=cfg).model_path
    t_train = time.perf_counter() - t0

    random_kind = "random-resnet" if args.encoder == "resnet" else "random-convae"
    subset = _subset(manifest, args.last_time_points)
    extractors: list[str | Extractor] = []
    if not args.no_flat:
        twin = f"{random_kind}={model_path}" if args.encoder == "resnet" else random_kind
        extractors += [f"trained:trained={model_path}", f"random-init:{twin}"]
    extractors.append("classical")
    if args.pooled:
        from phenolapse.models.random_init import random_convae_extractor

        pooled: list[Extractor] = [
            ConvAEExtractor.from_file(model_path, input_size=args.image_size, features="pooled"),
            random_convae_extractor(seed=seed, input_size=args.image_size, features="pooled"),
        ]
        for ext, name in zip(pooled, ["trained-pooled", "random-init-pooled"], strict=True):
            ext.name = name
            ext.feature_prefix = name.replace("-", "_")
        extractors += pooled
    if PUBLISHED.is_file() and not args.no_published:
        extractors.append(f"convae-published:convae={PUBLISHED.resolve()}")
    config = CompareConfig.model_validate(
        {"last_time_points": args.last_time_points, "embedding": args.embedding,
         "device": args.device, "seed": seed, "cost_images": 64,
         "convae_features": args.convae_features,
         "preprocess": {"crop_size": args.crop_size, "image_size": args.image_size}}
    )
    t0 = time.perf_counter()
    result = run_comparison(
        out=work / "comparison", extractors=extractors, manifest=subset, config=config
    )
    t_cmp = time.perf_counter() - t0
    print(f"## seed {seed}")
    print(result.paths["markdown"].read_text())
    table = result.table.set_index(["extractor", "metric"])["value"]
    values = {
        label: {key: float(table[(label, metric)]) for key, metric in METRICS.items()}
        for label in table.index.get_level_values(0).unique()
    }
    return {"seed": seed, "values": values, "images_embedded": len(subset),
            "seconds": {"simulate": t_sim, "train": t_train, "compare": t_cmp},
            "model": str(model_path)}


def paired(per_seed: list[dict], a: str, b: str) -> dict[str, list[float]]:
    """``a - b`` per metric and seed."""
    return {key: [round(r["values"][a][key] - r["values"][b][key], 4) for r in per_seed]
            for key in METRICS}


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print the comparison tables, the paired differences and one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_compare"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--screens", type=Path, nargs="+", default=None,
                    help="simulated screen folders, one per seed (reused instead of simulating)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-images", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--objective", default="reconstruction",
                    choices=["reconstruction", "simclr", "vicreg", "dino"])
    ap.add_argument("--encoder", default="convae", choices=["convae", "resnet"])
    ap.add_argument("--temporal-positives", type=float, default=0.0)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other training option, e.g. --set jitter=0 (repeatable)")
    ap.add_argument("--convae-features", default="latent", choices=["latent", "pooled"],
                    help="features of the ConvAE kinds (the reference latent by default)")
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
                    help="use these trained weights instead of training (one seed)")
    ap.add_argument("--image-size", type=int, default=128, help="model input side (px)")
    ap.add_argument("--crop-size", type=int, default=256, help="centre crop of the frame")
    ap.add_argument("--views", type=int, choices=[0, 1, 2], default=0,
                    help="0: reference multi-crop; 1: whole frame; 2: whole + one 0.5-0.75")
    ap.add_argument("--view-steps", choices=["separate", "joint"], default="separate")
    ap.add_argument("--pooled", action="store_true",
                    help="also compare the per-channel pooled latent of both ConvAEs")
    ap.add_argument("--no-flat", action="store_true",
                    help="skip the trained and random-init extractors (with --pooled)")
    args = ap.parse_args(argv)
    if args.screens is not None and len(args.screens) != len(args.seeds):
        ap.error("give one --screens folder per seed")
    per_seed = []
    for i, seed in enumerate(args.seeds):
        work = args.work / f"seed{seed}" if len(args.seeds) > 1 else args.work
        screen = args.screens[i] if args.screens is not None else work / "screen"
        per_seed.append(run_seed(args, seed, screen, work))
    summary: dict[str, object] = {
        "screen": args.preset, "seeds": args.seeds, "objective": args.objective,
        "encoder": args.encoder, "temporal_positives": args.temporal_positives,
        "epochs": args.epochs, "max_images": args.max_images, "image_size": args.image_size,
        "train_overrides": parse_overrides(args.set),
    }
    if not args.no_flat:
        vs_random = paired(per_seed, "trained", "random-init")
        vs_classical = paired(per_seed, "trained", "classical")
        print("trained - random init, per seed:", json.dumps(vs_random))
        print("trained - classical, per seed:", json.dumps(vs_classical))
        summary["trained_minus_random"] = vs_random
        summary["trained_minus_classical"] = vs_classical
        summary["above_random_every_seed_every_metric"] = all(
            d > 0 for v in vs_random.values() for d in v
        )
        summary["worst_map_gap_to_classical"] = min(
            max(a, b) for a, b in zip(
                vs_classical["map_vs_controls"], vs_classical["map_vs_drugs"], strict=True
            )
        )
    summary["per_seed"] = per_seed
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
