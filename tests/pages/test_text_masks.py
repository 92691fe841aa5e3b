"""Text masks page on the offline default (tiny models, built-in samples): each route's panel shows what the route
computes through core (a fresh engine: the tiny models' random weights are seeded), the COCO exports decode to
those masks, bad input keeps the earlier result, and the whole-set mode writes one COCO JSON."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from streamlit.testing.v1 import AppTest

import components.text_masks_view as view
from components.prompt_canvas import widget_prompts
from core.concept_routes import paligemma_route
from core.data import load_samples
from core.engine import Engine
from core.models import Can
from core.models.paligemma import parse_detections
from core.segment_session import Prompt
from core.text_routes import ROUTES, Route, RouteOptions
from tests.widgets import component_data, record_spinners, send_trigger

APP = str(Path(__file__).resolve().parents[2] / "app.py")
MODELS = {"segment": "sam_tiny@random", "text": "clip_tiny@random", "detector": "gdino_tiny@random"}


@pytest.fixture(scope="module")
def fresh() -> Engine:
    return Engine(device="cpu", cache=None)


@pytest.fixture
def saved(monkeypatch) -> dict[str, dict]:
    """The JSON files the page's download buttons would give, by file name (built as a click builds them)."""
    files: dict[str, dict] = {}

    def download_json(make, file_name, key, label="Download JSON", where=None, **options):
        files[file_name] = json.loads(json.dumps(make()))

    monkeypatch.setattr(view, "download_json", download_json)
    return files


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/text_masks.py").run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def panels(at: AppTest) -> list[str]:
    """Each route panel's caption: "K instances · S s[ · note]"."""
    return [c for c in captions(at) if re.match(r"\d+ instances? · \d+\.\d\d s", c)]


def test_side_by_side_shows_each_routes_masks_and_exports_them(fresh, saved, monkeypatch):
    spinners = record_spinners(monkeypatch)
    at = open_page()
    assert [t for t in spinners if t.endswith("…")] == [f"{ROUTES[r].title}…" for r in ("grounded_sam", "maskclip_sam")]
    image = load_samples().images[0]
    ours = ("grounded_sam", "owlv2_sam", "maskclip_sam", "clip_final_sam")
    models = {name: MODELS | {"detector": "owlv2_tiny@random"} if name == "owlv2_sam" else MODELS for name in ours}
    expected = {name: ROUTES[name].run(fresh, image, "a cat.", models[name], RouteOptions(), None) for name in ours}
    assert [m.value for m in at.markdown if m.value.startswith("**")][:2] == [
        f"**{ROUTES['grounded_sam'].title}**",
        f"**{ROUTES['maskclip_sam'].title}**",
    ]  # the default routes
    panel = panels(at)
    assert panel[0].startswith(f"{len(expected['grounded_sam'])} instances · ")
    assert "character-level stand-in for BERT" in panel[0]  # random Grounding DINO says how it read the phrase
    assert panel[1].startswith("1 instance · ") and "4×4 patch grid" in panel[1]
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["PNG", "PNG", "Instances (CSV)", "Grid (PNG)"]  # and the COCO JSON, built into `saved`
    (coco,) = saved.values()
    assert coco["categories"][0]["name"] == "a cat." and coco["images"][0]["file_name"] == load_samples().names[0]
    masks = [coco_mask.decode(a["segmentation"]).astype(bool) for a in coco["annotations"]]
    np.testing.assert_array_equal(np.array(masks), expected["grounded_sam"].masks)

    at.multiselect(key="tm_routes").set_value(list(ROUTES)).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="tm_owlv2").value == "owlv2_tiny@random"  # each detector route's model, picked here
    panel = panels(at)
    assert len(panel) == len(ROUTES) == 6  # with SAM 3 and PaliGemma 2 → SAM (core/concept_routes.py)
    assert panel[1].startswith(f"{len(expected['owlv2_sam'])} instances · ")

    at.selectbox(key="tm_coco").set_value("clip_final_sam").run()
    coco = saved[f"{Path(load_samples().names[0]).stem}_clip_final_sam_coco.json"]
    (ann,) = coco["annotations"]
    np.testing.assert_array_equal(
        coco_mask.decode(ann["segmentation"]).astype(bool), expected["clip_final_sam"].masks[0]
    )


def test_thresholds_bad_phrases_and_routes_that_cannot_run(monkeypatch):
    monkeypatch.setitem(ROUTES, "needs_attention", Route("needs_attention", "Attention route", (Can.ATTENTION,), None))
    at = open_page()
    at.slider(key="tm_box").set_value(1.0).run()
    panel = next(c for c in captions(at) if c.startswith("0 instances"))
    assert "No instance above the threshold 1.00; the best score was" in panel

    at.multiselect(key="tm_routes").set_value(["maskclip_sam", "needs_attention"]).run()
    assert any(i.value.startswith("Attention route needs attention maps, which none of the chosen") for i in at.info)

    for bad in ("...", "", "?!"):
        at.text_input(key="tm_prompt").set_value(bad).run()
        assert not at.exception and any("Type what to find" in i.value for i in at.info)
        assert "Earlier result, for “a cat.”:" in captions(at) and len(at.get("image")) == 2  # kept (mask + map)
    at.text_input(key="tm_prompt").set_value("猫. " + "a dog and " * 150).run()  # non-Latin, 1,500 characters
    assert not at.exception and not at.error


def test_instance_mode_segments_the_working_set_into_one_coco_json(fresh, saved):
    at = open_page()
    at.selectbox(key="tm_set_route").set_value("grounded_sam").run()
    assert any("Press Segment" in i.value for i in at.info)
    at.button(key="tm_set_go").click().run()
    assert not at.exception and not at.error
    samples = load_samples()
    table = next(d.value for d in at.dataframe if "instances" in d.value.columns)
    assert list(table["image"]) == samples.names
    coco = saved["working_set_coco.json"]
    assert [i["file_name"] for i in coco["images"]] == samples.names
    for image_id in (1, len(samples.names)):
        found = ROUTES["grounded_sam"].run(fresh, samples.images[image_id - 1], "a cat.", MODELS, RouteOptions(), None)
        anns = [a for a in coco["annotations"] if a["image_id"] == image_id]
        assert len(anns) == len(found) == table["instances"][image_id - 1]
        for ann, mask in zip(anns, found.masks, strict=True):
            np.testing.assert_array_equal(coco_mask.decode(ann["segmentation"]).astype(bool), mask)
    at.slider(key="tm_box").set_value(0.9).run()  # other settings: the results stay, marked as earlier
    assert "These results are from earlier settings; press Segment to run the current ones." in captions(at)


def test_sam3_finds_the_concept_of_the_exemplar_box_drawn_on_the_image(fresh, saved):
    """A drag on the image (sent as the prompt widget sends it) is SAM 3's exemplar box: the panel's masks are the
    engine's for the phrase and that box; Clear returns to the phrase alone; with a bad phrase the box runs alone."""
    at = open_page()
    at.multiselect(key="tm_routes").set_value(["sam3"]).run()
    at.slider(key="tm_score").set_value(0.25).run()
    model = at.selectbox(key="tm_sam3").value
    image = load_samples().images[0]  # 512 × 512
    stem = Path(load_samples().names[0]).stem
    assert component_data(at, "vfm_prompt_canvas")["prompts"] == []
    assert at.button(key="tm_exemplar_clear").disabled

    def shown() -> tuple[np.ndarray, list[float]]:
        coco = saved[f"{stem}_sam3_coco.json"]
        masks = [coco_mask.decode(a["segmentation"]).astype(bool) for a in coco["annotations"]]
        return np.array(masks).reshape(-1, *image.shape[:2]), [a["score"] for a in coco["annotations"]]

    def agree(found) -> None:
        masks, scores = shown()
        assert len(found.scores) > 0 and panels(at)[0].startswith(f"{len(found.scores)} instance")
        np.testing.assert_array_equal(masks, found.masks)
        np.testing.assert_allclose(scores, found.scores, rtol=1e-6)

    box = (100.0, 120.0, 300.0, 400.0)
    send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": "box", "xy": [v / 512 for v in box], "positive": True})
    assert not at.exception and not at.error
    assert component_data(at, "vfm_prompt_canvas")["prompts"] == widget_prompts([Prompt("box", box)], (512, 512))
    with_box = fresh.concept_masks(image, "a cat.", model, exemplar_box=np.array(box, np.float32), threshold=0.25)
    phrase_only = fresh.concept_masks(image, "a cat.", model, threshold=0.25)
    assert not np.array_equal(with_box.scores, phrase_only.scores)  # the box changes SAM 3's answer
    agree(with_box)
    assert "Prompted with the exemplar box and the phrase." in panels(at)[0]

    send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": "point", "xy": [0.5, 0.5], "positive": True})
    agree(with_box)  # a click draws no box: the box stays

    at.button(key="tm_exemplar_clear").click().run()
    assert component_data(at, "vfm_prompt_canvas")["prompts"] == []
    agree(phrase_only)

    send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": "box", "xy": [v / 512 for v in box], "positive": True})
    at.text_input(key="tm_prompt").set_value("...").run()  # no phrase: the box alone
    assert not at.exception and any(i.value.endswith("SAM 3 runs on the exemplar box alone.") for i in at.info)
    alone = fresh.concept_masks(image, "", model, exemplar_box=np.array(box, np.float32), threshold=0.25)
    agree(alone)
    assert saved[f"{stem}_sam3_coco.json"]["categories"][0]["name"] == "exemplar"


def test_ask_paligemma_shows_the_engines_answers_their_boxes_and_sams_masks(fresh, monkeypatch):
    """The Ask PaliGemma 2 tab (tiny random PaliGemma): each answer shown is `engine.generate`'s text for the task's
    prompt and budget; a "detect" answer's boxes drawn are `parse_detections` of it, and with "Give the boxes to SAM"
    the masks are the PaliGemma → SAM route's; a "segment" answer says why its <seg> tokens give no mask."""
    drawn: list[tuple[np.ndarray, list[str]]] = []
    real = view.draw_boxes
    monkeypatch.setattr(
        view, "draw_boxes", lambda image, boxes, texts: drawn.append((boxes, texts)) or real(image, boxes, texts)
    )
    spinners = record_spinners(monkeypatch)
    at = open_page()
    model = at.selectbox(key="tm_ask_model").value
    assert model == "paligemma_tiny@random"
    image = load_samples().images[0]
    assert any(i.value.startswith("Press Ask: PaliGemma 2 writes at most 32 tokens") for i in at.info)

    def ask(prompt: str, budget: int):
        at.button(key="tm_ask_go").click().run()
        assert not at.exception and not at.error
        answer = fresh.generate(image, prompt, model, budget)
        assert [c.value for c in at.code] == [answer.text]
        pace = f"{len(answer.tokens)} tokens in "
        assert any(c.startswith(pace) and " s per token)" in c for c in captions(at))
        return answer

    assert at.button(key="tm_ask_go").label == "Ask “caption en”"
    ask("caption en", 32)
    assert not drawn

    at.segmented_control(key="tm_ask_task").set_value("detect").run()
    assert at.button(key="tm_ask_go").label == "Ask “detect a cat”"
    answer = ask("detect a cat", 64)
    found = parse_detections(answer.text, image.shape[:2])
    assert len(found.boxes) > 0  # the tiny random model writes <loc> groups
    boxes, texts = drawn[-1]
    np.testing.assert_array_equal(boxes, found.boxes)
    assert texts == [label or "?" for label in found.labels]
    assert f"{len(found.boxes)} boxes parsed from the answer's <loc> tokens." in captions(at)

    at.toggle(key="tm_ask_sam").set_value(True).run()
    assert not at.exception and not at.error and "SAM: one mask per box…" in spinners
    models = {"vlm": model, "segment": "sam_tiny@random"}
    masks = paligemma_route(fresh, image, "a cat.", models, RouteOptions(), None)
    np.testing.assert_array_equal(masks.boxes, found.boxes[: len(masks)])
    assert any(c.startswith(f"{len(masks)} masks from ") for c in captions(at))

    at.segmented_control(key="tm_ask_task").set_value("segment").run()
    ask("segment a cat", 96)
    assert view.SEG_TOKENS_NOTE in captions(at)
    at.text_input(key="tm_prompt").set_value("...").run()
    assert any(i.value.startswith("Type what to find") for i in at.info) and not at.code
