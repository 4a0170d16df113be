"""EC50 of confluence from the raw Incucyte exports and the .PlateMap XML alone, as IncucyteDRC
published them (4-parameter log-logistic at a cut time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phenolapse.temporal.growth_course import dose_response_over_time, prepare
from phenolapse.temporal.growth_run import load_growth_inputs

# drug: (published EC50 uM, its standard error), T47D
PUBLISHED = {
    170.0: {"PDD00014673": (25.97, 19.3), "PDD00017252": (7.99, 1.47)},
    153.0: {"PDD00014673": (26.04, 18.39), "PDD00017252": (8.16, 1.38)},
}


@pytest.fixture(scope="module")
def t47d(shared_data: Path):  # type: ignore[no-untyped-def]
    folder = shared_data / "growth-real" / "incucytedrc"
    kind, long = load_growth_inputs(
        [folder / "example_data2.txt"], platemap=folder / "example2.PlateMap"
    )
    assert kind == "time_course"
    return prepare(long)


def test_platemap_xml_and_export_read(t47d) -> None:  # type: ignore[no-untyped-def]
    wells = t47d.drop_duplicates("well")
    assert len(wells) == 60 and set(t47d["cell_line"]) == {"T47D"}
    assert (wells["role"] == "negative_control").sum() == 12
    assert sorted(wells.loc[wells["role"] == "treatment", "drug"].unique()) == [
        "PDD00014673",
        "PDD00017252",
    ]
    conc = sorted(wells["concentration_um"].dropna().unique())
    assert conc[1] == pytest.approx(30 / 3**7) and conc[-1] == pytest.approx(30.0)
    assert t47d["time_h"].nunique() == 57


def test_ec50_at_published_cut_times(t47d) -> None:  # type: ignore[no-untyped-def]
    dr = dose_response_over_time(t47d, metric="confluence", times=list(PUBLISHED), all_times=False)
    got = dr.set_index(["time_h", "drug"])
    for cut, drugs in PUBLISHED.items():
        for drug, (ec50, se) in drugs.items():
            row = got.loc[(cut, drug)]
            assert abs(row["ec50_um"] - ec50) < se, (cut, drug, row["ec50_um"])
            assert row["ec50_low"] < row["ec50_um"] < row["ec50_high"]
    # at 170 h within a few percent of the published values
    assert got.loc[(170.0, "PDD00017252"), "ec50_um"] == pytest.approx(7.99, rel=0.02)
    assert got.loc[(170.0, "PDD00014673"), "ec50_um"] == pytest.approx(25.97, rel=0.03)
    assert got.loc[(170.0, "PDD00017252"), "ec50_se"] == pytest.approx(1.47, rel=0.1)


def test_cut_time_from_doublings(t47d) -> None:  # type: ignore[no-untyped-def]
    """IncucyteDRC's cut: 4 doublings of the controls after 24 h, capped at 80 % confluence."""
    from phenolapse.temporal.growth_course import doubling_cut_times
    from phenolapse.temporal.growth_run import GrowthAnalysisConfig, _doubling_fits

    cut = doubling_cut_times(t47d, baseline_h=5, doublings=3.5, max_value=80).iloc[0]
    assert cut["cut_time_h"] == pytest.approx(153, abs=3)  # published: 153 h
    fits = _doubling_fits(t47d, [], GrowthAnalysisConfig(cut_doublings=(24, 4, 80)))
    got = fits.set_index("drug")["ec50_um"]
    assert (fits["time_kind"] == "doublings").all()
    assert abs(got["PDD00014673"] - 26.04) < 18.39 and abs(got["PDD00017252"] - 8.16) < 1.38
