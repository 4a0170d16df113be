"""Drug clustering: cluster-quality metrics on clusterings with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from phenolapse.comparison.clustering import cluster_drugs, cluster_quality, embed_2d


def test_quality_hand_computed() -> None:
    # Two clusters on a line: {0, 1} and {10, 11}; one noise point.
    x = np.array([[0.0], [1.0], [10.0], [11.0], [50.0]])
    labels = np.array([0, 0, 1, 1, -1])
    q = cluster_quality(x, labels)
    assert q["fraction_not_noise"] == pytest.approx(0.8)
    assert q["n_clusters"] == 2
    # silhouette: a = 1 for all; b = 10.5 for the outer points (0, 11), 9.5 for the inner ones
    assert q["silhouette"] == pytest.approx(((1 - 1 / 10.5) + (1 - 1 / 9.5)) / 2)
    # Davies-Bouldin: scatter 0.5 each, centroid distance 10 -> (0.5 + 0.5) / 10
    assert q["davies_bouldin"] == pytest.approx(0.1)
    # Calinski-Harabasz: between = 4 * 5^2 = 100 (k-1 = 1), within = 4 * 0.25 = 1 (n-k = 2)
    assert q["calinski_harabasz"] == pytest.approx(100 / 1 * 2 / 1)


def test_quality_undefined_with_one_cluster() -> None:
    q = cluster_quality(np.arange(6, dtype=float)[:, None], np.array([0, 0, 0, -1, -1, -1]))
    assert q["fraction_not_noise"] == pytest.approx(0.5)
    assert math.isnan(q["silhouette"])
    assert math.isnan(q["davies_bouldin"])


def _blobs(n_drugs: int = 4, per: int = 12, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_drugs, 20)) * 20
    feats = np.concatenate([c + rng.normal(size=(per, 20)) * 0.1 for c in centers])
    meta = pd.DataFrame(
        {"Metadata_cell_line": "CL0",
         "Metadata_drug": np.repeat([f"d{i}" for i in range(n_drugs)], per)}
    )
    return meta, feats


def test_perfectly_separated_drugs_are_found() -> None:
    meta, feats = _blobs()
    out = cluster_drugs(meta, feats, min_cluster_sizes=[3, 5], method="pca")
    wide = out.pivot_table(index="min_cluster_size", columns="metric", values="value")
    assert (wide["adjusted_rand_index"] == 1.0).all()
    assert (wide["fraction_not_noise"] == 1.0).all()
    assert (wide["n_clusters"] == 4).all()
    assert (wide["silhouette"] > 0.9).all()
    # the reported silhouette is that of the 2-D embedding the clustering used
    emb = embed_2d(feats, method="pca")
    labels = np.repeat(np.arange(4), 12)
    assert wide["silhouette"].iloc[0] == pytest.approx(silhouette_score(emb, labels))


def test_each_cell_line_clustered_separately() -> None:
    m1, f1 = _blobs(seed=1)
    m2, f2 = _blobs(n_drugs=2, seed=2)
    m2["Metadata_cell_line"] = "CL1"
    out = cluster_drugs(
        pd.concat([m1, m2], ignore_index=True), np.concatenate([f1, f2]),
        min_cluster_sizes=[5], method="pca",
    )
    n = out.loc[out["metric"] == "n_clusters"].set_index("cell_line")["value"]
    assert n["CL0"] == 4
    assert n["CL1"] == 2


@pytest.mark.slow
def test_umap_embedding_separates_drugs() -> None:
    meta, feats = _blobs(per=15)
    out = cluster_drugs(meta, feats, min_cluster_sizes=[5], method="umap", n_neighbors=10)
    ari = out.loc[out["metric"] == "adjusted_rand_index", "value"].iloc[0]
    assert ari == pytest.approx(1.0)
