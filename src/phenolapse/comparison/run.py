"""Compare feature extractors on the same wells: retrieval, clustering, classification, cost.

:func:`compare_profiles` scores already-computed profile sets; :func:`run_comparison` is the
driver behind ``phenolapse compare`` and the demo: it takes feature files and/or extractors (run
on a manifest), writes ``comparison.csv`` (long table ``extractor, task, metric, value``), its
Markdown rendering and per-group details. One figure per task is drawn from the result by
:mod:`phenolapse.report.comparison_figures` (``phenolapse compare`` and the pipeline do so).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.comparison.classification import classify_drugs
from phenolapse.comparison.clustering import CLUSTER_METRICS, cluster_drugs
from phenolapse.comparison.config import CompareConfig
from phenolapse.comparison.profiles import (
    Alignment,
    ProfileSet,
    align_profile_sets,
    load_profile_set,
)
from phenolapse.comparison.retrieval import replicate_distances, replicate_map
from phenolapse.comparison.selection import (
    TREATMENT_ROLE,
    normalize_features,
    task_rows,
    well_means,
)
from phenolapse.errors import ConfigError, FeatureTableError, ManifestError
from phenolapse.io_utils import atomic_write, write_csv, write_json

if TYPE_CHECKING:
    from phenolapse.comparison.extractors import ExtractorSpec
    from phenolapse.models.base import Extractor

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["extractor", "task", "metric", "value"]
TASKS = ("replicate_retrieval", "clustering", "classification", "cost")


@dataclass
class ComparisonResult:
    """What a comparison produced.

    Attributes
    ----------
    table
        Long table ``extractor, task, metric, value``.
    details
        Per-group tables: ``retrieval`` (mAP per cell line and drug), ``clustering`` (per cell
        line and minimum cluster size).
    dropped
        Rows of each extractor's table left out because other tables lacked them.
    n_profiles
        Profiles shared by every extractor.
    paths
        Files written (``table``, ``markdown``, ``details_*``, ``figure_*``); empty without ``out``.
    """

    table: pd.DataFrame
    details: dict[str, pd.DataFrame]
    dropped: dict[str, int]
    n_profiles: int
    paths: dict[str, Path] = field(default_factory=dict)


def _rows(extractor: str, task: str, values: Mapping[str, float]) -> list[dict[str, Any]]:
    return [
        {"extractor": extractor, "task": task, "metric": k, "value": float(v)}
        for k, v in values.items()
    ]


def _score_one(
    ps: ProfileSet, config: CompareConfig
) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    meta = ps.metadata
    rows = task_rows(
        meta, last_time_points=config.last_time_points,
        top_concentration_only=config.top_concentration_only, include_controls=True,
    )
    if len(rows) == 0:
        raise FeatureTableError(
            f"extractor {ps.name!r}: no treatment or negative-control profiles at the last "
            f"{config.last_time_points} time points; check Metadata_role in the profiles"
        )
    normed = normalize_features(meta, ps.features, method=config.normalize)
    out: list[dict[str, Any]] = []

    wmeta, wfeat = well_means(meta, normed, rows)
    retrieval: dict[str, float] = {}
    details = []
    for against in ("controls", "drugs"):
        res = replicate_map(
            wmeta, wfeat, against=against, distance=config.retrieval_distance,
            null_size=config.null_size, threshold=config.p_threshold, seed=config.seed,
        )
        retrieval[f"map_vs_{against}"] = res.mean_map
        retrieval[f"fraction_retrieved_vs_{against}"] = res.fraction_retrieved
        if not res.details.empty:
            details.append(res.details)
    _, wraw = well_means(meta, ps.features, rows)
    for metric, (med, ratio) in replicate_distances(
        wmeta, wraw, metrics=config.distance_metrics
    ).items():
        retrieval[f"median_replicate_distance_{metric}"] = med
        retrieval[f"replicate_distance_ratio_{metric}"] = ratio
    out += _rows(ps.name, "replicate_retrieval", retrieval)
    retrieval_details = pd.concat(details, ignore_index=True) if details else pd.DataFrame()
    retrieval_details.insert(0, "extractor", ps.name)

    treat = rows[(meta["Metadata_role"].to_numpy()[rows] == TREATMENT_ROLE)]
    clusters = cluster_drugs(
        meta.iloc[treat].reset_index(drop=True), normed[treat],
        min_cluster_sizes=config.min_cluster_sizes, method=config.embedding,
        n_neighbors=config.umap_n_neighbors, seed=config.seed,
    )
    clusters.insert(0, "extractor", ps.name)
    means = clusters.groupby("metric")["value"].mean() if not clusters.empty else pd.Series()
    out += _rows(
        ps.name, "clustering", {m: float(means.get(m, np.nan)) for m in CLUSTER_METRICS}
    )

    cls = classify_drugs(
        meta.iloc[rows].reset_index(drop=True), normed[rows], n_splits=config.n_splits,
        pca_components=config.pca_components, c=config.logreg_c, seed=config.seed,
    )
    out += _rows(ps.name, "classification", {k.replace("/", "_"): v for k, v in cls.items()})
    out += _rows(
        ps.name, "info",
        {"n_features": ps.features.shape[1], "n_profiles_used": len(rows),
         "n_wells_used": len(wmeta)},
    )
    return out, retrieval_details, clusters


def compare_profiles(
    sets: Sequence[ProfileSet], *, config: CompareConfig | None = None
) -> ComparisonResult:
    """Score every profile set on the rows they all share (aligned by plate, well, time point)."""
    config = config or CompareConfig()
    alignment: Alignment = align_profile_sets(list(sets), nan_policy=config.nan_policy)
    for name, n in alignment.dropped.items():
        if n:
            log.warning("%s: %d profile rows not shared by every extractor were left out", name, n)
    rows: list[dict[str, Any]] = []
    ret: list[pd.DataFrame] = []
    clu: list[pd.DataFrame] = []
    for ps in tqdm(alignment.sets, desc="comparing", disable=not config.progress):
        r, d_ret, d_clu = _score_one(ps, config)
        rows += r
        ret.append(d_ret)
        clu.append(d_clu)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return ComparisonResult(
        table=table,
        details={
            "retrieval": pd.concat(ret, ignore_index=True),
            "clustering": pd.concat(clu, ignore_index=True),
        },
        dropped=alignment.dropped,
        n_profiles=len(alignment.metadata),
    )


def to_markdown(table: pd.DataFrame, *, digits: int = 4) -> str:
    """Render the long table as Markdown: one row per (task, metric), one column per extractor."""
    extractors = list(dict.fromkeys(table["extractor"]))
    values = {
        (str(t), str(m), str(e)): float(v)
        for t, m, e, v in zip(table["task"], table["metric"], table["extractor"],
                              table["value"].astype(float), strict=True)
    }
    keys = list(dict.fromkeys(zip(table["task"].astype(str), table["metric"].astype(str),
                                  strict=True)))
    header = "| task | metric | " + " | ".join(extractors) + " |"
    lines = [header, "|" + "---|" * (len(extractors) + 2)]

    def fmt(v: float) -> str:
        if math.isnan(v):
            return "–"
        if v == int(v) and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.{digits}g}"

    for task, metric in keys:
        cells = [fmt(values.get((task, metric, e), float("nan"))) for e in extractors]
        lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _as_sets(features: Sequence[Any] | Mapping[str, Any] | None) -> list[ProfileSet]:
    if features is None:
        return []
    items: list[tuple[str | None, Any]]
    if isinstance(features, Mapping):
        items = list(features.items())
    else:
        items = []
        for f in features:
            if isinstance(f, tuple):
                items.append((f[0], f[1]))
            else:
                items.append((None, f))
    sets = []
    for name, obj in items:
        if isinstance(obj, ProfileSet):
            sets.append(obj)
        elif isinstance(obj, pd.DataFrame):
            from phenolapse.comparison.profiles import split_profiles

            sets.append(split_profiles(obj, name=name or f"extractor{len(sets)}"))
        else:
            sets.append(load_profile_set(Path(obj), name=name))
    return sets


def _embed_extractors(
    extractors: Sequence[str | ExtractorSpec | Extractor],
    manifest: pd.DataFrame | Path | str,
    out: Path,
    config: CompareConfig,
) -> tuple[list[ProfileSet], list[dict[str, Any]]]:
    from phenolapse.comparison.cost import measure_cost, sample_images
    from phenolapse.comparison.extractors import SIMPLE_KINDS, build_extractor, parse_extractor_spec
    from phenolapse.embedding import EmbedConfig, embed_manifest
    from phenolapse.embedding.extract import resolve_manifest
    from phenolapse.models.base import Extractor

    def build(item: str | ExtractorSpec) -> Extractor:
        spec = parse_extractor_spec(item) if isinstance(item, str) else item
        # ConvAE-family and classical extractors see the screen's own model input size.
        size = config.preprocess.image_size if spec.kind in SIMPLE_KINDS else None
        return build_extractor(
            spec,
            weights_dir=config.weights_dir,
            seed=config.seed,
            input_size=size,
            convae_features=config.convae_features,
        )

    built = [item if isinstance(item, Extractor) else build(item) for item in extractors]
    df = resolve_manifest(manifest)
    if "image_path" not in df.columns or df.empty:
        raise ManifestError("the manifest is empty or has no image_path column")
    sample = sample_images(df["image_path"].tolist(), config.cost_images, seed=config.seed)
    sets: list[ProfileSet] = []
    cost_rows: list[dict[str, Any]] = []
    for ext in built:
        pre = config.preprocess.model_copy(update={"image_size": int(ext.input_size)})
        embed_cfg = EmbedConfig.model_validate(
            {"preprocess": pre, "device": config.device, "progress": config.progress,
             "precision": "fp32"}
        )
        label = ext.name
        store = embed_manifest(df, extractor=ext, out=out / "features" / label, config=embed_cfg)
        sets.append(load_profile_set(store, name=label))
        if config.cost_images > 0:
            device = config.device if config.device != "auto" else (
                "cuda" if _cuda() else "cpu"
            )
            cost = measure_cost(ext, sample, preprocess=pre, device=device)
            cost_rows += _rows(
                label, "cost",
                {"seconds_per_1000_images": cost.seconds_per_1000_images,
                 "model_seconds_per_1000_images": cost.model_seconds_per_1000_images,
                 "n_images_timed": cost.n_images},
            )
    return sets, cost_rows


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run_comparison(
    *,
    out: str | Path,
    features: Sequence[Any] | Mapping[str, Any] | None = None,
    extractors: Sequence[Any] | None = None,
    manifest: pd.DataFrame | str | Path | None = None,
    config: CompareConfig | None = None,
) -> ComparisonResult:
    """Compare extractors on the same wells and write the tables to ``out``.

    The figures (``fig_<task>.png``) are drawn from the result by
    :func:`phenolapse.report.comparison_figures.write_comparison_figures`.

    Parameters
    ----------
    out
        Output folder: ``comparison.csv``, ``comparison.md``, ``retrieval_details.csv``,
        ``clustering_details.csv``, ``alignment.json``; extractors run here write their
        features under ``out/features/<name>/``.
    features
        Precomputed profiles: paths (profiles Parquet or ``features.zarr``; named after the file
        or its folder), ``(name, path)`` pairs, a ``{name: path}`` mapping, DataFrames or
        :class:`~phenolapse.comparison.profiles.ProfileSet` objects.
    extractors
        Extractors to run on ``manifest``: spec strings (``"random-convae"``,
        ``"resnet50-dino=/weights/dino_resnet50_pretrain.pth"``, see
        :mod:`phenolapse.comparison.extractors`) or :class:`~phenolapse.models.base.Extractor`
        objects. Their cost (seconds per 1,000 images) is measured on a fixed image sample.
    manifest
        Manifest (table or Parquet file) the extractors run on.
    config
        Comparison settings.
    """
    config = config or CompareConfig()
    out = Path(out)
    sets = _as_sets(features)
    cost_rows: list[dict[str, Any]] = []
    if extractors:
        if manifest is None:
            raise ConfigError("running extractors needs a manifest (--manifest)")
        more, cost_rows = _embed_extractors(list(extractors), manifest, out, config)
        sets += more
    if not sets:
        raise ConfigError("nothing to compare: give feature files and/or extractors")
    result = compare_profiles(sets, config=config)
    if cost_rows:
        result.table = pd.concat([result.table, pd.DataFrame(cost_rows)], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": write_csv(result.table, out / "comparison.csv"),
        "details_retrieval": write_csv(result.details["retrieval"], out / "retrieval_details.csv"),
        "details_clustering": write_csv(
            result.details["clustering"], out / "clustering_details.csv"
        ),
        "alignment": write_json(
            {"n_profiles_shared": result.n_profiles, "rows_dropped": result.dropped,
             "sources": {s.name: str(s.source) if s.source else None for s in sets}},
            out / "alignment.json",
        ),
    }
    with atomic_write(out / "comparison.md") as fh:
        fh.write("# Feature extractor comparison\n\n")
        fh.write(
            f"{result.n_profiles} (plate, well, time point) profiles shared by "
            f"{len(sets)} extractors; last {config.last_time_points} time points, "
            f"{'top concentration' if config.top_concentration_only else 'all concentrations'}.\n\n"
        )
        fh.write(to_markdown(result.table))
    paths["markdown"] = out / "comparison.md"
    result.paths = paths
    return result
