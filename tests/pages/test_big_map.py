"""The big map (components/big_map.py): its binary payloads, and the views that choose it above the plotly limit.

AppTest runs no JavaScript: a lasso is injected as the selection the widget's callback stores in session_state (its
payload as the browser sends it), a hover as the widget's "hover" trigger."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components import big_map
from components.big_map import category_codes, decode_points, decode_rows, encode_points, encode_rows
from core.datasets import load_seed_dataset
from tests.widgets import component, component_data, data_url_pixels, send_trigger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _unfrozen():
    """The big map freezes the objects alive at its first run (`_freeze_imported`): thaw them after each test, so
    that the test process collects its garbage as usual."""
    yield
    gc.unfreeze()


# ---- payloads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes, per_point", [(10, 9), (300, 10)])  # uint8 codes, then uint16
def test_points_round_trip_exactly_in_at_most_13_bytes_a_point(n_classes, per_point):
    rng = np.random.default_rng(0)
    n = 50_000
    xy = (rng.normal(size=(n, 2)) * 1e3).astype(np.float32)
    codes = rng.integers(0, n_classes, n)
    classes = [f"class {i}" for i in range(n_classes)]
    payload = encode_points(xy, codes, classes, key="k")
    back, back_codes, header = decode_points(payload)
    assert np.array_equal(back, xy) and np.array_equal(back_codes, codes)
    assert header["n"] == n and header["classes"] == classes and header["key"] == "k"
    assert len(header["colors"]) == n_classes and all(c.startswith("#") and len(c) == 7 for c in header["colors"])
    assert len(payload) <= 13 * n and round(len(payload) / n) == per_point
    assert (8 + int.from_bytes(payload[4:8], "little")) % 4 == 0  # the coordinates start 4-byte aligned


def test_the_digest_follows_the_content():
    xy, codes = np.zeros((3, 2), np.float32), np.array([0, 1, 1])
    first = decode_points(encode_points(xy, codes, ["a", "b"], key="k"))[2]["digest"]
    assert decode_points(encode_points(xy, codes, ["a", "b"], key="other"))[2]["digest"] == first
    assert decode_points(encode_points(xy, codes[::-1], ["a", "b"], key="k"))[2]["digest"] != first
    assert decode_points(encode_points(xy + 1, codes, ["a", "b"], key="k"))[2]["digest"] != first


@pytest.mark.parametrize(
    "xy, codes, classes",
    [
        (np.zeros((3, 3)), np.zeros(3, int), ["a"]),  # not 2-D points
        (np.zeros((3, 2)), np.array([0, 1, 2]), ["a", "b"]),  # a code without a category
        (np.array([[0, np.nan], [1, 1]]), np.zeros(2, int), ["a"]),
    ],
)
def test_bad_points_are_refused(xy, codes, classes):
    with pytest.raises(ValueError):
        encode_points(xy, codes, classes, key="k")


def test_selected_rows_round_trip_compactly():
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(1_000_000, 10_000, replace=False))
    text = encode_rows(rows[::-1])  # any order in, sorted out
    assert np.array_equal(decode_rows(text), rows)
    assert len(text) < 4 * 10_000  # ~1.7 varint bytes a row, in base64
    assert np.array_equal(decode_rows(encode_rows([0, 127, 128, 2**31])), [0, 127, 128, 2**31])
    assert decode_rows("").size == 0
    assert np.array_equal(decode_rows(encode_rows([5, 5, 9])), [5, 9])


@pytest.mark.parametrize("text", ["gA==", "not base64!", "//////8P"])  # an unfinished varint; junk; > 5 bytes
def test_malformed_selections_are_refused(text):
    with pytest.raises(ValueError):
        decode_rows(text)


def test_category_codes_name_missing_labels():
    codes, classes = category_codes(np.array(["b", None, "a", "b"], dtype=object))
    assert classes == [big_map.NO_LABEL, "a", "b"] and codes.tolist() == [2, 0, 1, 2]


# ---- Embedding Scatter --------------------------------------------------------------------------------
SCATTER = str(ROOT / "pages" / "embedding_scatter.py")
PANEL = "scatter_clip_tiny"


def _scatter(monkeypatch, plotly_max: int) -> AppTest:
    monkeypatch.setattr(big_map, "PLOTLY_MAX", plotly_max)
    at = AppTest.from_file(SCATTER, default_timeout=300).run()
    at.radio(key="scatter_dataset").set_value("digits")
    at.number_input(key="scatter_per_class").set_value(10)
    at.multiselect(key="scatter_families").set_value(["text"])
    return at.button(key="scatter_go").click().run()


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def _lasso(at: AppTest, key: str, rows) -> AppTest:
    """The page after the map `key` reported a lasso around `rows` (what its callback stores)."""
    digest = decode_points(component(at, "vfm_big_map").proto.bytes)[2]["digest"]
    at.session_state[f"{key}_selection"] = {"count": len(rows), "rows": encode_rows(rows), "digest": digest}
    return at.run()


def test_embedding_scatter_keeps_plotly_up_to_the_limit(monkeypatch):
    at = _scatter(monkeypatch, 100)  # 100 digits: at the limit
    assert not at.exception, at.exception
    assert not [c for c in at.get("bidi_component") if c.proto.component_name == "vfm_big_map"]
    assert len(at.get("plotly_chart")) == 2  # the scatter and the confusion matrix


def test_embedding_scatter_draws_every_point_on_the_big_map_above_the_limit(monkeypatch):
    at = _scatter(monkeypatch, 99)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # the confusion matrix only
    xy, codes, header = decode_points(component(at, "vfm_big_map").proto.bytes)
    digits = load_seed_dataset("digits", 10)
    assert header["n"] == 100 and header["classes"] == [str(i) for i in range(10)]
    assert [header["classes"][c] for c in codes] == [it.label for it in digits.items]  # row order kept
    assert "All 100 points drawn" in _texts(at)

    at = _lasso(at, PANEL, [0, 1, 23])
    assert not at.exception, at.exception
    expected = [f"{digits.items[i].name} [{digits.items[i].label}]" for i in (0, 1, 23)]
    assert [im.captions for im in at.image if any("[" in c for c in im.captions)] == [expected]
    assert "**3 selected** (2 × 0, 1 × 2)" in _texts(at)

    at.session_state[f"{PANEL}_selection"] = {"count": 1, "rows": encode_rows([5]), "digest": "stale"}
    at.run()  # a selection made on other points is dropped
    assert "selected**" not in _texts(at)


def test_colour_by_cluster_sends_cluster_codes(monkeypatch):
    at = _scatter(monkeypatch, 99)
    at.radio(key=f"{PANEL}_colour").set_value("cluster").run()
    at.number_input(key=f"{PANEL}_k").set_value(4).run()
    assert not at.exception, at.exception
    _, codes, header = decode_points(component(at, "vfm_big_map").proto.bytes)
    assert header["classes"] == [f"cluster {i}" for i in range(4)] and set(codes.tolist()) == {0, 1, 2, 3}


# ---- Stored datasets ----------------------------------------------------------------------------------
STORED = str(ROOT / "pages" / "stored.py")
N = 60


@pytest.fixture
def stored_path(tmp_path, monkeypatch) -> Path:
    pytest.importorskip("lancedb")
    from core import store
    from tests.scale.conftest import write_images

    root = tmp_path / "data"
    paths = list(write_images(root / "images", N))
    vectors = np.random.default_rng(0).standard_normal((N, 32)).astype(np.float32)
    labels = [Path(p).parent.name for p in paths]
    ids = [f"id{i:03d}" for i in range(N)]
    store.append(root / "db", store.IMAGES, store.images_rows(ids, paths, labels, "clip_tiny", "random", vectors))
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    return root / "db"


def _stored(stored_path: Path, monkeypatch, plotly_max: int) -> AppTest:
    monkeypatch.setattr(big_map, "PLOTLY_MAX", plotly_max)
    at = AppTest.from_file(STORED, default_timeout=120).run()
    at.text_input(key="stored_path").set_value(str(stored_path)).run()
    return at.button(key="stored_map_go").click().run()


def test_stored_datasets_keep_the_density_map_up_to_the_limit(stored_path, monkeypatch):
    at = _stored(stored_path, monkeypatch, N)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert not [c for c in at.get("bidi_component") if c.proto.component_name == "vfm_big_map"]


def test_stored_datasets_map_every_row_hover_images_and_lassoed_images(stored_path, monkeypatch):
    from core import store

    at = _stored(stored_path, monkeypatch, N - 1)
    assert not at.exception, at.exception
    assert not at.get("plotly_chart")
    xy, codes, header = decode_points(component(at, "vfm_big_map").proto.bytes)
    table = store.open_store(stored_path).table
    paths, labels = store.read_column(table, "path"), store.read_column(table, "label")
    assert header["n"] == N and [header["classes"][c] for c in codes] == list(labels)

    at = send_trigger(at, "vfm_big_map", "hover", 17)  # the pointer rests on row 17
    assert not at.exception, at.exception
    tip = component_data(at, "vfm_big_map_tip")
    assert tip["index"] == 17 and tip["map"] == "stored_map" and Path(paths[17]).name in tip["caption"]
    shown = data_url_pixels(tip["image"]).astype(float)

    def likeness(row: int) -> float:  # random-noise images: JPEG and scaling keep ~0.6 of the correlation
        original = np.asarray(Image.open(paths[row]).convert("RGB").resize(shown.shape[1::-1]), float)
        return np.corrcoef(shown.ravel(), original.ravel())[0, 1]

    assert likeness(17) > 0.45 and abs(likeness(18)) < 0.15

    at = _lasso(at, "stored_map", [3, 4, 50])
    assert not at.exception, at.exception
    assert "**3 selected** (" in _texts(at)
    captions = [c for im in at.image for c in im.captions if c.startswith("row ")]
    assert captions == ["row 3", "row 4", "row 50"]

    at = _lasso(at, "stored_map", [4])  # a click on one row picks it for the search below
    assert not at.exception, at.exception
    assert f"**Picked:** `{paths[4]}`" in _texts(at)


def test_the_first_map_moves_the_imported_objects_out_of_the_collectors_way(stored_path, monkeypatch):
    gc.unfreeze()
    big_map._freeze_imported.clear()
    at = _stored(stored_path, monkeypatch, N - 1)
    assert not at.exception, at.exception
    # Streamlit's gc.collect(2) after every run then skips them: with torch imported it held the GIL 0.5-1.7 s
    assert gc.get_freeze_count() > 50_000
