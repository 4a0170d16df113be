"""Plate maps: which drug, at which concentration, in which role, sits in each well.

A plate map is a CSV with columns ``plate, well, drug, concentration_um, role`` (``plate`` may be
omitted for a single-plate screen; ``cell_line`` and ``time_zero`` are optional). Wells are
canonicalised (``A01`` -> ``A1``) and matched exactly, never by substring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from phenolapse.data.names import canonical_well
from phenolapse.errors import ParseError, PlateMapError

ROLES = ("treatment", "negative_control", "positive_control", "untreated", "unknown")
REQUIRED_COLUMNS = ("well", "drug", "concentration_um")
_VEHICLES = {"dmso", "vehicle"}
_UNTREATED = {"", "pbs", "none", "medium", "untreated"}

__all__ = ["ROLES", "canonical_well", "read_platemap", "validate_platemap"]


def read_platemap(path: str | Path) -> pd.DataFrame:
    """Read and validate a plate-map CSV (see module docstring); errors name the CSV line."""
    path = Path(path)
    if not path.is_file():
        raise PlateMapError(f"{path}: plate map not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PlateMapError(f"{path}: cannot read as CSV ({exc})") from exc
    return validate_platemap(df, source=str(path))


def validate_platemap(df: pd.DataFrame, *, source: str = "plate map") -> pd.DataFrame:
    """Check and normalise a plate-map table; returns a new table (the input is not modified).

    Line numbers in error messages count the CSV header as line 1.
    """
    df = df.reset_index(drop=True)  # a copy: positions give the CSV line (position + 2)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PlateMapError(
            f"{source}: missing column(s) {missing}; a plate map needs "
            f"plate, well, drug, concentration_um, role (found {list(df.columns)})"
        )
    if df.empty:
        raise PlateMapError(f"{source}: the plate map has no rows")
    if "plate" not in df.columns:
        df["plate"] = ""
    df["plate"] = df["plate"].astype(str).str.strip()
    df["drug"] = df["drug"].astype(str).str.strip()
    wells = []
    for i, w in enumerate(df["well"]):
        try:
            wells.append(canonical_well(str(w)))
        except ParseError as exc:
            raise PlateMapError(f"{source}, line {i + 2}: {exc}") from exc
    df["well"] = wells

    conc = pd.to_numeric(
        df["concentration_um"].astype(str).str.strip().replace("", "nan"), errors="coerce"
    )
    bad = conc.isna() & ~df["concentration_um"].astype(str).str.strip().isin(
        ["", "nan", "NaN", "NA"]
    )
    if bad.any():
        i = _first(bad)
        value = df["concentration_um"].iat[i]
        raise PlateMapError(f"{source}, line {i + 2}: concentration_um {value!r} is not a number")
    if (conc < 0).any():
        i = _first(conc < 0)
        raise PlateMapError(f"{source}, line {i + 2}: negative concentration_um {conc.iat[i]}")
    df["concentration_um"] = conc.astype(float)

    if "role" not in df.columns or (df["role"].astype(str).str.strip() == "").all():
        df["role"] = [_infer_role(d) for d in df["drug"]]
    df["role"] = df["role"].astype(str).str.strip().str.lower()
    unknown = ~df["role"].isin(ROLES)
    if unknown.any():
        i = _first(unknown)
        raise PlateMapError(
            f"{source}, line {i + 2}: unknown role {df['role'].iat[i]!r}; use one of {list(ROLES)}"
        )
    treat_no_drug = (df["role"] == "treatment") & (df["drug"] == "")
    if treat_no_drug.any():
        i = _first(treat_no_drug)
        raise PlateMapError(
            f"{source}, line {i + 2}: treatment well {df['well'].iat[i]} has no drug"
        )

    key = ["plate", "well"] + (["cell_line"] if "cell_line" in df.columns else [])
    dup = df.duplicated(key, keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        same = dup & (df[key] == first[key]).all(axis=1)
        lines = (np.flatnonzero(same.to_numpy()) + 2).tolist()
        raise PlateMapError(
            f"{source}: duplicate rows for plate {first['plate']!r} well {first['well']} "
            f"(lines {lines}); each well may appear once per plate"
        )
    if "time_zero" in df.columns:
        df["time_zero"] = df["time_zero"].astype(str).str.strip()
    return df.reset_index(drop=True)


def _first(mask: pd.Series) -> int:
    """Position of the first True in a boolean Series."""
    return int(np.flatnonzero(mask.to_numpy())[0])


def _infer_role(drug: str) -> str:
    name = str(drug).strip().lower()
    if name in _VEHICLES:
        return "negative_control"
    if name in _UNTREATED:
        return "untreated"
    return "treatment"
