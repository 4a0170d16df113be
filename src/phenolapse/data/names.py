"""Parse image file names into screen metadata (cell line, plate, well, field, tile, time).

Two built-in schemes are recognised:

- Incucyte / LIVECell elapsed-time names
  ``<CELL>_<anything>_<WELL>_<FIELD>_<DD>d<HH>h<MM>m[_<TILE>].<ext>``
  (``SHSY5Y_Phase_B10_1_02d08h00m_3.tif`` -> SHSY5Y, B10, field 1, 56 h elapsed, tile 3);
- the reference screen's absolute timestamps
  ``<CELL>_<CLONE>_<PLATE>_<WELL>_<FIELD>_<YYYY>y<MM>m<DD>d_<HH>h<MM>m.<ext>``.

Other schemes: pass a regular expression with named groups. ``well`` (or ``row`` and ``column``,
the row as letters or a 1-based number) is required; recognised groups are ``cell_line, plate,
well, row, column, field, tile``, an elapsed time as ``days, hours, minutes`` or ``time_h``, or an
absolute time as ``year, month, day, hour, minute``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from phenolapse.errors import ParseError

_EXT = r"\.(?:tif|tiff|png|jpg|jpeg)"

INCUCYTE_PATTERN = re.compile(
    r"^(?P<cell_line>[^_]+)_(?:.+_)?(?P<well>[A-Za-z]{1,2}\d{1,2})_(?P<field>\d+)_"
    r"(?P<days>\d+)d(?P<hours>\d+)h(?P<minutes>\d+)m(?:_(?P<tile>\d+))?" + _EXT + "$",
    re.IGNORECASE,
)
REFERENCE_PATTERN = re.compile(
    r"^(?P<cell_line>[^_]+)_(?P<clone>[^_]+)_(?P<plate>[^_]+)_(?P<well>[A-Za-z]{1,2}\d{1,2})_"
    r"(?P<field>\d+)_(?P<year>\d{4})y(?P<month>\d{2})m(?P<day>\d{2})d_(?P<hour>\d{2})h"
    r"(?P<minute>\d{2})m" + _EXT + "$",
    re.IGNORECASE,
)
BUILTIN_PATTERNS = (INCUCYTE_PATTERN, REFERENCE_PATTERN)

_WELL = re.compile(r"^\s*([A-Za-z]{1,2})0*(\d{1,3})\s*$")


def split_well(well: str) -> tuple[str, int]:
    """Split a well id into (row letters, column number): ``"b03"`` -> ``("B", 3)``."""
    m = _WELL.match(str(well))
    if m is None or int(m.group(2)) == 0:
        raise ParseError(f"not a well id: {well!r} (expected a row letter and a column, e.g. B10)")
    return m.group(1).upper(), int(m.group(2))


def canonical_well(well: str) -> str:
    """Canonical well id, row letters + column without leading zeros: ``"A01"`` -> ``"A1"``."""
    row, col = split_well(well)
    return f"{row}{col}"


@dataclass(frozen=True)
class ParsedName:
    """Metadata carried by one file name."""

    cell_line: str
    plate: str | None
    well: str
    row: str
    column: int
    field: int
    tile: int
    elapsed_h: float | None
    timestamp: dt.datetime | None


def compile_pattern(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """Compile and check a user naming pattern (it must name the well, see module docstring).

    Raises
    ------
    ParseError
        When the expression is invalid or has no ``well`` (or ``row`` and ``column``) group.
    """
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise ParseError(f"invalid naming pattern {pattern!r}: {exc}") from exc
    groups = set(compiled.groupindex)
    if "well" not in groups and not {"row", "column"} <= groups:
        raise ParseError(
            f"naming pattern {compiled.pattern!r} must have a named group 'well' "
            "(or 'row' and 'column'), e.g. (?P<well>[A-P]\\d+)"
        )
    return compiled


def parse_name(name: str | Path, pattern: str | re.Pattern[str] | None = None) -> ParsedName:
    """Parse one file name (the base name of ``name``) with ``pattern`` or the built-in schemes.

    Raises
    ------
    ParseError
        When no scheme matches; the message names the file and the expected forms.
    """
    base = Path(name).name
    patterns = (compile_pattern(pattern),) if pattern else BUILTIN_PATTERNS
    for pat in patterns:
        m = pat.match(base)
        if m is not None:
            return _from_groups(base, m.groupdict())
    if pattern:
        raise ParseError(f"{base}: does not match the naming pattern {patterns[0].pattern!r}")
    raise ParseError(
        f"{base}: file name not understood; expected "
        "<CELL>_<anything>_<WELL>_<FIELD>_<DD>d<HH>h<MM>m[_<TILE>].<ext> or "
        "<CELL>_<CLONE>_<PLATE>_<WELL>_<FIELD>_<YYYY>y<MM>m<DD>d_<HH>h<MM>m.<ext>; "
        "pass --pattern with a regular expression for other schemes"
    )


def _int(groups: dict[str, str | None], key: str, default: int, base: str) -> int:
    value = groups.get(key)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise ParseError(f"{base}: {key} {value!r} is not an integer") from exc


def _row_letters(row: str) -> str:
    """Row letters from letters (``"b"`` -> ``"B"``) or a 1-based number (``"02"`` -> ``"B"``)."""
    text = row.strip()
    if not text.isdigit():
        return text
    n, letters = int(text), ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _from_groups(base: str, g: dict[str, str | None]) -> ParsedName:
    well = g.get("well")
    if not well and g.get("row") and g.get("column"):
        well = f"{_row_letters(str(g['row']))}{g['column']}"
    if not well:
        raise ParseError(
            f"{base}: the naming pattern must have a named group 'well' (or 'row' and 'column')"
        )
    try:
        row, column = split_well(str(well))
    except ParseError as exc:
        raise ParseError(f"{base}: {exc}") from exc
    field = _int(g, "field", 1, base)
    tile = _int(g, "tile", 1, base)
    elapsed: float | None = None
    stamp: dt.datetime | None = None
    if g.get("time_h") not in (None, ""):
        try:
            elapsed = float(str(g["time_h"]))
        except ValueError as exc:
            raise ParseError(f"{base}: time_h {g['time_h']!r} is not a number") from exc
    elif g.get("days") is not None or g.get("hours") is not None:
        days, hours, minutes = (_int(g, k, 0, base) for k in ("days", "hours", "minutes"))
        if minutes >= 60:
            raise ParseError(f"{base}: {minutes} minutes is not a valid time")
        elapsed = days * 24 + hours + minutes / 60
    elif g.get("year") is not None:
        try:
            stamp = dt.datetime(
                _int(g, "year", 0, base),
                _int(g, "month", 1, base),
                _int(g, "day", 1, base),
                _int(g, "hour", 0, base),
                _int(g, "minute", 0, base),
            )
        except ValueError as exc:
            raise ParseError(f"{base}: invalid timestamp ({exc})") from exc
    else:
        raise ParseError(
            f"{base}: the naming pattern captured no time "
            "(days/hours/minutes, time_h or year..minute)"
        )
    cell_line = str(g.get("cell_line") or "").strip() or "unknown"
    plate = g.get("plate")
    return ParsedName(
        cell_line=cell_line,
        plate=str(plate) if plate else None,
        well=f"{row}{column}",
        row=row,
        column=column,
        field=field,
        tile=tile,
        elapsed_h=elapsed,
        timestamp=stamp,
    )
