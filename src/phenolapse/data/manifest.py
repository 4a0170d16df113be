"""The screen manifest: one row per image, joined with the plate map.

See ``docs/formats.md`` for every column. :func:`build_manifest` walks an image folder, parses the
file names (:mod:`phenolapse.data.names`), and joins the plate map exactly on (plate, well); an
image that joins no plate-map row stops the run with a list of the files and the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.artefacts import (
    MANIFEST_COLUMNS,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from phenolapse.artefacts import listing as _listing
from phenolapse.data.imageio import IMAGE_SUFFIXES, ImageHeader, read_header, read_raw
from phenolapse.data.names import ParsedName, compile_pattern, parse_name
from phenolapse.data.platemap import case_conflicts, read_platemap, validate_platemap
from phenolapse.errors import ImageReadError, ManifestError, ParseError, PlateMapError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TIME_TOLERANCE_MIN",
    "MANIFEST_COLUMNS",
    "SORT_KEY",
    "build_manifest",
    "find_images",
    "iter_groups",
    "read_manifest",
    "scan_cycles",
    "skipped_table",
    "summarize_manifest",
    "validate_manifest",
    "write_manifest",
]

SORT_KEY = ["plate", "well", "field", "tile", "time_h"]
_MAX_LISTED = 20
DEFAULT_TIME_TOLERANCE_MIN = 30.0
"""Largest gap (minutes) between images of one scan cycle, unless half the scan interval is less."""


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
    time_tolerance_min: float | None = None,
    require_names: bool = True,
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
    time_tolerance_min
        Images of one plate taken within this many minutes of each other form one scan cycle
        (one time point), since an instrument images the wells one after another; None: 30 min
        or half the plate's scan interval, whichever is less; 0: every distinct time is its own
        time point. ``manifest.attrs["scan_cycles"]`` reports the grouping per plate.
    require_names
        False: files whose names are not understood still get a row (plain folders of images):
        ``well`` is the file's path under the folder without extension, ``row`` is empty,
        ``time_h`` NaN and ``cell_line`` empty.
    progress
        Show a progress bar.

    Notes
    -----
    Within a plate every image must have the frame size, bit depth and number of channels of
    the plate's other images (a grayscale picture saved as RGB counts as grayscale): intensity
    scaling and crops must not change between wells. Files that differ are refused (or skipped).
    ``manifest.attrs["warnings"]`` lists what deserves a look without stopping the run: plate-map
    wells without images, names that differ only by case.
    """
    root = Path(images_dir).resolve()
    if pattern:
        try:
            pattern = compile_pattern(pattern)
        except ParseError as exc:
            raise ManifestError(str(exc)) from exc
    files = find_images(root)
    skipped: list[tuple[str, str]] = []
    rows: list[tuple[Path, ParsedName | None, ImageHeader]] = []
    errors: list[str] = []
    for path in tqdm(files, desc="parsing names", unit="file", disable=not progress, leave=False):
        try:
            if path.stat().st_size == 0:
                raise ImageReadError(f"{path}: empty (0-byte) image file")
            parsed: ParsedName | None
            try:
                parsed = parse_name(path, pattern)
            except ParseError:
                if require_names:
                    raise
                parsed = None
            if verify_images:
                read_raw(path)
            header = read_header(path)  # header only: catches non-images cheaply
        except (ParseError, ImageReadError) as exc:
            errors.append(str(exc))
            skipped.append((str(path), str(exc)))
            continue
        except (OSError, SyntaxError, ValueError) as exc:
            msg = f"{path}: not a readable image ({exc})"
            errors.append(msg)
            skipped.append((str(path), msg))
            continue
        rows.append((path, parsed, header))
    rows, odd = _consistent_plates(root, rows)
    errors += [msg for _, msg in odd]
    skipped += odd
    if errors and on_error == "raise":
        raise ManifestError(
            f"{len(errors)} of {len(files)} files under {root} cannot be used "
            "(--skip-bad, or screen.skip_bad: true in a run configuration, leaves them out):"
            + _listing(errors)
        )
    if not rows:
        raise ManifestError(f"{root}: none of the {len(files)} image files could be used")

    records = []
    unnamed = 0
    for path, p, _ in rows:
        rel = path.relative_to(root)
        if p is None:
            unnamed += 1
            records.append(_unparsed_record(path, rel))
            continue
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
    warnings: list[str] = []
    if unnamed:
        warnings.append(
            f"{unnamed} of {len(df)} file names are not understood; each of those files is one "
            "row of its own (well = its path under the folder, no plate, well or time metadata)"
        )
    named = df["row"] != ""
    df["time_h"] = np.nan
    cycles = pd.DataFrame(columns=list(_CYCLE_COLUMNS))
    if named.any():
        times, cycles = _times(df[named], pm, time_zero, tolerance_min=time_tolerance_min)
        df.loc[named, "time_h"] = times
    df = df.drop(columns=["_elapsed", "_stamp"])

    if pm is None:
        df["drug"] = ""
        df["concentration_um"] = np.nan
        df["role"] = "unknown"
    else:
        df = _join_platemap(df, pm)
        warnings += case_conflicts(pm) + _wells_without_images(df, pm)

    dup = df.duplicated(["cell_line", "plate", "well", "field", "tile", "time_h"], keep=False)
    if dup.any():
        d = df[dup].sort_values(["plate", "well", "time_h"])
        raise ManifestError(
            "several files for the same plate, well, field, tile and time point (images less "
            "than --time-tolerance-min apart count as one scan cycle; lower it if these are "
            "separate scans):"
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
    inconsistent = set(odd)
    df.attrs["skipped"] = {
        "path": [p for p, _ in skipped],
        "reason": [r for _, r in skipped],
        "kind": [
            "inconsistent image" if (p, r) in inconsistent else "unusable file" for p, r in skipped
        ],
    }
    df.attrs["warnings"] = warnings
    df.attrs["scan_cycles"] = {c: cycles[c].tolist() for c in _CYCLE_COLUMNS}
    return df


_CYCLE_COLUMNS = ("plate", "images", "distinct_times", "time_points", "max_span_min",
                  "tolerance_min")  # fmt: skip


def _unparsed_record(path: Path, rel: Path) -> dict[str, object]:
    """Manifest fields of a file whose name carries no metadata: one row of its own."""
    return {
        "image_path": str(path),
        "cell_line": "",
        "plate": rel.parent.as_posix() if len(rel.parts) > 1 else "",
        "well": rel.with_suffix("").as_posix(),
        "row": "",
        "column": 0,
        "field": 1,
        "tile": 1,
        "_elapsed": None,
        "_stamp": None,
    }


def _consistent_plates(
    root: Path, rows: list[tuple[Path, ParsedName | None, ImageHeader]]
) -> tuple[list[tuple[Path, ParsedName | None, ImageHeader]], list[tuple[str, str]]]:
    """Keep the images that match the screen's channel count and their plate's frame size and
    bit depth; returns the kept rows and ``(path, message)`` for the others.

    The most common kind is the reference. A colour file whose three channels are equal counts
    as grayscale (it reads as one channel). Files whose names are not understood (plain folders)
    need only the screen's channel count, since every image goes through one model.
    """
    if len({h.channels for _, _, h in rows}) > 1:
        rows = [
            (path, p, dataclasses.replace(h, channels=1) if _reads_gray(path, h) else h)
            for path, p, h in rows
        ]
    screen = {i: "the screen" for i in range(len(rows))}
    keep, messages = _odd_ones_out(rows, screen, lambda h: (h.channels,))
    plates = {}
    for i in keep:
        path, p, _ = rows[i]
        if p is not None:
            rel = path.relative_to(root)
            plate = p.plate or (rel.parts[0] if len(rel.parts) > 1 else p.cell_line)
            plates[i] = f"plate {plate!r}"
    kept, more = _odd_ones_out(rows, plates, lambda h: (h.width, h.height, h.bits))
    keep = kept + [i for i in keep if i not in plates]
    messages += more
    return [rows[i] for i in sorted(keep)], messages


def _reads_gray(path: Path, header: ImageHeader) -> bool:
    """Whether a 3-channel file holds a grayscale picture (three equal channels)."""
    if header.channels != 3:
        return False
    try:
        return read_raw(path).ndim == 2
    except ImageReadError:
        return False


def _odd_ones_out(
    rows: list[tuple[Path, ParsedName | None, ImageHeader]],
    groups: dict[int, str],
    kind: Callable[[ImageHeader], tuple[object, ...]],
) -> tuple[list[int], list[tuple[str, str]]]:
    """Rows (of those in ``groups``) whose ``kind`` is the most common of their group, and a
    message for each of the others."""
    members: dict[str, list[int]] = {}
    for i, group in groups.items():
        members.setdefault(group, []).append(i)
    keep: list[int] = []
    messages: list[tuple[str, str]] = []
    for where, idx in members.items():
        counts = Counter(kind(rows[i][2]) for i in idx)
        ref_kind, n_ref = counts.most_common(1)[0]
        ref = next(rows[i][2] for i in idx if kind(rows[i][2]) == ref_kind)
        for i in idx:
            path, _, h = rows[i]
            if kind(h) == ref_kind:
                keep.append(i)
                continue
            if h.channels != ref.channels:
                todo = "convert it to grayscale" if ref.channels == 1 else "save it as colour"
            elif h.bits != ref.bits:
                todo = (
                    f"save every image of a plate at one bit depth (convert it to {ref.bits}); "
                    "the intensity scaling must not change between wells"
                )
            else:
                todo = "every image of a plate must have one frame size (same objective, binning)"
            messages.append(
                (
                    str(path),
                    f"{path}: {h.describe()}, while {n_ref} other images of {where} are "
                    f"{ref.describe()}; {todo}",
                )
            )
    return keep, messages


def _wells_without_images(df: pd.DataFrame, pm: pd.DataFrame) -> list[str]:
    """Plate-map wells (of plates that have images) that no image joins."""
    imaged_plates = set(df["plate"].astype(str))
    has_plates = not (pm["plate"] == "").all()
    seen = set(zip(df["plate"].astype(str), df["well"].astype(str), strict=True))
    wells_seen = set(df["well"].astype(str))
    empty = []
    for plate, well in zip(pm["plate"].astype(str), pm["well"].astype(str), strict=True):
        if has_plates:
            if plate in imaged_plates and (plate, well) not in seen:
                empty.append(f"{plate} {well}")
        elif well not in wells_seen:
            empty.append(well)
    if not empty:
        return []
    shown = ", ".join(empty[:_MAX_LISTED]) + (" ..." if len(empty) > _MAX_LISTED else "")
    return [
        f"plate map: {len(empty)} well(s) have no images: {shown}; check the image export "
        "(or remove the rows from the plate map)"
    ]


def _times(
    df: pd.DataFrame, pm: pd.DataFrame | None, time_zero: object, *, tolerance_min: float | None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Hours since drug addition per image, grouped into scan cycles per plate.

    Returns the times (in the order of ``df``) and one row per plate describing the grouping.
    """
    if tolerance_min is not None and not tolerance_min >= 0:
        raise ManifestError(f"--time-tolerance-min must be 0 or more minutes, got {tolerance_min}")
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
    pm_plates = set() if pm is None else set(pm["plate"].astype(str))
    out = np.empty(len(df), dtype=float)
    report = []
    for plate, idx in df.groupby("plate").groups.items():
        sub = df.loc[idx]
        if str(plate) in per_plate or "" in per_plate:
            tz = per_plate.get(str(plate), per_plate.get(""))
        elif per_plate and default is None and str(plate) in pm_plates:
            raise PlateMapError(
                f"plate map: plate {plate!r} has no time_zero while plate(s) "
                f"{sorted(per_plate)[:8]} have one; fill in time_zero for plate {plate!r} "
                "(or give --time-zero for the plates without one)"
            )
        else:
            tz = default
        elapsed = sub["_elapsed"].notna()
        if elapsed.all():
            if isinstance(tz, dt.datetime):
                raise ManifestError(
                    f"plate {plate!r}: file names carry elapsed times, so time_zero must be a "
                    f"number of hours, not the date-time {tz.isoformat()}"
                )
            hours = np.asarray(sub["_elapsed"].to_numpy(float) - (tz or 0.0), dtype=float)
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
            hours = ((stamps - zero).dt.total_seconds() / 3600.0).to_numpy(float)
        else:
            raise ManifestError(
                f"plate {plate!r} mixes elapsed-time and absolute-timestamp file names"
            )
        keys = list(zip(sub["cell_line"], sub["well"], sub["field"], sub["tile"], strict=True))
        tol = _tolerance_min(hours, keys) if tolerance_min is None else float(tolerance_min)
        cycles, span = scan_cycles(hours, keys, tolerance_h=tol / 60.0)
        out[df.index.get_indexer(idx)] = cycles
        report.append(
            (str(plate), len(sub), len(np.unique(np.round(hours, 6))), len(np.unique(cycles)),
             round(span * 60.0, 1), round(tol, 1))
        )  # fmt: skip
    return np.round(out, 6), pd.DataFrame(report, columns=list(_CYCLE_COLUMNS))


def _tolerance_min(hours: np.ndarray, keys: Sequence[Hashable]) -> float:
    """Default scan-cycle tolerance: 30 min, or half the median interval between a well's images."""
    per_key: dict[Hashable, list[float]] = {}
    for t, k in zip(hours.tolist(), keys, strict=True):
        per_key.setdefault(k, []).append(t)
    gaps = [d for ts in per_key.values() for d in np.diff(np.unique(ts)).tolist()]
    if not gaps:
        return DEFAULT_TIME_TOLERANCE_MIN
    return min(DEFAULT_TIME_TOLERANCE_MIN, float(np.median(gaps)) * 60.0 / 2.0)


def scan_cycles(
    hours: np.ndarray, keys: Sequence[Hashable], *, tolerance_h: float
) -> tuple[np.ndarray, float]:
    """Group image times of one plate into scan cycles; each image gets its cycle's start time.

    Walking the images in time order, a new cycle starts after a gap longer than
    ``tolerance_h``, or when an image slot (``keys``: well, field, tile) seen in the current cycle
    comes back more than ``tolerance_h`` later (the next scan of a plate scanned almost without a
    pause). Returns the cycle times and the longest span of one cycle (hours).
    """
    hours = np.asarray(hours, dtype=float)
    out = np.empty_like(hours)
    start = last = -np.inf
    seen: dict[Hashable, float] = {}
    span = 0.0
    for i in np.argsort(hours, kind="stable"):
        t, k = float(hours[i]), keys[i]
        if t - last > tolerance_h or (k in seen and t - seen[k] > tolerance_h):
            start, seen = t, {}
        seen.setdefault(k, t)
        last = t
        out[i] = start
        span = max(span, t - start)
    return out, span


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
