"""Plotly figures built from numpy arrays and core results, without widgets (bench/ imports them): the confusion
matrix, the PC1 threshold histogram, the token-norm profile, the stored-dataset density map and the Embedding
Scatter's WebGL scatter."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

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


# ---- embedding scatter ----------------------------------------------------------------------------
HELD_OUT = "held-out"  # the one word for the scored split, on screen and in the CSV


def class_colours(n: int) -> list[str]:
    if n <= 10:
        return qualitative.Plotly[:n]
    return qualitative.Light24[:n] if n <= 24 else sample_colorscale("Turbo", np.linspace(0, 1, n))


def scatter_figure(
    coords: np.ndarray, labels: np.ndarray, names: np.ndarray, is_test: np.ndarray, shown: np.ndarray
) -> tuple[go.Figure, list[np.ndarray]]:
    """A WebGL scatter (Scatter3d for K=3) of coords (N, K) over the rows `shown`: one trace per class and split
    (train, held-out), one legend entry per class.

    Returns (figure, trace_index): trace_index[c][p] is the row of point p in trace c (for selections).
    Light for 100k points: each point carries only its coordinates (float32), its file name (`hovertext`) and
    its row (`customdata`, int32, for the hover thumbnails); the class and split are the trace's.
    """
    strip = coords.shape[1] == 1  # LDA of two classes has one axis: a strip, its points spread vertically at random
    if strip:
        coords = np.column_stack([coords[:, 0], np.random.default_rng(0).uniform(-1, 1, len(coords))])
    coords = np.asarray(coords, np.float32)
    classes, codes = np.unique(labels[shown], return_inverse=True)
    groups = codes * 2 + is_test[shown].astype(np.int64)  # class-major, train before held-out
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(2 * len(classes) + 1))
    traces, trace_index = [], []
    for g, colour in enumerate(np.repeat(class_colours(len(classes)), 2)):
        rows = shown[order[bounds[g] : bounds[g + 1]]]
        if rows.size:
            cls, split = str(classes[g // 2]), HELD_OUT if g % 2 else "train"
            first = not trace_index or traces[-1].legendgroup != cls
            traces.append(_trace(coords[rows], names[rows], rows, cls, split, colour, first))
            trace_index.append(rows)
    # no dragmode: Streamlit's frontend turns click-to-select off while the drag mode is box or lasso
    fig = go.Figure(traces).update_layout(height=520, margin={"t": 10, "b": 10}, legend_title_text="class")
    if strip:
        fig.update_yaxes(title_text="random spread (no meaning)", showticklabels=False, zeroline=False)
    return fig, trace_index


def _trace(xy: np.ndarray, names: np.ndarray, rows: np.ndarray, cls: str, split: str, colour: str, legend: bool):
    """The points of one class and split: (P, 2 or 3) float32 coordinates, their names and rows."""
    common = {
        "name": cls,
        "legendgroup": cls,
        "showlegend": legend,
        "mode": "markers",
        "customdata": rows.astype(np.int32),
        "hovertext": names,
        "hovertemplate": f"<b>{html.escape(cls)}</b><br>%{{hovertext}}<br>{split}<extra></extra>",
    }
    if xy.shape[1] == 3:
        return go.Scatter3d(x=xy[:, 0], y=xy[:, 1], z=xy[:, 2], marker={"size": 3, "color": colour}, **common)
    return go.Scattergl(x=xy[:, 0], y=xy[:, 1], marker={"size": 6, "color": colour}, **common)


def selected_indices(event, trace_index: list[np.ndarray]) -> np.ndarray:
    """Sorted unique rows selected in a plotly selection event ({"selection": {"points": [...]}})."""
    points = (event or {}).get("selection", {}).get("points", [])
    rows = [
        int(trace_index[p["curve_number"]][p.get("point_index", p.get("point_number"))])
        for p in points
        if 0 <= p.get("curve_number", -1) < len(trace_index)
    ]
    return np.unique(np.asarray(rows, dtype=np.int64))
