"""Patch Search on a stored patch index (#20's bad input): an index of other weights than those that load here is
one sentence and the page stays usable; a result whose image file was deleted is a note in its place while the
other results show; an index built at another input size is queried at that size (the query's own patch found
first, at the right row and col of the larger grid).

The stored index is written as `python -m core.batch patches` writes it (the patches table, its settings file and
its k-NN index), from the test engine's tokens, without Ray.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data import ImageItem, ImageSet
from tests.widgets import hit_captions, patch_hits

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/patch_search.py"
MODEL = "dinov2_tiny"
CAPTION = re.compile(r"#(\d+) · (\S+?)(?: · (\w+))? · row (\d+), col (\d+) · cosine (-?\d+\.\d\d)")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, ImageSet]:
    """Six image files under a data root, and the working set holding the first of them (the query image)."""
    root = tmp_path_factory.mktemp("psearch_stored")
    rng = np.random.default_rng(3)
    for i in range(6):
        folder = root / "images" / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (70, 56, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    first = np.asarray(Image.open(root / "images" / "dogs" / "p0.png"))
    return root, ImageSet([ImageItem("p0.png", first, "dogs")], [])


def write_index(engine, root: Path, name: str, size: int, weights: str = "random", model: str = MODEL) -> Path:
    """The stored patch index of every file under root/images, at `size` px, as `model@weights` says it was made."""
    from core import store
    from core.patch_index import PATCHES, PatchSettings, build_stored_index, check_settings, patch_vectors, patches_rows

    files = sorted((root / "images").rglob("*.png"))
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    tokens = engine.patch_tokens(images, MODEL, size=size)
    out = root / name
    settings = PatchSettings(f"{model}@{weights}", size, 14)
    check_settings(out, settings)
    meta = {
        "id": [f.stem for f in files],
        "path": [str(f) for f in files],
        "label": [f.parent.name for f in files],
        "model": [model] * len(files),
        "weights": [weights] * len(files),
    }
    store.append(out, PATCHES, patches_rows(meta, settings, [patch_vectors(t) for t in tokens]))
    build_stored_index(out, min_rows=10**9)  # an exact scan
    return out


def open_stored(photos, folder: Path, monkeypatch) -> AppTest:
    root, working_set = photos
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["working_set"] = working_set
    at.run()
    at.switch_page(PAGE).run()
    at.radio(key="psearch_source").set_value("A stored patch index").run()
    at.text_input(key="psearch_folder").set_value(str(folder)).run()
    assert not at.exception, at.exception
    return at


def results(at: AppTest) -> list[tuple[str, int, int, float]]:
    found = []
    for caption in hit_captions(at):
        if m := CAPTION.match(caption):
            found.append((m[2], int(m[4]), int(m[5]), float(m[6])))
    return found


def test_an_index_of_other_weights_is_one_sentence_and_the_working_set_still_searches(photos, engine, monkeypatch):
    folder = write_index(engine, photos[0], "other_weights.lance", 56, weights="hf", model="dinov2_small")
    at = open_stored(photos, folder, monkeypatch)
    errors = [e.value for e in at.error]
    assert any("holds dinov2_small@hf tokens but dinov2_small@random is what loads here" in e for e in errors), errors
    assert not results(at)
    at.radio(key="psearch_source").set_value("The working set (indexed here)").run()
    at.button(key="psearch_build").click().run()
    assert not at.exception and results(at)[0][:3] == ("p0.png", 2, 2)


def test_a_deleted_image_file_is_a_note_in_its_place_and_the_other_results_show(photos, engine, monkeypatch):
    root = photos[0]
    folder = write_index(engine, root, "deleted.lance", 56)
    gone = root / "images" / "cats" / "p3.png"
    kept = gone.read_bytes()
    gone.unlink()
    try:
        at = open_stored(photos, folder, monkeypatch)
        unread = [hit for hit in patch_hits(at) if "error" in hit]
        shown = results(at)
    finally:
        gone.write_bytes(kept)
    assert [hit["caption"].split(" · ")[1] for hit in unread] == ["p3.png"], unread  # drawn as a note in its place
    assert "No such file" in unread[0]["error"] or "not found" in unread[0]["error"].lower(), unread
    assert len(shown) == 5 and "p3.png" not in {s[0] for s in shown}  # one result per image: the other five
    assert shown[0][:3] == ("p0.png", 2, 2) and shown[0][3] == 1.0


def test_an_index_built_at_another_size_is_queried_at_that_size(photos, engine, monkeypatch):
    from core.patch_index import open_patch_index
    from core.vector_index import unit_rows

    folder = write_index(engine, photos[0], "size112.lance", 112)
    stored = open_patch_index(folder)  # the heat maps' vectors come from the k-NN index: the stored tokens' unit rows
    for got, tokens in zip(stored.unit_vectors([4, 0]), stored.images_vectors([4, 0]), strict=True):
        np.testing.assert_allclose(got, unit_rows(tokens), rtol=0, atol=1e-6)
    at = open_stored(photos, folder, monkeypatch)
    assert any("112 px" in c.value or "8 × 8" in c.value for c in at.caption), [c.value for c in at.caption]
    shown = results(at)
    assert shown[0] == ("p0.png", 4, 4, 1.0)  # the centre of the 8 × 8 grid, its own patch
    assert all(0 <= r < 8 and 0 <= c < 8 for _, r, c, _ in shown)
