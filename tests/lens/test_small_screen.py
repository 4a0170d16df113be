"""Held-out drug classification on the ``small`` simulated screen (slow; about 15 minutes on a CPU).

Every drug of the simulator with a growth or morphology effect draws a known morphological
signature, so the frozen extractor's features must classify held-out wells well above chance and
at least as well as classical intensity/texture features of the same images, splits and head.
Settings as in ``benchmarks/lens_small_screen.py``: 128-px tiles resized to 64 px (the 2x
downscale the published weights were trained at; at 4x the cells are about 6 px and their
signatures vanish), pooled features averaged over the 8 rotations and mirror images of each tile,
a well-fitted head (200 epochs) for both feature sets. The lens's effect is measured over three
seeds against the plain head and the head on the autoencoder's reconstructions (its starting
point), and recorded whatever its sign.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.slow
def test_small_screen_lens(
    tmp_path: Path, shared_data: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    import torch

    from phenolapse.data.manifest import build_manifest
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.lens import run_lens

    torch.set_num_threads(2)
    screen = simulate_screen(tmp_path / "small", preset="small", seed=0, progress=False)
    manifest = build_manifest(screen.images_dir, platemap=screen.platemap_path, progress=False)
    # one setting for the benchmark and this test: the benchmark's own
    bench = benchmark_script("lens_small_screen")
    config = bench.lens_config(seeds=[0, 1, 2], max_train_images=500, epochs=1)
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
    # Measured (3 seeds): top-3 plain 0.895, classical 0.881, reconstruction 0.878, lens 0.869;
    # top-1 plain 0.608, classical 0.606. The orientation-averaged ConvAE features are above
    # classical ones on top-3 on every seed but by little (+0.013, about 10 of 800 test tiles):
    # most of the remaining errors are control-like classes (controls and an inert drug) that
    # look alike by construction. The lens costs accuracy: it starts from a lossy reconstruction.
    assert means["top3_plain"] > means["top3_classical"]
    assert means["top1_plain"] >= means["top1_classical"] - 0.01
    assert means["top3_reconstruction"] < means["top3_plain"]
    assert means["top3_lens"] < means["top3_plain"]
    assert len(result.tests) == 2 and result.tests["n_pairs"].min() >= 3
