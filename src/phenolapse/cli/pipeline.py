"""``phenolapse run``, ``phenolapse config init`` and ``phenolapse demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from phenolapse.cli._common import fail, fail_os, reported_errors
from phenolapse.errors import PhenolapseError

Stage = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Recompute from this stage on: simulate, ingest, train, embed, temporal, lens, "
        "compare, report.",
    ),
]
AutoProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars (default: only when stderr is a terminal; otherwise one line per "
        "stage step).",
    ),
]

config_app = typer.Typer(help="Write or check a run configuration.", no_args_is_help=True)


def _summary(reports: list, out: Path, seconds: float) -> None:  # type: ignore[type-arg]
    for r in reports:
        if r.status != "skipped":
            typer.echo(f"  {r.name:<9} {r.status:<7} {r.seconds:7.1f} s")
    typer.echo(f"finished in {seconds:.0f} s; outputs in {out}")
    report = out / "report.html"
    if report.is_file():
        typer.secho(f"report: {report}", fg=typer.colors.GREEN)


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app``."""

    @app.command()
    def run(
        config: Annotated[
            Path, typer.Argument(help="YAML configuration (phenolapse config init).")
        ],
        start: Stage = None,
        until: Annotated[
            str | None,
            typer.Option("--until", help="Stop after this stage (same names as --from)."),
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Override output_dir.")] = None,
        progress: AutoProgress = None,
    ) -> None:
        """Run the whole analysis; unchanged stages are reused from earlier runs.

        A stage whose inputs changed is computed again and replaces its own earlier results;
        --from recomputes a stage and every later one from scratch.
        """
        from phenolapse.pipeline.config import load_pipeline_config
        from phenolapse.pipeline.stages import run_pipeline

        t0 = time.perf_counter()
        try:
            cfg = load_pipeline_config(
                config, **({"output_dir": str(out.resolve())} if out else {})
            )
        except PhenolapseError as exc:
            fail(str(exc))
        try:
            reports = run_pipeline(
                cfg, start=start, until=until, echo=typer.echo, progress=progress
            )
        except PhenolapseError as exc:
            fail(str(exc))
        except OSError as exc:
            fail_os(exc, Path(cfg.output_dir))
        _summary(reports, Path(cfg.output_dir).resolve(), time.perf_counter() - t0)

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
            "phenolapse_demo"
        ),
        seed: Annotated[
            int, typer.Option(help="Seed of the simulated screen and of training.")
        ] = 0,
        start: Stage = None,
        progress: AutoProgress = None,
    ) -> None:
        """Simulate a tiny screen and run every stage on it; prints where the report is.

        Runs on the base install: parts that need an optional extra are left out, with a note.
        """
        from phenolapse.pipeline.demo import demo_config, without_missing_extras
        from phenolapse.pipeline.stages import run_pipeline

        t0 = time.perf_counter()
        with reported_errors(out):
            cfg, notes = without_missing_extras(demo_config(out.resolve(), seed=seed))
            for note in notes:
                typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
            reports = run_pipeline(cfg, start=start, echo=typer.echo, progress=progress)
        _summary(reports, out.resolve(), time.perf_counter() - t0)

    @config_app.command("init")
    def config_init(
        path: Annotated[
            Path, typer.Argument(help="Where to write the commented default configuration.")
        ] = Path("phenolapse.yaml"),
        force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    ) -> None:
        """Write a configuration with every option, its default and its meaning."""
        from phenolapse.pipeline.config import write_default_config

        if path.exists() and not force:
            fail(f"{path} exists; use --force to overwrite it")
        try:
            write_default_config(path)
        except OSError as exc:
            fail_os(exc, path)
        typer.echo(
            f"wrote {path}; edit screen.images_dir and screen.platemap, then: phenolapse run {path}"
        )

    @config_app.command("check")
    def config_check(config: Annotated[Path, typer.Argument(help="YAML configuration.")]) -> None:
        """Validate a configuration without running anything.

        Checks what ``run`` checks before any work: keys, types, input paths, the output folder
        and the optional dependencies the enabled options need.
        """
        from phenolapse.extras import require
        from phenolapse.pipeline.config import load_pipeline_config
        from phenolapse.pipeline.stages import check_output_dir, optional_needs

        try:
            cfg = load_pipeline_config(config)
            check_output_dir(cfg)
            require(optional_needs(cfg), remedy="or turn those options off")
        except PhenolapseError as exc:
            fail(str(exc))
        typer.echo(f"{config}: valid")

    app.add_typer(config_app, name="config")
