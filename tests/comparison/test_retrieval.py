"""Replicate retrieval: mAP (copairs) and replicate distances on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from phenolapse.comparison.retrieval import replicate_distances, replicate_map


def _meta(spec: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Well-level metadata from (well, drug, role, concentration) tuples on one plate."""
    return pd.DataFrame(
        {
            "Metadata_cell_line": "CL0",
            "Metadata_plate": "P1",
            "Metadata_well": [s[0] for s in spec],
            "Metadata_drug": [s[1] for s in spec],
            "Metadata_role": [s[2] for s in spec],
            "Metadata_concentration_um": [s[3] for s in spec],
        }
    )


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_map_hand_computed_half() -> None:
    # Replicates at 0 and 30 degrees; controls at 10, 70 and 90 degrees (cosine similarity).
    # Well A ranks: C1 (10 deg), B (30), C2 (70), C3 (90) -> positive at rank 2 -> AP 1/2.
    # Well B ranks: C1 (20 deg away), A (30), C2 (40), C3 (60) -> AP 1/2.
    meta = _meta(
        [("A1", "x", "treatment", 1.0), ("A2", "x", "treatment", 1.0),
         ("B1", "DMSO", "negative_control", 0.1), ("B2", "DMSO", "negative_control", 0.1),
         ("B3", "DMSO", "negative_control", 0.1)]
    )
    feats = np.array([_unit(0), _unit(30), _unit(10), _unit(70), _unit(90)])
    res = replicate_map(meta, feats, against="controls", null_size=100)
    assert res.mean_map == pytest.approx(0.5)
    assert len(res.details) == 1
    assert res.details["Metadata_drug"].iloc[0] == "x"


def test_map_perfect_replicates_is_one() -> None:
    rng = np.random.default_rng(0)
    spec = []
    feats = []
    for d in range(3):
        center = rng.normal(size=8) * 10
        for r in range(3):
            spec.append((f"A{d * 3 + r + 1}", f"d{d}", "treatment", 10.0))
            feats.append(center + rng.normal(size=8) * 0.01)
    for r in range(4):
        spec.append((f"B{r + 1}", "DMSO", "negative_control", 0.1))
        feats.append(rng.normal(size=8))
    meta = _meta(spec)
    x = np.array(feats)
    for against in ("controls", "drugs"):
        res = replicate_map(meta, x, against=against, null_size=200)
        assert res.mean_map == pytest.approx(1.0)
        assert res.fraction_retrieved == pytest.approx(1.0)
        assert set(res.details["Metadata_drug"]) == {"d0", "d1", "d2"}


def test_map_ignores_concentration_mismatch_and_single_wells() -> None:
    # One well per (drug, concentration): no replicates, so no score rather than an error.
    meta = _meta(
        [("A1", "x", "treatment", 1.0), ("A2", "x", "treatment", 10.0),
         ("B1", "DMSO", "negative_control", 0.1), ("B2", "DMSO", "negative_control", 0.1)]
    )
    feats = np.eye(4)
    res = replicate_map(meta, feats, against="controls", null_size=100)
    assert math.isnan(res.mean_map)
    assert res.details.empty


def test_map_rejects_unknown_task() -> None:
    with pytest.raises(ValueError, match="against"):
        replicate_map(_meta([("A1", "x", "treatment", 1.0)]), np.ones((1, 2)), against="wells")


def test_replicate_distances_hand_computed() -> None:
    meta = _meta(
        [("A1", "x", "treatment", 1.0), ("A2", "x", "treatment", 1.0),
         ("A3", "y", "treatment", 1.0), ("A4", "y", "treatment", 1.0)]
    )
    # x replicates [1, 0] and [0, 1]; y replicates identical [1, 1]; non-replicate pairs
    # x-y: [1,0]-[1,1] and [0,1]-[1,1] (each 4 times: euclidean 1).
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    out = replicate_distances(meta, feats)
    # replicate distances: x pair and y pair (0) -> median = mean of the two
    assert out["euclidean"][0] == pytest.approx((math.sqrt(2) + 0) / 2)
    assert out["euclidean"][1] == pytest.approx((math.sqrt(2) / 2) / 1.0)
    assert out["cosine"][0] == pytest.approx(0.5)  # (1 + 0) / 2
    assert out["braycurtis"][0] == pytest.approx(0.5)  # (2/2 + 0) / 2
    # correlation of [1,0] and [0,1] is -1 -> distance 2; the y pair is constant -> NaN, skipped
    assert out["correlation"][0] == pytest.approx(2.0)


def test_identical_replicates_have_zero_distance() -> None:
    meta = _meta(
        [("A1", "x", "treatment", 1.0), ("A2", "x", "treatment", 1.0),
         ("A3", "y", "treatment", 1.0), ("A4", "y", "treatment", 1.0)]
    )
    feats = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [3.0, 1.0, 2.0]])
    out = replicate_distances(meta, feats)
    for metric in ("euclidean", "cosine", "correlation", "braycurtis"):
        med, ratio = out[metric]
        assert med == pytest.approx(0.0, abs=1e-12)
        assert ratio == pytest.approx(0.0, abs=1e-12)
