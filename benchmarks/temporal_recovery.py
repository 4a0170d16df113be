"""Ground-truth recovery of the effect annotation on simulated screens.

For each seed: simulate a screen (preset ``small`` by default), compute image features, measure
label-free confluence on the images, run the temporal stage, and compare the annotation of every
(cell line, drug, concentration) with ``truth.csv``. Three annotations are scored:

- ``combined``: image features + growth (the default pipeline);
- ``growth_only``: confluence/GR rules alone (the baseline: what an Incucyte confluence export
  gives without image features);
- ``features_only``: the image features alone: distance size, then where a condition went against
  the control's path in feature space (``feature_effect``).

It also counts the drugs that change morphology without changing growth (``morphology_only`` in
truth.csv) that the feature distance detects (``morphology_change``).

Features: ``--features published`` embeds the images with a given ConvAE weights file (default:
the published weights in ``../shared/data/pheno-ml``) and the default ``stats`` features;
``--features convae`` trains a ConvAE with :func:`phenolapse.training.train` on the screen's own
images and embeds them (needs torch and, for speed, a GPU); ``--features classical`` uses cheap
intensity/texture features (no torch, minutes on 2 CPU cores). ``--convae-features`` picks the
ConvAE feature set and ``--normalization`` the profile normalisation (default: robust z-scores
against each plate's controls; ``none`` is the reference).

Also scored: feature-only detection, the ROC AUC of ``max_relative_distance`` for "any effect vs
none" (``auc_effect``: truth effect other than ``no_effect``; ``auc_visible``: the same, also
counting drugs that only change morphology, which the features should see), and the accuracy of
``feature_effect`` (the features alone, ``--no-growth``). ``--sim KEY=VALUE`` changes simulator
options (e.g. ``--sim cell_size=1.35 --sim noise_sd=4.5``: a second setting).

The last line printed is one JSON object with the worst seed's scores and the ratio of the
combined accuracy to the growth-only baseline measured in the same run.

Usage::

    python benchmarks/temporal_recovery.py --seeds 0 1 2 --features published --workdir runs/tr
    python benchmarks/temporal_recovery.py --seeds 100 --features published \
        --sim cell_size=1.35 --sim noise_sd=4.5 --workdir runs/tr_alt
    python benchmarks/temporal_recovery.py --seeds 0 1 2 --features classical
    python benchmarks/temporal_recovery.py --seeds 0 1 2 --features convae --epochs 5
    python benchmarks/temporal_recovery.py --seeds 0 1 2 --features convae --epochs 3 \
        --image-size 64 --views 2 --view-steps joint --max-images 1000 --batch-size 32 \
        --workdir runs/tr   # a CPU-sized recipe; runs/tr/work<SEED>/train/model.pt is reused
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PUBLISHED = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "pheno-ml"
    / ("trained_model.torch")
)
META = ["cell_line", "plate", "well", "time_h", "drug", "concentration_um", "role"]


def classical_profiles(manifest: pd.DataFrame) -> pd.DataFrame:
    """Intensity quantiles, texture and gradient statistics per image, mean per well and time,
    z-scored per plate against the negative controls."""
    from scipy import ndimage as ndi

    from phenolapse.data.imageio import read_image
    from phenolapse.temporal.growth import texture_map

    rows = []
    for path in manifest["image_path"]:
        img = read_image(Path(path))
        tex = texture_map(img)
        grad = np.hypot(ndi.sobel(img, 0), ndi.sobel(img, 1))
        rows.append(
            [
                img.mean(),
                img.std(),
                *np.percentile(img, [1, 5, 25, 50, 75, 95, 99]),
                tex.mean(),
                *np.percentile(tex, [25, 50, 75, 90]),
                grad.mean(),
                grad.std(),
                (img > 0.6).mean(),
                (img < 0.4).mean(),
            ]
        )
    arr = np.asarray(rows)
    df = manifest[META].copy().reset_index(drop=True)
    df.attrs = {}
    cols = [f"classical_{i:02d}" for i in range(arr.shape[1])]
    df[cols] = arr
    prof = df.groupby(META, dropna=False)[cols].mean().reset_index()
    for _plate, grp in prof.groupby("plate"):
        ctrl = grp.loc[grp["role"] == "negative_control", cols]
        prof.loc[grp.index, cols] = (grp[cols] - ctrl.mean()) / ctrl.std().replace(0, 1)
    return prof.rename(columns={c: f"Metadata_{c}" for c in META})


def convae_profiles(
    manifest: pd.DataFrame, work: Path, *, args: argparse.Namespace, seed: int
) -> tuple[pd.DataFrame, float]:
    """Train a ConvAE on the screen's images (or reuse ``work/train/model.pt``), embed them,
    return the profiles and the training seconds (0 when reused)."""
    from phenolapse.training import make_config, train

    preprocess = {"crop_size": args.crop_size, "image_size": args.image_size}
    model_path = work / "train" / "model.pt"
    t0 = time.perf_counter()
    if not model_path.is_file():
        settings: dict[str, object] = {
            "epochs": args.epochs,
            "device": args.device,
            "progress": False,
            "seed": seed,
            "preprocess": preprocess,
            "batch_size": args.batch_size,
            "view_steps": args.view_steps,
            "lr_decay_epoch": max(1, args.epochs - 1),
        }
        if args.max_images is not None:
            settings["max_images"] = args.max_images
        if args.views == 1:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}]
        elif args.views == 2:
            settings["crops"] = [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}]
        model_path = train(manifest, out=work / "train", config=make_config(settings)).model_path
    t_train = time.perf_counter() - t0
    return embed_profiles(manifest, model_path, work / "embed", args=args), t_train


def embed_profiles(
    manifest: pd.DataFrame, weights: Path, out: Path, *, args: argparse.Namespace
) -> pd.DataFrame:
    """Embed the screen with ``weights`` into ``out`` (reused when already there)."""
    from phenolapse.embedding import EmbedConfig, embed_manifest, read_profiles

    embed_cfg = EmbedConfig.model_validate(
        {
            "preprocess": {"crop_size": args.crop_size, "image_size": args.image_size},
            "device": args.device,
            "progress": False,
            "convae_features": args.convae_features,
        }
    )
    if not (out / "profiles.parquet").is_file():  # reuse an earlier embedding
        embed_manifest(manifest, weights=weights, out=out, config=embed_cfg)
    return read_profiles(out / "profiles.parquet")


def detection_auc(ann: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """ROC AUC of ``max_relative_distance`` for effect vs none, and effect-or-morphology vs none."""
    from sklearn.metrics import roc_auc_score

    m = ann.merge(truth, on=["cell_line", "drug", "concentration_um"], suffixes=("", "_truth"))
    score_ = m["max_relative_distance"].astype(float).fillna(np.inf)
    effect = (m["effect_truth"] != "no_effect").to_numpy()
    visible = effect | m["morphology_only"].astype(bool).to_numpy()
    out = {}
    for name, y in (("auc_effect", effect), ("auc_visible", visible)):
        out[name] = round(float(roc_auc_score(y, score_)), 4) if 0 < y.sum() < y.size else np.nan
    return out


def score(ann: pd.DataFrame, truth: pd.DataFrame, column: str) -> dict[str, float]:
    from phenolapse.temporal.annotate import agreement_scores

    m = ann.merge(truth, on=["cell_line", "drug", "concentration_um"], suffixes=("", "_truth"))
    s = agreement_scores(m[column], m["effect_truth"])
    return {"accuracy": round(s["accuracy"], 4), "macro_f1": round(s["macro_f1"], 4)}


def run_seed(seed: int, args: argparse.Namespace, root: Path) -> dict[str, object]:
    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.temporal.config import TemporalConfig
    from phenolapse.temporal.pipeline import analyse, growth_from_manifest

    t0 = time.perf_counter()
    folder = root / f"screen{seed}"
    if not (folder / "truth.csv").is_file():  # reuse a screen simulated by an earlier run
        simulate_screen(folder, preset=args.preset, seed=seed, progress=False, **sim_options(args))
    manifest = build_manifest(folder / "images", platemap=folder / "platemap.csv", progress=False)
    truth = pd.read_csv(folder / "truth.csv")
    truth = truth[truth["role"] == "treatment"]
    if args.features == "convae":
        profiles, t_train = convae_profiles(manifest, root / f"work{seed}", args=args, seed=seed)
    elif args.features == "published":
        out = root / f"work{seed}" / f"embed_{args.weights.stem}_{args.convae_features}"
        profiles, t_train = embed_profiles(manifest, args.weights, out, args=args), 0.0
    else:
        profiles, t_train = classical_profiles(manifest), 0.0
    cfg = TemporalConfig.model_validate(
        {"progress": False, "normalization": {"method": args.normalization}}
    )
    growth_csv = folder / "confluence_measured.csv"
    if growth_csv.is_file():
        growth = pd.read_csv(growth_csv, dtype={"plate": str, "well": str})
    else:
        growth = growth_from_manifest(manifest, cfg, progress=False)
        growth.to_csv(growth_csv, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = analyse(profiles, config=cfg, growth=growth)
        feat_only = analyse(profiles, config=cfg.model_copy(update={"use_growth": False}))
    ann = res.annotations[res.annotations["role"] == "treatment"]
    fo = feat_only.annotations[feat_only.annotations["role"] == "treatment"]
    keyed = ann.merge(
        truth[["cell_line", "drug", "concentration_um", "morphology_only", "effect"]],
        on=["cell_line", "drug", "concentration_um"],
        suffixes=("", "_truth"),
    )
    morph = keyed[keyed["morphology_only"].astype(bool)]
    inert = keyed[(keyed["effect_truth"] == "no_effect") & ~keyed["morphology_only"].astype(bool)]
    rel_morph = morph["max_relative_distance"].astype(float)
    rel_inert = inert["max_relative_distance"].astype(float)
    truth_e = truth[["cell_line", "drug", "concentration_um", "effect"]]
    return {
        "seed": seed,
        **detection_auc(fo, truth),
        "n_units": len(ann),
        "k": len(res.centroids),
        "combined": score(ann, truth_e, "effect"),
        "growth_only": score(ann, truth_e, "growth_effect"),
        "features_only": score(fo, truth_e, "effect"),
        "morphology_only_units": len(morph),
        "morphology_detected": int(morph["morphology_change"].sum()),
        "morphology_false_flags": f"{int(inert['morphology_change'].sum())}/{len(inert)}",
        "distance_effect": cfg.annotation.distance_effect,
        "morphology_rel_distance_median": round(float(rel_morph.median()), 3),
        "morphology_rel_distance_min": round(float(rel_morph.min()), 3),
        "inert_rel_distance_max": round(float(rel_inert.max()), 3),
        "morphology_above_inert_max": int((rel_morph > rel_inert.max()).sum()),
        "seconds": round(time.perf_counter() - t0, 1),
        "train_seconds": round(t_train, 1),
    }


def sim_options(args: argparse.Namespace) -> dict[str, float]:
    """``--sim KEY=VALUE`` pairs as simulator overrides (numbers)."""
    out = {}
    for item in getattr(args, "sim", None) or []:
        key, _, value = item.partition("=")
        out[key] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--features", choices=["classical", "convae", "published"], default="published"
    )
    parser.add_argument(
        "--weights", type=Path, default=PUBLISHED, help="ConvAE weights for --features published"
    )
    parser.add_argument("--convae-features", default="stats", choices=["stats", "pooled", "latent"])
    parser.add_argument(
        "--normalization", default="mad_robustize", choices=["mad_robustize", "standardize", "none"]
    )
    parser.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="simulator option, e.g. cell_size=1.35 (repeatable)",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep screens and models here; work<SEED>/train/model.pt is reused",
    )
    parser.add_argument("--image-size", type=int, default=128, help="model input side (px)")
    parser.add_argument("--crop-size", type=int, default=256, help="centre crop of the frame")
    parser.add_argument("--max-images", type=int, default=None, help="training images cap")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--views",
        type=int,
        choices=[0, 1, 2],
        default=0,
        help="0: reference multi-crop; 1: whole frame; 2: whole + one 0.5-0.75",
    )
    parser.add_argument("--view-steps", choices=["separate", "joint"], default="separate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        rows = [run_seed(s, args, root) for s in args.seeds]
    for r in rows:
        print(
            f"seed {r['seed']}: n={r['n_units']} k={r['k']} auc_effect={r['auc_effect']} "
            f"auc_visible={r['auc_visible']} combined={r['combined']} "
            f"growth_only={r['growth_only']} features_only={r['features_only']} "
            f"morphology-only detected {r['morphology_detected']}/{r['morphology_only_units']} "
            f"(false flags {r['morphology_false_flags']}) [{r['seconds']} s, "
            f"train {r['train_seconds']} s]; max_relative_distance: morphology-only median "
            f"{r['morphology_rel_distance_median']} min {r['morphology_rel_distance_min']}, "
            f"inert max {r['inert_rel_distance_max']} (threshold {r['distance_effect']}); "
            f"morphology-only above the inert max: {r['morphology_above_inert_max']}"
        )
    worst = min(rows, key=lambda r: r["combined"]["accuracy"])  # type: ignore[index]
    summary = {
        "features": args.features,
        "preset": args.preset,
        "seeds": args.seeds,
        "accuracy": min(r["combined"]["accuracy"] for r in rows),  # type: ignore[index]
        "macro_f1": min(r["combined"]["macro_f1"] for r in rows),  # type: ignore[index]
        "baseline_accuracy": min(r["growth_only"]["accuracy"] for r in rows),  # type: ignore[index]
        "baseline_macro_f1": min(r["growth_only"]["macro_f1"] for r in rows),  # type: ignore[index]
        "features_only_accuracy": min(r["features_only"]["accuracy"] for r in rows),  # type: ignore[index]
        "auc_effect": min(float(r["auc_effect"]) for r in rows),  # type: ignore[arg-type]
        "auc_visible": min(float(r["auc_visible"]) for r in rows),  # type: ignore[arg-type]
        "combined_above_growth_every_seed": all(
            r["combined"]["accuracy"] > r["growth_only"]["accuracy"]  # type: ignore[index]
            for r in rows
        ),
        "sim": args.sim,
        "convae_features": args.convae_features,
        "normalization": args.normalization,
        "ratio_vs_growth_only": round(
            float(np.mean([r["combined"]["accuracy"] for r in rows]))  # type: ignore[index]
            / float(np.mean([r["growth_only"]["accuracy"] for r in rows])),  # type: ignore[index]
            4,
        ),
        "morphology_detected": sum(int(r["morphology_detected"]) for r in rows),  # type: ignore[call-overload]
        "morphology_only_units": sum(int(r["morphology_only_units"]) for r in rows),  # type: ignore[call-overload]
        "worst_seed": worst["seed"],
        "per_seed": [
            {
                k: r[k]
                for k in (
                    "seed",
                    "auc_effect",
                    "auc_visible",
                    "combined",
                    "growth_only",
                    "features_only",
                    "morphology_detected",
                    "morphology_only_units",
                    "seconds",
                )
            }
            for r in rows
        ],
        "recipe": {
            k: getattr(args, k)
            for k in (
                "epochs",
                "image_size",
                "crop_size",
                "max_images",
                "batch_size",
                "views",
                "view_steps",
            )
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
