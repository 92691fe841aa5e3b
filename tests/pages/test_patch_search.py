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
    for element in at.get("image"):
        for img in element.proto.imgs:
            if m := CAPTION.match(img.caption):
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


def test_the_pictures_of_a_hit_keep_the_crop_and_draw_the_heat_map_small():
    """The crop is the image's own pixels around the hit with the red outline (as drawn on the whole image, then cut);
    the heat picture is at most `heat_width` wide, outlined at the same place; heats() of several images is heat()
    of each."""
    from core.patch_index import Hit, PatchSettings, build_patch_index, heat, heats, hit_pictures

    rng = np.random.default_rng(3)
    image = rng.integers(0, 200, (480, 640, 3), dtype=np.uint8)
    grid, hit = (16, 16), Hit(0, 5, 7, 0.9)
    crop, picture = hit_pictures(image, grid, hit, 1, rng.random(grid).astype(np.float32), heat_width=400)
    y0, y1, x0, x1 = 120, 210, 240, 360  # patches 4–6 × 6–8 of 30 × 40 px
    assert crop.shape == (90, 120, 3)
    red = np.all(crop == (255, 43, 43), axis=-1)
    assert red[30:60, 40:80].any() and not red[:30].any() and not red[:, :40].any()  # only around patch (5, 7)
    np.testing.assert_array_equal(crop[~red], image[y0:y1, x0:x1][~red])
    assert picture.shape == (300, 400, 3)
    red = np.all(picture == (255, 43, 43), axis=-1)
    rows, cols = np.nonzero(red)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (
        round(5 * 300 / 16),
        round(6 * 300 / 16),
        175,
        200,
    )

    tokens = [rng.standard_normal((4, 4, 8)).astype(np.float32) for _ in range(3)]
    index = build_patch_index(tokens, ["a", "b", "c"], [None] * 3, PatchSettings("m@r", 56, 14))
    query = tokens[1][2, 2]
    for got, image_index in zip(heats(index, [2, 0, 2], query), [2, 0, 2], strict=True):
        np.testing.assert_array_equal(got, heat(index, image_index, query))
