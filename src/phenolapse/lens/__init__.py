"""Drug classification from single images, and the lens that shows where a drug acts (SPEC 8).

- :func:`run_lens`: plain and lens heads on held-out wells, their accuracies, paired tests,
  importance maps and mined examples, written to a folder;
- :class:`LensConfig`: every option of it;
- building blocks: :func:`select_classification_images`, :func:`well_split_mask`,
  :func:`importance_map`, :func:`integrated_gradients`, :func:`mine_examples`,
  :func:`per_class_accuracy`, :func:`confusion_matrix`, :func:`paired_test`.

Names are imported on first use, so ``import phenolapse.lens`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phenolapse._lazy import lazy_modules

if TYPE_CHECKING:
    from phenolapse.lens.config import LensConfig
    from phenolapse.lens.data import LensDataError, select_classification_images, well_split_mask
    from phenolapse.lens.importance import (
        MINING_RULES,
        importance_map,
        integrated_gradients,
        mine_examples,
    )
    from phenolapse.lens.metrics import confusion_matrix, paired_test, per_class_accuracy
    from phenolapse.lens.run import LensResult, run_lens

_MODULES = {
    "phenolapse.lens.config": ("LensConfig",),
    "phenolapse.lens.data": ("LensDataError", "select_classification_images", "well_split_mask"),
    "phenolapse.lens.importance": (
        "MINING_RULES",
        "importance_map",
        "integrated_gradients",
        "mine_examples",
    ),
    "phenolapse.lens.metrics": ("confusion_matrix", "paired_test", "per_class_accuracy"),
    "phenolapse.lens.run": ("LensResult", "run_lens"),
}

__all__ = [
    "MINING_RULES",
    "LensConfig",
    "LensDataError",
    "LensResult",
    "confusion_matrix",
    "importance_map",
    "integrated_gradients",
    "mine_examples",
    "paired_test",
    "per_class_accuracy",
    "run_lens",
    "select_classification_images",
    "well_split_mask",
]


__getattr__, __dir__ = lazy_modules(__name__, _MODULES, __all__)
