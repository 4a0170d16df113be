"""The temporal stage end to end: profiles -> distances -> series -> DTW clusters -> effects.

:func:`analyse` computes everything in memory (no files, no plots); :func:`write_outputs` writes the
tables; :func:`run_temporal` does both. The figures are drawn from the result by
:func:`phenolapse.report.temporal_figures.write_temporal_figures` (the pipeline and
``phenolapse temporal`` call it). Like the whole package, this module never imports torch or the
embedding stage.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from phenolapse.artefacts import is_store, read_profiles
from phenolapse.errors import FeatureTableError
from phenolapse.io_utils import atomic_write, write_csv, write_parquet
from phenolapse.normalize import normalize_profiles
from phenolapse.temporal.annotate import (
    annotate,
    cluster_effects_from_centroids,
    consensus,
    rules_markdown,
)
from phenolapse.temporal.config import TemporalConfig
from phenolapse.temporal.distance import (
    check_profiles,
    distance_to_control_with_replicates,
    feature_columns,
    onset_times,
)
from phenolapse.temporal.growth import (
    gr_summary,
    growth_rate_inhibition,
    image_confluence,
    well_confluence,
)
from phenolapse.temporal.series import SeriesSet, make_series
from phenolapse.temporal.trajectory import trajectory_readouts
from phenolapse.vocabulary import SERIES_KEYS, TREATMENT, UNIT_KEYS


@dataclass
class TemporalResult:
    """Everything the temporal stage computes (tables are plain DataFrames)."""

    distances: pd.DataFrame
    replicates: pd.DataFrame
    path: pd.DataFrame
    series: SeriesSet
    labels: np.ndarray
    centroids: np.ndarray
    k_scores: pd.DataFrame
    clusters: pd.DataFrame
    growth: pd.DataFrame | None
    gr: pd.DataFrame | None
    gr_summary: pd.DataFrame | None
    annotations: pd.DataFrame
    consensus: pd.DataFrame
    config: TemporalConfig
    files: dict[str, Path] = field(default_factory=dict)


def load_profiles(path: str | Path) -> pd.DataFrame:
    """Read a profiles Parquet for the temporal stage.

    The table is read by :func:`phenolapse.artefacts.read_profiles` (version-checked). A
    ``features.zarr`` store holds per-image features; aggregate it to profiles first with
    :func:`phenolapse.embedding.load_profiles` (``phenolapse temporal`` does so), which this
    torch-free package does not import.
    """
    path = Path(path)
    if path.exists() and is_store(path):
        raise FeatureTableError(
            f"{path}: a features store, not a profiles table; aggregate it with "
            "phenolapse.embedding.load_profiles or give the profiles.parquet beside it"
        )
    return read_profiles(path)


def _strip(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={c: c.removeprefix("Metadata_") for c in df.columns})


def _cluster(
    series: SeriesSet, config: TemporalConfig
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Labels (n,), centroids (k, T) and the k-selection scores (empty when k is fixed)."""
    from phenolapse.temporal.dtw import cluster_series

    sel = cluster_series(series.values, config.cluster, score=False)
    best = sel.results[sel.best_k]
    scores = sel.scores if config.cluster.k is None else pd.DataFrame()
    return best.labels, best.centroids, scores


def growth_from_manifest(
    manifest: pd.DataFrame, config: TemporalConfig, *, progress: bool = True
) -> pd.DataFrame:
    """Well-level confluence (per plate, well, time) measured on the manifest's images."""
    per_image = image_confluence(manifest, config=config.growth, progress=progress)
    return well_confluence(per_image)


def analyse(
    profiles: pd.DataFrame,
    *,
    config: TemporalConfig | None = None,
    growth: pd.DataFrame | None = None,
) -> TemporalResult:
    """Run the temporal analysis in memory.

    Parameters
    ----------
    profiles
        Profiles table (docs/formats.md).
    config
        Options of every step.
    growth
        Well-level growth table (``cell_line, plate, well, time_h, drug, concentration_um, role,
        confluence``) from :func:`growth_from_manifest` or
        :func:`~phenolapse.temporal.growth.read_incucyte_confluence`; None skips the growth readout.
    """
    cfg = config or TemporalConfig()
    profiles = profiles.copy()
    profiles.attrs = {}
    check_profiles(profiles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        profiles = normalize_profiles(profiles, config=cfg.normalization).profiles
    feats = feature_columns(profiles)
    distances, replicates = distance_to_control_with_replicates(
        profiles, config=cfg.distance, feature_cols=feats, progress=cfg.progress
    )
    series = make_series(distances, config=cfg.series)
    labels, centroids, k_scores = _cluster(series, cfg)
    cluster_table = cluster_effects_from_centroids(centroids, config=cfg.annotation)
    units = _strip(series.keys.copy())
    units["cluster"] = labels.astype(int)
    units["cluster_effect"] = (
        cluster_table.set_index("cluster")["effect"].reindex(labels).to_numpy()
    )
    units = units.merge(onset_times(distances), on=UNIT_KEYS, how="left")
    path, path_summary = trajectory_readouts(profiles, feature_cols=feats)
    units = units.merge(path_summary, on=UNIT_KEYS, how="left")
    gr = summary = None
    use_growth = cfg.use_growth and growth is not None
    if use_growth:
        assert growth is not None
        gr = growth_rate_inhibition(growth)
        summary = gr_summary(gr)
        units = units.merge(summary, on=UNIT_KEYS, how="left")
        lacking = units["gr_end"].isna() & units["fall_ratio"].isna()
        if lacking.any():
            r = units.loc[lacking].iloc[0]
            warnings.warn(
                f"{int(lacking.sum())} unit(s) have no growth readout (e.g. {r['drug']} "
                f"{r['concentration_um']} on {r['plate']}); they are annotated from features only",
                stacklevel=2,
            )
    ann = annotate(
        units,
        config=cfg.annotation,
        cluster_effects=cfg.cluster_effects,
        use_features=cfg.use_features,
        use_growth=use_growth,
    )
    first = [*UNIT_KEYS, "cluster", "effect"]
    ann = ann[first + [c for c in ann.columns if c not in first]]
    treated = ann[ann["role"] == TREATMENT]
    cons = consensus(treated if not treated.empty else ann)
    return TemporalResult(
        distances=distances,
        replicates=replicates,
        path=path,
        series=series,
        labels=labels,
        centroids=centroids,
        k_scores=k_scores,
        clusters=cluster_table,
        growth=growth,
        gr=gr,
        gr_summary=summary,
        annotations=ann,
        consensus=cons,
        config=cfg,
    )


def write_outputs(result: TemporalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the tables of ``result`` into ``out_dir`` (atomic writes); returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["distances"] = write_parquet(
        result.distances, out / "distances.parquet", table="distances"
    )
    files["replicates"] = write_parquet(
        result.replicates, out / "distances_replicates.parquet", table="distances_replicates"
    )
    if not result.path.empty:
        files["path"] = write_parquet(
            result.path, out / "control_path.parquet", table="control_path"
        )
    files["series"] = write_parquet(
        result.series.to_frame(), out / "series.parquet", table="series"
    )
    members = _strip(result.series.keys[SERIES_KEYS].copy())
    members["cluster"] = result.labels.astype(int)
    files["clusters"] = write_csv(members, out / "clusters.csv")
    cent = pd.DataFrame(
        result.centroids, columns=[f"t{i}" for i in range(result.centroids.shape[1])]
    )
    cent.insert(0, "cluster", np.arange(len(cent)))
    files["centroids"] = write_csv(
        result.clusters.merge(cent, on="cluster"), out / "cluster_centroids.csv"
    )
    if not result.k_scores.empty:
        files["k_selection"] = write_csv(result.k_scores, out / "k_selection.csv")
    files["annotations"] = write_csv(result.annotations, out / "annotations.csv")
    files["consensus"] = write_csv(result.consensus, out / "consensus.csv")
    if result.gr is not None and result.gr_summary is not None:
        files["gr"] = write_csv(result.gr, out / "gr.csv")
        files["gr_summary"] = write_csv(result.gr_summary, out / "gr_summary.csv")
    if result.growth is not None:
        files["confluence"] = write_csv(result.growth, out / "confluence.csv")
    with atomic_write(out / "annotation_rules.md") as fh:
        fh.write(rules_markdown(result.config.annotation, cluster_table=result.clusters))
    files["rules"] = out / "annotation_rules.md"
    with atomic_write(out / "temporal_config.yaml") as fh:
        yaml.safe_dump(result.config.model_dump(mode="json"), fh, sort_keys=False)
    files["config"] = out / "temporal_config.yaml"
    result.files.update(files)
    return files


def run_temporal(
    profiles: pd.DataFrame,
    *,
    out_dir: str | Path,
    config: TemporalConfig | None = None,
    manifest: pd.DataFrame | None = None,
    growth: pd.DataFrame | None = None,
) -> TemporalResult:
    """Analyse ``profiles`` and write the tables into ``out_dir``.

    Growth comes from ``growth`` when given, else is measured on the images of ``manifest``
    (label-free confluence), else is skipped. The figures are drawn from the returned result by
    :func:`phenolapse.report.temporal_figures.write_temporal_figures`.
    """
    cfg = config or TemporalConfig()
    if growth is None and manifest is not None and cfg.use_growth:
        growth = growth_from_manifest(manifest, cfg, progress=cfg.progress)
    if profiles.empty:
        raise FeatureTableError("the profiles table is empty")
    result = analyse(profiles, config=cfg, growth=growth)
    write_outputs(result, out_dir)
    return result
