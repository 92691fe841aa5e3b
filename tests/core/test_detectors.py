"""Text-prompted detectors (Grounding DINO, OWLv2): equal to the upstream processor's own pipeline on the same random
weights; the glue from normalised (cx, cy, w, h) to pixels; the offline tokenizers; the raw-output cache."""

import numpy as np
import open_clip
import pytest
import torch
from transformers import (
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    Owlv2ForObjectDetection,
    Owlv2ImageProcessor,
    Owlv2Processor,
)

from core import registry
from core.models import Can, count_parameters, family, owlv2
from core.models import grounding_dino as gd
from core.models.detection import clip_boxes, joined, split_phrases

PHRASE = "a dog. a red car."


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (96, 128, 3), dtype=np.uint8)


def _upstream_gdino(image, text, box_threshold, text_threshold):
    """Grounding DINO exactly as its model card runs it, on the registry's tiny config with the seeded weights."""
    spec = registry.get("gdino_tiny")
    torch.manual_seed(0)  # what `build_adapter` seeds
    model = GroundingDinoForObjectDetection(gd._config(spec)).eval()
    sizes = {"shortest_edge": 128, "longest_edge": 213}
    processor = GroundingDinoProcessor(GroundingDinoImageProcessor(size=sizes), gd.character_tokenizer())
    inputs = processor(images=image, text=text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    (found,) = processor.post_process_grounded_object_detection(
        outputs,
        inputs.input_ids,
        threshold=box_threshold,
        text_threshold=text_threshold,
        target_sizes=[image.shape[:2]],
    )
    return found


@pytest.mark.parametrize("box_threshold, text_threshold", [(0.0, 0.0), (0.35, 0.25), (0.9, 0.6)])
def test_grounding_dino_equals_its_processors_own_post_processing(engine, photo, box_threshold, text_threshold):
    ours = engine.detect(photo, PHRASE, "gdino_tiny", box_threshold, text_threshold)
    theirs = _upstream_gdino(photo, PHRASE, box_threshold, text_threshold)
    assert len(ours) == len(theirs["scores"])
    np.testing.assert_allclose(ours.boxes, theirs["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.scores, theirs["scores"].numpy(), atol=1e-5)
    assert ours.labels == [label.strip() for label in theirs["text_labels"]]
    if box_threshold == 0.0:
        assert len(ours) == 12  # every query of the tiny model: random weights give boxes at threshold 0
        assert ours.best_score == pytest.approx(float(theirs["scores"].max()), abs=1e-5)


def _upstream_owlv2(image, phrases, threshold):
    spec = registry.get("owlv2_tiny")
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(owlv2._config(spec)).eval()
    processor = Owlv2Processor(Owlv2ImageProcessor(size={"height": 64, "width": 64}), owlv2.clip_tokenizer())
    inputs = processor(images=image, text=[phrases], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    (found,) = processor.post_process_grounded_object_detection(
        outputs, threshold=threshold, target_sizes=[image.shape[:2]], text_labels=[phrases]
    )
    return found


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_owlv2_equals_its_processors_own_post_processing(engine, photo, threshold):
    ours = engine.detect(photo, PHRASE, "owlv2_tiny", threshold)
    theirs = _upstream_owlv2(photo, ["a dog", "a red car"], threshold)
    assert 0 < len(ours) == len(theirs["scores"])
    np.testing.assert_allclose(ours.boxes, theirs["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.scores, theirs["scores"].numpy(), atol=1e-5)
    assert ours.labels == theirs["text_labels"]


@pytest.mark.parametrize("size", [(100, 100), (60, 180), (240, 80), (33, 47)])
def test_normalised_centre_boxes_become_pixels_of_the_image_and_the_sam_prompt(size):
    """Known answers: Grounding DINO scales (cx, cy, w, h) by the image's own sides; OWLv2 by its longest side
    (it pads the image to a square at the bottom and right); the SAM prompt is the box clipped to the image."""
    h, w = size
    raw = np.full((2, 260), -np.inf, np.float32)
    raw[:, 1] = [5.0, -5.0]  # query 0 is sure of the token "a" (position 1); query 1 is not
    raw[:, -4:] = [[0.5, 0.5, 0.5, 0.5], [0.9, 0.9, 0.4, 0.4]]
    adapter = family("grounding_dino").adapter(registry.get("gdino_tiny"), "random", None)
    found = adapter.detections(raw, ["a"], size, 0.5, 0.5)
    np.testing.assert_allclose(found.boxes, [[w / 4, h / 4, 3 * w / 4, 3 * h / 4]], rtol=1e-5)
    assert found.labels == ["a"] and found.scores[0] == pytest.approx(1 / (1 + np.exp(-5)))

    side = max(h, w)
    owl = family("owlv2").adapter(registry.get("owlv2_tiny"), "random", None)
    raw_owl = np.array([[5.0, 0.2, 0.2, 0.2, 0.2], [-5.0, 0.9, 0.9, 0.4, 0.4]], np.float32)
    found = owl.detections(raw_owl, ["a"], size, 0.5, 0.0)
    np.testing.assert_allclose(found.boxes, [[0.1 * side, 0.1 * side, 0.3 * side, 0.3 * side]], rtol=1e-5)

    beyond = np.array([[0.7 * w, 0.7 * h, 1.1 * w, 1.1 * h]], np.float32)  # (0.9, 0.9, 0.4, 0.4) in pixels
    np.testing.assert_allclose(clip_boxes(beyond, size), [[0.7 * w, 0.7 * h, w, h]], rtol=1e-5)


def test_raw_outputs_are_cached_by_image_phrase_and_weights(engine, photo, monkeypatch):
    adapter = engine.model("gdino_tiny").adapter
    calls = []
    real = adapter.raw
    monkeypatch.setattr(adapter, "raw", lambda image, phrases: calls.append(phrases) or real(image, phrases))
    image = photo[::-1].copy()  # an image no other test has used
    first = engine.detect(image, "a cat.", "gdino_tiny", 0.0, 0.0)
    moved = engine.detect(image, "A  cat", "gdino_tiny", 0.5, 0.3)  # the same phrase, other thresholds
    assert calls == [["a cat"]] and len(moved) <= len(first)
    engine.detect(image, "a cat. a hat.", "gdino_tiny", 0.5, 0.3)
    assert calls == [["a cat"], ["a cat", "a hat"]]


def test_phrases_follow_grounding_dinos_convention_and_bad_ones_say_what_to_type():
    assert split_phrases("A dog.  a RED car.") == ["a dog", "a red car"]
    assert split_phrases("cat") == ["cat"] and joined(["a dog", "a red car"]) == PHRASE
    assert split_phrases("猫. собака") == ["猫", "собака"]
    for bad in ("", "   ", "...", "?!. ,"):
        with pytest.raises(ValueError, match="Type what to find"):
            split_phrases(bad)


def test_long_and_non_latin_phrases_run(engine, photo):
    long = engine.detect(photo, "a dog and " * 200 + "a cat.", "gdino_tiny", 0.0, 0.0)  # 2,000 characters
    assert len(long) == 12
    assert len(engine.detect(photo, "猫.", "gdino_tiny", 0.0, 0.0)) == 12  # [UNK] in the stand-in vocabulary
    assert len(engine.detect(photo, "a dog and " * 200, "owlv2_tiny", 0.0)) > 0


def test_square_and_thin_images_run_through_the_tiny_detector(engine):
    """Every feature level keeps more than one pixel (the tiny config's resize is large enough for GroupNorm)."""
    for size in ((80, 80, 3), (30, 300, 3), (300, 24, 3)):
        thin = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
        found = engine.detect(thin, PHRASE, "gdino_tiny", 0.0, 0.0)
        assert len(found) == 12 and (found.boxes[:, 2] >= found.boxes[:, 0]).all()


def test_only_detectors_detect(engine, photo):
    with pytest.raises(ValueError, match="boxes from text come from Grounding DINO, OWLv2 models, not CLIP"):
        engine.detect(photo, PHRASE, "clip_tiny")


def test_the_stand_in_bert_vocabulary_decodes_latin_phrases_back():
    tokenizer = gd.character_tokenizer()
    ids = tokenizer(PHRASE)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[:5]) == ["[CLS]", "a", "d", "##o", "##g"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == PHRASE
    assert len(gd.character_vocab()) <= registry.get("gdino_tiny").config["text_config"]["vocab_size"]


def test_owlv2s_offline_tokenizer_is_clips_own_vocabulary():
    texts = ["a photo of a dog", "a red car", "Grounding DINO's 2nd box?"]  # not "!": OWLv2's pad token (id 0)
    ours = owlv2.clip_tokenizer(77)(texts, padding="max_length", max_length=77)["input_ids"]
    theirs = open_clip.get_tokenizer("ViT-B-32")(texts).tolist()
    assert ours == theirs and ours[0][:7] == [49406, 320, 1125, 539, 320, 1929, 49407]  # open_clip pads with 0 too


def test_families_and_published_sizes():
    for name, low, high in (
        ("grounding_dino_tiny", 171, 174),
        ("grounding_dino_base", 231, 235),
        ("owlv2_base", 154, 156),
    ):
        assert low < count_parameters(registry.get(name)) / 1e6 < high
    assert Can.DETECT in family("grounding_dino").can and Can.DETECT in family("owlv2").can
    assert family("grounding_dino").tiny == "gdino_tiny" and family("owlv2").tiny == "owlv2_tiny"
    assert "tokenizer.json" in family("grounding_dino").weights.files and "merges.txt" in family("owlv2").weights.files
