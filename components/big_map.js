// The big map's frontend (Streamlit Components v2), loaded by big_map.py. The points come as one binary payload
// (big_map.py `encode_points`): float32 x and y, uint8/uint16 category codes, no JSON per point. They are drawn by
// splatting squares into one RGBA buffer on a 2-D canvas: ~20 ms a frame for 1,000,000 points on two slow cores,
// where WebGL through software GL (SwiftShader) took ~1 s (bench/bench_bigmap.py). A uniform grid over the points
// finds the one under the pointer and the candidates of a lasso.
// Drag pans, the wheel zooms; the lasso (toolbar, or shift-drag) or a click selects. The selected indices go back as
// the "selection" trigger (sorted, delta-encoded LEB128 varints in base64); a point the pointer rests on goes back as
// the "hover" trigger, and its thumbnail comes from the small tip component (big_map.py) as a data URL.
const maps = (window.__vfmBigMaps ??= new Map());  // the map's key → its view (the tip component and tests use it)
const HOVER_MS = 120;  // the pointer rests this long on a point before its image is asked for
const TIP = 128;  // px of the hover thumbnail
const GRID = 256;  // cells a side of the grid index
const PICK_PX = 6;  // a point this close to the pointer is under it

function parse(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "VFMB") throw new Error(`not a big-map payload (${magic})`);
  const length = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const n = header.n, start = 8 + length;
  // copies: a protobuf field's bytes may start at any offset, typed arrays need an aligned one
  const x = new Float32Array(bytes.slice(start, start + 4 * n).buffer);
  const y = new Float32Array(bytes.slice(start + 4 * n, start + 8 * n).buffer);
  const codeBytes = bytes.slice(start + 8 * n, start + 8 * n + header.codeBytes * n).buffer;
  const codes = header.codeBytes === 1 ? new Uint8Array(codeBytes) : new Uint16Array(codeBytes);
  return { header, x, y, codes };
}

function normalise(x, y) {
  // into [-1, 1], both axes by one scale, so the map keeps the projection's shape
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const a = x[i], b = y[i];
    if (a < x0) x0 = a; if (a > x1) x1 = a; if (b < y0) y0 = b; if (b > y1) y1 = b;
  }
  const scale = 2 / Math.max(x1 - x0, y1 - y0, 1e-12), cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const nx = new Float32Array(x.length), ny = new Float32Array(y.length);
  for (let i = 0; i < x.length; i++) { nx[i] = (x[i] - cx) * scale; ny[i] = (y[i] - cy) * scale; }
  return [nx, ny];
}

function cellOf(v) { return Math.min(GRID - 1, Math.max(0, Math.floor((v + 1) / 2 * GRID))); }

function gridIndex(x, y) {
  // counting sort of the points by cell: the points of cell c are order[start[c] .. start[c + 1])
  const n = x.length, cell = new Uint32Array(n), start = new Uint32Array(GRID * GRID + 1);
  for (let i = 0; i < n; i++) { cell[i] = cellOf(y[i]) * GRID + cellOf(x[i]); start[cell[i] + 1]++; }
  for (let c = 0; c < GRID * GRID; c++) start[c + 1] += start[c];
  const fill = start.slice(0, GRID * GRID), order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[fill[cell[i]]++] = i;
  return { start, order };
}

function candidates(view, x0, y0, x1, y1, visit) {
  // every point in the cells overlapping the data-space box [x0, x1] × [y0, y1]
  const { start, order } = view.grid;
  const cx0 = cellOf(x0), cx1 = cellOf(x1), cy0 = cellOf(y0), cy1 = cellOf(y1);
  for (let cy = cy0; cy <= cy1; cy++)
    for (let cx = cx0; cx <= cx1; cx++)
      for (let k = start[cy * GRID + cx], end = start[cy * GRID + cx + 1]; k < end; k++) visit(order[k]);
}

function rgba(hex, alpha) {  // "#rrggbb" → one little-endian RGBA pixel
  const v = parseInt(hex.slice(1), 16);
  return ((alpha << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
}

function encodeRows(points) {
  // sorted indices → deltas → LEB128 varints → base64: ~1–2 bytes a point for a lassoed region
  const sorted = Uint32Array.from(points).sort();
  const out = new Uint8Array(sorted.length * 5);
  let k = 0, previous = 0;
  for (const [i, index] of sorted.entries()) {
    if (i > 0 && index === previous) continue;
    let delta = index - previous;
    previous = index;
    while (delta >= 0x80) { out[k++] = (delta & 0x7f) | 0x80; delta >>>= 7; }
    out[k++] = delta;
  }
  let text = "";
  for (let i = 0; i < k; i += 0x8000) text += String.fromCharCode(...out.subarray(i, i + 0x8000));
  return btoa(text);
}

function button(label, title) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.title = title;
  Object.assign(b.style, { font: "inherit", fontSize: "0.85rem", padding: "2px 10px", borderRadius: "6px",
                           border: "1px solid rgba(128,128,128,.5)", background: "transparent", color: "inherit",
                           cursor: "pointer" });
  return b;
}

function element(tag, style, parent) {
  const node = document.createElement(tag);
  Object.assign(node.style, style);
  parent?.append(node);
  return node;
}

function build(parent, key) {
  const root = element("div", { position: "relative", width: "100%" }, parent);
  root.className = "vfm-big-map";
  const bar = element("div", { display: "flex", gap: "6px", alignItems: "center", marginBottom: "4px",
                               flexWrap: "wrap" }, root);
  const pan = button("Pan / zoom", "Drag to pan, scroll to zoom (shift-drag lassoes too)");
  const lasso = button("Lasso", "Drag around points to select them");
  const reset = button("Reset view", "Show every point");
  const clear = button("Clear selection", "Deselect every point");
  const status = element("span", { fontSize: "0.8rem", opacity: "0.75", marginLeft: "6px" });
  bar.append(pan, lasso, reset, clear, status);
  const box = element("div", { position: "relative", width: "100%", border: "1px solid rgba(128,128,128,.3)",
                               borderRadius: "6px", overflow: "hidden", touchAction: "none" }, root);
  const canvas = element("canvas", { display: "block", width: "100%", height: "100%", cursor: "grab" }, box);
  const legend = element("div", { display: "flex", flexWrap: "wrap", gap: "4px 12px", fontSize: "0.8rem",
                                  marginTop: "4px" }, root);
  const tip = element("div", { position: "fixed", display: "none", pointerEvents: "none", zIndex: "100000",
                               background: "white", color: "#222", padding: "3px", borderRadius: "4px",
                               boxShadow: "0 2px 8px rgba(0,0,0,.35)", fontSize: "0.75rem",
                               maxWidth: `${TIP + 6}px`, overflowWrap: "anywhere" }, document.body);
  tip.className = "vfm-big-map-tip";
  const tipImage = element("img", { display: "block", width: `${TIP}px`, height: `${TIP}px`, objectFit: "contain" },
                           tip);
  const tipText = element("div", {}, tip);
  const view = { key, root, box, canvas, legend, status, tip, tipImage, tipText, ctx: canvas.getContext("2d"),
                 n: 0, k: 1, tx: 0, ty: 0, selected: null, hovered: null, pointer: [0, 0], drag: null, lasso: null,
                 timer: null, frame: 0, send: null, timings: {}, onDraw: new Set(), mode: "panZoom" };
  const setMode = (name) => {
    view.mode = name;
    for (const [b, m] of [[pan, "panZoom"], [lasso, "lasso"]]) b.style.fontWeight = m === name ? "700" : "400";
    canvas.style.cursor = name === "lasso" ? "crosshair" : "grab";
    root.dataset.mode = name;
  };
  view.setMode = setMode;
  setMode("panZoom");
  pan.addEventListener("click", () => setMode("panZoom"));
  lasso.addEventListener("click", () => setMode("lasso"));
  reset.addEventListener("click", () => { fit(view); schedule(view); });
  clear.addEventListener("click", () => select(view, null));
  listen(view);
  new ResizeObserver(() => { if (view.x && resize(view)) schedule(view); }).observe(box);
  view.toPage = (index) => {  // page coordinates of point `index` (for tests)
    const r = canvas.getBoundingClientRect(), [px, py] = screen(view, view.x[index], view.y[index]);
    return [r.left + px, r.top + py];
  };
  return view;
}

const screen = (view, x, y) => [view.tx + x * view.k, view.ty - y * view.k];
const data = (view, px, py) => [(px - view.tx) / view.k, (view.ty - py) / view.k];
const local = (view, event) => {
  const r = view.canvas.getBoundingClientRect();
  return [event.clientX - r.left, event.clientY - r.top];
};

function resize(view) {
  const w = Math.max(1, Math.round(view.box.clientWidth)), h = Math.max(1, Math.round(view.box.clientHeight));
  if (w === view.canvas.width && h === view.canvas.height) return false;
  const first = !view.image;
  view.canvas.width = w;
  view.canvas.height = h;
  view.image = view.ctx.createImageData(w, h);
  view.pixels = new Uint32Array(view.image.data.buffer);
  if (first) fit(view);
  return true;
}

function fit(view) {
  const w = view.canvas.width, h = view.canvas.height;
  view.k = (Math.min(w, h) / 2) * 0.94;
  view.tx = w / 2;
  view.ty = h / 2;
}

function schedule(view) {
  if (!view.frame) view.frame = requestAnimationFrame(() => { view.frame = 0; render(view); });
}

function splat(view, i, colour, size, w, h) {
  const px = (view.tx + view.x[i] * view.k) | 0, py = (view.ty - view.y[i] * view.k) | 0;
  if (px < 0 || py < 0 || px > w - size || py > h - size) return;
  const pixels = view.pixels;
  for (let dy = 0, o = py * w + px; dy < size; dy++, o += w) for (let dx = 0; dx < size; dx++) pixels[o + dx] = colour;
}

function render(view) {
  const t0 = performance.now();
  const { x, y, codes, n, canvas } = view, w = canvas.width, h = canvas.height, pixels = view.pixels;
  pixels.fill(0);
  const size = n > 300000 ? 2 : n > 30000 ? 3 : 4, selected = view.selected;
  const colours = selected ? view.pale : view.colours;
  const k = view.k, tx = view.tx, ty = view.ty, right = w - size, bottom = h - size;
  for (let i = 0; i < n; i++) {  // the hot loop: one multiply-add per axis and a few stores
    const px = (tx + x[i] * k) | 0, py = (ty - y[i] * k) | 0;
    if (px < 0 || py < 0 || px > right || py > bottom) continue;
    const colour = colours[codes[i]];
    for (let dy = 0, o = py * w + px; dy < size; dy++, o += w) for (let dx = 0; dx < size; dx++) pixels[o + dx] = colour;
  }
  if (selected) for (const i of selected) splat(view, i, view.colours[codes[i]], size + 1, w, h);
  view.ctx.putImageData(view.image, 0, 0);
  overlay(view);
  const now = performance.now();
  view.timings.frame = now - t0;
  for (const f of view.onDraw) f(now);
}

function overlay(view) {
  const ctx = view.ctx;
  if (view.hovered !== null) {
    const [px, py] = screen(view, view.x[view.hovered], view.y[view.hovered]);
    ctx.beginPath();
    ctx.arc(px + 1, py + 1, 6, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#111";
    ctx.stroke();
  }
  if (view.lasso && view.lasso.length > 1) {
    ctx.beginPath();
    ctx.moveTo(...view.lasso[0]);
    for (const p of view.lasso) ctx.lineTo(...p);
    ctx.closePath();
    ctx.fillStyle = "rgba(30,30,30,.08)";
    ctx.fill();
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#222";
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

function nearest(view, px, py) {
  const [dx, dy] = data(view, px, py), r = PICK_PX / view.k;
  let best = null, bestD = r * r;
  candidates(view, dx - r, dy - r, dx + r, dy + r, (i) => {
    const d = (view.x[i] - dx) ** 2 + (view.y[i] - dy) ** 2;
    if (d <= bestD) { bestD = d; best = i; }
  });
  return best;
}

function inLasso(view, polygon) {
  // data-space polygon; candidates from the grid cells under its bounding box, then the even-odd rule
  const poly = polygon.map(([px, py]) => data(view, px, py));
  const xs = poly.map((p) => p[0]), ys = poly.map((p) => p[1]);
  const picked = [];
  candidates(view, Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys), (i) => {
    const px = view.x[i], py = view.y[i];
    let inside = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [xa, ya] = poly[a], [xb, yb] = poly[b];
      if (ya > py !== yb > py && px < ((xb - xa) * (py - ya)) / (yb - ya) + xa) inside = !inside;
    }
    if (inside) picked.push(i);
  });
  return picked;
}

function select(view, points) {
  view.selected = points && points.length ? Uint32Array.from(points).sort() : null;
  const count = view.selected ? view.selected.length : 0;
  showStatus(view);
  schedule(view);
  view.send?.("selection", { count, rows: count ? encodeRows(view.selected) : "", digest: view.header.digest });
}

function hover(view, index) {
  if (index === view.hovered) return;
  view.hovered = index;
  view.tip.style.display = "none";
  clearTimeout(view.timer);
  if (index !== null) view.timer = setTimeout(() => { if (view.hovered === index) view.send?.("hover", index); },
                                              HOVER_MS);
  schedule(view);
}

function listen(view) {
  const canvas = view.canvas;
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !view.x) return;
    event.preventDefault();
    canvas.setPointerCapture?.(event.pointerId);
    const at = local(view, event);
    if (view.mode === "lasso" || event.shiftKey) view.lasso = [at];
    else view.drag = { at, tx: view.tx, ty: view.ty, moved: false };
    hover(view, null);
  });
  canvas.addEventListener("pointermove", (event) => {
    view.pointer = [event.clientX, event.clientY];
    if (!view.x) return;
    const at = local(view, event);
    if (view.lasso) {
      const last = view.lasso[view.lasso.length - 1];
      if (Math.hypot(at[0] - last[0], at[1] - last[1]) >= 2) view.lasso.push(at);
      schedule(view);
    } else if (view.drag) {
      const d = view.drag;
      d.moved ||= Math.hypot(at[0] - d.at[0], at[1] - d.at[1]) > 3;
      view.tx = d.tx + at[0] - d.at[0];
      view.ty = d.ty + at[1] - d.at[1];
      schedule(view);
    } else {
      hover(view, nearest(view, ...at));
      if (view.tip.style.display === "block") place(view);
    }
  });
  const end = (event) => {
    if (view.lasso) {
      const polygon = view.lasso;
      view.lasso = null;
      if (polygon.length > 2) select(view, inLasso(view, polygon));
      else schedule(view);
    } else if (view.drag) {
      const { moved } = view.drag;
      view.drag = null;
      if (!moved) {
        const index = nearest(view, ...local(view, event));
        select(view, index === null ? null : [index]);
      }
    }
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", () => { view.lasso = view.drag = null; schedule(view); });
  canvas.addEventListener("pointerleave", () => { if (!view.drag && !view.lasso) hover(view, null); });
  canvas.addEventListener("wheel", (event) => {
    if (!view.x) return;
    event.preventDefault();
    const [px, py] = local(view, event), factor = Math.exp(-event.deltaY * 0.0015);
    view.tx = px - (px - view.tx) * factor;
    view.ty = py - (py - view.ty) * factor;
    view.k *= factor;
    schedule(view);
  }, { passive: false });
}

function place(view) {
  const [x, y] = view.pointer, w = TIP + 6, h = view.tip.offsetHeight || TIP + 6;
  view.tip.style.left = `${x + w + 24 < window.innerWidth ? x + 16 : Math.max(4, x - w - 16)}px`;
  view.tip.style.top = `${y + h + 24 < window.innerHeight ? y + 16 : Math.max(4, y - h - 16)}px`;
}

function showStatus(view) {
  const n = view.n.toLocaleString("en-US"), count = view.selected ? view.selected.length : 0;
  view.status.textContent = count ? `${n} points · ${count.toLocaleString("en-US")} selected` : `${n} points`;
  view.root.dataset.selected = String(count);
}

function drawLegend(view, header) {
  view.legend.replaceChildren();
  if (!header.classes.length || header.classes.length > 40) return;
  for (const [i, name] of header.classes.entries()) {
    const chip = element("span", {}, view.legend);
    element("span", { display: "inline-block", width: "10px", height: "10px", borderRadius: "50%",
                      background: header.colors[i % header.colors.length], marginRight: "4px" }, chip);
    chip.append(document.createTextNode(name));
  }
}

function load(view, bytes) {
  const t0 = performance.now();
  const { header, x, y, codes } = parse(bytes);
  [view.x, view.y] = normalise(x, y);
  view.codes = codes;
  view.n = header.n;
  view.header = header;
  const palette = header.classes.map((_, i) => header.colors[i % header.colors.length]);
  view.colours = Uint32Array.from(palette.length ? palette : ["#1f77b4"], (c) => rgba(c, 255));
  view.pale = Uint32Array.from(palette.length ? palette : ["#1f77b4"], (c) => rgba(c, 45));
  view.grid = gridIndex(view.x, view.y);
  view.selected = null;
  view.hovered = null;
  const t1 = performance.now();
  view.box.style.height = `${header.height}px`;
  view.image = null;
  view.canvas.width = view.canvas.height = 0;
  resize(view);
  drawLegend(view, header);
  showStatus(view);
  render(view);
  view.timings = { parse: t1 - t0, draw: performance.now() - t1, frame: view.timings.frame };
  view.root.dataset.drawn = "1";
  view.root.dataset.n = String(header.n);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const length = new DataView(data.buffer, data.byteOffset, 8).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(data.subarray(8, 8 + length)));
  let view = maps.get(header.key);
  if (!view || !parentElement.contains(view.root)) {
    view?.tip.remove();
    view = build(parentElement, header.key);
    maps.set(header.key, view);
  }
  view.send = (event, value) => setTriggerValue(event, value);
  if (header.digest !== view.header?.digest || data.byteLength !== view.bytes) {
    view.bytes = data.byteLength;
    load(view, data);
  }
  view.ready = Promise.resolve();
  return () => {
    if (maps.get(header.key) === view) {
      view.tip.remove();
      maps.delete(header.key);
    }
  };
}

// The tip component (big_map.py `_TIP_JS`) calls this with the image of the point the pointer rests on; it is
// shown beside the pointer if the pointer is still there.
window.__vfmBigMapTip = (data) => {
  const view = maps.get(data.map);
  if (!view || view.hovered !== data.index || !data.image) return;
  view.tipImage.src = data.image;
  view.tipText.textContent = data.caption;
  view.tip.dataset.index = String(data.index);
  view.tip.style.display = "block";
  place(view);
};
