"""The Segment page with the tiny SAM on the built-in samples: clicks sent as the prompt widget sends them,
overlays checked on pixels.

AppTest runs no JavaScript, so a click or drag is sent as the widget's "prompt" trigger, in the shape its page
code sends (fractions of the image's width and height; `tests.widgets.send_trigger`); the overlay is read back
from the background image the widget is given. Expected masks come from the test engine (same seeded random
weights), not from the page.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.utils.transforms import ResizeLongestSide
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from components import segment_view
from components.prompt_canvas import CanvasFrame, gesture_prompt, mask_layer, widget_prompts
from core import engine as engine_module
from core.analysis.imaging import palette, resize_map
from core.analysis.masks import mask_contour, overlay_masks
from core.data import load_samples
from core.engine import Engine
from core.models.sam import SamPrompt
from core.registry import parse
from core.segment_session import Prompt
from core.weights import WeightsStatus
from tests import corpus
from tests.widgets import component, component_data, data_url_pixels, record_spinners, send_trigger

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


def _composited(layer_url: str, image: np.ndarray) -> np.ndarray:
    """A mask layer laid over an HWC uint8 image, as the browser composites an image with alpha (float)."""
    layer = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer_url.split(",", 1)[1]))).convert("RGBA"))
    opacity = layer[..., 3:] / 255
    return layer[..., :3] * opacity + image * (1 - opacity)


@pytest.mark.parametrize("count", [1, 4, 7, 40])
@pytest.mark.parametrize(("alpha", "contour"), [(0.5, 2), (0.05, 0), (1.0, 1)])
def test_the_mask_layer_over_the_image_draws_what_overlay_masks_draws(count, alpha, contour):
    """Overlapping masks at image size, drawn at another size: the layer, laid over the image at that size, equals
    `overlay_masks` on it up to rounding; outside every mask it is fully transparent. 40 masks make more
    combinations than a palette holds."""
    rng = np.random.default_rng(count)
    size, shown = (60, 80), (150, 200)
    yy, xx = np.mgrid[: size[0], : size[1]]
    centres, radii = rng.uniform(0, 1, (count, 2)) * size, rng.uniform(8, 30, count)
    masks = [(yy - cy) ** 2 + (xx - cx) ** 2 < r**2 for (cy, cx), r in zip(centres, radii, strict=True)]
    colors = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(count)]
    image = rng.integers(0, 256, (*shown, 3), dtype=np.uint8)
    url = mask_layer(masks, colors, alpha, contour, shown)
    small = [resize_map(m, shown, nearest=True) > 0.5 for m in masks]
    expected = overlay_masks(image, small, np.array(colors, np.uint8), alpha, contour)
    drawn = _composited(url, image)
    assert np.abs(drawn - expected).max() <= 1.0 + 0.5 * min(
        count, 6
    )  # the layer rounds; each blend of overlay_masks too
    outside = ~np.any(small, axis=0)
    assert outside.any() and (drawn[outside] == image[outside]).all()
    assert mask_layer([], [], alpha, contour, shown) == ""


def test_engine_decodes_prompts_in_sams_frame_on_a_non_square_image(engine):
    """Our prompts, given in image pixels, decode exactly like hand-mapped coordinates fed to the decoder."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    points, labels, box = np.array([[20.0, 70.0], [120.5, 10.0]]), np.array([1, 0]), np.array([5.0, 8.0, 100.0, 80.0])
    embedding = engine.sam_embedding(image, MODEL)
    ours = engine.sam_predict(embedding, MODEL, SamPrompt(points, labels, box))

    module = engine.model(MODEL).adapter.module
    predictor = SamPredictor(module)
    predictor.set_image(image)
    side = module.image_encoder.img_size
    with torch.inference_mode():
        _, scores, logits = predictor.predict_torch(
            torch.as_tensor(_sam_frame(points, (90, 140), side), dtype=torch.float)[None],
            torch.as_tensor(labels)[None],
            torch.as_tensor(_sam_frame(box, (90, 140), side), dtype=torch.float)[None],
            multimask_output=False,  # several prompts: SAM's single-mask output
        )
    np.testing.assert_allclose(ours.logits, logits[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.scores, scores[0].numpy(), atol=1e-5)
    swapped = engine.sam_predict(
        embedding, MODEL, SamPrompt(points[:, ::-1].copy(), labels, box)
    )  # (Y, X) would be a bug
    assert np.abs(swapped.logits - ours.logits).max() > 1e-3


def test_mask_logit_feedback_changes_the_next_prediction(engine):
    image = load_samples().items[1].image
    embedding = engine.sam_embedding(image, MODEL)
    first = engine.sam_predict(embedding, MODEL, SamPrompt(np.array([[200.0, 150.0]]), np.array([1])))
    two = np.array([[200.0, 150.0], [60.0, 40.0]]), np.array([1, 0])
    plain = engine.sam_predict(embedding, MODEL, SamPrompt(*two))
    fed = engine.sam_predict(embedding, MODEL, SamPrompt(*two, None, first.logits[[int(np.argmax(first.scores))]]))
    assert np.abs(fed.logits - plain.logits).max() > 1e-2


# ---- the page -------------------------------------------------------------------------------------
def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception, at.exception
    return at


def canvas(at: AppTest) -> dict:
    """What the prompt widget is given, and what it shows ("pixels", HWC uint8): its mask layer (a PNG with
    alpha, or none) laid over its image, as the browser composites the two."""
    data = component_data(at, "vfm_prompt_canvas")
    image = data_url_pixels(data["image"])
    shown = _composited(data["layer"], image).round().astype(np.uint8) if data["layer"] else image
    return {**data, "pixels": shown}


def click(at: AppTest, kind: str, *xy: float, positive: bool = True, side: float = 512.0) -> None:
    """A click (two numbers) or a drag (four) at these pixels of the 512 × 512 first sample, sent as the widget
    sends it: as fractions of the image."""
    send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": kind, "xy": [v / side for v in xy], "positive": positive})
    assert not at.exception, at.exception


def state(at: AppTest):
    (only,) = at.session_state["seg_images"].values()
    return only


def test_a_click_draws_the_mask_overlay_and_the_next_click_feeds_its_logits(engine, monkeypatch):
    at = open_page()
    spinners = record_spinners(monkeypatch)
    image = load_samples().items[0].image  # astronaut, 512 × 512: the page's first image
    frame = CanvasFrame.fit(image.shape[:2])
    plain = canvas(at)["pixels"]
    assert plain.shape[:2] == (frame.height, frame.width) and canvas(at)["prompts"] == []

    point = Prompt("point", (256.0, 200.0))
    click(at, "point", *point.xy)
    embedding = engine.sam_embedding(image, MODEL)
    expected = engine.sam_predict(embedding, MODEL, SamPrompt(np.array([point.xy]), np.array([1])))
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
    assert "Prompting SAM with 1 point…" in spinners
    picker = at.radio(key=f"seg_pick_{state(at).steps[0].serial}")
    scores = expected.scores
    assert picker.options == [f"{i + 1} (predicted IoU {s:.2f})" for i, s in enumerate(scores)]  # SAM's guess
    captions = [c for image in at.get("image") for c in image.captions]
    assert [f"{i + 1} · predicted IoU {s:.2f}" for i, s in enumerate(scores)] == captions[-len(scores) :]

    negative = Prompt("point", (60.0, 60.0), positive=False)  # a right click, or a left one in negative mode
    click(at, "point", *negative.xy, positive=False)
    steps = state(at).steps
    assert len(steps) == 2 and steps[0].choice == best and steps[1].prompts == (point, negative)
    both = np.array([point.xy, negative.xy]), np.array([1, 0])
    predictor = SamPredictor(engine.model(MODEL).adapter.module)  # upstream, on the same tiny weights
    predictor.set_image(image)
    masks, _, logits = predictor.predict(*both, mask_input=expected.logits[[best]], multimask_output=False)
    assert steps[1].prediction.masks.shape == masks.shape == (1, *image.shape[:2])  # two points: one mask
    np.testing.assert_allclose(steps[1].prediction.logits, logits, atol=1e-4)
    assert (steps[1].prediction.masks == masks).mean() > 0.999
    assert (
        np.abs(steps[1].prediction.logits - engine.sam_predict(embedding, MODEL, SamPrompt(*both)).logits).max() > 1e-2
    )
    assert all(not r.key.startswith("seg_pick_") for r in at.radio)  # nothing to pick from
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions[-1] == f"SAM's one mask for several prompts · predicted IoU {steps[1].prediction.scores[0]:.2f}"
    two_points = canvas(at)["pixels"]
    one_mask = resize_map(masks[0], plain.shape[:2], nearest=True) > 0.5
    edge = mask_contour(one_mask, 8) | mask_contour(~one_mask, 8)
    changed = np.abs(two_points.astype(int) - plain).max(axis=2) > 20
    assert changed[~one_mask & ~edge].mean() < 0.001 and changed[one_mask & ~edge].mean() > 0.9

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


def test_a_click_sends_the_image_once_and_then_only_a_mask_layer(monkeypatch):
    """The image goes to the widget as a JPEG encoded once per image; a click re-encodes only the small mask
    layer, and the image the widget is given stays the same string (#24)."""
    at = open_page()
    before = canvas(at)
    assert before["layer"] == ""
    encoded = []
    real = segment_view.to_jpeg
    monkeypatch.setattr(segment_view, "to_jpeg", lambda image, *a: encoded.append(image.shape) or real(image, *a))
    click(at, "point", 256.0, 200.0)
    click(at, "point", 100.0, 300.0, positive=False)
    after = canvas(at)
    assert encoded == [] and after["image"] == before["image"]
    # smaller than the image even for the random tiny SAM's ragged masks (a trained model's: ~1 kB)
    assert after["layer"].startswith("data:image/png;base64,") and len(after["layer"]) < len(after["image"]) / 2


def _widget_says_shown(at: AppTest, image_id: str | None) -> None:
    """Rerun as after the widget's `setStateValue("shown", image_id)` in the browser (the component's state)."""
    states = at._tree.get_widget_states()
    kept = [w for w in states.widgets if w.id != component(at, "vfm_prompt_canvas").proto.id]
    del states.widgets[:]
    states.widgets.extend(
        [*kept, WidgetState(id=component(at, "vfm_prompt_canvas").proto.id, json_value=json.dumps({"shown": image_id}))]
    )
    at._run(states)
    assert not at.exception, at.exception


def test_once_the_widget_has_the_image_answers_leave_it_out_until_it_asks_again():
    at = open_page()
    first = component_data(at, "vfm_prompt_canvas")
    assert first["image"].startswith("data:image/jpeg;base64,") and first["imageId"]
    _widget_says_shown(at, first["imageId"])
    click(at, "point", 256.0, 200.0)
    kept = component_data(at, "vfm_prompt_canvas")
    assert kept["image"] == "" and kept["imageId"] == first["imageId"] and kept["layer"]  # the masks only
    _widget_says_shown(at, None)  # it lost the image
    assert component_data(at, "vfm_prompt_canvas")["image"] == first["image"]
    _widget_says_shown(at, "another image")
    assert component_data(at, "vfm_prompt_canvas")["image"] == first["image"]


def test_a_click_hashes_no_image(monkeypatch):
    """The embedding carries its image's hash and the session its last embedding: a click (a rerun, under
    AppTest the whole page) never hashes the full-resolution image again (#24)."""
    at = open_page()
    hashed = []

    def spy(image: np.ndarray) -> str:
        hashed.append(image.shape)
        return real(image)

    real = segment_view.image_hash
    monkeypatch.setattr(segment_view, "image_hash", spy)
    monkeypatch.setattr(engine_module, "image_hash", spy)
    click(at, "point", 256.0, 200.0)
    assert len(state(at).steps) == 1 and hashed == []


def test_a_box_and_points_combine_and_a_second_box_replaces_the_first(engine, monkeypatch):
    at = open_page()
    spinners = record_spinners(monkeypatch)
    image = load_samples().items[0].image
    box, point = Prompt("box", (100.0, 80.0, 400.0, 450.0)), Prompt("point", (250.0, 250.0))
    click(at, "box", *box.xy)
    click(at, "point", *point.xy)
    embedding = engine.sam_embedding(image, MODEL)
    first = engine.sam_predict(embedding, MODEL, SamPrompt(box=np.array(box.xy)))
    assert first.masks.shape[0] == len(state(at).steps[0].prediction.scores) == 1  # a box alone: one mask
    fed = first.logits[[0]]
    expected = engine.sam_predict(
        embedding, MODEL, SamPrompt(np.array([point.xy]), np.array([1]), np.array(box.xy), fed)
    )
    np.testing.assert_allclose(state(at).steps[-1].prediction.logits, expected.logits, atol=1e-4)
    prompting = [text for text in spinners if text.startswith("Prompting")]
    assert prompting == ["Prompting SAM with a box…", "Prompting SAM with 1 point and a box…"]

    other = Prompt("box", (10.0, 10.0, 200.0, 200.0))
    click(at, "box", *other.xy)
    assert state(at).steps[-1].prompts == (point, other)
    assert canvas(at)["prompts"] == widget_prompts((point, other), image.shape[:2])  # one box drawn

    steps = len(state(at).steps)
    click(at, "lasso", 0.0, 0.0)  # a malformed message changes nothing and breaks nothing
    assert len(state(at).steps) == steps


def spy_progress(monkeypatch) -> list[tuple[str, list[tuple[int, int]]]]:
    """(label, updates) of each progress bar the Segment view opens: what the page's bar was told."""
    bars, real = [], segment_view.progress_bar

    def spy(label: str):
        update, close = real(label)
        bars.append((label, []))
        return (lambda *a: bars[-1][1].append(a) or update(*a)), close

    monkeypatch.setattr(segment_view, "progress_bar", spy)
    return bars


def test_random_weights_get_open_thresholds_a_quick_preview_then_the_full_grid_with_progress(monkeypatch):
    at = open_page()
    bars = spy_progress(monkeypatch)
    assert at.slider(key="seg_auto_iou_random").value == 0.0 and at.slider(key="seg_auto_stability_random").value == 0.0
    assert any(i.value.startswith("Random weights: the quality thresholds start at 0") for i in at.info)
    side = at.slider(key="seg_auto_side").value
    assert side == 16 and at.button(key="seg_auto_run").label == "Full grid · 16×16 = 256 points"
    assert at.button(key="seg_auto_preview").label == "Quick preview · 8×8 = 64 points"
    assert any(i.value.endswith("then start with the quick preview, or decode the full grid.") for i in at.info)

    at.button(key="seg_auto_preview").click().run()
    assert not at.exception, at.exception
    assert bars[-1] == ("Prompting SAM with 64 points (8×8 grid), batches", [(i, 4) for i in range(5)])  # to the end
    assert any(c.value.startswith("Quick preview from 64 point prompts") for c in at.caption)
    preview = int(at.metric[0].value)
    assert preview > 0

    at.slider(key="seg_auto_side").set_value(10).run()  # the preview stays until the full grid is decoded
    assert any(c.value.startswith("Quick preview from 64 point prompts") for c in at.caption)
    at.button(key="seg_auto_run").click().run()
    assert bars[-1][0].startswith("Prompting SAM with 100 points (10×10 grid)") and bars[-1][1][-1] == (7, 7)
    assert not any(c.value.startswith("Quick preview") for c in at.caption)
    count = int(at.metric[0].value)
    areas = next(d.value for d in at.dataframe if "area (px)" in d.value.columns)["area (px)"]
    assert count == len(areas) > 0 and list(areas) == sorted(areas, reverse=True)


def test_trained_weights_keep_sams_thresholds_and_an_empty_result_names_them(monkeypatch):
    monkeypatch.setattr(Engine, "weights_status", lambda self, m: WeightsStatus(parse(m), "local", None, "test"))
    at = open_page()
    assert at.slider(key="seg_auto_iou_trained").value == 0.88
    assert at.slider(key="seg_auto_stability_trained").value == 0.95
    assert not any("Random weights" in i.value for i in at.info)
    at.slider(key="seg_auto_side").set_value(4).run()
    assert all(b.key != "seg_auto_preview" for b in at.button)  # no preview of a grid this small
    assert any(i.value.endswith("then decode the grid.") for i in at.info)
    at.button(key="seg_auto_run").click().run()  # the random tiny SAM: nothing passes SAM's thresholds
    assert not at.exception, at.exception
    assert any(
        i.value == "No mask passed the thresholds (predicted IoU ≥ 0.88, stability ≥ 0.95) from 16 point prompts. "
        "Lower the predicted IoU and stability thresholds, or use more points per side."
        for i in at.info
    )


def test_precompute_and_upload_paths_answer_without_stack_traces():
    at = open_page()
    at.button(key="seg_all_run").click().run()
    assert any(s.value.startswith("Encoded 7 images:") for s in at.success)

    at.radio(key="seg_source").set_value("Upload").run()
    assert any("Pick an image" in i.value for i in at.info)
    at.file_uploader(key="seg_upload_file").set_value(("broken.png", b"not a png", "image/png")).run()
    assert any("broken.png" in w.value for w in at.warning) and not at.exception
    png = corpus.GOOD["plain.png"]()
    at.file_uploader(key="seg_upload_file").set_value(("plain.png", png, "image/png")).run()
    assert not at.exception and canvas(at)["pixels"].ndim == 3


def record_media(monkeypatch) -> list[tuple[bytes, str]]:
    """(bytes, mimetype) of every media file the page hands to the browser from now on (st.image's pictures)."""
    files, real = [], MemoryMediaFileStorage.load_and_get_id

    def spy(self, data, mimetype, *args, **kwargs):
        files.append((data, mimetype))
        return real(self, data, mimetype, *args, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return files


def test_automatic_masks_are_counted_and_drawn(engine, monkeypatch):
    """The preview's masks are upstream's generator's, counted on the page, and drawn as the overlay says: each
    mask blended at opacity 0.55 over the ones before it (largest first), then each 1-pixel contour (a mask pixel
    with a 4-neighbour outside it) in its opaque colour; every pixel outside all masks unchanged. Sent as PNG, so
    every pixel is compared exactly."""
    at = open_page()
    media = record_media(monkeypatch)
    at.button(key="seg_auto_preview").click().run()
    assert not at.exception, at.exception

    image = load_samples().items[0].image
    generator = SamAutomaticMaskGenerator(
        engine.model(MODEL).adapter.module, points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    with torch.inference_mode():
        records = sorted(generator.generate(image), key=lambda r: -r["area"])
    masks = np.array([r["segmentation"] for r in records])
    assert int(at.metric[0].value) == len(masks) >= 1  # the random tiny SAM: one mask after box NMS

    expected = image.copy()
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    for mask, color in zip(masks, palette(len(masks)), strict=True):
        expected[mask] = np.round(expected[mask] * np.float32(0.45) + color * np.float32(0.55))
        expected[mask & ~ndimage.binary_erosion(mask, cross, border_value=1)] = color
    (drawn,) = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data, kind in media if kind == "image/png"]
    np.testing.assert_array_equal(drawn, expected)
    outside = ~masks.any(axis=0)
    assert outside.any() and (drawn[outside] == image[outside]).all()


# ---- SAM 2 and EdgeTAM on the same page ----------------------------------------------------------------
@pytest.mark.parametrize("model", ["sam2_tiny", "edgetam_tiny"])
def test_sam2_clicks_draw_its_mask_and_two_points_show_one_candidate(engine, model):
    """The sidebar's Segmenter set to SAM 2 (EdgeTAM): a click draws SAM 2's best candidate of three; a second
    point gives one mask, SAM 2's single-mask output on the first click's fed-back logits, and no picker."""
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["sidebar_segment_model"] = model  # what the sidebar's picker stores
    at.run()
    assert not at.exception, at.exception
    image = load_samples().items[0].image
    plain = canvas(at)["pixels"]
    point = Prompt("point", (256.0, 200.0))
    click(at, "point", *point.xy)
    (key,) = at.session_state["seg_images"]
    assert key.startswith(f"{model}@random|")
    embedding = engine.sam_embedding(image, model)
    expected = engine.sam_predict(embedding, model, SamPrompt(np.array([point.xy]), np.array([1])))
    step = state(at).steps[0]
    assert step.prediction.masks.shape == (3, *image.shape[:2])
    np.testing.assert_array_equal(step.prediction.masks, expected.masks)
    best = int(np.argmax(expected.scores))
    mask = resize_map(expected.masks[best], plain.shape[:2], nearest=True) > 0.5
    assert 0.02 < mask.mean() < 0.98
    shown = canvas(at)["pixels"]
    changed = np.abs(shown.astype(int) - plain).max(axis=2) > 20
    shift = shown[mask].astype(int) - plain[mask]
    assert changed[mask].mean() > 0.99 and shift[:, 2].mean() > 20 and shift[:, 0].mean() < -20  # dodger blue
    assert changed[~mask].mean() < changed[mask].mean() - 0.3  # the JPEG background rings near the mask's edges
    edge = mask_contour(mask, 8) | mask_contour(~mask, 8)
    if model == "sam2_tiny":  # its mask has areas away from edges (the tiny EdgeTAM's is fine-grained noise)
        assert changed[~mask & ~edge].mean() < 0.001
    assert at.radio(key=f"seg_pick_{step.serial}").options[0].startswith("1 (predicted IoU")

    negative = Prompt("point", (60.0, 60.0), positive=False)
    click(at, "point", *negative.xy, positive=False)
    second = state(at).steps[1].prediction
    both = SamPrompt(np.array([point.xy, negative.xy]), np.array([1, 0]), None, expected.logits[[best]])
    assert not both.multimask and second.masks.shape == (1, *image.shape[:2])
    np.testing.assert_array_equal(second.masks, engine.sam_predict(embedding, model, both).masks)
    assert all(not r.key.startswith("seg_pick_") for r in at.radio)
    captions = [c for shown in at.get("image") for c in shown.captions]
    assert captions[-1] == f"SAM's one mask for several prompts · predicted IoU {second.scores[0]:.2f}"


def test_on_a_cpu_the_page_suggests_the_model_that_encodes_fastest(monkeypatch):
    monkeypatch.setattr(segment_view, "get_engine", lambda: Engine(device="cpu", cache=None))
    monkeypatch.setattr(segment_view, "_measured_s", lambda: {})
    hint = segment_view.faster_model_hint("sam_vit_b@random")
    assert hint.startswith("On this CPU, EdgeTAM encodes an image in about 12 s, SAM ViT-B in about 35 s")
    assert hint.endswith(f"2-core CPU, {segment_view.CPU_EMBED_DATE}): pick EdgeTAM as the Segmenter in the sidebar "
                         "for a quicker first mask.")  # fmt: skip
    assert segment_view.faster_model_hint("edgetam") is None  # the fastest already
    assert segment_view.faster_model_hint("sam_tiny") is None  # test models: no advice
    measured = {"sam_vit_b|cpu": 15.0, "edgetam|cpu": 10.0}  # this server measured both: its numbers count
    monkeypatch.setattr(segment_view, "_measured_s", lambda: measured)
    assert segment_view.faster_model_hint("sam_vit_b") is None
    monkeypatch.setattr(segment_view, "get_engine", lambda: Engine(device="cuda:0", cache=None))
    assert segment_view.faster_model_hint("sam2_hiera_large") is None  # on a GPU every encoder is quick
