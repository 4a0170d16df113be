"""The whole analysis as one run: configuration, cached stages, demo.

- :class:`PipelineConfig`, :func:`load_pipeline_config`, :func:`make_pipeline_config`: one validated
  configuration of every stage; :func:`default_config_text`, :func:`write_default_config`: its
  commented defaults;
- :func:`run_pipeline`: run the stages, reusing those whose inputs did not change;
- :func:`demo_config`: the configuration of ``phenolapse demo``.

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phenolapse._lazy import lazy_modules

if TYPE_CHECKING:
    from phenolapse.pipeline.config import (
        PipelineConfig,
        default_config_text,
        load_pipeline_config,
        make_pipeline_config,
        write_default_config,
    )
    from phenolapse.pipeline.demo import demo_config
    from phenolapse.pipeline.stages import run_pipeline

_MODULES = {
    "phenolapse.pipeline.config": (
        "PipelineConfig",
        "load_pipeline_config",
        "make_pipeline_config",
        "default_config_text",
        "write_default_config",
    ),
    "phenolapse.pipeline.stages": ("run_pipeline",),
    "phenolapse.pipeline.demo": ("demo_config",),
}

__all__ = [
    "PipelineConfig",
    "default_config_text",
    "demo_config",
    "load_pipeline_config",
    "make_pipeline_config",
    "run_pipeline",
    "write_default_config",
]


__getattr__, __dir__ = lazy_modules(__name__, _MODULES, __all__)
