"""Shared fixtures: a tiny simulated screen, its manifest, the real data folder, benchmark scripts."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# One BLAS thread: on two shared cores, threaded BLAS oversubscribes and slows tests many-fold.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """A loader of the scripts in ``benchmarks/`` as modules, by name (``"bbbc021_moa"``)."""

    def load(name: str) -> ModuleType:
        path = REPO_ROOT / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder ``../shared/data``; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_screen(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A simulated screen of preset ``tiny`` (seed 0), written once per test session."""
    from phenolapse.data.simulator import simulate_screen

    return simulate_screen(tmp_path_factory.mktemp("tiny_screen") / "screen", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_manifest(tiny_screen) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The manifest of :func:`tiny_screen` (a fresh copy for each test)."""
    from phenolapse.data.manifest import build_manifest

    return build_manifest(
        tiny_screen.images_dir, platemap=tiny_screen.platemap_path, progress=False
    )


@pytest.fixture()
def tiny_manifest_copy(tiny_manifest: pd.DataFrame) -> pd.DataFrame:
    """A copy of the tiny manifest that a test may modify."""
    return tiny_manifest.copy()
