"""SAM prompts drawn on an image: click for a point, right-click for a negative point, drag for a box.

A Streamlit Components v2 widget: it runs in the page itself, no iframe and no extra package. It replaces
streamlit-drawable-canvas, which the design card named, because that canvas falls short on the one page that
must answer at once: it holds every new shape for a fixed 200 ms debounce before it tells Python (`Bc = 200` in
its bundled JavaScript, no parameter changes it) and it ignores right clicks. Here each gesture is sent the
moment the mouse button goes up, as a trigger ("prompt"); the new point or box is drawn at once, before the
server answers; the background is swapped only once the new one is decoded, so the picture never flickers. The
background is the image, with an optional mask layer over it (`mask_layer`: a small palette PNG, transparent outside
the masks), so that a click re-encodes and re-sends only the masks. With an `image_id`, the image itself is sent
once: the widget keeps it and says so (its "shown" state), and later answers leave it out until the widget is new
or asks again. Prompts are exchanged as fractions of the image's width and height, so the widget can be shown at
any size (it shrinks to narrow columns).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from components.state import Slot
from core.analysis.imaging import data_url, resize_map, to_png
from core.analysis.masks import mask_contour
from core.segment_session import Prompt

POSITIVE, NEGATIVE, BOX = "#22c55e", "#ef4444", "#f59e0b"  # green, red, amber
RADIUS = 6  # px of a point's marker at full size
DRAG_PX = 5  # a press that moves further than this is a box, not a point

# Streamlit Components v2 takes a js path only inside an installed package's asset_dir: read the file, pass the text.
_JS = (Path(__file__).parent / "prompt_canvas.js").read_text(encoding="utf-8")

_component = st.components.v2.component("vfm_prompt_canvas", js=_JS)


@dataclass(frozen=True)
class CanvasFrame:
    """An image of (H, W) = `image_size` pixels shown `width` × `height` (stretched to fit)."""

    width: int
    height: int
    image_size: tuple[int, int]

    @classmethod
    def fit(cls, image_size: tuple[int, int], max_width: int = 700, max_height: int = 640, min_width: int = 420):
        h, w = image_size
        scale = min(max_width / w, max_height / h, max(1.0, min_width / w))
        return cls(max(1, round(w * scale)), max(1, round(h * scale)), (h, w))


def gesture_prompt(gesture: object, image_size: tuple[int, int]) -> Prompt | None:
    """What the widget sent (fractions of the shown image) → a prompt in image pixels, rounded to 1/100 pixel.
    None for anything malformed: the message comes from a browser."""
    if not isinstance(gesture, dict) or gesture.get("kind") not in ("point", "box"):
        return None
    xy = gesture.get("xy")
    size = 2 if gesture["kind"] == "point" else 4
    if not isinstance(xy, list) or len(xy) != size or not all(isinstance(v, int | float) for v in xy):
        return None
    if not all(math.isfinite(v) for v in xy):
        return None
    h, w = image_size
    pixels = tuple(round(min(1.0, max(0.0, float(v))) * (w if i % 2 == 0 else h), 2) for i, v in enumerate(xy))
    if gesture["kind"] == "point":
        return Prompt("point", pixels, positive=bool(gesture.get("positive", True)))
    x0, y0, x1, y1 = pixels
    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return Prompt("box", box) if box[2] > box[0] and box[3] > box[1] else None


def widget_prompts(prompts: Iterable[Prompt], image_size: tuple[int, int]) -> list[dict]:
    """Prompts in image pixels → what the widget draws: fractions of the image's width and height."""
    h, w = image_size
    return [
        {"kind": p.kind, "xy": [v / (w if i % 2 == 0 else h) for i, v in enumerate(p.xy)], "positive": p.positive}
        for p in prompts
    ]


def mask_layer(
    masks: Sequence[np.ndarray],
    colors: Sequence[tuple[int, int, int]],
    alpha: float,
    contour: int,
    size: tuple[int, int],
) -> str:
    """(H, W) bool masks at image size → a data URL of a PNG of (height, width) = `size`, transparent outside the
    masks, or "" without masks. Laid over the image at that size it draws what `overlay_masks` draws (each mask
    resized nearest, blended at opacity `alpha` over the ones before it, its edge `contour` pixels wide opaque),
    up to rounding (a level or two per channel). A palette PNG: pixels are labelled by the combination of masks
    and edges they lie in, each combination's colour computed once, not per pixel (a millisecond or two)."""
    if not len(masks):
        return ""
    labels, states = np.zeros(size, np.int64), np.zeros((1, 0), np.uint8)  # states: label → each mask's 0, 1 or 3
    for mask in masks:
        fill = resize_map(mask, size, nearest=True) > 0.5
        code = fill.astype(np.int64) + 2 * mask_contour(fill, contour) if contour else fill.astype(np.int64)
        labels, states = _relabel(labels * 4 + code, states)
    rgba = _blend(states, colors, alpha)
    if len(rgba) > 256:  # more colours than a palette holds
        return data_url(to_png(rgba[labels]), "png")
    layer = Image.frombytes("P", (size[1], size[0]), labels.astype(np.uint8).tobytes())
    layer.putpalette(rgba[:, :3].ravel().tolist())
    buffer = io.BytesIO()
    layer.save(buffer, format="PNG", transparency=rgba[:, 3].tobytes())
    return data_url(buffer.getvalue(), "png")


def _relabel(combined: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels × 4 + one more mask's state → labels 0.. of the combinations that occur (0: in no mask), and each
    one's states, one column a mask."""
    used = np.flatnonzero(np.bincount(combined.ravel(), minlength=1))
    lookup = np.zeros(used[-1] + 1, np.int64)
    lookup[used] = np.arange(len(used))
    return lookup[combined], np.concatenate([states[used // 4], (used % 4)[:, None].astype(np.uint8)], axis=1)


def _blend(states: np.ndarray, colors: Sequence[tuple[int, int, int]], alpha: float) -> np.ndarray:
    """(N, masks) states (bit 0: in the mask, bit 1: on its edge) → (N, 4) uint8 RGBA over the image, mask after
    mask as `overlay_masks` draws them: the image keeps a weight `keep`, the masks add `added` (premultiplied)."""
    keep, added = np.ones((len(states), 1)), np.zeros((len(states), 3))
    for state, color in zip(states.T, np.asarray(colors, np.float64).reshape(-1, 3), strict=True):
        fill, edge = (state[:, None] & 1) > 0, (state[:, None] & 2) > 0
        keep, added = (
            np.where(fill, keep * (1 - alpha), keep),
            np.where(fill, added * (1 - alpha) + color * alpha, added),
        )
        keep, added = np.where(edge, 0.0, keep), np.where(edge, color, added)
    opacity = 1 - keep
    rgb = np.divide(added, opacity, out=np.zeros_like(added), where=opacity > 0)
    return np.concatenate([rgb, 255 * opacity], axis=1).round().clip(0, 255).astype(np.uint8)


def prompt_canvas(
    image_url: str,
    frame: CanvasFrame,
    prompts: Iterable[Prompt],
    *,
    negative: bool,
    seq: int,
    key: str,
    on_prompt: Callable[[Prompt], None],
    layer_url: str = "",
    image_id: str = "",
) -> None:
    """Show `image_url` (a data URL) at `frame`'s size, `layer_url` (a `mask_layer`, or "") over it and `prompts`
    drawn on top; each click or drag calls `on_prompt` with its prompt in image pixels before the (fragment)
    rerun. `negative`: a left click adds a negative point (right-click always does). `seq` counts the prompts
    received, so that the widget hears back after each one even when nothing else changed (its provisional marker
    then gives way to `prompts`). `image_id` names the picture `image_url` holds (its content: the same id, the
    same picture): once the widget has shown it, it is not sent again."""
    kept = bool(image_id) and (Slot(key).get() or {}).get("shown") == image_id
    data = {
        "image": "" if kept else image_url,
        "imageId": image_id,
        "layer": layer_url,
        "width": frame.width,
        "height": frame.height,
        "prompts": widget_prompts(prompts, frame.image_size),
        "negative": negative,
        "seq": seq,
        "radius": RADIUS,
        "dragPx": DRAG_PX,
        "colors": {"positive": POSITIVE, "negative": NEGATIVE, "box": BOX},
    }

    def received() -> None:
        prompt = gesture_prompt((Slot(key).get() or {}).get("prompt"), frame.image_size)
        if prompt is not None:
            on_prompt(prompt)

    _component(data=data, key=key, on_prompt_change=received, on_shown_change=lambda: None)
