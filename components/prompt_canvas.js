// The SAM prompt widget's frontend (Streamlit Components v2), loaded by prompt_canvas.py: click adds a point,
// right-click (or ctrl-click) a negative point, drag draws a box; each gesture is sent as the "prompt" trigger,
// in fractions of the shown image's width and height. The picture is the image (data.image) with an optional mask
// layer over it (data.layer, a PNG transparent outside the masks, or ""): a click changes the layer alone. The layer is
// the widget's first <img> (stacked over the image by its position): the redraw probes of tests/browser/drive.py
// and bench/bench_load.py watch the first <img>'s src for a click's new masks. With data.imageId the image is sent
// once: the widget keeps it here and says so in its "shown" state; the server then sends "" in its place, until the
// widget asks again (shown: null) because it lost it.
const SVG = "http://www.w3.org/2000/svg";
const views = new WeakMap();  // parentElement → its view: the widget is built once, then updated
const images = new Map();  // imageId → data URL, the most recent few: they outlive a view (the page rebuilds it)
const KEEP_IMAGES = 4;

function imageOf(data) {
  if (!data.imageId) return data.image;
  if (data.image) {
    images.delete(data.imageId);
    images.set(data.imageId, data.image);
    while (images.size > KEEP_IMAGES) images.delete(images.keys().next().value);
  }
  return images.get(data.imageId) ?? "";
}

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
  const img = document.createElement("img"), layerImg = document.createElement("img");
  for (const node of [img, layerImg]) {
    node.draggable = false;
    node.alt = "";
    Object.assign(node.style, { display: "block", width: "100%", height: "100%", pointerEvents: "none" });
  }
  layerImg.className = "layer";
  Object.assign(layerImg.style, { position: "absolute", inset: "0", visibility: "hidden" });
  const layer = svg("svg", { preserveAspectRatio: "none" });  // the prompts' layer, over both images
  Object.assign(layer.style, { position: "absolute", inset: "0", width: "100%", height: "100%",
                               pointerEvents: "none", overflow: "visible" });
  const drawn = svg("g", { class: "prompts" }), pending = svg("g", { class: "pending" });
  const band = svg("rect", { class: "band", fill: "rgba(245,158,11,0.12)", "stroke-dasharray": "6 4",
                             "stroke-width": 2, display: "none" });
  layer.append(drawn, pending, band);
  root.append(layerImg, img, layer);
  parent.appendChild(root);
  const view = { root, img, layerImg, layerUrl: "", layer, drawn, pending, band, drag: null, data: null, send: null,
                 confirm: null, confirmed: null, shownSeq: -1 };

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

function showLayer(view, url) {
  view.layerUrl = url;
  if (url) view.layerImg.src = url;
  else view.layerImg.removeAttribute("src");
  view.layerImg.style.visibility = url ? "visible" : "hidden";
}

function drawPrompts(view) {
  view.drawn.replaceChildren(...view.data.prompts.map((p) => shape(p, view.data, "drawn")));
  view.pending.replaceChildren();
  view.shownSeq = view.data.seq;
  view.root.dataset.seq = String(view.data.seq);
}

export default function (component) {
  const { data, parentElement, setTriggerValue, setStateValue } = component;
  const view = views.get(parentElement) ?? build(parentElement);
  views.set(parentElement, view);
  view.send = (prompt) => setTriggerValue("prompt", prompt);
  const url = imageOf(data), layerUrl = data.layer || "";
  if (!url) {  // the server left the image out, but this page no longer has it: ask for it again
    view.confirmed = null;
    setStateValue("shown", null);
    return;
  }
  view.confirm = () => {  // once the image is on screen: it need not be sent again
    if (data.imageId && view.confirmed !== data.imageId) setStateValue("shown", (view.confirmed = data.imageId));
  };
  const first = view.data === null;
  view.data = { ...data, image: url };
  view.root.style.width = `${data.width}px`;
  view.root.style.aspectRatio = `${data.width} / ${data.height}`;
  view.layer.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
  if (first) {
    view.img.src = url;
    showLayer(view, layerUrl);
  }
  const newImage = url !== view.img.getAttribute("src"), newLayer = layerUrl !== view.layerUrl;
  if (!newImage && !newLayer) {
    drawPrompts(view);
    view.confirm();
    return;
  }
  // swap the picture once its new parts are decoded: the old one stays until then
  const decoded = [newImage && url, newLayer && layerUrl].filter(Boolean).map((u) => {
    const next = new Image();
    next.src = u;
    return next.decode().catch(() => {});
  });
  Promise.all(decoded).then(() => {
    if (view.data.image !== url || (view.data.layer || "") !== layerUrl) return;  // a newer answer came meanwhile
    view.img.src = url;
    showLayer(view, layerUrl);
    drawPrompts(view);
    view.confirm();
  });
}
