"""Projections and pictures of millions of embeddings: fit on a stated sample, apply to every row in batches,
render the density with datashader.

- `fit_on_sample`: a projection method of `core.analysis.projection` (PCA, LDA, UMAP; t-SNE has no transform)
  fitted on a sample (S, D); LDA needs the sample's labels.
- `project_batches`: that fitted method applied to (B, D) blocks → (N, 2) float32, constant memory per block.
- `render_density`: (N, 2) points → an (H, W, 4) uint8 RGBA image of one view range (x right, y up, row 0 at the
  top), coloured by label when given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from core.analysis.projection import build_method

SCALABLE_METHODS = ("pca", "lda", "umap")  # t-SNE cannot place rows it was not fitted on


def fit_on_sample(sample: np.ndarray, method: str, labels: np.ndarray | None = None, seed: int = 0):
    """A 2-D projection method fitted on `sample` (S, D); `labels` (S,) for LDA. Its `.notes` say what was adapted."""
    if method not in SCALABLE_METHODS:
        raise ValueError(f"{method!r} cannot project rows it was not fitted on; choose one of {SCALABLE_METHODS}")
    if method == "lda" and (labels is None or np.unique(labels).size < 3):
        raise ValueError("LDA to 2-D needs labels with at least three classes; choose PCA or UMAP")
    projector = build_method(method, 2, seed)
    projector.fit(np.asarray(sample, dtype=np.float32), None if labels is None else np.asarray(labels))
    return projector


def project_batches(
    projector,
    blocks: Iterable[np.ndarray],
    total: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N, 2) float32: the fitted `projector` applied to each (B, D) block in turn; `progress(done, total)`."""
    parts, done = [], 0
    for block in blocks:
        parts.append(projector.transform(np.asarray(block, dtype=np.float32)))
        done += len(block)
        if progress:
            progress(done, total or done)
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)


# ---- views and density ------------------------------------------------------------------------
Range = tuple[float, float]


@dataclass(frozen=True)
class View:
    x: Range
    y: Range

    @classmethod
    def of(cls, coords: np.ndarray, margin: float = 0.02) -> View:
        """The range holding every point of (N, 2) `coords`, widened by `margin` of each side."""
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        pad = np.maximum(hi - lo, 1e-6) * margin
        return cls((float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1])))

    def contains(self, coords: np.ndarray) -> np.ndarray:
        """(N,) bool: rows of `coords` inside this view."""
        x, y = coords[:, 0], coords[:, 1]
        return (x >= self.x[0]) & (x <= self.x[1]) & (y >= self.y[0]) & (y <= self.y[1])


def render_density(
    coords: np.ndarray, view: View, width: int = 800, height: int = 600, labels: np.ndarray | None = None
) -> np.ndarray:
    """(height, width, 4) uint8 RGBA density image of (N, 2) `coords` inside `view` (row 0 = top = y max).

    Counts per pixel, histogram-equalised; one colour per label (categorical mix) when `labels` (N,) is given."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd
    from colorcet import glasbey_light

    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]})
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=view.x, y_range=view.y)
    if labels is not None:
        frame["label"] = pd.Categorical(np.asarray(labels).astype(str))
        agg = canvas.points(frame, "x", "y", agg=ds.count_cat("label"))
        n_cats = len(frame["label"].cat.categories)
        image = tf.shade(agg, color_key=list(glasbey_light[:n_cats]) * (1 + n_cats // 256), how="eq_hist")
    else:
        image = tf.shade(canvas.points(frame, "x", "y", agg=ds.count()), cmap=["#c6dbef", "#08306b"], how="eq_hist")
    return np.asarray(image.to_pil().convert("RGBA"))


def nearest_point(coords: np.ndarray, x: float, y: float, view: View | None = None) -> int:
    """Row of (N, 2) `coords` nearest to (x, y), distances measured in view-relative units when `view` is given."""
    scale = np.array([1.0, 1.0]) if view is None else np.array([view.x[1] - view.x[0], view.y[1] - view.y[0]])
    d = ((coords - np.array([x, y])) / np.maximum(scale, 1e-12)) ** 2
    return int(np.argmin(d.sum(axis=1)))
