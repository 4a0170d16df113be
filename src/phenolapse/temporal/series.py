"""Distance-to-control curves turned into equal-length series for clustering (SPEC 7.4).

Steps, each an option of :class:`~phenolapse.temporal.config.SeriesConfig` (defaults = reference):

1. keep time points after ``min_time_h`` (0: after drug addition);
2. put each series on its plate's time grid (the union of the plate's time points); a series
   missing grid points inside or before its span has a *gap*: interpolated linearly in time
   (``on_gap="interpolate"``, leading gaps take the first observed value), dropped or refused;
3. truncate every series to a common length (``length``; None = the shortest series); a shorter
   series is dropped with a warning or refused (``on_short``);
4. trailing rolling median of ``rolling_window`` points (partial windows at the start), then drop
   ``drop_first`` and ``drop_last`` points (the reference: 5, 4, 1);
5. min-max scale to [0, 1] per (cell line, drug) jointly over its concentrations (``minmax_drug``),
   per series, or not at all; a constant group scales to 0.

Min-max scaling removes absolute level, so the unscaled smoothed curve and the curve in units of the
control's own spread (``distance / null_distance``) are kept beside the scaled one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from phenolapse.artefacts import read_table, require_columns
from phenolapse.errors import ConfigError, FeatureTableError
from phenolapse.temporal.config import SeriesConfig
from phenolapse.vocabulary import SERIES_KEYS, metadata, strip_prefix

__all__ = [
    "SERIES_KEYS",
    "SeriesError",
    "SeriesSet",
    "make_series",
    "minmax_scale",
    "read_series",
    "rolling_median",
]

SERIES_NAME = "series.parquet"


class SeriesError(FeatureTableError):
    """Distance series cannot be brought to a common, gap-free time grid."""


@dataclass
class SeriesSet:
    """Equal-length series, one per (cell line, plate, drug, concentration).

    Attributes
    ----------
    keys
        One row per series: the ``Metadata_*`` keys plus ``max_distance`` (unscaled, smoothed) and
        ``max_relative_distance`` (maximum of the smoothed distance / null distance) and
        ``late_relative_distance`` (its mean over the second half of the time course: an effect
        that persists, not a passing excursion).
    values
        (n, T) series after scaling: the clustering input.
    raw
        (n, T) smoothed distances before scaling.
    relative
        (n, T) smoothed distance / null distance (NaN when the plate has too few control wells).
    times
        (n, T) time (hours) of each point.
    """

    keys: pd.DataFrame
    values: np.ndarray
    raw: np.ndarray
    relative: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """Long table: keys, ``point``, ``Metadata_time_h``, ``value``, ``raw``, ``relative``."""
        n, t = self.values.shape
        idx = np.repeat(np.arange(n), t)
        out = self.keys.iloc[idx][SERIES_KEYS].reset_index(drop=True)
        out["point"] = np.tile(np.arange(t), n)
        out["Metadata_time_h"] = self.times.ravel()
        out["value"] = self.values.ravel()
        out["raw"] = self.raw.ravel()
        out["relative"] = self.relative.ravel()
        return out


def rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing rolling median along the last axis; the first points use partial windows."""
    arr = np.asarray(x, dtype=np.float64)
    if window <= 1:
        return arr.copy()
    flat = arr.reshape(-1, arr.shape[-1])
    out = pd.DataFrame(flat.T).rolling(window, min_periods=1).median().to_numpy().T
    return np.ascontiguousarray(out.reshape(arr.shape))


def minmax_scale(x: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Min-max scale rows of ``x`` to [0, 1] jointly within each group (all rows one group if None).

    A group whose values are all equal scales to 0.
    """
    arr = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(arr)
    labels = np.zeros(arr.shape[0], dtype=int) if groups is None else np.asarray(groups)
    for g in pd.unique(labels):
        m = labels == g
        lo, hi = np.nanmin(arr[m]), np.nanmax(arr[m])
        out[m] = (arr[m] - lo) / (hi - lo) if hi > lo else 0.0
    return out


def _grid_series(
    times: np.ndarray, values: np.ndarray, grid: np.ndarray, *, name: str, on_gap: str
) -> np.ndarray | None:
    """Values on ``grid`` from its first point up to the series' last time; None to drop."""
    span = grid[grid <= times.max()]
    if span.size == times.size and np.allclose(span, times):
        return values.astype(np.float64)
    if on_gap == "raise":
        missing = np.setdiff1d(span, times)
        raise SeriesError(
            f"series {name} lacks time point(s) {missing[:5].tolist()} h of its plate's grid; "
            "re-image or drop those wells, or use series.on_gap='interpolate' or 'drop'"
        )
    if on_gap == "drop":
        return None
    return np.interp(span, times, values)


def make_series(
    distances: pd.DataFrame, *, config: SeriesConfig | None = None, value: str = "distance"
) -> SeriesSet:
    """Build the clustering series from a distance table (see module docstring for the steps).

    Parameters
    ----------
    distances
        Output of :func:`phenolapse.temporal.distance.distance_to_control`.
    config
        Series options; defaults reproduce the reference.
    value
        Column holding the distance.

    Raises
    ------
    SeriesError
        Gaps or short series when the config says ``raise``, or nothing left after processing.
    ConfigError
        The chosen length leaves fewer than 2 points after smoothing and trimming.
    """
    cfg = config or SeriesConfig()
    require_columns(
        distances,
        [*SERIES_KEYS, "Metadata_time_h", value],
        message="distance table lacks column(s) {missing}",
        error=SeriesError,
    )
    d = distances[distances["Metadata_time_h"] > cfg.min_time_h]
    if d.empty:
        raise SeriesError(f"no time points after {cfg.min_time_h:g} h in the distance table")
    keys: list[tuple[object, ...]] = []
    series: list[np.ndarray] = []
    rel_series: list[np.ndarray] = []
    time_axes: list[np.ndarray] = []
    dropped_gap: list[str] = []
    for plate, on_plate in d.groupby("Metadata_plate", sort=True):
        grid = np.sort(on_plate["Metadata_time_h"].astype(float).unique())
        for key, grp in on_plate.groupby(SERIES_KEYS, dropna=False, sort=True):
            grp = grp.sort_values("Metadata_time_h")
            t = grp["Metadata_time_h"].to_numpy(dtype=np.float64)
            name = f"{key[0]}/{plate}/{key[2]}@{key[3]}"
            v = _grid_series(t, grp[value].to_numpy(), grid, name=name, on_gap=cfg.on_gap)
            if v is None:
                dropped_gap.append(name)
                continue
            if "null_distance" in grp.columns:
                ratio = grp[value].to_numpy() / grp["null_distance"].to_numpy()
                r = _grid_series(t, ratio, grid, name=name, on_gap="interpolate")
            else:
                r = np.full(v.size, np.nan)
            keys.append(key)
            series.append(v)
            rel_series.append(r if r is not None else np.full(v.size, np.nan))
            time_axes.append(grid[: v.size])
    if dropped_gap:
        warnings.warn(
            f"dropped {len(dropped_gap)} series with gaps: {dropped_gap[:5]}", stacklevel=2
        )
    if not series:
        raise SeriesError("no series left after removing series with gaps")
    lengths = np.array([s.size for s in series])
    length = cfg.length if cfg.length is not None else int(lengths.min())
    short = lengths < length
    if short.any():
        names = [
            f"{keys[i][0]}/{keys[i][1]}/{keys[i][2]}@{keys[i][3]}" for i in np.flatnonzero(short)
        ]
        if cfg.on_short == "raise":
            raise SeriesError(
                f"{int(short.sum())} series have fewer than {length} time points after "
                f"{cfg.min_time_h:g} h (e.g. {names[:3]}); lower series.length or use "
                "on_short='drop'"
            )
        warnings.warn(
            f"dropped {int(short.sum())} series shorter than {length} points: {names[:5]}",
            stacklevel=2,
        )
    keep = np.flatnonzero(~short)
    if keep.size == 0:
        raise SeriesError(f"no series reaches the requested length {length}")
    end = length - cfg.drop_last
    if end - cfg.drop_first < 2:
        raise ConfigError(
            f"series of length {length} leave {end - cfg.drop_first} point(s) after dropping "
            f"{cfg.drop_first} first and {cfg.drop_last} last; need at least 2 (image longer or "
            "reduce drop_first/drop_last)"
        )
    raw_full = np.stack([series[i][:length] for i in keep])
    rel_full = np.stack([rel_series[i][:length] for i in keep])
    times = np.stack([time_axes[i][:length] for i in keep])[:, cfg.drop_first : end]
    raw = rolling_median(raw_full, cfg.rolling_window)[:, cfg.drop_first : end]
    rel = rolling_median(rel_full, cfg.rolling_window)[:, cfg.drop_first : end]
    key_df = pd.DataFrame([keys[i] for i in keep], columns=SERIES_KEYS)
    if cfg.scaling == "minmax_drug":
        labels = (
            key_df["Metadata_cell_line"].astype(str) + "\x00" + key_df["Metadata_drug"].astype(str)
        )
        values = minmax_scale(raw, labels.to_numpy())
    elif cfg.scaling == "minmax_series":
        values = minmax_scale(raw, np.arange(raw.shape[0]))
    else:
        values = raw.copy()
    key_df["max_distance"] = raw.max(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        key_df["max_relative_distance"] = np.nanmax(rel, axis=1)
        key_df["late_relative_distance"] = np.nanmean(rel[:, rel.shape[1] // 2 :], axis=1)
    return SeriesSet(keys=key_df, values=values, raw=raw, relative=rel, times=times)


def read_series(path: str | Path) -> pd.DataFrame:
    """Read ``series.parquet`` (the long table of :meth:`SeriesSet.to_frame`), version-checked.

    Files written before the keys carried the ``Metadata_`` prefix (``cell_line`` ...
    ``time_h``) are read with the prefix added, so every reader sees one set of names.
    """
    table = read_table(path)
    old = [c for c in strip_prefix([*SERIES_KEYS, "Metadata_time_h"]) if c in table.columns]
    return table.rename(columns=dict(zip(old, metadata(old), strict=True)))
