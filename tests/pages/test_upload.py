"""The Upload page in the first hour of a new user (#23): nothing added twice, no label lost without a word,
only the latest action reported, a server folder that exists and says what it wants, thumbnails in a fixed box."""

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from tests import corpus

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "upload.py")


def _png(seed: int) -> bytes:
    return corpus.encode(corpus.rgb(24, 16, seed=seed))


def _page() -> AppTest:
    """The page on its own, starting on the seven built-in sample photos."""
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _uploader(at: AppTest):
    """The page's file uploader, whatever key it has now (a new one after each add, so that it comes back empty)."""
    (widget,) = [u for u in at.get("file_uploader") if u.key.startswith("upload_files")]
    return widget


def _add(at: AppTest, files: dict[str, bytes]) -> AppTest:
    _uploader(at).set_value([(name, data, "application/octet-stream") for name, data in files.items()]).run()
    return at.button(key="upload_add").click().run()


def _metrics(at: AppTest) -> list[str]:
    return [m.value for m in at.metric]


def _classes(at: AppTest) -> dict[str, int]:
    table = next((d.value for d in at.dataframe if "class" in d.value.columns), None)
    return {} if table is None else dict(zip(table["class"], table["images"], strict=True))


def _texts(elements) -> str:
    return " | ".join(e.value for e in elements)


# ---- 1. nothing twice -----------------------------------------------------------------------------------
def test_adding_empties_the_uploader_and_images_already_present_are_not_added_again():
    at = _add(_page(), {"a.png": _png(1), "b.png": _png(2)})
    assert not at.exception
    assert _metrics(at)[0] == "9" and "Added 2 images." in _texts(at.success)
    assert _uploader(at).value == []  # a fresh, empty uploader: the next add cannot bring a.png and b.png again

    at = _add(at, {"pets.zip": corpus.zip_of({"cats/a.png": _png(1), "dogs/c.png": _png(3)}), "b.png": _png(2)})
    assert _metrics(at)[0] == "10"  # c.png only; a.png and b.png are the same pixels as before
    assert "Added 1 image, 2 already present, 1 of them took their class from this upload." in _texts(at.success)
    assert _classes(at) == {"cats": 1, "dogs": 1}  # a.png, already there unlabeled, took its class from the zip

    at.button(key="upload_samples").click().run()
    assert _metrics(at)[0] == "10" and not at.success
    assert "Nothing new: 7 already present." in _texts(at.warning)


# ---- 2. labels ----------------------------------------------------------------------------------------
def test_one_class_folder_is_a_class_and_classes_of_several_zips_add_up():
    at = _add(_page(), {"cats.zip": corpus.zip_of({"cats/a.png": _png(1), "cats/b.png": _png(2)})})
    assert _classes(at) == {"cats": 2}
    assert "One class so far (cats)" in _texts(at.warning)
    assert "7 unlabeled images" in _texts(at.caption)  # the samples: counted, not hidden

    at = _add(at, {"dogs.zip": corpus.zip_of({"dogs/c.png": _png(3)})})
    assert _classes(at) == {"cats": 2, "dogs": 1} and _metrics(at)[:2] == ["10", "2"]
    assert "One class so far" not in _texts(at.warning)


def test_an_empty_class_folder_is_named_and_the_other_classes_keep_their_labels():
    at = _page()
    at.toggle(key="upload_replace").set_value(True)
    at = _add(at, {"pets.zip": corpus.zip_of({"cats/a.png": _png(1), "fish/": b""})})
    assert _classes(at) == {"cats": 1}
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(skipped["file"]) == ["fish/"] and "empty folder" in skipped["reason"][0]


def test_without_labels_the_page_says_why():
    at = _page()
    assert "none of these images came in a class folder" in _texts(at.caption)


# ---- 10. messages ---------------------------------------------------------------------------------------
def test_only_the_latest_action_is_reported():
    at = _add(_page(), {"a.png": _png(1)})
    assert at.success
    at.text_input(key="upload_folder").set_value("/etc").run()
    at.button(key="upload_load_folder").click().run()
    assert "outside the allowed" in _texts(at.error) and not at.success  # no old green box under the new error

    at = _add(at, {"b.png": _png(2)})
    at.button(key="upload_clear").click().run()
    assert _metrics(at)[0] == "0" and not at.success  # no "Added 1 image." above "Images 0"


def test_nothing_read_is_an_error_and_counts_are_in_good_grammar():
    at = _add(_page(), {"broken.jpg": corpus.BAD["truncated.jpg"]()})
    assert not at.success
    assert "No image could be read: 1 file skipped." in _texts(at.error)
    assert "1 file skipped" in _texts(at.warning)
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert "truncated or corrupt" in skipped["reason"][0]


# ---- 8. the server folder ------------------------------------------------------------------------------
def test_the_server_folder_tab_creates_its_root_and_says_where_it_is_and_what_goes_in(tmp_path, monkeypatch):
    root = tmp_path / "fresh clone" / "data"
    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(root))
    at = _page()
    assert root.is_dir()
    text = _texts(at.markdown)
    assert f"`{root.resolve()}`" in text and "one subfolder per class" in text and "(missing)" not in text
    for cls, seed in (("cats", 1), ("dogs", 2)):
        (root / "pets" / cls).mkdir(parents=True)
        (root / "pets" / cls / "1.png").write_bytes(_png(seed))
    at.text_input(key="upload_folder").set_value(str(root / "pets")).run()
    at.button(key="upload_load_folder").click().run()
    assert _classes(at) == {"cats": 1, "dogs": 1}


# ---- 9. the gallery -------------------------------------------------------------------------------------
def test_gallery_tiles_are_one_fixed_box_and_a_tiny_image_says_its_real_size():
    from components.images import thumbnail

    strip = thumbnail(np.full((4000, 1, 3), 9, np.uint8), 112)
    assert strip.shape == (112, 112, 3)  # not 112 tall and 1 wide, drawn 112 wide → 12,544 px tall
    (column,) = np.flatnonzero((strip == 9).all(axis=(0, 2)))  # the strip: one full-height column, centred,
    assert 50 < column < 62 and (np.delete(strip, column, axis=1) == 240).all()  # on a grey box
    dot = thumbnail(np.full((1, 1, 3), 200, np.uint8), 112)
    assert dot.shape == (112, 112, 3) and (dot == 200).all()  # enlarged, nearest neighbour: one flat square

    at = _add(_page(), {"dot.png": corpus.GOOD["one_pixel.png"](), "plain.png": corpus.GOOD["plain.png"]()})
    captions = [img.caption for img in at.get("image")[0].proto.imgs]
    assert "dot.png · 1×1 px" in captions and "plain.png" in captions  # 40×30: shown 2× in its tile, no size


def test_a_single_class_upload_leaves_no_dead_end_on_the_pages_that_need_classes():
    at = AppTest.from_file(str(Path(PAGE).parents[1] / "app.py"), default_timeout=180).run()
    at = _add(at, {"cats.zip": corpus.zip_of({"cats/a.png": _png(1), "cats/b.png": _png(2)})})
    at.switch_page("pages/compare.py").run()
    assert "you have 2 labeled images in 1 class (cats)" in _texts(at.info)
    at.switch_page("pages/zero_shot.py").run()
    assert not at.exception
    assert "Give at least two classes" not in _texts(at.info)  # cats and the sample classes are offered
    assert "7 unlabeled images are left out of the accuracy." in _texts(at.caption)  # the cats are scored


def _jpeg(seed: int) -> bytes:
    return corpus.encode(corpus.rgb(48, 32, seed=seed), "JPEG")


def test_a_camera_photo_lands_in_the_working_set_once_and_the_camera_comes_back_empty():
    at = _page()
    before = len(at.session_state["working_set"].items)
    assert not at.get("camera_input")  # the browser is asked for the camera only after the switch
    at.toggle(key="upload_camera_on").set_value(True).run()
    (camera,) = at.get("camera_input")
    camera.set_value(("shot.jpg", _jpeg(7), "image/jpeg")).run()
    items = at.session_state["working_set"].items
    assert len(items) == before + 1 and items[-1].name.startswith("camera-")
    assert at.success and "Added 1 image" in at.success[0].value
    (fresh,) = at.get("camera_input")
    assert fresh.key != camera.key and fresh.value is None  # ready for the next shot
    at.run()  # a later run adds nothing again
    assert len(at.session_state["working_set"].items) == before + 1
