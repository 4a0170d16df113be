"""Potency over time in a run: GR50 and GRmax per drug at every time point of the growth readout.

The temporal stage's growth table (confluence per well and time point, measured on the images or
read from ``screen.growth_exports``) goes through the growth-course functions of
:mod:`phenolapse.temporal.growth_course`: GR(c, t) per condition relative to the plate's controls
from the time point nearest drug addition on, then the GR sigmoid across concentrations at every
time point (:func:`~phenolapse.temporal.growth_course.gr_metrics_over_time`). The run writes the
table as ``temporal/gr_metrics.csv`` and one figure per cell line and plate in
``temporal/potency/``; the report shows them in its growth section.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from phenolapse.artefacts import require_columns
from phenolapse.errors import FeatureTableError
from phenolapse.io_utils import write_csv
from phenolapse.report.growth_figures import POTENCY_DIR, draw_potency_figures
from phenolapse.temporal.growth_course import gr_metrics_over_time, prepare, time_course_gr
from phenolapse.vocabulary import OBSERVATION_KEYS

log = logging.getLogger("phenolapse.pipeline")
__all__ = ["MAX_TIME_POINTS", "POTENCY_DIR", "potency_over_time", "write_potency"]
MAX_TIME_POINTS = 12


def potency_over_time(
    growth: pd.DataFrame,
    *,
    min_control_log2: float = 0.1,
    pcutoff: float = 0.05,
    tolerance_h: float = 0.5,
    max_time_points: int | None = MAX_TIME_POINTS,
) -> pd.DataFrame:
    """GR metrics per (cell line, plate, drug, time point) from a confluence table.

    Parameters
    ----------
    growth
        ``cell_line, plate, well, time_h, drug, concentration_um, role, confluence`` (the
        temporal stage's ``confluence.csv``).
    min_control_log2
        GR is undefined while the controls have grown less than this (doublings).
    pcutoff
        F-test level at which the sigmoid is kept over a flat line.
    tolerance_h
        Time stamps of a plate this close are one scan cycle.
    max_time_points
        Fit at most this many time points after drug addition per plate, evenly spread over
        the scans and always the last (None: every scan); a long time course needs no more for
        the potency curves, and every fit costs about 10 ms.

    Returns
    -------
    DataFrame
        ``cell_line, plate, drug, time_h`` and the GR metric columns (``GR50``, ``GRmax`` ...);
        time points before drug addition (and at it: GR is undefined there) are left out.
    """
    need = OBSERVATION_KEYS
    require_columns(growth, [*need, "confluence"], message="growth table lacks column(s) {missing}")
    long = growth[need].assign(metric="confluence", value=growth["confluence"].to_numpy())
    df = prepare(long, tolerance_h=tolerance_h)
    keep = np.zeros(len(df), dtype=bool)
    for _plate, idx in df.groupby("plate").groups.items():
        t = df.loc[idx, "time_h"].to_numpy(dtype=np.float64)
        start = t[int(np.argmin(np.abs(t)))]  # drug addition: the time point nearest 0 h
        later = np.unique(t[t > start])
        if max_time_points is not None and later.size > max_time_points:
            pick = np.round(np.linspace(later.size - 1, 0, max_time_points)).astype(int)
            later = later[np.unique(pick)]
        keep[df.index.get_indexer(idx)] = (t == start) | np.isin(t, later)
    gr = time_course_gr(df[keep], metric="confluence", min_control_log2=min_control_log2)
    return gr_metrics_over_time(gr, pcutoff=pcutoff)


def write_potency(growth: pd.DataFrame, out_dir: Path, *, figures: bool = True) -> dict[str, Path]:
    """Write ``gr_metrics.csv`` and the potency figures of ``growth`` into ``out_dir``.

    Returns name -> path of what was written; nothing (and a logged warning) when the growth
    table gives no GR metrics.
    """
    try:
        metrics = potency_over_time(growth)
    except FeatureTableError as exc:
        log.warning("no potency over time: %s", exc)
        return {}
    if metrics.empty:
        return {}
    files = {"gr_metrics": write_csv(metrics, Path(out_dir) / "gr_metrics.csv")}
    if figures:
        for i, path in enumerate(draw_potency_figures(metrics, Path(out_dir) / POTENCY_DIR)):
            files[f"potency_{i}"] = path
    return files
