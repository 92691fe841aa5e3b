"""The Patch Search page with the tiny DINOv2 on a small labelled working set: the index is built on the button, the
first results are the brute-force best patches (the query's own patch first), a box of patches searches with their
mean, one result per image and the class filter hold, the CSV holds image, row, col, cosine; a folder without a
patch index is one sentence and the page stays usable.

A box selection is injected as the chart's selection value under its key, in the shape Streamlit's frontend sends.
Expected numbers come from the test engine (same seeded random weights), not from the page.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data import ImageItem, ImageSet
from tests.widgets import hit_captions

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/patch_search.py"
MODEL = "dinov2_tiny"
SIZE = 56  # the tiny model's input: a 4 × 4 grid of 14 px patches
CAPTION = re.compile(r"#(\d+) · (\S+?)(?: · (\w+))? · row (\d+), col (\d+) · cosine (-?\d+\.\d\d)")


@pytest.fixture(scope="module")
def working_set() -> ImageSet:
    rng = np.random.default_rng(7)
    items = []
    for i in range(8):
        image = rng.integers(0, 256, (56 + 14 * (i % 3), 56, 3), dtype=np.uint8)
        items.append(ImageItem(f"im{i}.png", image, "cats" if i % 2 else "dogs"))
    return ImageSet(items, [])


def open_page(working_set: ImageSet, build: bool = True) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["working_set"] = working_set
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if build:
        at.button(key="psearch_build").click().run()
        assert not at.exception, at.exception
    return at


def results(at: AppTest) -> list[tuple[int, str, str | None, int, int, float]]:
    found = []
    for caption in hit_captions(at):
        if m := CAPTION.match(caption):
            found.append((int(m[1]), m[2], m[3], int(m[4]), int(m[5]), float(m[6])))
    return found


def brute_force(engine, working_set: ImageSet, query: np.ndarray, per_image: bool, classes=None):
    """(name, row, col, cosine) of every patch of the working set, best first."""
    tokens = engine.patch_tokens(working_set.images, MODEL, size=SIZE)
    unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    rows = [
        (item.name, r, c, float(cosine[i, r, c]))
        for i, item in enumerate(working_set.items)
        if classes is None or item.label in classes
        for r in range(tokens.shape[1])
        for c in range(tokens.shape[2])
    ]
    rows.sort(key=lambda x: -x[3])
    if per_image:
        seen = set()
        rows = [x for x in rows if not (x[0] in seen or seen.add(x[0]))]
    return rows


def select_box(at: AppTest, cells: list[tuple[int, int]], grid: int = 4) -> AppTest:
    """A box selection over `cells` of the query chart, as the frontend reports it."""
    points = [
        {"curve_number": 1, "point_number": r * grid + c, "point_index": r * grid + c, "x": 0, "y": 0} for r, c in cells
    ]
    indices = [p["point_index"] for p in points]
    at.session_state["psearch_query_chart"] = {
        "selection": {"points": points, "point_indices": indices, "box": [{"x": [0, 1], "y": [0, 1]}], "lasso": []}
    }
    at.run()
    assert not at.exception, at.exception
    return at


def test_before_the_button_nothing_is_indexed_then_the_centre_patch_finds_itself_first(engine, working_set):
    at = open_page(working_set, build=False)
    assert not results(at) and any("when you press the button" in c.value for c in at.caption)
    at.button(key="psearch_build").click().run()
    assert not at.exception, at.exception
    assert any("8 images, 128 patch vectors" in c.value for c in at.caption)
    found = results(at)
    tokens = engine.patch_tokens(working_set.images[:1], MODEL, size=SIZE)[0]
    want = brute_force(engine, working_set, tokens[2, 2], per_image=True)[:12]
    assert found[0][1:5] == ("im0.png", "dogs", 2, 2) and found[0][5] == 1.0
    assert [(f[1], f[3], f[4]) for f in found] == [w[:3] for w in want[: len(found)]]
    assert len(found) == 8  # one result per image (the default): every image once
    np.testing.assert_allclose([f[5] for f in found], [round(w[3], 2) for w in want[:8]], atol=0.011)


def test_a_box_of_patches_searches_with_their_mean_and_the_filters_hold(engine, working_set):
    at = open_page(working_set)
    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    select_box(at, cells)
    assert any("Picked: 4 patches" in c.value for c in at.caption)
    tokens = engine.patch_tokens(working_set.images[:1], MODEL, size=SIZE)[0]
    query = tokens[[0, 0, 1, 1], [0, 1, 0, 1]].mean(axis=0)
    at.toggle(key="psearch_per_image").set_value(False).run()
    want = brute_force(engine, working_set, query, per_image=False)[:12]
    assert [(f[1], f[3], f[4]) for f in results(at)] == [w[:3] for w in want]
    at.multiselect(key="psearch_classes").set_value(["cats"]).run()
    found = results(at)
    want = brute_force(engine, working_set, query, per_image=False, classes={"cats"})[:12]
    assert [(f[1], f[3], f[4]) for f in found] == [w[:3] for w in want] and {f[2] for f in found} == {"cats"}
    button = next(b for b in at.get("download_button") if "psearch_csv" in b.proto.id)
    assert button.proto.label.startswith("CSV")


def test_the_csv_holds_image_row_col_cosine_of_the_hits(working_set):
    from core.analysis.matching import matches_csv
    from core.patch_index import PatchSettings, build_patch_index, hits_table, search_patches

    rng = np.random.default_rng(0)
    tokens = [rng.standard_normal((4, 4, 8)).astype(np.float32) for _ in range(3)]
    index = build_patch_index(tokens, ["a.png", "b.png", "c.png"], ["x", "y", None], PatchSettings("m@r", 56, 14))
    text = matches_csv(hits_table(index, search_patches(index, tokens[1][3, 0], 2)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["image", "class", "row", "col", "cosine"]
    assert (rows[0]["image"], rows[0]["row"], rows[0]["col"], float(rows[0]["cosine"])) == ("b.png", "3", "0", 1.0)


def test_a_folder_without_a_patch_index_is_one_sentence_and_the_page_stays(working_set, tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(tmp_path))
    (tmp_path / "empty").mkdir()
    at = open_page(working_set, build=False)
    at.radio(key="psearch_source").set_value("A stored patch index").run()
    at.text_input(key="psearch_folder").set_value(str(tmp_path / "empty")).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("holds no patch index" in e and "core.batch patches" in e for e in errors)
    at.radio(key="psearch_source").set_value("The working set (indexed here)").run()
    at.button(key="psearch_build").click().run()
    assert not at.exception and results(at)


def test_a_pooled_index_queries_with_the_clicked_window_and_finds_it_first(working_set):
    at = open_page(working_set)
    at.toggle(key="psearch_pool").set_value(True).run()
    assert not at.exception, at.exception
    assert any("8 images, 32 patch vectors" in c.value for c in at.caption)
    select_box(at, [(3, 1)])
    assert any("searched as the 4 patches of their 2 × 2 windows" in c.value for c in at.caption)
    first = results(at)[0]
    assert first[1:5] == ("im0.png", "dogs", 2, 0) and first[5] == 1.0


def test_the_layout_of_a_hit_places_its_crop_and_its_outlines_and_heats_are_per_image():
    """A hit's crop is its patches with one patch of context, enlarged to 120 px tall, the hit outlined inside it; the
    heat picture is at most 400 px wide with the hit outlined at its place; heats() of several images is heat() of
    each. (The browser draws them: tests/browser/test_patch_search.py compares its canvases with these boxes.)"""
    from core.patch_index import Hit, HitLayout, PatchSettings, build_patch_index, heat, heats, hit_layout

    rng = np.random.default_rng(3)
    layout = hit_layout((480, 640), (16, 16), Hit(0, 5, 7, 0.9), 1, heat_width=400, crop_height=120)
    assert layout == HitLayout(
        crop=(240, 120, 360, 210),  # patches 4–6 × 6–8 of 40 × 30 px
        crop_box=(40, 30, 80, 60),
        crop_line=4,  # 640 // 150
        crop_size=(120, 160),
        heat_size=(300, 400),
        heat_box=(175, round(5 * 300 / 16), 200, round(6 * 300 / 16)),
        heat_line=2,  # 400 // 150
    )
    corner = hit_layout((480, 640), (16, 16), Hit(0, 0, 15, 0.9), 2, heat_width=800, crop_height=60)
    assert corner.crop == (560, 0, 640, 120) and corner.crop_box == (40, 0, 80, 60)  # cut at the grid's edges
    assert corner.heat_size == (480, 640) and corner.crop_size == (60, 40)  # a narrow image: never widened

    tokens = [rng.standard_normal((4, 4, 8)).astype(np.float32) for _ in range(3)]
    index = build_patch_index(tokens, ["a", "b", "c"], [None] * 3, PatchSettings("m@r", 56, 14))
    query = tokens[1][2, 2]
    for got, image_index in zip(heats(index, [2, 0, 2], query), [2, 0, 2], strict=True):
        np.testing.assert_array_equal(got, heat(index, image_index, query))


def test_the_results_payload_round_trips_and_fills_unstored_patches_with_the_minimum():
    from components.patch_hits import HitCard, decode_hits, encode_hits
    from core.patch_index import Hit, hit_layout

    heat = np.array([[np.nan, 0.5], [-0.25, 1.0]], np.float32)
    layout = hit_layout((20, 30), (2, 2), Hit(0, 1, 0, 1.0), 1, heat_width=400, crop_height=120)
    cards = [HitCard("#1 · a", 1, heat, layout), HitCard("#2 · b", error="gone"), HitCard("#3 · c", 0, heat, layout)]
    payload = encode_hits(cards, [b"first", b"second!"], key="k", columns=4, alpha=0.5)
    header, heats, images = decode_hits(payload)
    assert images == [b"first", b"second!"] and header["key"] == "k" and header["columns"] == 4
    assert [h["caption"] for h in header["hits"]] == ["#1 · a", "#2 · b", "#3 · c"] and header["hits"][1]["error"]
    assert [h.get("image") for h in header["hits"]] == [1, None, 0] and heats[1] is None
    np.testing.assert_array_equal(heats[0], [[-0.25, 0.5], [-0.25, 1.0]])  # nothing stored: drawn as the minimum
    assert header["hits"][2]["layout"]["crop_size"] == [120, 180] and len(header["colours"]) == 768
    other = encode_hits(cards[:1], [b"first", b"second!"], key="k", columns=4, alpha=0.5)
    assert decode_hits(other)[0]["digest"] != header["digest"]


def _query_figure(at: AppTest) -> dict:
    import json

    (chart,) = [c for c in at.get("plotly_chart") if "psearch_query_chart" in c.proto.id]
    return json.loads(chart.proto.spec)


def test_a_click_leaves_the_query_chart_as_it_was_and_its_selection_shows_the_pick(working_set):
    """The chart is sent the centre patch as selected (plotly outlines selected patches in red); a click, box or lasso
    is then shown by plotly itself, so every pick on an unpooled index sends the same figure (Streamlit sends it
    once, the browser keeps it); a pooled index's window is sent as selected."""
    at = open_page(working_set)
    first = _query_figure(at)
    markers = first["data"][1]
    assert markers["selectedpoints"] == [2 * 4 + 2] and not first["layout"].get("shapes")  # the centre patch
    assert markers["selected"]["marker"]["opacity"] == 1.0 and markers["marker"]["opacity"] < 0.05
    assert markers["marker"]["symbol"] == "square-open"
    figures = [_query_figure(select_box(at, [cell])) for cell in [(0, 1), (3, 2)]]
    assert figures[0] == figures[1] == first
    at.toggle(key="psearch_pool").set_value(True).run()
    select_box(at, [(3, 1)])
    assert _query_figure(at)["data"][1]["selectedpoints"] == [2 * 4 + 0, 2 * 4 + 1, 3 * 4 + 0, 3 * 4 + 1]  # its window
