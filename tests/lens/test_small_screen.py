"""Held-out drug classification on the ``small`` simulated screen (slow; minutes on a CPU).

Every drug of the simulator draws a known morphological signature, so the frozen extractor's
features must classify held-out wells well above chance and above classical intensity/texture
features; the lens's effect is measured over three seeds and reported, whatever its sign.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_screen_lens(tmp_path: Path, shared_data: Path) -> None:
    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.lens import LensConfig, run_lens

    screen = simulate_screen(tmp_path / "small", preset="small", seed=0)
    manifest = build_manifest(screen.images_dir, platemap=screen.platemap_path, progress=False)
    config = LensConfig.model_validate(
        {
            "preprocess": {"crop_size": 256, "image_size": 64},
            "feature_mode": "pooled",
            "last_n_timepoints": 8,
            "coefs": [1.0],
            "seeds": [0, 1, 2],
            "epochs": 1,
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
    assert pooled["top3_plain"].mean() > pooled["top3_classical"].mean()
    assert len(result.tests) == 2 and result.tests["n_pairs"].min() >= 3
