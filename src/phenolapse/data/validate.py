"""Check a screen before any heavy work: every image decodes, names parse, wells join, no gaps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from phenolapse.data.imageio import read_raw
from phenolapse.data.manifest import build_manifest, skipped_table
from phenolapse.errors import ImageReadError, PhenolapseError


@dataclass
class ValidationReport:
    """Result of :func:`validate_screen`.

    ``wells`` has one row per (cell line, plate, well): images, time points, missing time points;
    ``problems`` one row per problem found (``kind, where, detail``).
    """

    wells: pd.DataFrame
    problems: pd.DataFrame
    n_images: int
    shapes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problems.empty


def validate_screen(
    images_dir: str | Path,
    *,
    platemap: str | Path | None = None,
    time_zero: str | None = None,
    pattern: str | re.Pattern[str] | None = None,
    decode: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Validate an image folder (and plate map); never raises for problems in individual files.

    Every image is decoded (unless ``decode`` is False); file names that do not parse, files that
    do not decode, images of another size or depth than the rest of their well, wells without a
    plate-map row and missing time points are listed in the report.
    """
    problems: list[tuple[str, str, str]] = []
    try:
        manifest = build_manifest(
            images_dir, time_zero=time_zero, pattern=pattern, on_error="skip", progress=progress
        )
    except PhenolapseError as exc:
        return ValidationReport(
            pd.DataFrame(),
            pd.DataFrame(
                [("screen", str(images_dir), str(exc))], columns=["kind", "where", "detail"]
            ),
            0,
        )
    for path, reason in skipped_table(manifest).itertuples(index=False):
        problems.append(("unusable file", path, reason))

    if platemap is not None:
        try:
            build_manifest(
                images_dir,
                platemap=platemap,
                time_zero=time_zero,
                pattern=pattern,
                on_error="skip",
                progress=False,
            )
        except PhenolapseError as exc:
            problems.append(("plate map", str(platemap), str(exc)))

    shapes: dict[str, int] = {}
    if decode:
        sig: list[str | None] = []
        for path in tqdm(
            manifest["image_path"], desc="decoding", unit="img", disable=not progress, leave=False
        ):
            try:
                arr = read_raw(path)
                s = f"{arr.shape} {arr.dtype}"
            except ImageReadError as exc:
                problems.append(("unreadable image", path, str(exc)))
                s = None
            sig.append(s)
            if s is not None:
                shapes[s] = shapes.get(s, 0) + 1
        manifest = manifest.assign(signature=pd.Series(sig, index=manifest.index, dtype=object))
        for (plate, well), sub in manifest.dropna(subset=["signature"]).groupby(["plate", "well"]):
            kinds = sub["signature"].value_counts()
            if len(kinds) > 1:
                odd = sub[sub["signature"] != kinds.index[0]]
                for r in odd.itertuples():
                    problems.append(
                        (
                            "inconsistent image",
                            r.image_path,
                            f"plate {plate} well {well}: {r.signature} while most images are {kinds.index[0]}",
                        )
                    )

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
            if missing:
                shown = ", ".join(f"{t:g}" for t in missing[:10])
                problems.append(
                    (
                        "missing time points",
                        f"{plate!s} {well!s}",
                        f"{len(missing)} of {len(plate_times)}: {shown} h",
                    )
                )
            if short:
                shown = ", ".join(f"{t:g}" for t in short[:10])
                problems.append(
                    (
                        "missing images",
                        f"{plate!s} {well!s}",
                        f"fewer than {expected} fields x tiles at {shown} h",
                    )
                )
    return ValidationReport(
        pd.DataFrame(rows),
        pd.DataFrame(problems, columns=["kind", "where", "detail"]),
        len(manifest),
        shapes,
    )
