"""Known answers for core.analysis.projection on synthetic Gaussian classes (no models involved)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.preprocessing import StandardScaler

from core.analysis.projection import (
    LDAMethod,
    TSNEMethod,
    build_method,
    compute_projection,
    compute_split,
    downsample,
    import_with_numba_cache,
    list_methods,
)


def _blobs(n_per_class: int, n_classes: int, dim: int = 64, sep: float = 4.0, seed: int = 0):
    """X (C*n, dim) float32: unit-variance Gaussians around random means of norm ≈ sep*sqrt(dim); y (C*n,) int."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    means = rng.normal(size=(n_classes, dim)) * sep
    return (means[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y


def test_registry_lists_all_methods_lda_first():
    assert list_methods() == ["lda", "pca", "umap", "tsne"]
    with pytest.raises(ValueError, match="Unknown projection method"):
        build_method("isomap")


def test_separated_classes_give_perfect_lda_and_knn_accuracy():
    X, y = _blobs(80, 3)
    result = compute_projection(X, y, method="lda")
    assert result.coords.shape == (240, 2) and result.coords.dtype == np.float32
    assert result.projection_accuracy >= 0.98
    assert result.knn_accuracy >= 0.98
    assert result.confusion.shape == (3, 3)
    assert result.confusion.sum() == result.is_test.sum()
    assert np.trace(result.confusion) >= 0.98 * result.is_test.sum()
    assert list(result.labels) == [0, 1, 2]


def test_noise_labels_give_chance_accuracy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 32)).astype(np.float32)
    y = rng.integers(0, 4, size=400)
    result = compute_projection(X, y, method="lda")
    assert 0.1 < result.projection_accuracy < 0.4  # chance is 0.25
    assert 0.1 < result.knn_accuracy < 0.4


def test_lda_components_clamp_to_classes_minus_one():
    X, y = _blobs(30, 3)
    result = compute_projection(X, y, method="lda", n_components=3)
    assert result.n_components == 2
    assert result.coords.shape == (90, 2)
    assert "LDA limited to 2 components (3 classes)." in result.notes

    X2, y2 = _blobs(30, 2)
    assert compute_projection(X2, y2, method="lda").coords.shape == (60, 1)


def test_split_is_stratified_disjoint_and_sized():
    X, y = _blobs(40, 4)
    is_test, notes = compute_split(y, test_size=0.25, seed=0)
    assert is_test.dtype == bool and is_test.sum() == 40 and notes == []
    assert np.array_equal(np.bincount(y[is_test]), [10, 10, 10, 10])
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    assert np.intersect1d(train_idx, test_idx).size == 0 and train_idx.size + test_idx.size == 160


def test_projection_is_fitted_on_train_rows_only(monkeypatch):
    X, y = _blobs(40, 4)
    seen = {}
    original = LDAMethod.fit_transform

    def spy(self, X_fit, y_fit=None):
        seen["X"] = X_fit.copy()
        return original(self, X_fit, y_fit)

    monkeypatch.setattr(LDAMethod, "fit_transform", spy)
    result = compute_projection(X, y, method="lda")
    assert np.array_equal(seen["X"], X[~result.is_test])
    test_rows = {row.tobytes() for row in X[result.is_test]}
    assert not any(row.tobytes() in test_rows for row in seen["X"])


@pytest.mark.parametrize("standardize", [False, True])
def test_lda_matches_manual_sklearn_pipeline_fitted_on_train(standardize):
    X, y = _blobs(40, 4, sep=0.5)  # overlapping classes: the fit depends on which rows it sees
    result = compute_projection(X, y, method="lda", n_components=2, standardize=standardize, seed=3)
    train = ~result.is_test
    Z = StandardScaler().fit(X[train]).transform(X).astype(np.float32) if standardize else X
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=2).fit(Z[train], y[train])
    np.testing.assert_allclose(result.coords, lda.transform(Z), rtol=1e-4, atol=1e-4)
    lda_all = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=2).fit(Z, y)
    assert not np.allclose(result.coords, lda_all.transform(Z), atol=1e-3)


def test_pca_matches_manual_pca_fitted_on_train():
    X, y = _blobs(40, 3)
    result = compute_projection(X, y, method="pca", n_components=3, seed=0)
    pca = PCA(n_components=3, random_state=0).fit(X[~result.is_test])
    np.testing.assert_allclose(result.coords, pca.transform(X), rtol=1e-4, atol=1e-3)
    assert result.projection_accuracy >= 0.95


def test_same_seed_is_deterministic_and_seed_changes_split():
    X, y = _blobs(30, 3)
    a, b = compute_projection(X, y, seed=7), compute_projection(X, y, seed=7)
    assert np.array_equal(a.is_test, b.is_test) and np.array_equal(a.coords, b.coords)
    assert not np.array_equal(a.is_test, compute_projection(X, y, seed=8).is_test)


@pytest.mark.parametrize("method", ["lda", "pca"])
def test_3d_output_shape(method):
    X, y = _blobs(20, 5)
    result = compute_projection(X, y, method=method, n_components=3)
    assert result.coords.shape == (100, 3) and result.n_components == 3
    assert np.isfinite(result.coords).all()


def test_single_class_raises_mentioning_two_classes():
    X, _ = _blobs(30, 1)
    with pytest.raises(ValueError, match="two classes"):
        compute_projection(X, np.zeros(30, dtype=int))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, y: (X[:5], y[:5]), "Too few points"),
        (lambda X, y: (np.where(np.arange(len(X))[:, None] == 3, np.nan, X), y), "NaN"),
        (lambda X, y: (X, y[:-1]), "Expected X"),
    ],
)
def test_bad_input_raises_clear_errors(mutate, message):
    X, y = _blobs(20, 3)
    with pytest.raises(ValueError, match=message):
        compute_projection(*mutate(X, y))


def test_bad_arguments_raise():
    X, y = _blobs(20, 3)
    with pytest.raises(ValueError, match="n_components"):
        compute_projection(X, y, n_components=4)
    with pytest.raises(ValueError, match="test_size"):
        compute_projection(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="Unknown projection method"):
        compute_projection(X, y, method="mds")


def test_singleton_class_stays_in_train_and_is_noted():
    X, y = _blobs(20, 3)
    y = y.copy()
    y[0] = 9  # class 9 has a single sample
    result = compute_projection(X, y)
    assert not result.is_test[0]
    assert any("single sample" in note for note in result.notes)
    assert list(result.labels) == [0, 1, 2, 9]
    assert result.confusion[3].sum() == 0 and result.knn_confusion.shape == (4, 4)


def test_knn_uses_raw_embeddings_regardless_of_standardize():
    X, y = _blobs(30, 3, sep=0.3)
    X[:, 0] *= 100  # standardising would change neighbours if kNN used it
    plain = compute_projection(X, y, standardize=False)
    scaled = compute_projection(X, y, standardize=True)
    assert plain.knn_accuracy == scaled.knn_accuracy
    assert np.array_equal(plain.knn_confusion, scaled.knn_confusion)


def test_progress_is_reported_in_order():
    X, y = _blobs(20, 3)
    calls = []
    compute_projection(X, y, progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(message, str) and message for _, message in calls)


def test_transductive_method_sees_all_points_and_reports_no_projection_accuracy(monkeypatch):
    X, y = _blobs(30, 3, dim=64)
    seen = {}

    def fake_tsne(self, X_fit, y_fit=None):  # stands in for the slow t-SNE optimisation
        seen["n"] = len(X_fit)
        return PCA(n_components=2).fit_transform(X_fit).astype(np.float32)

    monkeypatch.setattr(TSNEMethod, "fit_transform", fake_tsne)
    result = compute_projection(X, y, method="tsne")
    assert seen["n"] == 90 and result.coords.shape == (90, 2)
    assert result.projection_accuracy is None and result.confusion is None
    assert result.knn_accuracy >= 0.95
    assert any("t-SNE cannot place unseen points" in note for note in result.notes)
    with pytest.raises(NotImplementedError):
        build_method("tsne").transform(X)


def test_tsne_runs_on_small_data():
    X, y = _blobs(40, 3, dim=64)
    result = compute_projection(X, y, method="tsne")
    assert result.coords.shape == (120, 2) and np.isfinite(result.coords).all()
    assert result.projection_accuracy is None
    assert "PCA 64 → 50 dims before t-SNE." in result.notes


@pytest.mark.slow  # numba JIT alone costs ~15 s per process on the 2-core CPU
def test_umap_runs_on_small_data_and_places_test_points():
    X, y = _blobs(50, 3, dim=64)
    result = compute_projection(X, y, method="umap")
    assert result.coords.shape == (150, 2) and np.isfinite(result.coords).all()
    assert result.projection_accuracy >= 0.9
    assert "PCA 64 → 50 dims before UMAP." in result.notes


def test_downsample_keeps_every_class_and_respects_max_points():
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.zeros(9000), np.ones(990), np.full(7, 2), np.full(3, 3)]).astype(int)
    labels = labels[rng.permutation(labels.size)]
    idx = downsample(labels.size, 500, labels, seed=0)
    assert idx.size == 500 and idx.dtype == np.int64
    assert np.array_equal(idx, np.unique(idx))  # sorted, no repeats
    counts = np.bincount(labels[idx], minlength=4)
    assert (counts >= 2).all()
    assert abs(counts[0] - 450) <= 3 and abs(counts[1] - 49) <= 3  # proportional for the big classes
    assert np.array_equal(idx, downsample(labels.size, 500, labels, seed=0))
    assert not np.array_equal(idx, downsample(labels.size, 500, labels, seed=1))


def test_downsample_small_sets_and_limits():
    assert np.array_equal(downsample(5, 10, np.arange(5)), np.arange(5))
    assert downsample(100, 10, seed=0).size == 10  # no labels: plain uniform sample
    many = np.repeat(np.arange(50), 4)
    assert np.unique(many[downsample(200, 60, many)]).size == 50  # one per class when two each won't fit
    with pytest.raises(ValueError, match="cannot keep all"):
        downsample(200, 20, many)


@pytest.mark.parametrize("method", ["lda", "pca"])
def test_predictions_are_for_the_test_rows_and_rebuild_the_confusion_matrices(method):
    X, y = _blobs(30, 3, sep=0.3)  # overlapping classes: some predictions are wrong
    result = compute_projection(X, y, method=method)
    n_test = int(result.is_test.sum())
    assert result.predictions.shape == result.knn_predictions.shape == (n_test,)
    y_test = y[result.is_test]
    for predictions, confusion, accuracy in [
        (result.predictions, result.confusion, result.projection_accuracy),
        (result.knn_predictions, result.knn_confusion, result.knn_accuracy),
    ]:
        rebuilt = np.zeros_like(confusion)
        np.add.at(rebuilt, (y_test, predictions), 1)
        assert np.array_equal(rebuilt, confusion)
        assert np.mean(predictions == y_test) == pytest.approx(accuracy)
    assert result.projection_accuracy < 1.0


def test_transductive_method_has_no_projection_predictions(monkeypatch):
    X, y = _blobs(20, 3)
    monkeypatch.setattr(TSNEMethod, "fit_transform", lambda self, X_fit, y_fit=None: X_fit[:, :2].astype(np.float32))
    result = compute_projection(X, y, method="tsne")
    assert result.predictions is None and result.knn_predictions.shape == (int(result.is_test.sum()),)


def test_lda_with_two_samples_per_class_falls_back_to_svd_with_a_note():
    X, y = _blobs(3, 10, dim=32)  # the split leaves two samples per class in train
    train = ~compute_split(y)[0]
    with pytest.raises(np.linalg.LinAlgError):  # what the shrinkage-eigen solver alone does here
        LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(X[train], y[train])
    result = compute_projection(X, y, method="lda")
    assert result.coords.shape == (30, 2) and np.isfinite(result.coords).all()
    assert any("SVD solver" in note for note in result.notes)


def test_numba_code_imported_through_the_cache_import_is_kept_on_disk(tmp_path, monkeypatch):
    import numba

    (tmp_path / "vfm_numba_probe.py").write_text(
        "import numba\n\n\n@numba.njit\ndef add(a, b):\n    return a + b\n"  # no cache=True, like most of umap
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # restored after the test
    monkeypatch.delitem(sys.modules, "vfm_numba_probe", raising=False)
    njit, jit = numba.njit, numba.jit
    probe = import_with_numba_cache("vfm_numba_probe")
    assert probe.add(2, 3) == 5
    assert list((tmp_path / "numba").rglob("vfm_numba_probe.add-*.nbi")), "compiled code was not cached"
    assert (numba.njit, numba.jit) == (njit, jit)  # numba's own decorators again after the import


@pytest.mark.slow  # compiles umap's numba code from nothing: ~1 min on the 2-core CPU
def test_umap_warm_up_leaves_umaps_own_compiled_code_on_disk(tmp_path):
    env = {**os.environ, "VFM_LENS_CACHE": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    code = "from core.analysis.projection import warm_umap; warm_umap()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).resolve().parents[3])
    # a function umap declares without cache=True: cached only because it was imported through the cache import
    assert list((tmp_path / "numba").glob("umap_*/layouts._optimize_layout_euclidean_single_epoch-*.nbi"))


def test_umap_warm_up_starts_once_per_process_in_the_background_and_never_in_the_tiny_profile(monkeypatch):
    from core.analysis import projection

    calls = []
    monkeypatch.setattr(projection, "warm_umap", lambda: calls.append(1))
    monkeypatch.setattr(projection, "_warmup", None)
    assert projection.start_umap_warmup() is None and not calls  # tests run the tiny profile
    monkeypatch.setenv("VFM_LENS_PROFILE", "default")
    thread = projection.start_umap_warmup()
    thread.join(10)
    assert thread.daemon and calls == [1] and projection.start_umap_warmup() is thread
    thread.join(10)
    assert calls == [1]
