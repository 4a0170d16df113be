"""Profiles normalised against each plate's negative controls (no torch needed).

Image-based profiling compares wells in units of the control's own variation: per plate, every
feature is centred on the median of the negative-control wells and divided by their median
absolute deviation (robust z-score, pycytominer's ``mad_robustize``), so that no feature dominates a
euclidean distance by its raw scale and plate-to-plate offsets cancel. Optionally the robust
z-scores are then *sphered* on the controls (typical-variation normalisation, TVN): a principal
component rotation fitted on the pooled control profiles with every component scaled to unit
control variance, so that correlated features count once.

Features that cannot be normalised are dropped and listed: non-finite values anywhere, or a spread
of (nearly) zero in the controls of any plate (a dead channel, a constant). A plate without
negative-control wells is normalised against all of its wells, with a warning.

:func:`normalize_profiles` is pure (the caller's table is never modified); the embedding stage
writes its result as ``profiles_normalized.parquet`` beside the raw profiles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from phenolapse.artefacts import NORMALIZED_NAME as NORMALIZED_NAME  # the file it is written to
from phenolapse.errors import FeatureTableError
from phenolapse.vocabulary import NEGATIVE_CONTROL

MAD_SCALE = 1.4826  # MAD of a normal distribution -> its standard deviation
MIN_REFERENCE_ROWS = 3  # profiles a plate needs for a median and a MAD


class NormalizationConfig(BaseModel):
    """How profiles are normalised against each plate's negative controls.

    Attributes
    ----------
    method
        ``mad_robustize``: (x - control median) / (1.4826 x control MAD) per plate and feature;
        ``standardize``: (x - control mean) / control standard deviation; ``none``: raw profiles
        (the reference method).
    whiten
        ``none``, or ``tvn``: after the per-plate scaling, rotate onto the principal components
        of the pooled control profiles and scale each to unit control variance (typical-variation
        normalisation / sphering on controls).
    min_spread
        A feature whose control spread on some plate is at most this fraction of its typical
        magnitude (or exactly zero) is degenerate and dropped.
    tvn_variance
        Share of the control variance kept by the TVN components (the rest is noise).
    control_role
        Role of the wells the statistics come from.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["mad_robustize", "standardize", "none"] = "mad_robustize"
    whiten: Literal["none", "tvn"] = "none"
    min_spread: float = Field(default=1e-6, ge=0, lt=1)
    tvn_variance: float = Field(default=0.99, gt=0, le=1)
    control_role: str = NEGATIVE_CONTROL


@dataclass
class NormalizedProfiles:
    """Normalised profiles and what was dropped on the way.

    Attributes
    ----------
    profiles
        ``Metadata_*`` columns and the normalised features (``tvn_0000`` ... after whitening).
    dropped
        One row per dropped feature: ``feature``, ``plate`` (where it failed) and ``reason``.
    fallback_plates
        Plates without control wells, normalised against all their wells.
    """

    profiles: pd.DataFrame
    dropped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["feature", "plate", "reason"])
    )
    fallback_plates: list[str] = field(default_factory=list)


def _feature_columns(profiles: pd.DataFrame) -> list[str]:
    return [c for c in profiles.columns if not str(c).startswith("Metadata_")]


def _center_scale(x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "standardize":
        return np.mean(x, axis=0), np.std(x, axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    med = np.median(x, axis=0)
    return med, MAD_SCALE * np.median(np.abs(x - med), axis=0)


def _tvn(z: np.ndarray, is_ctrl: np.ndarray, variance: float) -> np.ndarray:
    """Project ``z`` on the control principal components, each scaled to unit control variance."""
    ctrl = z[is_ctrl]
    if len(ctrl) < 3:
        raise FeatureTableError(
            f"TVN whitening needs at least 3 control profiles, found {len(ctrl)}; use whiten: none"
        )
    mean = ctrl.mean(axis=0)
    _, s, vt = np.linalg.svd(ctrl - mean, full_matrices=False)
    var = s**2 / (len(ctrl) - 1)
    total = var.sum()
    if total <= 0:
        raise FeatureTableError("the control profiles do not vary; TVN whitening is undefined")
    n_keep = int(np.searchsorted(np.cumsum(var) / total, variance) + 1)
    n_keep = max(1, min(n_keep, int((var > total * 1e-12).sum())))
    comps = vt[:n_keep]
    out: np.ndarray = (z - mean) @ comps.T / np.sqrt(var[:n_keep])
    return out


def normalize_profiles(
    profiles: pd.DataFrame, *, config: NormalizationConfig | None = None
) -> NormalizedProfiles:
    """Normalise ``profiles`` per plate against its control wells (see the module docstring).

    Parameters
    ----------
    profiles
        Profiles table: ``Metadata_plate``, ``Metadata_role`` and feature columns.
    config
        Method, whitening and the degenerate-feature threshold.

    Returns
    -------
    NormalizedProfiles
        The new table (same rows and metadata, in the same order) and the dropped features.

    Raises
    ------
    FeatureTableError
        Missing ``Metadata_plate`` / ``Metadata_role``, no feature columns, or no feature left.
    """
    cfg = config or NormalizationConfig()
    for col in ("Metadata_plate", "Metadata_role"):
        if col not in profiles.columns:
            raise FeatureTableError(f"profiles lack column {col!r}; cannot find the controls")
    feats = _feature_columns(profiles)
    if not feats:
        raise FeatureTableError("profiles have no feature columns to normalise")
    meta = [c for c in profiles.columns if str(c).startswith("Metadata_")]
    if cfg.method == "none" and cfg.whiten == "none":
        out = profiles.copy()
        out.attrs = {}
        return NormalizedProfiles(out)
    x = profiles[feats].to_numpy(dtype=np.float64)
    plates = profiles["Metadata_plate"].astype(str).to_numpy()
    is_ctrl = (profiles["Metadata_role"].astype(str) == cfg.control_role).to_numpy()
    dropped: list[tuple[str, str, str]] = []
    keep = np.isfinite(x).all(axis=0)
    dropped += [(f, "", "non-finite values") for f, k in zip(feats, keep, strict=True) if not k]
    z = np.array(x, copy=True)
    fallback: list[str] = []
    for plate in pd.unique(plates):
        rows = plates == plate
        ref = rows & is_ctrl
        if not ref.any():
            fallback.append(str(plate))
            ref = rows
        if cfg.method == "none":
            continue
        if int(ref.sum()) < MIN_REFERENCE_ROWS:
            raise FeatureTableError(
                f"plate {plate}: {int(ref.sum())} profile(s) to normalise against, at least "
                f"{MIN_REFERENCE_ROWS} are needed; mark more wells as {cfg.control_role!r} or set "
                "normalization method 'none'"
            )
        center, spread = _center_scale(np.where(np.isfinite(x[ref]), x[ref], 0.0), cfg.method)
        magnitude = np.median(np.abs(x[rows]), axis=0)
        bad = ~(spread > cfg.min_spread * np.maximum(magnitude, 1e-12))
        newly = bad & keep
        dropped += [
            (f, str(plate), "no spread in the controls")
            for f, b in zip(feats, newly, strict=True)
            if b
        ]
        keep &= ~bad
        with np.errstate(invalid="ignore", divide="ignore"):
            z[rows] = (x[rows] - center) / np.where(bad, 1.0, spread)
    if fallback:
        warnings.warn(
            f"plate(s) {fallback[:5]} have no {cfg.control_role!r} wells; their profiles are "
            "normalised against all of their wells",
            stacklevel=2,
        )
    if not keep.any():
        raise FeatureTableError(
            "every feature is degenerate (non-finite, or constant in the control wells); "
            "nothing is left to normalise"
        )
    z = z[:, keep]
    names = [f for f, k in zip(feats, keep, strict=True) if k]
    if cfg.whiten == "tvn":
        z = _tvn(z, is_ctrl if is_ctrl.any() else np.ones(len(z), dtype=bool), cfg.tvn_variance)
        width = max(4, len(str(z.shape[1] - 1)))
        names = [f"tvn_{i:0{width}d}" for i in range(z.shape[1])]
    out = pd.concat(
        [
            profiles[meta].reset_index(drop=True),
            pd.DataFrame(z.astype(np.float32), columns=names),
        ],
        axis=1,
    )
    out.index = profiles.index
    out.attrs = {}
    table = pd.DataFrame(dropped, columns=["feature", "plate", "reason"])
    return NormalizedProfiles(out, table, fallback)
