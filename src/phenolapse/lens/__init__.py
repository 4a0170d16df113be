"""Drug classification from single images, and the lens that shows where a drug acts (SPEC 8)."""

from phenolapse.lens.config import LensConfig, load_lens_config, make_lens_config
from phenolapse.lens.data import (
    LensDataError,
    check_split,
    load_images,
    select_classification_images,
    split_by_well,
)
from phenolapse.lens.importance import (
    MINING_RULES,
    importance_map,
    integrated_gradients,
    mask_overlap,
    mine_examples,
)
from phenolapse.lens.metrics import confusion_matrix, paired_test, per_class_accuracy, topk_accuracy
from phenolapse.lens.model import (
    LinearHead,
    extract_features,
    lens_losses,
    make_lens,
    predict_proba,
    train_head,
    train_lens,
)
from phenolapse.lens.run import LensResult, read_lens_source, run_lens

__all__ = [
    "MINING_RULES",
    "LensConfig",
    "LensDataError",
    "LensResult",
    "LinearHead",
    "check_split",
    "confusion_matrix",
    "extract_features",
    "importance_map",
    "integrated_gradients",
    "lens_losses",
    "load_images",
    "load_lens_config",
    "make_lens",
    "make_lens_config",
    "mask_overlap",
    "mine_examples",
    "paired_test",
    "per_class_accuracy",
    "predict_proba",
    "read_lens_source",
    "run_lens",
    "select_classification_images",
    "split_by_well",
    "topk_accuracy",
    "train_head",
    "train_lens",
]
