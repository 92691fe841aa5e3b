"""Video: decoding clips written with PyAV, SAM 2 tracking against transformers' own video API on the same tiny
random weights, corrections, cancelling, exports round-tripped, bad files."""

from __future__ import annotations

import io
import json
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from core.registry import get
from core.video import (
    ClipError,
    VideoTracker,
    export_overlay,
    load_clip,
    masks_coco,
    masks_png_zip,
)

MODEL = "sam2_video_tiny@random"
T, H, W, FPS = 10, 48, 64, 10


def disc_clip(frames: int = T, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """(T, H, W, 3) uint8: a bright disc moving left to right over a checkered, noisy background."""
    h, w = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    background = (((yy // 6 + xx // 6) % 2) * 60 + 60)[..., None] + rng.integers(0, 30, (h, w, 3))
    out = []
    for t in range(frames):
        cx = 10 + (w - 20) * t / max(frames - 1, 1)
        disc = (xx - cx) ** 2 + (yy - h / 2) ** 2 < (h / 5) ** 2
        out.append(np.where(disc[..., None], np.array([230, 60, 40]), background).astype(np.uint8))
    return np.stack(out)


def write_clip(frames: np.ndarray, path: Path, fps: int = FPS) -> Path:
    """`frames` as an H.264 mp4 or a gif (by `path`'s suffix), written with PyAV."""
    codec, pix_fmt = ("gif", "rgb8") if path.suffix == ".gif" else ("libx264", "yuv420p")
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


# ---- decoding -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_written_clip_decodes_to_its_frame_count_size_and_rate(tmp_path, suffix):
    frames = disc_clip()
    path = write_clip(frames, tmp_path / f"disc{suffix}")
    for source in (path, path.read_bytes()):
        clip = load_clip(source)
        assert clip.frames.shape == (T, H, W, 3) and clip.frames.dtype == np.uint8
        assert clip.fps == pytest.approx(FPS, rel=0.02) and clip.notes == ()
        # lossy codecs: the disc is still where it was drawn
        red = clip.frames[..., 0].astype(int) - clip.frames[..., 1]
        drawn = frames[..., 0].astype(int) - frames[..., 1] > 100
        assert (red[drawn] > 80).mean() > 0.9 and (red[~drawn] > 80).mean() < 0.05


def test_a_large_clip_is_downscaled_and_a_long_one_cut_with_a_note(tmp_path):
    path = write_clip(disc_clip(25, (96, 160)), tmp_path / "long.mp4")
    clip = load_clip(path, max_seconds=1.0, max_side=80)
    assert clip.frames.shape == (10, 48, 80, 3)
    assert clip.notes == (
        "The clip is 2 s long: its first 1 s (10 frames) are used.",
        "Frames downscaled from 160 × 96 to 80 × 48 pixels.",
    )


def test_files_that_are_no_video_say_so_in_one_sentence(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    audio = tmp_path / "tone.wav"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    for path, message in (
        (text, "This file could not be read as a video (mp4, webm or gif)."),
        (audio, "This file has no video track (is it audio only?)."),
    ):
        with pytest.raises(ClipError) as caught:
            load_clip(path)
        assert str(caught.value) == message
    with pytest.raises(ClipError, match="could not be read"):
        load_clip(b"")


# ---- tracking -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return disc_clip()


@pytest.fixture
def tracker(engine, frames) -> VideoTracker:
    loaded = engine.video_model(MODEL)
    return VideoTracker(loaded.adapter, frames, loaded.lock)


def upstream_masks(adapter, frames: np.ndarray, start: int, prompts: list[dict], reverse_too: bool = True) -> dict:
    """transformers' own video path, as its docs use it: the whole clip processed up front, inputs added, the model
    run on the prompted frame, propagation forward then backward, masks post-processed to the clip's size."""
    processor, model = adapter.processor, adapter.module
    session = processor.init_video_session(video=list(frames), inference_device="cpu")
    for prompt in prompts:
        processor.add_inputs_to_inference_session(session, frame_idx=start, **prompt)
        model(inference_session=session, frame_idx=start)
    out = {}
    for reverse in (False, True) if reverse_too else (False,):
        for step in model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse):
            (masks,) = processor.post_process_masks([step.pred_masks], original_sizes=[list(frames.shape[1:3])])
            out[step.frame_idx] = {o: masks[i, 0].numpy() for i, o in enumerate(step.object_ids)}
    return out


def test_two_objects_are_tracked_on_every_frame_exactly_as_transformers_tracks_them(engine):
    """24 frames, prompted on frame 8: long enough that the tracker drops memory SAM 2 will not read again."""
    T, start = 24, 8  # noqa: N806 - the clip's length here
    frames = disc_clip(T)
    loaded = engine.video_model(MODEL)
    tracker = VideoTracker(loaded.adapter, frames, loaded.lock)
    first = tracker.add_prompt(start, 1, points=np.array([[30.0, 24.0], [5.0, 5.0]]), labels=np.array([1, 0]))
    assert set(first) == {1} and first[1].shape == (H, W) and first[1].dtype == bool
    tracker.add_prompt(start, 2, box=np.array([40.0, 2.0, 62.0, 20.0]))
    seen = []
    result = tracker.propagate("both", progress=lambda done, planned, fps: seen.append((done, planned)))
    assert result.planned == (T - start) + (start + 1) and result.done == result.planned and not result.cancelled
    assert seen == [(n, result.planned) for n in range(1, result.planned + 1)]
    assert sorted(result.masks) == list(range(T)) == sorted(tracker.masks)

    expected = upstream_masks(
        loaded.adapter,
        frames,
        start,
        [
            {"obj_ids": 1, "input_points": [[[[30.0, 24.0], [5.0, 5.0]]]], "input_labels": [[[1, 0]]]},
            {"obj_ids": 2, "input_boxes": [[[40.0, 2.0, 62.0, 20.0]]]},
        ],
    )
    assert sorted(expected) == list(range(T))
    for frame in range(T):
        assert sorted(tracker.masks[frame]) == [1, 2]
        for obj in (1, 2):
            np.testing.assert_array_equal(tracker.masks[frame][obj], expected[frame][obj], err_msg=f"{frame=} {obj=}")
    fractions = [tracker.masks[f][o].mean() for f in range(T) for o in (1, 2)]
    assert 0 < min(fractions) and max(fractions) < 1, "random weights, yet each mask is a part of the frame"
    for outputs in tracker.session.output_dict_per_obj.values():  # what is left of the tracked frames' state
        tracked = outputs["non_cond_frame_outputs"]
        assert sorted(tracked) == [f for f in range(T) if f != start]
        assert not any("high_res_masks" in out or "pred_masks" in out for out in tracked.values())
        remembered = sorted(f for f, out in tracked.items() if "maskmem_features" in out)
        assert remembered == [f for f in range(15) if f != start] + list(range(T - 7, T))  # near the ends, the prompt


def test_a_correction_changes_its_frame_and_forward_propagation_leaves_earlier_frames_alone(tracker):
    start, k = 2, 6
    tracker.add_prompt(start, 1, points=np.array([[20.0, 24.0]]))
    tracker.propagate("both")
    before = {f: tracker.masks[f][1] for f in range(T)}

    corrected = tracker.add_prompt(k, 1, points=np.array([[50.0, 24.0], [10.0, 40.0]]), labels=np.array([1, 0]))[1]
    assert (corrected != before[k]).any() and tracker.masks[k][1] is corrected
    result = tracker.propagate("forward")
    assert sorted(result.masks) == list(range(start, T)) and result.planned == T - start
    for f in range(start):  # before the earliest prompt: not touched
        assert tracker.masks[f][1] is before[f]
    np.testing.assert_array_equal(tracker.masks[k][1], corrected)  # the corrected frame is kept as prompted
    assert any((tracker.masks[f][1] != before[f]).any() for f in range(k + 1, T)), "later frames follow the correction"
    np.testing.assert_array_equal(tracker.masks[start][1], before[start])  # the first prompt's frame: its prompt

    again = tracker.propagate("forward")  # a run depends on the prompts only, not on the runs before it
    for f in range(start, T):
        np.testing.assert_array_equal(again.masks[f][1], result.masks[f][1])


def test_cancel_stops_after_the_current_frame_and_keeps_what_is_done(tracker):
    tracker.add_prompt(0, 1, points=np.array([[10.0, 24.0]]))
    calls = []
    result = tracker.propagate("both", progress=lambda *a: calls.append(a), cancel=lambda: len(calls) >= 3)
    assert result.cancelled and result.done == 3 and result.planned == T  # frame 0: no backward pass
    assert sorted(result.masks) == [0, 1, 2] and sorted(tracker.masks) == [0, 1, 2]
    assert result.frames_per_second > 0


def test_bad_prompts_and_models_are_refused_in_one_sentence(engine, tracker):
    with pytest.raises(ValueError, match="Add a prompt first"):
        tracker.propagate()
    with pytest.raises(ValueError, match=r"Frame 10 is outside the clip \(0–9\)"):
        tracker.add_prompt(10, 1, points=np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="needs points or a box"):
        tracker.add_prompt(0, 1)
    with pytest.raises(ValueError, match="video tracking come from SAM 2 \\(video\\) models, not SAM tiny"):
        engine.video_model("sam_tiny@random")


def test_the_full_size_architectures_match_the_published_parameter_counts():
    from core.models import count_parameters

    published = {"tiny": 38.9, "small": 46.0, "base_plus": 80.8, "large": 224.4}  # millions, SAM 2.1 model card
    for size, millions in published.items():
        assert count_parameters(get(f"sam2_video_hiera_{size}")) / 1e6 == pytest.approx(millions, abs=0.1)


# ---- exports ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracked() -> dict:
    """Two objects over five frames; object 2 missing from frame 3."""
    rng = np.random.default_rng(1)
    masks = {f: {1: rng.random((H, W)) > 0.6, 2: rng.random((H, W)) > 0.9} for f in range(5)}
    del masks[3][2]
    return masks


def test_coco_json_decodes_to_the_masks_of_every_frame_and_object(tracked):
    coco = json.loads(json.dumps(masks_coco(tracked, (H, W), FPS)))
    assert [im["frame_index"] for im in coco["images"]] == list(range(5))
    assert [c["id"] for c in coco["categories"]] == [1, 2] and len(coco["annotations"]) == 10
    for ann in coco["annotations"]:
        frame, obj = ann["image_id"] - 1, ann["category_id"]
        expected = tracked[frame].get(obj, np.zeros((H, W), bool))
        decoded = coco_mask.decode({"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"]})
        np.testing.assert_array_equal(decoded.astype(bool), expected)
        assert ann["area"] == expected.sum()


def test_the_png_zip_holds_one_png_per_frame_and_object(tracked):
    with zipfile.ZipFile(io.BytesIO(masks_png_zip(tracked))) as archive:
        names = archive.namelist()
        assert len(names) == 9 and "frame_00003_object_1.png" in names and "frame_00003_object_2.png" not in names
        for frame, objects in tracked.items():
            for obj, mask in objects.items():
                png = np.asarray(Image.open(archive.open(f"frame_{frame:05d}_object_{obj}.png")))
                np.testing.assert_array_equal(png > 127, mask)


def test_the_overlay_video_decodes_with_its_frames_and_draws_the_masks(tmp_path, tracked):
    frames = disc_clip(5)
    masks = {f: {1: np.zeros((H, W), bool)} for f in range(5)}
    masks[2][1][10:30, 10:40] = True
    exported = export_overlay(frames, masks, FPS, alpha=1.0)
    assert exported.file_name == "tracked.mp4" and exported.mime == "video/mp4"
    clip = load_clip(exported.data)
    assert clip.frames.shape == (5, H, W, 3) and clip.fps == pytest.approx(FPS, rel=0.02)
    inside = np.abs(clip.frames[2, 14:26, 14:36].astype(int) - frames[2, 14:26, 14:36]).mean()
    outside = np.abs(clip.frames[2, 35:, :].astype(int) - frames[2, 35:, :]).mean()
    assert inside > 40 and outside < 10
