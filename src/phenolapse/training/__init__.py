"""Self-supervised training of the ConvAE feature extractor (multi-crop reconstruction)."""

from phenolapse.training.config import CropSpec, TrainConfig, make_config, reference_crops
from phenolapse.training.dataset import FrameStore, MultiCropDataset, split_by_well
from phenolapse.training.loop import TrainResult, evaluate, list_checkpoints, train, train_step
from phenolapse.training.transforms import MultiCropTransform

__all__ = [
    "CropSpec",
    "FrameStore",
    "MultiCropDataset",
    "MultiCropTransform",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "list_checkpoints",
    "make_config",
    "reference_crops",
    "split_by_well",
    "train",
    "train_step",
]
