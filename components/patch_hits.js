// Patch Search's results grid (Streamlit Components v2), loaded by patch_hits.py. One binary payload a search: the
// result images' JPEG bytes, each hit's heat map (float32 cosines on its patch grid) and its layout (boxes in px, from
// core/patch_index.py `hit_layout`). The images are decoded off the main thread (createImageBitmap, once each,
// each hit drawn as soon as its image is) and drawn on two canvases:
//   crop: the image's own pixels around the hit, the hit outlined, enlarged by nearest neighbour (row i of the
//         crop_size picture is source row floor(i * h / H), as the server's numpy indexing did);
//   heat: the image shrunk by the canvas under the heat map: the cosines resized bilinear (half-pixel centres, edges
//         clamped: torch's align_corners=False), coded 0..255 from their min to max (truncated), coloured by the
//         Viridis table, blended at `alpha` by the canvas (within a level of numpy's rounding; reading the pixels
//         back to blend them here took 3× as long): `core.analysis.matching.overlay_similarity`'s picture.
// When every picture of a payload is drawn, the view's root gets data-drawn = the payload's digest and
// window.__vfmPatchHits[key] = {digest, count, at: performance.now()} (the benchmark's and the tests' probe).
const views = new Map();  // the widget's key → its view
const RED = "rgb(255, 43, 43)";
window.__vfmPatchHits ??= {};

function parse(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "VFMH") throw new Error(`not a patch-hits payload (${magic})`);
  const length = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const floats = header.hits.reduce((n, h) => n + (h.grid ? h.grid[0] * h.grid[1] : 0), 0);
  const start = 8 + length;
  const heats = new Float32Array(bytes.slice(start, start + 4 * floats).buffer);  // a copy: aligned
  const first = start + 4 * floats;
  const images = header.images.map((im) => bytes.subarray(first + im.offset, first + im.offset + im.length));
  return { header, heats, images };
}

function build(parent) {
  const root = document.createElement("div");
  root.className = "vfm-patch-hits";
  Object.assign(root.style, { display: "grid", gap: "1rem", alignItems: "start", width: "100%" });
  parent.appendChild(root);
  return { root, digest: null, seq: 0 };
}

function cardOf(hit) {
  const figure = document.createElement("figure");
  figure.className = "vfm-patch-hit";
  Object.assign(figure.style, { margin: "0", minWidth: "0" });
  const caption = document.createElement("figcaption");
  caption.textContent = hit.caption;
  Object.assign(caption.style, { fontSize: "0.875rem", opacity: "0.7", marginTop: "0.25rem", wordBreak: "break-word" });
  if (hit.error) {
    const note = document.createElement("div");
    note.setAttribute("role", "alert");
    note.textContent = `${hit.caption.split(" · row ")[0]}: the image cannot be read (${hit.error}).`;
    Object.assign(note.style, { padding: "0.75rem", borderRadius: "0.5rem", background: "rgba(255, 193, 7, 0.15)",
                                color: "inherit", fontSize: "0.875rem" });
    figure.append(note);
    return { figure };
  }
  const [ch, cw] = hit.layout.crop_size, [hh, hw] = hit.layout.heat_size;
  const crop = document.createElement("canvas"), heat = document.createElement("canvas");
  Object.assign(crop, { width: cw, height: ch, className: "crop" });
  Object.assign(heat, { width: hw, height: hh, className: "heat" });
  crop.setAttribute("aria-label", `the matched patch, ${hit.caption}`);
  heat.setAttribute("aria-label", `the image coloured by the cosine of each patch to the query, ${hit.caption}`);
  Object.assign(crop.style, { display: "block", margin: "0 auto 0.5rem", maxWidth: "100%", height: "auto",
                              imageRendering: "pixelated" });
  Object.assign(heat.style, { display: "block", width: "100%", height: "auto" });
  figure.append(crop, heat, caption);
  return { figure, crop, heat };
}

function outline(ctx, [x0, y0, x1, y1], t) {
  ctx.fillStyle = RED;
  ctx.fillRect(x0, y0, x1 - x0, t);
  ctx.fillRect(x0, y1 - t, x1 - x0, t);
  ctx.fillRect(x0, y0, t, y1 - y0);
  ctx.fillRect(x1 - t, y0, t, y1 - y0);
}

function drawCrop(canvas, bitmap, layout) {
  const [x0, y0, x1, y1] = layout.crop, w = x1 - x0, h = y1 - y0;
  const scratch = new OffscreenCanvas(w, h), sctx = scratch.getContext("2d", { willReadFrequently: true });
  sctx.drawImage(bitmap, x0, y0, w, h, 0, 0, w, h);  // 1:1, the decoded pixels
  outline(sctx, layout.crop_box, layout.crop_line);
  const src = sctx.getImageData(0, 0, w, h).data;
  const [H, W] = layout.crop_size, out = new ImageData(W, H), dst = out.data;
  const cols = new Int32Array(W);
  for (let j = 0; j < W; j++) cols[j] = Math.min(Math.floor(j * (w / W)), w - 1);
  for (let i = 0; i < H; i++) {
    const row = Math.min(Math.floor(i * (h / H)), h - 1) * w;
    for (let j = 0; j < W; j++) {
      const s = 4 * (row + cols[j]), d = 4 * (i * W + j);
      dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]; dst[d + 3] = 255;
    }
  }
  canvas.getContext("2d").putImageData(out, 0, 0);
}

function axis(out, size) {
  // torch's bilinear, align_corners=False: source = (i + 0.5) * size / out - 0.5, clamped at 0 and at the last
  const i0 = new Int32Array(out), i1 = new Int32Array(out), f = new Float64Array(out), scale = size / out;
  for (let i = 0; i < out; i++) {
    const s = Math.max(0, (i + 0.5) * scale - 0.5), a = Math.floor(s);
    i0[i] = a; i1[i] = a < size - 1 ? a + 1 : a; f[i] = s - a;
  }
  return { i0, i1, f };
}

function drawHeat(canvas, source, values, grid, layout, alpha, colours) {
  const [H, W] = layout.heat_size, [gh, gw] = grid;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, W, H);  // the image shrunk (a no-op when it is the heat picture's size)
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = Math.max(hi - lo, 1e-12), xs = axis(W, gw), ys = axis(H, gh), line = new Float64Array(gw);
  const layer = new ImageData(W, H), px = new Uint32Array(layer.data.buffer);
  const rgba = new Uint32Array(256);  // the colour table as little-endian RGBA words, opaque
  for (let c = 0; c < 256; c++) rgba[c] = (255 << 24 | colours[3 * c + 2] << 16 | colours[3 * c + 1] << 8 | colours[3 * c]) >>> 0;
  for (let y = 0, p = 0; y < H; y++) {
    const r0 = ys.i0[y] * gw, r1 = ys.i1[y] * gw, fy = ys.f[y];
    for (let c = 0; c < gw; c++) line[c] = (1 - fy) * values[r0 + c] + fy * values[r1 + c];  // a separable bilinear
    for (let x = 0; x < W; x++, p++) {
      const fx = xs.f[x], code = ((1 - fx) * line[xs.i0[x]] + fx * line[xs.i1[x]] - lo) / span * 255;
      px[p] = rgba[code <= 0 ? 0 : code >= 255 ? 255 : code | 0];  // truncated, as numpy's astype(uint8)
    }
  }
  const scratch = (drawHeat.scratch ??= new OffscreenCanvas(1, 1));
  scratch.width = W; scratch.height = H;
  scratch.getContext("2d").putImageData(layer, 0, 0);
  ctx.globalAlpha = alpha;  // the colours blended over the image by the canvas
  ctx.drawImage(scratch, 0, 0);
  ctx.globalAlpha = 1;
  outline(ctx, layout.heat_box, layout.heat_line);
}

async function decode(bytes) {
  try {  // pixels as PIL decodes them: no colour profile applied
    return await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }), { colorSpaceConversion: "none" });
  } catch (error) {
    return null;
  }
}

async function draw(view, parsed, key) {
  const { header, heats, images } = parsed, seq = ++view.seq;
  view.root.dataset.drawn = "";
  view.root.style.gridTemplateColumns = `repeat(${header.columns}, minmax(0, 1fr))`;
  const cards = header.hits.map((hit) => cardOf(hit)), colours = Uint8Array.from(header.colours);
  view.root.replaceChildren(...cards.map((c) => c.figure));
  const bitmaps = images.map(decode);  // decoded off this thread; each hit is drawn as soon as its image is ready
  await Promise.all(header.hits.map(async (hit, i) => {
    if (hit.error) return;
    const bitmap = await bitmaps[hit.image], card = cards[i];
    if (seq !== view.seq) return;  // a newer payload came meanwhile
    if (!bitmap) {
      card.figure.replaceChildren(...cardOf({ caption: hit.caption, error: "the browser cannot decode it" }).figure.childNodes);
      return;
    }
    const values = heats.subarray(hit.heat, hit.heat + hit.grid[0] * hit.grid[1]);
    drawCrop(card.crop, bitmap, hit.layout);
    drawHeat(card.heat, bitmap, values, hit.grid, hit.layout, header.alpha, colours);
  }));
  if (seq !== view.seq) return;
  view.root.dataset.drawn = header.digest;
  window.__vfmPatchHits[key] = { digest: header.digest, count: header.hits.length, at: performance.now() };
}

export default function (component) {
  const { data, parentElement } = component;
  const parsed = parse(data);
  const key = parsed.header.key;
  let view = views.get(key);
  if (!view || !parentElement.contains(view.root)) {
    view?.root.remove();
    view = build(parentElement);
    views.set(key, view);
  }
  if (parsed.header.digest !== view.digest) {
    view.digest = parsed.header.digest;
    draw(view, parsed, key);
  }
  return () => {
    if (views.get(key) === view) views.delete(key);
  };
}
