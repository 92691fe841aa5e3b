"""Patch matching without widgets (bench/ and the tests use it): the pair computed once, a click's patch and matches,
figures A, B and the correspondence lines, the heat-map PNG.

Figures use view pixels: both images are shown `VIEW_HEIGHT` px tall, with plotly pixel (i, j) covering
[i, i + 1) × [j, j + 1), so `patch_box`/`pixel_to_patch` apply to the view size unchanged. Exports (PNG) use the
original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from core.analysis.imaging import data_url, palette, to_jpeg, to_png
from core.analysis.matching import (
    Match,
    PatchSimilarity,
    compute_similarity,
    outline_patches,
    overlay_similarity,
    patch_box,
    patch_center,
    pixel_to_patch,
    similarity_map,
    top_matches,
)
from core.analysis.pca import compute_foreground

VIEW_HEIGHT = 384  # px, both images in the figures
FIGURE_HEIGHT = 420  # px on screen
MAX_CROPS = 4  # numbered patch pairs shown, as in the seed slides
BEST, OTHERS = "#ff2b2b", "#ffffff"  # box colours: best match, the other top-k


@dataclass(frozen=True)
class MatchPair:
    """Everything a click needs, computed once per pair. Arrays are read-only and shared across sessions."""

    names: tuple[str, str]
    images: tuple[np.ndarray, np.ndarray]  # HWC uint8 originals
    views: tuple[np.ndarray, np.ndarray]  # HWC uint8, VIEW_HEIGHT tall, aspect kept
    uris: tuple[str, str]  # JPEG data URIs of the views
    sim: PatchSimilarity
    foreground: np.ndarray | None  # (2, h, w) bool PC1 masks of A and B; None when PC1 has no split
    same: bool  # A and B are the same image


@dataclass(frozen=True)
class ClickView:
    row: int
    col: int
    index: int  # flat patch index in A
    heat: np.ndarray  # (h2, w2) float32 cosine of the clicked patch to every patch of B
    matches: list[Match]  # top-k in B, best first


def build_pair(
    names: tuple[str, str], images: tuple[np.ndarray, np.ndarray], tokens: tuple[np.ndarray, np.ndarray]
) -> MatchPair:
    """Views, data URIs, the cosine matrix and the joint PC1 foreground of A and B's (h, w, D) tokens."""
    views = tuple(_frozen(view_image(image)) for image in images)
    foreground = None
    if tokens[0].shape == tokens[1].shape:  # one joint PC1 needs one grid (always so on the page)
        try:
            foreground = _frozen(compute_foreground(np.stack(tokens)).mask)
        except ValueError:  # constant PC1 scores: no foreground split
            pass
    return MatchPair(
        names,
        tuple(_frozen(np.array(image)) for image in images),
        views,
        tuple(data_url(to_jpeg(view)) for view in views),
        compute_similarity(*tokens),
        foreground,
        same=images[0].shape == images[1].shape and np.array_equal(images[0], images[1]),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def view_image(image: np.ndarray) -> np.ndarray:
    """HWC uint8 resized (bicubic) to VIEW_HEIGHT px tall, aspect kept: the pixels a figure shows."""
    height, width = image.shape[:2]
    size = (max(1, round(width * VIEW_HEIGHT / height)), VIEW_HEIGHT)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


# ---- the click: pure parts (benchmarked in bench/bench_matching.py) -------------------------------
def compute_click(pair: MatchPair, click: tuple[float, float], k: int) -> ClickView:
    """`click` = (x, y) as fractions of A's width and height → the patch under it and its matches in B."""
    height, width = pair.views[0].shape[:2]
    row, col, index = pixel_to_patch(click[0] * width, click[1] * height, (height, width), pair.sim.grid_a)
    return ClickView(row, col, index, similarity_map(pair.sim, index), top_matches(pair.sim, index, k))


def click_figures(
    pair: MatchPair, click: tuple[float, float], k: int, alpha: float, show_grid: bool
) -> tuple[ClickView, go.Figure, go.Figure]:
    """Everything a click recomputes: the view, figure A (clickable) and figure B (heat map)."""
    view = compute_click(pair, click, k)
    return view, figure_a(pair, view, show_grid), figure_b(pair, view, alpha)


def figure_a(pair: MatchPair, view: ClickView, show_grid: bool) -> go.Figure:
    """Image A with a near-transparent marker on every patch centre (clickable) and the clicked patch boxed."""
    height, width = pair.views[0].shape[:2]
    box = patch_box(view.row, view.col, (height, width), pair.sim.grid_a)
    return patch_grid_figure(pair.uris[0], (height, width), pair.sim.grid_a, [box], show_grid)


def patch_grid_figure(
    uri: str,
    size: tuple[int, int],
    grid: tuple[int, int],
    boxes: list[tuple[float, float, float, float]],
    show_grid: bool,
    selected: list[int] | None = None,
) -> go.Figure:
    """A clickable patch grid: the image (a data URI, `size` = (height, width) view px) with a near-transparent
    marker on every patch centre (point i is patch (i // w, i % w), its customdata [row, col]) and `boxes` (XYXY)
    outlined. With `selected` (patch indices), the patches selected on the chart are outlined in red by plotly (the
    ones given, then what the user clicks, boxes or lassoes: drawn in the browser at once). No drag mode is set:
    Streamlit's frontend drops clicks while it is box or lasso, so a box or lasso is offered through the mode bar
    instead (`st.plotly_chart(selection_mode=("points", "box", "lasso"))`)."""
    height, width = size
    rows, cols = np.divmod(np.arange(grid[0] * grid[1]), grid[1])
    marker = max(4.0, 0.8 * FIGURE_HEIGHT / grid[0])  # px, a side
    data = [_image_trace(uri)]
    if show_grid:
        data.append(_grid_trace((height, width), grid))
    data.append(
        {
            "type": "scatter",
            "x": (cols + 0.5) * width / grid[1],
            "y": (rows + 0.5) * height / grid[0],
            "mode": "markers",
            "customdata": np.stack([rows, cols], axis=1),
            "marker": (
                {"symbol": "square-open", "size": marker, "color": BEST, "opacity": 0.01, "line": {"width": 3}}
                if selected is not None
                else {"symbol": "square", "size": marker, "color": "white", "opacity": 0.01}
            ),
            "selected": {"marker": {"opacity": 1.0 if selected is not None else 0.01}},
            "unselected": {"marker": {"opacity": 0.01}},
            **({"selectedpoints": list(selected)} if selected is not None else {}),
            "hovertemplate": "patch (row %{customdata[0]}, col %{customdata[1]})<extra></extra>",
        }
    )
    return image_figure(data, (height, width), [_rect(box, BEST, 3) for box in boxes])


def figure_b(pair: MatchPair, view: ClickView, alpha: float) -> go.Figure:
    """Image B under the cosine heat map of the clicked patch (opacity `alpha`), top-k boxed and numbered."""
    image, grid = pair.views[1], pair.sim.grid_b
    height, width = image.shape[:2]
    dx, dy = width / grid[1], height / grid[0]
    heat = {
        "type": "heatmap",
        "z": view.heat,
        "x0": dx / 2,
        "dx": dx,
        "y0": dy / 2,
        "dy": dy,
        "zsmooth": "best",
        "opacity": alpha,
        "colorscale": "Viridis",
        "colorbar": {"title": {"text": "cosine"}, "thickness": 12},
        "hovertemplate": "cosine %{z:.2f}<extra></extra>",
    }
    shapes, notes = [], []
    for rank, m in reversed(list(enumerate(view.matches, start=1))):  # best drawn last, on top
        x0, y0, x1, y1 = patch_box(m.row_b, m.col_b, (height, width), grid)
        shapes.append(_rect((x0, y0, x1, y1), BEST if rank == 1 else OTHERS, 3 if rank == 1 else 1.5))
        notes.append({"x": x0, "y": y0, "text": str(rank), "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                      "font": {"color": BEST if rank == 1 else OTHERS, "size": 12}})  # fmt: skip
    return image_figure([_image_trace(pair.uris[1]), heat], (height, width), shapes, notes)


def figure_pairs(pair: MatchPair, matches: list[Match], gap: int = 16) -> go.Figure:
    """A and B side by side with one coloured line per match; the first MAX_CROPS are numbered at A's end."""
    (ha, wa), (hb, wb) = pair.views[0].shape[:2], pair.views[1].shape[:2]
    offset = wa + gap
    colors = [f"rgb({r},{g},{b})" for r, g, b in palette(len(matches))]
    data = [_image_trace(pair.uris[0]), _image_trace(pair.uris[1], x0=offset)]
    for rank, (m, color) in enumerate(zip(matches, colors, strict=True), start=1):
        xa, ya = patch_center(m.row_a, m.col_a, (ha, wa), pair.sim.grid_a)
        xb, yb = patch_center(m.row_b, m.col_b, (hb, wb), pair.sim.grid_b)
        label = f"#{rank}: cosine {m.cosine:.2f}, L2 {m.euclidean:.2f}"
        data.append(
            {
                "type": "scatter",
                "x": [xa, xb + offset],
                "y": [ya, yb],
                "mode": "lines+markers+text" if rank <= MAX_CROPS else "lines+markers",
                "text": [str(rank), ""] if rank <= MAX_CROPS else None,
                "textposition": "top left",
                "textfont": {"color": "white", "size": 14},
                "line": {"color": color, "width": 2},
                "marker": {"color": color, "size": 7},
                "hovertemplate": label + "<extra></extra>",
            }
        )
    return image_figure(data, (max(ha, hb), offset + wb), [])


def _image_trace(uri: str, x0: float = 0.0) -> dict:
    return {"type": "image", "source": uri, "x0": x0 + 0.5, "y0": 0.5, "hoverinfo": "skip"}


def _grid_trace(size: tuple[int, int], grid: tuple[int, int]) -> dict:
    (height, width), (h, w) = size, grid
    xs = [v for c in range(1, w) for v in (c * width / w, c * width / w, None)]
    ys = [v for _ in range(1, w) for v in (0, height, None)]
    xs += [v for _ in range(1, h) for v in (0, width, None)]
    ys += [v for r in range(1, h) for v in (r * height / h, r * height / h, None)]
    line = {"color": "rgba(255,255,255,0.45)", "width": 1}
    return {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "line": line, "hoverinfo": "skip"}


def _rect(box: tuple[float, float, float, float], color: str, width: float) -> dict:
    x0, y0, x1, y1 = box
    return {"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "line": {"color": color, "width": width}}


def image_figure(
    data: list[dict],
    size: tuple[int, int],
    shapes: list[dict],
    notes: list[dict] | None = None,
    height: int = FIGURE_HEIGHT,
) -> go.Figure:
    """Built from plain dicts with numpy arrays: ~10× faster to validate than trace objects."""
    height, width = size
    layout = {
        "xaxis": {"visible": False, "range": [0, width], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [height, 0], "scaleanchor": "x", "constrain": "domain"},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "height": height,
        "dragmode": False,
        "hovermode": "closest",
        "hoverdistance": -1,
        "showlegend": False,
        "shapes": shapes,
        "annotations": notes or [],
    }
    return go.Figure(data=data, layout=layout)


def heat_png(pair: MatchPair, view: ClickView, alpha: float) -> bytes:
    """PNG of image B (original size) under the heat map, top-k boxed (best in red, drawn last)."""
    image = overlay_similarity(pair.images[1], view.heat, alpha)
    indices = [m.index_b for m in reversed(view.matches)]
    colors = np.array([[255, 255, 255]] * (len(indices) - 1) + [[255, 43, 43]], dtype=np.uint8)
    thickness = max(2, min(image.shape[:2]) // 150)
    return to_png(outline_patches(image, pair.sim.grid_b, indices, colors, thickness))
