"""The Video tracking page with the tiny random SAM 2 on a synthetic clip: upload, clicks sent as the prompt widget
sends them (`tests.widgets.send_trigger`), tracking, scrubbing, a correction, downloads; bad files in one sentence.

Expected masks come from a `VideoTracker` on the test engine's model (same seeded random weights), not from the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis.imaging import resize_map
from core.video import FramePrompt, VideoTracker
from tests.core.test_video import FPS, MODEL, H, T, W, disc_clip, write_clip
from tests.widgets import component_data, data_url_pixels, send_trigger

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "video.py")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    return write_clip(disc_clip(), tmp_path_factory.mktemp("clip") / "disc.mp4").read_bytes()


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240).run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> None:
    (uploader,) = at.get("file_uploader")
    uploader.set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception


def click(at: AppTest, kind: str, *xy: float, positive: bool = True) -> None:
    """A click (two numbers) or a drag (four) at these pixels of the clip, sent as fractions, as the widget does."""
    scale = [W, H] * (len(xy) // 2)
    send_trigger(
        at,
        "vfm_prompt_canvas",
        "prompt",
        {"kind": kind, "xy": [v / s for v, s in zip(xy, scale, strict=True)], "positive": positive},
    )
    assert not at.exception, at.exception


def shown(at: AppTest) -> np.ndarray:
    return data_url_pixels(component_data(at, "vfm_prompt_canvas")["image"])


def tracker(at: AppTest) -> VideoTracker:
    return at.session_state["video_tracker"][2]


def test_without_a_clip_the_page_asks_for_one_and_a_bad_file_is_one_sentence(tmp_path):
    at = open_page()
    assert "Upload a short clip" in at.info[0].value
    upload(at, "notes.mp4", b"this is not a video\n" * 20)
    assert [w.value for w in at.warning][-1] == "notes.mp4: This file could not be read as a video (mp4, webm or gif)."


def test_click_track_scrub_correct_and_download(engine, clip_bytes):
    at = open_page()
    upload(at, "disc.mp4", clip_bytes)
    assert any(f"{T} frames, {W} × {H} px, {FPS:.1f} frames/s" in c.value for c in at.caption)
    plain = shown(at)

    click(at, "point", 20.0, 24.0)
    page = tracker(at)
    frames = page.frames
    assert list(page.prompts) == [(0, 1)] and list(page.masks) == [0]
    mask0 = page.masks[0][1]
    assert 0 < mask0.mean() < 1
    drawn = component_data(at, "vfm_prompt_canvas")["prompts"]
    assert drawn == [{"kind": "point", "xy": [20 / W, 24 / H], "positive": True}]
    small = resize_map(mask0, plain.shape[:2], nearest=True) > 0.5
    change = np.abs(shown(at).astype(int) - plain).max(axis=2) > 20
    assert change[small].mean() > 0.5 and change[~small].mean() < 0.2  # the mask drawn over the frame (JPEG)

    at.button(key="video_track").click().run()
    assert not at.exception, at.exception
    assert sorted(page.masks) == list(range(T))
    loaded = engine.video_model(MODEL)
    expected = VideoTracker(loaded.adapter, frames, loaded.lock)
    expected.add_prompt(0, 1, points=np.array([[20.0, 24.0]]))
    expected.propagate("both")
    for f in range(T):
        np.testing.assert_array_equal(page.masks[f][1], expected.masks[f][1], err_msg=f"frame {f}")
    assert any(c.value.startswith(f"Last run: {T} frames tracked in") for c in at.caption)

    zero = shown(at)
    at.slider(key="video_frame").set_value(6).run()
    six = shown(at)  # frame 6 with its tracked mask: the disc has moved, the mask is frame 6's
    small = resize_map(page.masks[6][1], six.shape[:2], nearest=True) > 0.5
    assert np.abs(six.astype(int) - zero).max(axis=2).mean() > 5 and small.any()
    assert component_data(at, "vfm_prompt_canvas")["prompts"] == []  # no prompt on frame 6 yet

    at.segmented_control(key="video_object").set_value(2).run()
    click(at, "box", 36.0, 10.0, 60.0, 40.0)  # object 2 on frame 6: a correction, tracked again at once
    assert (6, 2) in page.prompts and sorted(o for o in page.masks[0]) == [1, 2]
    expected.add_prompt(6, 2, box=np.array([36.0, 10.0, 60.0, 40.0]))
    expected.propagate("both")
    for f in range(T):
        for o in (1, 2):
            np.testing.assert_array_equal(page.masks[f][o], expected.masks[f][o], err_msg=f"frame {f} object {o}")

    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Overlay video (mp4)", "Masks (PNG zip)", "Masks (COCO RLE JSON)"]


def test_gestures_accumulate_per_frame_and_object_and_a_box_replaces_the_box():
    from core.segment_session import Prompt

    prompt = FramePrompt()
    for gesture in (
        Prompt("point", (1.0, 2.0)),
        Prompt("box", (0.0, 0.0, 5.0, 5.0)),
        Prompt("point", (3.0, 4.0), False),
        Prompt("box", (1.0, 1.0, 6.0, 7.0)),
    ):
        prompt = prompt.adding(gesture)
    np.testing.assert_array_equal(prompt.points, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(prompt.labels, [1, 0])
    np.testing.assert_array_equal(prompt.box, [1, 1, 6, 7])
    assert prompt.gestures() == [
        Prompt("box", (1.0, 1.0, 6.0, 7.0)),
        Prompt("point", (1.0, 2.0)),
        Prompt("point", (3.0, 4.0), False),
    ]
