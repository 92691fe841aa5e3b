"""Patch Search's results widget (components/patch_hits.js) in Chromium, on payloads made here: its canvases hold
the pictures the recipes give. The crop is the image's own pixels around the hit, outlined, enlarged by nearest
neighbour; the heat picture is `overlay_similarity` of the shrunk image and the hit's heat map, outlined. A hit
whose image cannot be read, or that the browser cannot decode, is a note in its place.

The widget's module is loaded into a blank page and called as Streamlit calls it ({data, parentElement}); no
server is needed."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components import patch_hits
from components.patch_hits import HitCard, encode_hits
from core.analysis.matching import overlay_similarity
from core.patch_index import Hit, hit_layout

pytestmark = pytest.mark.browser
JS = (Path(patch_hits.__file__).parent / "patch_hits.js").read_text(encoding="utf-8")
RED = (255, 43, 43)
GRID = (16, 16)


def jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95, subsampling=0)
    return buffer.getvalue()


def render(browser, payload: bytes) -> tuple[object, list[dict]]:
    """A blank page with the widget drawn from `payload`; (page, each card's pictures and texts)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    module = base64.b64encode(JS.encode()).decode()
    page.set_content("<div id='host'></div>")
    page.add_script_tag(
        type="module",
        content=f"import render from 'data:text/javascript;base64,{module}'; window.__render = render;",
    )
    page.wait_for_function("typeof window.__render === 'function'")
    page.evaluate(
        "b64 => window.__render({data: Uint8Array.from(atob(b64), c => c.charCodeAt(0)), "
        "parentElement: document.getElementById('host')})",
        base64.b64encode(payload).decode(),
    )
    page.wait_for_function("document.querySelector('.vfm-patch-hits')?.dataset.drawn")
    cards = page.evaluate(
        """() => [...document.querySelectorAll('.vfm-patch-hit')].map(f => ({
          text: f.innerText, pictures: [...f.querySelectorAll('canvas')].map(c => c.toDataURL('image/png'))}))"""
    )
    for card in cards:
        card["pictures"] = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",")[1]))))[..., :3]
                            for u in card["pictures"]]  # fmt: skip
    return page, cards


def outlined(image: np.ndarray, box: tuple[int, ...], line: int) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = box
    for rows, cols in ((slice(y0, y0 + line), slice(x0, x1)), (slice(y1 - line, y1), slice(x0, x1)),
                       (slice(y0, y1), slice(x0, x0 + line)), (slice(y0, y1), slice(x1 - line, x1))):  # fmt: skip
        out[rows, cols] = RED
    return out


def test_the_canvases_hold_the_crop_and_the_heat_picture_of_the_recipes(browser):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)  # 8 × 8 px blocks: textured, JPEG-friendly
    photo = np.kron(blocks, np.ones((8, 8, 1), np.uint8))  # 480 × 640
    flat = np.full((480, 640, 3), (90, 120, 150), np.uint8)  # shrinks to itself under any filter
    heat = rng.standard_normal(GRID).astype(np.float32)
    heat[0, :4] = np.nan  # nothing stored there: drawn as the minimum
    hits = [Hit(0, 5, 7, 0.9), Hit(1, 15, 0, 0.8)]
    layouts = [hit_layout((480, 640), GRID, hit, 1, heat_width=400, crop_height=120) for hit in hits]
    cards = [
        HitCard(f"#{i + 1} · photo", h.image, heat, lay) for i, (h, lay) in enumerate(zip(hits, layouts, strict=True))
    ]
    page, shown = render(browser, encode_hits(cards, [jpeg(photo), jpeg(flat)], key="t", columns=4, alpha=0.5))
    page.close()

    decoded = np.asarray(Image.open(io.BytesIO(jpeg(photo))).convert("RGB"))  # the pixels the browser decodes
    x0, y0, x1, y1 = layouts[0].crop
    crop = outlined(decoded[y0:y1, x0:x1], layouts[0].crop_box, layouts[0].crop_line)
    (height, width), (h, w) = layouts[0].crop_size, crop.shape[:2]
    rows = np.minimum((np.arange(height) * (h / height)).astype(int), h - 1)
    cols = np.minimum((np.arange(width) * (w / width)).astype(int), w - 1)
    got_crop = shown[0]["pictures"][0]
    assert got_crop.shape == (height, width, 3)
    assert np.abs(got_crop.astype(int) - crop[rows[:, None], cols[None, :]]).max() <= 2  # the same decoder

    filled = np.where(np.isnan(heat), np.nanmin(heat), heat)
    colour = np.asarray(Image.open(io.BytesIO(jpeg(flat))).convert("RGB"))[0, 0]  # as decoded: flat too
    small = np.full(layouts[1].heat_size + (3,), colour, np.uint8)
    want = outlined(overlay_similarity(small, filled, 0.5), layouts[1].heat_box, layouts[1].heat_line)
    got = shown[1]["pictures"][1]
    assert got.shape == want.shape == (300, 400, 3)
    diff = np.abs(got.astype(int) - want)
    # the canvas blends at 128/255 with its own rounding: within one level of numpy's (seen: 64 % of values off by 1)
    assert diff.max() <= 1 and diff.mean() < 0.75, (diff.max(), diff.mean())
    assert (np.all(got == RED, axis=-1) == np.all(want == RED, axis=-1)).all()  # the outline, exactly
    assert [card["text"] for card in shown] == ["#1 · photo", "#2 · photo"]


def test_an_unreadable_or_undecodable_image_is_a_note_in_its_place(browser):
    image = np.full((48, 64, 3), 200, np.uint8)
    layout = hit_layout((48, 64), (4, 4), Hit(0, 1, 1, 0.5), 1, heat_width=400, crop_height=120)
    cards = [
        HitCard("#1 · gone.jpg · row 1, col 1 · cosine 0.50", error="No such file"),
        HitCard("#2 · broken.jpg · row 1, col 1 · cosine 0.40", 0, np.zeros((4, 4), np.float32), layout),
        HitCard("#3 · fine.jpg · row 1, col 1 · cosine 0.30", 1, np.zeros((4, 4), np.float32), layout),
    ]
    page, shown = render(browser, encode_hits(cards, [b"\xff\xd8 not a jpeg", jpeg(image)], key="t", columns=4,
                                              alpha=0.5))  # fmt: skip
    page.close()
    assert shown[0]["text"] == "#1 · gone.jpg: the image cannot be read (No such file)." and not shown[0]["pictures"]
    assert "#2 · broken.jpg: the image cannot be read (the browser cannot decode it)" in shown[1]["text"]
    assert len(shown[2]["pictures"]) == 2 and shown[2]["text"].startswith("#3 · fine.jpg")
