"""Every page renders on the offline default (tiny models, built-in samples) without an exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import corpus

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "pages/upload.py",
    "pages/pca_foreground.py",
    "pages/embedding_scatter.py",
    "pages/patch_matching.py",
    "pages/segment.py",
    "pages/zero_shot.py",
    "pages/search.py",
    "pages/compare.py",
    "pages/text_masks.py",
    "pages/stored.py",
    "pages/models.py",
]


def run_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180).run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    at = run_app()
    assert any("Random weights" in w.value for w in at.warning)  # the router's banner (AppTest keeps it on the
    if page != PAGES[0]:  # entry page only; tests/browser checks it on every page in a real browser)
        at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title[0].value


def test_upload_starts_on_the_built_in_samples_and_sidebar_shows_device_and_weights():
    at = run_app()
    assert at.metric[0].value == "7"
    sidebar = " ".join(m.value for m in at.sidebar.markdown) + " ".join(c.value for c in at.sidebar.caption)
    assert "Device:" in sidebar and "weights: **random**" in sidebar


def test_uploading_a_zip_and_a_corrupt_file_adds_labels_and_reports_the_bad_file():
    at = run_app()
    png = corpus.GOOD["plain.png"]()
    archive = corpus.zip_of({"cats/a.png": png, "cats/b.png": png, "dogs/c.png": png})
    at.toggle(key="upload_replace").set_value(True)
    at.file_uploader(key="upload_files").set_value(
        [("pets.zip", archive, "application/zip"), ("broken.jpg", b"not a jpeg", "image/jpeg")]
    ).run()
    at.button(key="upload_add").click().run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["3", "2", "1"]
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(skipped["file"]) == ["broken.jpg"] and "not an image" in skipped["reason"][0]


def test_the_working_set_survives_a_page_switch_and_bad_input_loses_nothing():
    at = run_app()
    at.button(key="upload_digits").click().run()
    assert at.metric[0].value == "307"  # 7 samples + 300 digits
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/upload.py").run()
    assert at.metric[0].value == "307"
    at.file_uploader(key="upload_files").set_value([("empty.png", b"", "image/png")]).run()
    at.button(key="upload_add").click().run()
    assert at.metric[0].value == "307" and not at.exception


def test_every_kind_of_bad_input_is_named_with_a_reason_and_the_good_ones_load():
    at = run_app()
    uploads = [(n, make(), "application/octet-stream") for n, make in {**corpus.GOOD, **corpus.BAD}.items()]
    expected_skips = list(corpus.BAD)
    for name, make in corpus.BAD_ZIPS.items():
        payload, skipped = make()
        uploads.append((name, payload, "application/zip"))
        expected_skips += skipped
    at.file_uploader(key="upload_files").set_value(uploads).run()
    at.button(key="upload_add").click().run()
    assert not at.exception
    good_in_zips = 1 + 1 + 2  # slip.zip: ok/a.png; nested.zip: b.png; empty_class.zip: cats, dogs
    assert at.metric[0].value == str(7 + len(corpus.GOOD) + good_in_zips)  # the samples are kept
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert sorted(skipped["file"]) == sorted(expected_skips)
    assert all(len(reason) > 10 for reason in skipped["reason"])
    assert len(corpus.GOOD) + len(corpus.BAD) + len(corpus.BAD_ZIPS) + len(corpus.ODD_ZIPS) >= 30


@pytest.mark.parametrize(
    ("name", "classes", "note"),
    [("single_class.zip", ["cats"], "One class so far"), ("scripts.zip", ["кошки", "猫", "قطط"], None)],
)
def test_odd_archives_load_and_the_page_says_what_they_lack(name, classes, note):
    at = run_app()
    at.toggle(key="upload_replace").set_value(True)
    at.file_uploader(key="upload_files").set_value([(name, corpus.ODD_ZIPS[name](), "application/zip")]).run()
    at.button(key="upload_add").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "class" in d.value.columns)
    assert sorted(table["class"]) == sorted(classes)
    assert note is None or any(note in w.value for w in at.warning)


def test_images_added_on_the_patch_matching_page_join_the_working_set():
    at = run_app()
    at.switch_page("pages/patch_matching.py").run()
    png = corpus.GOOD["plain.png"]()
    at.file_uploader(key="match_quick_files").set_value([("mine.png", png, "image/png")]).run()
    at.button(key="match_quick_add").click().run()
    assert not at.exception
    assert any("Added 1 image." in s.value for s in at.success)
    assert "mine.png" in at.selectbox(key="match_b").options
