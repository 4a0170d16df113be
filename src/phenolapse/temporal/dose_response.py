"""Four-parameter log-logistic dose-response fits (the ``LL.4`` model of R's drc package).

The model of a response y at concentration x::

    y(x) = c + (d - c) / (1 + exp(b * (log(x) - log(e))))

with ``b`` the slope (reported positive; a response that rises with dose has d < c), ``c`` the response at
infinite dose, ``d`` the response at zero dose and ``e`` the EC50 (the inflection point, halfway
between c and d). Control wells enter at x = 0, where y = d (b > 0). The fit is least squares
(Levenberg-Marquardt) from several starts; standard errors come from the Jacobian at the optimum (residual variance
over n - 4 degrees of freedom). The 95 % interval of the EC50 is ``exp(log e +- t * se(log e))``
(t of Student with n - 4 degrees of freedom), which stays positive; ``ec50_se`` is the standard
error of e itself (delta method), as drc reports it. The IC50 is the concentration where the
fitted response crosses ``ic_level`` (default 0.5 of the control when responses are relative to
the control); its interval comes from the delta method on log IC50.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats
from scipy.optimize import least_squares

FIT_COLUMNS = [
    "ec50_um",
    "ec50_se",
    "ec50_low",
    "ec50_high",
    "ic50_um",
    "ic50_low",
    "ic50_high",
    "hill",
    "response_at_zero",
    "response_at_inf",
    "r2",
    "n_points",
]


def ll4(x: Any, b: float, c: float, d: float, e: float) -> np.ndarray:
    """The LL.4 curve at concentrations ``x`` (x = 0 gives its limit)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        u = np.exp(b * (np.log(x) - np.log(e)))
    u = np.where(x <= 0, 0.0 if b > 0 else np.inf, u)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(c + (d - c) / (1.0 + u))


def _parts(p: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s = 1 / (1 + u)`` and ``log_x - log_e`` (u = exp(b (log x - log e)); log 0 = -inf)."""
    b, _, _, log_e = p
    z = log_x - log_e
    with np.errstate(invalid="ignore", over="ignore"):
        s = special.expit(-b * z)
    return np.nan_to_num(s, nan=0.5), z


def _model(p: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    s, _ = _parts(p, log_x)
    return np.asarray(p[1] + (p[2] - p[1]) * s)


def _jacobian(p: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    s, z = _parts(p, log_x)
    b, c, d, _ = p
    w = s * (1.0 - s)
    with np.errstate(invalid="ignore"):
        d_b = np.where(w > 0, -(d - c) * w * z, 0.0)
        d_log_e = (d - c) * w * b
    return np.column_stack([d_b, 1.0 - s, s, d_log_e])


def _crossing(p: np.ndarray, level: float) -> float:
    """log concentration where the curve with parameters ``p`` crosses ``level`` (NaN if never)."""
    b, c, d, log_e = p
    lo, hi = min(c, d), max(c, d)
    if not (lo < level < hi) or b == 0:
        return float("nan")
    return float(log_e + np.log((d - level) / (level - c)) / b)


def _exp(v: float) -> float:
    """exp(v), inf beyond the float range (an unbounded interval)."""
    return float(np.exp(v)) if v < 700 else float("inf")


def fit_log_logistic(
    concentration: Any, response: Any, *, ic_level: float = 0.5
) -> dict[str, float]:
    """Fit LL.4 to (concentration, response) pairs; returns FIT_COLUMNS and ``rss``.

    Concentrations of 0 are controls; at least 5 points and 3 positive concentrations are needed,
    else every value is NaN.
    """
    x = np.asarray(concentration, dtype=np.float64)
    y = np.asarray(response, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    x, y = x[keep], y[keep]
    out = {k: float("nan") for k in FIT_COLUMNS}
    out["n_points"] = float(x.size)
    positive = np.unique(x[x > 0])
    if x.size < 5 or positive.size < 3:
        return out
    log_pos = np.log(positive)
    ctrl = y[x == 0]
    low_dose = y[x <= positive[0]]
    high_dose = y[x >= positive[-1]]
    d0 = float(np.mean(ctrl)) if ctrl.size else float(np.mean(low_dose))
    c0 = float(np.mean(high_dose))
    with np.errstate(divide="ignore"):
        log_x = np.log(x)
    mid = float(np.median(log_pos))
    starts = [(1.0, mid), (1.0, log_pos[-1]), (3.0, mid), (0.5, log_pos[0])]

    def solve(start: np.ndarray, nfev: int) -> Any:
        try:
            return least_squares(
                lambda p: _model(p, log_x) - y,
                start,
                jac=lambda p: _jacobian(p, log_x),
                method="lm",
                max_nfev=nfev,
            )
        except (ValueError, np.linalg.LinAlgError):
            return None

    # coarse fits from several starts, then the best one refined
    coarse = [solve(np.array([b0, c0, d0, e0]), 30) for b0, e0 in starts]
    fits = [r for r in coarse if r is not None and np.isfinite(r.cost)]
    best = min(fits, key=lambda r: float(r.cost)) if fits else None
    if best is not None:
        refined = solve(best.x, 300)
        if refined is not None and np.isfinite(refined.cost) and refined.cost <= best.cost:
            best = refined
    if best is None:
        return out
    p = best.x.copy()
    if p[0] < 0:  # the same curve with a positive slope: d is the response at zero dose
        p = np.array([-p[0], p[2], p[1], p[3]])
    rss = float(2.0 * best.cost)
    dof = x.size - 4
    tss = float(((y - y.mean()) ** 2).sum())
    cov = None
    if dof > 0:
        jac = best.jac if best.x[0] >= 0 else best.jac[:, [0, 2, 1, 3]] * [-1, 1, 1, 1]
        try:
            cov = np.linalg.inv(jac.T @ jac) * rss / dof
        except np.linalg.LinAlgError:
            cov = None
    t = float(stats.t.ppf(0.975, dof)) if dof > 0 else float("nan")
    if not (log_pos[0] - 7.0 <= p[3] <= log_pos[-1] + 7.0):
        return out  # the midpoint is far outside the tested range: no EC50
    e = float(np.exp(p[3]))
    se_log = float(np.sqrt(cov[3, 3])) if cov is not None and cov[3, 3] >= 0 else float("nan")
    out.update(
        {
            "ec50_um": e,
            "ec50_se": e * se_log,
            "ec50_low": _exp(p[3] - t * se_log),
            "ec50_high": _exp(p[3] + t * se_log),
            "hill": float(p[0]),
            "response_at_zero": float(p[2]),
            "response_at_inf": float(p[1]),
            "r2": 1.0 - rss / tss if tss > 0 else float("nan"),
            "rss": rss,
        }
    )
    log_ic = _crossing(p, ic_level)
    if np.isfinite(log_ic):
        out["ic50_um"] = float(np.exp(log_ic))
        if cov is not None:
            grad = np.zeros(4)
            for i in range(4):
                step = 1e-6 * max(1.0, abs(p[i]))
                hi, lo = p.copy(), p.copy()
                hi[i] += step
                lo[i] -= step
                grad[i] = (_crossing(hi, ic_level) - _crossing(lo, ic_level)) / (2 * step)
            var = float(grad @ cov @ grad)
            if np.isfinite(var) and var >= 0:
                half = t * np.sqrt(var)
                out["ic50_low"] = _exp(log_ic - half)
                out["ic50_high"] = _exp(log_ic + half)
    return out
