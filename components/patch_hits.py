"""Patch Search's results, drawn by the browser: a Streamlit Components v2 widget (patch_hits.js; in the page, no
iframe) gets, in one binary payload, each result image's JPEG bytes (the file itself when the browser can draw it as
it is: `core.data.browser_ready_size`), each hit's heat map as its (h, w) float32 cosines and its layout
(`core.patch_index.HitLayout`); it decodes the images off the main thread (`createImageBitmap`) and draws every
crop and heat picture on canvases.

Why not `st.image` per hit: the server then decoded, shrank, coloured and re-encoded 20 pictures a click, and the
browser fetched them one by one: ~340 ms p50 from a click to the top-20 on screen at 10,000 images, of which ~150 ms
drawing on the server (bench/bench_patch_search.py --browser). The heat picture is the recipe of
`core.analysis.matching.overlay_similarity` (bilinear cosines, Viridis from their min to max, blended), the crop the
image's own pixels enlarged by nearest neighbour; tests/browser/test_patch_search.py compares the canvases with them.

Payload (`components.framing`, magic b"VFMH"): the JSON header, then the heat maps (float32, in hit order), then the
images' bytes. The header: key, digest, columns, alpha, colours (the Viridis table, 256 × 3), images
[{offset, length}] (offsets from the start of the images' bytes), hits [{caption, image, grid, heat (offset in
floats), layout} or {caption, error}].
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from components.framing import frame, unframe
from core.analysis.imaging import colour_table
from core.patch_index import HitLayout

MAGIC = b"VFMH"
_JS = (Path(__file__).parent / "patch_hits.js").read_text(encoding="utf-8")
_hits = st.components.v2.component("vfm_patch_hits", js=_JS)


@dataclass(frozen=True)
class HitCard:
    """One result: its caption, and either its image (an index into the payload's images), heat map and layout, or
    why its image cannot be shown."""

    caption: str
    image: int | None = None
    heat: np.ndarray | None = None  # (h, w) float32 cosines, NaN where nothing is stored
    layout: HitLayout | None = None
    error: str | None = None


def encode_hits(cards: list[HitCard], images: list[bytes], *, key: str, columns: int, alpha: float) -> bytes:
    """The widget's payload (see the module's docstring)."""
    heats, hits, offset = [], [], 0
    for card in cards:
        if card.error is not None or card.heat is None or card.layout is None or card.image is None:
            hits.append({"caption": card.caption, "error": card.error or "the image cannot be read"})
            continue
        values = np.asarray(card.heat, np.float32)
        filled = np.where(np.isnan(values), np.nanmin(values), values).astype(np.float32)  # nothing stored: the min
        heats.append(filled.tobytes())
        hits.append({"caption": card.caption, "image": card.image, "grid": list(filled.shape), "heat": offset,
                     "layout": asdict(card.layout)})  # fmt: skip
        offset += filled.size
    starts = np.concatenate([[0], np.cumsum([len(b) for b in images])]).tolist()
    body = b"".join(heats) + b"".join(images)
    header = {
        "key": key, "columns": columns, "alpha": alpha, "colours": colour_table("Viridis").ravel().tolist(),
        "images": [{"offset": int(starts[i]), "length": len(b)} for i, b in enumerate(images)], "hits": hits,
        "digest": hashlib.blake2b(body + json.dumps(hits).encode(), digest_size=12).hexdigest(),
    }  # fmt: skip
    return frame(MAGIC, header, body)


def decode_hits(payload: bytes) -> tuple[dict, list[np.ndarray | None], list[bytes]]:
    """The inverse of `encode_hits`: (header, each hit's filled heat map or None, each image's bytes)."""
    header, start = unframe(MAGIC, payload, "patch-hits")
    floats = sum(h["grid"][0] * h["grid"][1] for h in header["hits"] if "grid" in h)
    values = np.frombuffer(payload, np.float32, floats, start)
    heats = [
        values[h["heat"] : h["heat"] + h["grid"][0] * h["grid"][1]].reshape(h["grid"]) if "grid" in h else None
        for h in header["hits"]
    ]
    first = start + 4 * floats
    images = [payload[first + i["offset"] : first + i["offset"] + i["length"]] for i in header["images"]]
    return header, heats, images


def show_hits(cards: list[HitCard], images: list[bytes], *, key: str, columns: int, alpha: float = 0.5) -> None:
    """The results grid: `columns` cards a row, each its crop above its heat picture and its caption."""
    _hits(data=encode_hits(cards, images, key=key, columns=columns, alpha=alpha), key=f"{key}_hits")
