"""Clustering of drugs within a cell line (SPEC section 6, task 2).

Profiles are embedded in 2-D (UMAP, as in the reference; PCA as a fast deterministic option) and
clustered with HDBSCAN over a range of minimum cluster sizes. Cluster quality is scored on the
embedding the clustering used: silhouette, Calinski-Harabasz, Davies-Bouldin (on points not called
noise), the fraction not noise, and the adjusted Rand index against the drug labels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import PCA
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler

CLUSTER_METRICS = (
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "fraction_not_noise",
    "adjusted_rand_index",
    "n_clusters",
)
"""Metrics reported for every (cell line, minimum cluster size)."""


def cluster_quality(embedding: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Internal quality of a clustering; label -1 marks noise points.

    Silhouette, Calinski-Harabasz and Davies-Bouldin are computed over non-noise points and are
    NaN when fewer than two clusters remain (they are undefined there).
    """
    labels = np.asarray(labels)
    clustered = labels >= 0
    n_clusters = len(np.unique(labels[clustered]))
    out = {
        "fraction_not_noise": float(clustered.mean()) if len(labels) else float("nan"),
        "n_clusters": float(n_clusters),
        "silhouette": float("nan"),
        "calinski_harabasz": float("nan"),
        "davies_bouldin": float("nan"),
    }
    x = np.asarray(embedding)[clustered]
    lab = labels[clustered]
    if 2 <= n_clusters < len(lab):
        out["silhouette"] = float(silhouette_score(x, lab))
        out["calinski_harabasz"] = float(calinski_harabasz_score(x, lab))
        out["davies_bouldin"] = float(davies_bouldin_score(x, lab))
    return out


def embed_2d(
    features: np.ndarray,
    *,
    method: Literal["umap", "pca"] = "umap",
    n_neighbors: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Standardise, reduce to at most 50 PCA dimensions, then embed in 2-D (UMAP or PCA)."""
    x = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    n_comp = min(50, x.shape[0] - 1, x.shape[1])
    if n_comp >= 2 and x.shape[1] > 50:
        x = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    if method == "pca":
        return np.asarray(PCA(n_components=2, random_state=seed).fit_transform(x))
    if method != "umap":
        raise ValueError(f"embedding method must be 'umap' or 'pca', got {method!r}")
    import umap

    nn = max(2, min(n_neighbors, x.shape[0] - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(
            n_neighbors=nn, n_components=2, min_dist=0.0, random_state=seed, n_jobs=1
        )
        return np.asarray(reducer.fit_transform(x))


def cluster_drugs(
    metadata: pd.DataFrame,
    features: np.ndarray,
    *,
    min_cluster_sizes: Sequence[int] = (3, 5, 10, 15, 20),
    method: Literal["umap", "pca"] = "umap",
    n_neighbors: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Cluster the treatment profiles of each cell line and score every minimum cluster size.

    Parameters
    ----------
    metadata, features
        Profiles of treatment wells (any number of time points per well).
    min_cluster_sizes
        HDBSCAN ``min_cluster_size`` values to scan (values below 2 are skipped).

    Returns
    -------
    pandas.DataFrame
        Long table ``cell_line, min_cluster_size, metric, value`` with the metrics of
        :data:`CLUSTER_METRICS`.
    """
    rows: list[dict[str, object]] = []
    feats = np.asarray(features, dtype=np.float64)
    for cell_line, idx in metadata.groupby("Metadata_cell_line", sort=True).indices.items():
        if len(idx) < 4:
            continue
        emb = embed_2d(feats[idx], method=method, n_neighbors=n_neighbors, seed=seed)
        drugs = metadata["Metadata_drug"].astype(str).to_numpy()[idx]
        for mcs in min_cluster_sizes:
            if mcs < 2 or mcs > len(idx):
                continue
            labels = HDBSCAN(min_cluster_size=int(mcs), copy=True).fit_predict(emb)
            scores = cluster_quality(emb, labels)
            scores["adjusted_rand_index"] = float(adjusted_rand_score(drugs, labels))
            for metric in CLUSTER_METRICS:
                rows.append(
                    {"cell_line": cell_line, "min_cluster_size": int(mcs), "metric": metric,
                     "value": scores[metric]}
                )
    return pd.DataFrame(rows, columns=["cell_line", "min_cluster_size", "metric", "value"])
