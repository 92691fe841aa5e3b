"""Known answers for core.analysis.clusters: planted clusters are recovered, purity is counted exactly."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.clusters import MAX_AGGLOMERATIVE, cluster_purity, compute_clusters


def _planted(n_per_cluster: int, n_clusters: int, dim: int = 32, seed: int = 0):
    """X (K*n, dim) float32 tight clusters around random directions (they differ in angle, not only norm); y (K*n,)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_clusters), n_per_cluster)
    centres = rng.normal(size=(n_clusters, dim)) * 5
    return (centres[y] + rng.normal(size=(len(y), dim)) * 0.3).astype(np.float32), y


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_planted_clusters_are_recovered_with_full_purity(method):
    X, y = _planted(40, 5)
    shuffle = np.random.default_rng(1).permutation(len(y))
    X, y = X[shuffle], y[shuffle]
    ids = compute_clusters(X, 5, method=method)
    assert ids.shape == (200,) and ids.dtype == np.int64 and set(ids) == set(range(5))
    result = cluster_purity(ids, y)
    assert result.purity == 1.0 and result.adjusted_rand == pytest.approx(1.0)
    assert list(result.sizes) == [40] * 5 and (result.cluster_purity == 1.0).all()
    assert all(set(y[ids == k]) == {result.majority[k]} for k in range(5))


def test_clusters_that_ignore_the_labels_give_low_purity_and_zero_ari():
    X, _ = _planted(50, 4)
    labels = np.random.default_rng(2).integers(0, 4, size=len(X))  # labels unrelated to the clusters
    result = cluster_purity(compute_clusters(X, 4), labels)
    assert result.purity < 0.45  # chance ≈ 0.25 plus the largest-label bonus per cluster
    assert abs(result.adjusted_rand) < 0.05


def test_purity_counts_by_hand():
    result = cluster_purity(np.array([0, 0, 0, 1, 1, 1]), np.array(["a", "a", "b", "b", "b", "b"]))
    assert result.purity == pytest.approx(5 / 6)
    assert list(result.sizes) == [3, 3] and list(result.majority) == ["a", "b"]
    np.testing.assert_allclose(result.cluster_purity, [2 / 3, 1.0])


def test_cluster_ids_are_ordered_by_first_appearance_and_deterministic():
    X, _ = _planted(20, 3)
    ids = compute_clusters(X, 3, seed=0)
    assert ids[0] == 0 and list(dict.fromkeys(ids)) == [0, 1, 2]
    assert np.array_equal(ids, compute_clusters(X, 3, seed=0))


def test_normalize_clusters_by_direction_not_length():
    rng = np.random.default_rng(3)
    directions = np.repeat(np.eye(2), 30, axis=0)  # two directions
    lengths = np.tile(np.r_[np.full(15, 1.0), np.full(15, 100.0)], 2)  # two very different norms in each
    X = (directions * lengths[:, None] + rng.normal(size=(60, 2)) * 0.01).astype(np.float32)
    by_direction = cluster_purity(compute_clusters(X, 2, normalize=True), np.repeat([0, 1], 30))
    by_length = cluster_purity(compute_clusters(X, 2, normalize=False), np.repeat([0, 1], 30))
    assert by_direction.purity == 1.0 and by_length.purity < 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clusters": 1}, "2 to N clusters"),
        ({"n_clusters": 500}, "2 to N clusters"),
        ({"n_clusters": 3, "method": "dbscan"}, "Unknown clustering method"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    X, _ = _planted(10, 3)
    with pytest.raises(ValueError, match=message):
        compute_clusters(X, **kwargs)


def test_nan_and_too_many_points_for_agglomerative_raise():
    X, _ = _planted(10, 3)
    X[4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_clusters(X, 3)
    big = np.zeros((MAX_AGGLOMERATIVE + 1, 2), np.float32)
    with pytest.raises(ValueError, match="k-means"):
        compute_clusters(big, 3, method="agglomerative")


def test_purity_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="equal-length"):
        cluster_purity(np.array([0, 1]), np.array([0, 1, 1]))
