"""A map of up to millions of points the browser can touch: pan, zoom, an image on hover, a lasso (or a click)
that selects, colours by class or by cluster.

A Streamlit Components v2 widget (in the page, no iframe, no package): big_map.js draws the points by splatting
squares into one pixel buffer on a 2-D canvas. Chosen by measurement in headless Chromium on this machine (2 CPU
cores, software GL, bench/bench_bigmap.py): regl-scatterplot 1.16.0 (WebGL) took ~1.1 s a zoom or pan frame and
3.5 s to first draw at 1,000,000 points under SwiftShader (~80 ms a frame even at 10,000 points), the canvas splat
~20 ms a frame. deck.gl through `st.pydeck_chart` was ruled out unmeasured: Streamlit sends a pydeck chart as the
deck's JSON text (a million JSON objects) and offers no lasso; Embedding Atlas's Streamlit widget is an iframe that
pulls litellm, sentence-transformers, accelerate, duckdb, fastapi and uvicorn into the server.

The points travel as one binary payload (`encode_points`): a small JSON header, then float32 x, float32 y and
uint8 (≤ 256 categories) or uint16 category codes — 9 or 10 bytes a point, sent once: a rerun that rebuilds the same
payload sends only its hash (Streamlit's message cache). A selection comes back as its sorted indices, delta-encoded
as LEB128 varints in base64 (`decode_rows`); a hovered point comes back as its index, and its thumbnail goes to the
browser in a second, tiny component, so the map's payload is never sent again for a hover.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from components.charts import class_colours
from components.framing import frame, unframe
from components.state import Slot
from core.analysis.imaging import data_url, to_jpeg

PLOTLY_MAX = 100_000  # up to this many points the views keep their plotly charts; beyond it, this map
HEIGHT = 560  # px of the map
TIP = 128  # px of the hover thumbnail
MAGIC = b"VFMB"
NO_LABEL = "(no label)"

# Components v2 takes a js path only inside an installed package's asset_dir: read the file, pass the text.
_JS = (Path(__file__).parent / "big_map.js").read_text(encoding="utf-8")
_TIP_JS = """// the hovered point's image, for the map (big_map.js shows it beside the pointer)
export default function ({ data }) { window.__vfmBigMapTip?.(data); }
"""

_map = st.components.v2.component("vfm_big_map", js=_JS)
_tip = st.components.v2.component("vfm_big_map_tip", js=_TIP_JS)


# ---- the payloads ---------------------------------------------------------------------------------
def encode_points(xy: np.ndarray, codes: np.ndarray, classes: list[str], *, key: str, height: int = HEIGHT) -> bytes:
    """(N, 2) coordinates and (N,) category codes in 0..C-1 (`classes` names them) → the map's payload:
    b"VFMB", uint32 LE header length, the JSON header (n, classes, colours, code width, digest, key, height) padded
    to 4 bytes, then float32 x (N), float32 y (N), codes as uint8 (C ≤ 256) or uint16 (N)."""
    xy = np.asarray(xy, np.float32)
    codes = np.asarray(codes)
    if xy.ndim != 2 or xy.shape[1] != 2 or codes.shape != (len(xy),):
        raise ValueError(f"Need (N, 2) coordinates and (N,) codes; got {xy.shape} and {codes.shape}.")
    if len(classes) > 65_536 or (codes.size and not 0 <= codes.min() <= codes.max() < max(len(classes), 1)):
        raise ValueError(f"Category codes must lie in 0..{len(classes) - 1} (at most 65,536 categories).")
    if not np.isfinite(xy).all():
        raise ValueError("The coordinates contain NaN or inf values.")
    width = np.uint8 if len(classes) <= 256 else np.uint16
    body = [np.ascontiguousarray(xy[:, 0]).tobytes(), np.ascontiguousarray(xy[:, 1]).tobytes()]
    body.append(codes.astype(width).tobytes())
    digest = hashlib.blake2b(b"".join(body) + json.dumps(classes).encode(), digest_size=12).hexdigest()
    header = {
        "n": len(xy), "classes": [str(c) for c in classes], "colors": _hex(class_colours(max(1, len(classes)))),
        "codeBytes": np.dtype(width).itemsize, "digest": digest, "key": key, "height": height,
    }  # fmt: skip
    return frame(MAGIC, header, b"".join(body))


def _hex(colours: list[str]) -> list[str]:
    """Plotly's colours ("#rrggbb" or "rgb(r, g, b)") as "#rrggbb", which regl-scatterplot reads."""
    out = []
    for c in colours:
        if c.startswith("rgb"):
            r, g, b = (round(float(v)) for v in c[c.index("(") + 1 : c.index(")")].split(",")[:3])
            c = f"#{r:02x}{g:02x}{b:02x}"
        out.append(c)
    return out


def decode_points(payload: bytes) -> tuple[np.ndarray, np.ndarray, dict]:
    """The inverse of `encode_points`: ((N, 2) float32 coordinates, (N,) codes, the header)."""
    header, start = unframe(MAGIC, payload, "big-map")
    n = header["n"]
    x = np.frombuffer(payload, np.float32, n, start)
    y = np.frombuffer(payload, np.float32, n, start + 4 * n)
    codes = np.frombuffer(payload, np.uint8 if header["codeBytes"] == 1 else np.uint16, n, start + 8 * n)
    return np.column_stack([x, y]), codes, header


def encode_rows(indices: np.ndarray) -> str:
    """Indices → sorted unique, delta-encoded as LEB128 varints, base64 (what the widget sends for a selection)."""
    deltas = np.diff(np.unique(np.asarray(indices, np.int64)), prepend=0)
    out = bytearray()
    for delta in deltas.tolist():
        while delta >= 0x80:
            out.append((delta & 0x7F) | 0x80)
            delta >>= 7
        out.append(delta)
    return base64.b64encode(bytes(out)).decode()


def decode_rows(text: str) -> np.ndarray:
    """The inverse of `encode_rows` (vectorised): (K,) int64 sorted indices. ValueError for a malformed payload."""
    raw = np.frombuffer(base64.b64decode(text, validate=True), np.uint8).astype(np.int64)
    if not raw.size:
        return np.zeros(0, np.int64)
    ends = np.flatnonzero(raw < 0x80)
    if not ends.size or ends[-1] != raw.size - 1 or np.diff(np.concatenate([[-1], ends])).max() > 5:
        raise ValueError("A malformed selection payload.")
    starts = np.concatenate([[0], ends[:-1] + 1])
    group = np.repeat(np.arange(ends.size), ends - starts + 1)
    shift = 7 * (np.arange(raw.size) - starts[group])
    return np.unique(np.cumsum(np.add.reduceat((raw & 0x7F) << shift, starts)))


def category_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Labels (None for none) → ((N,) int64 codes, the sorted category names); a missing label is NO_LABEL."""
    names = np.array([NO_LABEL if v is None else str(v) for v in labels], dtype=object)
    classes, codes = np.unique(names.astype(str), return_inverse=True)
    return codes, classes.tolist()


@st.cache_data(show_spinner="Clustering the map (k-means on its coordinates)…", max_entries=8)
def _map_clusters(digest: str, k: int, _xy: np.ndarray) -> np.ndarray:
    """(N,) cluster ids of k-means on the map's own 2-D coordinates, fitted on at most 50,000 random points (seed 0)
    and applied to all."""
    from sklearn.cluster import KMeans

    sample = np.random.default_rng(0).choice(len(_xy), min(len(_xy), 50_000), replace=False)
    return KMeans(k, n_init=1, random_state=0).fit(_xy[sample]).predict(_xy).astype(np.int64)


# ---- the widget -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _freeze_imported() -> bool:
    """Once per server: move every object alive now (nearly all of them the imported libraries' modules, classes and
    functions: ~0.6 million with torch and transformers) to the collector's permanent generation. Streamlit runs a
    full `gc.collect(2)` after every script run (`runner.postScriptGC`), holding the GIL while it walks them all:
    0.5–1.7 s on two loaded cores, during which the server sent nothing, so a lasso's images reached the browser
    only after it (bench/bench_bigmap.py --app). Objects that become garbage later are still freed."""
    gc.collect()
    gc.freeze()
    return True


def selected_points(key: str, n: int, digest: str) -> np.ndarray:
    """The points (indices into the map's payload) selected on the map `key`, empty when none or when the selection
    was made on other data (its digest differs)."""
    value = Slot(f"{key}_selection").get()
    if not isinstance(value, dict) or value.get("digest") != digest or not value.get("count"):
        return np.zeros(0, np.int64)
    try:
        rows = decode_rows(str(value.get("rows", "")))
    except ValueError:
        return np.zeros(0, np.int64)
    return rows[(rows >= 0) & (rows < n)]


def _received(key: str) -> None:
    """The widget's triggers → this session's state: the selection payload as sent, the hovered index."""
    state = Slot(f"{key}_map").get() or {}
    if isinstance(state.get("selection"), dict):
        Slot(f"{key}_selection").set(state["selection"])
    if isinstance(state.get("hover"), int):
        Slot(f"{key}_hovered").set(state["hover"])


def show_big_map(
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    key: str,
    image_of: Callable[[int], np.ndarray | None],
    caption_of: Callable[[int], str],
    show_selected: Callable[[np.ndarray], None],
    height: int = HEIGHT,
) -> None:
    """Every point of `xy` (N, 2) coloured by `labels` (N,) or by k-means clusters of the map; the image of a hovered
    point i is `image_of(i)` (HWC uint8, None when it cannot be read) captioned `caption_of(i)`; the selected
    points (sorted indices into `xy`) go to `show_selected`, which draws them. Runs as a fragment: a hover or a
    selection reruns only the map and what `show_selected` draws."""
    _freeze_imported()
    _map_fragment(np.asarray(xy, np.float32), np.asarray(labels, dtype=object), key, image_of, caption_of,
                  show_selected, height)  # fmt: skip


@st.fragment
def _map_fragment(xy, labels, key, image_of, caption_of, show_selected, height) -> None:
    left, right = st.columns([3, 1])
    colour = left.radio("Colour by", ("class", "cluster"), horizontal=True, key=f"{key}_colour",
                        format_func={"class": "Class", "cluster": "k-means clusters of the map"}.get)  # fmt: skip
    setting = (colour, int(right.number_input("Clusters", 2, 64, 12, key=f"{key}_k")) if colour == "cluster" else 0)
    memo = Slot(f"{key}_payload").get()  # a fragment rerun (hover, selection) gets the same arrays: no new payload
    if memo is None or memo[0] is not xy or memo[1] is not labels or memo[2] != setting:
        if colour == "cluster":
            digest = hashlib.blake2b(xy.tobytes(), digest_size=12).hexdigest()
            codes = _map_clusters(digest, setting[1], xy)
            classes = [f"cluster {i}" for i in range(setting[1])]
        else:
            codes, classes = category_codes(labels)
        payload = encode_points(xy, codes, classes, key=key, height=height)
        memo = (xy, labels, setting, payload, decode_points(payload)[2]["digest"])
        Slot(f"{key}_payload").set(memo)
    payload, digest = memo[3], memo[4]
    _map(data=payload, key=f"{key}_map", on_selection_change=lambda: _received(key),
         on_hover_change=lambda: _received(key))  # fmt: skip
    st.caption(
        "Drag to pan, scroll to zoom; **Lasso** (or shift-drag) selects the points inside, a click selects one. "
        "Rest the pointer on a point to see its image."
    )
    hovered = Slot(f"{key}_hovered").get()
    if isinstance(hovered, int) and 0 <= hovered < len(xy):
        image = image_of(hovered)
        url = data_url(to_jpeg(image, quality=85)) if image is not None else ""
        _tip(data={"map": key, "index": hovered, "image": url, "caption": caption_of(hovered)}, key=f"{key}_tip")
    show_selected(selected_points(key, len(xy), digest))
