"""Replicate retrieval (SPEC section 6, task 1): mean average precision and replicate distances.

Positive pairs are replicate wells: same cell line, drug and concentration, different well.
Negatives are either the cell line's negative-control wells or its wells of other drugs. Average
precision is computed with copairs, the field's standard tool.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from phenolapse.comparison.selection import CONTROL_ROLE, TREATMENT_ROLE

DISTANCE_METRICS = ("euclidean", "cosine", "correlation", "braycurtis")
"""The four distances of the reference's replicate-similarity table."""

_CELL = "Metadata_cell_line"
_GROUP = "Metadata_cmp_group"
_WELLKEY = "Metadata_cmp_well"
_REF = "Metadata_cmp_reference"


@dataclass
class RetrievalResult:
    """Summary and per-group mAP of one retrieval task.

    Attributes
    ----------
    mean_map
        mAP averaged over (cell line, drug, concentration) groups; NaN when no group has
        replicates.
    fraction_retrieved
        Fraction of groups whose mAP is significant (BH-corrected permutation p < threshold).
    details
        One row per group: cell line, drug, concentration, mAP, p-values.
    """

    mean_map: float
    fraction_retrieved: float
    details: pd.DataFrame


def _pair_frame(metadata: pd.DataFrame) -> pd.DataFrame:
    meta = pd.DataFrame(
        {
            _CELL: metadata[_CELL].astype(str).to_numpy(),
            "Metadata_drug": metadata["Metadata_drug"].astype(str).to_numpy(),
            "Metadata_concentration_um": metadata["Metadata_concentration_um"].to_numpy(float),
            "Metadata_role": metadata["Metadata_role"].astype(str).to_numpy(),
        }
    )
    conc = meta["Metadata_concentration_um"].map(lambda c: f"{c:g}")
    meta[_GROUP] = np.where(
        meta["Metadata_role"] == CONTROL_ROLE, "__control__", meta["Metadata_drug"] + "@" + conc
    )
    meta[_WELLKEY] = (
        metadata["Metadata_plate"].astype(str).to_numpy()
        + ":"
        + metadata["Metadata_well"].astype(str).to_numpy()
    )
    return meta


def replicate_map(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    against: str = "controls",
    distance: str = "cosine",
    null_size: int = 1000,
    threshold: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> RetrievalResult:
    """Mean average precision of replicate wells against controls or against other drugs.

    Parameters
    ----------
    metadata, features
        Well-level profiles (one row per well), e.g. from
        :func:`phenolapse.comparison.selection.well_means`.
    against
        ``"controls"``: each treatment well ranks its replicates among the cell line's
        negative-control wells; ``"drugs"``: among the cell line's wells of other drugs or
        concentrations.
    distance
        copairs similarity (``cosine``, ``correlation``, ``euclidean``, ...).
    null_size, threshold, seed
        Permutation null for the per-group p-values (BH-corrected).
    """
    from copairs.map import average_precision, mean_average_precision

    if against not in {"controls", "drugs"}:
        raise ValueError(f"against must be 'controls' or 'drugs', got {against!r}")
    meta = _pair_frame(metadata)
    feats = np.asarray(features, dtype=np.float64)
    role = meta["Metadata_role"].to_numpy()
    if against == "controls":
        keep = np.isin(role, [TREATMENT_ROLE, CONTROL_ROLE])
        meta = meta.loc[keep].reset_index(drop=True)
        feats = feats[keep]
        is_ctrl = (meta["Metadata_role"] == CONTROL_ROLE).to_numpy()
        meta[_REF] = np.where(is_ctrl, np.arange(len(meta)), -1)
        pos_sameby = [_CELL, _GROUP, _REF]
        neg_diffby = [_GROUP, _REF]
    else:
        keep = role == TREATMENT_ROLE
        meta = meta.loc[keep].reset_index(drop=True)
        feats = feats[keep]
        pos_sameby = [_CELL, _GROUP]
        neg_diffby = [_GROUP]
    empty = RetrievalResult(float("nan"), float("nan"), pd.DataFrame())
    treat = meta["Metadata_role"] == TREATMENT_ROLE
    has_rep = meta.loc[treat].groupby([_CELL, _GROUP])[_WELLKEY].nunique().gt(1).any()
    if not has_rep or len(meta) < 3:
        return empty
    logging.getLogger("copairs").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ap = average_precision(
                meta, feats,
                pos_sameby=pos_sameby, pos_diffby=[_WELLKEY],
                neg_sameby=[_CELL], neg_diffby=neg_diffby,
                distance=distance, progress_bar=progress,
            )
    except Exception as exc:
        if type(exc).__name__ == "UnpairedException":
            return empty
        raise
    ap = ap.loc[ap["Metadata_role"] == TREATMENT_ROLE]
    ap = ap.loc[ap["n_pos_pairs"] > 0].reset_index(drop=True)
    if ap.empty:
        return empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = mean_average_precision(
            ap, sameby=[_CELL, _GROUP], null_size=null_size, threshold=threshold, seed=seed,
            progress_bar=progress,
        )
    first = ap.groupby([_CELL, _GROUP], as_index=False)[
        ["Metadata_drug", "Metadata_concentration_um"]
    ].first()
    details = maps.merge(first, on=[_CELL, _GROUP]).drop(columns=["indices"], errors="ignore")
    details = details.rename(columns={_CELL: "cell_line", _GROUP: "group"})
    details.insert(0, "against", against)
    return RetrievalResult(
        mean_map=float(details["mean_average_precision"].mean()),
        fraction_retrieved=float(details["below_corrected_p"].mean()),
        details=details,
    )


def replicate_distances(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    metrics: tuple[str, ...] | list[str] = DISTANCE_METRICS,
) -> dict[str, tuple[float, float]]:
    """Median distance between replicate wells, and its ratio to non-replicate pairs.

    Pairs are formed within each cell line among treatment wells: replicates share drug and
    concentration; non-replicates differ in either. The raw median is the reference's measure;
    the ratio (replicate median / non-replicate median; below 1 means replicates are closer) is
    comparable across extractors whose features have different scales.

    Returns
    -------
    dict
        ``metric -> (median replicate distance, ratio)``; NaN when there are no pairs.
    """
    meta = _pair_frame(metadata)
    feats = np.asarray(features, dtype=np.float64)
    treat = (meta["Metadata_role"] == TREATMENT_ROLE).to_numpy()
    out: dict[str, tuple[float, float]] = {}
    for metric in metrics:
        rep: list[np.ndarray] = []
        non: list[np.ndarray] = []
        for _, idx in meta.loc[treat].groupby(_CELL).indices.items():
            rows = np.flatnonzero(treat)[idx]
            if len(rows) < 2:
                continue
            with np.errstate(all="ignore"):
                d = cdist(feats[rows], feats[rows], metric=metric)
            groups = meta[_GROUP].to_numpy()[rows]
            iu = np.triu_indices(len(rows), k=1)
            same = groups[iu[0]] == groups[iu[1]]
            rep.append(d[iu][same])
            non.append(d[iu][~same])
        r = np.concatenate(rep) if rep else np.array([])
        n = np.concatenate(non) if non else np.array([])
        med_r = float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")
        med_n = float(np.nanmedian(n)) if np.isfinite(n).any() else float("nan")
        ratio = med_r / med_n if np.isfinite(med_n) and med_n > 0 else float("nan")
        out[metric] = (med_r, ratio)
    return out
