"""Class selection, well-grouped splits and bad-input errors of the lens stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenolapse.lens.data import (
    LensDataError,
    check_split,
    select_classification_images,
    signature_mask_path,
    well_groups,
    well_split_mask,
)


def _manifest(
    n_wells_per_drug: int = 3, times: tuple[float, ...] = (-2, 10, 20, 30)
) -> pd.DataFrame:
    rows = []
    well = 0
    specs = [("DrugA", c, "treatment") for c in (0.1, 1.0)]
    specs += [("DrugB", c, "treatment") for c in (0.5, 5.0)]
    specs += [("DMSO", 0.1, "negative_control"), ("PBS", np.nan, "untreated")]
    for plate in ("P1", "P2"):
        for drug, conc, role in specs:
            for _ in range(n_wells_per_drug):
                well += 1
                for t in times:
                    rows.append(
                        {
                            "image_path": f"/x/{plate}/w{well}_{t}.png",
                            "cell_line": "CL1",
                            "plate": plate,
                            "well": f"A{well}",
                            "time_h": t,
                            "drug": drug,
                            "concentration_um": conc,
                            "role": role,
                        }
                    )
    return pd.DataFrame(rows)


def test_top_concentration_time_window_and_controls() -> None:
    m = _manifest()
    sel = select_classification_images(m, concentration="top", last_n_timepoints=2)
    assert sorted(sel["label"].unique()) == ["DMSO", "DrugA", "DrugB", "PBS"]
    treat = sel[sel["role"] == "treatment"]
    assert set(zip(treat["label"], treat["concentration_um"], strict=True)) == {
        ("DrugA", 1.0),
        ("DrugB", 5.0),
    }
    assert sorted(sel["time_h"].unique()) == [20, 30]
    # 2 plates x (2 drugs + 2 controls) x 3 wells x 2 time points
    assert len(sel) == 2 * 4 * 3 * 2
    no_ctrl = select_classification_images(m, include_controls=False, last_n_timepoints=None)
    assert sorted(no_ctrl["label"].unique()) == ["DrugA", "DrugB"]
    everything = select_classification_images(m, concentration="all", last_n_timepoints=None)
    assert len(everything) == len(m)
    assert len(m) == len(_manifest())  # the caller's table is untouched


def test_split_never_puts_a_well_on_both_sides() -> None:
    sel = select_classification_images(_manifest(n_wells_per_drug=4), last_n_timepoints=None)
    groups = well_groups(sel)
    for seed in range(5):
        test = well_split_mask(sel, test_fraction=0.25, seed=seed)
        assert not set(groups[test]) & set(groups[~test])
        # every class has wells on both sides: 8 wells per class, 2 held out
        per_class = sel[test].groupby("label")["well"].nunique()
        assert (per_class == 2).all() and len(per_class) == 4
        check_split(sel["label"].to_numpy(), test, sorted(sel["label"].unique()))
    a = well_split_mask(sel, seed=1)
    assert np.array_equal(a, well_split_mask(sel, seed=1))
    assert not np.array_equal(a, well_split_mask(sel, seed=2))


def test_same_well_name_on_two_plates_are_two_groups() -> None:
    m = _manifest()
    n = m["well"].str[1:].astype(int)
    m["well"] = "A" + np.where(m["plate"] == "P2", n - 18, n).astype(str)  # P2 reuses P1's names
    assert set(m.loc[m["plate"] == "P1", "well"]) == set(m.loc[m["plate"] == "P2", "well"])
    sel = select_classification_images(m, last_n_timepoints=None)
    g = well_groups(sel)
    assert len(set(g)) == 24  # 2 plates x 4 classes x 3 wells, names shared by plates
    for seed in range(3):
        test = well_split_mask(sel, seed=seed)
        assert not set(g[test]) & set(g[~test])


@pytest.mark.bad_input("lens")
def test_bad_inputs_raise_clear_errors() -> None:
    m = _manifest()
    missing = m.copy()
    missing.loc[missing["drug"] == "DrugA", "drug"] = ""
    with pytest.raises(LensDataError, match="no drug label"):
        select_classification_images(missing)
    one = m[m["drug"] == "DrugA"]
    with pytest.raises(LensDataError, match="only one class"):
        select_classification_images(one)
    single_well = _manifest(n_wells_per_drug=1)
    single_well = single_well[single_well["plate"] == "P1"]
    sel = select_classification_images(single_well)
    with pytest.raises(LensDataError, match="single well"):
        well_split_mask(sel)
    sel = select_classification_images(m)
    test = np.zeros(len(sel), bool)
    with pytest.raises(LensDataError, match="no wells in the test split"):
        check_split(sel["label"].to_numpy(), test, sorted(sel["label"].unique()))
    from phenolapse.errors import ManifestError

    with pytest.raises(ManifestError, match="lacks columns"):
        select_classification_images(m.drop(columns=["drug"]))


def test_signature_mask_path() -> None:
    p = signature_mask_path("/root/screen/images/P1/CL_Phase_A1_1_00d10h00m.png")
    assert str(p) == "/root/screen/masks/P1/CL_Phase_A1_1_00d10h00m.png"
