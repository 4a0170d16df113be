"""The comparison's robust per-plate normalisation agrees with the embedding stage's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phenolapse.comparison.selection import normalize_features
from phenolapse.embedding.normalize import normalize_profiles


def test_mad_robustize_matches_the_embedding_normalisation() -> None:
    rng = np.random.default_rng(0)
    meta = pd.DataFrame(
        {
            "Metadata_plate": ["P1"] * 10 + ["P2"] * 10,
            "Metadata_role": (["negative_control"] * 5 + ["treatment"] * 5) * 2,
        }
    )
    x = rng.normal(size=(20, 3)) * [1.0, 100.0, 0.01]
    ours = normalize_features(meta, x, method="mad_robustize")
    table = pd.concat([meta, pd.DataFrame(x, columns=["a", "b", "c"])], axis=1)
    ref = normalize_profiles(table).profiles[["a", "b", "c"]].to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(np.median(ours[:5], axis=0)) < 1e-9)
