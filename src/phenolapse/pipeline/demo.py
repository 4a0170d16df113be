"""``phenolapse demo``: the whole pipeline on a tiny simulated screen, in minutes on a laptop."""

from __future__ import annotations

from pathlib import Path

from phenolapse.pipeline.config import PipelineConfig, make_pipeline_config


def without_missing_extras(config: PipelineConfig) -> tuple[PipelineConfig, list[str]]:
    """``config`` with the options whose optional dependencies are missing turned off.

    Returns the configuration and one note per option turned off, naming the extra that brings it
    back; on a full install, ``config`` unchanged and no notes.
    """
    from phenolapse.extras import install_hint, missing_extras
    from phenolapse.pipeline.stages import optional_needs

    notes: list[str] = []
    missing = missing_extras(optional_needs(config))
    if "lens.integrated_gradients" in missing:
        config = config.model_copy(
            update={"lens": config.lens.model_copy(update={"integrated_gradients": False})}
        )
        notes.append("lens without integrated-gradients maps (needs captum)")
    if "stages.compare" in missing:
        stages = config.stages.model_copy(update={"compare": False})
        config = config.model_copy(update={"stages": stages})
        notes.append("no extractor comparison (needs copairs)")
    elif "compare.embedding: umap" in missing:
        compare = config.compare.model_copy(update={"embedding": "pca"})
        config = config.model_copy(update={"compare": compare})
        notes.append("comparison clusters on PCA instead of UMAP (needs umap-learn)")
    if notes:
        modules = sorted({m for ms in missing.values() for m in ms})
        notes = [f"{n}; for everything: {install_hint(modules)}" for n in notes]
    return config, notes


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
