"""Check a screen before any heavy work: every image decodes, names parse, wells join, no gaps."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenolapse.data.imageio import read_raw
from phenolapse.data.manifest import build_manifest
from phenolapse.errors import ImageReadError, PhenolapseError

_COLUMNS = ["kind", "where", "detail"]


@dataclass
class ValidationReport:
    """Result of :func:`validate_screen`.

    ``wells`` has one row per (cell line, plate, well): images, time points, missing time points;
    ``problems`` one row per problem found (``kind, where, detail``); ``warnings`` the same for
    what deserves a look but does not stop a run; ``plates`` one row per plate: scan cycles
    (how images taken minutes apart were grouped into time points), bit depth and intensity range.
    """

    wells: pd.DataFrame
    problems: pd.DataFrame
    n_images: int
    shapes: dict[str, int] = field(default_factory=dict)
    warnings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_COLUMNS))
    plates: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problems.empty


_DIM_FACTOR = 8.0
"""An image whose brightest value is this many times below its plate's typical one is flagged."""


def _hours(times: list[float]) -> str:
    """The first ten of ``times``, comma-separated, for a problem's detail."""
    return ", ".join(f"{t:g}" for t in times[:10])


def validate_screen(
    images_dir: str | Path,
    *,
    platemap: str | Path | None = None,
    time_zero: str | None = None,
    pattern: str | re.Pattern[str] | None = None,
    time_tolerance_min: float | None = None,
    decode: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Validate an image folder (and plate map); never raises for problems in individual files.

    Every image is decoded (unless ``decode`` is False); file names that do not parse, files that
    do not decode, images of another frame size, bit depth or channel count than the rest of their
    plate, images far dimmer than the rest of their plate, plate-map wells without images, wells
    without a plate-map row and missing time points are listed in the report.
    """
    problems: list[tuple[str, str, str]] = []
    warnings: list[tuple[str, str, str]] = []
    scan = functools.partial(
        build_manifest,
        images_dir,
        time_zero=time_zero,
        pattern=pattern,
        on_error="skip",
        time_tolerance_min=time_tolerance_min,
    )
    try:
        manifest = scan(progress=progress)
    except PhenolapseError as exc:
        return ValidationReport(
            pd.DataFrame(),
            pd.DataFrame([("screen", str(images_dir), str(exc))], columns=_COLUMNS),
            0,
        )
    skipped = manifest.attrs.get("skipped") or {}
    kinds = skipped.get("kind") or ["unusable file"] * len(skipped.get("path", []))
    for path, reason, kind in zip(
        skipped.get("path", []), skipped.get("reason", []), kinds, strict=True
    ):
        problems.append((kind, path, reason.removeprefix(f"{path}: ")))
    warnings += [("file names", str(images_dir), w) for w in manifest.attrs.get("warnings", [])]

    if platemap is not None:
        try:
            joined = scan(platemap=platemap, progress=False)
        except PhenolapseError as exc:
            problems.append(("plate map", str(platemap), str(exc)))
        else:
            for w in joined.attrs.get("warnings", []):
                if "have no images" in w:
                    problems.append(("plate map", str(platemap), w))
                else:
                    warnings.append(("plate map", str(platemap), w))

    plates = pd.DataFrame(manifest.attrs.get("scan_cycles") or {})
    shapes: dict[str, int] = {}
    if decode:
        manifest, intensity = _decode_all(manifest, problems, warnings, shapes, progress=progress)
        if not plates.empty and not intensity.empty:
            plates = plates.merge(intensity, on="plate", how="left")

    rows = []
    for (cell, plate), sub in manifest.groupby(["cell_line", "plate"]):
        plate_times = sorted(sub["time_h"].unique())
        per_time = sub.groupby(["well", "time_h"]).size()
        expected = int(sub.groupby(["well"])["field"].nunique().max() * sub["tile"].nunique())
        for well, wsub in sub.groupby("well"):
            times = set(wsub["time_h"])
            missing = [t for t in plate_times if t not in times]
            short = [t for t in sorted(times) if per_time[(well, t)] < expected]
            rows.append(
                {
                    "cell_line": cell,
                    "plate": plate,
                    "well": well,
                    "images": len(wsub),
                    "time_points": len(times),
                    "missing_time_points": len(missing),
                    "incomplete_time_points": len(short),
                }
            )
            where = f"{plate!s} {well!s}"
            if missing:
                detail = f"{len(missing)} of {len(plate_times)}: {_hours(missing)} h"
                problems.append(("missing time points", where, detail))
            if short:
                detail = f"fewer than {expected} fields x tiles at {_hours(short)} h"
                problems.append(("missing images", where, detail))
    return ValidationReport(
        pd.DataFrame(rows),
        pd.DataFrame(problems, columns=_COLUMNS),
        len(manifest),
        shapes,
        pd.DataFrame(warnings, columns=_COLUMNS),
        plates,
    )


def _decode_all(
    manifest: pd.DataFrame,
    problems: list[tuple[str, str, str]],
    warnings: list[tuple[str, str, str]],
    shapes: dict[str, int],
    *,
    progress: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every image; check shape, bit depth and brightness per plate.

    Returns the manifest with a ``signature`` column and one row per plate: bit depth and the
    range of values (``min_value``, ``max_value``).
    """
    sig: list[str | None] = []
    low: list[float] = []
    high: list[float] = []
    for path in tqdm(
        manifest["image_path"], desc="decoding", unit="img", disable=not progress, leave=False
    ):
        try:
            arr = read_raw(path)
        except ImageReadError as exc:
            problems.append(("unreadable image", path, str(exc)))
            sig.append(None)
            low.append(np.nan)
            high.append(np.nan)
            continue
        s = f"{arr.shape} {arr.dtype}"
        sig.append(s)
        low.append(float(arr.min()))
        high.append(float(arr.max()))
        shapes[s] = shapes.get(s, 0) + 1
    manifest = manifest.assign(
        signature=pd.Series(sig, index=manifest.index, dtype=object),
        value_low=np.asarray(low, dtype=float),
        value_high=np.asarray(high, dtype=float),
    )
    rows = []
    for plate, sub in manifest.dropna(subset=["signature"]).groupby("plate"):
        kinds = sub["signature"].value_counts()
        if len(kinds) > 1:
            for r in sub[sub["signature"] != kinds.index[0]].itertuples():
                problems.append(
                    (
                        "inconsistent image",
                        str(r.image_path),
                        f"plate {plate} well {r.well}: {r.signature} while {kinds.iloc[0]} "
                        f"other images of the plate are {kinds.index[0]}; every image of a plate "
                        "needs one frame size, bit depth and channel count",
                    )
                )
        typical = float(np.median(sub["value_high"]))
        dim = sub[sub["value_high"] * _DIM_FACTOR < typical]
        for r in dim.itertuples():
            problems.append(
                (
                    "intensity range",
                    str(r.image_path),
                    f"plate {plate} well {r.well}: values reach only {r.value_high:g} while the "
                    f"plate's images typically reach {typical:g}; saved with another bit depth "
                    "or scaling? Re-export it like the others",
                )
            )
        dtypes = sorted({str(x).rsplit(" ", 1)[-1] for x in sub["signature"]})
        if dtypes == ["uint16"] and float(sub["value_high"].max()) <= 255:
            warnings.append(
                (
                    "intensity range",
                    f"plate {plate}",
                    "16-bit images whose values stay within 0..255 (8-bit data saved as 16-bit?): "
                    "divided by 65535 they come out nearly black; set preprocess intensity to "
                    "plate_percentiles, or save them as 8-bit",
                )
            )
        rows.append(
            {
                "plate": str(plate),
                "pixel_type": ", ".join(dtypes),
                "min_value": float(sub["value_low"].min()),
                "max_value": float(sub["value_high"].max()),
            }
        )
    manifest = manifest.drop(columns=["value_low", "value_high"])
    return manifest, pd.DataFrame(rows)
