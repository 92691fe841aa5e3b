"""Plotly figures built from numpy arrays and core results, without widgets (bench/ imports them): the confusion
matrix, the PC1 threshold histogram, the token-norm profile and the stored-dataset density map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.analysis.imaging import data_url, to_png
from core.analysis.pca import Foreground
from core.analysis.scale import View, render_density

MAX_POINTS = 2_000  # a density view holding fewer rows than this shows them one by one, with thumbnails on click
PICK_POINTS = 2_000  # clickable (near-transparent) points laid over a denser view


def confusion_figure(matrix: np.ndarray, labels: Sequence[str]) -> go.Figure:
    """A (C, C) confusion matrix, rows the true class, as a blue heat map with counts (up to 20 classes)."""
    labels = [str(label) for label in labels]
    heatmap = go.Heatmap(
        z=matrix,
        x=labels,
        y=labels,
        colorscale="Blues",
        text=matrix,
        texttemplate="%{text}" if len(labels) <= 20 else None,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
    )
    fig = go.Figure(heatmap).update_layout(height=min(900, 260 + 18 * len(labels)), margin={"t": 10})
    fig.update_xaxes(title="predicted", type="category")
    return fig.update_yaxes(title="true", type="category", autorange="reversed")


def threshold_histogram(fg: Foreground, otsu: float) -> go.Figure:
    """Histogram of all PC1 scores, foreground and background stacked, with the threshold drawn."""
    scores = fg.scores.ravel()
    width = max(float(scores.max() - scores.min()) / 60, 1e-6)
    bins = {"start": float(scores.min()), "end": float(scores.max()) + width, "size": width}
    mask = fg.mask.ravel()
    fig = go.Figure(
        [
            go.Histogram(x=scores[~mask], xbins=bins, name="background", marker_color="#9aa0a6"),
            go.Histogram(x=scores[mask], xbins=bins, name="foreground", marker_color="#ef553b"),
        ]
    )
    if abs(fg.threshold - otsu) > width / 2:
        fig.add_vline(x=otsu, line_dash="dot", line_color="#636efa", annotation_text="Otsu")
    fig.add_vline(x=fg.threshold, line_color="black", annotation_text="threshold", annotation_position="top left")
    fig.update_layout(
        barmode="stack",
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="PC1 score",
        yaxis_title="patches",
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


def norm_profile(norms: np.ndarray, flags: np.ndarray) -> go.Figure:
    blocks, outliers = np.arange(1, len(norms) + 1), flags.sum(axis=(1, 2))
    fig = go.Figure(
        [
            go.Scatter(x=blocks, y=np.median(norms, axis=(1, 2)), name="median norm", mode="lines+markers"),
            go.Scatter(x=blocks, y=norms.max(axis=(1, 2)), name="largest norm", mode="lines+markers"),
            go.Bar(x=blocks, y=outliers, name="outliers", yaxis="y2", opacity=0.3),
        ]
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "block", "dtick": 1},
        yaxis_title="token norm",
        yaxis2={"title": "outliers", "overlaying": "y", "side": "right", "range": [0, max(1, int(outliers.max()))]},
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


def density_figure(
    coords: np.ndarray, labels: np.ndarray, view: View, width: int = 800, height: int = 560
) -> tuple[go.Figure, np.ndarray]:
    """The density image of `view` under a scatter of clickable rows; returns (figure, rows of the scatter points).

    A view holding at most MAX_POINTS rows shows every one as a visible marker; a denser one has PICK_POINTS
    random rows as near-transparent markers, so a click anywhere lands on a stored image."""
    inside = np.flatnonzero(view.contains(coords))
    has_labels = any(v is not None for v in labels)
    image = render_density(coords, view, width, height, labels if has_labels else None)
    few = len(inside) <= MAX_POINTS
    rng = np.random.default_rng(0)
    rows = inside if few else np.sort(rng.choice(inside, PICK_POINTS, replace=False))
    marker = {"size": 7, "color": "rgba(220,60,30,0.9)"} if few else {"size": 9, "color": "rgba(0,0,0,0.01)"}
    custom = np.column_stack([np.asarray(labels, dtype=object)[rows], rows])  # the row last, for hover_thumbnails
    trace = go.Scattergl(
        x=coords[rows, 0],
        y=coords[rows, 1],
        mode="markers",
        marker=marker,
        customdata=custom,
        hovertemplate="row %{customdata[1]}<br>%{customdata[0]}<extra></extra>",
    )
    fig = go.Figure(trace)
    fig.add_layout_image(
        source=data_url(to_png(image), "png"), x=view.x[0], y=view.y[1], xref="x", yref="y", sizex=view.x[1] - view.x[0],
        sizey=view.y[1] - view.y[0], sizing="stretch", layer="below",
    )  # fmt: skip
    fig.update_xaxes(range=view.x, showgrid=False).update_yaxes(range=view.y, showgrid=False)
    fig.update_layout(height=height, margin={"t": 10, "b": 10}, dragmode="pan", showlegend=False)
    return fig, rows
