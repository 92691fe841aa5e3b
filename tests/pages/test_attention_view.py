"""The PCA Foreground page's attention view with dinov2_tiny and dinov2_tiny_reg side by side (tiny profile).

Expected maps come from the test engine (same seeded random weights), not from the page. AppTest renders no
plotly events: a click is injected as the chart's selection under its key, as in tests/pages/test_patch_matching.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components.attention_charts import VIEW_SIDE
from components.pca_view import ATTENTION
from core.analysis.matching import patch_box
from core.data import load_samples
from core.models.attention_groups import from_patch
from core.models.dinov2 import DINOv2Adapter
from tests.pages.test_patch_matching import array, chart

APP = str(Path(__file__).resolve().parents[2] / "app.py")
MODELS = ("dinov2_tiny@random", "dinov2_tiny_reg@random")
KEY = "pca_attention"


def open_view(**widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/pca_foreground.py").run()
    at.radio(key="pca_mode").set_value(ATTENTION).run()
    for key, value in widgets.items():
        at.selectbox(key=f"{KEY}_{key}").set_value(value)
    return clean(at.run() if widgets else at)


def clean(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def heat(at: AppTest, key: str) -> np.ndarray:
    trace = next(t for t in chart(at, key)["data"] if t["type"] == "heatmap")
    return array(trace["z"]).reshape(32, 32)


def box(at: AppTest, key: str) -> tuple[float, ...]:
    rect = next(s for s in chart(at, key)["layout"]["shapes"] if s["type"] == "rect")
    return rect["x0"], rect["y0"], rect["x1"], rect["y1"]


def click(at: AppTest, chart_index: int, row: int, col: int) -> AppTest:
    key = f"{KEY}_{chart_index}_chart_a"
    trace = next(t for t in chart(at, key)["data"] if "customdata" in t)
    cells = array(trace["customdata"]).reshape(-1, 3)
    i = int(np.flatnonzero((cells[:, 0] == row) & (cells[:, 1] == col))[0])
    point = {"x": float(array(trace["x"])[i]), "y": float(array(trace["y"])[i]), "curve_number": 2, "point_index": i}
    at.session_state[key] = {"selection": {"points": [point], "point_indices": [i], "box": [], "lasso": []}}
    return clean(at.run())


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_samples().images[0]


def test_cls_maps_of_both_models_equal_the_engine_and_registers_are_reported(engine, astronaut):
    at = open_view()
    assert [m.value for m in at.markdown if m.value.startswith("**DINOv2 tiny")] == [
        "**DINOv2 tiny (test)**",
        "**DINOv2 tiny + registers (test)**",
    ]
    for i, model in enumerate(MODELS):
        maps = engine.attention_maps([astronaut], model, size=448)
        assert maps.grid == (32, 32)
        np.testing.assert_allclose(heat(at, f"{KEY}_{i}_chart_a"), maps.cls[0].mean(0), atol=1e-6)
    summaries = [c.value for c in at.caption if c.value.startswith("CLS → patches")]
    assert len(summaries) == 2 and "registers take" not in summaries[0] and "registers take" in summaries[1]
    assert any("Block 2 of 2 · 448 px → 32×32 patches" in c.value for c in at.caption)
    assert any("Random weights here" in w.value for w in at.warning)
    assert len(at.download_button) == 2 * 2 + 1  # two PNGs per model and the NPZ


def test_an_added_model_joins_at_its_own_grid(engine, astronaut):
    at = open_view()
    offered = at.multiselect(key=f"{KEY}_models")
    assert "DINOv2 ViT-S/14 (hf not found: random weights)" in offered.options  # labels, as the page shows them
    assert not {"DINOv2 tiny (test)", "DINOv2 tiny + registers (test)"} & set(offered.options)  # already shown
    at.select_slider(key=f"{KEY}_size").set_value(112)
    offered.set_value(["dinov2_small@hf"]).run()  # no weights offline: random ones, and the page says so
    clean(at)
    maps = engine.attention_maps([astronaut], "dinov2_small@hf", size=112)
    trace = next(t for t in chart(at, f"{KEY}_2_chart_a")["data"] if t["type"] == "heatmap")
    np.testing.assert_allclose(array(trace["z"]).reshape(8, 8), maps.cls[0].mean(0), atol=1e-6)
    assert any("Block 12 of 12 · 112 px → 8×8 patches" in c.value for c in at.caption)
    assert any("DINOv2 ViT-S/14 (hf not found: random weights)" in w.value for w in at.warning)


def test_a_click_on_either_model_shows_that_patch_s_attention_in_both(engine, astronaut):
    at = open_view()
    maps = [engine.attention_maps([astronaut], m, size=448) for m in MODELS]
    view_size = (VIEW_SIDE, VIEW_SIDE)  # the astronaut is square
    for chart_index, (row, col) in ((0, (3, 20)), (1, (31, 0)), (0, (3, 20))):
        click(at, chart_index, row, col)
        for i, m in enumerate(maps):
            expected = from_patch(m, 0, row * 32 + col).mean(0)
            np.testing.assert_allclose(heat(at, f"{KEY}_{i}_patch_chart"), expected, atol=1e-6)
            for key in (f"{KEY}_{i}_chart_a", f"{KEY}_{i}_patch_chart"):
                assert box(at, key) == pytest.approx(patch_box(row, col, view_size, (32, 32)))
        assert sum(f"Patch (row {row}, col {col}) → patches" in c.value for c in at.caption) == 2


def test_block_choice_heads_and_no_second_forward_for_redraws(engine, astronaut, monkeypatch):
    at = open_view(layer=1)
    maps = engine.attention_maps([astronaut], MODELS[1], layer=1, size=448)
    np.testing.assert_allclose(heat(at, f"{KEY}_1_chart_a"), maps.cls[0].mean(0), atol=1e-6)
    calls = {"n": 0}
    original = DINOv2Adapter.attentions
    monkeypatch.setattr(DINOv2Adapter, "attentions", lambda *a: calls.update(n=calls["n"] + 1) or original(*a))
    at.toggle(key=f"{KEY}_heads").set_value(True).run()
    sheets = [im for im in clean(at).image if "head by head" in im.captions[0]]
    assert len(sheets) == 4  # CLS and clicked patch, per model
    at.slider(key=f"{KEY}_alpha").set_value(1.0).run()
    clean(at)
    assert calls["n"] == 0  # heads, opacity: redrawn from the cached maps
