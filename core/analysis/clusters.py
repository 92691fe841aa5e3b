"""Cluster embeddings (N, D) without labels, then measure the clusters against the labels.

Embeddings are L2-normalised first (`normalize=True`), so Euclidean distance ranks like cosine distance,
the usual metric for foundation-model embeddings. k-means uses k-means++ with a fixed seed; agglomerative
clustering uses Ward linkage and needs O(N²) memory, so it is limited to MAX_AGGLOMERATIVE points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import normalize as l2_normalize

CLUSTER_METHODS = ("kmeans", "agglomerative")
MAX_AGGLOMERATIVE = 5_000  # Ward on N points holds N(N-1)/2 distances: 5,000 points ≈ 100 MB


@dataclass(frozen=True)
class ClusterPurity:
    """How well K clusters match the labels.

    purity: Σ_k (count of the most common label in cluster k) / N, in (0, 1]; 1 when every cluster holds one label.
    sizes: (K,) int64 points per cluster, cluster ids 0..K-1 in order.
    majority: (K,) the most common label of each cluster (ties: the smallest label).
    cluster_purity: (K,) float64 share of the majority label in each cluster.
    adjusted_rand: adjusted Rand index of clusters vs labels (0 for chance, 1 for identical partitions).
    """

    purity: float
    sizes: np.ndarray
    majority: np.ndarray
    cluster_purity: np.ndarray
    adjusted_rand: float


def compute_clusters(
    X: np.ndarray, n_clusters: int, method: str = "kmeans", normalize: bool = True, seed: int = 0
) -> np.ndarray:
    """(N,) int64 cluster ids in 0..n_clusters-1 for embeddings X (N, D); ids ordered by first appearance.

    Raises ValueError for an unknown method, n_clusters outside [2, N], NaN/inf in X, or agglomerative
    clustering of more than MAX_AGGLOMERATIVE points.
    """
    X = np.asarray(X, dtype=np.float32)
    if method not in CLUSTER_METHODS:
        raise ValueError(f"Unknown clustering method {method!r}; choose one of {', '.join(CLUSTER_METHODS)}.")
    if X.ndim != 2 or not 2 <= n_clusters <= len(X):
        raise ValueError(f"Need 2 to N clusters for X (N, D); got {n_clusters} clusters for X {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("The embeddings contain NaN or inf values.")
    if method == "agglomerative" and len(X) > MAX_AGGLOMERATIVE:
        raise ValueError(
            f"Agglomerative clustering is limited to {MAX_AGGLOMERATIVE:,} points (got {len(X):,}); "
            "use k-means or fewer images per class."
        )
    Z = l2_normalize(X) if normalize else X
    if method == "kmeans":
        ids = KMeans(n_clusters=n_clusters, n_init="auto", random_state=seed).fit_predict(Z)
    else:
        ids = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(Z)
    return _relabel_by_first_appearance(ids)


def _relabel_by_first_appearance(ids: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def cluster_purity(assignments: np.ndarray, labels: np.ndarray) -> ClusterPurity:
    """Compare cluster ids (N,) int in 0..K-1 with class labels (N,); see ClusterPurity for the fields."""
    assignments, labels = np.asarray(assignments), np.asarray(labels)
    if assignments.shape != labels.shape or assignments.ndim != 1 or not assignments.size:
        raise ValueError(f"Expected two equal-length 1-D arrays; got {assignments.shape} and {labels.shape}.")
    classes, label_ids = np.unique(labels, return_inverse=True)
    n_clusters = int(assignments.max()) + 1
    table = np.zeros((n_clusters, classes.size), dtype=np.int64)  # (K, C) contingency counts
    np.add.at(table, (assignments, label_ids), 1)
    sizes = table.sum(axis=1)
    top = table.max(axis=1)
    return ClusterPurity(
        purity=float(top.sum() / assignments.size),
        sizes=sizes,
        majority=classes[table.argmax(axis=1)],
        cluster_purity=np.divide(top, sizes, out=np.zeros(n_clusters), where=sizes > 0),
        adjusted_rand=float(adjusted_rand_score(label_ids, assignments)),
    )
