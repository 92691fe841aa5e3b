"""The PCA Foreground page on the tiny DINOv2 and the built-in samples: panels, slider effects, other views.

Assertions read the pixels the page actually sent (AppTest's in-memory media storage), not just text.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest, app_test

from components import pca_view
from components.pca_view import JOINT, NORMS, PANELS, REGISTERS
from core.models.dinov2 import DINOv2Adapter

APP = str(Path(__file__).resolve().parents[2] / "app.py")
RECIPE = [PANELS[p] for p in ("original", "pc1", "mask", "rgb", "overlay")]


@pytest.fixture
def media(monkeypatch) -> list[MemoryMediaFileStorage]:
    """The media storage of every AppTest run, in order; the last one holds the last run's images."""
    made: list[MemoryMediaFileStorage] = []

    class Recording(MemoryMediaFileStorage):
        def __init__(self, endpoint: str):
            super().__init__(endpoint)
            made.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)
    return made


def _open_page(dense: str | None = None) -> AppTest:
    """The page with the tiny DINOv2, or `dense` chosen in the sidebar's dense-features role."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/pca_foreground.py")
    return _clean(_run(at, dense) if dense else at.run())


def _run(at: AppTest, dense: str) -> AppTest:
    """Run with `dense` chosen in the sidebar. AppTest draws the sidebar on its first run only, so its picker's
    value is dropped after each run: set it again before every one."""
    at.session_state["sidebar_dense_model"] = dense
    return at.run()


def _clean(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]  # user_errors turns a crash into st.error
    return at


def _pixels(at: AppTest, media: list[MemoryMediaFileStorage], caption: str) -> list[np.ndarray]:
    """HWC uint8 of every image shown with `caption`, decoded from the bytes the page sent."""
    urls = [image.value[0] for image in at.image if image.captions[0] == caption]
    files = [media[-1].get_file(url.rsplit("/", 1)[-1]).content for url in urls]
    return [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in files]


def _mask(at: AppTest, media: list[MemoryMediaFileStorage]) -> np.ndarray:
    [panel] = _pixels(at, media, PANELS["mask"])
    assert set(np.unique(panel)) <= {0, 255}
    return panel[..., 0] == 255


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _threshold_line(at: AppTest) -> float:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return next(s["x0"] for s in spec["layout"]["shapes"] if s["line"].get("dash") != "dot")


def _count_calls(monkeypatch, owner: object, name: str) -> dict[str, int]:
    calls = {"n": 0}
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_single_image_panels_and_the_threshold_slider_moves_the_mask(media, monkeypatch):
    at = _open_page()
    forwards = _count_calls(monkeypatch, DINOv2Adapter, "patch_tokens")
    colour_fits = _count_calls(monkeypatch, pca_view, "compute_rgb_pca")
    assert [image.captions[0] for image in at.image] == RECIPE
    assert len(at.download_button) == len(RECIPE) + 1  # a PNG per panel and the NPZ
    mask = _mask(at, media)
    share = float(_metric(at, "Foreground patches").rstrip("%")) / 100
    assert 0.05 < share < 0.95 and mask.mean() == pytest.approx(share, abs=0.01)
    overlay = _pixels(at, media, PANELS["overlay"])[0]
    original = _pixels(at, media, PANELS["original"])[0]
    assert np.array_equal(overlay[~mask], original[~mask]) and not np.array_equal(overlay[mask], original[mask])

    at.slider(key="pca_recipe_opacity").set_value(1.0).run()
    assert np.array_equal(
        _pixels(_clean(at), media, PANELS["overlay"])[0][mask], _pixels(at, media, PANELS["rgb"])[0][mask]
    )
    assert forwards["n"] == 0 and colour_fits["n"] == 0  # opacity only blends again: no model, no PCA refit

    slider = next(s for s in at.slider if s.label == "Threshold on PC1")
    otsu, high_side = slider.value, _metric(at, "Foreground side").startswith("high")
    moved = (otsu + slider.max) / 2
    slider.set_value(moved).run()
    _clean(at)
    smaller = _mask(at, media)
    assert _threshold_line(at) == pytest.approx(moved, rel=1e-4)
    if high_side:  # moving up shrinks a high-side foreground, grows a low-side one, and never swaps sides
        assert smaller.mean() < mask.mean() and not (smaller & ~mask).any()
    else:
        assert smaller.mean() > mask.mean() and not (mask & ~smaller).any()
    assert float(_metric(at, "Foreground patches").rstrip("%")) / 100 == pytest.approx(smaller.mean(), abs=0.01)
    assert forwards["n"] == 0 and colour_fits["n"] == 1  # the tokens come from the cache, the colours are refitted

    at.button(key="pca_recipe_reset").click().run()
    np.testing.assert_array_equal(_mask(_clean(at), media), mask)


def test_extreme_thresholds_warn_instead_of_failing(media):
    at = _open_page()
    slider = next(s for s in at.slider if s.label == "Threshold on PC1")
    high_side = _metric(at, "Foreground side").startswith("high")
    slider.set_value(slider.max if high_side else slider.min).run()  # nothing left on the foreground side
    assert not _mask(_clean(at), media).any()
    assert any("No patch is foreground" in w.value for w in at.warning)
    assert [image.captions[0] for image in at.image] == RECIPE[:3]  # no colour panels without foreground

    next(t for t in at.toggle if t.label == "Flip side").set_value(True).run()  # the same cut, other side: all
    assert _mask(_clean(at), media).all()
    assert any("Every patch is foreground" in w.value for w in at.warning)
    side = next(m for m in at.metric if m.label == "Foreground side")  # short enough not to be cut off
    assert side.value in ("high PC1", "low PC1") and "swapped by **Flip side**" in side.help


def test_joint_registers_and_norms_views(media):
    at = _open_page()
    at.radio(key="pca_mode").set_value(JOINT).run()
    assert [image.captions[0] for image in _clean(at).image] == RECIPE * 4  # four images by default
    colours = _pixels(at, media, PANELS["rgb"])
    assert len(colours) == 4 and all(c.max() > 0 for c in colours)
    assert len([b for b in at.download_button if b.label == "PNG"]) == len(RECIPE) * 4  # a PNG per panel

    at.multiselect(key="pca_joint_images").set_value([0]).run()
    assert any("at least two" in i.value for i in _clean(at).info) and not at.image

    at.radio(key="pca_mode").set_value(REGISTERS).run()
    titles = [m.value for m in _clean(at).markdown if m.value.startswith("**DINOv2")]
    assert len(titles) == 2 and "registers" in titles[1] and "registers" not in titles[0]
    note = next(w.value for w in _clean(at).warning if "Random weights here" in w.value)
    assert "view means nothing" in note and "registers" in note  # both tiny models of the pair run random
    first, second = _pixels(at, media, PANELS["pc1"])
    assert first.shape == second.shape and not np.array_equal(first, second)  # two different models ran
    assert len(_pixels(at, media, PANELS["norms"])) == 2

    at.radio(key="pca_mode").set_value(NORMS).run()
    captions = [image.captions[0] for image in _clean(at).image]
    assert captions[0] == "Original" and [c.split(":")[0] for c in captions[1:]] == ["Block 1", "Block 2"]
    at.slider(key="pca_norms_k").set_value(2.0).run()
    maps = [_pixels(_clean(at), media, c)[0] for c in (image.captions[0] for image in at.image[1:])]
    flagged = sum(int(c.split(", ")[-1].split()[0]) for c in (image.captions[0] for image in at.image[1:]))
    red = sum(int(((m[..., 0] > 200) & (m[..., 1] < 80) & (m[..., 2] < 80)).sum()) for m in maps)
    assert flagged > 0 and red > 0  # a low cut-off flags tokens, and they are painted red


def test_moving_the_threshold_and_resetting_it_logs_no_session_state_warning(media, monkeypatch, caplog):
    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit warns once per process
    monkeypatch.setattr(policies.runtime, "exists", lambda: True)  # AppTest has no Runtime; the check needs one
    at = _open_page()
    slider = next(s for s in at.slider if s.label == "Threshold on PC1")
    otsu = slider.value
    slider.set_value((otsu + slider.max) / 2).run()
    at.button(key="pca_recipe_reset").click().run()
    assert next(s for s in _clean(at).slider if s.label == "Threshold on PC1").value == pytest.approx(otsu)
    at.button(key="pca_recipe_reset").click().run()  # reset twice: the second run sets the same value again
    _clean(at)
    warned = [r.getMessage() for r in caplog.records if "Session State API" in r.getMessage()]
    assert not warned, warned


def test_joint_pca_keeps_its_own_input_size_and_says_what_it_costs(media):
    at = _open_page()
    at.select_slider(key="pca_size").set_value(896).run()
    assert "1 image × 64×64 patches = 4,096 tokens: about 4.0× the time" in " ".join(
        c.value for c in _clean(at).caption
    )
    at.radio(key="pca_mode").set_value(JOINT).run()
    assert at.select_slider(key="pca_joint_size").value == pca_view.JOINT_SIZE == 448  # not the single image's 896
    assert "4 images × 32×32 patches = 4,096 tokens: about 4.0× the time" in " ".join(
        c.value for c in _clean(at).caption
    )


def test_token_norms_of_all_blocks_come_from_one_forward_pass(media, monkeypatch):
    from core.engine import Engine

    at = _open_page()
    at.select_slider(key="pca_size").set_value(238).run()  # a size no other test computes: nothing cached
    per_layer = _count_calls(monkeypatch, DINOv2Adapter, "patch_tokens")
    all_layers = _count_calls(monkeypatch, Engine, "layer_tokens")
    at.radio(key="pca_mode").set_value(NORMS).run()
    assert [c.split(":")[0] for c in (image.captions[0] for image in _clean(at).image[1:])] == ["Block 1", "Block 2"]
    assert all_layers["n"] == 1 and per_layer["n"] == 0


def test_dinov3_runs_every_view_on_its_16_px_patch_grid(media):
    """DINOv3 chosen in the sidebar: sizes are multiples of 16, the grid is size / 16, and the registers view shows
    the model alone with a one-line note (it always has registers: there is no twin to compare with)."""
    at = _open_page("dinov3_tiny")
    assert [image.captions[0] for image in at.image] == RECIPE
    size = at.select_slider(key="pca_size")
    assert size.value == 448 and all(option % 16 == 0 for option in map(int, size.options))
    assert "1 image × 28×28 patches = 784 tokens" in " ".join(c.value for c in at.caption)
    assert 0 < _mask(at, media).mean() < 1

    at.radio(key="pca_mode").set_value(REGISTERS)
    _run(at, "dinov3_tiny")
    titles = [m.value for m in _clean(at).markdown if m.value.startswith("**DINOv")]
    assert len(titles) == 1 and titles[0].startswith("**DINOv3 tiny (test)**")
    assert any("no twin" in i.value and "always has 4" in i.value for i in at.info)
    assert len(_pixels(at, media, PANELS["pc1"])) == 1 and len(_pixels(at, media, PANELS["norms"])) == 1

    at.radio(key="pca_mode").set_value(NORMS)
    _run(at, "dinov3_tiny")
    assert [c.split(":")[0] for c in (image.captions[0] for image in _clean(at).image[1:])] == ["Block 1", "Block 2"]
    assert "size / 16 patches" in at.select_slider(key="pca_size").help


def test_a_size_kept_from_dinov2_moves_to_the_nearest_multiple_of_16(media):
    at = _open_page()
    at.select_slider(key="pca_size").set_value(238).run()  # 17 DINOv2 patches: not a multiple of 16
    _run(at, "dinov3_tiny")
    assert _clean(at).select_slider(key="pca_size").value == 240
    assert "1 image × 15×15 patches" in " ".join(c.value for c in at.caption)
    assert [image.captions[0] for image in at.image] == RECIPE
