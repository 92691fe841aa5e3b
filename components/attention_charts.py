"""Attention maps without widgets (the view and the tests use it): one model's maps of one image, its clickable
plotly figure (image, heat map, patch grid for clicks), the per-head sheet and the PNG overlay.

Figures use view pixels (the image fitted into `VIEW_SIDE`), plotly pixel (i, j) covering [i, i + 1) × [j, j + 1),
so `patch_box`/`pixel_to_patch` apply to the view size unchanged; the model saw the whole image resized to a square,
so each map is stretched back over the image, as on the PCA views. Exports use the original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from components.matching_charts import image_figure
from core import registry
from core.analysis.imaging import blend, colorize, resize_map, sprite_sheet, to_png
from core.analysis.matching import patch_box, pixel_to_patch
from core.models.attention_groups import AttentionMaps, from_patch, peak_ratio, register_share

VIEW_SIDE = 384  # px, longest side of the image in the figures
FIGURE_HEIGHT = 320  # px on screen
HEAD_TILE = 128  # px, one head in the per-head sheet
SCALE = "Inferno"  # dark = little attention, yellow = most
BOX = "#00e5ff"  # the clicked patch


@dataclass(frozen=True)
class AttentionRun:
    """One model's attention of one image: which block, at what size, and the maps (N = 1)."""

    model: str  # name@weights
    layer: int  # block 1..depth
    depth: int
    size: int  # px, the square model input
    maps: AttentionMaps

    @property
    def title(self) -> str:
        return registry.display_name(self.model)

    @property
    def cls_mean(self) -> np.ndarray:
        """(h, w) the CLS token's attention to each patch, mean of the heads."""
        return self.maps.cls[0].mean(0)

    def from_patch(self, index: int) -> np.ndarray:
        """(H, h, w) patch `index`'s attention to every patch, per head."""
        return from_patch(self.maps, 0, index)

    def summary(self) -> str:
        """One sentence: where the CLS's attention goes (registers, the strongest patch)."""
        share = float(register_share(self.maps.cls_prefix[0]).mean())
        to_registers = f"registers take {share:.0%} of it; " if self.maps.registers else ""
        return (
            f"CLS → patches, mean of {self.maps.heads} heads: {to_registers}the strongest patch gets "
            f"{peak_ratio(self.cls_mean):.1f}× the median patch's attention."
        )


def click_patch(click: tuple[float, float], grid: tuple[int, int]) -> tuple[int, int, int]:
    """(x, y) as fractions of the image → (row, col, index) of the patch under it on `grid`."""
    return pixel_to_patch(click[0], click[1], (1.0, 1.0), grid)


def attention_figure(
    view: np.ndarray, uri: str, heat: np.ndarray, alpha: float, box: tuple[int, int] | None
) -> go.Figure:
    """The view image under the (h, w) `heat` map (opacity `alpha`, one block per patch), a near-transparent marker
    on every patch centre (clickable) and the patch `box` = (row, col) outlined."""
    height, width = view.shape[:2]
    h, w = heat.shape
    dx, dy = width / w, height / h
    rows, cols = np.divmod(np.arange(h * w), w)
    data = [
        {"type": "image", "source": uri, "x0": 0.5, "y0": 0.5, "hoverinfo": "skip"},
        {"type": "heatmap", "z": heat, "x0": dx / 2, "dx": dx, "y0": dy / 2, "dy": dy, "zsmooth": False,
         "opacity": alpha, "colorscale": SCALE, "showscale": False, "hoverinfo": "skip"},
        {"type": "scatter", "x": (cols + 0.5) * dx, "y": (rows + 0.5) * dy, "mode": "markers",
         "customdata": np.stack([rows, cols, heat.ravel()], axis=1),
         "marker": {"symbol": "square", "size": max(4.0, 0.8 * FIGURE_HEIGHT / h), "color": "white"},
         "opacity": 0.01, "selected": {"marker": {"opacity": 0.01}}, "unselected": {"marker": {"opacity": 0.01}},
         "hovertemplate": "patch (row %{customdata[0]}, col %{customdata[1]}): %{customdata[2]:.4f}<extra></extra>"},
    ]  # fmt: skip
    shapes = []
    if box is not None:
        x0, y0, x1, y1 = patch_box(*box, (height, width), (h, w))
        shapes.append({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "line": {"color": BOX, "width": 2}})
    return image_figure(data, (height, width), shapes, height=FIGURE_HEIGHT)  # Patch Matching's image layout


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """HWC uint8 image under the (h, w) heat map stretched over it (one block per patch), its own range."""
    return blend(image, colorize(resize_map(heat, image.shape[:2], nearest=True), SCALE), alpha)


def overlay_png(image: np.ndarray, heat: np.ndarray, alpha: float) -> bytes:
    return to_png(overlay(image, heat, alpha))


def heads_sheet(view: np.ndarray, heats: np.ndarray, alpha: float) -> tuple[np.ndarray, int]:
    """(H, h, w) per-head maps, each over the image on its own range → one grid picture and its column count;
    head i sits at row i // columns, column i % columns."""
    return sprite_sheet([overlay(view, heat, alpha) for heat in heats], HEAD_TILE)
