"""Which images enter the drug classification, their labels, and well-grouped splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.artefacts import require_columns
from phenolapse.data.imageio import PreprocessConfig, load_for_model, plate_intensity_ranges
from phenolapse.errors import ManifestError, PhenolapseError
from phenolapse.vocabulary import CONTROL_ROLES, OBSERVATION_KEYS, TREATMENT, UNKNOWN

__all__ = [
    "CONTROL_ROLES",
    "REQUIRED_COLUMNS",
    "LensDataError",
    "check_split",
    "load_images",
    "select_classification_images",
    "signature_mask_path",
    "well_groups",
    "well_split_mask",
]

REQUIRED_COLUMNS = ("image_path", *OBSERVATION_KEYS)


class LensDataError(PhenolapseError):
    """The images cannot form a classification task (missing labels, one class, empty split)."""


def _check_columns(manifest: pd.DataFrame) -> None:
    require_columns(
        manifest,
        REQUIRED_COLUMNS,
        message="manifest lacks columns {missing}; build it with a plate map "
        "(phenolapse ingest --platemap)",
        error=ManifestError,
    )
    if manifest.empty:
        raise ManifestError("manifest is empty: no images to classify")


def select_classification_images(
    manifest: pd.DataFrame,
    *,
    concentration: str = "top",
    last_n_timepoints: int | None = 30,
    include_controls: bool = True,
) -> pd.DataFrame:
    """Rows of ``manifest`` used for drug classification, with a ``label`` column.

    Treatments keep each (cell line, drug)'s highest concentration (``concentration="top"``) or
    all of them; controls are labelled by their drug name (e.g. DMSO, PBS). Each plate keeps its
    last ``last_n_timepoints`` time points. Labels missing for some images are an error naming them.
    """
    _check_columns(manifest)
    df = manifest.copy()
    drug = df["drug"].astype("string")
    missing = drug.isna() | (drug.str.strip() == "")
    unlabeled = missing & df["role"].isin([TREATMENT, UNKNOWN])
    if unlabeled.any() or (df["role"] == UNKNOWN).any():
        bad = df.loc[unlabeled | (df["role"] == UNKNOWN), "image_path"].astype(str).tolist()
        raise LensDataError(
            f"{len(bad)} images have no drug label (e.g. {bad[:3]}); join a plate map that covers "
            f"every well before classifying"
        )
    is_treat = df["role"] == TREATMENT
    is_ctrl = df["role"].isin(CONTROL_ROLES)
    label = drug.fillna("").str.strip()
    label = label.where(label != "", df["role"].astype(str))
    df["label"] = label.astype(str)
    keep = is_treat.copy()
    if concentration == "top":
        conc = pd.to_numeric(df["concentration_um"], errors="coerce")
        top = conc.groupby([df["cell_line"], df["label"]]).transform("max")
        keep &= conc == top
    elif concentration != "all":
        raise LensDataError(f"concentration must be 'top' or 'all', got {concentration!r}")
    if include_controls:
        keep |= is_ctrl
    df = df[keep]
    if last_n_timepoints is not None and not df.empty:
        ranks = df.groupby("plate")["time_h"].rank(method="dense", ascending=False)
        df = df[ranks <= last_n_timepoints]
    if df.empty:
        raise LensDataError("no treatment or control images left after selecting classes")
    n_classes = df["label"].nunique()
    if n_classes < 2:
        raise LensDataError(
            f"only one class ({df['label'].iloc[0]!r}) in the selected images; classification "
            f"needs at least two drugs or controls"
        )
    return df.reset_index(drop=True)


def well_groups(meta: pd.DataFrame) -> np.ndarray:
    """Group id of each row: one per (plate, well), so a well's frames never straddle a split."""
    return (meta["plate"].astype(str) + "/" + meta["well"].astype(str)).to_numpy()


def well_split_mask(
    meta: pd.DataFrame, *, test_fraction: float = 0.25, seed: int = 0
) -> np.ndarray:
    """Boolean test mask holding out about ``test_fraction`` of each class's wells.

    Every class keeps at least one well on each side; a class with a single well cannot be
    evaluated and raises :class:`LensDataError` naming it.
    """
    if not 0 < test_fraction < 1:
        raise LensDataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    groups = well_groups(meta)
    labels = meta["label"].astype(str).to_numpy()
    per_group = pd.DataFrame({"group": groups, "label": labels}).drop_duplicates()
    multi = per_group.groupby("group")["label"].nunique()
    if (multi > 1).any():
        raise LensDataError(f"wells with several labels: {multi[multi > 1].index.tolist()[:5]}")
    rng = np.random.default_rng(seed)
    test_groups: list[str] = []
    for label, rows in per_group.groupby("label", sort=True):
        wells = np.sort(rows["group"].to_numpy())
        if len(wells) < 2:
            raise LensDataError(
                f"class {label!r} has a single well ({wells[0]}); it needs wells in both the "
                f"training and the test split. Add replicate wells or leave the class out"
            )
        n_test = int(np.clip(round(test_fraction * len(wells)), 1, len(wells) - 1))
        test_groups.extend(rng.choice(wells, size=n_test, replace=False).tolist())
    return np.isin(groups, test_groups)


def check_split(labels: np.ndarray, test: np.ndarray, classes: list[str]) -> None:
    """Raise :class:`LensDataError` when a class has no images in the training or the test split."""
    for name, part in (("training", ~test), ("test", test)):
        present = set(np.asarray(labels)[part].tolist())
        absent = [c for c in classes if c not in present]
        if absent:
            raise LensDataError(f"classes {absent} have no wells in the {name} split")


def load_images(
    meta: pd.DataFrame, config: PreprocessConfig, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs of every row: ``(images (n, C, S, S) float32, row index of each image)``.

    Tiled frames give several images per row; the second array maps each image back to its row.
    Intensity ranges of 16-bit images are per plate (never per image).
    """
    ranges = plate_intensity_ranges(meta, config)
    arrays: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    paths = meta["image_path"].astype(str).to_numpy()
    plates = meta["plate"].astype(str).to_numpy()
    for i in tqdm(range(len(meta)), desc="loading images", disable=not progress):
        crops = load_for_model(Path(paths[i]), config, intensity_range=ranges.get(plates[i]))
        arrays.append(crops)
        rows.append(np.full(len(crops), i))
    return np.concatenate(arrays), np.concatenate(rows)


def signature_mask_path(image_path: str | Path) -> Path:
    """Where the simulator keeps an image's signature mask: ``<root>/masks/<plate>/<file>.png``."""
    p = Path(image_path)
    return p.parents[2] / "masks" / p.parent.name / (p.stem + ".png")
