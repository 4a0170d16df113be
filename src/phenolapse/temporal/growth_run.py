"""Growth analysis without images: inputs -> GR(c, t), potency over time, effect calls, outputs.

:func:`load_growth_inputs` reads Incucyte exports, long tables or a GR tools' table (with a plate
map); :func:`analyse_growth` computes; :func:`write_growth` writes the tables into one folder.
The figures (:func:`phenolapse.report.growth_figures.draw_growth_figures`) and the HTML report
(:func:`phenolapse.report.growth_report.write_growth_report`) are drawn from the result beside
them; ``phenolapse growth`` is a thin shell over these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from phenolapse.data.incucyte import (
    attach_platemap,
    check_gr_table,
    read_gr_table,
    read_platemap_table,
    read_time_courses,
    sniff_input,
)
from phenolapse.errors import FeatureTableError
from phenolapse.io_utils import atomic_write, write_csv
from phenolapse.temporal.config import AnnotationConfig
from phenolapse.temporal.gr_metrics import gr_metrics, gr_values
from phenolapse.temporal.growth_course import (
    dose_response_over_time,
    doubling_cut_times,
    gr_metrics_over_time,
    prepare,
    time_course_gr,
)
from phenolapse.temporal.growth_effects import annotate_growth

AUTO_KEYS = ("growth_condition", "seeding_density")
DEAD_METRICS = ("dead_count", "red_count", "red_area")
GR_VALUE_COLUMNS = (
    "cell_count",
    "cell_count__ctrl",
    "cell_count__time0",
    "dead_count",
    "dead_count__ctrl",
    "dead_count__time0",
    "concentration",
    "GR",
    "GR_static",
    "GR_toxic",
)


class GrowthAnalysisConfig(BaseModel):
    """Options of ``phenolapse growth`` (also readable from YAML)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "confluence"
    """Cell-mass readout: ``confluence``, ``cell_count`` or any metric of the input."""
    dead_metric: str | None = "auto"
    """Dead-cell readout: ``auto`` (``dead_count``, ``red_count`` or ``red_area`` if present),
    a metric name, or None for none."""
    keys: list[str] | None = None
    """Extra grouping columns (default: ``growth_condition``, ``seeding_density`` when they vary)."""
    tolerance_h: float = Field(default=0.5, ge=0)
    min_control_log2: float = Field(default=0.1, ge=0)
    pcutoff: float = Field(default=0.05, gt=0)
    times: list[float] = Field(default_factory=list)
    """Extra dose-response time points (hours), read off each well's curve."""
    relative: bool = True
    end_fraction: float = Field(default=0.2, gt=0, le=1)
    onset_fraction: float = Field(default=0.85, gt=0, lt=1)
    dead_fold_min: float = Field(default=3.0, gt=0)
    dead_gain_min: float = Field(default=1.5, gt=0)
    annotation: AnnotationConfig = Field(default_factory=AnnotationConfig)
    cut_doublings: tuple[float, float, float] | None = None
    """(baseline h, doublings, maximum value): also fit at the time the controls need for that
    many doublings after the baseline, capped where they reach the maximum (IncucyteDRC's cut)."""
    figure_times: list[float] | None = None
    """Times of the dose-response figures (default: a third, two thirds and the end)."""


@dataclass
class GrowthResult:
    """What :func:`analyse_growth` computed (empty tables where not applicable)."""

    kind: str
    keys: list[str]
    gr: pd.DataFrame
    metrics: pd.DataFrame
    dose_response: pd.DataFrame = field(default_factory=pd.DataFrame)
    annotations: pd.DataFrame = field(default_factory=pd.DataFrame)
    growth: pd.DataFrame = field(default_factory=pd.DataFrame)
    metric: str = "confluence"
    dead_metric: str | None = None


def load_growth_inputs(
    paths: Sequence[str | Path],
    *,
    platemap: str | Path | None = None,
    concentration_unit: str = "uM",
) -> tuple[str, pd.DataFrame]:
    """Read growth inputs: (``"time_course"``, long table) or (``"gr_table"``, GR table).

    Several Incucyte exports are several metrics (or plates); a GR table must come alone.
    """
    if not paths:
        raise FeatureTableError("no input files given")
    kinds = {Path(p): sniff_input(p) for p in paths}
    if "gr_table" in kinds.values():
        if len(kinds) > 1:
            raise FeatureTableError(
                f"{next(p for p, k in kinds.items() if k == 'gr_table')}: a GR table must be the "
                "only input (it carries its own controls)"
            )
        return "gr_table", read_gr_table(next(iter(kinds)))
    long = read_time_courses(list(kinds), concentration_unit=concentration_unit)
    if platemap is not None:
        pm = read_platemap_table(platemap)
        long = attach_platemap(long, pm, source=str(platemap))
    elif "role" not in long.columns or long["role"].isna().any():
        wells = long.loc[long.get("role", pd.Series(np.nan, index=long.index)).isna(), "well"]
        raise FeatureTableError(
            f"well(s) {sorted(set(wells))[:6]} have no drug or concentration: give a plate map "
            "(--platemap, CSV or Incucyte .PlateMap)"
        )
    return "time_course", long


def _resolve_keys(long: pd.DataFrame, keys: list[str] | None) -> list[str]:
    if keys is not None:
        missing = [k for k in keys if k not in long.columns]
        if missing:
            raise FeatureTableError(
                f"grouping column(s) {missing} not in the growth input or plate map "
                f"(columns: {sorted(map(str, long.columns))})"
            )
        return list(keys)
    treated = long[long.get("role", "") != "blank"] if "role" in long.columns else long
    return [k for k in AUTO_KEYS if k in long.columns and treated[k].nunique(dropna=True) > 1]


def _resolve_dead(long: pd.DataFrame, dead: str | None) -> str | None:
    metrics = set(long["metric"])
    if dead is None or dead == "none":
        return None
    if dead == "auto":
        return next((m for m in DEAD_METRICS if m in metrics), None)
    if dead not in metrics:
        raise FeatureTableError(
            f"dead-cell metric '{dead}' not in the input (metrics found: {sorted(metrics)})"
        )
    return dead


def analyse_growth(
    kind: str, table: pd.DataFrame, *, config: GrowthAnalysisConfig | None = None
) -> GrowthResult:
    """Compute GR values, GR metrics, dose-response fits and effect calls (module docstring)."""
    cfg = config or GrowthAnalysisConfig()
    if kind == "gr_table":
        return _analyse_gr_table(table, cfg)
    keys = _resolve_keys(table, cfg.keys)
    df = prepare(table, keys=keys, tolerance_h=cfg.tolerance_h)
    dead = _resolve_dead(df, cfg.dead_metric)
    gr = time_course_gr(
        df,
        metric=cfg.metric,
        dead_metric=dead,
        keys=keys,
        min_control_log2=cfg.min_control_log2,
    )
    metrics = gr_metrics_over_time(gr, keys=keys, pcutoff=cfg.pcutoff)
    dr = dose_response_over_time(
        df, metric=cfg.metric, keys=keys, times=cfg.times, relative=cfg.relative
    )
    first = dr.groupby(["plate", *keys])["time_h"].transform("min") if len(dr) else None
    if first is not None:
        dr = dr[dr["time_h"] > first].reset_index(drop=True)  # time zero carries no effect yet
    if cfg.cut_doublings is not None:
        dr = pd.concat([dr, _doubling_fits(df, keys, cfg)], ignore_index=True)
    ann = annotate_growth(
        gr,
        keys=["cell_line", "plate", *keys],
        config=cfg.annotation,
        end_fraction=cfg.end_fraction,
        onset_fraction=cfg.onset_fraction,
        dead_fold_min=cfg.dead_fold_min,
        dead_gain_min=cfg.dead_gain_min,
    )
    return GrowthResult(
        kind=kind,
        keys=keys,
        gr=gr,
        metrics=metrics,
        dose_response=dr,
        annotations=ann,
        growth=df,
        metric=cfg.metric,
        dead_metric=dead,
    )


def _doubling_fits(df: pd.DataFrame, keys: list[str], cfg: GrowthAnalysisConfig) -> pd.DataFrame:
    """Dose-response fits at each group's doubling cut time (``time_kind`` ``doublings``)."""
    assert cfg.cut_doublings is not None
    baseline, doublings, max_value = cfg.cut_doublings
    cuts = doubling_cut_times(
        df,
        metric=cfg.metric,
        keys=keys,
        baseline_h=baseline,
        doublings=doublings,
        max_value=max_value,
    )
    gkeys = ["cell_line", "plate", *keys]
    parts = []
    for _, cut in cuts.iterrows():
        if not np.isfinite(cut["cut_time_h"]):
            continue
        sel = np.ones(len(df), dtype=bool)
        for k in gkeys:
            sel &= (df[k] == cut[k]).to_numpy()
        fit = dose_response_over_time(
            df[sel],
            metric=cfg.metric,
            keys=keys,
            times=[float(cut["cut_time_h"])],
            relative=cfg.relative,
            all_times=False,
        )
        parts.append(fit.assign(time_kind="doublings"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _analyse_gr_table(table: pd.DataFrame, cfg: GrowthAnalysisConfig) -> GrowthResult:
    tab = gr_values(check_gr_table(table))
    tab = tab.rename(columns={"concentration": "concentration_um", "time": "time_h"})
    value_cols = {*GR_VALUE_COLUMNS, "concentration_um"}
    keys = [c for c in tab.columns if c not in value_cols]
    metrics = gr_metrics(tab, keys=keys, concentration="concentration_um", pcutoff=cfg.pcutoff)
    front = [c for c in ("cell_line", "drug", "concentration_um", "time_h") if c in tab.columns]
    gr = tab[[*front, *[c for c in tab.columns if c not in front]]]
    mfront = [c for c in ("cell_line", "drug", "time_h") if c in metrics.columns]
    metrics = metrics[[*mfront, *[c for c in metrics.columns if c not in mfront]]]
    return GrowthResult(kind="gr_table", keys=keys, gr=gr, metrics=metrics)


def write_growth(
    result: GrowthResult,
    out: str | Path,
    *,
    config: GrowthAnalysisConfig | None = None,
) -> list[Path]:
    """Write the tables (and ``growth_config.yaml``) of a growth analysis into ``out``."""
    cfg = config or GrowthAnalysisConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        write_csv(result.gr, out / "gr.csv"),
        write_csv(result.metrics, out / "gr_metrics.csv"),
    ]
    if result.kind == "time_course":
        files.append(write_csv(result.dose_response, out / "dose_response.csv"))
        files.append(write_csv(result.annotations, out / "annotations.csv"))
        cols = [c for c in result.growth.columns if c != "label"]
        files.append(write_csv(result.growth[cols], out / "growth.csv"))
    with atomic_write(out / "growth_config.yaml", "w") as fh:
        yaml.safe_dump(cfg.model_dump(), fh, sort_keys=False)
    files.append(out / "growth_config.yaml")
    return files
