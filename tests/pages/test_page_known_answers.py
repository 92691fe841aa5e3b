"""Pages checked against answers planted in the engine's outputs, not recomputed with the core code they call (#22).

Each test gives the page a working set of its own (fresh image content, so no server-side cache from another
test can answer for it) and replaces one engine method with a planted output whose right answer is known by
construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.data import ImageItem, ImageSet
from core.engine import Engine
from tests.pages.test_patch_matching import click, readout

APP = str(Path(__file__).resolve().parents[2] / "app.py")
COLOURS = {"red": (220, 20, 20), "green": (20, 200, 30), "blue": (30, 40, 210)}


def _open(page: str, images: ImageSet) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["working_set"] = images
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _colour_set(seed: int, per_class: int = 4, wrong: dict[int, str] | None = None) -> ImageSet:
    """Solid-colour 48×48 images, `per_class` of each colour, labelled by colour except the rows in `wrong`."""
    rng = np.random.default_rng(seed)
    items = []
    for name, rgb in COLOURS.items():
        for _ in range(per_class):
            image = np.clip(np.array(rgb) + rng.integers(-10, 10, size=(48, 48, 3)), 0, 255).astype(np.uint8)
            items.append(ImageItem(f"{name}_{len(items)}.png", image, name))
    for row, label in (wrong or {}).items():
        items[row].label = label
    return ImageSet(items)


def _colour_embedding(self, images, model, progress=None) -> np.ndarray:
    """A planted image embedding: the unit mean colour (R, G, B) of each image."""
    means = np.array([image.reshape(-1, 3).mean(axis=0) for image in images], dtype=np.float32)
    if progress:
        progress(len(images), len(images))
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def test_zero_shot_accuracy_on_planted_embeddings(monkeypatch):
    """Images embed as their colour, each class's prompts as its colour axis: one mislabelled image of 12."""
    axes = {name: axis for axis, name in enumerate(COLOURS)}  # red → R, green → G, blue → B

    def text_embedding(self, texts, model):
        return np.eye(3, dtype=np.float32)[[next(axes[c] for c in axes if c in text) for text in texts]]

    monkeypatch.setattr(Engine, "embed", _colour_embedding)
    monkeypatch.setattr(Engine, "embed_text", text_embedding)
    at = _open("pages/zero_shot.py", _colour_set(seed=101, wrong={0: "green"}))
    table = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert list(table["predicted"]) == ["red"] * 4 + ["green"] * 4 + ["blue"] * 4
    assert (table["probability"] > 0.99).all()
    assert at.metric[0].value == f"{11 / 12:.1%}"


def test_compare_scores_a_perfectly_separated_set_as_one(monkeypatch):
    monkeypatch.setattr(Engine, "embed", _colour_embedding)
    at = _open("pages/compare.py", _colour_set(seed=102, per_class=6))
    at.button(key="compare_run").click().run()
    assert not at.exception, at.exception
    scores = next(d.value for d in at.dataframe if "mAP" in d.value.columns).set_index("model")
    assert len(scores) >= 1
    for column in ("1-NN", "5-NN", "1-shot", "5-shot", "mAP"):
        np.testing.assert_allclose(scores[column].to_numpy(float), 1.0, err_msg=column)


def test_patch_matching_finds_the_planted_copy_of_the_clicked_patch(monkeypatch):
    """B holds A's patch (5, 3) at (11, 12); every other token is random: the best match is exact, cosine 1."""
    original = Engine.patch_tokens

    def planted(self, images, model, layer=None, size=None, progress=None):
        tokens = original(self, images, model, layer, size, progress)
        rng = np.random.default_rng(7)
        tokens = rng.normal(size=tokens.shape).astype(np.float32)
        tokens[-1, 11, 12] = tokens[0, 5, 3]
        return tokens

    monkeypatch.setattr(Engine, "patch_tokens", planted)
    rng = np.random.default_rng(103)
    pair = ImageSet([ImageItem(f"{n}.png", rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)) for n in "ab"])
    at = _open("pages/patch_matching.py", pair)
    click(at, 5, 3)
    assert readout(at) == (5, 3, 11, 12, 1.0, 0.0)
