"""The Stored datasets page on a small stored dataset (tiny CLIP vectors, real image files under a data root)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import store
from core.data import ImageItem, ImageSet
from tests.scale.conftest import write_images
from tests.widgets import hover_data, sprite_pixels

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "stored.py")
N = 60


@pytest.fixture
def stored_path(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    images = write_images(root / "images", N)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N, 32)).astype(np.float32)
    vectors[1] = vectors[0] * 1.01 + 0.001  # a planted near-duplicate of row 0
    paths = list(images)
    labels = [Path(p).parent.name for p in paths]
    ids = [f"id{i:03d}" for i in range(N)]
    store.append(root / "db", store.IMAGES, store.images_rows(ids, paths, labels, "clip_tiny", "random", vectors))
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    return root / "db"


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.caption, at.markdown, at.info, at.warning, at.error) for e in kind)


def test_the_page_opens_projects_picks_searches_and_reports_duplicates(stored_path, tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and "core.batch embed" in _texts(at)

    at.text_input(key="stored_path").set_value(str(tmp_path / "elsewhere")).run()
    assert "outside the allowed dataset folders" in at.error[0].value

    at.text_input(key="stored_path").set_value(str(stored_path)).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == f"{N:,}" and metrics["Classes"] == "2" and metrics["Index"] == "exact scan"

    at.button(key="stored_map_go").click().run()
    assert not at.exception, at.exception
    assert "Fitted on a random sample of 60 of 60 rows" in _texts(at) and len(at.get("plotly_chart")) == 1
    assert "Every row is drawn: hover one to see its image" in _texts(at)
    hover = hover_data(at)  # the 60 rows in view, each with its own image as a sprite tile
    assert hover["metas"] == ["stored_map"] and sorted(hover["rows"]) == list(range(N))
    sprite, side, columns = sprite_pixels(hover), hover["side"], hover["columns"]
    paths = store.read_column(store.open_store(stored_path).table, "path")  # in row order
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]

    def tile(row: int) -> np.ndarray:
        slot = hover["rows"].index(row)
        top, left = (slot // columns) * side + 16, (slot % columns) * side + 16  # 32-px images centred in 64
        return sprite[top : top + 32, left : left + 32].astype(float).ravel()

    for row in (0, 17, 59):
        assert np.corrcoef(tile(row), images[row].astype(float).ravel())[0, 1] > 0.45, row  # JPEG keeps ~0.6 of noise
        assert abs(np.corrcoef(tile(row), images[row + 1 - N].astype(float).ravel())[0, 1]) < 0.15, row

    points = [{"curve_number": 0, "point_number": 0, "point_index": 0}]
    at.session_state["stored_map_chart"] = {
        "selection": {"points": points, "point_indices": [0], "box": [], "lasso": []}
    }
    at.run()
    assert not at.exception, at.exception
    assert "Picked:" in _texts(at)
    nearest, text_results = (d.value for d in at.dataframe if "similarity" in d.value.columns and "id" in d.value)
    assert nearest["id"].iloc[0] == "id001"  # the planted near-duplicate comes first, the picked row is left out

    assert len(text_results) == 8 and text_results["similarity"].is_monotonic_decreasing

    at.button(key="stored_dup_go").click().run()
    assert not at.exception, at.exception
    assert "**1 pairs in 1 groups**" in _texts(at)
    pairs = next(d.value for d in at.dataframe if "id_a" in d.value.columns)
    assert set(pairs[["id_a", "id_b"]].iloc[0]) == {"id000", "id001"}


def test_with_no_stored_dataset_the_working_set_is_stored_here_then_opened(tmp_path, monkeypatch, engine):
    root = tmp_path / "data"  # not there yet, as in a fresh clone
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8) for i in range(5)]
    labels = ["cats", "cats", "cats", None, None]  # one class and two unlabelled: both kept
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["working_set"] = ImageSet(
        [ImageItem(f"p{i}.jpg", im, lab) for i, (im, lab) in enumerate(zip(images, labels, strict=True))]
    )
    at.run()
    assert not at.exception, at.exception
    assert f"No stored dataset under `{root.resolve()}` yet." in _texts(at)
    assert any(f"python -m core.batch embed {root.resolve() / 'photos'}" in c.value for c in at.code)

    model = at.selectbox(key="stored_new_model").value  # the sidebar's CLIP, first
    at.button(key="stored_new_go").click().run()
    assert not at.exception, at.exception
    assert "Working set stored in" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "5" and metrics["Classes"] == "1"
    (out,) = store.find_stores([root])
    stored = store.open_store(out)
    data = store.read_rows(stored.table, range(stored.rows))
    assert [Path(p).name[:8] for p in data["path"].to_pylist()] == [f"0000{i}_p{i}" for i in range(5)]
    assert data["label"].to_pylist() == labels
    np.testing.assert_allclose(store.vectors_of(data), engine.embed(images, model), rtol=1e-4, atol=1e-5)
