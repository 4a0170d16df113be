"""Walk-through on real LIVECell SH-SY5Y time-lapse images (one cell line, untreated).

Steps, all through the public API:

1. ``build_manifest`` on the image folder (no plate map: every well is ``role=unknown``).
2. ``train`` a ConvAE on those images with a CPU-sized recipe (tile preprocessing, 64 px input,
   two views per frame, a few epochs).
3. ``embed_manifest`` with the published weights and with the trained model, each in ``center``
   and ``tile`` mode, giving well-level profiles per time point.
4. ``image_confluence`` / ``well_confluence`` from :mod:`phenolapse.temporal.growth`.
5. Per well and per embedding: euclidean distance of each time point's profile to the well's own
   first time point, and its Spearman correlation with time.

Writes ``OUT/walkthrough.csv`` (one row per well, time point and embedding), ``OUT/confluence.csv``,
``OUT/walkthrough.png`` and prints one JSON line with the Spearman values and the confluence at
0 h and 72 h per well.

Usage::

    python benchmarks/livecell_walkthrough.py --out /tmp/livecell_walkthrough
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from phenolapse.data import PreprocessConfig, build_manifest
from phenolapse.embedding import EmbedConfig, embed_manifest, read_profiles
from phenolapse.io_utils import atomic_path
from phenolapse.temporal.growth import image_confluence, well_confluence
from phenolapse.training import CropSpec, TrainConfig, train

MODES: tuple[Literal["center", "tile"], ...] = ("center", "tile")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "livecell-shsy5y"
DEFAULT_WEIGHTS = ROOT / ".." / "shared" / "data" / "pheno-ml" / "trained_model.torch"


def train_config(*, epochs: int, image_size: int, seed: int) -> TrainConfig:
    """CPU-sized training recipe: 256 px tiles resized to ``image_size``, two views per tile."""
    return TrainConfig(
        preprocess=PreprocessConfig(crop_size=256, image_size=image_size, mode="tile"),
        crops=[CropSpec(n=1, scale=(1.0, 1.0)), CropSpec(n=1, scale=(0.5, 0.75))],
        epochs=epochs,
        lr_decay_epoch=max(epochs - 1, 1),
        batch_size=32,
        val_fraction=0.0,
        seed=seed,
        device="cpu",
        num_workers=0,
        progress=False,
    )


def distance_to_first(profiles: pd.DataFrame) -> pd.DataFrame:
    """Euclidean distance of every well's profile to the same well's first time point."""
    feats = [c for c in profiles.columns if not c.startswith("Metadata_")]
    rows = []
    for well, grp in profiles.groupby("Metadata_well", sort=True):
        grp = grp.sort_values("Metadata_time_h")
        x = grp[feats].to_numpy(dtype=np.float64)
        d = np.linalg.norm(x - x[0], axis=1)
        rows.append(
            pd.DataFrame({"well": well, "time_h": grp["Metadata_time_h"].to_numpy(), "distance": d})
        )
    return pd.concat(rows, ignore_index=True)


def run(data: Path, weights: Path, out: Path, *, epochs: int, image_size: int) -> dict[str, object]:
    """Run every step and write the tables and the figure; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    manifest = build_manifest(data, progress=False)
    timings["ingest_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cfg = train_config(epochs=epochs, image_size=image_size, seed=0)
    result = train(manifest, out=out / "train", config=cfg, resume=True)
    timings["train_s"] = time.perf_counter() - t0
    history = result.history

    models = {"published": weights, "trained": result.model_path}
    preprocess = {
        (model, mode): PreprocessConfig(
            crop_size=256, image_size=128 if model == "published" else image_size, mode=mode
        )
        for model in models
        for mode in MODES
    }

    tables = []
    for model, wpath in models.items():
        for mode in MODES:
            t0 = time.perf_counter()
            ecfg = EmbedConfig(  # the reference's flattened latent: the numbers of the walkthrough
                preprocess=preprocess[model, mode],
                device="cpu",
                num_workers=0,
                progress=False,
                convae_features="latent",
            )
            store = embed_manifest(
                manifest, weights=wpath, out=out / f"embed_{model}_{mode}", config=ecfg
            )
            timings[f"embed_{model}_{mode}_s"] = time.perf_counter() - t0
            dist = distance_to_first(read_profiles(store.parent / "profiles.parquet"))
            dist["model"] = model
            dist["mode"] = mode
            tables.append(dist)
    dist_all = pd.concat(tables, ignore_index=True)

    t0 = time.perf_counter()
    growth = well_confluence(image_confluence(manifest, progress=False))
    timings["confluence_s"] = time.perf_counter() - t0
    conf = growth[["well", "time_h", "confluence"]]
    with atomic_path(out / "confluence.csv") as tmp:
        conf.to_csv(tmp, index=False)

    table = dist_all.merge(conf, on=["well", "time_h"], how="left")
    table = table[["model", "mode", "well", "time_h", "confluence", "distance"]]
    with atomic_path(out / "walkthrough.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")

    spearman: dict[str, float] = {}
    for key, grp in table.groupby(["model", "mode", "well"], sort=True):
        rho = spearmanr(grp["time_h"], grp["distance"]).statistic
        spearman["/".join(map(str, key))] = round(float(rho), 3)
    conf_rho = {
        w: round(float(spearmanr(g["time_h"], g["confluence"]).statistic), 3)
        for w, g in conf.groupby("well")
    }
    conf_at = {
        w: {
            "0h": round(float(g.loc[g["time_h"] == 0, "confluence"].iloc[0]), 3),
            "72h": round(float(g.loc[g["time_h"] == 72, "confluence"].iloc[0]), 3),
        }
        for w, g in conf.groupby("well")
    }
    replicate_r: dict[str, float] = {}
    for key, grp in table.groupby(["model", "mode"], sort=True):
        piv = grp.pivot(index="time_h", columns="well", values="distance").dropna()
        r = np.corrcoef(piv.to_numpy(dtype=np.float64).T)[0, 1]
        replicate_r["/".join(map(str, key))] = round(float(r), 3)

    plot(table, conf, out / "walkthrough.png")
    summary: dict[str, object] = {
        "n_images": len(manifest),
        "wells": sorted(manifest["well"].unique().tolist()),
        "train": {
            "epochs": epochs,
            "image_size": image_size,
            "train_loss_first": round(float(history["train_loss"].iloc[1]), 5),
            "train_loss_last": round(float(history["train_loss"].iloc[-1]), 5),
        },
        "spearman_distance_time": spearman,
        "spearman_confluence_time": conf_rho,
        "replicate_pearson_distance": replicate_r,
        "confluence": conf_at,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    return summary


def plot(table: pd.DataFrame, conf: pd.DataFrame, path: Path) -> None:
    """Confluence and distance-to-first-time-point curves per well (published vs trained)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    colors = {"B10": "tab:blue", "C10": "tab:orange"}
    for cwell, cg in conf.groupby("well"):
        axes[0].plot(
            cg["time_h"],
            cg["confluence"],
            "o-",
            ms=3,
            color=colors.get(str(cwell)),
            label=str(cwell),
        )
    axes[0].set(title="Confluence (texture, plate Otsu)", xlabel="time (h)", ylabel="confluence")
    axes[0].legend()
    for ax, model in zip(axes[1:], ("published", "trained"), strict=True):
        sub = table[table["model"] == model]
        for (pmode, well), g in sub.groupby(["mode", "well"]):
            d = g["distance"] / max(float(sub[sub["mode"] == pmode]["distance"].max()), 1e-12)
            ax.plot(
                g["time_h"],
                d,
                "o-" if pmode == "center" else "s--",
                ms=3,
                color=colors.get(str(well)),
                alpha=0.9 if pmode == "center" else 0.6,
                label=f"{well} {pmode}",
            )
        ax.set(
            title=f"Distance to 0 h ({model} weights)",
            xlabel="time (h)",
            ylabel="euclidean distance / max",
        )
        ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def main() -> None:
    """Parse arguments, run the walk-through and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LIVECell image folder.")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="Published weights.")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument("--epochs", type=int, default=3, help="Training epochs (3).")
    parser.add_argument("--image-size", type=int, default=64, help="Trained model input (64).")
    args = parser.parse_args()
    for p, what in ((args.data, "--data folder"), (args.weights, "--weights file")):
        if not p.exists():
            parser.error(f"{what} not found: {p}")
    summary = run(args.data, args.weights, args.out, epochs=args.epochs, image_size=args.image_size)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
