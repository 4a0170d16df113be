"""Distance of every treatment to its plate's negative control over time (SPEC 7.1-7.3).

Per plate (a cell line's plate holds its own controls):

1. the control trajectory is, at each control time point, the mean feature vector of the plate's
   ``negative_control`` wells imaged at that time;
2. a treatment trajectory is, for each (drug, concentration), the mean feature vector over its
   replicate wells at each time point;
3. the distance at time t is measured to the control vector at the **nearest** control time point
   (ties go to the earlier one).

The spread over replicate wells is kept two ways: per-replicate distances (each well's vector to the
control) summarised as mean/sd/min/max, and a bootstrap 95 % band of the mean-vector distance over
resampled replicate wells. ``null_distance`` is the control's own spread: the ``null_quantile`` of
the distance between the mean of n randomly drawn control wells and the mean of the remaining
control wells (n = the condition's number of replicates), so a distance can be read in units of
noise.

Handling of awkward input: a plate without negative-control wells, NaN features or duplicated
(plate, well, time) rows raise :class:`~phenolapse.errors.FeatureTableError`; a condition with a
single replicate well gets a distance but no band (NaN) and ``Metadata_n_replicates == 1``; rows of
role ``untreated`` (e.g. PBS) and ``positive_control`` get their own curves like drugs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.artefacts import require_columns
from phenolapse.errors import FeatureTableError
from phenolapse.temporal.config import DistanceConfig
from phenolapse.vocabulary import (
    CONDITION_KEYS,
    DISTANCE_ROLES,
    NEGATIVE_CONTROL,
    PROFILE_KEYS,
    strip_prefix,
)

__all__ = [
    "CONDITION_KEYS",
    "DISTANCE_ROLES",
    "METRICS",
    "REQUIRED_METADATA",
    "check_profiles",
    "distance_to_control",
    "distance_to_control_with_replicates",
    "feature_columns",
    "onset_times",
]

METRICS = ("euclidean", "cosine", "correlation", "braycurtis")
REQUIRED_METADATA = tuple(PROFILE_KEYS)
"""Metadata every profile table must carry (see docs/formats.md)."""


def feature_columns(profiles: pd.DataFrame) -> list[str]:
    """Feature columns of a profiles table: every column not starting with ``Metadata_``."""
    return [c for c in profiles.columns if not str(c).startswith("Metadata_")]


def check_profiles(profiles: pd.DataFrame, *, source: str = "profiles") -> list[str]:
    """Validate a profiles table for the temporal stage and return its feature columns.

    Raises
    ------
    FeatureTableError
        Missing ``Metadata_*`` columns, no or non-numeric feature columns, NaN or infinite
        features (naming the first offending wells), or duplicated (plate, well, time) rows.
    """
    require_columns(
        profiles,
        REQUIRED_METADATA,
        message=f"{source}: missing metadata column(s) {{missing}}; a profiles table needs "
        f"{list(REQUIRED_METADATA)} (see docs/formats.md)",
    )
    if profiles.empty:
        raise FeatureTableError(f"{source}: the profiles table is empty")
    feats = feature_columns(profiles)
    if not feats:
        raise FeatureTableError(
            f"{source}: no feature columns (columns not starting with Metadata_)"
        )
    bad_type = [c for c in feats if not pd.api.types.is_numeric_dtype(profiles[c])]
    if bad_type:
        raise FeatureTableError(
            f"{source}: non-numeric feature column(s) {bad_type[:5]}; prefix metadata columns "
            "with 'Metadata_'"
        )
    values = profiles[feats].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise FeatureTableError(f"{source}: every feature value is NaN or infinite")
    bad_rows = ~finite.all(axis=1)
    if bad_rows.any():
        rows = profiles.loc[bad_rows, ["Metadata_plate", "Metadata_well", "Metadata_time_h"]]
        listed = "; ".join(
            f"plate {r.Metadata_plate} well {r.Metadata_well} t={r.Metadata_time_h:g} h"
            for r in rows.head(5).itertuples()
        )
        raise FeatureTableError(
            f"{source}: {int(bad_rows.sum())} profile row(s) have NaN/infinite features "
            f"(e.g. {listed}); drop or re-embed those images first"
        )
    dup = profiles.duplicated(["Metadata_plate", "Metadata_well", "Metadata_time_h"], keep=False)
    if dup.any():
        r = profiles.loc[dup].iloc[0]
        raise FeatureTableError(
            f"{source}: {int(dup.sum())} rows share a (plate, well, time) - e.g. plate "
            f"{r['Metadata_plate']} well {r['Metadata_well']} t={r['Metadata_time_h']:g} h; "
            "aggregate per-image features to one profile per well and time first"
        )
    return feats


def nearest_time_index(
    reference_times: Sequence[float] | np.ndarray, times: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Index into ``reference_times`` of the nearest reference time for each of ``times``.

    ``reference_times`` must be sorted ascending; exact ties go to the earlier reference time.
    """
    ref = np.asarray(reference_times, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if ref.ndim != 1 or ref.size == 0:
        raise ValueError("reference_times must be a non-empty 1-D sequence")
    if np.any(np.diff(ref) < 0):
        raise ValueError("reference_times must be sorted ascending")
    right = np.clip(np.searchsorted(ref, t, side="left"), 0, ref.size - 1)
    left = np.clip(right - 1, 0, ref.size - 1)
    choose_left = np.abs(t - ref[left]) <= np.abs(ref[right] - t)
    return np.where(choose_left, left, right)


def rowwise_distance(a: np.ndarray, b: np.ndarray, *, metric: str = "euclidean") -> np.ndarray:
    """Distance between matching rows of ``a`` and ``b`` (broadcast over leading axes).

    Same conventions as :func:`scipy.spatial.distance.cdist` for ``euclidean``, ``cosine``
    (1 - cosine similarity), ``correlation`` (1 - Pearson r) and ``braycurtis``
    (sum|a-b| / sum|a+b|). A zero vector gives NaN for cosine/correlation.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "euclidean":
            return np.sqrt(np.sum((a - b) ** 2, axis=-1))
        if metric == "braycurtis":
            return np.sum(np.abs(a - b), axis=-1) / np.sum(np.abs(a + b), axis=-1)
        if metric == "correlation":
            a = a - a.mean(axis=-1, keepdims=True)
            b = b - b.mean(axis=-1, keepdims=True)
        num = np.sum(a * b, axis=-1)
        den = np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
        out: np.ndarray = 1.0 - num / den
        return np.maximum(out, 0.0)


def control_trajectory(
    profiles: pd.DataFrame, *, plate: str, feature_cols: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Control times and the mean negative-control feature vector at each, for one plate.

    Returns
    -------
    times : ndarray (T,)
        Sorted control time points (hours).
    vectors : ndarray (T, F)
        Mean feature vector of the plate's ``negative_control`` wells at each time point.
    """
    feats = feature_cols if feature_cols is not None else feature_columns(profiles)
    ctrl = profiles[
        (profiles["Metadata_plate"] == plate) & (profiles["Metadata_role"] == NEGATIVE_CONTROL)
    ]
    if ctrl.empty:
        raise FeatureTableError(
            f"plate {plate}: no negative_control wells, so there is no control trajectory; "
            "mark the vehicle wells (e.g. DMSO) with role 'negative_control' in the plate map"
        )
    means = ctrl.groupby("Metadata_time_h", sort=True)[feats].mean()
    return means.index.to_numpy(dtype=np.float64), means.to_numpy(dtype=np.float64)


def _null_by_time(
    ctrl_wells: np.ndarray,
    n: int,
    *,
    metric: str,
    draws: int,
    quantile: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Null distance per time: mean of ``n`` control wells vs the mean of the rest (T,)."""
    n_c, n_t, _ = ctrl_wells.shape
    n = min(n, n_c - 1)
    if n < 1:
        return np.full(n_t, np.nan)
    valid = np.isfinite(ctrl_wells[..., 0])
    filled = np.where(valid[..., None], ctrl_wells, 0.0)
    out = np.empty((draws, n_t))
    for d in range(draws):
        pick = np.zeros(n_c, dtype=bool)
        pick[rng.choice(n_c, size=n, replace=False)] = True
        cnt_a = valid[pick].sum(axis=0)
        cnt_b = valid[~pick].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_a = filled[pick].sum(axis=0) / cnt_a[:, None]
            mean_b = filled[~pick].sum(axis=0) / cnt_b[:, None]
        out[d] = rowwise_distance(mean_a, mean_b, metric=metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(out, quantile, axis=0)


def _well_cube(
    df: pd.DataFrame, feats: list[str], times: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Wells x times x features array of ``df`` on the time grid ``times`` (NaN where missing)."""
    wells = sorted(df["Metadata_well"].astype(str).unique())
    w_idx = {w: i for i, w in enumerate(wells)}
    t_idx = {float(t): i for i, t in enumerate(times)}
    cube = np.full((len(wells), len(times), len(feats)), np.nan)
    wi = df["Metadata_well"].astype(str).map(w_idx).to_numpy()
    ti = df["Metadata_time_h"].astype(float).map(t_idx).to_numpy()
    cube[wi, ti] = df[feats].to_numpy(dtype=np.float64)
    return wells, cube


def _distance_tables(
    profiles: pd.DataFrame,
    *,
    config: DistanceConfig | None,
    feature_cols: list[str] | None,
    return_replicates: bool,
    progress: bool,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The condition-level distances and, with ``return_replicates``, the per-well ones."""
    cfg = config or DistanceConfig()
    feats = feature_cols if feature_cols is not None else check_profiles(profiles)
    rng = np.random.default_rng(cfg.seed)
    rows: list[dict[str, object]] = []
    rep_rows: list[pd.DataFrame] = []
    single: list[str] = []
    plates = sorted(profiles["Metadata_plate"].astype(str).unique())
    prof = profiles.assign(Metadata_plate=profiles["Metadata_plate"].astype(str))
    for plate in tqdm(plates, desc="distance to control", unit="plate", disable=not progress):
        on_plate = prof[prof["Metadata_plate"] == plate]
        c_times, c_vecs = control_trajectory(on_plate, plate=plate, feature_cols=feats)
        ctrl = on_plate[on_plate["Metadata_role"] == NEGATIVE_CONTROL]
        _, ctrl_cube = _well_cube(ctrl, feats, c_times)
        null_cache: dict[int, np.ndarray] = {}
        treated = on_plate[on_plate["Metadata_role"].isin(DISTANCE_ROLES)]
        for key, grp in treated.groupby(CONDITION_KEYS, dropna=False, sort=True):
            times = np.sort(grp["Metadata_time_h"].astype(float).unique())
            match = nearest_time_index(c_times, times)
            ref = c_vecs[match]
            wells, cube = _well_cube(grp, feats, times)
            n_rep = len(wells)
            if n_rep == 1:
                single.append(f"{key[2]} {key[3]:g}" if isinstance(key[3], float) else str(key[2]))
            valid = np.isfinite(cube[..., 0])
            filled = np.where(valid[..., None], cube, 0.0)
            counts = valid.sum(axis=0)
            mean_vec = filled.sum(axis=0) / counts[:, None]
            dist = rowwise_distance(mean_vec, ref, metric=cfg.metric)
            per_well = rowwise_distance(cube, ref[None], metric=cfg.metric)  # (W, T)
            per_well = np.where(valid, per_well, np.nan)
            lo = np.full(times.size, np.nan)
            hi = np.full(times.size, np.nan)
            if cfg.n_bootstrap > 0 and n_rep > 1:
                idx = rng.integers(0, n_rep, size=(cfg.n_bootstrap, n_rep))
                weights = np.zeros((cfg.n_bootstrap, n_rep))
                np.add.at(weights, (np.arange(cfg.n_bootstrap)[:, None], idx), 1.0)
                boot = np.empty((cfg.n_bootstrap, times.size))
                for ti in range(times.size):
                    w = weights * valid[:, ti][None, :]
                    tot = w.sum(axis=1, keepdims=True)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        bvec = (w @ filled[:, ti, :]) / tot
                    boot[:, ti] = rowwise_distance(bvec, ref[ti][None], metric=cfg.metric)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo = np.nanquantile(boot, 0.025, axis=0)
                    hi = np.nanquantile(boot, 0.975, axis=0)
            if n_rep not in null_cache:
                null_cache[n_rep] = _null_by_time(
                    ctrl_cube,
                    n_rep,
                    metric=cfg.metric,
                    draws=cfg.null_draws,
                    quantile=cfg.null_quantile,
                    rng=rng,
                )
            null = null_cache[n_rep][match]
            spread = np.where(null > 0, null, np.nan)  # the unit of the relative distances
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rep_mean = np.nanmean(per_well, axis=0)
                rep_sd = (
                    np.nanstd(per_well, axis=0, ddof=1)
                    if n_rep > 1
                    else np.full(times.size, np.nan)
                )
                rep_min = np.nanmin(per_well, axis=0)
                rep_max = np.nanmax(per_well, axis=0)
            base = dict(zip(CONDITION_KEYS, key, strict=True))
            for ti, t in enumerate(times):
                rows.append(
                    {
                        **base,
                        "Metadata_time_h": float(t),
                        "Metadata_control_time_h": float(c_times[match[ti]]),
                        "Metadata_n_replicates": int(counts[ti]),
                        "Metadata_metric": cfg.metric,
                        "distance": float(dist[ti]),
                        "distance_replicate_mean": float(rep_mean[ti]),
                        "distance_replicate_sd": float(rep_sd[ti]),
                        "distance_replicate_min": float(rep_min[ti]),
                        "distance_replicate_max": float(rep_max[ti]),
                        "distance_ci_low": float(lo[ti]),
                        "distance_ci_high": float(hi[ti]),
                        "null_distance": float(null[ti]),
                        "relative_distance": float(dist[ti] / spread[ti]),
                        "relative_ci_low": float(lo[ti] / spread[ti]),
                        "relative_ci_high": float(hi[ti] / spread[ti]),
                    }
                )
            if return_replicates:
                w_grid, t_grid = np.meshgrid(np.arange(n_rep), np.arange(times.size), indexing="ij")
                keep = valid.ravel()
                rep = pd.DataFrame(
                    {
                        "Metadata_well": np.asarray(wells)[w_grid.ravel()][keep],
                        "Metadata_time_h": times[t_grid.ravel()][keep],
                        "Metadata_control_time_h": c_times[match][t_grid.ravel()][keep],
                        "distance": per_well.ravel()[keep],
                    }
                )
                for k, v in base.items():
                    rep.insert(0, k, v)
                rep_rows.append(rep)
    if single:
        warnings.warn(
            f"{len(single)} condition(s) have a single replicate well (e.g. {single[:3]}); their "
            "distance has no replicate band (NaN)",
            stacklevel=3,
        )
    out = pd.DataFrame(rows)
    if out.empty:
        raise FeatureTableError(
            "no treatment, untreated or positive_control wells found: nothing to compare with "
            "the control"
        )
    if return_replicates:
        reps = pd.concat(rep_rows, ignore_index=True)[
            [
                *CONDITION_KEYS,
                "Metadata_well",
                "Metadata_time_h",
                "Metadata_control_time_h",
                "distance",
            ]
        ]
        return out, reps
    return out, None


def distance_to_control(
    profiles: pd.DataFrame,
    *,
    config: DistanceConfig | None = None,
    feature_cols: list[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Distance-to-control curves, one row per (cell line, plate, drug, concentration, time).

    Parameters
    ----------
    profiles
        Profiles table (docs/formats.md): one row per (plate, well, time point).
    config
        Metric, bootstrap and null options (:class:`DistanceConfig`).
    feature_cols
        Feature columns to use (default: every non-``Metadata_`` column).
    progress
        Show a progress bar over plates.

    Returns
    -------
    distances : DataFrame
        ``Metadata_cell_line, Metadata_plate, Metadata_drug, Metadata_concentration_um,
        Metadata_role, Metadata_time_h, Metadata_control_time_h, Metadata_n_replicates,
        Metadata_metric`` and ``distance`` (mean vector to control), ``distance_replicate_mean``,
        ``distance_replicate_sd``, ``distance_replicate_min``, ``distance_replicate_max``,
        ``distance_ci_low``, ``distance_ci_high`` (bootstrap 95 % band), ``null_distance``,
        and ``relative_distance``, ``relative_ci_low``, ``relative_ci_high``: the distance and
        its band in units of the control's own spread (``null_distance``; 1 = the edge of the
        control band).
    """
    return _distance_tables(
        profiles,
        config=config,
        feature_cols=feature_cols,
        return_replicates=False,
        progress=progress,
    )[0]


def distance_to_control_with_replicates(
    profiles: pd.DataFrame,
    *,
    config: DistanceConfig | None = None,
    feature_cols: list[str] | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`distance_to_control` and the distance of every replicate well.

    Parameters are those of :func:`distance_to_control`; the same seed gives the same bands.

    Returns
    -------
    distances : DataFrame
        As :func:`distance_to_control`.
    replicates : DataFrame
        Per well and time point: the condition keys, ``Metadata_well``, ``Metadata_time_h``,
        ``Metadata_control_time_h`` and ``distance``.
    """
    out, reps = _distance_tables(
        profiles,
        config=config,
        feature_cols=feature_cols,
        return_replicates=True,
        progress=progress,
    )
    assert reps is not None
    return out, reps


def onset_times(
    distances: pd.DataFrame, *, band: float = 1.0, consecutive: int = 2
) -> pd.DataFrame:
    """First time after drug addition at which a condition leaves the control band.

    A condition has left the band at time t when its ``relative_distance`` exceeds ``band`` at t
    and at the ``consecutive - 1`` following time points (or at every point left before the end),
    so that one noisy frame does not count. Returns one row per condition: the keys without
    ``Metadata_`` and ``onset_h`` (NaN if it never leaves the band).
    """
    if "relative_distance" not in distances.columns:
        raise FeatureTableError("the distance table lacks 'relative_distance'")
    rows = []
    after = distances[distances["Metadata_time_h"] > 0]
    for key, grp in after.groupby(CONDITION_KEYS, dropna=False, sort=True):
        grp = grp.sort_values("Metadata_time_h")
        out = np.nan_to_num(grp["relative_distance"].to_numpy(dtype=np.float64)) > band
        onset = float("nan")
        for i in range(out.size):
            if out[i : i + consecutive].all():
                onset = float(grp["Metadata_time_h"].iloc[i])
                break
        rows.append(
            {
                **{
                    k: v for k, v in zip(strip_prefix(CONDITION_KEYS), key, strict=True)
                },
                "onset_h": onset,
            }
        )
    return pd.DataFrame(rows)
