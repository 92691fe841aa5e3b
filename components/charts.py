"""Plotly figures shared by several pages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go


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
