"""``phenolapse demo``: the whole pipeline on a tiny simulated screen, in minutes on a laptop."""

from __future__ import annotations

from pathlib import Path

from phenolapse.pipeline.config import PipelineConfig, make_pipeline_config


def demo_config(out: str | Path, *, seed: int = 0, preset: str = "tiny") -> PipelineConfig:
    """A configuration that runs every stage quickly on a simulated screen.

    To finish in minutes on two CPU cores, the model sees 64-px inputs (the reference: 128), training
    is short (3 epochs of two views per image on a sample of the images) and the lens trains briefly
    on pooled encoder activations (translation-invariant; the flattened latent needs more data), and
    the comparison pools the ConvAEs' activations the same way; the temporal analysis keeps the
    reference's defaults.
    """
    return make_pipeline_config(
        {
            "output_dir": str(out),
            "title": "phenolapse demo: a tiny simulated screen",
            "screen": {"simulate": {"preset": preset, "seed": seed}},
            "preprocess": {"crop_size": 256, "image_size": 64},
            "train": {
                "epochs": 3,
                "lr_decay_epoch": 2,
                "batch_size": 32,
                "seed": seed,
                "view_steps": "joint",
                "crops": [{"n": 1, "scale": [1.0, 1.0]}, {"n": 1, "scale": [0.5, 0.75]}],
                "max_images": 240,
            },
            "lens": {
                "seeds": [0, 1, 2],
                "epochs": 2,
                "head_epochs": 40,
                "importance_examples": 4,
                "max_train_images": 160,
                "feature_mode": "pooled",
            },
            "compare": {
                "seed": seed,
                "null_size": 200,
                "cost_images": 32,
                "convae_features": "pooled",
            },
        },
        source="demo configuration",
    )
