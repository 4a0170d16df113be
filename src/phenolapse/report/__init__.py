"""Figures and the self-contained HTML report (plotting never sits inside computation).

- :func:`write_temporal_figures`, :func:`write_lens_figures`, :func:`write_comparison_figures`,
  :func:`draw_growth_figures`: the figures of each stage's results;
- :func:`build_pipeline_report`, :func:`write_growth_report`: the HTML reports;
  :func:`render_html`, :func:`write_html`: the self-contained HTML writer under them.

Names are imported on first use, so ``import phenolapse.report`` does not import matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phenolapse._lazy import lazy_modules

if TYPE_CHECKING:
    from phenolapse.report.comparison_figures import write_comparison_figures
    from phenolapse.report.growth_figures import draw_growth_figures
    from phenolapse.report.growth_report import write_growth_report
    from phenolapse.report.html import render_html, write_html
    from phenolapse.report.lens_figures import write_lens_figures
    from phenolapse.report.pipeline_report import build_pipeline_report
    from phenolapse.report.temporal_figures import write_temporal_figures

_MODULES = {
    "phenolapse.report.html": ("write_html", "render_html"),
    "phenolapse.report.pipeline_report": ("build_pipeline_report",),
    "phenolapse.report.temporal_figures": ("write_temporal_figures",),
    "phenolapse.report.lens_figures": ("write_lens_figures",),
    "phenolapse.report.comparison_figures": ("write_comparison_figures",),
    "phenolapse.report.growth_figures": ("draw_growth_figures",),
    "phenolapse.report.growth_report": ("write_growth_report",),
}

__all__ = [
    "build_pipeline_report",
    "draw_growth_figures",
    "render_html",
    "write_comparison_figures",
    "write_growth_report",
    "write_html",
    "write_lens_figures",
    "write_temporal_figures",
]


__getattr__, __dir__ = lazy_modules(__name__, _MODULES, __all__)
