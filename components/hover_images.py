"""Image thumbnails beside plotly's hover label.

Plotly hover labels hold text only, and Streamlit forwards no hover events, so a small Streamlit component
(Components v2: it runs in the page itself, no iframe) listens to `plotly_hover` on the charts whose
`layout.meta` it is given, and shows the hovered point's tile of one JPEG sprite sheet next to the cursor. The chart
keeps Streamlit's own click and lasso selection; side-by-side charts share one sprite. The hovered point's row is its
`customdata` (a number), or the last column of it. The component sits outside the chart's fragment, so selection reruns do not resend the sprite.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.analysis.imaging import data_url, sprite_sheet, to_jpeg

TILE = 64  # px of each thumbnail in the sprite; shown at twice that
MAX_IMAGES = 4_000  # ~1.5 MB of JPEG; charts with more points show hover text only (and say so)

_JS = r"""
const SHOWN = 2;  // tiles are shown at twice their size

function registry() { return (window.__vfmHoverThumbs ??= new Map()); }

function attach(id) {
  const metas = registry().get(id)?.data.metas ?? [];
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (!metas.includes(gd.layout?.meta) || gd.__vfmHoverThumbs || typeof gd.on !== "function") continue;
    gd.__vfmHoverThumbs = true;  // listeners look the thumbnails up at event time: they outlive re-renders
    gd.on("plotly_hover", (event) => show(registry().get(id), event));
    gd.on("plotly_unhover", () => hide(registry().get(id)));
  }
}

function show(state, event) {
  const point = event?.points?.[0];
  const custom = point?.customdata;  // the row itself, or a list with the row last
  const row = typeof custom === "number" ? custom : custom?.length ? Number(custom[custom.length - 1]) : undefined;
  const slot = state && row !== undefined ? state.slots.get(row) : undefined;
  if (slot === undefined) return hide(state);
  const { side, columns } = state.data, size = side * SHOWN, tip = state.tip;
  tip.style.backgroundPosition = `${-(slot % columns) * size}px ${-Math.floor(slot / columns) * size}px`;
  const x = event.event?.clientX ?? 0, y = event.event?.clientY ?? 0;
  tip.style.left = `${Math.max(4, x - size - 16)}px`;  // up and left of the cursor: plotly's label goes right
  tip.style.top = `${Math.max(4, y - size - 16)}px`;
  tip.dataset.row = String(row);
  tip.style.display = "block";
}

function hide(state) { if (state) { state.tip.style.display = "none"; delete state.tip.dataset.row; } }

export default function ({ data }) {
  const id = data.id;
  let state = registry().get(id);
  if (!state) {
    const tip = document.createElement("div");
    tip.className = "vfm-hover-thumb";
    Object.assign(tip.style, {
      position: "fixed", display: "none", pointerEvents: "none", zIndex: "100000",
      border: "2px solid white", borderRadius: "4px", boxShadow: "0 2px 8px rgba(0,0,0,.35)",
      backgroundRepeat: "no-repeat", backgroundColor: "#f0f0f0",
    });
    document.body.appendChild(tip);
    state = { tip, timer: setInterval(() => attach(id), 300) };
    registry().set(id, state);
  }
  if (state.data?.sprite !== data.sprite) {
    const size = data.side * SHOWN;
    Object.assign(state.tip.style, {
      width: `${size}px`, height: `${size}px`, backgroundImage: `url(${data.sprite})`,
      backgroundSize: `${data.columns * size}px auto`,
    });
    state.slots = new Map(data.rows.map((row, slot) => [row, slot]));
  }
  state.data = data;
  attach(id);
  return () => {
    clearInterval(state.timer);
    state.tip.remove();
    if (registry().get(id) === state) registry().delete(id);
  };
}
"""


_component = st.components.v2.component("vfm_hover_thumbnails", js=_JS)


@st.cache_data(show_spinner=False, max_entries=8)
def _sprite_url(digest: str, _images: list[np.ndarray], side: int) -> tuple[str, int]:
    sheet, columns = sprite_sheet(_images, side)
    return data_url(to_jpeg(sheet, quality=80)), columns


def hover_thumbnails(metas: list[str], rows: np.ndarray, images: list[np.ndarray], digest: str, key: str) -> bool:
    """Thumbnails on hover for the charts whose `layout.meta` is in `metas` (one sprite for all of them):
    `images[i]` is the picture of row `rows[i]` (each point's customdata, or its last column). `digest`
    names the images' content (for the cache). False, and nothing shown, beyond MAX_IMAGES points."""
    if len(rows) > MAX_IMAGES:
        return False
    url, columns = _sprite_url(digest, images, TILE)
    data = {"id": key, "metas": metas, "sprite": url, "side": TILE, "columns": columns, "rows": [int(r) for r in rows]}
    _component(data=data, key=key)
    return True
