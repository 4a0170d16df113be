"""``phenolapse growth``: growth exports -> GR(c, t), potency over time, effect calls, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phenolapse.cli._common import (
    ConfigFile,
    Figures,
    OutDir,
    Platemap,
    config_from_options,
    reported_errors,
)


def register(app: typer.Typer) -> None:
    """Add the ``growth`` command to ``app``."""

    @app.command()
    def growth(
        inputs: Annotated[
            list[Path],
            typer.Argument(
                help="Incucyte metric exports (one per metric or plate), a long table "
                "(plate, well, time_h, metric, value) or a GR table (cell_count, "
                "cell_count__ctrl, cell_count__time0)."
            ),
        ],
        out: OutDir,
        platemap: Platemap = None,
        metric: Annotated[
            str | None, typer.Option(help="Cell-mass readout (default confluence).")
        ] = None,
        dead: Annotated[
            str | None,
            typer.Option(help="Dead-cell readout: auto (default), none or a metric name."),
        ] = None,
        at: Annotated[
            list[float] | None,
            typer.Option(help="Extra dose-response time point(s) in hours (repeatable)."),
        ] = None,
        group_by: Annotated[
            list[str] | None,
            typer.Option(help="Extra grouping column(s) of the plate map (repeatable)."),
        ] = None,
        concentration_unit: Annotated[
            str, typer.Option(help="Unit of concentrations in condition-column exports.")
        ] = "uM",
        tolerance_h: Annotated[
            float | None, typer.Option(help="Time stamps this close (h) are one scan cycle.")
        ] = None,
        cut_doublings: Annotated[
            str | None,
            typer.Option(
                help="BASELINE,DOUBLINGS,MAX: also fit when the controls have doubled DOUBLINGS "
                "times after BASELINE h (capped at the readout MAX), e.g. 24,4,80."
            ),
        ] = None,
        config: ConfigFile = None,
        figures: Figures = True,
    ) -> None:
        """GR values, GR50 / GRmax over time, EC50 / IC50 per time point, effect calls, report."""
        from phenolapse.report.growth_figures import draw_growth_figures
        from phenolapse.report.growth_report import write_growth_report
        from phenolapse.temporal.growth_run import (
            GrowthAnalysisConfig,
            analyse_growth,
            load_growth_inputs,
            write_growth,
        )

        with reported_errors(out, invalid_values=True):
            doublings = None
            if cut_doublings is not None:
                doublings = [float(v) for v in cut_doublings.split(",")]
                if len(doublings) != 3:
                    raise ValueError(
                        f"--cut-doublings {cut_doublings!r}: give BASELINE,DOUBLINGS,MAX"
                    )
            cfg = config_from_options(
                GrowthAnalysisConfig,
                config,
                metric=metric,
                dead_metric=None if dead == "none" else dead,
                times=list(at) if at else None,
                keys=list(group_by) if group_by else None,
                cut_doublings=doublings,
                tolerance_h=tolerance_h,
            )
            if dead == "none":
                cfg = cfg.model_copy(update={"dead_metric": None})
            kind, table = load_growth_inputs(
                inputs, platemap=platemap, concentration_unit=concentration_unit
            )
            result = analyse_growth(kind, table, config=cfg)
            files = write_growth(result, out, config=cfg)
            figs: list[Path] = []
            if figures:
                figs = draw_growth_figures(result, out / "figures", figure_times=cfg.figure_times)
            files += figs
            files.append(write_growth_report(result, out, figures=figs, inputs=inputs, config=cfg))
        if not result.annotations.empty:
            typer.echo(result.annotations["effect"].value_counts().to_string())
        typer.echo(f"wrote {len(files)} files to {out}")
