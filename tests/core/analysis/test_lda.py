"""The torch LDA against scikit-learn's eigen solver with Ledoit-Wolf shrinkage, on synthetic classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import ledoit_wolf
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from core.analysis.lda import compute_lda, shrunk_covariance


def make_classes(n: int, dim: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unequal class sizes, correlated features of unequal scales: every shrinkage step shows."""
    rng = np.random.default_rng(seed)
    y = rng.choice(n_classes, size=n, p=np.linspace(1, 3, n_classes) / np.linspace(1, 3, n_classes).sum())
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.diag(rng.uniform(0.5, 3, dim))
    means = rng.normal(size=(n_classes, dim))
    return (means[y] + rng.normal(size=(n, dim)) @ mix).astype(np.float32), y


def test_shrunk_covariance_matches_ledoit_wolf_on_standardised_features():
    X, _ = make_classes(300, 40, 3)
    Z = (X - X.mean(0)) / X.std(0)
    expected = ledoit_wolf(Z)[0] * X.std(0)[:, None] * X.std(0)[None, :]
    got = shrunk_covariance(torch.from_numpy(X).double()).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("n", "dim", "n_classes", "k"), [(2000, 64, 10, 9), (200, 120, 4, 2), (500, 8, 2, 5)])
def test_transform_matches_sklearn_up_to_sign(n, dim, n_classes, k):
    X, y = make_classes(n, dim, n_classes)
    sklearn = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=min(k, n_classes - 1))
    expected = sklearn.fit(X, y).transform(X)
    projection = compute_lda(X, y, k)
    got = projection.transform(X)
    assert got.shape == expected.shape == (n, min(k, n_classes - 1)) and got.dtype == np.float32
    signs = np.sign((got * expected).sum(0))
    np.testing.assert_allclose(got * signs, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    np.testing.assert_allclose(projection.explained_variance_ratio, sklearn.explained_variance_ratio_, rtol=1e-4)


def test_singular_within_class_scatter_raises_like_sklearn():
    X = np.zeros((6, 3), np.float32)
    X[:, 0] = [0, 0, 0, 1, 1, 1]  # features 1 and 2 never vary: Sw is singular
    with pytest.raises(np.linalg.LinAlgError):
        compute_lda(X, np.array([0, 0, 0, 1, 1, 1]), 1)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    X, y = make_classes(5000, 128, 10)
    cpu = compute_lda(X, y, 9).scalings
    np.testing.assert_allclose(compute_lda(X, y, 9, "cuda").scalings, cpu, rtol=1e-5, atol=1e-6 * np.abs(cpu).max())
