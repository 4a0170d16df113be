"""Mechanism-of-action classification on real BBBC021 single-cell crops (field-grouped 5-fold CV).

Per fold, on the training fields only: per-channel intensity percentiles (the scaling, after a
``log1p`` of the raw counts by default: fluorescence spans decades), a 3-channel ConvAE trained
self-supervised (BCE reconstruction), and a lens trained jointly with a linear head
(``BCE(L(x), x) + lambda * CE(head(F(L(x))), y)``). The same classifier, a standardised logistic
regression whose penalty ``C`` is chosen by a field-grouped cross-validation inside the training
fields, is then fitted on four feature sets and scored on the held-out fields:

- ``balanced_accuracy``: the trained encoder's activations, mean- and max-pooled per channel;
- ``balanced_accuracy_lens``: the same features of the lens output ``F(L(x))``;
- ``random_init_balanced_accuracy``: the same encoder, untrained (random init, same seed);
- ``baseline_balanced_accuracy``: classical intensity/texture features
  (:mod:`phenolapse.models.classical`).

With ``--objective simclr|vicreg|dino`` the encoder (``--encoder resnet``, a small ResNet, or
``convae``) is trained on two views of each training crop instead
(:func:`phenolapse.training.ssl.fit_two_view`) and compared with its random-init twin of the same
seed; the lens needs the ConvAE and is left out for the ResNet. ``--seeds 0 1 2`` repeats the
whole cross-validation per seed (folds and training) and prints the paired differences.

Balanced accuracy is computed on the pooled out-of-fold predictions. The last printed line is one
JSON object with the four numbers (and timings). Works on any ``.npz`` with ``images`` (N, H, W, C)
integer or float, ``moa`` labels and ``field`` groups.

Usage: ``python benchmarks/bbbc021_moa.py --data ../shared/data/bbbc021-mcf7/bbbc021_mcf7_dev.npz``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phenolapse.lens.model import LinearHead, batched, extract_features, freeze, train_lens
from phenolapse.models.classical import classical_features_batch
from phenolapse.models.convae import ConvAE

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbbc021-mcf7"


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images (N, H, W, C), labels, groups)`` from an .npz of the BBBC021 layout."""
    if not path.is_file():
        sys.exit(f"error: {path}: data file not found (give --data PATH.npz)")
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in ("images", "moa", "field") if k not in d.files]
        if missing:
            sys.exit(f"error: {path}: lacks arrays {missing} (needs images, moa, field)")
        images, moa, field = d["images"], d["moa"].astype(str), d["field"].astype(str)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or not len(images) == len(moa) == len(field):
        sys.exit(
            f"error: {path}: images {images.shape}, moa {moa.shape}, field {field.shape} differ"
        )
    if len(np.unique(moa)) < 2:
        sys.exit(f"error: {path}: a single moa class ({moa[0]!r}); nothing to classify")
    return images, moa, field


C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def intensities(images: np.ndarray, transform: str) -> np.ndarray:
    """Raw counts as float32, through ``log1p`` when ``transform`` is ``log``."""
    out = images.astype(np.float32)
    return np.log1p(np.maximum(out, 0.0)) if transform == "log" else out


def scale(images: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per-channel fixed scaling to [0, 1] (percentiles of the training fold, never per image)."""
    out = (images.astype(np.float32) - low) / np.maximum(high - low, 1e-6)
    return np.clip(out, 0.0, 1.0)


def to_model(images01: np.ndarray, size: int) -> np.ndarray:
    """Channels-first model input of side ``size``: central square crop, antialiased resize."""
    _, h, w, _ = images01.shape
    side = min(h, w) // 4 * 4
    top, left = (h - side) // 2, (w - side) // 2
    x = torch.as_tensor(images01[:, top : top + side, left : left + side]).permute(0, 3, 1, 2)
    if side != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x.clamp(0, 1).contiguous().numpy()


def train_autoencoder(x: np.ndarray, *, epochs: int, seed: int, batch_size: int = 32) -> ConvAE:
    """Self-supervised ConvAE: BCE reconstruction, Adam 1e-3, random flips."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ConvAE(in_channels=x.shape[1]).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.as_tensor(x)
    for _ in range(epochs):
        order = rng.permutation(len(xt))
        for i in range(0, len(order), batch_size):
            b = xt[torch.as_tensor(order[i : i + batch_size])]
            if rng.random() < 0.5:
                b = b.flip(3)
            if rng.random() < 0.5:
                b = b.flip(2)
            loss = F.binary_cross_entropy(model(b), b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return freeze(model)


def pooled(
    model: ConvAE, x: np.ndarray, *, orientations: int, lens: ConvAE | None = None
) -> np.ndarray:
    """Mean- and max-pooled encoder activations (456 numbers), of ``x`` or of ``L(x)``.

    ``orientations=8`` averages them over the crop's rotations and mirror images.
    """

    def fn(b: torch.Tensor) -> torch.Tensor:
        if lens is not None:
            b = lens(b)
        return extract_features(model, b, mode="pooled", orientations=orientations)

    return batched(fn, x, batch_size=128)


def resnet_features(model: torch.nn.Module, x: np.ndarray, *, orientations: int) -> np.ndarray:
    """The ResNet encoder's per-stage means, averaged over 8 orientations when asked."""

    def fn(b: torch.Tensor) -> torch.Tensor:
        if orientations == 1:
            out: torch.Tensor = model(b)
            return out
        views = [torch.rot90(v, k, dims=(2, 3)) for v in (b, b.flip(3)) for k in range(4)]
        return torch.stack([model(v) for v in views]).mean(0)

    with torch.no_grad():
        return batched(fn, x, batch_size=128)


def two_view_encoder(x: np.ndarray, args: argparse.Namespace, seed: int, *, train: bool
                     ) -> tuple[torch.nn.Module, object]:
    """The two-view-trained encoder (or its random-init twin) and its feature function."""
    from phenolapse.training.config import TrainConfig
    from phenolapse.training.ssl import build_encoder, fit_two_view

    cfg = TrainConfig.model_validate({
        "objective": args.objective, "encoder": args.encoder, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "seed": seed,
        "resnet_widths": args.widths, "view_fraction": args.view_fraction,
        "preprocess": {"image_size": args.image_size}, "progress": False,
        **parse_overrides(args.set),
    })
    model = (fit_two_view(torch.as_tensor(x), cfg) if train
             else build_encoder(cfg, x.shape[1])[0].eval())
    if args.encoder == "resnet":
        return model, lambda m, data: resnet_features(m, data, orientations=args.orientations)
    return freeze(model), lambda m, data: pooled(m, data, orientations=args.orientations)


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs (VALUE read as YAML) for :class:`TrainConfig` fields."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"error: --set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def lens_features(
    ae: ConvAE, x: np.ndarray, y: np.ndarray, tr: np.ndarray, n_classes: int,
    trained: np.ndarray, args: argparse.Namespace,
) -> tuple[np.ndarray, object]:
    """Features of the lens output ``F(L(x))``, the lens trained on the training crops."""
    f_tr = trained[tr]
    head = LinearHead(f_tr.shape[1], n_classes, mean=f_tr.mean(0), std=f_tr.std(0))
    lens, _, hist = train_lens(
        ae, x[tr], y[tr], n_classes=n_classes, coef=args.coef, head=head,
        feature_mode="pooled", orientations=args.orientations, epochs=args.lens_epochs,
        seed=args.seed, progress=False,
    )
    return pooled(ae, x, orientations=args.orientations, lens=lens), hist


def classifier(c: float | None, groups: np.ndarray, *, seed: int) -> object:
    """The one classifier every feature set gets: standardised logistic regression.

    ``c`` None picks ``C`` from :data:`C_GRID` by balanced accuracy in a field-grouped
    cross-validation over the training fields ``groups`` only (pass them to ``fit``).
    """
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=c or 1.0, max_iter=5000))
    if c is not None:
        return pipe
    n_inner = min(4, len(np.unique(groups)))
    return GridSearchCV(
        pipe,
        {"logisticregression__C": list(C_GRID)},
        cv=StratifiedGroupKFold(n_splits=n_inner, shuffle=True, random_state=seed + 1),
        scoring="balanced_accuracy",
    )


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark; print per-fold progress and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "bbbc021_mcf7_dev.npz")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=32, help="model input side (÷4)")
    parser.add_argument("--epochs", type=int, default=3, help="autoencoder epochs per fold")
    parser.add_argument("--lens-epochs", type=int, default=1)
    parser.add_argument("--coef", type=float, default=1.0, help="lambda of the lens loss")
    parser.add_argument(
        "--C",
        type=float,
        default=None,
        help="fixed logistic-regression inverse penalty (default: chosen per fold by inner CV)",
    )
    parser.add_argument(
        "--intensity", choices=("log", "linear"), default="log", help="transform of raw counts"
    )
    parser.add_argument(
        "--orientations",
        type=int,
        choices=(1, 8),
        default=1,
        help="8: average encoder features over the crop's rotations and mirror images",
    )
    parser.add_argument("--percentiles", type=float, nargs=2, default=(0.1, 99.9))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="run the whole cross-validation once per seed; paired summary")
    parser.add_argument("--objective", default="reconstruction",
                        choices=["reconstruction", "simclr", "vicreg", "dino"])
    parser.add_argument("--encoder", default="convae", choices=["convae", "resnet"])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--view-fraction", type=float, default=0.75)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other training option, e.g. --set jitter=0 (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.seeds:
        runs = []
        for seed in args.seeds:
            rest = [a for a in (argv if argv is not None else sys.argv[1:])]
            i = rest.index("--seeds")
            j = i + 1
            while j < len(rest) and not rest[j].startswith("--"):
                j += 1
            runs.append(main(rest[:i] + rest[j:] + ["--seed", str(seed)]))
        keys = ("balanced_accuracy", "random_init_balanced_accuracy", "baseline_balanced_accuracy")
        summary: dict[str, object] = {
            "seeds": args.seeds, "objective": args.objective, "encoder": args.encoder,
            **{k: [r[k] for r in runs] for k in keys},
            "trained_minus_random": [round(float(r["trained_vs_random_init"]), 4) for r in runs],
            "trained_minus_baseline": [round(float(r["trained_vs_baseline"]), 4) for r in runs],
        }
        print(json.dumps(summary))
        return summary
    if args.image_size % 4:
        sys.exit(f"error: --image-size must be divisible by 4, got {args.image_size}")
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    images, moa, field = load_npz(args.data)
    classes, y = np.unique(moa, return_inverse=True)
    print(
        f"{args.data.name}: {len(y)} crops {images.shape[1:]}, classes {classes.tolist()}, "
        f"{len(np.unique(field))} fields",
        flush=True,
    )
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    names = ("trained", "lens", "random_init", "baseline")
    pred = {k: np.full(len(y), -1) for k in names}
    seconds = dict.fromkeys(names, 0.0)
    fold_scores: dict[str, list[float]] = {k: [] for k in names}
    counts = intensities(images, args.intensity)
    for fold, (tr, te) in enumerate(cv.split(images, y, groups=field)):
        if len(np.unique(y[tr])) < len(classes):
            sys.exit(f"error: fold {fold}: a class has no training fields; use fewer --folds")
        low = np.percentile(counts[tr], args.percentiles[0], axis=(0, 1, 2)).astype(np.float32)
        high = np.percentile(counts[tr], args.percentiles[1], axis=(0, 1, 2)).astype(np.float32)
        s01 = scale(counts, low, high)
        x = to_model(s01, args.image_size)
        feats: dict[str, np.ndarray] = {}
        t = time.perf_counter()
        feats["baseline"] = classical_features_batch(s01)
        seconds["baseline"] += time.perf_counter() - t
        if args.objective != "reconstruction":
            t = time.perf_counter()
            twin, fn = two_view_encoder(x[tr], args, args.seed, train=False)
            feats["random_init"] = fn(twin, x)  # type: ignore[operator]
            seconds["random_init"] += time.perf_counter() - t
            t = time.perf_counter()
            enc, fn = two_view_encoder(x[tr], args, args.seed, train=True)
            feats["trained"] = fn(enc, x)  # type: ignore[operator]
            seconds["trained"] += time.perf_counter() - t
            feats["lens"] = feats["trained"]  # no lens without the ConvAE decoder
            hist = None
        else:
            t = time.perf_counter()
            torch.manual_seed(args.seed)
            untrained = freeze(ConvAE(in_channels=x.shape[1]))
            feats["random_init"] = pooled(untrained, x, orientations=args.orientations)
            seconds["random_init"] += time.perf_counter() - t
            t = time.perf_counter()
            ae = train_autoencoder(x[tr], epochs=args.epochs, seed=args.seed)
            feats["trained"] = pooled(ae, x, orientations=args.orientations)
            seconds["trained"] += time.perf_counter() - t
            t = time.perf_counter()
            feats["lens"], hist = lens_features(ae, x, y, tr, len(classes), feats["trained"], args)
            seconds["lens"] += time.perf_counter() - t
        t = time.perf_counter()
        line = [f"fold {fold}: {len(te)} test crops"]
        for k in names:
            clf = classifier(args.C, field[tr], seed=args.seed)
            fit_kw = {} if args.C is not None else {"groups": field[tr]}
            clf.fit(feats[k][tr], y[tr], **fit_kw)  # type: ignore[attr-defined]
            pred[k][te] = clf.predict(feats[k][te])  # type: ignore[attr-defined]
            fold_scores[k].append(balanced_accuracy_score(y[te], pred[k][te]))
            chosen = getattr(clf, "best_params_", {}).get("logisticregression__C", args.C)
            line.append(f"{k} {fold_scores[k][-1]:.3f} (C {chosen:g})")
        lens_note = (
            f" (lens bce {hist.bce[-1]:.4f} ce {hist.ce[-1]:.3f})"  # type: ignore[attr-defined]
            if hist is not None else ""
        )
        print(", ".join(line) + lens_note, flush=True)
    scores = {k: float(balanced_accuracy_score(y, pred[k])) for k in names}
    for k in names:
        print(
            f"{k:12s} balanced accuracy {scores[k]:.4f} (folds {np.mean(fold_scores[k]):.3f} "
            f"± {np.std(fold_scores[k]):.3f}), {seconds[k]:.0f} s",
            flush=True,
        )
    result = {
        "balanced_accuracy": scores["trained"],
        "balanced_accuracy_lens": (
            scores["lens"] if args.objective == "reconstruction" else float("nan")
        ),
        "objective": args.objective,
        "encoder": args.encoder,
        "seed": args.seed,
        "random_init_balanced_accuracy": scores["random_init"],
        "baseline_balanced_accuracy": scores["baseline"],
        "trained_vs_baseline": scores["trained"] - scores["baseline"],
        "trained_vs_random_init": scores["trained"] - scores["random_init"],
        "image_size": args.image_size,
        "epochs": args.epochs,
        "lens_epochs": args.lens_epochs,
        "coef": args.coef,
        "intensity": args.intensity,
        "orientations": args.orientations,
        "C": "inner-cv" if args.C is None else args.C,
        "seconds": round(time.perf_counter() - t_start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
