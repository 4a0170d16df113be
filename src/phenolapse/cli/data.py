"""``phenolapse ingest``: image folder + plate map -> manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolapse.cli._common import fail, fail_os
from phenolapse.errors import PhenolapseError


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""

    @app.command()
    def ingest(
        images_dir: Annotated[
            Path, typer.Argument(help="Folder of images (searched recursively).")
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Manifest Parquet file to write.")],
        platemap: Annotated[
            Path | None,
            typer.Option(help="Plate-map CSV: plate, well, drug, concentration_um, role."),
        ] = None,
        time_zero: Annotated[
            str | None,
            typer.Option(help="Drug addition: hours of elapsed imaging time, or an ISO date-time."),
        ] = None,
        pattern: Annotated[
            str | None,
            typer.Option(help="Regular expression with named groups for other file names."),
        ] = None,
        skip_bad: Annotated[
            bool, typer.Option("--skip-bad", help="Leave out unusable files and list them.")
        ] = False,
        verify: Annotated[bool, typer.Option(help="Decode every image now (slow).")] = False,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Parse image file names, join the plate map, write the manifest."""
        from phenolapse.data.manifest import (
            build_manifest,
            skipped_table,
            summarize_manifest,
            write_manifest,
        )
        from phenolapse.io_utils import write_csv

        if out.is_dir():
            fail(f"{out} is a folder; give the manifest file, e.g. {out / 'manifest.parquet'}")
        try:
            df = build_manifest(
                images_dir,
                platemap=platemap,
                time_zero=time_zero,
                pattern=pattern,
                on_error="skip" if skip_bad else "raise",
                verify_images=verify,
                progress=progress,
            )
            skipped = skipped_table(df)
            write_manifest(df, out)
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, out, "the manifest")
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
        images_dir: Annotated[
            Path, typer.Argument(help="Folder of images (searched recursively).")
        ],
        platemap: Annotated[
            Path | None, typer.Option(help="Plate-map CSV to check the join.")
        ] = None,
        time_zero: Annotated[
            str | None, typer.Option(help="Drug addition time (hours or ISO).")
        ] = None,
        pattern: Annotated[str | None, typer.Option(help="Naming regular expression.")] = None,
        decode: Annotated[bool, typer.Option(help="Decode every image.")] = True,
        out: Annotated[
            Path | None, typer.Option(help="Write the problems table to this CSV.")
        ] = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
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
                decode=decode,
                progress=progress,
            )
        except PhenolapseError as exc:
            fail(str(exc))
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
