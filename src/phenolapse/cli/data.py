"""``phenolapse ingest``: image folder + plate map -> manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from phenolapse.cli._common import Platemap, Progress, SkipBad, fail, fail_os
from phenolapse.errors import PhenolapseError

INTERRUPTED = 130
ImagesDir = Annotated[Path, typer.Argument(help="Folder of images (searched recursively).")]
TimeToleranceMin = Annotated[
    float | None,
    typer.Option(
        help="Images of a plate taken within this many minutes form one scan cycle (time point); "
        "default: 30 or half the scan interval, whichever is less; 0: every distinct time.",
        min=0,
    ),
]
TimeZero = Annotated[
    str | None,
    typer.Option(help="Drug addition: hours of elapsed imaging time, or an ISO date-time."),
]
Pattern = Annotated[
    str | None,
    typer.Option(help="Regular expression with named groups for other file names."),
]


def _interrupted(what: str) -> NoReturn:
    """Report Ctrl-C and exit 130 (the shell's code for an interrupt)."""
    typer.secho(f"interrupted: {what}", err=True, fg=typer.colors.YELLOW)
    raise typer.Exit(INTERRUPTED)


def _echo_grouping(cycles: dict[str, list[object]], *, always: bool) -> None:
    """One line per plate whose images taken minutes apart were grouped into scan cycles."""
    for plate, images, distinct, points, span, tol in zip(
        *(cycles.get(k, []) for k in (
            "plate", "images", "distinct_times", "time_points", "max_span_min", "tolerance_min"
        )),
        strict=True,
    ):  # fmt: skip
        if always or distinct != points:
            typer.echo(
                f"plate {plate}: {images} images at {distinct} distinct times -> {points} time "
                f"points (scan cycles up to {span:g} min long; tolerance {tol:g} min, "
                "--time-tolerance-min)"
            )


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""

    @app.command()
    def ingest(
        images_dir: ImagesDir,
        out: Annotated[Path, typer.Option("--out", "-o", help="Manifest Parquet file to write.")],
        platemap: Platemap = None,
        time_zero: TimeZero = None,
        pattern: Pattern = None,
        skip_bad: SkipBad = False,
        verify: Annotated[bool, typer.Option(help="Decode every image now (slow).")] = False,
        time_tolerance_min: TimeToleranceMin = None,
        progress: Progress = True,
    ) -> None:
        """Parse image file names, join the plate map, write the manifest (Parquet)."""
        from phenolapse.data.manifest import (
            build_manifest,
            skipped_table,
            summarize_manifest,
            write_manifest,
        )
        from phenolapse.io_utils import write_csv

        if out.is_dir():
            fail(f"{out} is a folder; give the manifest file, e.g. {out / 'manifest.parquet'}")
        if out.suffix.lower() not in (".parquet", ".pq"):
            fail(
                f"--out {out}: the manifest is written as Parquet, so the file name must end in "
                f".parquet (e.g. {out.with_suffix('.parquet')}); nothing was written"
            )
        try:
            df = build_manifest(
                images_dir,
                platemap=platemap,
                time_zero=time_zero,
                pattern=pattern,
                on_error="skip" if skip_bad else "raise",
                verify_images=verify,
                time_tolerance_min=time_tolerance_min,
                progress=progress,
            )
            skipped = skipped_table(df)
            write_manifest(df, out)
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, out, "the manifest")
        except KeyboardInterrupt:
            _interrupted(
                f"{out} was not written (an earlier manifest there is unchanged); "
                "rerun the same command to build it"
            )
        for warning in df.attrs.get("warnings", []):
            typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
        _echo_grouping(df.attrs.get("scan_cycles") or {}, always=False)
        typer.echo(summarize_manifest(df).to_string(index=False))
        typer.echo(f"wrote {out} ({len(df)} images)")
        report = out.with_name(out.stem + ".skipped.csv")
        report.unlink(missing_ok=True)
        if skipped is not None and len(skipped):
            write_csv(skipped, report)
            typer.secho(
                f"skipped {len(skipped)} files; see {report}", err=True, fg=typer.colors.YELLOW
            )

    @app.command()
    def validate(
        images_dir: ImagesDir,
        platemap: Platemap = None,
        time_zero: TimeZero = None,
        pattern: Pattern = None,
        time_tolerance_min: TimeToleranceMin = None,
        decode: Annotated[bool, typer.Option(help="Decode every image.")] = True,
        out: Annotated[
            Path | None, typer.Option(help="Write the problems table to this CSV.")
        ] = None,
        progress: Progress = True,
    ) -> None:
        """Check a screen before heavy work; exit code 1 when something is wrong."""
        from phenolapse.data.validate import validate_screen
        from phenolapse.io_utils import write_csv

        if out is not None and out.is_dir():
            fail(f"{out} is a folder; give the CSV file to write, e.g. {out / 'problems.csv'}")
        try:
            report = validate_screen(
                images_dir,
                platemap=platemap,
                time_zero=time_zero,
                pattern=pattern,
                time_tolerance_min=time_tolerance_min,
                decode=decode,
                progress=progress,
            )
        except PhenolapseError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            _interrupted("nothing was written; rerun the same command to check again")
        if not report.wells.empty:
            summary = report.wells.groupby(["cell_line", "plate"]).agg(
                wells=("well", "size"),
                images=("images", "sum"),
                time_points=("time_points", "max"),
                wells_missing_time_points=("missing_time_points", lambda s: int((s > 0).sum())),
            )
            typer.echo(summary.reset_index().to_string(index=False))
        for shape, n in report.shapes.items():
            typer.echo(f"{n} images of {shape}")
        plates = report.plates
        if not plates.empty:
            _echo_grouping({c: plates[c].tolist() for c in plates.columns}, always=True)
            if "pixel_type" in plates.columns:
                for r in plates.itertuples(index=False):
                    typer.echo(
                        f"plate {r.plate}: {r.pixel_type} pixels, values "
                        f"{r.min_value:g}..{r.max_value:g}"
                    )
        for r in report.warnings.itertuples(index=False):
            typer.secho(f"warning: [{r.kind}] {r.where}: {r.detail}", err=True, fg="yellow")
        if out is not None:
            try:
                write_csv(report.problems, out)
            except OSError as exc:
                fail_os(exc, out, "the problems table")
        if report.ok:
            typer.secho(f"OK: {report.n_images} images, no problems found", fg=typer.colors.GREEN)
            return
        typer.secho(f"{len(report.problems)} problem(s):", err=True, fg=typer.colors.RED)
        with_pd = report.problems.head(50)
        for r in with_pd.itertuples(index=False):
            typer.echo(f"  [{r.kind}] {r.where}: {r.detail}", err=True)
        if len(report.problems) > 50:
            typer.echo(f"  ... {len(report.problems) - 50} more", err=True)
        raise typer.Exit(1)
