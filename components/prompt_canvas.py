"""SAM prompts drawn on an image: click for a point, right-click for a negative point, drag for a box.

A Streamlit Components v2 widget: it runs in the page itself, no iframe and no extra package. It replaces
streamlit-drawable-canvas, which the design card named, because that canvas falls short on the one page that
must answer at once: it holds every new shape for a fixed 200 ms debounce before it tells Python (`Bc = 200` in
its bundled JavaScript, no parameter changes it) and it ignores right clicks. Here each gesture is sent the
moment the mouse button goes up, as a trigger ("prompt"); the new point or box is drawn at once, before the
server answers; the background (the image with its masks) is swapped only once the new one is decoded, so the
picture never flickers. Prompts are exchanged as fractions of the image's width and height, so the widget can be
shown at any size (it shrinks to narrow columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from components.state import Slot
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


def prompt_canvas(
    image_url: str,
    frame: CanvasFrame,
    prompts: Iterable[Prompt],
    *,
    negative: bool,
    seq: int,
    key: str,
    on_prompt: Callable[[Prompt], None],
) -> None:
    """Show `image_url` (a data URL) at `frame`'s size with `prompts` drawn on it; each click or drag calls
    `on_prompt` with its prompt in image pixels before the (fragment) rerun. `negative`: a left click adds a
    negative point (right-click always does). `seq` counts the prompts received, so that the widget hears back
    after each one even when nothing else changed (its provisional marker then gives way to `prompts`)."""
    data = {
        "image": image_url,
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

    _component(data=data, key=key, on_prompt_change=received)
