"""The HTML report of ``phenolapse growth``: effect calls, potency over time, curves, methods."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from phenolapse.report.html import Figure, Section, Table, Text, write_html

if TYPE_CHECKING:
    from phenolapse.temporal.growth_run import GrowthAnalysisConfig, GrowthResult

METHODS = (
    "GR values after Hafner et al. 2016: GR = 2^(log2(x/x0) / log2(xctrl/x0)) - 1 (1: growth like "
    "the control, 0: no growth, below 0: cell mass falls). GR metrics per time point from the "
    "sigmoid GR(c) = GRinf + (1 - GRinf) / (1 + (c/GEC50)^h), kept when an F-test against a flat "
    "line gives p <= {pcutoff}; GRmax is the lowest GR at the two highest concentrations; GR_AOC "
    "the area over the observed curve on a log10 concentration scale. EC50 / IC50 of the readout "
    "relative to the control at each time point from a four-parameter log-logistic fit with 95 % "
    "intervals. With a dead-cell readout, GR_static and GR_toxic after Schwartz et al. 2020 and "
    "the rule that a cytotoxic call needs dead cells (dead readout at least {fold}x the control's "
    "and rising at least {gain}x more than the control's since time zero). Time stamps within "
    "{tol} h of each other are one scan cycle."
)


def _figure_blocks(figures: Sequence[Path], prefix: str) -> list[Figure | Table | Text]:
    return [
        Figure(p, p.stem.replace("_", " ")) for p in sorted(figures) if p.name.startswith(prefix)
    ]


def write_growth_report(
    result: GrowthResult,
    out: Path,
    *,
    figures: Sequence[Path] = (),
    inputs: Sequence[str | Path] = (),
    config: GrowthAnalysisConfig | None = None,
) -> Path:
    """Write ``out/report.html`` (every user string escaped by the HTML helpers)."""
    from phenolapse.temporal.growth_run import GrowthAnalysisConfig

    cfg = config or GrowthAnalysisConfig()
    sections: list[Section] = []
    grouping = ["cell_line", "plate", *result.keys] if result.kind == "time_course" else result.keys
    overview: list[Figure | Table | Text] = [
        Text(f"Inputs: {', '.join(str(Path(p).name) for p in inputs) or 'in memory'}."),
        Text(
            f"Readout: {result.metric}; dead-cell readout: {result.dead_metric or 'none'}; "
            f"grouping: {', '.join(grouping)}."
        ),
    ]
    if result.kind == "time_course" and not result.gr.empty:
        n_drugs = result.gr["drug"].nunique()
        times = result.gr["time_h"]
        overview.append(
            Text(
                f"{n_drugs} drug(s), {result.gr['concentration_um'].nunique()} concentration(s), "
                f"{times.nunique()} time points from {times.min():g} to {times.max():g} h."
            )
        )
    sections.append(Section("Overview", overview))
    if not result.annotations.empty:
        ann = result.annotations
        counts = ann["effect"].value_counts().rename_axis("effect").reset_index(name="conditions")
        cols = [
            c
            for c in (
                "cell_line",
                "drug",
                "concentration_um",
                "effect",
                "growth_effect",
                "gr_end",
                "gr_late",
                "onset_h",
                "dead_fold",
                "gr_toxic_end",
                "death_rule",
            )
            if c in ann.columns
        ]
        sections.append(
            Section(
                "Effect calls from growth",
                [
                    Table(counts, "Conditions per effect"),
                    Table(ann[cols], "Effect per drug and concentration", max_rows=200),
                    Text(
                        "Rules: see the documentation of the growth analysis (growth rules 1-6 "
                        "and, with a dead-cell readout, D1-D6).",
                        "note",
                    ),
                ],
            )
        )
    pot = _figure_blocks(figures, "potency_")
    metrics = result.metrics
    if not metrics.empty:
        shown = metrics
        if "time_h" in metrics.columns and result.kind == "time_course":
            last = metrics.groupby(
                [c for c in metrics.columns if c in ("cell_line", "plate", "drug")]
            )["time_h"].transform("max")
            shown = metrics[metrics["time_h"] == last]
        pot.append(Table(shown, "GR metrics (at the last time point for time courses)", 80))
    sections.append(Section("Potency over time", pot or [Text("No GR metrics.", "missing")]))
    if not result.dose_response.empty:
        dr = result.dose_response
        last = dr.groupby([c for c in ("cell_line", "plate", "drug") if c in dr.columns])[
            "time_h"
        ].transform("max")
        fits = ("ec50_um", "ec50_low", "ec50_high", "ic50_um", "ic50_low", "ic50_high", "hill")
        cols = [c for c in ("cell_line", "drug", "time_h", *fits, "r2") if c in dr.columns]
        blocks = _figure_blocks(figures, "dose_response_")
        blocks.append(
            Table(dr.loc[dr["time_h"] == last, cols], "EC50 / IC50 at the last time point")
        )
        sections.append(Section("Dose-response curves", blocks))
    curves = _figure_blocks(figures, "growth_")
    if curves:
        sections.append(Section("Growth curves", curves))
    sections.append(
        Section(
            "Methods",
            [
                Text(
                    METHODS.format(
                        pcutoff=cfg.pcutoff,
                        fold=cfg.dead_fold_min,
                        gain=cfg.dead_gain_min,
                        tol=cfg.tolerance_h,
                    )
                )
            ],
        )
    )
    path = Path(out) / "report.html"
    title = "phenolapse growth report"
    subtitle = ", ".join(
        sorted({str(v) for v in result.gr.get("cell_line", pd.Series([], dtype=str))})
    )
    return write_html(sections, path, title=title, subtitle=subtitle)
