"""Effect calls from growth alone, with a dead-cell readout when there is one.

Per (group, drug, concentration) the GR time course (:func:`.growth_course.time_course_gr`) is
summarised by ``gr_end`` (mean GR over the last ``end_fraction`` of the time points),
``gr_late`` (GR over the second half of the time course only: from the middle time point to the
end, each end averaged with its neighbours), ``end_ratio`` (end / start value), ``fall_ratio``
(end / maximum value) and ``onset_h`` (the first time from which the growth relative to the
control, ``(x / x0) / (xc / x0c)``, stays below ``onset_fraction``; NaN when it never does).

``growth_effect`` follows the growth rules 1-6 of :mod:`phenolapse.temporal.annotate` (the same
thresholds, :class:`~phenolapse.temporal.config.AnnotationConfig`).

With a dead-cell readout (dead count or dead-dye area) ``dead_fold`` is the dead readout at the
end over the control's at the end, and ``dead_gain`` its rise since time zero over the control's
rise; a condition shows **death** when ``dead_fold >= dead_fold_min`` and
``dead_gain >= dead_gain_min``. ``gr_static_end`` and ``gr_toxic_end`` are the end means of
GR_static and GR_toxic. Cytotoxic needs death, stasis without death is cytostatic:

- D1 cell mass fell (growth rule 1 or 2) with death -> ``cytotoxic``;
- D2 cell mass fell without death -> ``mixed`` (cells lost without a dead-cell signal);
- D3 growth stopped (``gr_late <= gr_stasis`` or ``gr_end < gr_cytotoxic``) with death ->
  ``cytotoxic``;
- D4 growth slowed (inhibited, ``gr_end < gr_no_effect``) with death -> ``mixed``;
- D5 growth like the control with death -> ``mixed``;
- D6 no death -> the growth call, except that cell mass falling is not called cytotoxic (D2).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from phenolapse.temporal.annotate import growth_effect
from phenolapse.temporal.config import AnnotationConfig
from phenolapse.temporal.growth import interval_gr, smooth_at
from phenolapse.vocabulary import CYTOTOXIC, MIXED

ANNOTATION_COLUMNS = [
    "effect",
    "growth_effect",
    "growth_rule",
    "death_rule",
    "gr_end",
    "gr_late",
    "gr_min",
    "end_ratio",
    "fall_ratio",
    "onset_h",
    "death",
    "dead_fold",
    "dead_gain",
    "gr_static_end",
    "gr_toxic_end",
    "n_time_points",
]


def onset_time(times: np.ndarray, relative_growth: np.ndarray, *, fraction: float = 0.85) -> float:
    """First time from which ``relative_growth`` (3-point running median) stays below ``fraction``."""
    r = (
        pd.Series(np.asarray(relative_growth, dtype=np.float64))
        .rolling(3, center=True, min_periods=1)
        .median()
        .to_numpy()
    )
    below = r < fraction
    if not below.any() or not below[-1]:
        return float("nan")
    last_above = np.flatnonzero(~below)
    start = int(last_above[-1]) + 1 if last_above.size else 0
    return float(times[start])


def summarise_growth(
    gr_table: pd.DataFrame,
    *,
    keys: Sequence[str],
    end_fraction: float = 0.2,
    onset_fraction: float = 0.85,
) -> pd.DataFrame:
    """Per condition the growth readouts of the module docstring (before any call)."""
    has_dead = "d" in gr_table.columns
    rows = []
    ckeys = [*keys, "drug", "concentration_um", "role"]
    for key, grp in gr_table.groupby(ckeys, sort=True, dropna=False):
        grp = grp.sort_values("time_h")
        first = (
            int(np.flatnonzero(np.isfinite(grp["x"].to_numpy()))[0])
            if np.isfinite(grp["x"].to_numpy()).any()
            else 0
        )
        after = grp.iloc[first + 1 :]
        rec: dict[str, object] = dict(zip(ckeys, key, strict=True))
        if after.empty:
            rows.append(rec)
            continue
        n_end = max(1, round(len(after) * end_fraction))
        g = after["GR"].to_numpy(dtype=np.float64)
        x = after["x"].to_numpy(dtype=np.float64)
        xc = after["xc"].to_numpy(dtype=np.float64)
        x0, x0c = float(grp["x0"].iloc[0]), float(grp["x0c"].iloc[0])
        mid = len(after) // 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            end_x = float(np.nanmean(x[-n_end:]))
            x_max = float(np.nanmax(x))
            rel = (x / x0) / (xc / x0c)
            rec.update(
                {
                    "gr_end": float(np.nanmean(g[-n_end:])),
                    "gr_late": interval_gr(
                        smooth_at(x, mid),
                        smooth_at(x, -1),
                        smooth_at(xc, mid),
                        smooth_at(xc, -1),
                    ),
                    "gr_min": float(np.nanmin(g)) if np.isfinite(g).any() else np.nan,
                    "end_ratio": end_x / x0 if x0 > 0 else np.nan,
                    "fall_ratio": end_x / x_max if x_max > 0 else np.nan,
                    "onset_h": onset_time(
                        after["time_h"].to_numpy(dtype=np.float64), rel, fraction=onset_fraction
                    ),
                    "n_time_points": len(grp),
                }
            )
            if has_dead:
                d = after["d"].to_numpy(dtype=np.float64)
                dc = after["dc"].to_numpy(dtype=np.float64)
                d0, d0c = float(grp["d0"].iloc[0]), float(grp["d0c"].iloc[0])
                d_end, dc_end = float(np.nanmean(d[-n_end:])), float(np.nanmean(dc[-n_end:]))
                rec["dead_fold"] = d_end / dc_end if dc_end > 0 else np.nan
                gain, gain_c = (
                    (d_end / d0 if d0 > 0 else np.nan),
                    (dc_end / d0c if d0c > 0 else np.nan),
                )
                rec["dead_gain"] = gain / gain_c if gain_c and np.isfinite(gain_c) else np.nan
                rec["gr_static_end"] = float(np.nanmean(after["GR_static"].to_numpy()[-n_end:]))
                rec["gr_toxic_end"] = float(np.nanmean(after["GR_toxic"].to_numpy()[-n_end:]))
        rows.append(rec)
    return pd.DataFrame(rows)


def death_call(
    summary: Mapping[Any, Any],
    base_effect: str,
    growth_rule: str,
    *,
    config: AnnotationConfig,
    dead_fold_min: float,
    dead_gain_min: float,
) -> tuple[str, str, bool | None]:
    """(effect, death_rule, death) of one condition from its growth call and dead readout."""

    def get(name: str) -> float:
        v = summary.get(name, np.nan)
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    fold, gain = get("dead_fold"), get("dead_gain")
    if not np.isfinite(fold):
        return base_effect, "no_dead_readout", None
    death = bool(fold >= dead_fold_min and np.isfinite(gain) and gain >= dead_gain_min)
    fell = growth_rule.startswith(("1:", "2:"))
    gr_end, gr_late = get("gr_end"), get("gr_late")
    if fell:
        return (
            (CYTOTOXIC, "D1:fell_with_death", True)
            if death
            else (
                MIXED,
                "D2:fell_without_death",
                False,
            )
        )
    if death:
        stopped = (np.isfinite(gr_late) and gr_late <= config.gr_stasis) or (
            np.isfinite(gr_end) and gr_end < config.gr_cytotoxic
        )
        if stopped:
            return CYTOTOXIC, "D3:stopped_with_death", True
        if np.isfinite(gr_end) and gr_end < config.gr_no_effect:
            return MIXED, "D4:slowed_with_death", True
        return MIXED, "D5:death_without_growth_loss", True
    return base_effect, "D6:no_death", False


def annotate_growth(
    gr_table: pd.DataFrame,
    *,
    keys: Sequence[str],
    config: AnnotationConfig | None = None,
    end_fraction: float = 0.2,
    onset_fraction: float = 0.85,
    dead_fold_min: float = 3.0,
    dead_gain_min: float = 1.5,
) -> pd.DataFrame:
    """``annotations.csv``: one row per treated condition with its call (module docstring)."""
    cfg = config or AnnotationConfig()
    summary = summarise_growth(
        gr_table, keys=keys, end_fraction=end_fraction, onset_fraction=onset_fraction
    )
    calls = []
    for _, row in summary.iterrows():
        base, rule = growth_effect(row.to_dict(), config=cfg)
        effect, drule, death = death_call(
            row.to_dict(),
            base,
            rule,
            config=cfg,
            dead_fold_min=dead_fold_min,
            dead_gain_min=dead_gain_min,
        )
        calls.append(
            {
                "effect": effect,
                "growth_effect": base,
                "growth_rule": rule,
                "death_rule": drule,
                "death": death,
            }
        )
    out = pd.concat([summary.reset_index(drop=True), pd.DataFrame(calls)], axis=1)
    ckeys = [*keys, "drug", "concentration_um", "role"]
    for c in ANNOTATION_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan
    return out[[*ckeys, *ANNOTATION_COLUMNS]]
