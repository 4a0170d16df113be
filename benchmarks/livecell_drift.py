"""Does an extractor see real cells change over time? LIVECell SH-SY5Y, per field.

Embeds the LIVECell time-lapse images (two untreated wells, B10 and C10, four fields each, every
4 h for 3.5 days; the cells grow from sparse to confluent) with each given weights file (any
file ``phenolapse train`` writes, or the published ConvAE) and, as the baseline in the same run,
the random-init twin of each trained encoder. Per field: the distance of each time point's
features to the field's first time point (features z-scored over the field's series, so every
feature counts alike) and its Spearman correlation with time. A good extractor gives a distance
that rises steadily as the cells grow: Spearman near 1 on every field.

Usage::

    python benchmarks/livecell_drift.py --weights RUN/model.pt [--weights OTHER.pt] \\
        [--image-size 64] [--mode center]

The last line printed is one JSON object: per weights file and its twin, the Spearman per field
and their minimum.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from phenolapse.data import PreprocessConfig, build_manifest
from phenolapse.data.imageio import load_for_model
from phenolapse.models.base import Extractor, load_extractor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "livecell-shsy5y"


def field_spearman(features: np.ndarray, meta: pd.DataFrame) -> dict[str, float]:
    """Spearman of (distance to the first time point, time) per well and field.

    A field's profile at a time point is the mean of its tiles' features (as the pipeline's
    well profiles are).
    """
    out = {}
    for (well, field), g in meta.groupby(["well", "field"], sort=True):
        # the field's profile per time point: the mean over its tiles
        frame = pd.DataFrame(features[g.index.to_numpy()].astype(np.float64))
        frame["time_h"] = g["time_h"].to_numpy()
        prof = frame.groupby("time_h", sort=True).mean()
        x = prof.to_numpy()
        times = prof.index.to_numpy()
        sd = x.std(axis=0)
        keep = sd > 1e-12
        z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
        d = np.linalg.norm(z - z[0], axis=1)
        out[f"{well}_{field}"] = round(float(spearmanr(times, d).statistic), 3)
    return out


def embed(extractor: Extractor, images: torch.Tensor) -> np.ndarray:
    """Features of ``images`` in batches of 64."""
    with torch.no_grad():
        return torch.cat(
            [extractor(images[i:i + 64]) for i in range(0, len(images), 64)]
        ).numpy()


def twin_of(path: Path, extractor: Extractor) -> Extractor | None:
    """The random-init twin of a trained encoder (None for weights of unknown seed)."""
    from phenolapse.comparison.extractors import build_extractor, random_twin_spec

    spec = random_twin_spec(path)
    if spec == "random-convae" and "config" not in torch.load(path, weights_only=True):
        return None  # published weights: no training seed to draw the twin from
    twin = build_extractor(spec, input_size=extractor.input_size,
                           convae_features=getattr(extractor, "features", "stats"))
    return twin


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Embed, measure and print the JSON summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--weights", type=Path, action="append", required=True)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--crop-size", type=int, default=512)
    ap.add_argument("--mode", default="center", choices=["center", "full"])
    ap.add_argument("--convae-features", default="stats", choices=["latent", "pooled", "stats"])
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"error: {args.data}: LIVECell folder not found")
    manifest = build_manifest(args.data, progress=False).reset_index(drop=True)
    pre = PreprocessConfig(crop_size=args.crop_size, image_size=args.image_size, mode=args.mode)
    images = torch.as_tensor(
        np.concatenate([load_for_model(p, pre) for p in manifest["image_path"]])
    )
    summary: dict[str, object] = {"n_images": len(manifest), "image_size": args.image_size}
    for path in args.weights:
        ext = load_extractor(path, input_size=args.image_size, features=args.convae_features)
        rows = {"trained": field_spearman(embed(ext, images), manifest)}
        twin = twin_of(path, ext)
        if twin is not None:
            rows["random_init"] = field_spearman(embed(twin, images), manifest)
        for key, per_field in rows.items():
            print(f"{path} {key}: min {min(per_field.values()):.3f} {per_field}")
        summary[str(path)] = {
            key: {"per_field": v, "min": min(v.values())} for key, v in rows.items()
        }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
