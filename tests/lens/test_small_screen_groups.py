"""The small-screen benchmark's class groups and their recall, on hand-made tables."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pandas as pd
import pytest


def test_class_groups_and_group_recall(benchmark_script: Callable[[str], ModuleType]) -> None:
    bench = benchmark_script("lens_small_screen")
    truth = pd.DataFrame(
        {
            "drug": ["DMSO", "A", "A", "B", "B", "C", "C"],
            "role": ["negative_control"] + ["treatment"] * 6,
            "concentration_um": [0.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0],
            # only each drug's top concentration counts: B draws nothing there
            "signature": ["none", "spiky", "spiky", "granular", "none", "none", "none"],
        }
    )
    groups = bench.class_groups(truth, ["A", "B", "C", "DMSO", "PBS"])
    assert groups == {"signature": ["A"], "control_like": ["B", "C", "DMSO", "PBS"]}

    per_class = pd.DataFrame(
        {
            "seed": [0, 0, 0, 1, 1, 1],
            "class": ["A", "DMSO", "PBS"] * 2,
            "top1_plain": [1.0, 0.2, 0.4, 0.5, 0.0, 0.6],
            "top3_plain": [1.0] * 6,
            "top1_lens": [0.0] * 6,
            "top3_lens": [0.5] * 6,
            "top1_classical": [0.5, 0.0, 0.0, 0.5, 1.0, 1.0],
            "top3_classical": [1.0] * 6,
        }
    )
    rec = bench.per_group_recall(per_class, {"signature": ["A"], "control_like": ["DMSO", "PBS"]})
    rec = rec.set_index(["group", "seed"])
    assert rec.loc[("signature", 0), "top1_plain"] == pytest.approx(1.0)
    assert rec.loc[("control_like", 0), "top1_plain"] == pytest.approx(0.3)
    assert rec.loc[("control_like", 1), "top1_classical"] == pytest.approx(1.0)
    assert rec.loc[("control_like", 1), "n_classes"] == 2
    assert rec.loc[("signature", 1), "top3_lens"] == pytest.approx(0.5)
