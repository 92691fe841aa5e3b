"""Words-to-masks routes on tiny random-init models: each route's masks are the engine's own SAM answers to the
prompts it says it gave; COCO export round-trips through pycocotools; the set mode covers every image."""

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from core.analysis import retrieval as R
from core.models import Can
from core.models.detection import clip_boxes
from core.models.sam import SamPrompt
from core.text_routes import (
    DEFAULT_ROUTES,
    ROUTE_FAMILIES,
    ROUTES,
    Instances,
    RouteOptions,
    coco_dataset,
    draw_instances,
    instance_rows,
    missing_models,
    segment_set,
)

MODELS = {"detector": "gdino_tiny", "segment": "sam_tiny", "text": "clip_tiny"}
EVERYTHING = RouteOptions(box_threshold=0.0, text_threshold=0.0, score_threshold=0.0, max_instances=4)
PHRASE = "a dog. a red car."


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A synthetic scene: a grey background with a red square and a blue disc."""
    image = np.full((90, 120, 3), 128, np.uint8)
    image[20:50, 15:45] = (220, 30, 30)
    yy, xx = np.mgrid[:90, :120]
    image[(yy - 55) ** 2 + (xx - 85) ** 2 < 15**2] = (30, 30, 220)
    return image


def test_grounded_sam_gives_one_mask_per_box_equal_to_sam_prompted_with_that_box(engine, scene):
    found = ROUTES["grounded_sam"].run(engine, scene, PHRASE, MODELS, EVERYTHING, None)
    detected = engine.detect(scene, PHRASE, "gdino_tiny", 0.0, 0.0)
    order = np.argsort(-detected.scores, kind="stable")[:4]  # the best four (max_instances)
    assert len(found) == 4 and found.masks.shape == (4, 90, 120) and found.masks.dtype == bool
    np.testing.assert_array_equal(found.boxes, clip_boxes(detected.boxes[order], scene.shape[:2]))
    np.testing.assert_array_equal(found.scores, detected.scores[order])
    assert found.labels == [detected.labels[i] for i in order]
    embedding = engine.sam_embedding(scene, "sam_tiny")
    for mask, box in zip(found.masks, found.boxes, strict=True):
        np.testing.assert_array_equal(mask, engine.sam_predict(embedding, "sam_tiny", SamPrompt(box=box)).masks[0])
    assert found.seconds > 0 and "the best 4 kept" in found.note


def test_owlv2_route_gates_boxes_by_the_score_threshold(engine, scene):
    models = {**MODELS, "detector": "owlv2_tiny"}
    options = RouteOptions(box_threshold=0.99, score_threshold=0.0, max_instances=3)
    found = ROUTES["owlv2_sam"].run(engine, scene, PHRASE, models, options, None)
    detected = engine.detect(scene, PHRASE, "owlv2_tiny", 0.0)
    order = np.argsort(-detected.scores, kind="stable")[:3]
    assert len(found) == 3 and found.labels == [detected.labels[i] for i in order]
    np.testing.assert_array_equal(found.scores, detected.scores[order])
    assert detected.boxes[order].max() > 120  # OWLv2's boxes reach into its square padding (random weights) ...
    np.testing.assert_array_equal(found.boxes, clip_boxes(detected.boxes[order], (90, 120)))  # ... SAM's do not


def test_nothing_found_says_so_with_the_best_score(engine, scene):
    steps = []
    options = RouteOptions(box_threshold=1.0, text_threshold=0.0)
    found = ROUTES["grounded_sam"].run(engine, scene, PHRASE, MODELS, options, steps.append)
    best = engine.detect(scene, PHRASE, "gdino_tiny", 0.0, 0.0).best_score
    assert len(found) == 0 and found.masks.shape == (0, 90, 120) and found.boxes.shape == (0, 4)
    assert found.note == f"No instance above the threshold 1.00; the best score was {best:.2f}."
    assert steps == ["Detecting “a dog. a red car.” with Grounding DINO tiny (test)…"]  # SAM never ran


@pytest.mark.parametrize("route, kind", [("maskclip_sam", "maskclip"), ("clip_final_sam", "final")])
def test_clip_routes_prompt_sam_at_the_similarity_peaks(engine, scene, route, kind):
    options = RouteOptions(n_points=2)
    found = ROUTES[route].run(engine, scene, PHRASE, MODELS, options, None)
    assert found.labels == ["a dog", "a red car"]
    text = R.class_embeddings(engine.embed_text(R.expand_prompts(found.labels), "clip_tiny"), 2)
    patches = engine.clip_patch_embeddings(scene, "clip_tiny", route=kind)
    embedding = engine.sam_embedding(scene, "sam_tiny")
    for i, (mask, score, phrase_text) in enumerate(zip(found.masks, found.scores, text, strict=True)):
        similarity = R.patch_text_similarity(patches, phrase_text)
        points = R.peak_points(similarity, scene.shape[:2], 2)
        np.testing.assert_array_equal(found.heat[i], similarity)  # the map the page shows under the panel
        np.testing.assert_array_equal(found.peaks[i], points)
        prediction = engine.sam_predict(embedding, "sam_tiny", SamPrompt(points, np.ones(2, int)))
        np.testing.assert_array_equal(mask, prediction.masks[prediction.scores.argmax()])
        assert score == pytest.approx(similarity.max())
    ys, xs = np.nonzero(found.masks[0])
    if len(xs):
        np.testing.assert_array_equal(found.boxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_maskclip_and_final_routes_use_different_patch_tokens(engine, scene):
    maskclip = engine.clip_patch_embeddings(scene, "clip_tiny", route="maskclip")
    final = engine.clip_patch_embeddings(scene, "clip_tiny", route="final")
    assert maskclip.shape == final.shape and not np.allclose(maskclip, final)


def test_coco_export_round_trips_through_pycocotools(engine, scene):
    found = ROUTES["grounded_sam"].run(engine, scene, PHRASE, MODELS, EVERYTHING, None)
    other = scene[:60, :80].copy()
    second = ROUTES["maskclip_sam"].run(engine, other, PHRASE, MODELS, EVERYTHING, None)
    dataset = coco_dataset([("scene.png", found), ("crop.png", second)], [scene.shape[:2], other.shape[:2]], PHRASE)
    assert dataset["categories"] == [{"id": 1, "name": PHRASE, "supercategory": "phrase"}]
    assert [(i["file_name"], i["height"], i["width"]) for i in dataset["images"]] == [
        ("scene.png", 90, 120),
        ("crop.png", 60, 80),
    ]
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    masks = [*found.masks, *second.masks]
    assert len(dataset["annotations"]) == len(masks) == 6
    for ann, mask in zip(dataset["annotations"], masks, strict=True):
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
        np.testing.assert_array_equal(coco_mask.decode(ann["segmentation"]).astype(bool), mask)
        assert ann["area"] == int(mask.sum()) and ann["category_id"] == 1
    x, y, w, h = dataset["annotations"][0]["bbox"]
    np.testing.assert_allclose([x, y, x + w, y + h], found.boxes[0], rtol=1e-6)
    assert [a["image_id"] for a in dataset["annotations"]] == [1, 1, 1, 1, 2, 2]


def test_segment_set_runs_the_route_on_every_image_with_progress(engine, scene):
    images = [scene, scene[::-1].copy(), scene[:, ::-1].copy()]
    ticks = []
    found = segment_set(engine, images, ROUTES["grounded_sam"], PHRASE, MODELS, EVERYTHING, lambda *t: ticks.append(t))
    assert ticks == [(1, 3), (2, 3), (3, 3)] and [len(f) for f in found] == [4, 4, 4]
    np.testing.assert_array_equal(
        found[1].masks, ROUTES["grounded_sam"].run(engine, images[1], PHRASE, MODELS, EVERYTHING, None).masks
    )
    with pytest.raises(ValueError, match="Type what to find"):
        segment_set(engine, images, ROUTES["grounded_sam"], "...", MODELS, EVERYTHING)


def test_rows_and_picture_of_instances():
    masks = np.zeros((2, 40, 50), bool)
    masks[0, 5:15, 5:25] = True
    masks[1, 20:30, 30:45] = True
    found = Instances(
        masks, np.array([[5, 5, 25, 15], [30, 20, 45, 30]], np.float32), np.array([0.9, 0.4]), ["a", "b"], 1.0
    )
    rows = instance_rows("grounded_sam", found)
    assert rows[0] == {
        "route": "grounded_sam",
        "label": "a",
        "score": 0.9,
        "x0": 5,
        "y0": 5,
        "x1": 25,
        "y1": 15,
        "area": 200,
    }
    assert [r["area"] for r in rows] == [200, 150]
    image = np.zeros((40, 50, 3), np.uint8)
    drawn = draw_instances(image, found)
    assert drawn.shape == image.shape and drawn[10, 15].any() and drawn[25, 38].any()  # masks filled
    assert not drawn[37, 2].any()  # outside every mask and box: untouched


def test_routes_say_which_model_is_missing():
    assert missing_models(ROUTES["grounded_sam"], MODELS) == ""
    no_detector = {"segment": "sam_tiny", "text": "clip_tiny"}
    assert missing_models(ROUTES["grounded_sam"], no_detector) == (
        "Grounded-SAM: Grounding DINO boxes → SAM needs boxes from text, which none of the chosen models "
        "(SAM tiny (test), CLIP tiny (test)) gives."
    )
    assert ROUTES["maskclip_sam"].needs == (Can.DENSE_TEXT, Can.PROMPTS) and set(DEFAULT_ROUTES) <= set(ROUTES)
    assert ROUTE_FAMILIES["grounded_sam"] == {"detector": "grounding_dino"}
