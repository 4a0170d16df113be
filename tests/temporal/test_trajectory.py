"""Progress along the control's path and onset of the departure from the control band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phenolapse.temporal.annotate import trajectory_effect
from phenolapse.temporal.config import AnnotationConfig
from phenolapse.temporal.distance import onset_times
from phenolapse.temporal.trajectory import trajectory_readouts

TIMES = np.arange(-6.0, 60.0, 6.0)


def _screen(seed: int = 0) -> pd.DataFrame:
    """Controls grow along features 0, 3 and 4; drugs stall, go back, or change shape (feature 1)."""
    rng = np.random.default_rng(seed)
    growth = np.clip(TIMES, 0, None) / TIMES.max()  # 0 at drug addition -> 1 at the end

    def along(kind: str, t_i: int) -> tuple[float, float]:
        g = growth[t_i]
        if kind == "stall":
            return 0.0, 0.0
        if kind == "back":
            return -0.6 * g, 0.0
        if kind == "shape":
            return g, 0.5 * g
        return g, 0.0

    rows = []
    for kind, n in (("ctrl", 6), ("stall", 3), ("back", 3), ("shape", 3), ("none", 3)):
        for w in range(n):
            for i, t in enumerate(TIMES):
                f0, f1 = along(kind, i)
                rows.append(
                    {
                        "Metadata_cell_line": "L",
                        "Metadata_plate": "P",
                        "Metadata_well": f"{kind}{w}",
                        "Metadata_time_h": t,
                        "Metadata_drug": "DMSO" if kind == "ctrl" else kind,
                        "Metadata_concentration_um": 0.0 if kind == "ctrl" else 1.0,
                        "Metadata_role": "negative_control" if kind == "ctrl" else "treatment",
                        "f0": 10 * f0 + 0.05 * rng.normal(),
                        "f1": f1 + 0.05 * rng.normal(),
                        "f2": 0.05 * rng.normal(),
                        "f3": 5 * f0 + 0.05 * rng.normal(),  # growth shows in several features
                        "f4": 2 * f0 + 0.05 * rng.normal(),
                    }
                )
    return pd.DataFrame(rows)


def test_progress_tells_stalled_lost_and_reshaped_wells_apart() -> None:
    per_time, summary = trajectory_readouts(_screen(), feature_cols=["f0", "f1", "f2"])
    s = summary.set_index("drug")
    assert abs(s.loc["stall", "progress_end"]) < 0.1
    assert s.loc["back", "progress_end"] < -0.4
    assert 0.85 < s.loc["shape", "progress_end"] < 1.15
    assert 0.85 < s.loc["none", "progress_end"] < 1.15
    assert s.loc["shape", "off_path_end"] > 5 * s.loc["none", "off_path_end"]
    cfg = AnnotationConfig()
    calls = {d: trajectory_effect(r, config=cfg)[0] for d, r in s.iterrows()}
    assert calls == {
        "stall": "cytostatic",
        "back": "cytotoxic",
        "shape": "no_effect",
        "none": "no_effect",
    }
    ctrl = per_time[per_time["Metadata_drug"] == "none"]
    np.testing.assert_allclose(ctrl["control_progress"].iloc[-1], 1.0, atol=0.1)


def test_trajectory_rules_in_order() -> None:
    cfg = AnnotationConfig()
    assert trajectory_effect({"progress_end": np.nan}, config=cfg) == ("", "undefined")
    assert trajectory_effect({"progress_end": 0.5, "progress_fall": 0.5}, config=cfg)[0] == "mixed"
    assert (
        trajectory_effect({"progress_end": 0.1, "progress_fall": 0.9}, config=cfg)[1] == "T1:lost"
    )
    assert trajectory_effect({"progress_end": 2.0, "progress_fall": 0.0}, config=cfg)[1] == (
        "T3:beyond_control"
    )
    assert (
        trajectory_effect({"progress_end": 0.5, "progress_fall": 0.0}, config=cfg)[1] == "T6:slowed"
    )


def test_onset_is_the_first_lasting_exit_from_the_band() -> None:
    rel = [0.5, 1.4, 0.8, 1.2, 1.6, 2.0, 0.9]
    d = pd.DataFrame(
        {
            "Metadata_cell_line": "L",
            "Metadata_plate": "P",
            "Metadata_drug": "D",
            "Metadata_concentration_um": 1.0,
            "Metadata_role": "treatment",
            "Metadata_time_h": [0.0, 6, 12, 18, 24, 30, 36],
            "relative_distance": rel,
        }
    )
    out = onset_times(d)
    assert out["onset_h"].tolist() == [18.0]  # 6 h is a single noisy frame
    flat = d.assign(relative_distance=0.5)
    assert np.isnan(onset_times(flat)["onset_h"].iloc[0])


def test_a_control_without_a_trend_has_no_path() -> None:
    df = _screen()
    ctrl = df["Metadata_role"] == "negative_control"
    rng = np.random.default_rng(5)
    df.loc[ctrl, ["f0", "f1", "f2"]] = rng.normal(size=(int(ctrl.sum()), 3)) * 0.2
    _, summary = trajectory_readouts(df, feature_cols=["f0", "f1", "f2"])
    assert summary["progress_end"].isna().all()


def test_feature_only_calls_from_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from phenolapse.cli import app

    src = tmp_path / "profiles.parquet"
    _screen().to_parquet(src)
    out = tmp_path / "o"
    res = CliRunner().invoke(
        app,
        ["temporal", str(src), "--out", str(out), "--no-growth", "--no-figures", "--no-progress",
         "--k", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    ann = pd.read_csv(out / "annotations.csv").set_index("drug")
    assert ann.loc["stall", "effect"] == "cytostatic"
    assert ann.loc["back", "effect"] == "cytotoxic"
    assert ann.loc["shape", "effect"] == "no_effect"
    assert bool(ann.loc["shape", "morphology_change"])
    assert ann.loc["none", "effect"] == "no_effect"
    assert (ann["effect"] == ann["feature_effect"]).all()
    assert ann.loc[["stall", "back", "shape"], "onset_h"].notna().all()
    assert np.isnan(ann.loc["none", "onset_h"])
    rules = (out / "annotation_rules.md").read_text()
    assert "T1." in rules and "progress_like_control" in rules
    path = pd.read_parquet(out / "control_path.parquet")
    assert {"progress", "control_progress", "off_path"} <= set(path.columns)
