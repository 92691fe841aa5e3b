// The SAM prompt widget's frontend (Streamlit Components v2), loaded by prompt_canvas.py: click adds a point,
// right-click (or ctrl-click) a negative point, drag draws a box; each gesture is sent as the "prompt" trigger,
// in fractions of the shown image's width and height.
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
