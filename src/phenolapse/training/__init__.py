"""Self-supervised training of the feature extractor: ConvAE reconstruction or two-view objectives."""

from phenolapse.training.config import CropSpec, TrainConfig, make_config, reference_crops
from phenolapse.training.dataset import FrameStore, MultiCropDataset, split_by_well
from phenolapse.training.loop import TrainResult, evaluate, list_checkpoints, train, train_step
from phenolapse.training.objectives import build_objective, nt_xent, vicreg
from phenolapse.training.ssl import fit_two_view
from phenolapse.training.transforms import MultiCropTransform

__all__ = [
    "CropSpec",
    "FrameStore",
    "MultiCropDataset",
    "MultiCropTransform",
    "TrainConfig",
    "TrainResult",
    "build_objective",
    "evaluate",
    "fit_two_view",
    "list_checkpoints",
    "make_config",
    "nt_xent",
    "reference_crops",
    "split_by_well",
    "train",
    "train_step",
    "vicreg",
]
