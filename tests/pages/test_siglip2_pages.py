"""The image–text pages with SigLIP 2 chosen in the sidebar (`sidebar_text_model`): Zero-shot (per-class sigmoid,
said on the page), Search, Embedding Scatter, Compare, and Text masks (one sentence: SigLIP 2 has no patch tokens
in the joint space). Numbers are checked against a fresh engine and a hand-written sigmoid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components import sidebar
from core.analysis import retrieval as R
from core.data import load_digits_set, load_samples
from core.engine import Engine

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SIGLIP = "siglip2_tiny"


@pytest.fixture(scope="module")
def fresh() -> Engine:
    return Engine(device="cpu", cache=None)


def open_page(page: str, model: str = SIGLIP, digits: bool = False) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["sidebar_text_model"] = model
    at.run()
    if digits:
        at.button(key="upload_digits").click().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_zero_shot_with_siglip2_uses_a_per_class_sigmoid_and_says_so(fresh):
    at = open_page("pages/zero_shot.py")
    rule_text = " ".join(i.value for i in at.info)
    assert "SigLIP 2 scores each class on its own with a sigmoid: probabilities need not sum to 1" in rule_text
    assert "softmax" not in rule_text
    assert any("stand-in" in c.value and "mean nothing" in c.value for c in at.caption)  # the random tokenizer

    probs = table(at, "predicted")
    p = probs.filter(like="p(").to_numpy(float)
    classes = [c[2:-1] for c in probs.filter(like="p(").columns]
    assert p.shape == (7, 7) and not np.allclose(p.sum(axis=1), 1.0)
    text = R.class_embeddings(fresh.embed_text(R.expand_prompts(classes), SIGLIP), len(classes))
    image = fresh.embed(load_samples().images, SIGLIP)
    cosine = R.normalize(image) @ R.normalize(text).T
    rule = fresh.zero_shot_rule(SIGLIP)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(rule.scale * cosine + rule.bias))), atol=1e-4)
    assert list(probs["predicted"]) == [classes[i] for i in cosine.argmax(axis=1)]


def test_zero_shot_with_clip_still_says_softmax():
    at = open_page("pages/zero_shot.py", model="clip_tiny")
    assert any("softmax" in i.value and "sum to 1" in i.value for i in at.info)
    assert not any("stand-in" in c.value for c in at.caption)


def test_zero_shot_accuracy_with_siglip2_on_digits(fresh):
    at = open_page("pages/zero_shot.py", digits=True)
    digits, classes = load_digits_set(), [str(d) for d in range(10)]
    text = R.class_embeddings(fresh.embed_text(R.expand_prompts(classes), SIGLIP), 10)
    predicted = fresh.zero_shot_rule(SIGLIP).probabilities(fresh.embed(digits.images, SIGLIP), text).argmax(axis=1)
    expected = R.compute_classification(digits.labels, [classes[i] for i in predicted], classes)
    assert at.metric[0].value == f"{expected.accuracy:.1%}"


def test_search_ranks_by_siglip2_text_embedding(fresh):
    at = open_page("pages/search.py")
    text_results = at.dataframe[0].value
    images = load_samples()
    query = fresh.embed_text(["a photo of a cat"], SIGLIP)[0]
    expected = R.rank(query, fresh.embed(images.images, SIGLIP), 7)
    assert list(text_results["image"]) == [images.names[i] for i in expected.indices]
    np.testing.assert_allclose(text_results["cosine"], expected.scores, atol=1e-4)
    assert any("stand-in" in c.value for c in at.caption)


def test_compare_scores_siglip2_beside_the_others(fresh):
    at = open_page("pages/compare.py", digits=True)
    at.button(key="compare_run").click().run()
    assert not at.exception, at.exception
    scores = table(at, "mAP").set_index("model")
    assert "SigLIP 2 tiny (test)" in scores.index
    features, labels = fresh.embed(load_digits_set().images, SIGLIP), load_digits_set().labels
    assert scores.loc["SigLIP 2 tiny (test)", "1-NN"] == pytest.approx(R.knn_accuracy(features, labels, 1))


def test_embedding_scatter_projects_siglip2_embeddings(monkeypatch):
    # AppTest formats the "Models" multiselect's value outside the script run, where the sidebar's choice cannot be
    # read (its option titles name the chosen model): make SigLIP 2 the image–text default instead
    real = sidebar.default_model
    monkeypatch.setattr(sidebar, "default_model", lambda role: SIGLIP if role == sidebar.TEXT else real(role))
    at = open_page("pages/embedding_scatter.py")
    at.radio(key="scatter_dataset").set_value("digits")
    at.number_input(key="scatter_per_class").set_value(10)
    at.button(key="scatter_go").click().run()
    assert not at.exception, at.exception
    accuracy = next(d.value for d in at.dataframe if d.value.index.name == "model")
    assert list(accuracy.index) == ["SigLIP 2 tiny (test)"]
    assert at.get("plotly_chart")


def test_text_masks_with_siglip2_say_in_one_sentence_what_the_clip_route_needs():
    at = open_page("pages/text_masks.py")
    assert not at.exception and not at.error
    (message,) = [i.value for i in at.info if " needs " in i.value]  # MaskCLIP's panel; Grounded-SAM runs beside it
    assert message.startswith("MaskCLIP peaks → SAM points needs patch-text similarity, which none of the chosen")
    assert "SigLIP 2 tiny (test)" in message and message.endswith(") gives.")  # one sentence, naming the model
    assert any(c.value.startswith(("1 instance", "0 instances")) or " instances · " in c.value for c in at.caption)
