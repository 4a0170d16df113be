"""Where a treated well goes against the control's own trajectory in feature space.

The size of the distance to the control says *that* a drug acts; its direction says *how*. Over a
screen the control wells move along a path in feature space as their cells grow. Per plate this
module takes that path's main direction (the first principal component of the control trajectory
after drug addition, oriented forward in time) and measures every condition on it:

- ``progress`` - how far along the control's path a condition has come since drug addition, in
  units of the control's own progress by the end (the control goes from 0 to about 1). A well
  that stalls stays near 0 (cytostatic); one that loses cells moves *back* along the path, below
  0 (cytotoxic); one that grows like the control reaches about 1;
- ``off_path`` - the part of its distance to the control that is *off* the path, in units of the
  control wells' own spread around their mean: cells that changed shape rather than number.

Readouts per condition (one row per cell line, plate, drug, concentration, role):
``progress_end`` (mean over the last ``end_fraction`` of the time points after 0 h),
``progress_max`` (maximum of the 3-point running mean), ``progress_fall`` (``progress_max`` -
``progress_end``) and ``off_path_end``. NaN where the control does not move along a path
(its projection does not rise steadily with time).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from phenolapse.temporal.distance import control_trajectory, nearest_time_index
from phenolapse.vocabulary import CONDITION_KEYS, DISTANCE_ROLES, NEGATIVE_CONTROL

READOUTS = ["progress_end", "progress_max", "progress_fall", "off_path_end"]
MIN_TREND = 0.7  # rank correlation of the control's projection with time that makes a path


def _running_mean(x: np.ndarray) -> np.ndarray:
    pad = np.concatenate([x[:1], x, x[-1:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)


def control_path(
    times: np.ndarray, vectors: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Start index, unit direction, control progress per time and span of a control trajectory.

    The direction is the first principal component of the control vectors from the time point
    nearest 0 h on, oriented so that progress rises with time; ``span`` is the control's mean
    progress over the last fifth of those time points (progress 1 by definition). A control that
    does not move steadily along that direction (Spearman correlation of its projection with
    time below :data:`MIN_TREND`) has no path: ``span`` is NaN.
    """
    i0 = int(nearest_time_index(times, [0.0])[0])
    post = vectors[i0:]
    if len(post) < 3:
        i0, post = 0, vectors
    centred = post - post.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    proj = (post - post[0]) @ axis
    trend = float(spearmanr(np.arange(len(proj)), proj)[0]) if np.ptp(proj) > 0 else 0.0
    if trend < 0:
        axis, proj, trend = -axis, -proj, -trend
    n_end = max(1, int(np.ceil(len(proj) / 5)))
    span = float(np.mean(proj[-n_end:])) if trend >= MIN_TREND else float("nan")
    progress = ((vectors - vectors[i0]) @ axis) / span if span > 0 else np.full(len(times), np.nan)
    return i0, axis, progress, span


def trajectory_readouts(
    profiles: pd.DataFrame,
    *,
    feature_cols: list[str],
    end_fraction: float = 0.2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Progress along and distance off the control path, per condition and time point.

    Parameters
    ----------
    profiles
        Profiles (best normalised against the controls), one row per plate, well and time.
    feature_cols
        Feature columns to use.
    end_fraction
        Share of the time points after 0 h averaged into ``progress_end`` / ``off_path_end``.

    Returns
    -------
    per_time : DataFrame
        ``Metadata_*`` condition keys, ``Metadata_time_h``, ``progress``, ``control_progress``,
        ``off_path``.
    summary : DataFrame
        One row per condition: the keys without ``Metadata_`` and :data:`READOUTS`.
    """
    rows: list[pd.DataFrame] = []
    summary: list[dict[str, object]] = []
    prof = profiles.assign(Metadata_plate=profiles["Metadata_plate"].astype(str))
    for plate, on_plate in prof.groupby("Metadata_plate", sort=True):
        c_times, c_vecs = control_trajectory(on_plate, plate=str(plate), feature_cols=feature_cols)
        i0, axis, c_prog, span = control_path(c_times, c_vecs)
        ctrl = on_plate[on_plate["Metadata_role"] == NEGATIVE_CONTROL]
        c_idx = nearest_time_index(c_times, ctrl["Metadata_time_h"].to_numpy(dtype=np.float64))
        dev = ctrl[feature_cols].to_numpy(dtype=np.float64) - c_vecs[c_idx]
        dev_off = dev - np.outer(dev @ axis, axis)
        off_scale = float(np.median(np.linalg.norm(dev_off, axis=1)))
        if not off_scale > 0:
            off_scale = float("nan")
        treated = on_plate[on_plate["Metadata_role"].isin(DISTANCE_ROLES)]
        for key, grp in treated.groupby(CONDITION_KEYS, dropna=False, sort=True):
            means = grp.groupby("Metadata_time_h", sort=True)[feature_cols].mean()
            t = means.index.to_numpy(dtype=np.float64)
            x = means.to_numpy(dtype=np.float64)
            match = nearest_time_index(c_times, t)
            prog = ((x - c_vecs[i0]) @ axis) / span if span > 0 else np.full(len(t), np.nan)
            d = x - c_vecs[match]
            off = np.linalg.norm(d - np.outer(d @ axis, axis), axis=1) / off_scale
            base: dict[str, Any] = dict(zip(CONDITION_KEYS, key, strict=True))
            frame = pd.DataFrame(
                {
                    "Metadata_time_h": t,
                    "progress": prog,
                    "control_progress": c_prog[match],
                    "off_path": off,
                }
            )
            for k, v in reversed(list(base.items())):
                frame.insert(0, k, v)
            rows.append(frame)
            after = t > 0
            p_after = prog[after] if after.any() else prog
            o_after = off[after] if after.any() else off
            n_end = max(1, round(len(p_after) * end_fraction))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p_end = float(np.nanmean(p_after[-n_end:]))
                p_max = float(np.nanmax(_running_mean(p_after)))
                o_end = float(np.nanmean(o_after[-n_end:]))
            summary.append(
                {
                    **{k.removeprefix("Metadata_"): v for k, v in base.items()},
                    "progress_end": p_end,
                    "progress_max": p_max,
                    "progress_fall": p_max - p_end,
                    "off_path_end": o_end,
                }
            )
    per_time = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return per_time, pd.DataFrame(summary)
