"""Synthetic profile tables with known structure for the comparison tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """One BLAS/torch thread: small matrices, and no spinning threads on a shared machine."""
    import torch
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


def synthetic_profiles(
    *,
    n_cell_lines: int = 1,
    n_drugs: int = 4,
    n_reps: int = 3,
    n_controls: int = 4,
    n_times: int = 3,
    n_features: int = 16,
    signal: float = 5.0,
    noise: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Profiles in the docs/formats.md layout: each drug shifts a random direction by ``signal``."""
    rng = np.random.default_rng(seed)
    rows = []
    feats = []
    for c in range(n_cell_lines):
        plate = f"P{c + 1}"
        centers = rng.normal(size=(n_drugs, n_features)) * signal
        wells: list[tuple[str, str, float, str, np.ndarray]] = []
        for d in range(n_drugs):
            for conc in (0.1, 10.0):
                for _ in range(n_reps):
                    shift = centers[d] if conc == 10.0 else centers[d] * 0.1
                    wells.append((f"drug{d}", "treatment", conc, "", shift))
        for _ in range(n_controls):
            wells.append(("DMSO", "negative_control", 0.1, "", np.zeros(n_features)))
        for w, (drug, role, conc, _, shift) in enumerate(wells):
            row_letter = "ABCDEFGHIJKLMNOP"[w // 24]
            well = f"{row_letter}{w % 24 + 1}"
            for t in range(n_times):
                rows.append(
                    {
                        "Metadata_cell_line": f"CL{c}",
                        "Metadata_plate": plate,
                        "Metadata_well": well,
                        "Metadata_row": row_letter,
                        "Metadata_column": w % 24 + 1,
                        "Metadata_time_h": 12.0 * (t + 1),
                        "Metadata_drug": drug,
                        "Metadata_concentration_um": conc,
                        "Metadata_role": role,
                        "Metadata_n_images": 1,
                    }
                )
                feats.append(shift + rng.normal(size=n_features) * noise)
    df = pd.DataFrame(rows)
    f = pd.DataFrame(np.array(feats), columns=[f"feat_{i:04d}" for i in range(n_features)])
    return pd.concat([df, f], axis=1)


@pytest.fixture()
def make_profiles() -> Callable[..., pd.DataFrame]:
    """Factory of :func:`synthetic_profiles` tables."""
    return synthetic_profiles
