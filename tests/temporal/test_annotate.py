"""Effect annotation rules, user override, consensus over cell lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolapse.errors import ConfigError
from phenolapse.temporal.annotate import (
    agreement_scores,
    annotate,
    centroid_shape,
    cluster_effects_from_centroids,
    consensus,
    growth_effect,
    read_cluster_mapping,
    rules_markdown,
)
from phenolapse.temporal.config import AnnotationConfig


def test_centroid_shapes() -> None:
    t = np.linspace(0, 1, 10)
    assert centroid_shape(t)["shape"] == "rise_stay"  # rises steadily to its max and stays
    assert centroid_shape(np.sin(np.pi * t))["shape"] == "rise_fall"  # peaks mid-way, falls back
    assert centroid_shape(0.1 + 0.05 * t)["shape"] == "low"
    assert centroid_shape(0.5 * np.ones(10))["shape"] == "intermediate"
    table = cluster_effects_from_centroids(np.stack([t, np.sin(np.pi * t), 0.1 * t]))
    assert table["effect"].tolist() == ["cytotoxic", "cytostatic", "no_effect"]


@pytest.mark.parametrize(
    ("readout", "expected"),
    [
        ({"gr_end": -0.7, "gr_late": -1.0, "fall_ratio": 0.1, "end_ratio": 0.2}, "cytotoxic"),
        ({"gr_end": 0.1, "gr_late": -0.5, "fall_ratio": 0.6, "end_ratio": 1.3}, "mixed"),
        ({"gr_end": 1.0, "gr_late": 1.0, "fall_ratio": 0.98, "end_ratio": 4.0}, "no_effect"),
        ({"gr_end": 0.85, "gr_late": 0.8, "fall_ratio": 0.98, "end_ratio": 3.5}, "mixed"),
        ({"gr_end": 0.5, "gr_late": 0.1, "fall_ratio": 0.99, "end_ratio": 2.2}, "cytostatic"),
        ({"gr_end": 0.55, "gr_late": 0.5, "fall_ratio": 0.99, "end_ratio": 2.4}, "mixed"),
    ],
)
def test_growth_rules(readout: dict[str, float], expected: str) -> None:
    assert growth_effect(readout)[0] == expected


def units() -> pd.DataFrame:
    """Four units: inert, morphology-only, borderline growth with/without feature effect."""
    return pd.DataFrame(
        {
            "cell_line": ["L1"] * 4,
            "drug": ["inert", "morph", "weak", "weak_nofeat"],
            "concentration_um": [1.0] * 4,
            "role": ["treatment"] * 4,
            "cluster": [0, 1, 1, 0],
            "cluster_effect": ["no_effect", "cytotoxic", "cytotoxic", "no_effect"],
            "max_relative_distance": [0.5, 8.0, 3.0, 0.9],
            "gr_end": [1.0, 1.0, 0.85, 0.85],
            "gr_late": [1.0, 1.0, 0.8, 0.8],
            "fall_ratio": [0.98] * 4,
            "end_ratio": [4.0, 4.0, 3.4, 3.4],
        }
    )


def test_combination_and_morphology_flag() -> None:
    out = annotate(units()).set_index("drug")
    assert out["effect"].to_dict() == {
        "inert": "no_effect",
        "morph": "no_effect",
        "weak": "mixed",
        "weak_nofeat": "no_effect",
    }
    assert out["morphology_change"].to_dict() == {
        "inert": False,
        "morph": True,
        "weak": False,
        "weak_nofeat": False,
    }
    g = annotate(units(), use_features=False).set_index("drug")["effect"]
    assert g.to_dict() == {
        "inert": "no_effect",
        "morph": "no_effect",
        "weak": "mixed",
        "weak_nofeat": "mixed",
    }
    f = annotate(units(), use_growth=False).set_index("drug")["effect"]
    assert f.to_dict() == {
        "inert": "no_effect",
        "morph": "cytotoxic",
        "weak": "cytotoxic",
        "weak_nofeat": "no_effect",
    }


def test_sustained_moderate_distance_shows_an_effect() -> None:
    u = units().iloc[[0, 0, 0]].reset_index(drop=True)
    u["drug"] = ["passing", "persisting", "peaking"]
    u["cluster_effect"] = "cytotoxic"
    # a passing excursion (peak 1.3, late mean 0.8), a persisting moderate change (peak 1.3, late
    # mean 1.1) and a strong peak that falls back (peak 2.0, late mean 0.7)
    u["max_relative_distance"] = [1.3, 1.3, 2.0]
    u["late_relative_distance"] = [0.8, 1.1, 0.7]
    out = annotate(u).set_index("drug")
    assert out["feature_support"].to_dict() == {
        "passing": False,
        "persisting": True,
        "peaking": True,
    }
    assert out["morphology_change"].to_dict() == {
        "passing": False,
        "persisting": True,  # growth like the control, features changed: morphology only
        "peaking": True,
    }
    assert out["effect"].tolist() == ["no_effect"] * 3
    stricter = annotate(u, config=AnnotationConfig(sustained_effect=1.2)).set_index("drug")
    assert not stricter.loc["persisting", "feature_support"]


@pytest.mark.bad_input("temporal")
def test_user_mapping_overrides(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("0: no_effect\n1: cytostatic\n")
    mapping = read_cluster_mapping(path)
    assert mapping == {0: "no_effect", 1: "cytostatic"}
    out = annotate(units(), cluster_effects=mapping).set_index("drug")
    assert out.loc["weak", "effect"] == "cytostatic"  # features show an effect: mapped effect
    assert out.loc["weak_nofeat", "effect"] == "no_effect"
    csv = tmp_path / "map.csv"
    csv.write_text("cluster,effect\n0,mixed\n1,cytotoxic\n")
    assert read_cluster_mapping(csv) == {0: "mixed", 1: "cytotoxic"}
    with pytest.raises(ConfigError, match="lacks cluster"):
        annotate(units(), cluster_effects={0: "mixed"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("0: dead\n")
    with pytest.raises(ConfigError, match="dead"):
        read_cluster_mapping(bad)


def test_consensus_majority_and_tie() -> None:
    df = pd.DataFrame(
        {
            "cell_line": ["L1", "L2", "L3", "L1", "L2"],
            "drug": ["A", "A", "A", "B", "B"],
            "concentration_um": [1.0] * 5,
            "effect": ["cytotoxic", "cytotoxic", "mixed", "cytostatic", "no_effect"],
        }
    )
    c = consensus(df).set_index("drug")
    assert c.loc["A", "effect"] == "cytotoxic"
    np.testing.assert_allclose(c.loc["A", "agreement"], 2 / 3)
    assert c.loc["B", "effect"] == "mixed"  # tie -> mixed
    assert c.loc["A", "n_cytotoxic"] == 2


def test_agreement_scores_exact() -> None:
    s = agreement_scores(pd.Series(["a", "a", "b", "b"]), pd.Series(["a", "b", "b", "b"]))
    assert s["accuracy"] == 0.75
    # F1(a) = 2*1*0.5/(1.5) = 2/3, F1(b) = 2*(1)*(2/3)/(5/3) = 0.8
    np.testing.assert_allclose(s["macro_f1"], (2 / 3 + 0.8) / 2)


def test_rules_document_lists_thresholds() -> None:
    text = rules_markdown()
    assert "gr_no_effect" in text and "cytostatic" in text and "tie" in text
