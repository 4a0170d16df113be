"""Growth readers: Incucyte metric exports, Incucyte ``.PlateMap`` XML, long tables, GR tables.

Every time-course reader returns the *long growth table*: one row per (plate, well, time point,
metric) with columns ``plate, well, time_h, metric, value`` and, where the file says so,
``cell_line``, ``drug``, ``concentration_um`` and ``role``. :func:`attach_platemap` adds the plate
map's conditions to it. Formats read:

- Incucyte ZOOM / S3 metric exports (tab, comma or semicolon separated; decimal commas accepted):
  a header block of ``Key: value`` lines (``Label:``, ``Metric:``, ``Cell Type:`` ...), then a
  ``Date Time``, ``Elapsed`` and one column per well. The ``Metric:`` line names the metric
  (:func:`metric_name`); several files with one ``Label:`` are several metrics of one plate.
- Condition-column exports: the same layout with conditions (``Control``, ``Blank``,
  ``DOX 6.25``) in place of wells and replicate wells stacked as repeated blocks of time points
  (``Elapsed`` restarts at its first value). The metric comes from the ``Metric:`` line or from a
  file name ending in ``_phase``, ``_red``, ``_green`` (optionally ``_confluence_`` before it).
- Long tables (CSV or Parquet): ``plate, well, time_h, metric, value``.
- Plate maps: the plate-map CSV (:func:`phenolapse.data.platemap.read_platemap`), an Incucyte
  ``.PlateMap`` XML (:func:`read_platemap_xml`) or a table with ``row, col, sampleid, conc,
  samptype, concunits`` (1-based rows and columns; ``samptype`` ``C`` control, ``S`` sample,
  ``B`` blank).

The GR tools' table (one row per well or replicate with ``cell_count``, ``cell_count__ctrl``,
``cell_count__time0``) is read by :func:`read_gr_table`.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolapse.errors import FeatureTableError, PlateMapError
from phenolapse.vocabulary import NEGATIVE_CONTROL, OBSERVATION_KEYS, TREATMENT

# Columns of the long growth table the temporal stage reads (one row per plate, well and time).
GROWTH_COLUMNS = [*OBSERVATION_KEYS, "confluence"]

LONG_COLUMNS = ["plate", "well", "time_h", "metric", "value"]
CONDITION_COLUMNS = ["cell_line", "drug", "concentration_um", "role"]
GR_TABLE_REQUIRED = ["concentration", "cell_count", "cell_count__ctrl", "cell_count__time0"]
UNIT_TO_UM = {
    "pm": 1e-6,
    "nm": 1e-3,
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micromolar": 1.0,
    "mm": 1e3,
    "m": 1e6,
}
VEHICLES = ("dmso", "vehicle", "control", "pbs", "medium", "water", "untreated", "ctrl")
_WELL = re.compile(r"^\s*([A-Za-z]{1,2})0*(\d{1,3})\s*$")
_CONDITION = re.compile(r"^\s*(.*?)\s+([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([a-zA-Zµμ]*M)?\s*$")
_CHANNEL_SUFFIX = re.compile(r"(?:_confluence)?_(phase|red|green|blue|nir|overlap)$", re.IGNORECASE)



def _to_numbers(df: pd.DataFrame, columns: list[str], *, source: object) -> None:
    """Make ``columns`` of ``df`` numeric in place; a cell that is no number is an error naming
    its file row (blank cells become NaN)."""
    for col in columns:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise FeatureTableError(
                f"{source}, row {i + 2}: {col} {df[col].iloc[i]!r} is not a number"
            )
        df[col] = num

def canonical_well(name: str) -> str | None:
    """``"A01"`` -> ``"A1"``; None when ``name`` is not a well id."""
    m = _WELL.match(str(name))
    return f"{m.group(1).upper()}{int(m.group(2))}" if m else None


def unit_factor(unit: str, *, source: str = "concentration unit") -> float:
    """Factor that converts a concentration in ``unit`` (nM, uM, µM, mM ...) to micromolar."""
    key = str(unit).strip().lower().replace("mol/l", "m")
    if key not in UNIT_TO_UM:
        raise PlateMapError(
            f"{source}: unknown concentration unit {unit!r}; use one of pM, nM, uM, mM, M"
        )
    return UNIT_TO_UM[key]


def metric_name(text: str) -> str:
    """Canonical metric name of an Incucyte ``Metric:`` line or channel word.

    Phase confluence -> ``confluence``; phase object count -> ``cell_count``; red / green / blue
    area or confluence -> ``red_area`` ...; red / green object count -> ``red_count`` ...; any
    other text -> a lower-case slug of it.
    """
    t = str(text).lower()
    for colour in ("red", "green", "blue", "nir"):
        if re.search(rf"\b{colour}\b", t):
            return f"{colour}_count" if "count" in t else f"{colour}_area"
    if "confluence" in t or t.strip() == "phase":
        return "confluence"
    if "count" in t:
        return "cell_count"
    slug = re.sub(r"[^a-z0-9]+", "_", t).strip("_")
    return slug or "value"


def _number(text: str, *, decimal_comma: bool) -> float:
    s = str(text).strip()
    if decimal_comma:
        s = s.replace(",", ".")
    if s == "" or s.lower() in {"na", "nan", "n/a"}:
        return float("nan")
    return float(s)


def _cell_number(text: str, decimal_comma: bool, *, where: str) -> float:
    """:func:`_number`; a cell that is not a number is a FeatureTableError naming ``where``."""
    try:
        return _number(text, decimal_comma=decimal_comma)
    except ValueError:
        raise FeatureTableError(f"{where} {text!r} is not a number") from None


def _split_header_block(lines: list[str]) -> tuple[dict[str, str], int]:
    """``Key: value`` lines before the table and the index of the table's header line."""
    meta: dict[str, str] = {}
    for i, line in enumerate(lines):
        stripped = line.strip().strip('"')
        low = stripped.lower()
        if "elapsed" in low and (
            "date time" in low or low.startswith("elapsed") or "\t" in line or "," in line
        ):
            return meta, i
        if ":" in stripped and not re.match(r"^\d", stripped):
            key, value = stripped.split(":", 1)
            meta[key.strip().lower()] = value.strip()
    raise FeatureTableError("no header line with an 'Elapsed' column; is this an Incucyte export?")


def read_incucyte_export(
    path: str | Path,
    *,
    plate: str | None = None,
    metric: str | None = None,
    concentration_unit: str = "uM",
    default_metric: str | None = None,
) -> pd.DataFrame:
    """Read one Incucyte metric export (well or condition columns) into the long growth table.

    Parameters
    ----------
    path
        The exported text file.
    plate
        Plate id; default the ``Label:`` line, else the file name without its channel suffix.
    metric
        Metric name; default from the ``Metric:`` line, else the file name's channel suffix.
    concentration_unit
        Unit of the concentrations written in condition names (``DOX 6.25``).
    default_metric
        Metric of a file with neither a ``Metric:`` line nor a channel suffix (default: an
        error asking for the metric).

    Returns
    -------
    DataFrame
        ``plate, well, time_h, metric, value, cell_line`` and, for condition-column exports,
        ``drug, concentration_um, role`` (``Control`` -> ``negative_control``, ``Blank`` ->
        ``blank``).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FeatureTableError(f"{path}: cannot read ({exc.strerror})") from exc
    text = raw.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    try:
        meta, header_i = _split_header_block(lines)
    except FeatureTableError as exc:
        raise FeatureTableError(f"{path}: {exc}") from None
    header_line = lines[header_i]
    sep = max(("\t", ",", ";"), key=header_line.count)
    rows = list(csv.reader(io.StringIO("\n".join(lines[header_i:])), delimiter=sep))
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if "elapsed" not in lower:
        raise FeatureTableError(f"{path}: no 'Elapsed' column in the header line {header_i + 1}")
    e_col = lower.index("elapsed")
    data_cols = [j for j, h in enumerate(lower) if h not in ("elapsed", "date time", "")]
    if not data_cols:
        raise FeatureTableError(f"{path}: no well or condition columns beside 'Elapsed'")
    decimal_comma = sep != "," and any("," in c for r in rows[1:20] for c in r)
    stem = path.stem
    plate_id = plate or meta.get("label") or _CHANNEL_SUFFIX.sub("", stem)
    if metric is None:
        if "metric" in meta:
            metric = metric_name(meta["metric"])
        else:
            m = _CHANNEL_SUFFIX.search(stem)
            if m is None and default_metric is not None:
                metric = default_metric
            elif m is None:
                raise FeatureTableError(
                    f"{path}: no 'Metric:' line and no channel suffix (_phase, _red, _green) in "
                    "the file name; pass the metric explicitly"
                )
            else:
                metric = metric_name(m.group(1))
    wells = {j: canonical_well(header[j]) for j in data_cols}
    by_condition = any(w is None for w in wells.values())
    records: list[tuple[str, float, float, int]] = []
    block, last = 0, -np.inf
    for line_no, row in enumerate(rows[1:], start=header_i + 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise FeatureTableError(
                f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}"
            )
        t = _cell_number(row[e_col], decimal_comma, where=f"{path}, line {line_no}: Elapsed")
        if t < last:
            block += 1
        last = t
        for j in data_cols:
            where = f"{path}, line {line_no}, column {header[j]!r}:"
            v = _cell_number(row[j], decimal_comma, where=where)
            records.append((header[j], t, v, block))
    if not records:
        raise FeatureTableError(f"{path}: no data rows below the header")
    df = pd.DataFrame(records, columns=["column", "time_h", "value", "block"])
    df["plate"] = plate_id
    df["metric"] = metric
    df["cell_line"] = meta.get("cell type") or ""
    if not by_condition:
        if df["block"].max() > 0:
            raise FeatureTableError(
                f"{path}: Elapsed goes back in time in a well-column export (line "
                f"{header_i + 2 + int(np.argmax(df['block'].to_numpy() > 0)) // len(data_cols)}); "
                "export one plate per file"
            )
        df["well"] = df["column"].map(lambda c: canonical_well(c) or c)
        return df[[*LONG_COLUMNS, "cell_line"]]
    factor = unit_factor(concentration_unit, source=str(path))
    counts: dict[str, int] = {}
    labels: dict[int, str] = {}
    for j in data_cols:
        name = header[j]
        counts[name] = counts.get(name, 0) + 1
        labels[j] = name if counts[name] == 1 else f"{name}~{counts[name]}"
    # duplicated header names are kept apart by the order of the records
    col_index = np.tile(data_cols, len(df) // len(data_cols))
    df["label"] = [labels[j] for j in col_index]
    cond = {lab: _parse_condition(lab.split("~")[0], factor) for lab in set(df["label"])}
    df["drug"] = df["label"].map(lambda lab: cond[lab][0])
    df["concentration_um"] = df["label"].map(lambda lab: cond[lab][1])
    df["role"] = df["label"].map(lambda lab: cond[lab][2])
    df["well"] = df["label"] + "#" + (df["block"] + 1).astype(str)
    return df[[*LONG_COLUMNS, *CONDITION_COLUMNS]]


def _parse_condition(label: str, factor: float) -> tuple[str, float, str]:
    """(drug, concentration_um, role) of a condition column name such as ``DOX 6.25``."""
    low = label.strip().lower()
    if low in ("blank", "empty", "no cells", "medium only"):
        return "", float("nan"), "blank"
    if low in VEHICLES or low.startswith(("control", "dmso", "vehicle")):
        return label.strip(), 0.0, NEGATIVE_CONTROL
    m = _CONDITION.match(label)
    if m is None:
        return label.strip(), float("nan"), TREATMENT
    unit = m.group(3)
    f = unit_factor(unit, source=label) if unit else factor
    return m.group(1).strip(), float(m.group(2)) * f, TREATMENT


def read_platemap_xml(path: str | Path) -> pd.DataFrame:
    """Read an Incucyte ``.PlateMap`` XML into a plate-map table.

    Columns: ``well``, ``drug`` (compound descriptions joined by ``" + "``), ``concentration``
    and ``concentration_unit`` as written, ``concentration_um`` (NaN for units that are not molar,
    such as ``%``), ``role`` (``negative_control`` for vehicles such as DMSO, ``treatment`` for
    other compounds, ``blank`` for wells without compound or cells), ``cell_line``, ``passage``,
    ``seeding_density``, ``growth_condition`` and any other well item as ``<type>`` (lower case).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise PlateMapError(f"{path}: cannot read as Incucyte .PlateMap XML ({exc})") from exc
    wells = root.findall(".//wellStore/wells/well") or root.findall(".//well")
    if not wells:
        raise PlateMapError(f"{path}: no <well> elements; is this an Incucyte .PlateMap file?")
    rows: list[dict[str, Any]] = []
    for el in wells:
        try:
            r, c = int(el.get("row", "")), int(el.get("col", ""))
        except ValueError:
            raise PlateMapError(
                f"{path}: a <well> element lacks integer row/col attributes ({el.attrib})"
            ) from None
        well = f"{_row_letters(r)}{c + 1}"
        rec: dict[str, Any] = {"well": well}
        drugs, concs, units = [], [], []
        for item in el.findall(".//wellItem"):
            kind = (item.get("type") or "").strip()
            ref = item.find("referenceItem")
            desc = (ref.get("description") if ref is not None else None) or ""
            if kind.lower() == "compound":
                drugs.append(desc.strip())
                concs.append(item.get("concentration"))
                units.append(item.get("concentrationUnits") or "")
            elif kind.lower() == "celltype":
                rec["cell_line"] = desc.strip()
                if item.get("passage") is not None:
                    rec["passage"] = item.get("passage")
                dens = item.get("seedingDensity")
                if dens is not None:
                    unit = item.get("seedingDensityUnits") or ""
                    rec["seeding_density"] = f"{dens} {unit}".strip()
            elif kind.lower() == "growthcondition":
                rec["growth_condition"] = desc.strip()
            elif kind:
                rec[re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_")] = desc.strip()
        rec["drug"] = " + ".join(drugs)
        rec["concentration"] = float(concs[0]) if concs and concs[0] not in (None, "") else np.nan
        rec["concentration_unit"] = units[0] if units else ""
        rec["concentration_um"] = np.nan
        if units and units[0]:
            try:
                rec["concentration_um"] = rec["concentration"] * unit_factor(units[0], source=well)
            except PlateMapError:
                rec["concentration_um"] = np.nan
        rec["role"] = _role(rec["drug"])
        if rec["role"] == NEGATIVE_CONTROL:
            rec["concentration_um"] = 0.0
        rows.append(rec)
    df = pd.DataFrame(rows)
    return df


def _row_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA (plates of more than 26 rows)."""
    letters = ""
    n = index + 1
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _role(drug: str) -> str:
    low = drug.strip().lower()
    if not low:
        return "blank"
    first = re.split(r"[\s+]", low)[0]
    if first in VEHICLES:
        return NEGATIVE_CONTROL
    return TREATMENT


def read_platemap_table(path: str | Path) -> pd.DataFrame:
    """Read a plate map: ``.PlateMap`` XML, a ``row, col, sampleid, conc`` table or the CSV."""
    path = Path(path)
    if not path.is_file():
        raise PlateMapError(f"{path}: plate map not found")
    head = path.read_bytes()[:400].decode("utf-8-sig", errors="replace").lstrip()
    if path.suffix.lower() == ".platemap" or head.startswith("<"):
        return read_platemap_xml(path)
    first = head.split("\n", 1)[0].replace('"', "").lower()
    fields = re.split(r"[\t,;]", first)
    if {"row", "col", "sampleid", "conc"} <= {f.strip() for f in fields}:
        return _read_drc_table(path)
    from phenolapse.data.platemap import read_platemap

    return read_platemap(path)


def _read_drc_table(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    sep = "\t" if "\t" in text.split("\n", 1)[0] else ","
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    df.columns = [c.strip().lower() for c in df.columns]
    out = []
    for i, r in df.iterrows():
        try:
            row, col = int(r["row"]), int(r["col"])
        except ValueError:
            raise PlateMapError(
                f"{path}, line {int(str(i)) + 2}: row/col {r['row']!r}, {r['col']!r} not integers"
            ) from None
        kind = str(r.get("samptype", "")).strip().upper()
        drug = "" if r["sampleid"] in ("-", "NA") else str(r["sampleid"]).strip()
        conc = pd.to_numeric(r["conc"], errors="coerce")
        unit = str(r.get("concunits", "")).strip()
        role = {"C": NEGATIVE_CONTROL, "S": TREATMENT}.get(kind, "blank")
        try:
            um = float(conc) * unit_factor(unit, source=f"{path}, line {int(str(i)) + 2}")
        except PlateMapError:
            um = float("nan")
        rec = {
            "well": f"{_row_letters(row - 1)}{col}",
            "drug": drug,
            "concentration": conc,
            "concentration_unit": "" if unit == "NA" else unit,
            "concentration_um": 0.0 if role == NEGATIVE_CONTROL else um,
            "role": role,
        }
        for src, dst in (
            ("celltype", "cell_line"),
            ("growthcondition", "growth_condition"),
            ("passage", "passage"),
            ("seedingdensity", "seeding_density"),
        ):
            if src in df.columns and r[src] not in ("NA", ""):
                rec[dst] = r[src]
        out.append(rec)
    return pd.DataFrame(out)


def attach_platemap(
    long: pd.DataFrame, platemap: pd.DataFrame, *, source: str = ""
) -> pd.DataFrame:
    """Add the plate map's columns to a long growth table (matched on well, and plate if given).

    Wells of the data missing from the plate map are an error naming them; plate-map wells
    without data are ignored.
    """
    pm = platemap.copy()
    pm["well"] = [canonical_well(w) or str(w) for w in pm["well"]]
    on = ["well"]
    if "plate" in pm.columns and (pm["plate"].astype(str) != "").any():
        plates = set(pm["plate"].astype(str))
        if set(long["plate"].astype(str)) <= plates:
            on = ["plate", "well"]
            pm["plate"] = pm["plate"].astype(str)
    pm = pm.drop(columns=[c for c in pm.columns if c == "plate" and on == ["well"]])
    dup = pm.duplicated(on)
    if dup.any():
        raise PlateMapError(
            f"{source or 'plate map'}: well {pm.loc[dup, 'well'].iloc[0]} appears twice"
        )
    unknown = sorted(set(long["well"]) - set(pm["well"]))
    if unknown:
        raise PlateMapError(
            f"{source or 'plate map'}: well(s) {unknown[:8]} of the data are not in the plate "
            "map; add them (role blank for empty wells)"
        )
    base = long.drop(columns=[c for c in pm.columns if c in long.columns and c not in on])
    if "cell_line" in long.columns and "cell_line" in pm.columns:
        keep = long[["cell_line"]]
        base = long.drop(columns=[c for c in pm.columns if c in long.columns and c not in on])
        merged = base.merge(pm, on=on, how="left")
        missing = merged["cell_line"].isna() | (merged["cell_line"].astype(str) == "")
        merged.loc[missing, "cell_line"] = keep["cell_line"].to_numpy()[missing.to_numpy()]
        return merged
    return base.merge(pm, on=on, how="left")


def read_long_table(path: str | Path) -> pd.DataFrame:
    """Read a long growth table (CSV or Parquet): ``plate, well, time_h, metric, value``."""
    path = Path(path)
    df = _read_table(path)
    missing = [c for c in ("well", "time_h", "metric", "value") if c not in df.columns]
    if missing:
        raise FeatureTableError(
            f"{path}: missing column(s) {missing}; a long growth table has "
            f"plate, well, time_h, metric, value (found {list(df.columns)})"
        )
    df = df.copy()
    if "plate" not in df.columns:
        df["plate"] = path.stem
    _to_numbers(df, ["time_h", "value"], source=path)
    if df["time_h"].isna().any():
        i = int(np.flatnonzero(df["time_h"].isna().to_numpy())[0])
        raise FeatureTableError(f"{path}, row {i + 2}: time_h is empty")
    df["plate"] = df["plate"].astype(str)
    df["well"] = [canonical_well(w) or str(w) for w in df["well"]]
    df["metric"] = df["metric"].astype(str).str.strip()
    if "concentration_um" in df.columns:
        df["concentration_um"] = pd.to_numeric(df["concentration_um"], errors="coerce")
    return df


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FeatureTableError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        first = text.split("\n", 1)[0]
        sep = max(("\t", ",", ";"), key=first.count)
        return pd.read_csv(io.StringIO(text), sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FeatureTableError(f"{path}: cannot read as a table ({exc})") from exc


def read_gr_table(path: str | Path) -> pd.DataFrame:
    """Read the GR tools' table (tab- or comma-separated, or Parquet), checking its columns.

    ``agent`` or ``treatment`` is renamed ``drug``; all other columns are kept.
    """
    path = Path(path)
    df = _read_table(path)
    return check_gr_table(df, source=str(path))


def check_gr_table(df: pd.DataFrame, *, source: str = "GR table") -> pd.DataFrame:
    """Check a GR tools' table: required columns, numbers; returns a normalised copy."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    for alias in ("agent", "treatment"):
        if alias in df.columns and "drug" not in df.columns:
            df = df.rename(columns={alias: "drug"})
    missing = [c for c in GR_TABLE_REQUIRED if c not in df.columns]
    if missing:
        raise FeatureTableError(
            f"{source}: missing column(s) {missing}; the GR table needs concentration, "
            f"cell_count, cell_count__ctrl, cell_count__time0 (found {list(df.columns)})"
        )
    numeric = [c for c in df.columns if c == "concentration" or c == "time" or "_count" in c]
    _to_numbers(df, numeric, source=source)
    if "drug" not in df.columns:
        df["drug"] = ""
    if "cell_line" not in df.columns:
        df["cell_line"] = ""
    return df


def sniff_input(path: str | Path) -> str:
    """What kind of growth input a file is: ``incucyte``, ``long`` or ``gr_table``."""
    path = Path(path)
    if not path.is_file():
        raise FeatureTableError(f"{path}: file not found")
    if path.suffix.lower() == ".parquet":
        cols = set(pd.read_parquet(path).columns)
    else:
        head = path.read_bytes()[:4000].decode("utf-8-sig", errors="replace").replace("\r", "\n")
        lines = [ln for ln in head.split("\n") if ln.strip()]
        if not lines:
            raise FeatureTableError(f"{path}: the file is empty")
        if any(ln.lower().startswith(("label:", "metric:", "vessel name:")) for ln in lines[:12]):
            return "incucyte"
        first = lines[0].replace('"', "")
        cols = {c.strip() for c in re.split(r"[\t,;]", first)}
        if {"Elapsed"} <= cols or "elapsed" in {c.lower() for c in cols}:
            return "incucyte"
    if "cell_count" in cols and "concentration" in cols:
        return "gr_table"
    if {"well", "time_h", "metric", "value"} <= cols:
        return "long"
    raise FeatureTableError(
        f"{path}: not a growth input: expected an Incucyte export (an 'Elapsed' column), a long "
        "table (plate, well, time_h, metric, value) or a GR table (concentration, cell_count, "
        f"cell_count__ctrl, cell_count__time0); found columns {sorted(cols)[:12]}"
    )


def to_confluence_table(
    long: pd.DataFrame, *, metric: str = "confluence", percent: bool = True
) -> pd.DataFrame:
    """The temporal stage's growth table from a long growth table with conditions.

    Columns ``cell_line, plate, well, time_h, drug, concentration_um, role, confluence``
    (a fraction: percent values are divided by 100 when ``percent``); blank wells are left out.
    """
    need = ["plate", "well", "time_h", "metric", "value", "drug", "concentration_um", "role"]
    missing = [c for c in need if c not in long.columns]
    if missing:
        raise FeatureTableError(f"growth table lacks column(s) {missing}; attach a plate map")
    sub = long[(long["metric"] == metric) & (long["role"] != "blank")].copy()
    if sub.empty:
        raise FeatureTableError(f"no '{metric}' values (metrics: {sorted(set(long['metric']))})")
    if "cell_line" not in sub.columns:
        sub["cell_line"] = ""
    empty = sub["cell_line"].fillna("").astype(str) == ""
    sub.loc[empty, "cell_line"] = sub.loc[empty, "plate"]
    sub["confluence"] = sub["value"] / 100.0 if percent else sub["value"]
    return sub[GROWTH_COLUMNS].sort_values(["plate", "well", "time_h"]).reset_index(drop=True)


def read_time_courses(
    paths: Sequence[str | Path],
    *,
    plate: str | None = None,
    concentration_unit: str = "uM",
    default_metric: str | None = None,
) -> pd.DataFrame:
    """Read Incucyte exports and long tables into one long growth table (no plate map yet).

    Several files are several plates or several metrics of one plate; a (plate, well, time,
    metric) given twice is an error (the same export read twice). ``plate`` names every file's
    plate; ``default_metric`` is the metric of an export that names none.
    """
    parts = []
    for p in paths:
        path = Path(p)
        kind = sniff_input(path)
        if kind == "incucyte":
            part = read_incucyte_export(
                path,
                plate=plate,
                concentration_unit=concentration_unit,
                default_metric=default_metric,
            )
        elif kind == "long":
            part = read_long_table(path)
            if plate is not None:
                part["plate"] = plate
        else:
            raise FeatureTableError(
                f"{path}: a GR table has no time course; give Incucyte exports or long tables"
            )
        parts.append(part)
    if not parts:
        raise FeatureTableError("no input files given")
    long = pd.concat(parts, ignore_index=True)
    dup = long.duplicated(["plate", "well", "time_h", "metric"])
    if dup.any():
        row = long[dup].iloc[0]
        raise FeatureTableError(
            f"plate {row['plate']}, well {row['well']}, {row['time_h']:g} h: metric "
            f"'{row['metric']}' given twice (the same export read twice?)"
        )
    return long


def read_confluence_exports(
    paths: Sequence[str | Path],
    *,
    platemap: str | Path | pd.DataFrame | None = None,
    metric: str = "confluence",
    plate: str | None = None,
    time_zero: float | None = None,
    concentration_unit: str = "uM",
) -> pd.DataFrame:
    """The temporal stage's growth table from Incucyte exports or long tables, with a plate map.

    The reader of ``phenolapse temporal --incucyte`` and of a run's ``screen.growth_exports``.
    Several files are several plates or several metrics of one plate; only ``metric`` is kept.

    Parameters
    ----------
    paths
        Incucyte metric exports (:func:`read_incucyte_export`; a file with neither a ``Metric:``
        line nor a channel suffix is taken as ``metric``) or long tables (:func:`read_long_table`).
    platemap
        Plate map (CSV, Incucyte ``.PlateMap`` XML or a table already read); needed unless the
        exports name their conditions. A numeric ``time_zero`` column (hours of elapsed time)
        is subtracted from the plate's times.
    metric
        The readout kept: ``confluence`` (percent in the export, a fraction here) or another.
    plate
        Plate id of every file (default: the ``Label:`` line, else the file name).
    time_zero
        Drug addition in hours of elapsed time, for plates without a plate-map ``time_zero``.
    concentration_unit
        Unit of concentrations in condition-column exports.

    Returns
    -------
    DataFrame
        ``cell_line, plate, well, time_h, drug, concentration_um, role, confluence`` (see
        :func:`to_confluence_table`).
    """
    if not paths:
        raise FeatureTableError("no growth export given")
    long = read_time_courses(
        paths, plate=plate, concentration_unit=concentration_unit, default_metric=metric
    )
    if metric not in set(long["metric"]):
        raise FeatureTableError(
            f"no '{metric}' readout in {', '.join(str(p) for p in paths)} (metrics found: "
            f"{sorted(set(long['metric']))})"
        )
    long = long[long["metric"] == metric].reset_index(drop=True)
    source = "plate map"
    if platemap is not None:
        if isinstance(platemap, pd.DataFrame):
            pm = platemap
        else:
            source = str(platemap)
            pm = read_platemap_table(platemap)
        long = attach_platemap(long, pm, source=source)
    elif "role" not in long.columns or long["role"].isna().any():
        no_role = long["role"].isna() if "role" in long.columns else long["well"].notna()
        raise FeatureTableError(
            f"well(s) {sorted(set(long.loc[no_role, 'well']))[:6]} have no drug or "
            "concentration: give a plate map (CSV or Incucyte .PlateMap)"
        )
    long["time_h"] = long["time_h"] - _time_zero(long, time_zero, source=source)
    percent = metric == "confluence" or metric.endswith("_area")
    return to_confluence_table(long, metric=metric, percent=percent)


def _time_zero(long: pd.DataFrame, default: float | None, *, source: str) -> np.ndarray:
    """Per row the drug-addition time in elapsed hours (plate-map ``time_zero``, else default)."""
    fallback = 0.0 if default is None else float(default)
    if "time_zero" not in long.columns:
        return np.full(len(long), fallback)
    text = long["time_zero"].astype(str).str.strip()
    blank = text.isin(["", "nan", "None", "<NA>"])
    num = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        row = long[bad].iloc[0]
        raise PlateMapError(
            f"{source}: plate {row['plate']}, well {row['well']}: time_zero "
            f"{row['time_zero']!r} is not a number of hours; exports count elapsed hours, so "
            "give time_zero in elapsed hours"
        )
    return num.fillna(fallback).to_numpy(dtype=np.float64)
