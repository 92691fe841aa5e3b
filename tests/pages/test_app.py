"""Every page renders on the offline default (tiny models, built-in samples) without an exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import registry
from tests import corpus

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "pages/upload.py",
    "pages/pca_foreground.py",
    "pages/embedding_scatter.py",
    "pages/patch_matching.py",
    "pages/patch_search.py",
    "pages/segment.py",
    "pages/evaluate.py",
    "pages/video.py",
    "pages/zero_shot.py",
    "pages/search.py",
    "pages/compare.py",
    "pages/text_masks.py",
    "pages/stored.py",
    "pages/models.py",
]


# pages whose main widget needs a live server (AppTest has none): their own tests stub it, a browser test runs it
SERVER_ONLY = {"pages/live.py": "tests/pages/test_live.py, tests/browser/test_live.py"}


def test_every_page_of_the_navigation_is_rendered_here_or_has_its_own_test():
    import re

    navigation = set(re.findall(r'st\.Page\("(pages/[a-z_]+\.py)"', Path(APP).read_text()))
    assert navigation == set(PAGES) | set(SERVER_ONLY)


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


@pytest.mark.parametrize(("native", "switch", "said"), [(True, None, True), (True, "0", False), (False, None, False)])
def test_the_sidebar_says_when_full_size_image_towers_run_in_bf16(monkeypatch, native, switch, said):
    from core.models import fast

    monkeypatch.setattr(fast, "native_bf16", lambda: native)
    if switch is None:
        monkeypatch.delenv("VFM_LENS_CPU_BF16", raising=False)
    else:
        monkeypatch.setenv("VFM_LENS_CPU_BF16", switch)
    device = next(m.value for m in run_app().sidebar.markdown if "Device:" in m.value)
    assert ("full-size image towers in bf16" in device) == said, device


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


def test_compare_names_the_models_it_runs_with_random_weights_timm_baselines_included():
    at = run_app()
    at.button(key="upload_digits").click().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    note = next(w.value for w in at.warning if "Random weights here" in w.value)
    assert "timm ViT tiny (test)" in note and "CLIP tiny (test)" in note


def test_weight_pickers_say_when_the_chosen_weights_are_missing_and_random_ones_run():
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["sidebar_text_model"] = "clip_vit_b32"  # AppTest draws the sidebar on its first run only
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="sidebar_text_weights").options == [
        "openai (not found: random weights)",
        "laion2b_s34b_b79k (not found: random weights)",
        "random",
    ]


def _search_candidates():
    import streamlit as st

    from components.retrieval_view import candidate_models

    st.write(", ".join(candidate_models()))


@pytest.mark.parametrize("profile", ["default", "tiny"])
def test_test_models_are_offered_only_in_the_tiny_profile(monkeypatch, profile):
    monkeypatch.setenv("VFM_LENS_PROFILE", profile)
    at = run_app()
    offered = [
        o for role in ("text", "dense", "segment") for o in at.sidebar.selectbox(key=f"sidebar_{role}_model").options
    ]
    search = AppTest.from_function(_search_candidates).run().markdown[0].value.split(", ")
    tests_in_search = [m for m in search if registry.parse(m).spec.tiny]
    if profile == "tiny":
        assert "CLIP tiny (test)" in offered and "timm_tiny@random" in tests_in_search
    else:
        assert not [o for o in offered if "(test)" in o] and not tests_in_search
        assert "CLIP ViT-B/32" in offered and "timm_vit_b16@in1k" in search


@pytest.mark.parametrize(
    ("page", "work"), [("pages/zero_shot.py", "text prompts"), ("pages/search.py", "1 text prompt")]
)
def test_text_embedding_runs_under_a_spinner_that_names_the_work(monkeypatch, page, work):
    import streamlit as st

    spinners, spinner = [], st.spinner

    def recording_spinner(text="", *args, **kwargs):
        spinners.append(text)
        return spinner(text, *args, **kwargs)

    monkeypatch.setattr(st, "spinner", recording_spinner)  # AppTest runs the script in this process
    at = run_app()
    at.switch_page(page).run()
    assert not at.exception
    assert any(f"{work} with CLIP tiny (test)" in text for text in spinners), spinners


def test_model_pickers_on_pages_say_when_weights_are_missing(monkeypatch):
    monkeypatch.setenv("VFM_LENS_PROFILE", "default")  # full-size models with pretrained tags, offline: not found
    at = run_app()
    at.button(key="upload_digits").click().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert "ViT-B/16 ImageNet (timm) (in1k not found: random weights)" in at.multiselect(key="compare_models").options
    note = next(w.value for w in at.warning if "Random weights here" in w.value)
    assert "ViT-B/16 ImageNet (timm) (in1k not found: random weights)" in note


def test_presenter_mode_hides_the_controls_and_can_be_left():
    """One switch (or ?present=1) adds the projector layout and a way out; leaving removes both."""
    from components.presenter import PRESENTER_CSS

    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["present"] = "1"
    at.run()
    assert not at.exception
    assert at.session_state["presenter"] is True
    assert any(PRESENTER_CSS in h.proto.body for h in at.get("html"))
    at.button(key="presenter_leave").click().run()
    assert at.session_state["presenter"] is False
    assert not any(PRESENTER_CSS in h.proto.body for h in at.get("html"))
    assert not [b for b in at.button if b.key == "presenter_leave"]
