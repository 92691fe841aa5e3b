"""Known answers for the colour PCA's scaling and the centring of PC1 scores (#22)."""

from __future__ import annotations

import numpy as np

from core.analysis.pca import compute_pc1, compute_rgb_pca


def test_colours_span_zero_to_one_over_the_foreground_whatever_the_background():
    rng = np.random.default_rng(0)
    tokens = (rng.normal(size=(1, 8, 8, 6)) * np.array([5, 3, 2, 0.1, 0.1, 0.1])).astype(np.float32)
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 2:6, 2:6] = True
    tokens[~mask] = 1000.0  # background far away along every axis
    rgb = compute_rgb_pca(tokens, mask).rgb
    np.testing.assert_allclose(rgb[mask].min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(rgb[mask].max(axis=0), 1.0, atol=1e-6)
    assert (rgb[~mask] == 0).all()


def test_pc1_scores_are_centred_projections():
    rng = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0, 0.0]) / 5
    t = rng.normal(size=(2, 4, 4, 1)) * 10
    tokens = (500.0 + t * direction + rng.normal(size=(2, 4, 4, 4)) * 0.01).astype(np.float32)
    result = compute_pc1(tokens)
    flat = tokens.reshape(-1, 4).astype(np.float64)
    expected = (flat - flat.mean(axis=0)) @ result.component
    np.testing.assert_allclose(result.scores.ravel(), expected, atol=1e-2)
    assert abs(float(result.scores.mean())) < 1e-2
    np.testing.assert_allclose(np.abs(result.component), direction, atol=1e-3)
