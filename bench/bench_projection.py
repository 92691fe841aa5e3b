"""Time the projection methods on random labeled embeddings (not a test).

LDA and PCA on 50k × 768 (10 classes); UMAP and t-SNE on 5k × 768 (they reduce to 50 dims with PCA first).
For each method: `fit` = fitting on the train split and placing the test split; `total` = the whole
compute_projection call (split, projection, logistic regression, k-NN on the full embeddings).

    .venv/bin/python -m bench.bench_projection [--large 50000] [--small 5000] [--dim 768]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from core.analysis.projection import build_method, compute_projection, compute_split


def make_data(n: int, dim: int, n_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (n, dim) float32 Gaussian classes around random means; y (n,) int labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    means = rng.normal(size=(n_classes, dim)).astype(np.float32) * 0.15
    return rng.standard_normal((n, dim), dtype=np.float32) + means[y], y


def time_fit(method: str, X: np.ndarray, y: np.ndarray) -> float:
    """Seconds to fit `method` on the train split and transform the test split (t-SNE: embed all points)."""
    is_test, _ = compute_split(y)
    projector = build_method(method)
    start = time.perf_counter()
    if projector.inductive:
        projector.fit_transform(X[~is_test], y[~is_test])
        projector.transform(X[is_test])
    else:
        projector.fit_transform(X, y)
    return time.perf_counter() - start


def time_total(method: str, X: np.ndarray, y: np.ndarray) -> tuple[float, float | None, float]:
    """(seconds, projection accuracy, k-NN accuracy) for one compute_projection call."""
    start = time.perf_counter()
    result = compute_projection(X, y, method=method)
    return time.perf_counter() - start, result.projection_accuracy, result.knn_accuracy


def warm_up_umap() -> float:
    """Seconds for a tiny UMAP run: mostly numba JIT compilation, paid once per process."""
    X, y = make_data(200, 16)
    start = time.perf_counter()
    build_method("umap").fit(X, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--dim", type=int, default=768)
    args = parser.parse_args()
    print(f"device: {platform.processor() or platform.machine()} CPU, numpy {np.__version__}")
    print(f"umap JIT warm-up (200 points): {warm_up_umap():.1f} s")
    for method, n in [("lda", args.large), ("pca", args.large), ("umap", args.small), ("tsne", args.small)]:
        X, y = make_data(n, args.dim)
        fit = time_fit(method, X, y)
        total, proj_acc, knn_acc = time_total(method, X, y)
        acc = "n/a" if proj_acc is None else f"{proj_acc:.3f}"
        print(
            f"{method:5s} N={n:6d} D={args.dim}: fit {fit:6.1f} s  total {total:6.1f} s  proj acc {acc}  kNN acc {knn_acc:.3f}"
        )


if __name__ == "__main__":
    main()
