"""Held-out drug classification on the ``small`` simulated screen (slow; about 10 minutes on a CPU).

Every drug of the simulator draws a known morphological signature, so the frozen extractor's
features must classify held-out wells well above chance; against classical intensity/texture
features of the same images, splits and head they are on par on top-3. Settings as in
``benchmarks/lens_small_screen.py``: 128-px tiles resized to 64 px (the 2x downscale the
published weights were trained at; at 4x the cells are about 6 px and their signatures vanish),
pooled features, a well-fitted head (200 epochs) for both feature sets. The lens's effect is
measured over three seeds against the plain head and the head on the autoencoder's
reconstructions (its starting point), and recorded whatever its sign.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_screen_lens(tmp_path: Path, shared_data: Path) -> None:
    import torch

    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.lens import LensConfig, run_lens

    torch.set_num_threads(2)
    screen = simulate_screen(tmp_path / "small", preset="small", seed=0, progress=False)
    manifest = build_manifest(screen.images_dir, platemap=screen.platemap_path, progress=False)
    config = LensConfig.model_validate(
        {
            "preprocess": {"crop_size": 128, "image_size": 64, "mode": "tile"},
            "feature_mode": "pooled",
            "last_n_timepoints": 8,
            "coefs": [1.0],
            "seeds": [0, 1, 2],
            "epochs": 1,
            "head_epochs": 200,
            "max_train_images": 500,
            "importance_examples": 3,
            "ig_steps": 8,
            "progress": False,
        }
    )
    result = run_lens(
        manifest,
        weights=shared_data / "pheno-ml" / "trained_model.torch",
        out=tmp_path / "lens",
        config=config,
    )
    pooled = result.results[result.results["cell_line"] == "pooled"]
    chance3 = result.summary["chance_top3"]
    assert pooled["top3_plain"].mean() > chance3 + 0.2
    means = pooled.mean(numeric_only=True)
    # Measured (3 seeds): top-3 plain 0.884, classical 0.881, reconstruction 0.854, lens 0.818;
    # top-1 plain 0.562, classical 0.606. Pooled ConvAE features match classical ones on top-3
    # (not clearly above), and the lens costs accuracy: it starts from a lossy reconstruction.
    assert abs(means["top3_plain"] - means["top3_classical"]) < 0.04
    assert means["top3_reconstruction"] < means["top3_plain"]
    assert means["top3_lens"] < means["top3_plain"]
    assert len(result.tests) == 2 and result.tests["n_pairs"].min() >= 3
