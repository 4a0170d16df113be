"""End-to-end extraction throughput: image files on disk -> features on disk.

Compares ``phenolapse.embedding.embed_manifest`` (parallel decoding, batching, channels-last,
mixed precision, chunked Zarr writes) with a reference-style loop measured in the same run (one
image at a time: read, antialiased resize, fp32 encode, append, save). Prints one JSON line::

    {"images_per_s": ..., "baseline_images_per_s": ..., "speedup": ..., "device": ...,
     "stats_images_per_s": ..., "stats_vs_latent": ...,
     "cosine_min_vs_fp32": ..., "peak_rss_mb": {"<n>": ..., "<4n>": ...}, ...}

``peak_rss_mb`` is the peak resident memory of an embedding run (main process + decoding
workers) for two numbers of images, measured in fresh processes: it must not grow with the
number of images. Images are random phase-contrast-like textures written as 256x256 JPEGs into a
temporary folder; the published weights are used when ``../shared/data`` is present. The timed
run takes the flattened latent, which the baseline also computes; the default ``stats`` features
are timed on the same images too (``stats_vs_latent``: their speed relative to the latent run).

Usage: ``python benchmarks/embed_throughput.py [--n-images 512] [--device auto]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from phenolapse.data.imageio import PreprocessConfig
from phenolapse.data.manifest import build_manifest
from phenolapse.embedding import EmbedConfig, embed_manifest, read_features
from phenolapse.models.convae import ConvAE, load_convae, save_convae

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / ".." / "shared" / "data" / "pheno-ml" / "trained_model.torch"
ROWS = "ABCDEFGHIJKLMNOP"


def write_images(folder: Path, n: int, *, size: int = 256, seed: int = 0) -> None:
    """``n`` JPEG textures (blurred noise + bright blobs) with Incucyte-style names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        well = f"{ROWS[(i // 24) % 16]}{i % 24 + 1}"
        field = i // 384 + 1
        img = rng.normal(120, 18, (size, size))
        for _ in range(12):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(4, 12)
            img += 60 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            folder / f"BENCH_Phase_{well}_{field}_00d00h00m.jpg", quality=90
        )


def weights_file(tmp: Path) -> Path:
    """The published weights if present, else a seeded random ConvAE."""
    if PUBLISHED.is_file():
        return PUBLISHED.resolve()
    torch.manual_seed(0)
    return save_convae(ConvAE(), tmp / "random_convae.pt")


def baseline(paths: list[str], weights: Path, out: Path, device: torch.device) -> np.ndarray:
    """Reference style: one image at a time, fp32, NCHW; features saved at the end."""
    model = load_convae(weights).to(device).eval()
    feats = []
    with torch.no_grad():
        for p in paths:
            img = np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0
            x = torch.from_numpy(img)[None, None].to(device)
            x = F.interpolate(x, size=(128, 128), mode="bilinear", antialias=True)
            feats.append(model.encoder(x).flatten().cpu().numpy())
    arr = np.stack(feats)
    np.save(out, arr)
    return arr


def config_for(args: argparse.Namespace, *, features: str = "latent") -> EmbedConfig:
    """The embedding settings; ``latent`` features compare value for value with the baseline."""
    return EmbedConfig(
        convae_features=features,  # type: ignore[arg-type]
        preprocess=PreprocessConfig(crop_size=256, image_size=128),
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        precision=args.precision,
        profiles=False,
        progress=False,
        chunk_rows=args.chunk_rows,
    )


def memory_probe(args: argparse.Namespace) -> None:
    """Child process: embed ``args.probe`` images, print peak RSS (MiB) of self and children."""
    tmp = Path(args.workdir)
    manifest = build_manifest(tmp / f"probe_{args.probe}", progress=False)
    embed_manifest(
        manifest,
        weights=Path(args.weights),
        out=tmp / f"probe_out_{args.probe}",
        config=config_for(args),
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"self_mb": own, "children_mb": kids}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--chunk-rows", type=int, default=1024)
    parser.add_argument("--memory-sizes", default="256,1024", help="two image counts")
    parser.add_argument("--probe", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        memory_probe(args)
        return

    with tempfile.TemporaryDirectory(prefix="phenolapse_bench_") as name:
        tmp = Path(name)
        weights = weights_file(tmp)
        images = tmp / "images"
        write_images(images, args.n_images)
        manifest = build_manifest(images, progress=False)
        paths = manifest["image_path"].tolist()
        cfg = config_for(args)
        dev = torch.device(
            "cuda"
            if args.device == "auto" and torch.cuda.is_available()
            else ("cpu" if args.device == "auto" else args.device)
        )

        # warm-up (imports, allocator, kernels) on a few images, outside the timings
        embed_manifest(manifest.iloc[:8], weights=weights, out=tmp / "warm", config=cfg)
        baseline(paths[:8], weights, tmp / "warm.npy", dev)

        t0 = time.perf_counter()
        ref = baseline(paths, weights, tmp / "baseline.npy", dev)
        base_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store = embed_manifest(manifest, weights=weights, out=tmp / "ours", config=cfg)
        ours_s = time.perf_counter() - t0
        stats_cfg = config_for(args, features="stats")  # the default features
        embed_manifest(manifest.iloc[:8], weights=weights, out=tmp / "warm_stats", config=stats_cfg)
        t0 = time.perf_counter()
        embed_manifest(manifest, weights=weights, out=tmp / "ours_stats", config=stats_cfg)
        stats_s = time.perf_counter() - t0
        meta, feats = read_features(store)
        order = pd.Index(paths).get_indexer(meta["image_path"])
        ref = ref[order]
        cos = np.sum(feats * ref, 1) / (np.linalg.norm(feats, axis=1) * np.linalg.norm(ref, axis=1))

        from phenolapse.embedding.extract import describe_runtime

        runtime = describe_runtime(cfg)
        peak: dict[str, float] = {}
        for n in [int(s) for s in args.memory_sizes.split(",")]:
            write_images(tmp / f"probe_{n}", n, seed=1)
            cmd = [
                sys.executable,
                __file__,
                "--probe",
                str(n),
                "--workdir",
                str(tmp),
                "--weights",
                str(weights),
                "--device",
                args.device,
                "--batch-size",
                str(args.batch_size),
                "--precision",
                args.precision,
                "--chunk-rows",
                str(args.chunk_rows),
            ]
            if args.num_workers is not None:
                cmd += ["--num-workers", str(args.num_workers)]
            res = subprocess.run(
                cmd, capture_output=True, text=True, check=True, env=os.environ.copy()
            )
            probe = json.loads(res.stdout.strip().splitlines()[-1])
            peak[str(n)] = round(probe["self_mb"] + probe["children_mb"], 1)

        result = {
            "images_per_s": round(len(paths) / ours_s, 1),
            "baseline_images_per_s": round(len(paths) / base_s, 1),
            "speedup": round(base_s / ours_s, 2),
            "stats_images_per_s": round(len(paths) / stats_s, 1),
            "stats_vs_latent": round(ours_s / stats_s, 3),
            "device": torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else f"cpu x{os.cpu_count()}",
            "cosine_min_vs_fp32": round(float(cos.min()), 6),
            "n_images": len(paths),
            "precision": runtime["precision"],
            "channels_last": runtime["channels_last"],
            "num_workers": runtime["num_workers"],
            "batch_size": args.batch_size,
            "weights": "published" if weights == PUBLISHED.resolve() else "random",
            "peak_rss_mb": peak,
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
