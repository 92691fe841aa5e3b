"""The Segment page with the tiny SAM on the built-in samples: clicks sent as the prompt widget sends them,
overlays checked on pixels.

AppTest runs no JavaScript, so a click or drag is sent as the widget's "prompt" trigger, in the shape its page
code sends (fractions of the image's width and height; `tests.widgets.send_trigger`); the overlay is read back
from the background image the widget is given. Expected masks come from the test engine (same seeded random
weights), not from the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.utils.transforms import ResizeLongestSide
from streamlit.testing.v1 import AppTest

from components.prompt_canvas import CanvasFrame, gesture_prompt, widget_prompts
from core.analysis.imaging import resize_map
from core.analysis.masks import Prompt, mask_contour
from core.data import load_samples
from tests import corpus
from tests.widgets import component_data, data_url_pixels, send_trigger

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "segment.py")
MODEL = "sam_tiny@random"


# ---- canvas → image → SAM's frame ---------------------------------------------------------------
def _sam_frame(xy: np.ndarray, size: tuple[int, int], longest: int) -> np.ndarray:
    """Image (X, Y) → SAM's input frame, written out independently: scale so the longest side is `longest`,
    each side rounded to the nearest pixel, X by the new width and Y by the new height."""
    h, w = size
    scale = longest / max(h, w)
    new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
    return xy * np.array([new_w / w, new_h / h] * (xy.shape[-1] // 2))


@pytest.mark.parametrize("size", [(300, 451), (451, 300), (96, 128), (64, 64), (33, 1000)])
def test_clicks_and_drags_reach_sams_frame_as_sampredictor_maps_them(size):
    h, w = size
    frame = CanvasFrame.fit(size)
    assert abs(frame.width / frame.height / (w / h) - 1) < 0.02 and 1 <= frame.width <= 700
    clicks = np.array([[0.0, 0.0], [1 / 3, 0.5], [1.0, 1.0]])  # fractions of the shown image, as the widget sends
    gestures = [
        {"kind": "point", "xy": list(clicks[0]), "positive": True},
        {"kind": "point", "xy": list(clicks[1]), "positive": False},
        {"kind": "point", "xy": list(clicks[2])},
        {"kind": "box", "xy": [0.7, 0.9, 0.1, 0.2]},  # dragged up and left
    ]
    read = [gesture_prompt(g, size) for g in gestures]
    assert [(p.kind, p.positive) for p in read] == [("point", True), ("point", False), ("point", True), ("box", True)]
    np.testing.assert_allclose([p.xy for p in read[:3]], clicks * [w, h], atol=0.005)
    np.testing.assert_allclose(read[3].xy, np.array([0.1, 0.2, 0.7, 0.9]) * [w, h, w, h], atol=0.005)

    transform = ResizeLongestSide(1024)  # what SamPredictor applies for a full-size SAM
    points = np.array([p.xy for p in read[:3]])
    np.testing.assert_allclose(transform.apply_coords(points, size), _sam_frame(points, size, 1024), atol=1e-4)
    np.testing.assert_allclose(
        transform.apply_boxes(np.array([read[3].xy]), size)[0], _sam_frame(np.array(read[3].xy), size, 1024), atol=1e-4
    )


def test_the_widget_draws_the_prompts_it_sent_and_rejects_malformed_gestures():
    size = (300, 451)
    prompts = (
        Prompt("point", (10.25, 20.5)),
        Prompt("box", (1.0, 2.0, 300.0, 250.0)),
        Prompt("point", (400.0, 5.0), False),
    )
    assert tuple(gesture_prompt(g, size) for g in widget_prompts(prompts, size)) == prompts
    assert gesture_prompt({"kind": "point", "xy": [1.5, -2]}, size) == Prompt("point", (451.0, 0.0))  # clamped
    for bad in (
        None,
        "point",
        {"kind": "lasso", "xy": [0.1, 0.2]},
        {"kind": "point", "xy": [0.1]},
        {"kind": "point", "xy": ["0.1", 0.2]},
        {"kind": "point", "xy": [float("nan"), 0.2]},
        {"kind": "box", "xy": [0.1, 0.2, 0.3]},
        {"kind": "box", "xy": [0.5, 0.2, 0.5, 0.9]},  # no width
    ):
        assert gesture_prompt(bad, size) is None, bad


def test_engine_decodes_prompts_in_sams_frame_on_a_non_square_image(engine):
    """Our prompts, given in image pixels, decode exactly like hand-mapped coordinates fed to the decoder."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    points, labels, box = np.array([[20.0, 70.0], [120.5, 10.0]]), np.array([1, 0]), np.array([5.0, 8.0, 100.0, 80.0])
    embedding = engine.sam_embedding(image, MODEL)
    ours = engine.sam_predict(embedding, MODEL, points, labels, box)

    module = engine.model(MODEL).adapter.module
    predictor = SamPredictor(module)
    predictor.set_image(image)
    side = module.image_encoder.img_size
    with torch.inference_mode():
        _, scores, logits = predictor.predict_torch(
            torch.as_tensor(_sam_frame(points, (90, 140), side), dtype=torch.float)[None],
            torch.as_tensor(labels)[None],
            torch.as_tensor(_sam_frame(box, (90, 140), side), dtype=torch.float)[None],
            multimask_output=True,
        )
    np.testing.assert_allclose(ours.logits, logits[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.scores, scores[0].numpy(), atol=1e-5)
    swapped = engine.sam_predict(embedding, MODEL, points[:, ::-1].copy(), labels, box)  # (Y, X) would be a bug
    assert np.abs(swapped.logits - ours.logits).max() > 1e-3


def test_mask_logit_feedback_changes_the_next_prediction(engine):
    image = load_samples().items[1].image
    embedding = engine.sam_embedding(image, MODEL)
    first = engine.sam_predict(embedding, MODEL, np.array([[200.0, 150.0]]), np.array([1]))
    two = np.array([[200.0, 150.0], [60.0, 40.0]]), np.array([1, 0])
    plain = engine.sam_predict(embedding, MODEL, *two)
    fed = engine.sam_predict(embedding, MODEL, *two, mask_input=first.logits[[int(np.argmax(first.scores))]])
    assert np.abs(fed.logits - plain.logits).max() > 1e-2


# ---- the page -------------------------------------------------------------------------------------
def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception, at.exception
    return at


def canvas(at: AppTest) -> dict:
    """What the prompt widget is given: its background decoded to HWC uint8 ("pixels"), prompts, size, ..."""
    data = component_data(at, "vfm_prompt_canvas")
    return {**data, "pixels": data_url_pixels(data["image"])}


def click(at: AppTest, kind: str, *xy: float, positive: bool = True, side: float = 512.0) -> None:
    """A click (two numbers) or a drag (four) at these pixels of the 512 × 512 first sample, sent as the widget
    sends it: as fractions of the image."""
    send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": kind, "xy": [v / side for v in xy], "positive": positive})
    assert not at.exception, at.exception


def state(at: AppTest):
    (only,) = at.session_state["seg_images"].values()
    return only


def test_a_click_draws_the_mask_overlay_and_the_next_click_feeds_its_logits(engine):
    at = open_page()
    image = load_samples().items[0].image  # astronaut, 512 × 512: the page's first image
    frame = CanvasFrame.fit(image.shape[:2])
    plain = canvas(at)["pixels"]
    assert plain.shape[:2] == (frame.height, frame.width) and canvas(at)["prompts"] == []

    point = Prompt("point", (256.0, 200.0))
    click(at, "point", *point.xy)
    embedding = engine.sam_embedding(image, MODEL)
    expected = engine.sam_predict(embedding, MODEL, np.array([point.xy]), np.array([1]))
    best = int(np.argmax(expected.scores))
    shown = canvas(at)["pixels"]
    mask = resize_map(expected.masks[best], plain.shape[:2], nearest=True) > 0.5
    assert 0.02 < mask.mean() < 0.98, "the tiny model's mask should be a part of the image"
    changed = np.abs(shown.astype(int) - plain).max(axis=2) > 20  # the background is a JPEG: allow its noise
    edge = mask_contour(mask, 8) | mask_contour(~mask, 8)  # and its ringing near the mask's edges
    assert changed[~mask & ~edge].mean() < 0.001  # nothing drawn outside the mask
    assert changed[mask & ~edge].mean() > 0.9
    shift = shown[mask].astype(int) - plain[mask]
    assert shift[:, 2].mean() > 20 and shift[:, 0].mean() < -20  # towards the default colour, dodger blue
    assert canvas(at)["prompts"] == widget_prompts((point,), image.shape[:2])  # the widget draws the point

    negative = Prompt("point", (60.0, 60.0), positive=False)  # a right click, or a left one in negative mode
    click(at, "point", *negative.xy, positive=False)
    steps = state(at).steps
    assert len(steps) == 2 and steps[0].choice == best and steps[1].prompts == (point, negative)
    both = np.array([point.xy, negative.xy]), np.array([1, 0])
    fed = engine.sam_predict(embedding, MODEL, *both, mask_input=expected.logits[[best]])
    np.testing.assert_allclose(steps[1].prediction.logits, fed.logits, atol=1e-4)
    assert np.abs(steps[1].prediction.logits - engine.sam_predict(embedding, MODEL, *both).logits).max() > 1e-2

    at.button(key="seg_undo").click().run()
    assert len(state(at).steps) == 1
    undone = canvas(at)
    assert undone["prompts"] == widget_prompts((point,), image.shape[:2])
    np.testing.assert_array_equal(undone["pixels"], shown)  # back to the first click's overlay

    at.radio(key=f"seg_pick_{state(at).steps[0].serial}").set_value((best + 1) % 3).run()
    picked = canvas(at)["pixels"]
    assert state(at).steps[0].choice == (best + 1) % 3 and (picked != shown).any()

    thumbs = state(at).steps[0].thumbs
    at.text_input(key="seg_name").set_value("astronaut").run()
    assert state(at).steps[0].thumbs is thumbs  # a rerun that changes no mask draws no candidate again
    at.button(key="seg_keep").click().run()
    kept = state(at).kept
    assert [k.name for k in kept] == ["astronaut"] and not state(at).steps and canvas(at)["prompts"] == []
    np.testing.assert_array_equal(kept[0].mask, expected.masks[(best + 1) % 3])
    assert (canvas(at)["pixels"] != plain).any()  # the kept object stays drawn


def test_a_box_and_points_combine_and_a_second_box_replaces_the_first(engine):
    at = open_page()
    image = load_samples().items[0].image
    box, point = Prompt("box", (100.0, 80.0, 400.0, 450.0)), Prompt("point", (250.0, 250.0))
    click(at, "box", *box.xy)
    click(at, "point", *point.xy)
    embedding = engine.sam_embedding(image, MODEL)
    first = engine.sam_predict(embedding, MODEL, None, None, np.array(box.xy))
    fed = first.logits[[int(np.argmax(first.scores))]]
    expected = engine.sam_predict(embedding, MODEL, np.array([point.xy]), np.array([1]), np.array(box.xy), fed)
    np.testing.assert_allclose(state(at).steps[-1].prediction.logits, expected.logits, atol=1e-4)

    other = Prompt("box", (10.0, 10.0, 200.0, 200.0))
    click(at, "box", *other.xy)
    assert state(at).steps[-1].prompts == (point, other)
    assert canvas(at)["prompts"] == widget_prompts((point, other), image.shape[:2])  # one box drawn

    steps = len(state(at).steps)
    click(at, "lasso", 0.0, 0.0)  # a malformed message changes nothing and breaks nothing
    assert len(state(at).steps) == steps


def test_automatic_masks_are_counted_and_drawn():
    at = open_page()
    at.slider(key="seg_auto_side").set_value(4)
    at.slider(key="seg_auto_iou").set_value(0.0)
    at.slider(key="seg_auto_stability").set_value(0.0).run()
    at.button(key="seg_auto_run").click().run()
    assert not at.exception, at.exception
    count = int(at.metric[0].value)
    areas = next(d.value for d in at.dataframe if "area (px)" in d.value.columns)["area (px)"]
    assert count == len(areas) > 0 and list(areas) == sorted(areas, reverse=True)


def test_precompute_and_upload_paths_answer_without_stack_traces():
    at = open_page()
    at.button(key="seg_all_run").click().run()
    assert any("All 7 images are encoded" in s.value for s in at.success)

    at.radio(key="seg_source").set_value("Upload").run()
    assert any("Pick an image" in i.value for i in at.info)
    at.file_uploader(key="seg_upload_file").set_value(("broken.png", b"not a png", "image/png")).run()
    assert any("broken.png" in w.value for w in at.warning) and not at.exception
    png = corpus.GOOD["plain.png"]()
    at.file_uploader(key="seg_upload_file").set_value(("plain.png", png, "image/png")).run()
    assert not at.exception and canvas(at)["pixels"].ndim == 3
