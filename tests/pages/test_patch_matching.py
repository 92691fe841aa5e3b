"""The Patch Matching page with the tiny DINOv2 on the built-in samples: simulated clicks, checked against numpy.

AppTest renders no plotly events, so a click is injected as the chart's selection value under its key, in
the shape Streamlit's frontend sends (`{"selection": {"points": [{"x", "y", ...}], "point_indices": [...]}}`).
Expected numbers come from the test engine (same seeded random weights), not from the page.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.matching_charts import MatchPair, build_pair, click_figures, compute_click, heat_png
from core.analysis.matching import compute_mutual_matches, compute_similarity, patch_box, similarity_map, top_matches
from core.analysis.pca import compute_foreground
from core.data import ImageItem, ImageSet, load_samples

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/patch_matching.py"
MODEL = "dinov2_tiny"
READOUT = re.compile(
    r"Patch \*\*\(row (\d+), col (\d+)\)\*\* of A → best match \*\*\(row (\d+), col (\d+)\)\*\* of B — "
    r"Cosine Similarity: (-?\d+\.\d\d), Euclidean Distance: (\d+\.\d\d)"
)


def open_page(a: int = 0, b: int = 1, dense: str | None = None) -> AppTest:
    """The page on images a and b, with the tiny DINOv2 or `dense` chosen in the sidebar's dense-features role."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page(PAGE)
    rerun(at, dense)
    if (a, b) != (0, 1):
        at.selectbox(key="match_a").set_value(a)
        at.selectbox(key="match_b").set_value(b)
        rerun(at, dense)
    assert not at.exception, at.exception
    return at


def rerun(at: AppTest, dense: str | None) -> AppTest:
    """AppTest draws the sidebar on its first run only, so a model chosen there is set again before every run."""
    if dense:
        at.session_state["sidebar_dense_model"] = dense
    return at.run()


def readout(at: AppTest) -> tuple[int, int, int, int, float, float]:
    found = [READOUT.search(m.value) for m in at.markdown]
    r = next(m for m in found if m)
    return int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), float(r[6])


def chart(at: AppTest, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key)).proto.spec)


def array(value) -> np.ndarray:
    """A plotly JSON array: a list, or numpy's typed-array encoding {"dtype", "bdata"[, "shape"]}."""
    if not isinstance(value, dict):
        return np.asarray(value)
    flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    shape = value.get("shape")
    return flat.reshape([int(s) for s in str(shape).split(",")]) if shape else flat


def click(at: AppTest, row: int, col: int, dense: str | None = None) -> AppTest:
    """Click the centre marker of patch (row, col) of A, as read from the chart's own scatter grid."""
    trace = next(t for t in chart(at, "match_chart_a")["data"] if "customdata" in t)
    cells = array(trace["customdata"]).reshape(-1, 2)
    i = int(np.flatnonzero((cells[:, 0] == row) & (cells[:, 1] == col))[0])
    x, y = float(array(trace["x"])[i]), float(array(trace["y"])[i])
    point = {"x": x, "y": y, "curve_number": 1, "point_number": i, "point_index": i}
    at.session_state["match_chart_a"] = {"selection": {"points": [point], "point_indices": [i], "box": [], "lasso": []}}
    rerun(at, dense)
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def samples() -> list[np.ndarray]:
    return load_samples().images


def expected(engine, images: list[np.ndarray], size: int = 224, layer: int | None = None, model: str = MODEL):
    tokens = engine.patch_tokens(images, model, layer, size)
    return compute_similarity(tokens[0], tokens[-1]), tokens


def assert_readout_matches(at: AppTest, sim, row: int, col: int) -> None:
    best = top_matches(sim, row * sim.grid_a[1] + col, k=1)[0]
    assert readout(at) == (row, col, best.row_b, best.col_b, round(best.cosine, 2), round(best.euclidean, 2))
    heat = array(next(t for t in chart(at, "match_chart_b")["data"] if t["type"] == "heatmap")["z"])
    np.testing.assert_allclose(heat.reshape(sim.grid_b), similarity_map(sim, row * sim.grid_a[1] + col), atol=1e-6)


def test_before_any_click_the_centre_patch_is_read(engine, samples):
    at = open_page()
    sim, _ = expected(engine, samples[:2])
    assert sim.grid_a == (16, 16)
    assert_readout_matches(at, sim, 8, 8)
    assert any("224 px → 16 × 16 patches" in c.value for c in at.caption)


def test_clicks_on_a_non_square_image_move_the_readout_the_heat_map_and_the_box(engine, samples):
    at = open_page(a=1, b=0)  # A = chelsea (300 × 451), B = astronaut
    sim, _ = expected(engine, [samples[1], samples[0]])
    heats = []
    for row, col in [(2, 13), (15, 0), (0, 15)]:  # inside, bottom-left and top-right corners
        click(at, row, col)
        assert_readout_matches(at, sim, row, col)
        heats.append(array(next(t for t in chart(at, "match_chart_b")["data"] if t["type"] == "heatmap")["z"]))
        spec = chart(at, "match_chart_a")
        box = next(s for s in spec["layout"]["shapes"] if s["type"] == "rect")
        view_size = (384, round(451 * 384 / 300))
        assert (box["x0"], box["y0"], box["x1"], box["y1"]) == pytest.approx(patch_box(row, col, view_size, (16, 16)))
    assert not np.allclose(heats[0], heats[1]) and not np.allclose(heats[1], heats[2])


def test_a_click_survives_other_controls_and_follows_a_new_size_and_layer(engine, samples):
    at = open_page()
    click(at, 3, 4)
    at.slider(key="match_alpha").set_value(0.2).run()
    assert readout(at)[:2] == (3, 4)
    assert next(t for t in chart(at, "match_chart_b")["data"] if t["type"] == "heatmap")["opacity"] == 0.2
    at.select_slider(key="match_size").set_value(112).run()
    at.selectbox(key="match_layer").set_value(1).run()
    assert not at.exception, at.exception
    sim, _ = expected(engine, samples[:2], size=112, layer=1)
    assert sim.grid_a == (8, 8)
    assert_readout_matches(at, sim, 1, 2)  # the same spot of the image, on the coarser grid
    assert any("112 px → 8 × 8 patches" in c.value for c in at.caption)


def test_correspondences_are_mutual_nearest_neighbours_and_respect_the_foreground_filter(engine, samples):
    at = open_page()
    sim, tokens = expected(engine, samples[:2])
    table = at.dataframe[0].value
    want = compute_mutual_matches(sim, top_n=20)
    assert list(zip(table["index_a"], table["index_b"], strict=True)) == [(m.index_a, m.index_b) for m in want]
    assert len(chart(at, "match_pairs_chart")["data"]) == 2 + len(want)  # two images, one line per pair
    captions = [c for img in at.get("image") for c in (img.proto.imgs[0].caption,)]
    assert [c.split(" · ")[0] for c in captions] == ["Patch 1", "Patch 2", "Patch 3", "Patch 4"]

    at.toggle(key="match_fg").set_value(True).run()
    at.slider(key="match_top_n").set_value(5).run()
    mask = compute_foreground(tokens).mask
    table = at.dataframe[0].value
    want = compute_mutual_matches(sim, 5, mask[0], mask[1])
    assert 0 < len(table) <= 5
    assert list(zip(table["index_a"], table["index_b"], strict=True)) == [(m.index_a, m.index_b) for m in want]
    assert all(mask[0].ravel()[i] for i in table["index_a"]) and all(mask[1].ravel()[j] for j in table["index_b"])


def test_an_image_against_itself_matches_each_patch_to_itself():
    at = open_page(a=2, b=2)
    click(at, 5, 6)
    assert readout(at) == (5, 6, 5, 6, 1.0, 0.0)
    assert any("same image" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert list(table["index_a"]) == list(table["index_b"])


def test_an_empty_working_set_says_what_to_do():
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.session_state["working_set"] = ImageSet()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("working set is empty" in i.value for i in at.info)
    assert not at.get("plotly_chart")


@pytest.fixture
def planted_pair() -> MatchPair:
    """Two 40 × 60 images on a 2 × 3 grid (20 px patches); A's patch i is B's patch i - 1 (mod 6)."""
    tokens_b = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    tokens_a = np.roll(tokens_b.reshape(6, 8), 1, axis=0).reshape(2, 3, 8)
    images = (np.zeros((40, 60, 3), np.uint8), np.full((40, 60, 3), 100, np.uint8))
    return build_pair(("a.png", "b.png"), images, (tokens_a, tokens_b))


def test_heat_png_export_is_b_at_full_size_with_the_best_match_boxed_in_red(planted_pair):
    view, fig_a, fig_b = click_figures(planted_pair, (0.1, 0.25), k=2, alpha=0.5, show_grid=True)  # patch 0
    assert (view.index, view.matches[0].index_b) == (0, 5)
    png = np.asarray(Image.open(io.BytesIO(heat_png(planted_pair, view, alpha=0.5))))
    assert png.shape == (40, 60, 3)
    assert png[39, 59].tolist() == [255, 43, 43]  # border of patch (1, 2): x 40..60, y 20..40
    assert png[30, 50].tolist() != [255, 43, 43]  # inside it: the heat map, not the box
    assert len(fig_b.layout.shapes) == 2
    assert [t.type for t in fig_a.data] == ["image", "scatter", "scatter"]  # image, grid lines, click markers
    assert planted_pair.foreground is not None and planted_pair.foreground.shape == (2, 2, 3)


def test_dinov3_in_the_sidebar_matches_on_its_16_px_grid(engine, samples):
    at = open_page(a=1, b=0, dense="dinov3_tiny")  # A = chelsea (300 × 451), B = astronaut
    assert any("224 px → 14 × 14 patches" in c.value for c in at.caption)
    assert "16 × 16 px patch" in at.caption[0].value and "DINOv3" in at.caption[0].value
    sizes = list(map(int, at.select_slider(key="match_size").options))
    assert sizes[0] == 64 and all(size % 16 == 0 for size in sizes)
    sim, _ = expected(engine, [samples[1], samples[0]], model="dinov3_tiny")
    assert sim.grid_a == (14, 14)
    assert_readout_matches(at, sim, 7, 7)
    for row, col in [(2, 11), (13, 0)]:
        click(at, row, col, dense="dinov3_tiny")
        assert_readout_matches(at, sim, row, col)


ASPECTS = [(128, 128), (96, 192), (192, 96), (120, 200)]  # H × W: square, wide, tall, 3 : 5


@pytest.mark.parametrize("model", ["dinov3_tiny", "dinov2_tiny"])
def test_a_click_on_a_painted_patch_finds_that_patch_in_another_image(engine, model):
    """Paint one grid cell red in images of four aspect ratios (A on dark grey, B on light grey), click the cell's
    centre through the page's click mapping (`compute_click`): the heat map over B peaks on that same cell.
    The 16 cells on the diagonals of an 8 × 8 grid, 0 errors: register slicing, grid order and click mapping agree."""
    patch = 16 if model == "dinov3_tiny" else 14
    size, grid = 8 * patch, 8
    errors = []
    for height, width in ASPECTS:
        cells = [(r, c) for r in range(grid) for c in {r, grid - 1 - r}]  # both diagonals: every row, column, corner
        painted = {shade: [_painted(height, width, grid, r, c, shade) for r, c in cells] for shade in (60, 180)}
        tokens_a = engine.patch_tokens(painted[60], model, None, size)
        tokens_b = engine.patch_tokens(painted[180], model, None, size)
        for i, (r, c) in enumerate(cells):
            pair = build_pair(("a", "b"), (painted[60][i], painted[180][i]), (tokens_a[i], tokens_b[i]))
            view = compute_click(pair, ((c + 0.5) / grid, (r + 0.5) / grid), k=1)
            peak = np.unravel_index(int(np.argmax(view.heat)), view.heat.shape)
            if (view.row, view.col) != (r, c) or tuple(map(int, peak)) != (r, c):
                errors.append(((height, width), (r, c), (view.row, view.col), peak))
    assert not errors, errors[:5]


def _painted(height: int, width: int, grid: int, row: int, col: int, shade: int) -> np.ndarray:
    """HWC uint8 grey `shade` with cell (row, col) of a `grid` × `grid` split of the image painted red."""
    image = np.full((height, width, 3), shade, np.uint8)
    h, w = height // grid, width // grid
    image[row * h : (row + 1) * h, col * w : (col + 1) * w] = (220, 30, 30)
    return image


def test_an_image_smaller_than_the_patch_grid_gets_one_sentence_and_still_runs(samples):
    at = AppTest.from_file(APP, default_timeout=180).run()
    tiny = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    at.session_state["working_set"] = ImageSet([ImageItem("speck.png", tiny), ImageItem("astronaut", samples[0])])
    rerun(at.switch_page(PAGE), "dinov3_tiny")
    assert not at.exception, at.exception
    notes = [i.value for i in at.info if "patch grid" in i.value]
    assert notes == ["A 12×10 px image has fewer pixels than the 14×14 patch grid, so each patch sees less than one "
                     "of its pixels: pick a smaller input size or a larger image."]  # fmt: skip
    assert readout(at)[:2] == (7, 7)  # the page still works on it
