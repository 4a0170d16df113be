"""Choosing the profiles every comparison task works on (SPEC section 6).

The tasks use the wells of each drug at its top concentration and the negative controls, over the
last time points of each plate, when drug effects are strongest.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from phenolapse.errors import FeatureTableError
from phenolapse.vocabulary import NEGATIVE_CONTROL, TREATMENT

CONTROL_ROLE = NEGATIVE_CONTROL
TREATMENT_ROLE = TREATMENT
WELL_COLUMNS = ["Metadata_cell_line", "Metadata_plate", "Metadata_well"]


def last_time_points_mask(metadata: pd.DataFrame, n: int) -> np.ndarray:
    """Rows at the ``n`` latest time points of their plate (all rows when ``n`` <= 0)."""
    if n <= 0:
        return np.ones(len(metadata), dtype=bool)
    mask = np.zeros(len(metadata), dtype=bool)
    times = metadata["Metadata_time_h"].to_numpy(float)
    for _, idx in metadata.groupby("Metadata_plate", sort=False).indices.items():
        latest = np.unique(times[idx])[-n:]
        mask[idx] = np.isin(times[idx], latest)
    return mask


def top_concentration_mask(metadata: pd.DataFrame) -> np.ndarray:
    """Treatment rows at the highest concentration of their (cell line, drug)."""
    treat = (metadata["Metadata_role"] == TREATMENT_ROLE).to_numpy()
    conc = metadata["Metadata_concentration_um"].to_numpy(float)
    top = metadata.assign(_c=conc).loc[treat].groupby(
        ["Metadata_cell_line", "Metadata_drug"], sort=False
    )["_c"].transform("max")
    mask = np.zeros(len(metadata), dtype=bool)
    mask[np.flatnonzero(treat)] = np.isclose(conc[treat], top.to_numpy(float))
    return mask


def task_rows(
    metadata: pd.DataFrame,
    *,
    last_time_points: int,
    top_concentration_only: bool = True,
    include_controls: bool = True,
) -> np.ndarray:
    """Indices of the rows a task uses: chosen treatments (and controls) at the last time points."""
    late = last_time_points_mask(metadata, last_time_points)
    treat = (
        top_concentration_mask(metadata)
        if top_concentration_only
        else (metadata["Metadata_role"] == TREATMENT_ROLE).to_numpy()
    )
    keep = treat.copy()
    if include_controls:
        keep |= (metadata["Metadata_role"] == CONTROL_ROLE).to_numpy()
    return np.flatnonzero(late & keep)


def well_means(
    metadata: pd.DataFrame, features: np.ndarray, rows: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Average the selected rows to one profile per (cell line, plate, well)."""
    meta = metadata.iloc[rows].reset_index(drop=True)
    feats = features[rows]
    groups = meta.groupby(WELL_COLUMNS, sort=True).indices
    out_meta = []
    out = np.empty((len(groups), features.shape[1]), dtype=np.float64)
    for i, idx in enumerate(groups.values()):
        out[i] = feats[idx].mean(axis=0)
        out_meta.append(meta.iloc[idx[0]])
    return pd.DataFrame(out_meta).reset_index(drop=True), out


def normalize_features(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    method: Literal["none", "standardize", "control", "mad_robustize"] = "standardize",
) -> np.ndarray:
    """Per-plate feature scaling so that plates and extractors are compared on equal footing.

    ``standardize`` z-scores each feature over all profiles of a plate; ``control`` subtracts the
    plate's negative-control mean and divides by the plate's overall standard deviation (controls
    alone are often too few to estimate a spread); ``mad_robustize`` is the robust z-score against
    the plate's negative controls of the embedding stage
    (:func:`phenolapse.embedding.normalize.normalize_profiles`). Constant features become 0.
    Returns a new array.
    """
    if method == "none":
        return np.array(features, dtype=np.float64, copy=True)
    if method == "mad_robustize":
        return _mad_robustize(metadata, features)
    if method not in {"standardize", "control"}:
        raise ValueError(
            "normalize must be 'none', 'standardize', 'control' or 'mad_robustize', "
            f"got {method!r}"
        )
    out = np.array(features, dtype=np.float64, copy=True)
    roles = metadata["Metadata_role"].to_numpy()
    for plate, idx in metadata.groupby("Metadata_plate", sort=False).indices.items():
        block = out[idx]
        sd = block.std(axis=0)
        sd[sd < 1e-12] = np.inf
        if method == "standardize":
            center = block.mean(axis=0)
        else:
            ctrl = roles[idx] == CONTROL_ROLE
            if not ctrl.any():
                raise FeatureTableError(
                    f"plate {plate}: no negative-control wells to normalise against; use "
                    f"normalize='standardize' or mark control wells with role negative_control"
                )
            center = block[ctrl].mean(axis=0)
        out[idx] = (block - center) / sd
    return out


def _mad_robustize(metadata: pd.DataFrame, features: np.ndarray) -> np.ndarray:
    """Robust z-scores against each plate's controls; degenerate features become 0."""
    from phenolapse.embedding.normalize import MAD_SCALE

    out = np.array(features, dtype=np.float64, copy=True)
    roles = metadata["Metadata_role"].to_numpy()
    for plate, idx in metadata.groupby("Metadata_plate", sort=False).indices.items():
        block = out[idx]
        ctrl = block[roles[idx] == CONTROL_ROLE]
        if len(ctrl) < 3:
            raise FeatureTableError(
                f"plate {plate}: {len(ctrl)} negative-control profile(s), at least 3 are needed "
                "for normalize='mad_robustize'; use normalize='standardize'"
            )
        med = np.median(ctrl, axis=0)
        spread = MAD_SCALE * np.median(np.abs(ctrl - med), axis=0)
        ok = spread > 1e-12
        out[idx] = np.where(ok, (block - med) / np.where(ok, spread, 1.0), 0.0)
    return out
