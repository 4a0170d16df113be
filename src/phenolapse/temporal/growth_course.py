"""Growth time courses without images: GR(c, t), GR metrics and dose-response at every time point.

Works on the long growth table of :mod:`phenolapse.data.incucyte` (``plate, well, time_h, metric,
value`` with the plate map's ``cell_line, drug, concentration_um, role``). A *group* is one
dose-response context: ``cell_line`` and ``plate`` plus the ``keys`` a user adds (a growth
condition, a seeding density); each group holds its own negative controls.

- Time points: the rows of one scan cycle are one time point. Time stamps of a plate closer than
  ``tolerance_h`` to their neighbour are merged into one time point, labelled with their median
  (:func:`group_scan_times`), so wells imaged minutes apart share a time point.
- GR(c, t) per condition: replicate wells are averaged first; x0 is the condition's value at its
  first time point, the control's likewise (drug addition at the first scan).
- GR metrics per (group, drug, time point) across concentrations: :mod:`.gr_metrics`.
- Dose-response per (group, drug, time point): LL.4 (:mod:`.dose_response`) of each well's value
  relative to the mean of the group's control wells at that time point, controls entering at
  concentration 0. Extra time points (``times``) are read off each well's curve by linear
  interpolation between its scans.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from phenolapse.errors import FeatureTableError
from phenolapse.temporal.dose_response import FIT_COLUMNS, fit_log_logistic
from phenolapse.temporal.gr_metrics import METRIC_COLUMNS, fit_gr_curve, gr_static_toxic
from phenolapse.vocabulary import NEGATIVE_CONTROL, TREATED_ROLES

BASE_KEYS = ["cell_line", "plate"]


def group_scan_times(
    times: Sequence[float] | np.ndarray, *, tolerance_h: float = 0.5
) -> np.ndarray:
    """Label of the scan cycle of every time stamp: the median of its cycle.

    Sorted time stamps closer than ``tolerance_h`` to the previous one belong to the same cycle.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        return t.copy()
    uniq = np.unique(t[np.isfinite(t)])
    if uniq.size == 0:
        return t.copy()
    cycle = np.concatenate([[0], np.cumsum(np.diff(uniq) > tolerance_h)])
    label = {c: float(np.median(uniq[cycle == c])) for c in np.unique(cycle)}
    mapping = dict(zip(uniq, (label[c] for c in cycle), strict=True))
    return np.array([mapping.get(v, np.nan) for v in t])


def prepare(
    long: pd.DataFrame, *, keys: Sequence[str] = (), tolerance_h: float = 0.5
) -> pd.DataFrame:
    """Check a long growth table with conditions and merge scan cycles into time points.

    Returns a copy with ``time_h`` replaced by the cycle label (the stamp as read in
    ``time_h_raw``), blank wells removed and ``cell_line`` filled from ``plate`` where empty.
    """
    need = ["plate", "well", "time_h", "metric", "value", "drug", "concentration_um", "role"]
    missing = [c for c in [*need, *keys] if c not in long.columns]
    if missing:
        raise FeatureTableError(
            f"growth table lacks column(s) {missing}; give a plate map (--platemap) with drug, "
            "concentration and role for every well"
        )
    df = long.copy()
    if "cell_line" not in df.columns:
        df["cell_line"] = ""
    df["cell_line"] = df["cell_line"].fillna("").astype(str)
    empty = df["cell_line"] == ""
    df.loc[empty, "cell_line"] = df.loc[empty, "plate"].astype(str)
    df["role"] = df["role"].fillna("").astype(str)
    df = df[~df["role"].isin(["blank", "empty", ""])].copy()
    df["time_h_raw"] = df["time_h"]
    for _plate, idx in df.groupby("plate").groups.items():
        df.loc[idx, "time_h"] = group_scan_times(df.loc[idx, "time_h"], tolerance_h=tolerance_h)
    for k in keys:
        df[k] = df[k].fillna("").astype(str)
    treated = df["role"].isin(TREATED_ROLES)
    bad = treated & ~(pd.to_numeric(df["concentration_um"], errors="coerce") > 0)
    if bad.any():
        plate, well, conc = df.loc[bad, ["plate", "well", "concentration_um"]].iloc[0]
        raise FeatureTableError(
            f"plate {plate}, well {well}: treated well without a positive concentration "
            f"({conc!r}); fix the plate map"
        )
    return df


def _wide(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (well, time point) the mean value of ``metric``; rows wells, columns time points."""
    sub = df[df["metric"] == metric]
    return sub.pivot_table(index="well", columns="time_h", values="value", aggfunc="mean")


def _groups(df: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    return [*BASE_KEYS, *keys]


def time_course_gr(
    df: pd.DataFrame,
    *,
    metric: str = "confluence",
    dead_metric: str | None = None,
    keys: Sequence[str] = (),
    min_control_log2: float = 0.1,
) -> pd.DataFrame:
    """GR(c, t) of every condition at every time point (module docstring).

    Returns one row per (group, drug, concentration, time point): the group columns, ``drug,
    concentration_um, role, time_h, GR`` (``GR_static, GR_toxic`` with a dead readout), ``x, x0,
    xc, x0c`` (and ``d, d0, dc, d0c``) and ``n_wells``. GR is NaN while the control has grown less
    than ``min_control_log2`` doublings.
    """
    gkeys = _groups(df, keys)
    if metric not in set(df["metric"]):
        raise FeatureTableError(
            f"no '{metric}' values in the growth input (metrics found: "
            f"{sorted(set(df['metric']))}); choose one with --metric"
        )
    out = []
    for gkey, grp in df.groupby(gkeys, sort=True):
        meta = dict(zip(gkeys, gkey, strict=True))
        label = ", ".join(f"{k}={v}" for k, v in meta.items())
        wide = _wide(grp, metric)
        if wide.empty:
            continue
        info = grp.drop_duplicates("well").set_index("well")
        ctrl_wells = info.index[info["role"] == NEGATIVE_CONTROL]
        if len(ctrl_wells) == 0:
            raise FeatureTableError(
                f"{label}: no negative_control wells (vehicle such as DMSO); GR needs them"
            )
        times = wide.columns.to_numpy(dtype=np.float64)
        xc = wide.loc[wide.index.intersection(ctrl_wells)].mean(axis=0).to_numpy()
        dead = _wide(grp, dead_metric) if dead_metric else None
        dc = (
            dead.loc[dead.index.intersection(ctrl_wells)]
            .reindex(columns=wide.columns)
            .mean(axis=0)
            .to_numpy()
            if dead is not None and not dead.empty
            else None
        )
        treated = info[info["role"].isin(TREATED_ROLES)]
        for (drug, conc, role), cond in treated.groupby(
            ["drug", "concentration_um", "role"], sort=True, dropna=False
        ):
            wells = wide.index.intersection(cond.index)
            if len(wells) == 0:
                continue
            x = wide.loc[wells].mean(axis=0).to_numpy()
            first = (
                int(np.flatnonzero(np.isfinite(x) & np.isfinite(xc))[0])
                if (np.isfinite(x) & np.isfinite(xc)).any()
                else 0
            )
            x0, x0c = x[first], xc[first]
            with np.errstate(divide="ignore", invalid="ignore"):
                ctrl_log = np.log2(xc / x0c)
                gr = 2.0 ** (np.log2(x / x0) / ctrl_log) - 1.0
            gr = np.where(np.abs(ctrl_log) < min_control_log2, np.nan, gr)
            frame = {
                **meta,
                "drug": drug,
                "concentration_um": conc,
                "role": role,
                "time_h": times,
                "GR": gr,
            }
            if dc is not None and dead is not None:
                d = (
                    dead.loc[dead.index.intersection(wells)]
                    .reindex(columns=wide.columns)
                    .mean(axis=0)
                    .to_numpy()
                )
                d0, d0c = d[first], dc[first]
                # the control's own time-zero values enter its death and division rates
                with np.errstate(divide="ignore", invalid="ignore"):
                    static, toxic = _static_toxic(x, x0, xc, x0c, d, d0, dc, d0c)
                frame["GR_static"] = np.where(np.isnan(gr), np.nan, static)
                frame["GR_toxic"] = np.where(np.isnan(gr), np.nan, toxic)
            frame.update({"x": x, "x0": x0, "xc": xc, "x0c": x0c})
            if dc is not None and dead is not None:
                frame.update({"d": d, "d0": d0, "dc": dc, "d0c": d0c})
            frame["n_wells"] = len(wells)
            out.append(pd.DataFrame(frame))
    if not out:
        raise FeatureTableError("no treated wells with values to compute GR for")
    return pd.concat(out, ignore_index=True)


def _static_toxic(
    x: np.ndarray,
    x0: float,
    xc: np.ndarray,
    x0c: float,
    d: np.ndarray,
    d0: float,
    dc: np.ndarray,
    d0c: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GR_static / GR_toxic when treated and control series have their own time-zero values."""
    # rescale the control to the treated series' start: rates are invariant to the scale of x
    scale = x0 / x0c if x0c > 0 else np.nan
    return gr_static_toxic(x, xc * scale, x0, d, dc * scale, d0, d0_ctrl=d0c * scale)


def gr_metrics_over_time(
    gr_table: pd.DataFrame, *, keys: Sequence[str] = (), pcutoff: float = 0.05
) -> pd.DataFrame:
    """GR metrics (GR50, GRmax, ...) per (group, drug, time point) across concentrations."""
    gkeys = [*_groups(gr_table, keys), "drug", "time_h"]
    sub = gr_table[gr_table["role"].isin(TREATED_ROLES) & np.isfinite(gr_table["GR"])]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for key, grp in sub.groupby(gkeys, sort=True):
            fit = fit_gr_curve(grp["concentration_um"], grp["GR"], pcutoff=pcutoff)
            rows.append({**dict(zip(gkeys, key, strict=True)), **fit})
    return pd.DataFrame(rows, columns=[*gkeys, *METRIC_COLUMNS])


def well_values(df: pd.DataFrame, *, metric: str, times: Sequence[float] = ()) -> pd.DataFrame:
    """Per well its value of ``metric`` at every time point and at the extra ``times``.

    Extra times come from linear interpolation between the well's scans (NaN outside them).
    Returns ``plate, well, time_h, value``.
    """
    sub = df[df["metric"] == metric]
    parts: list[pd.DataFrame] = [
        sub.groupby(["plate", "well", "time_h"])["value"].mean().reset_index()
    ]
    if len(times):
        extra = []
        for (plate, well), grp in parts[0].groupby(["plate", "well"], sort=False):
            t = grp["time_h"].to_numpy(dtype=np.float64)
            v = grp["value"].to_numpy(dtype=np.float64)
            ok = np.isfinite(v)
            for cut in times:
                if cut in set(t) or ok.sum() < 2:
                    continue
                val = np.interp(cut, t[ok], v[ok], left=np.nan, right=np.nan)
                extra.append({"plate": plate, "well": well, "time_h": float(cut), "value": val})
        if extra:
            parts.append(pd.DataFrame(extra))
    return pd.concat(parts, ignore_index=True)


def dose_response_over_time(
    df: pd.DataFrame,
    *,
    metric: str = "confluence",
    keys: Sequence[str] = (),
    times: Sequence[float] = (),
    relative: bool = True,
    all_times: bool = True,
) -> pd.DataFrame:
    """LL.4 EC50 / IC50 of ``metric`` per (group, drug, time point) (module docstring).

    ``times`` adds time points read off each well's curve; ``all_times=False`` fits only those.
    With ``relative`` each value is divided by the group's mean control value at that time, so
    ``response_at_zero`` is near 1 and the IC50 is where the fit crosses half the control.
    """
    gkeys = _groups(df, keys)
    values = well_values(df, metric=metric, times=times)
    info = df.drop_duplicates(["plate", "well"])[
        ["plate", "well", *[k for k in gkeys if k != "plate"], "drug", "concentration_um", "role"]
    ]
    data = values.merge(info, on=["plate", "well"], how="inner")
    scans = set(df["time_h"].astype(float))
    if not all_times:
        data = data[data["time_h"].isin([float(t) for t in times])]
    rows = []
    for gkey, grp in data.groupby([*gkeys, "time_h"], sort=True):
        meta = dict(zip([*gkeys, "time_h"], gkey, strict=True))
        ctrl = grp[grp["role"] == NEGATIVE_CONTROL]
        ctrl_mean = float(ctrl["value"].mean()) if len(ctrl) else float("nan")
        for drug, treated in grp[grp["role"].isin(TREATED_ROLES)].groupby("drug", sort=True):
            x = np.concatenate([np.zeros(len(ctrl)), treated["concentration_um"].to_numpy(float)])
            y = np.concatenate([ctrl["value"].to_numpy(float), treated["value"].to_numpy(float)])
            if relative:
                y = y / ctrl_mean if ctrl_mean > 0 else np.full_like(y, np.nan)
            fit = fit_log_logistic(x, y, ic_level=0.5 if relative else np.nan)
            fit.pop("rss", None)
            rows.append(
                {
                    **{k: v for k, v in meta.items() if k != "time_h"},
                    "drug": drug,
                    "time_h": meta["time_h"],
                    "time_kind": "scan" if meta["time_h"] in scans else "at",
                    "metric": metric,
                    "relative_to_control": relative,
                    "control_value": ctrl_mean,
                    **fit,
                }
            )
    cols = [
        *gkeys,
        "drug",
        "time_h",
        "time_kind",
        "metric",
        "relative_to_control",
        "control_value",
        *FIT_COLUMNS,
    ]
    out = pd.DataFrame(rows, columns=cols)
    out["n_points"] = out["n_points"].astype("Int64")
    return out


def doubling_cut_times(
    df: pd.DataFrame,
    *,
    metric: str = "confluence",
    keys: Sequence[str] = (),
    baseline_h: float = 24.0,
    doublings: float = 4.0,
    max_value: float = 80.0,
) -> pd.DataFrame:
    """Per group the time the controls need to double ``doublings`` times after ``baseline_h``.

    The control curve (mean of the control wells, linear between scans) is read at
    ``baseline_h``; the cut is where it first reaches that value times 2 ** ``doublings``, or
    ``max_value`` when that is lower (the doublings reached are then fewer). NaN when the
    control never gets there. Returns the group columns, ``cut_time_h``, ``value_at_baseline``
    and ``doublings_reached``.
    """
    gkeys = _groups(df, keys)
    rows = []
    ctrl = df[(df["role"] == NEGATIVE_CONTROL) & (df["metric"] == metric)]
    for gkey, grp in ctrl.groupby(gkeys, sort=True):
        curve = grp.groupby("time_h")["value"].mean()
        t = curve.index.to_numpy(dtype=np.float64)
        v = curve.to_numpy(dtype=np.float64)
        base = float(np.interp(baseline_h, t, v))
        target = min(base * 2.0**doublings, max_value)
        after = np.flatnonzero((t > baseline_h) & (v >= target))
        cut = float("nan")
        if base > 0 and after.size:
            i = int(after[0])
            t0, v0 = (baseline_h, base) if t[i - 1] < baseline_h else (t[i - 1], v[i - 1])
            cut = float(np.interp(target, [v0, v[i]], [t0, t[i]])) if v[i] > v0 else float(t[i])
        rows.append(
            {
                **dict(zip(gkeys, gkey, strict=True)),
                "cut_time_h": cut,
                "value_at_baseline": base,
                "doublings_reached": float(np.log2(target / base)) if base > 0 else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=[*gkeys, "cut_time_h", "value_at_baseline", "doublings_reached"]
    )
