"""The accuracy protocol's guards: the classifier sees only train rows; k-NN uses cosine distance (#22)."""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline

from core.analysis import projection
from core.analysis.projection import compute_projection


def test_the_projection_classifier_is_fitted_on_the_train_rows_only(monkeypatch):
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    X = (rng.normal(size=(3, 16))[y] * 3 + rng.normal(size=(90, 16))).astype(np.float32)
    seen = []
    original = Pipeline.fit

    def spy(self, X_fit, y_fit=None, **kw):
        seen.append((np.asarray(X_fit).copy(), np.asarray(y_fit).copy()))
        return original(self, X_fit, y_fit, **kw)

    monkeypatch.setattr(Pipeline, "fit", spy)
    result = compute_projection(X, y, method="pca")
    assert len(seen) == 1
    X_fit, y_fit = seen[0]
    np.testing.assert_array_equal(X_fit, result.coords[~result.is_test])
    np.testing.assert_array_equal(y_fit, y[~result.is_test])


def test_knn_ranks_neighbours_by_angle_not_by_distance():
    """Class "a" lies along 0°, class "b" along 30°; a long vector at 0° is nearer (Euclidean) to the b points."""
    angles = np.r_[np.full(10, 0.0), np.full(10, np.pi / 6), 0.0, np.pi / 6]
    angles[:20] += np.linspace(-0.01, 0.01, 20)
    radius = np.r_[np.full(10, 0.1), np.full(10, 10.0), 10.0, 10.0]
    X = np.c_[radius * np.cos(angles), radius * np.sin(angles)].astype(np.float32)
    y = np.array(["a"] * 10 + ["b"] * 10 + ["a", "b"])
    is_test = np.r_[np.zeros(20, bool), True, True]
    euclidean_nearest = y[:20][np.argsort(np.linalg.norm(X[:20] - X[20], axis=1))[: projection.KNN_K]]
    assert set(euclidean_nearest) == {"b"}  # the premise: Euclidean k-NN would call the first test point "b"
    assert projection._predict_knn(X, y, is_test, []).tolist() == ["a", "b"]
