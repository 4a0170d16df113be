"""Plate maps: which drug, at which concentration, in which role, sits in each well.

A plate map is a CSV with columns ``plate, well, drug, concentration_um, role`` (``plate`` may be
omitted for a single-plate screen; ``cell_line`` and ``time_zero`` are optional). Wells are
canonicalised (``A01`` -> ``A1``) and matched exactly, never by substring. Every text cell is
normalised (Unicode NFC, zero-width characters removed, runs of white space made one space), and
rows with every cell blank (a spreadsheet's trailing ``,,,,,`` lines) are left out. The CSV may be
UTF-8 (with or without byte-order mark) or UTF-16 with a byte-order mark, comma-, semicolon- or
tab-separated; other encodings and Excel workbooks are refused with instructions.
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from phenolapse.data.names import canonical_well
from phenolapse.errors import ParseError, PlateMapError
from phenolapse.vocabulary import NEGATIVE_CONTROL, ROLES, TREATMENT, UNTREATED

REQUIRED_COLUMNS = ("well", "drug", "concentration_um")
_VEHICLES = {"dmso", "vehicle"}
_UNTREATED = {"", "pbs", "none", "medium", "untreated"}

__all__ = [
    "ROLES",
    "canonical_well",
    "case_conflicts",
    "normalize_text",
    "read_platemap",
    "validate_platemap",
]

_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_SAVE_AS = (
    "open it in Excel (or LibreOffice) and save it with File > Save As > "
    "'CSV UTF-8 (Comma delimited) (*.csv)'"
)


def normalize_text(value: object) -> str:
    """One spelling of a text cell: NFC, no zero-width characters, single spaces, no padding."""
    text = unicodedata.normalize("NFC", str(value))
    return _SPACES.sub(" ", _ZERO_WIDTH.sub("", text)).strip()


def _decode(path: Path, raw: bytes) -> str:
    """The text of a plate-map file, or a PlateMapError saying how to save it as CSV UTF-8."""
    if raw.startswith(b"PK\x03\x04") or raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise PlateMapError(f"{path}: this is an Excel workbook, not a CSV file; {_SAVE_AS}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise PlateMapError(
                f"{path}: looks like UTF-16 text but does not decode ({exc.reason}); {_SAVE_AS}"
            ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1]
        guess = byte.decode("cp1252", errors="replace")
        raise PlateMapError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{byte.hex()}, {guess!r} in "
            f"Windows-1252, the encoding of Excel's plain 'CSV (Comma delimited)'); {_SAVE_AS}"
        ) from exc


def _separator(text: str) -> str:
    """The field separator of the header line: comma, else semicolon or tab."""
    header = text.lstrip().split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def read_platemap(path: str | Path) -> pd.DataFrame:
    """Read and validate a plate-map CSV (see module docstring); errors name the CSV line."""
    path = Path(path)
    if not path.is_file():
        raise PlateMapError(f"{path}: plate map not found")
    if path.suffix.lower() in {".xlsx", ".xlsm", ".xls", ".ods"}:
        raise PlateMapError(f"{path}: a spreadsheet workbook, not a CSV file; {_SAVE_AS}")
    text = _decode(path, path.read_bytes())
    try:
        df = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            sep=_separator(text),
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PlateMapError(f"{path}: cannot read as CSV ({exc})") from exc
    return validate_platemap(df, source=str(path))


def validate_platemap(df: pd.DataFrame, *, source: str = "plate map") -> pd.DataFrame:
    """Check and normalise a plate-map table; returns a new table (the input is not modified).

    Line numbers in error messages count the CSV header as line 1.
    """
    df = df.reset_index(drop=True)  # a copy: positions give the CSV line (position + 2)
    df.columns = [normalize_text(c) for c in df.columns]
    text_columns = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    for c in text_columns:
        df[c] = [normalize_text(v) if isinstance(v, str) else v for v in df[c]]
    blank = pd.Series(True, index=df.index)
    for c in df.columns:
        blank &= df[c].isna() | (df[c].astype(str) == "")
    lines = (np.flatnonzero(~blank.to_numpy()) + 2).tolist()
    df = df[~blank.to_numpy()].reset_index(drop=True)
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
    df["plate"] = df["plate"].astype(str)
    df["drug"] = df["drug"].astype(str)
    wells = []
    for i, w in enumerate(df["well"]):
        try:
            wells.append(canonical_well(str(w)))
        except ParseError as exc:
            raise PlateMapError(f"{source}, line {lines[i]}: {exc}") from exc
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
        raise PlateMapError(
            f"{source}, line {lines[i]}: concentration_um {value!r} is not a number"
        )
    if (conc < 0).any():
        i = _first(conc < 0)
        raise PlateMapError(f"{source}, line {lines[i]}: negative concentration_um {conc.iat[i]}")
    df["concentration_um"] = conc.astype(float)

    if "role" not in df.columns or (df["role"].astype(str).str.strip() == "").all():
        df["role"] = [_infer_role(d) for d in df["drug"]]
    df["role"] = df["role"].astype(str).str.strip().str.lower()
    unknown = ~df["role"].isin(ROLES)
    if unknown.any():
        i = _first(unknown)
        raise PlateMapError(
            f"{source}, line {lines[i]}: unknown role {df['role'].iat[i]!r}; use one of {list(ROLES)}"
        )
    treat_no_drug = (df["role"] == TREATMENT) & (df["drug"] == "")
    if treat_no_drug.any():
        i = _first(treat_no_drug)
        raise PlateMapError(
            f"{source}, line {lines[i]}: treatment well {df['well'].iat[i]} has no drug"
        )
    treat_no_conc = (df["role"] == TREATMENT) & df["concentration_um"].isna()
    if treat_no_conc.any():
        i = _first(treat_no_conc)
        raise PlateMapError(
            f"{source}, line {lines[i]}: treatment well {df['well'].iat[i]} of plate "
            f"{df['plate'].iat[i]!r} ({df['drug'].iat[i]}) has no concentration_um; fill it in"
        )

    key = ["plate", "well"] + (["cell_line"] if "cell_line" in df.columns else [])
    dup = df.duplicated(key, keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        same = dup & (df[key] == first[key]).all(axis=1)
        dup_lines = [lines[i] for i in np.flatnonzero(same.to_numpy())]
        raise PlateMapError(
            f"{source}: duplicate rows for plate {first['plate']!r} well {first['well']} "
            f"(lines {dup_lines}); each well may appear once per plate"
        )
    if "time_zero" in df.columns:
        df["time_zero"] = df["time_zero"].astype(str).str.strip()
    return df.reset_index(drop=True)


def case_conflicts(
    platemap: pd.DataFrame, columns: tuple[str, ...] = ("drug", "cell_line")
) -> list[str]:
    """Warnings for names that differ only by upper/lower case (``drug03`` and ``Drug03``).

    Such names stay different conditions; the warning lets the user write them one way.
    """
    out = []
    for column in columns:
        if column not in platemap.columns:
            continue
        names = sorted({str(v) for v in platemap[column] if str(v) != ""})
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(name.casefold(), []).append(name)
        for spellings in groups.values():
            if len(spellings) > 1:
                shown = " and ".join(repr(n) for n in spellings)
                out.append(
                    f"plate map: {column} names {shown} differ only in upper/lower case and "
                    f"count as different {column.replace('_', ' ')}s; write them one way if they "
                    f"are the same"
                )
    return out


def _first(mask: pd.Series) -> int:
    """Position of the first True in a boolean Series."""
    return int(np.flatnonzero(mask.to_numpy())[0])


def _infer_role(drug: str) -> str:
    name = str(drug).strip().lower()
    if name in _VEHICLES:
        return NEGATIVE_CONTROL
    if name in _UNTREATED:
        return UNTREATED
    return TREATMENT
