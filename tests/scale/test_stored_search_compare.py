"""The Search and Compare pages on stored datasets (tiny models' vectors, real image files under a data root):
the stored search finds a planted neighbour of the query, the comparison scores each dataset's model on the images
they share, and bad cases say what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import registry, store, store_reports
from core.analysis import retrieval as R
from core.data import load_samples
from core.engine import Engine
from tests.scale.conftest import write_images

PAGES = Path(__file__).resolve().parents[2] / "pages"
SEARCH, COMPARE = str(PAGES / "search.py"), str(PAGES / "compare.py")
EXTRA = 30  # random images besides the working-set samples


def _write(path: Path, ids, paths, labels, model: str, weights: str, vectors: np.ndarray) -> str:
    store.append(path, store.IMAGES, store.images_rows(ids, paths, labels, model, weights, vectors))
    return str(path.resolve())


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def _results(at: AppTest) -> list:
    return [d.value for d in at.dataframe if "similarity" in d.value.columns]


@pytest.fixture(scope="module")
def fresh() -> Engine:
    return Engine(device="cpu", cache=None)


@pytest.fixture
def search_stores(tmp_path, monkeypatch, fresh):
    """Under one data root: the working-set samples saved as files, plus random images; a CLIP-tiny store holding
    the samples' true embeddings and random vectors, the same with DINOv2-tiny, and a CLIP B/32 (openai) store whose
    weights are not on this machine."""
    root = tmp_path / "data"
    samples = load_samples()
    (root / "samples").mkdir(parents=True)
    sample_paths = []
    for i, image in enumerate(samples.images):
        Image.fromarray(image).save(root / "samples" / f"sample_{i}.png")
        sample_paths.append(str((root / "samples" / f"sample_{i}.png").resolve()))
    paths = sample_paths + list(write_images(root / "images", EXTRA))
    ids = [f"sample{i}" for i in range(len(sample_paths))] + [f"extra{i:02d}" for i in range(EXTRA)]
    labels = [None] * len(ids)
    rng = np.random.default_rng(0)
    stores = {}
    for model in ("clip_tiny", "dinov2_tiny"):
        vectors = np.vstack([fresh.embed(samples.images, model), rng.standard_normal((EXTRA, 32))])
        stores[model] = _write(root / "stores" / model, ids, paths, labels, model, "random", vectors)
    real = registry.parse("clip_vit_b32")
    vectors = rng.standard_normal((len(ids), real.spec.embed_dim))
    stores["real"] = _write(root / "stores" / "real", ids, paths, labels, real.spec.name, real.weights, vectors)
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    monkeypatch.setattr("core.weights._local", lambda ref: None)  # the real weights are on no machine
    monkeypatch.setattr("core.weights._cached", lambda ref: None)
    return stores


def _open_stored_search(store_path: str) -> AppTest:
    at = AppTest.from_file(SEARCH, default_timeout=120).run()
    at.radio(key="search_source").set_value("Stored dataset").run()
    assert not at.exception, at.exception
    at.selectbox(key="search_store_found").set_value(store_path).run()
    assert not at.exception, at.exception
    return at


def test_stored_search_finds_the_planted_neighbour_of_a_working_set_image_and_the_text_query(search_stores, fresh):
    at = AppTest.from_file(SEARCH, default_timeout=120).run()
    assert not at.exception and len(_results(at)) == 0  # the working set by default
    at.radio(key="search_source").set_value("Stored dataset").run()
    found = at.selectbox(key="search_store_found")
    assert sorted(found.options) == sorted(
        ["stores/clip_tiny · CLIP tiny (test)", "stores/dinov2_tiny · DINOv2 tiny (test)", "stores/real · "
         + registry.display_name("clip_vit_b32")]
    )  # fmt: skip
    at = _open_stored_search(search_stores["clip_tiny"])
    text_results, image_results = _results(at)
    assert image_results["id"].iloc[0] == "sample0" and image_results["similarity"].iloc[0] > 0.999
    assert len(image_results) == 8 and image_results["similarity"].is_monotonic_decreasing
    assert len(at.get("download_button")) == 2  # a CSV under each result table

    stored = store.open_store(search_stores["clip_tiny"])
    vectors, ids = store.vectors_of(stored.table.to_arrow()), store.read_column(stored.table, "id")
    text = fresh.embed_text(["a photo of a cat"], "clip_tiny")[0]
    assert list(text_results["id"]) == [ids[i] for i in R.rank(text, vectors, 8).indices]

    at.selectbox(key="search_stored_query").set_value(3).run()
    at.slider(key="search_stored_k").set_value(3).run()
    assert not at.exception, at.exception
    _, image_results = _results(at)
    assert image_results["id"].iloc[0] == "sample3" and len(image_results) == 3


def test_a_dinov2_store_is_searched_by_image_and_says_text_needs_clip(search_stores):
    at = _open_stored_search(search_stores["dinov2_tiny"])
    assert "Text search needs a dataset embedded by an image–text model" in _texts(at)
    (image_results,) = _results(at)
    assert image_results["id"].iloc[0] == "sample0"


def test_a_store_whose_weights_are_not_here_says_so_instead_of_searching(search_stores):
    at = _open_stored_search(search_stores["real"])
    assert not at.exception and not _results(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all("weights are not on this machine" in e for e in errors)


# ---- compare ----------------------------------------------------------------------------------
PER_CLASS = 10


@pytest.fixture
def compare_stores(tmp_path, monkeypatch):
    """Two stores of the same 60 labeled images (paths): CLIP-tiny vectors that separate the classes, and DINOv2-tiny
    random vectors of 50 of them in another order; a store of other images; a store with one labeled class."""
    root = tmp_path / "data"
    paths = list(write_images(root / "images", 60, classes=("cats", "dogs", "birds")))
    labels = [Path(p).parent.name for p in paths]
    rng = np.random.default_rng(1)
    centres = {c: rng.standard_normal(32) * 5 for c in set(labels)}
    separated = np.array([centres[c] for c in labels]) + rng.standard_normal((60, 32))
    noise = rng.standard_normal((60, 32))
    order = rng.permutation(60)[:50]
    b_paths, b_labels = [paths[i] for i in order], [labels[i] for i in order]
    other = list(write_images(root / "other", 10))
    stores = {
        "a": _write(root / "a", paths, paths, labels, "clip_tiny", "random", separated),
        "b": _write(root / "b", b_paths, b_paths, b_labels, "dinov2_tiny", "random", noise[order]),
        "other": _write(
            root / "other_db", other, other, ["cats"] * 5 + ["dogs"] * 5, "timm_tiny", "random", noise[:10]
        ),
        "one_class": _write(
            root / "one_class", paths, paths, [v if v == "cats" else None for v in labels], "timm_tiny", "random", noise
        ),
    }
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    return stores, paths, labels, separated, noise


def _open_stored_compare(chosen: list[str], per_class: int = PER_CLASS) -> AppTest:
    at = AppTest.from_file(COMPARE, default_timeout=120).run()
    at.radio(key="compare_source").set_value("Stored datasets").run()
    assert not at.exception, at.exception
    at.number_input(key="compare_stored_per_class").set_value(per_class)
    at.multiselect(key="compare_stored_stores").set_value(chosen).run()
    assert not at.exception, at.exception
    return at


def test_compare_on_two_stores_scores_each_model_on_the_images_they_share(compare_stores):
    stores, paths, labels, separated, noise = compare_stores
    at = AppTest.from_file(COMPARE, default_timeout=120).run()
    at.radio(key="compare_source").set_value("Stored datasets").run()
    assert "Choose stored datasets" in _texts(at) and not at.dataframe

    at = _open_stored_compare([stores["a"], stores["b"]], per_class=PER_CLASS)
    assert "at most 10 per class" in _texts(at) and "random sample, seed 0" in _texts(at)
    assert "Press Compare" in _texts(at) and not at.dataframe
    at.button(key="compare_stored_run").click().run()
    assert not at.exception, at.exception
    scores = next(d.value for d in at.dataframe if "mAP" in d.value.columns).set_index("model")
    assert list(scores.index) == ["CLIP tiny (test)", "DINOv2 tiny (test)"]

    rows = store_reports.align_stores([store.open_store(stores["a"]), store.open_store(stores["b"])], PER_CLASS)
    assert len(rows.paths) < 50 and rows.describe() in _texts(at)  # subsampled, and said so
    index = {p: i for i, p in enumerate(paths)}
    picked = [index[p] for p in rows.paths]
    assert scores.loc["CLIP tiny (test)", "1-NN"] == pytest.approx(1.0)  # the separated classes
    assert scores.loc["DINOv2 tiny (test)", "1-NN"] == pytest.approx(R.knn_accuracy(noise[picked], rows.labels, 1))
    assert scores.loc["CLIP tiny (test)", "mAP"] == pytest.approx(R.retrieval_map(separated[picked], rows.labels))
    assert len(at.get("download_button")) == 1

    at.slider(key="compare_k").set_value(7).run()  # other settings: the old table is not shown as theirs
    assert not at.dataframe and "Press Compare" in _texts(at)


def test_compare_on_stores_without_shared_images_or_classes_says_why(compare_stores):
    stores = compare_stores[0]
    at = _open_stored_compare([stores["a"], stores["other"]])
    assert not at.exception and not at.dataframe
    assert "share no labeled image" in at.error[0].value
    at = _open_stored_compare([stores["one_class"], stores["a"]])
    assert not at.exception and not at.dataframe
    assert "all of one class (cats)" in at.error[0].value
