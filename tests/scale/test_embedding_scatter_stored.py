"""Embedding Scatter on a stored dataset: a per-class sample of its rows, its own vectors, thumbnails from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import store
from tests.scale.conftest import write_images

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "embedding_scatter.py")
N = 80


def _store(root: Path, labeled: bool = True) -> tuple[Path, dict[str, np.ndarray], np.ndarray]:
    """N images in two classes whose stored vectors are separable (class means 6σ apart); returns the db folder,
    the images by path and the vectors (row order)."""
    images = write_images(root / "images", N, classes=("cats", "dogs"))
    paths = list(images)
    labels = [Path(p).parent.name for p in paths]
    rng = np.random.default_rng(1)
    means = {"cats": np.zeros(16), "dogs": np.full(16, 1.5)}
    vectors = np.stack([means[label] + rng.standard_normal(16) for label in labels]).astype(np.float32)
    rows = store.images_rows(
        [f"id{i}" for i in range(N)], paths, labels if labeled else [None] * N, "dinov2_tiny", "random", vectors
    )
    store.append(root / "db", store.IMAGES, rows)
    return root / "db", images, vectors


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def _open_page(db: Path, per_class: int = 30) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key="scatter_dataset").set_value("stored")
    at.number_input(key="scatter_per_class").set_value(per_class)
    at.button(key="scatter_go").click().run()
    assert not at.exception, at.exception
    assert "core.batch embed" in _texts(at)  # asks for the dataset first
    at.text_input(key="scatter_store_path").set_value(str(db)).run()
    assert not at.exception, at.exception
    return at


def test_a_stored_dataset_is_sampled_per_class_projected_and_scored_with_its_own_vectors(tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(tmp_path))
    db, images, _ = _store(tmp_path)
    Path(next(iter(images))).unlink()  # one file moved away: its row keeps its vector, a grey tile shows
    at = _open_page(db, per_class=30)
    texts = _texts(at)
    assert "db** (DINOv2 tiny" in texts and "stored" in texts, texts
    assert "60 of 80" in texts, texts  # 30 per class of 40 + 40, stated
    assert "1 image file could not be read" in texts
    table = at.dataframe[0].value
    assert list(table.columns) == ["db (stored) (n=60) · LDA", "db (stored) (n=60) · k-NN"], table.columns
    accuracy = table.filter(like="LDA").iloc[0, 0]
    assert accuracy >= 0.9, table  # the classes are 6σ apart: the held-out split is separated
    assert len(at.get("plotly_chart")) >= 1


def test_the_sample_holds_the_stored_vectors_of_the_sampled_images(tmp_path, monkeypatch):
    from components.scatter_view import _stored_sample

    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(tmp_path))
    db, images, vectors = _store(tmp_path)
    sample, sampled_vectors, labeled = _stored_sample.__wrapped__(str(db), N, 10)
    assert labeled == N and len(sample.items) == 20 and sample.class_counts() == {"cats": 10, "dogs": 10}
    by_path = {f"{Path(p).parent.name}/{Path(p).name}": i for i, p in enumerate(images)}
    for item, vector in zip(sample.items, sampled_vectors, strict=True):
        row = by_path[item.name]
        np.testing.assert_array_equal(vector, vectors[row])
        assert item.note is None and item.image.shape[2] == 3
        full = images[list(images)[row]]
        assert abs(float(item.image.mean()) - float(full.mean())) < 8  # the thumbnail of that very image


@pytest.mark.parametrize("labeled", [False])
def test_an_unlabeled_stored_dataset_asks_for_labels(tmp_path, monkeypatch, labeled):
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(tmp_path))
    db, _, _ = _store(tmp_path, labeled=labeled)
    at = _open_page(db)
    assert "class-subfolder layout" in _texts(at)
    assert not at.get("plotly_chart")
