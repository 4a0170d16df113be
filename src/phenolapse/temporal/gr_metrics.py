"""GR values and GR metrics as the reference tools compute them (Hafner et al. 2016).

GR value of a treated measurement x with control x_ctrl and time-zero x_0::

    GR = 2 ** (log2(x / x_0) / log2(x_ctrl / x_0)) - 1

GR metrics come from a sigmoid fit of GR against concentration c, on a log10 scale::

    GR(c) = GRinf + (1 - GRinf) / (1 + (c / GEC50) ** h_GR)

with GRinf in [-1, 1], h_GR in [0.1, 5] and log10 GEC50 within two decades of the tested range.
``GR50`` solves GR(c) = 0.5 on the fit (``inf`` when GRinf > 0.5); ``GRmax`` is the lowest GR
at the two highest concentrations (replicates averaged first); ``GR_AOC`` is the area over the
observed curve, the trapezoid integral of 1 - GR over log10 concentration divided by the log10
range. The sigmoid is kept when an F-test against a flat line (the mean GR) gives p <= ``pcutoff``
(F with 2 and n - 2 degrees of freedom); otherwise the fit is flat: GRinf = the mean GR, GEC50 = 0,
h_GR = 0.01 and GR50 = +inf (mean > 0.5) or -inf. ``r2_GR`` and ``pval_GR`` are those of the
sigmoid.

With a dead-cell readout d (dead count or dead-dye area) the GR value splits into a cytostatic and
a cytotoxic part (after Schwartz et al. 2020). Assuming exponential growth, the live-cell
population x changes at rate k = k_div - k_death while dead cells accumulate at k_death * x, so
over the assay ``k_death * T = log2(x / x_0) * (d - d_0) / (x - x_0)`` (in doublings; the factor
tends to 1 / x_0 when x tends to x_0) and ``k_div * T = log2(x / x_0) + k_death * T``. Then::

    GR_static = 2 ** (k_div(c) / k_div(0)) - 1
    GR_toxic  = 2 ** ((k_death(0) - k_death(c)) / k_div(0)) - 1

GR_static is 1 when division goes on as in the control and 0 when it stops; GR_toxic is 0 when
cells die as in the control and negative when the drug kills.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import least_squares

METRIC_COLUMNS = [
    "GR50",
    "GRmax",
    "GRinf",
    "GR_AOC",
    "GEC50",
    "h_GR",
    "r2_GR",
    "pval_GR",
    "fit",
    "n_concentrations",
]
VALUE_COLUMNS = ("cell_count", "dead_count")


def gr_value(x: Any, x_ctrl: Any, x0: Any) -> np.ndarray:
    """GR value(s) of treated ``x`` against control ``x_ctrl`` from time-zero ``x0``."""
    x, x_ctrl, x0 = (np.asarray(v, dtype=np.float64) for v in (x, x_ctrl, x0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(2.0 ** (np.log2(x / x0) / np.log2(x_ctrl / x0)) - 1.0)


def _death_doublings(x: np.ndarray, x0: np.ndarray, d: np.ndarray, d0: np.ndarray) -> np.ndarray:
    """``k_death * T`` in doublings: log2(x/x0) * (d - d0) / (x - x0), stable at x == x0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log2(x / x0)
        diff = x - x0
        close = np.abs(diff) <= 1e-9 * np.maximum(np.abs(x0), 1e-300)
        factor = np.where(close, 1.0 / (x0 * np.log(2.0)), log_ratio / np.where(close, 1.0, diff))
        return np.asarray((d - d0) * factor)


def gr_static_toxic(
    x: Any, x_ctrl: Any, x0: Any, d: Any, d_ctrl: Any, d0: Any, *, d0_ctrl: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """GR_static and GR_toxic (module docstring) from live ``x`` and dead ``d`` readouts.

    ``d0_ctrl`` is the control's dead readout at time zero (default ``d0``).
    """
    x, x_ctrl, x0, d, d_ctrl, d0 = (
        np.asarray(v, dtype=np.float64) for v in (x, x_ctrl, x0, d, d_ctrl, d0)
    )
    d0c = d0 if d0_ctrl is None else np.asarray(d0_ctrl, dtype=np.float64)
    death = _death_doublings(x, x0, d, d0)
    death_ctrl = _death_doublings(x_ctrl, x0, d_ctrl, d0c)
    with np.errstate(divide="ignore", invalid="ignore"):
        div = np.log2(x / x0) + death
        div_ctrl = np.log2(x_ctrl / x0) + death_ctrl
        static = 2.0 ** (div / div_ctrl) - 1.0
        toxic = 2.0 ** ((death_ctrl - death) / div_ctrl) - 1.0
    return np.asarray(static), np.asarray(toxic)


def gr_values(table: pd.DataFrame) -> pd.DataFrame:
    """GR (and, with dead counts, GR_static / GR_toxic) for every row of a GR tools' table.

    The table needs ``cell_count``, ``cell_count__ctrl``, ``cell_count__time0`` and, for the
    split, ``dead_count``, ``dead_count__ctrl``, ``dead_count__time0``. Returns a copy with the
    new columns; the input is not modified.
    """
    out = table.copy()
    out["GR"] = gr_value(out["cell_count"], out["cell_count__ctrl"], out["cell_count__time0"])
    dead = ("dead_count", "dead_count__ctrl", "dead_count__time0")
    if all(c in out.columns for c in dead):
        static, toxic = gr_static_toxic(
            out["cell_count"],
            out["cell_count__ctrl"],
            out["cell_count__time0"],
            out["dead_count"],
            out["dead_count__ctrl"],
            out["dead_count__time0"],
        )
        out["GR_static"], out["GR_toxic"] = static, toxic
    return out


def _sigmoid(params: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    gr_inf, log_gec50, hill = params
    with np.errstate(over="ignore"):
        return np.asarray(gr_inf + (1.0 - gr_inf) / (1.0 + 10.0 ** ((log_c - log_gec50) * hill)))


def _sigmoid_jac(params: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    gr_inf, log_gec50, hill = params
    with np.errstate(over="ignore", invalid="ignore"):
        u = 10.0 ** ((log_c - log_gec50) * hill)
        den = 1.0 + u
        common = -(1.0 - gr_inf) * u * np.log(10.0) / den**2
        jac = np.column_stack([1.0 - 1.0 / den, common * -hill, common * (log_c - log_gec50)])
    return np.nan_to_num(jac)


def fit_gr_curve(
    concentration: Any, gr: Any, *, pcutoff: float = 0.05
) -> dict[str, float | int | str]:
    """GR metrics of one dose-response (module docstring for the definitions).

    Parameters
    ----------
    concentration
        Concentrations (> 0), one per GR value; repeated concentrations are replicates.
    gr
        GR values; NaN values are left out.
    pcutoff
        The sigmoid is kept when the F-test p-value is at most this (above 1 always keeps it).

    Returns
    -------
    dict
        ``GR50, GRmax, GRinf, GR_AOC, GEC50, h_GR, r2_GR, pval_GR, fit, n_concentrations``
        (``fit`` is ``sigmoid``, ``flat`` or ``none`` when fewer than 3 concentrations).
    """
    c = np.asarray(concentration, dtype=np.float64)
    y = np.asarray(gr, dtype=np.float64)
    keep = np.isfinite(c) & np.isfinite(y) & (c > 0)
    c, y = c[keep], y[keep]
    levels = np.unique(c)
    out: dict[str, float | int | str] = {k: float("nan") for k in METRIC_COLUMNS}
    out["n_concentrations"] = int(levels.size)
    out["fit"] = "none"
    if levels.size == 0:
        return out
    mean_at = np.array([y[c == v].mean() for v in levels])
    out["GRmax"] = float(mean_at[-2:].min())
    log_levels = np.log10(levels)
    if levels.size >= 2:
        span = log_levels[-1] - log_levels[0]
        out["GR_AOC"] = float(np.trapezoid(1.0 - mean_at, log_levels) / span)
    if levels.size < 3:
        return out
    log_c = np.log10(c)
    lower = [-1.0, log_levels[0] - 2.0, 0.1]
    upper = [1.0, log_levels[-1] + 2.0, 5.0]
    mid = float(np.median(log_c))
    starts = [[0.1, mid, 2.0], [-0.5, mid, 1.0], [0.5, log_levels[-1], 0.5]]

    def solve(start: Any, tol: float, nfev: int) -> Any:
        return least_squares(
            lambda p: _sigmoid(p, log_c) - y,
            np.clip(start, lower, upper),
            jac=lambda p: _sigmoid_jac(p, log_c),
            bounds=(lower, upper),
            xtol=tol,
            ftol=tol,
            gtol=tol,
            max_nfev=nfev,
        )

    # coarse fits from several starts, then the best one refined
    best = min((solve(s, 1e-6, 40) for s in starts), key=lambda r: float(r.cost))
    refined = solve(best.x, 1e-10, 100)
    if refined.cost <= best.cost:
        best = refined
    assert best is not None
    rss_sig = float(2.0 * best.cost)
    rss_flat = float(((y - y.mean()) ** 2).sum())
    n = y.size
    df2 = n - 2
    if rss_flat > 0 and rss_sig > 0 and df2 > 0:
        f_value = ((rss_flat - rss_sig) / 2.0) / (rss_sig / df2)
        pval = float(stats.f.sf(f_value, 2, df2))
        r2 = 1.0 - rss_sig / rss_flat
    elif rss_sig == 0 and rss_flat > 0:
        pval, r2 = 0.0, 1.0
    else:
        pval, r2 = 1.0, float("nan")
    out["r2_GR"], out["pval_GR"] = float(r2), pval
    gr_inf, log_gec50, hill = (float(v) for v in best.x)
    if pval <= pcutoff:
        out["fit"] = "sigmoid"
        out["GRinf"], out["GEC50"], out["h_GR"] = gr_inf, float(10.0**log_gec50), hill
        if gr_inf > 0.5:
            out["GR50"] = float("inf")
        else:
            out["GR50"] = float(
                10.0**log_gec50 * ((1.0 - gr_inf) / (0.5 - gr_inf) - 1.0) ** (1.0 / hill)
            )
    else:
        flat = float(y.mean())
        out["fit"] = "flat"
        out["GRinf"], out["GEC50"], out["h_GR"] = flat, 0.0, 0.01
        out["GR50"] = float("inf") if flat > 0.5 else float("-inf")
    return out


def gr_curve(concentration: Any, metrics: Mapping[Any, Any]) -> np.ndarray:
    """The fitted GR curve of :func:`fit_gr_curve` evaluated at ``concentration``."""
    c = np.asarray(concentration, dtype=np.float64)
    if metrics.get("fit") == "flat":
        return np.full(c.shape, float(metrics["GRinf"]))
    if metrics.get("fit") != "sigmoid":
        return np.full(c.shape, np.nan)
    return _sigmoid(
        np.array([metrics["GRinf"], np.log10(metrics["GEC50"]), metrics["h_GR"]]), np.log10(c)
    )


def gr_metrics(
    gr_table: pd.DataFrame,
    *,
    keys: list[str],
    concentration: str = "concentration",
    value: str = "GR",
    pcutoff: float = 0.05,
) -> pd.DataFrame:
    """GR metrics per group of ``keys`` (one dose-response each): ``keys`` + METRIC_COLUMNS."""
    missing = [c for c in [*keys, concentration, value] if c not in gr_table.columns]
    if missing:
        raise KeyError(f"GR table lacks column(s) {missing}")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for key, grp in gr_table.groupby(keys, sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            fit = fit_gr_curve(grp[concentration], grp[value], pcutoff=pcutoff)
            rows.append({**dict(zip(keys, key, strict=True)), **fit})
    return pd.DataFrame(rows, columns=[*keys, *METRIC_COLUMNS])
