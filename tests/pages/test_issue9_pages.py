"""Zero-shot, Search and Compare models pages on the offline default (tiny models, built-in data).

Numbers on the pages are checked against the same computation done here through core, with a fresh engine
(the tiny models' random weights are seeded, so both see the same embeddings)."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import retrieval as R
from core.data import load_digits_set, load_samples
from core.engine import Engine

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(scope="module")
def fresh() -> Engine:
    return Engine(device="cpu", cache=None)


def open_page(page: str, digits: bool = False) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    if digits:
        at.button(key="upload_digits").click().run()  # 7 unlabeled samples + 300 labeled digits
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_zero_shot_on_unlabeled_photos_gives_probabilities_and_asks_for_labels(fresh):
    at = open_page("pages/zero_shot.py")
    probs = table(at, "predicted")
    p = probs.filter(like="p(").to_numpy()
    assert p.shape == (7, 7) and list(probs["image"]) == load_samples().names
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    classes = [c[2:-1] for c in probs.filter(like="p(").columns]
    assert list(probs["predicted"]) == [classes[i] for i in p.argmax(axis=1)]

    images = load_samples().images
    text = R.class_embeddings(fresh.embed_text(R.expand_prompts(classes), "clip_tiny"), len(classes))
    np.testing.assert_allclose(p, R.zero_shot_probabilities(fresh.embed(images, "clip_tiny"), text), atol=1e-4)
    assert any("No labels" in i.value for i in at.info)
    assert len(at.get("download_button")) == 1 and not at.metric


def test_zero_shot_says_what_is_wrong_with_bad_prompts():
    at = open_page("pages/zero_shot.py")
    classes = next(t for t in at.text_area if t.label.startswith("Classes"))
    classes.set_value("cat").run()
    assert any("at least two classes" in i.value for i in at.info) and not at.dataframe
    classes.set_value("cat\ndog").run()
    at.text_area(key="zs_classes_templates").set_value("a photo").run()
    assert not at.exception and "exactly one {}" in at.error[0].value


def test_zero_shot_on_digits_reports_the_accuracy_core_computes(fresh):
    at = open_page("pages/zero_shot.py", digits=True)
    digits = load_digits_set()
    classes = [str(d) for d in range(10)]
    text = R.class_embeddings(fresh.embed_text(R.expand_prompts(classes), "clip_tiny"), 10)
    predicted = R.zero_shot_probabilities(fresh.embed(digits.images, "clip_tiny"), text).argmax(axis=1)
    expected = R.compute_classification(digits.labels, [classes[i] for i in predicted], classes)
    assert at.metric[0].value == f"{expected.accuracy:.1%}"
    assert len(table(at, "predicted")) == 307
    assert any("7 unlabeled" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 2  # probabilities and confusion matrix


def test_search_ranks_by_cosine_and_leaves_the_query_out(fresh):
    at = open_page("pages/search.py")
    text_results, image_results = (d.value for d in at.dataframe)
    images = load_samples()
    query = fresh.embed_text(["a photo of a cat"], "clip_tiny")[0]
    expected = R.rank(query, fresh.embed(images.images, "clip_tiny"), 7)
    assert list(text_results["image"]) == [images.names[i] for i in expected.indices]
    np.testing.assert_allclose(text_results["cosine"], expected.scores, atol=1e-4)

    assert len(image_results) == 6 and images.names[0] not in set(image_results["image"])  # query: the first image
    assert list(image_results["cosine"]) == sorted(image_results["cosine"], reverse=True)
    at.selectbox(key="search_image_model").set_value("timm_tiny@random").run()
    at.slider(key="search_k").set_value(3).run()
    features = fresh.embed(images.images, "timm_tiny")
    expected = R.rank(features[0], features, 3, exclude=0)
    image_results = at.dataframe[1].value
    assert list(image_results["image"]) == [images.names[i] for i in expected.indices]

    at.text_input(key="search_text").set_value("  ").run()
    assert any("Type a description" in i.value for i in at.info)


def test_compare_needs_labels_then_scores_every_model_in_one_table(fresh):
    at = open_page("pages/compare.py")
    assert any("labeled set with at least two classes" in i.value for i in at.info) and not at.dataframe

    at = open_page("pages/compare.py", digits=True)
    assert not at.dataframe and any("Press Compare" in i.value for i in at.info)
    at.button(key="compare_run").click().run()
    assert not at.exception
    scores = table(at, "mAP").set_index("model")
    assert list(scores.index) == ["CLIP tiny (test)", "DINOv2 tiny (test)", "timm ViT tiny (test)"]
    assert list(scores.columns) == [
        "1-NN", "5-NN", "1-shot", "1-shot ±95%", "5-shot", "5-shot ±95%", "10-shot", "10-shot ±95%", "mAP"
    ]  # fmt: skip
    assert ((scores >= 0) & (scores <= 1)).all().all()
    features, labels = fresh.embed(load_digits_set().images, "dinov2_tiny"), load_digits_set().labels
    row = scores.loc["DINOv2 tiny (test)"]
    assert row["1-NN"] == pytest.approx(R.knn_accuracy(features, labels, 1))
    assert row["mAP"] == pytest.approx(R.retrieval_map(features, labels), abs=1e-6)
    assert row["10-shot"] == pytest.approx(R.few_shot_accuracy(features, labels, 10, 100).mean, abs=1e-6)
    assert len(at.get("download_button")) == 1

    at.slider(key="compare_k").set_value(7).run()  # other settings: the old table is not shown as theirs
    assert not at.dataframe and any("Press Compare" in i.value for i in at.info)
