"""core.analysis.scale: sample-fitted projections applied in batches, and density images of a view."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.scale import View, fit_on_sample, nearest_point, project_batches, render_density


def _blobs(n_per: int = 400, dim: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, dim)) * 4
    X = np.vstack([c + rng.standard_normal((n_per, dim)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.array(list("abcd")), n_per)


def test_pca_fitted_on_a_sample_then_applied_in_batches_equals_one_transform():
    X, _ = _blobs()
    projector = fit_on_sample(X[::4], "pca")
    seen = []
    coords = project_batches(
        projector, (X[i : i + 100] for i in range(0, len(X), 100)), len(X), lambda d, t: seen.append(d)
    )
    np.testing.assert_allclose(coords, projector.transform(X), rtol=1e-5, atol=1e-5)
    assert coords.shape == (len(X), 2) and seen[-1] == len(X)


def test_lda_on_a_labeled_sample_separates_the_classes_of_every_row():
    X, y = _blobs()
    sample = np.arange(0, len(X), 5)
    coords = project_batches(fit_on_sample(X[sample], "lda", y[sample]), [X[:800], X[800:]])
    centres = np.stack([coords[y == c].mean(axis=0) for c in "abcd"])
    nearest = np.argmin(((coords[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.mean(np.array(list("abcd"))[nearest] == y) > 0.95


def test_methods_that_cannot_place_new_rows_are_refused():
    X, y = _blobs(20)
    with pytest.raises(ValueError, match="cannot project"):
        fit_on_sample(X, "tsne")
    with pytest.raises(ValueError, match="three classes"):
        fit_on_sample(X, "lda")


@pytest.mark.slow
def test_umap_fitted_on_a_sample_transforms_the_rest():
    X, y = _blobs(150)
    projector = fit_on_sample(X[::3], "umap")
    coords = project_batches(projector, [X[1::3], X[2::3]])
    assert coords.shape == (len(X) - len(X[::3]), 2) and np.isfinite(coords).all()


def test_density_image_puts_a_planted_cluster_top_right_and_the_view_crops():
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.uniform(-1, 1, (5000, 2)), np.full((500, 2), 5.0)]).astype(np.float32)
    image = render_density(coords, View((-6, 6), (-6, 6)), width=120, height=90)
    assert image.shape == (90, 120, 4) and image.dtype == np.uint8
    row, col = round((6 - 5) / 12 * 90), round((5 + 6) / 12 * 120)
    assert image[row - 1 : row + 2, col - 1 : col + 2, 3].max() > 0  # y up: the cluster is near the top
    assert image[-10:, :10, 3].max() == 0  # bottom-left corner is empty
    zoomed = render_density(coords, View((-1, 1), (-1, 1)), width=40, height=40, labels=np.repeat(["p", "q"], 2750))
    assert (zoomed[..., 3] > 0).mean() > 0.9  # the uniform square fills the zoomed view


def test_views_and_nearest_points():
    coords = np.array([[0, 0], [10, 0], [0, 1]], np.float32)
    view = View.of(coords)
    assert view.contains(coords).all()
    assert nearest_point(coords, 9, 0.2) == 1
    assert nearest_point(coords, 0.5, 0.6, View((0, 10), (0, 1))) == 2  # y spans less: it weighs more
