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

import streamlit as st

from core.analysis.masks import Prompt

POSITIVE, NEGATIVE, BOX = "#22c55e", "#ef4444", "#f59e0b"  # green, red, amber
RADIUS = 6  # px of a point's marker at full size
DRAG_PX = 5  # a press that moves further than this is a box, not a point

_JS = r"""
const SVG = "http://www.w3.org/2000/svg";
const views = new WeakMap();  // parentElement → its view: the widget is built once, then updated

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function shape(prompt, data, cls) {
  const { width: W, height: H, colors } = data;
  if (prompt.kind === "box") {
    const [x0, y0, x1, y1] = prompt.xy;
    return svg("rect", { x: x0 * W, y: y0 * H, width: (x1 - x0) * W, height: (y1 - y0) * H, fill: "none",
                         stroke: colors.box, "stroke-width": 2.5, class: `box ${cls}` });
  }
  return svg("circle", { cx: prompt.xy[0] * W, cy: prompt.xy[1] * H, r: data.radius, stroke: "#ffffff",
                         "stroke-width": 2, fill: prompt.positive ? colors.positive : colors.negative,
                         class: `point ${prompt.positive ? "positive" : "negative"} ${cls}` });
}

function build(parent) {
  const root = document.createElement("div");
  root.className = "vfm-prompt-canvas";
  root.setAttribute("role", "application");
  root.setAttribute("aria-label", "Image: click adds a point, right-click a negative point, drag draws a box");
  Object.assign(root.style, { position: "relative", maxWidth: "100%", touchAction: "none", cursor: "crosshair",
                              userSelect: "none", webkitUserSelect: "none", lineHeight: "0" });
  const img = document.createElement("img");
  img.draggable = false;
  img.alt = "";
  Object.assign(img.style, { display: "block", width: "100%", height: "100%", pointerEvents: "none" });
  const layer = svg("svg", { preserveAspectRatio: "none" });
  Object.assign(layer.style, { position: "absolute", inset: "0", width: "100%", height: "100%",
                               pointerEvents: "none", overflow: "visible" });
  const drawn = svg("g", { class: "prompts" }), pending = svg("g", { class: "pending" });
  const band = svg("rect", { class: "band", fill: "rgba(245,158,11,0.12)", "stroke-dasharray": "6 4",
                             "stroke-width": 2, display: "none" });
  layer.append(drawn, pending, band);
  root.append(img, layer);
  parent.appendChild(root);
  const view = { root, img, layer, drawn, pending, band, drag: null, data: null, send: null, shownSeq: -1 };

  const at = (event) => {
    const r = root.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((event.clientX - r.left) / r.width), clamp((event.clientY - r.top) / r.height)];
  };
  root.addEventListener("contextmenu", (event) => event.preventDefault());
  root.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.button !== 2) return;
    event.preventDefault();
    root.setPointerCapture?.(event.pointerId);
    const negative = event.button === 2 || event.ctrlKey;  // ctrl-click: a Mac's right click
    view.drag = { start: at(event), x: event.clientX, y: event.clientY, negative, moved: false };
  });
  root.addEventListener("pointermove", (event) => {
    const drag = view.drag;
    if (!drag) return;
    drag.moved ||= Math.hypot(event.clientX - drag.x, event.clientY - drag.y) > view.data.dragPx;
    if (!drag.moved) return;
    const [x0, y0] = drag.start, [x1, y1] = at(event), { width: W, height: H, colors } = view.data;
    Object.entries({ x: Math.min(x0, x1) * W, y: Math.min(y0, y1) * H, width: Math.abs(x1 - x0) * W,
                     height: Math.abs(y1 - y0) * H, stroke: colors.box, display: "inline" })
      .forEach(([k, v]) => band.setAttribute(k, String(v)));
  });
  const end = (event, cancelled) => {
    const drag = view.drag;
    view.drag = null;
    band.setAttribute("display", "none");
    if (!drag || cancelled) return;
    let prompt;
    if (drag.moved) {
      const [x0, y0] = drag.start, [x1, y1] = at(event), r = view.root.getBoundingClientRect();
      if (Math.abs(x1 - x0) * r.width < 3 || Math.abs(y1 - y0) * r.height < 3) return;  // a line is no box
      prompt = { kind: "box", xy: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)] };
    } else {
      prompt = { kind: "point", xy: drag.start, positive: !drag.negative && !view.data.negative };
    }
    view.pending.appendChild(shape(prompt, view.data, "pending"));
    view.send(prompt);
  };
  root.addEventListener("pointerup", (event) => end(event, false));
  root.addEventListener("pointercancel", (event) => end(event, true));
  return view;
}

function drawPrompts(view) {
  view.drawn.replaceChildren(...view.data.prompts.map((p) => shape(p, view.data, "drawn")));
  view.pending.replaceChildren();
  view.shownSeq = view.data.seq;
  view.root.dataset.seq = String(view.data.seq);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const view = views.get(parentElement) ?? build(parentElement);
  views.set(parentElement, view);
  view.send = (prompt) => setTriggerValue("prompt", prompt);
  const first = view.data === null;
  view.data = data;
  view.root.style.width = `${data.width}px`;
  view.root.style.aspectRatio = `${data.width} / ${data.height}`;
  view.layer.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
  if (first || view.img.getAttribute("src") === data.image) {
    if (first) view.img.src = data.image;
    drawPrompts(view);
    return;
  }
  const next = new Image(), url = data.image;  // swap the background once decoded: the old one stays until then
  next.src = url;
  next.decode().catch(() => {}).then(() => {
    if (view.data.image !== url) return;  // a newer answer came meanwhile
    view.img.src = url;
    drawPrompts(view);
  });
}
"""

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
        prompt = gesture_prompt((st.session_state.get(key) or {}).get("prompt"), frame.image_size)
        if prompt is not None:
            on_prompt(prompt)

    _component(data=data, key=key, on_prompt_change=received)
