"""Measure segmentation with the tiny SAM: ground truth in (built-in shapes, a zip with bad pairings), the click
protocol's numbers equal core's on the same weights, automatic masks and edges shown, and the brush: a stroke sent as
the drawing canvas sends it, the kept mask is SAM's mask plus exactly the stroke's pixels.

AppTest runs no JavaScript: the canvas's drawing is sent as its widget state, in the shape the component returns
(`{"drawing": {"raw": Fabric JSON, "data": None}}`)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from core.analysis.brush import ADD_COLOR, ERASE_COLOR, paint, strokes_from_canvas
from core.analysis.click_eval import evaluate_model, summarize
from core.ground_truth import demo_ground_truth

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "evaluate.py")
MODEL = "sam_tiny@random"
CANVAS = "streamlit-drawable-canvas.streamlit_drawable_canvas"


def open_with_shapes() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    assert any(i.value.startswith("Load ground truth") for i in at.info)
    at.button(key="eval_demo").click().run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def send_drawing(at: AppTest, objects: list[dict]) -> None:
    """Rerun as after the canvas sent this drawing (its state widget, JSON, as the frontend sets it)."""
    (element,) = [e for e in at.get("bidi_component") if e.proto.component_name == CANVAS]
    states = at._tree.get_widget_states()
    state = WidgetState(id=element.proto.id)
    state.json_value = json.dumps({"drawing": {"raw": {"objects": objects}, "data": None}})
    states.widgets.append(state)
    at._run(states)
    assert not at.exception, at.exception


def test_built_in_shapes_are_listed_with_outlines():
    at = open_with_shapes()
    objects = table(at, "label")
    assert objects["label"].tolist() == ["disc", "square", "annulus", "left block", "right block", "dot"]
    assert objects["area px"].tolist() == demo_ground_truth().items[0].masks.sum(axis=(1, 2)).tolist()
    assert "3 images, 18 objects loaded." in [c.value for c in at.caption]


def test_the_click_protocol_on_the_page_gives_cores_numbers(engine):
    at = open_with_shapes()
    at.slider(key="eval_clicks_clicks").set_value(3).run()
    at.button(key="eval_clicks_run").click().run()
    assert not at.exception, at.exception
    summary = table(at, "mIoU@1")
    gt = demo_ground_truth()
    from components.eval_view import _targets

    expected = evaluate_model(engine, MODEL, [i.image for i in gt.items], _targets(gt), 3)
    s = summarize([r for _, r in expected.runs])
    assert summary["objects"].tolist() == [18]
    np.testing.assert_allclose(summary[["mIoU@1", "mIoU@3"]].to_numpy()[0], s.miou[[0, 2]], atol=1e-4)
    assert summary["oracle mIoU@1"][0] == pytest.approx(s.oracle_miou1, abs=1e-4)
    assert summary["NoC@85"][0] == pytest.approx(s.noc85, abs=0.01) and summary["fail@90"][0] == s.fail90
    (chart,) = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert len(traces) == 1 and np.allclose(traces[0]["y"], s.miou)
    assert any("Random weights here" in w.value for w in at.warning)


def test_automatic_masks_and_edges_against_the_shapes(engine):
    at = open_with_shapes()
    at.button(key="eval_auto_auto_run").click().run()  # a 16 × 16 grid on CPU: the edges' grid too
    assert not at.exception, at.exception
    recalls = [m.value for m in at.metric]
    assert len(recalls) == 2 and all(0 <= float(v) <= 1 for v in recalls)
    matched = table(at, "best mask")
    assert len(matched) == 6 and matched["IoU"].between(0, 1).all()
    edges = table(at, "ODS")
    assert edges["method"].tolist() == ["SAM (zero-shot)", "Sobel", "Canny"]
    assert edges["ODS"].between(0, 1).all()
    # on these flat-coloured shapes the image's own edges are the objects' boundaries: Sobel finds most of them
    assert edges.set_index("method")["ODS"]["Sobel"] > 0.5


def test_a_brush_stroke_adds_exactly_its_pixels_to_the_kept_mask():
    at = open_with_shapes()
    at.selectbox(key="eval_brush_object").set_value(1).run()  # the square
    at.button(key="eval_brush_begin").click().run()
    assert not at.exception, at.exception
    start = at.session_state["eval_brush_start"]
    assert start.index == 1 and start.mask.shape == (160, 200)
    add = {"type": "path", "stroke": ADD_COLOR, "strokeWidth": 10, "path": [["M", 20, 30], ["L", 150, 30]]}
    erase = {"type": "path", "stroke": ERASE_COLOR, "strokeWidth": 6, "path": [["M", 40, 0], ["L", 40, 150]]}
    send_drawing(at, [add, erase])
    at.text_input(key="eval_brush_name").set_value("fixed square").run()
    at.button(key="eval_brush_keep").click().run()
    assert not at.exception, at.exception
    (kept,) = at.session_state["eval_brush_kept"]
    size = (round(160 * 200 / 200), 200)  # the 200-pixel-wide image on a 200-pixel canvas
    strokes = strokes_from_canvas({"objects": [add, erase]}, size, (160, 200))
    np.testing.assert_array_equal(kept.mask, paint(start.mask, strokes))
    assert kept.strokes == 2 and kept.name == "fixed square"
    assert kept.mask[30, 100] and not kept.mask[30, 40]  # painted, then erased where the strokes cross
    listed = table(at, "strokes")
    assert listed["strokes"].tolist() == [2] and listed["name"].tolist() == ["fixed square"]
    assert "eval_brush_start" not in at.session_state  # a new start for the next object


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_zip_with_bad_pairings_lists_each_with_its_reason_and_loads_the_rest():
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 40), np.uint8)
    mask[5:20, 5:30] = 255
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/ok.png", png(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)))
        archive.writestr("masks/ok.png", png(mask))
        archive.writestr("images/small.png", png(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)))
        archive.writestr("masks/small.png", png(mask[:10, :10]))
        archive.writestr("images/lonely.png", png(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)))
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    (uploader,) = at.get("file_uploader")
    uploader.set_value(("gt.zip", buffer.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    skipped = table(at, "reason")
    reasons = dict(zip(skipped["file"], skipped["reason"], strict=True))
    assert reasons["images/small.png"] == "the mask is 10×10 pixels, the image 40×32"
    assert reasons["images/lonely.png"].startswith("no mask for this image")
    assert "1 image, 1 object loaded." in [c.value for c in at.caption]


def test_the_page_is_in_the_apps_navigation_next_to_segment():
    app = Path(PAGE).parents[1] / "app.py"
    lines = app.read_text().splitlines()
    segment = next(i for i, line in enumerate(lines) if '"pages/segment.py"' in line)
    assert any('"pages/evaluate.py", title="Measure segmentation"' in line for line in lines[segment + 1 : segment + 4])
    at = AppTest.from_file(str(app), default_timeout=180).run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Measure segmentation"
