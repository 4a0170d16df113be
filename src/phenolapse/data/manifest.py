"""The screen manifest: one row per image, joined with the plate map.

See ``docs/formats.md`` for every column. :func:`build_manifest` walks an image folder, parses the
file names (:mod:`phenolapse.data.names`), and joins the plate map exactly on (plate, well); an
image that joins no plate-map row stops the run with a list of the files and the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from phenolapse.data.imageio import IMAGE_SUFFIXES, read_raw
from phenolapse.data.names import ParsedName, compile_pattern, parse_name
from phenolapse.data.platemap import ROLES, read_platemap, validate_platemap
from phenolapse.errors import ImageReadError, ManifestError, ParseError, PlateMapError
from phenolapse.io_utils import write_parquet

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "image_path",
    "cell_line",
    "plate",
    "well",
    "row",
    "column",
    "field",
    "tile",
    "time_h",
    "drug",
    "concentration_um",
    "role",
]
SORT_KEY = ["plate", "well", "field", "tile", "time_h"]
_MAX_LISTED = 20


def find_images(images_dir: str | Path) -> list[Path]:
    """All image files (TIFF/PNG/JPEG) under ``images_dir``, sorted; hidden files are ignored."""
    root = Path(images_dir)
    if not root.is_dir():
        raise ManifestError(f"{root}: image folder not found")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ManifestError(
            f"{root}: no image files found (looked for {suffixes} in all sub-folders)"
        )
    return files


def _listing(items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "\n  " + "\n  ".join(shown) + more


def _parse_time_zero(value: object, *, where: str) -> float | dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float, np.floating)):
        return float(value)
    if isinstance(value, dt.datetime):
        return _naive(value, where=where)
    text = str(value).strip()
    if text in ("", "nan", "NaN"):
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise PlateMapError(
            f"{where}: time_zero {text!r} is neither a number of hours nor an ISO date-time "
            f"(e.g. 2019-08-30T12:00)"
        ) from exc
    return _naive(stamp, where=where)


def _naive(stamp: dt.datetime, *, where: str) -> dt.datetime:
    if stamp.tzinfo is not None:
        raise PlateMapError(
            f"{where}: time_zero {stamp.isoformat()} has a time-zone offset, but file-name "
            f"timestamps have none; give the local date-time without offset (e.g. 2019-08-30T12:00)"
        )
    return stamp


def build_manifest(
    images_dir: str | Path,
    *,
    platemap: str | Path | pd.DataFrame | None = None,
    time_zero: float | str | dt.datetime | None = None,
    pattern: str | re.Pattern[str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    verify_images: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Build the manifest of an image folder (see module docstring).

    Parameters
    ----------
    images_dir
        Folder searched recursively for TIFF/PNG/JPEG files.
    platemap
        Plate-map CSV or table; without it ``role`` is ``unknown`` and ``drug`` empty.
    time_zero
        Drug-addition time for every plate: hours of elapsed imaging time, or an ISO date-time for
        names with absolute timestamps. A plate map's ``time_zero`` column takes precedence.
    pattern
        Regular expression with named groups for other naming schemes.
    on_error
        ``raise``: stop at unparseable or unreadable files; ``skip``: leave them out and list them
        in ``manifest.attrs["skipped"]`` (``{"path": [...], "reason": [...]}``; see
        :func:`skipped_table`).
    verify_images
        Decode every image (slow) so corrupt files are found now, not mid-run.
    progress
        Show a progress bar.
    """
    root = Path(images_dir).resolve()
    if pattern:
        try:
            pattern = compile_pattern(pattern)
        except ParseError as exc:
            raise ManifestError(str(exc)) from exc
    files = find_images(root)
    skipped: list[tuple[str, str]] = []
    rows: list[tuple[Path, ParsedName]] = []
    errors: list[str] = []
    for path in tqdm(files, desc="parsing names", unit="file", disable=not progress, leave=False):
        try:
            if path.stat().st_size == 0:
                raise ImageReadError(f"{path}: empty (0-byte) image file")
            parsed = parse_name(path, pattern)
            if verify_images:
                read_raw(path)
            else:
                with Image.open(path) as im:  # header only: catches non-images cheaply
                    im.size  # noqa: B018
        except (ParseError, ImageReadError) as exc:
            errors.append(str(exc))
            skipped.append((str(path), str(exc)))
            continue
        except (OSError, SyntaxError, ValueError) as exc:
            msg = f"{path}: not a readable image ({exc})"
            errors.append(msg)
            skipped.append((str(path), msg))
            continue
        rows.append((path, parsed))
    if errors and on_error == "raise":
        raise ManifestError(
            f"{len(errors)} of {len(files)} files under {root} cannot be used "
            f"(use --skip-bad to leave them out):" + _listing(errors)
        )
    if not rows:
        raise ManifestError(f"{root}: none of the {len(files)} image files could be used")

    records = []
    for path, p in rows:
        rel = path.relative_to(root)
        plate = p.plate or (rel.parts[0] if len(rel.parts) > 1 else p.cell_line)
        records.append(
            {
                "image_path": str(path),
                "cell_line": p.cell_line,
                "plate": str(plate),
                "well": p.well,
                "row": p.row,
                "column": p.column,
                "field": p.field,
                "tile": p.tile,
                "_elapsed": p.elapsed_h,
                "_stamp": p.timestamp,
            }
        )
    df = pd.DataFrame.from_records(records)

    pm: pd.DataFrame | None = None
    if platemap is not None:
        pm = (
            validate_platemap(platemap, source="plate map")
            if isinstance(platemap, pd.DataFrame)
            else read_platemap(platemap)
        )
    df["time_h"] = _times(df, pm, time_zero)
    df = df.drop(columns=["_elapsed", "_stamp"])

    if pm is None:
        df["drug"] = ""
        df["concentration_um"] = np.nan
        df["role"] = "unknown"
    else:
        df = _join_platemap(df, pm)

    dup = df.duplicated(["cell_line", "plate", "well", "field", "tile", "time_h"], keep=False)
    if dup.any():
        d = df[dup].sort_values(["plate", "well", "time_h"])
        raise ManifestError(
            "several files for the same plate, well, field, tile and time point:"
            + _listing(
                [
                    f"{r.plate} {r.well} field {r.field} tile {r.tile} t={r.time_h:g} h: "
                    f"{r.image_path}"
                    for r in d.itertuples()
                ]
            )
        )
    df = df.sort_values(["cell_line", *SORT_KEY], kind="stable").reset_index(drop=True)
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    df = df[MANIFEST_COLUMNS + extra]
    # Plain lists, not a DataFrame: pandas compares attrs when concatenating or grouping.
    df.attrs["skipped"] = {"path": [p for p, _ in skipped], "reason": [r for _, r in skipped]}
    return df


def _times(df: pd.DataFrame, pm: pd.DataFrame | None, time_zero: object) -> np.ndarray:
    default = _parse_time_zero(time_zero, where="--time-zero")
    per_plate: dict[str, float | dt.datetime | None] = {}
    if pm is not None and "time_zero" in pm.columns:
        for pm_plate, values in pm.groupby("plate")["time_zero"]:
            vals = {v for v in values if str(v).strip() not in ("", "nan")}
            if len(vals) > 1:
                raise PlateMapError(
                    f"plate map: plate {pm_plate!r} has several time_zero values {sorted(vals)}"
                )
            if vals:
                per_plate[str(pm_plate)] = _parse_time_zero(
                    vals.pop(), where=f"plate map, plate {pm_plate!r}"
                )
    out = np.empty(len(df), dtype=float)
    for plate, idx in df.groupby("plate").groups.items():
        sub = df.loc[idx]
        tz = per_plate.get(str(plate), per_plate.get("", default))
        elapsed = sub["_elapsed"].notna()
        if elapsed.all():
            if isinstance(tz, dt.datetime):
                raise ManifestError(
                    f"plate {plate!r}: file names carry elapsed times, so time_zero must be a "
                    f"number of hours, not the date-time {tz.isoformat()}"
                )
            out[df.index.get_indexer(idx)] = sub["_elapsed"].to_numpy(float) - (tz or 0.0)
        elif not elapsed.any():
            stamps = pd.to_datetime(sub["_stamp"])
            if tz is None:
                zero = stamps.min()
                log.warning(
                    "plate %s: no time_zero given; time 0 is the first image (%s)", plate, zero
                )
            elif isinstance(tz, float):
                raise ManifestError(
                    f"plate {plate!r}: file names carry absolute timestamps, so time_zero must be "
                    f"an ISO date-time (e.g. 2019-08-30T12:00), not {tz}"
                )
            else:
                zero = pd.Timestamp(tz)
            out[df.index.get_indexer(idx)] = (
                (stamps - zero).dt.total_seconds() / 3600.0
            ).to_numpy()
        else:
            raise ManifestError(
                f"plate {plate!r} mixes elapsed-time and absolute-timestamp file names"
            )
    return np.round(out, 6)


def _join_platemap(df: pd.DataFrame, pm: pd.DataFrame) -> pd.DataFrame:
    pm = pm.drop(columns=["time_zero"], errors="ignore")
    key = ["plate", "well"] + (["cell_line"] if "cell_line" in pm.columns else [])
    if (pm["plate"] == "").all():
        if pm["well"].duplicated().any() and "cell_line" not in pm.columns:
            raise PlateMapError("plate map without plates lists a well twice")
        pm = pm.drop(columns="plate")
        key = [k for k in key if k != "plate"]
    # Columns the images already define (e.g. a plate map's own row/column) come from the images.
    pm = pm.drop(columns=[c for c in pm.columns if c in df.columns and c not in key])
    merged = df.merge(pm, on=key, how="left", validate="many_to_one", indicator=True)
    lost = merged["_merge"] == "left_only"
    if lost.any():
        known_plates = set(pm["plate"]) if "plate" in pm.columns else set()
        reasons = []
        for r in merged[lost].itertuples():
            if "plate" in key and r.plate not in known_plates:
                why = (
                    f"plate {r.plate!r} is not in the plate map "
                    f"(plates there: {sorted(known_plates)[:8]})"
                )
            else:
                why = f"no plate-map row for plate {r.plate!r} well {r.well}"
            reasons.append(f"{r.image_path}: {why}")
        raise PlateMapError(
            f"{int(lost.sum())} images do not join the plate map "
            "(wells are matched exactly, A1 == A01):" + _listing(reasons)
        )
    return merged.drop(columns="_merge")


def skipped_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The files :func:`build_manifest` left out (``on_error="skip"``): columns ``path, reason``."""
    return pd.DataFrame(
        manifest.attrs.get("skipped") or {"path": [], "reason": []}, columns=["path", "reason"]
    )


def validate_manifest(df: pd.DataFrame, *, source: str = "manifest") -> pd.DataFrame:
    """Check a manifest's columns and values; returns it unchanged or raises ManifestError."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{source}: missing column(s) {missing}")
    if df.empty:
        raise ManifestError(f"{source}: the manifest has no rows")
    if df["image_path"].duplicated().any():
        dup = df.loc[df["image_path"].duplicated(), "image_path"].tolist()
        raise ManifestError(f"{source}: image listed more than once:" + _listing(dup))
    bad_roles = sorted(set(df["role"].astype(str)) - set(ROLES))
    if bad_roles:
        raise ManifestError(f"{source}: unknown role(s) {bad_roles}; use one of {list(ROLES)}")
    if df["time_h"].isna().any():
        i = int(np.flatnonzero(df["time_h"].isna().to_numpy())[0])
        raise ManifestError(f"{source}, row {i}: time_h is missing ({df['image_path'].iat[i]})")
    return df


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise ManifestError(f"{path}: cannot read as Parquet ({exc})") from exc
    return validate_manifest(df, source=str(path))


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate ``df`` and write it atomically as Parquet."""
    validate_manifest(df)
    out = df.copy()
    out.attrs = {}
    return write_parquet(out, path, kind="manifest")


def summarize_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """Per plate: cell line, wells, fields, tiles, time points, images and time range."""
    g = df.groupby(["cell_line", "plate"])
    return pd.DataFrame(
        {
            "wells": g["well"].nunique(),
            "fields": g["field"].nunique(),
            "tiles": g["tile"].nunique(),
            "time_points": g["time_h"].nunique(),
            "images": g.size(),
            "first_h": g["time_h"].min(),
            "last_h": g["time_h"].max(),
        }
    ).reset_index()


def iter_groups(
    df: pd.DataFrame, keys: Iterable[str]
) -> Iterable[tuple[tuple[object, ...], pd.DataFrame]]:
    """Groups of ``df`` by ``keys`` in sorted order (a tuple key even for one column)."""
    for key, sub in df.groupby(list(keys), sort=True):
        yield (key if isinstance(key, tuple) else (key,)), sub
