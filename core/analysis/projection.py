"""Project labeled embeddings (N, D) to 2-D/3-D and measure how well the classes separate.

Protocol, in one place (`compute_projection`):
  1. A stratified train/test split with a fixed seed (`compute_split`). Classes with a single sample cannot be
     stratified: they stay in the train split (plotted, never scored) and a note says so.
  2. Optional standardisation: a StandardScaler fitted on the train rows only.
  3. The projection is fitted on the train rows only, then places the test rows (`transform`).
     t-SNE has no transform for unseen points, so it is embedded on all N points for display only and
     `projection_accuracy` is None: accuracy is never measured on points a projection saw.
  4. `projection_accuracy`: logistic regression on the projected train rows, scored on the projected test rows.
  5. `knn_accuracy`: k-NN (k=5, cosine distance, the usual metric for foundation-model embeddings) on the FULL,
     raw embeddings with the same split; independent of `standardize` and of the projection.

Each method is a small frozen config (`LDAConfig`, `PCAConfig`, `UMAPConfig`, `TSNEConfig`) whose `build()`
returns a method object with `fit(X_train, y_train)`, `transform(X)` and `fit_transform(X, y)`; the object
reports the components it actually used (`n_components_`) and any `notes`. Inputs are cast to float32.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core import config
from core.text import count

log = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]

MIN_POINTS = 10  # fewer points than this cannot give a meaningful split and score
KNN_K = 5
KNN_METRIC = "cosine"
MAX_PRE_DIMS = 50  # UMAP / t-SNE first reduce D > 50 to 50 dims with PCA


@dataclass(frozen=True)
class ProjectionResult:
    """A projection of N labeled points and how well classes separate, on the test split only.

    coords: (N, K) float32, every point (train and test); K = `n_components` actually used.
    is_test: (N,) bool, True for held-out points.
    labels: (C,) the class order used by both confusion matrices (sorted unique labels).
    confusion: (C, C) int64, rows true class, columns predicted, from the projection classifier on the test
        split; None when the method cannot place unseen points (t-SNE).
    knn_confusion: (C, C) int64, same layout, from k-NN on the full embeddings.
    predictions: (N_test,) labels the projection classifier predicts for the rows np.flatnonzero(is_test), in
        that order; None when the method cannot place unseen points (t-SNE).
    knn_predictions: (N_test,) labels k-NN predicts for the same rows.
    """

    coords: np.ndarray
    is_test: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray | None
    knn_confusion: np.ndarray
    projection_accuracy: float | None
    knn_accuracy: float
    method: str
    n_components: int
    notes: tuple[str, ...]
    predictions: np.ndarray | None = None
    knn_predictions: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------- methods


class _Method:
    """Shared shape of a projection method object: fit on (N_train, D), transform (M, D) → (M, K) float32."""

    inductive: ClassVar[bool] = True  # False: can only embed the points it was fitted on

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.n_components_: int = config.n_components
        self.notes: list[str] = []

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _Method:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LDAMethod(_Method):
    """Linear discriminant analysis (supervised); at most n_classes - 1 components, clamped with a note."""

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        if y is None:
            raise ValueError("LDA is supervised: fit needs labels y.")
        n_classes = np.unique(y).size
        self.n_components_ = min(self.config.n_components, n_classes - 1, X.shape[1])
        if self.n_components_ < self.config.n_components:
            self.notes.append(f"LDA limited to {count(self.n_components_, 'component')} ({n_classes} classes).")
        model = LinearDiscriminantAnalysis(
            solver="eigen", shrinkage=self.config.shrinkage, n_components=self.n_components_
        )
        with warnings.catch_warnings():  # single-sample classes (kept in train) trigger covariance warnings
            warnings.filterwarnings("ignore", message="Only one sample available")
            try:
                self._model = model.fit(X, y)
            except np.linalg.LinAlgError:  # e.g. two samples per class: Ledoit-Wolf may not shrink at all
                self.notes.append("LDA within-class scatter is singular (very few images per class): SVD solver used.")
                self._model = LinearDiscriminantAnalysis(solver="svd", n_components=self.n_components_).fit(X, y)
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._model.transform(X).astype(np.float32)


class PCAMethod(_Method):
    """Principal component analysis (unsupervised); at most min(N_train, D) components."""

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        self.n_components_ = min(self.config.n_components, *X.shape)
        if self.n_components_ < self.config.n_components:
            self.notes.append(f"PCA limited to {self.n_components_} components.")
        self._model = PCA(n_components=self.n_components_, random_state=self.config.seed).fit(X)
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._model.transform(X).astype(np.float32)


class UMAPMethod(_Method):
    """UMAP after PCA to ≤ 50 dims; training points keep their fitted layout, new points use transform."""

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        umap = load_umap()  # slow import (numba), only when used

        self._pre = _fit_prereduce(X, self.config.max_pre_dims, self.config.seed, "UMAP", self.notes)
        n_neighbors = min(self.config.n_neighbors, X.shape[0] - 1)
        if n_neighbors < self.config.n_neighbors:
            self.notes.append(f"UMAP n_neighbors reduced to {n_neighbors} ({X.shape[0]} training points).")
        self._model = umap.UMAP(
            n_components=self.n_components_,
            n_neighbors=n_neighbors,
            min_dist=self.config.min_dist,
            random_state=self.config.seed,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            self._model.fit(_apply(self._pre, X))
        return self._model.embedding_.astype(np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            return self._model.transform(_apply(self._pre, X)).astype(np.float32)


_NUMBA_IMPORT = threading.Lock()


def load_umap():
    """The umap module, its numba-compiled code kept on disk (see `import_with_numba_cache`).

    Most of umap's jitted functions are declared without ``cache=True``, so every new process compiled them
    again: ~30 s on two cores before the first fit.
    """
    return import_with_numba_cache("umap")


def import_with_numba_cache(name: str):
    """Import module `name` with ``numba.njit`` / ``numba.jit`` defaulting to ``cache=True`` meanwhile, the cache
    in NUMBA_CACHE_DIR (default ``<cache dir>/numba``): a later process loads the compiled code instead of
    compiling it again. A module imported before is returned as it is."""
    with _NUMBA_IMPORT:
        if name in sys.modules:
            return sys.modules[name]
        import numba

        folder = os.environ.setdefault("NUMBA_CACHE_DIR", str(config.cache_dir() / "numba"))
        numba.config.CACHE_DIR = folder  # numba may have been imported (and read the environment) already
        njit, jit = numba.njit, numba.jit
        numba.njit, numba.jit = _caching(njit), _caching(jit)
        try:
            return importlib.import_module(name)
        finally:
            numba.njit, numba.jit = njit, jit


def _caching(decorator: Callable) -> Callable:
    def with_cache(*args, **kwargs):
        kwargs.setdefault("cache", True)
        return decorator(*args, **kwargs)

    return with_cache


def warm_umap() -> None:
    """Fit and apply UMAP once on a small random array, so that numba's code is compiled (and cached on disk)
    before a user's first fit. Meant for a background thread at start-up."""
    X = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    method = build_method("umap")
    method.fit_transform(X[:45])
    method.transform(X[45:])


_warmup: threading.Thread | None = None


def start_umap_warmup() -> threading.Thread | None:
    """Run `warm_umap` once per process in a daemon thread, so the first UMAP a user asks for does not wait for
    numba; the thread (None under the tiny test profile, whose CPU belongs to the tests)."""
    global _warmup
    with _NUMBA_IMPORT:
        if _warmup is None and config.profile() != "tiny":
            _warmup = threading.Thread(target=_warm_quietly, name="umap-warmup", daemon=True)
            _warmup.start()
        return _warmup


def _warm_quietly() -> None:
    try:
        warm_umap()
    except Exception as exc:  # noqa: BLE001 - a failed warm-up only means the first fit compiles, as before
        log.info("UMAP warm-up skipped: %s", exc)


class TSNEMethod(_Method):
    """t-SNE after PCA to ≤ 50 dims. Transductive: embeds only the points it is fitted on (no transform)."""

    inductive: ClassVar[bool] = False

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        from sklearn.manifold import TSNE

        pre = _fit_prereduce(X, self.config.max_pre_dims, self.config.seed, "t-SNE", self.notes)
        perplexity = min(self.config.perplexity, (X.shape[0] - 1) / 3)
        if perplexity < self.config.perplexity:
            self.notes.append(f"t-SNE perplexity reduced to {perplexity:.1f} ({X.shape[0]} points).")
        model = TSNE(n_components=self.n_components_, perplexity=perplexity, init="pca", random_state=self.config.seed)
        return model.fit_transform(_apply(pre, X)).astype(np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("t-SNE cannot place unseen points; use fit_transform on all points.")


def _fit_prereduce(X: np.ndarray, max_dims: int, seed: int, name: str, notes: list[str]) -> PCA | None:
    """PCA fitted on X (N, D) to min(max_dims, N, D) dims when D > max_dims, else None (no reduction)."""
    if X.shape[1] <= max_dims:
        return None
    dims = min(max_dims, X.shape[0])
    notes.append(f"PCA {X.shape[1]} → {dims} dims before {name}.")
    return PCA(n_components=dims, random_state=seed).fit(X)


def _apply(pre: PCA | None, X: np.ndarray) -> np.ndarray:
    return X if pre is None else pre.transform(X)


@dataclass(frozen=True)
class LDAConfig:
    n_components: int = 2
    seed: int = 0  # unused: LDA is deterministic
    shrinkage: float | str | None = "auto"  # Ledoit-Wolf; keeps LDA sane when N_train is close to or below D

    def build(self) -> LDAMethod:
        return LDAMethod(self)


@dataclass(frozen=True)
class PCAConfig:
    n_components: int = 2
    seed: int = 0

    def build(self) -> PCAMethod:
        return PCAMethod(self)


@dataclass(frozen=True)
class UMAPConfig:
    n_components: int = 2
    seed: int = 0
    n_neighbors: int = 15
    min_dist: float = 0.1
    max_pre_dims: int = MAX_PRE_DIMS

    def build(self) -> UMAPMethod:
        return UMAPMethod(self)


@dataclass(frozen=True)
class TSNEConfig:
    n_components: int = 2
    seed: int = 0
    perplexity: float = 30.0
    max_pre_dims: int = MAX_PRE_DIMS

    def build(self) -> TSNEMethod:
        return TSNEMethod(self)


MethodConfig = LDAConfig | PCAConfig | UMAPConfig | TSNEConfig
METHODS: dict[str, type[MethodConfig]] = {"lda": LDAConfig, "pca": PCAConfig, "umap": UMAPConfig, "tsne": TSNEConfig}
DEFAULT_METHOD = "lda"


def list_methods() -> list[str]:
    """Registered projection method names, default first."""
    return list(METHODS)


def build_method(name: str, n_components: int = 2, seed: int = 0, **overrides) -> _Method:
    """An unfitted method object for `name` ('lda', 'pca', 'umap', 'tsne'); `overrides` set config fields."""
    if name not in METHODS:
        raise ValueError(f"Unknown projection method {name!r}; choose one of {list_methods()}.")
    return METHODS[name](n_components=n_components, seed=seed, **overrides).build()


# ---------------------------------------------------------------------------------------------- analysis


def compute_projection(
    X: np.ndarray,
    y: np.ndarray,
    method: str = DEFAULT_METHOD,
    n_components: int = 2,
    standardize: bool = False,
    test_size: float = 0.25,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> ProjectionResult:
    """Project X (N, D) with labels y (N,) to 2-D or 3-D, fitted on the train split; score on the test split.

    See the module docstring for the protocol. `progress(fraction, message)` is called between stages.
    Raises ValueError for: fewer than MIN_POINTS points, NaN/inf in X, fewer than two classes with at least
    two samples, an unknown method, n_components not 2 or 3, test_size outside (0, 1).
    """
    report = progress or _no_progress
    X, y = _validate(X, y, method, n_components, test_size)
    labels = np.unique(y)
    report(0.0, "Splitting train/test")
    is_test, notes = compute_split(y, test_size, seed)
    X_in = _standardize(X, ~is_test) if standardize else X
    projector = build_method(method, n_components, seed)
    report(0.1, f"Fitting {method.upper()}")
    coords = _project(projector, X_in, y, is_test, notes)
    notes.extend(projector.notes)
    report(0.7, "Scoring the projection")
    proj_pred = _predict_projection(coords, y, is_test) if projector.inductive else None
    proj_acc, proj_conf = (
        _accuracy_and_confusion(y[is_test], proj_pred, labels) if proj_pred is not None else (None, None)
    )
    report(0.8, f"k-NN on the full {X.shape[1]}-dim embeddings")
    knn_pred = _predict_knn(X, y, is_test, notes)
    knn_acc, knn_conf = _accuracy_and_confusion(y[is_test], knn_pred, labels)
    report(1.0, "Done")
    return ProjectionResult(
        coords=coords,
        is_test=is_test,
        labels=labels,
        confusion=proj_conf,
        knn_confusion=knn_conf,
        projection_accuracy=proj_acc,
        knn_accuracy=knn_acc,
        method=method,
        n_components=projector.n_components_,
        notes=tuple(notes),
        predictions=proj_pred,
        knn_predictions=knn_pred,
    )


def compute_split(y: np.ndarray, test_size: float = 0.25, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(N,) bool is_test from a stratified split (sklearn train_test_split, stratify=y, random_state=seed).

    Classes with one sample stay in train. The test split holds at least one point per splittable class.
    Returns (is_test, notes).
    """
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    splittable = np.flatnonzero(counts[inverse] >= 2)
    n_classes = int((counts >= 2).sum())
    notes = []
    if (counts < 2).any():
        notes.append(
            f"{count(int((counts < 2).sum()), 'class', 'classes')} with a single sample kept in train only (not scored)."
        )
    n_test = max(math.ceil(test_size * splittable.size), n_classes)
    if n_test > math.ceil(test_size * splittable.size):
        notes.append(f"Held-out split enlarged to {n_test} points (one per class).")
    if splittable.size - n_test < n_classes:
        raise ValueError(f"Too few samples ({splittable.size}) to split {n_classes} classes into train and held-out.")
    _, test_idx = train_test_split(splittable, test_size=n_test, stratify=y[splittable], random_state=seed)
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_idx] = True
    return is_test, notes


def _validate(
    X: np.ndarray, y: np.ndarray, method: str, n_components: int, test_size: float
) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"Expected X (N, D) and y (N,); got X {X.shape} and y {y.shape}.")
    if len(X) < MIN_POINTS:
        raise ValueError(f"Too few points: {len(X)} (need at least {MIN_POINTS}).")
    bad_rows = int((~np.isfinite(X)).any(axis=1).sum())
    if bad_rows:
        raise ValueError(f"X contains NaN or inf values in {count(bad_rows, 'row')}; drop or fix them first.")
    classes, counts = np.unique(y, return_counts=True)
    if (counts >= 2).sum() < 2:
        raise ValueError(
            f"Need at least two classes with at least two samples each (got {classes.size} class(es): "
            f"{classes[:5].tolist()}); LDA and accuracy need two classes to separate."
        )
    if method not in METHODS:
        raise ValueError(f"Unknown projection method {method!r}; choose one of {list_methods()}.")
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components}.")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}.")
    return X, y


def _standardize(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    """X (N, D) scaled by a StandardScaler fitted on the rows where `train` (N,) bool is set."""
    return StandardScaler().fit(X[train]).transform(X).astype(np.float32)


def _project(projector: _Method, X: np.ndarray, y: np.ndarray, is_test: np.ndarray, notes: list[str]) -> np.ndarray:
    """(N, K) float32 coordinates; inductive methods see only the train rows while fitting."""
    if not projector.inductive:
        notes.append("t-SNE cannot place unseen points: embedded on all points for display; no projection accuracy.")
        return projector.fit_transform(X, y)
    train_coords = projector.fit_transform(X[~is_test], y[~is_test])
    coords = np.empty((len(X), train_coords.shape[1]), dtype=np.float32)
    coords[~is_test] = train_coords
    coords[is_test] = projector.transform(X[is_test])
    return coords


def _predict_projection(coords: np.ndarray, y: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Logistic regression fitted on the projected train rows → (N_test,) predictions for the test rows."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return clf.fit(coords[~is_test], y[~is_test]).predict(coords[is_test])


def _predict_knn(X: np.ndarray, y: np.ndarray, is_test: np.ndarray, notes: list[str]) -> np.ndarray:
    """k-NN (cosine) on the full embeddings, train rows as the index → (N_test,) predictions for the test rows."""
    k = min(KNN_K, int((~is_test).sum()))
    if k < KNN_K:
        notes.append(f"k-NN uses k={k} ({k} training points).")
    knn = KNeighborsClassifier(n_neighbors=k, metric=KNN_METRIC, algorithm="brute")
    return knn.fit(X[~is_test], y[~is_test]).predict(X[is_test])


def _accuracy_and_confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    accuracy = float(np.mean(y_true == y_pred))
    return accuracy, confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)


def _no_progress(fraction: float, message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------- downsampling


def downsample(n: int, max_points: int, labels: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Sorted int64 indices of at most `max_points` of n points, stratified by `labels` (n,) when given.

    Each class keeps a share proportional to its size (largest remainders), but never fewer than
    min(size, 2) points when max_points allows two per class, else at least one: every class stays represented
    (and splittable when it can be). Returns arange(n) when n <= max_points. Deterministic for a seed.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}.")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for n={n} points.")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)
    _, inverse, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    if counts.size > max_points:
        raise ValueError(f"max_points={max_points} cannot keep all {counts.size} classes.")
    quotas = _class_quotas(counts, max_points)
    picked = [rng.choice(np.flatnonzero(inverse == c), size=q, replace=False) for c, q in enumerate(quotas)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _class_quotas(counts: np.ndarray, max_points: int) -> np.ndarray:
    """(C,) int points per class summing to max_points, proportional to counts (C,), each ≥ a small floor."""
    floor = np.minimum(counts, 2 if max_points >= 2 * counts.size else 1)
    share = counts / counts.sum() * max_points
    quotas = np.clip(np.floor(share).astype(np.int64), floor, counts)
    while quotas.sum() > max_points:  # floors pushed us over: take from the largest class above its floor
        quotas[np.argmax(np.where(quotas > floor, quotas, -1))] -= 1
    while quotas.sum() < max_points:  # hand out the rest by largest remainder among classes with room
        quotas[np.argmax(np.where(quotas < counts, share - quotas, -np.inf))] += 1
    return quotas
