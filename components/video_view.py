"""Video tracking with SAM 2: the model picker, the clip upload, the prompt canvas on a frame, tracking with a
progress bar, scrubbing and downloads.

The widgets only: the tracking state is a `core.video.VideoTracker` (no Streamlit), one per session for the latest
clip and model (`st.session_state`). A click or a scrub reruns only the tracker fragment. A Cancel click (or any
other widget touched while tracking runs) stops the run at the next frame, as every Streamlit rerun does; the
frames tracked so far are already in the tracker, and the next run says where it stopped.
"""

from __future__ import annotations

from pathlib import PurePath

import numpy as np
import streamlit as st

from components.downloads import download_file, download_json
from components.errors import user_errors
from components.prompt_canvas import CanvasFrame, prompt_canvas
from components.sidebar import default_model, offered_models, random_note
from components.state import (
    Slot,
    get_engine,
    video_clip,
    video_corrected,
    video_last_run,
    video_pending,
    video_progress,
    video_seq,
    video_tracker,
)
from core import registry
from core.analysis.imaging import data_url, resize_map
from core.analysis.masks import canvas_background
from core.segment_session import Prompt
from core.text import count
from core.video import (
    Clip,
    ClipError,
    FramePrompt,
    VideoTracker,
    export_overlay,
    load_clip,
    masks_coco,
    masks_png_zip,
    object_colors,
    overlay_format,
)

FAMILY = "sam2_video"
MAX_OBJECTS = 8
DIRECTIONS = {"both": "Both ways", "forward": "Forward", "backward": "Backward"}
MODES = ("Positive point", "Negative point")  # what a left click adds; a right click always adds a negative one


def pick_model(key: str) -> str:
    """The SAM 2 video model (``name@weights``) chosen on the page, with where its weights come from."""
    names = [s.name for s in offered_models(FAMILY)]
    left, right = st.columns([3, 2])
    name = left.selectbox(
        "SAM 2 model",
        names,
        index=names.index(default_model(FAMILY)),
        format_func=lambda n: registry.get(n).title,
        key=f"{key}_model",
    )
    weights = right.selectbox("Weights", registry.get(name).weight_options, key=f"{key}_weights")
    model = f"{name}@{weights}"
    st.caption(get_engine().weights_status(model).message)
    random_note([model], "Random weights track nothing in particular: the masks show the machinery at work.")
    return model


def pick_clip(key: str) -> tuple[str, str, Clip] | None:
    """The uploaded clip, decoded once per file: (file id, name, Clip), or None; what decoding changed is said."""
    upload = st.file_uploader(
        "Clip (mp4, webm or gif; the first 60 s are used)", type=["mp4", "webm", "gif", "mov", "mkv"], key=f"{key}_file"
    )
    if upload is None:
        return None
    slot = video_clip(key)
    if (slot.get() or (None,))[0] != upload.file_id:
        slot.pop()
        try:
            with st.spinner(f"Decoding {upload.name}…", show_time=True):
                slot.set((upload.file_id, upload.name, load_clip(upload.getvalue())))
        except ClipError as exc:
            st.warning(f"{upload.name}: {exc}")
            return None
    file_id, name, clip = slot.get()
    h, w = clip.size
    st.caption(
        f"{name}: {count(len(clip.frames), 'frame')}, {w} × {h} px, {clip.fps:.1f} frames/s, {clip.seconds:.1f} s."
    )
    for note in clip.notes:
        st.info(note, icon=":material/info:")
    return file_id, name, clip


def tracker_for(model: str, file_id: str, clip: Clip, key: str) -> VideoTracker | None:
    """This session's tracker of `clip` with `model` (a new one for a new clip or model)."""
    slot = video_tracker(key)
    held = slot.get()
    if held and held[:2] == (model, file_id):
        return held[2]
    with user_errors("Loading SAM 2"), st.spinner(f"Loading {registry.parse(model).spec.title}…", show_time=True):
        loaded = get_engine().video_model(model)
        slot.set((model, file_id, VideoTracker(loaded.adapter, clip.frames, loaded.lock)))
        video_last_run(key).pop()
        return slot.get()[2]
    return None


@st.fragment
def show_tracker(tracker: VideoTracker, clip: Clip, name: str, key: str) -> None:
    """Prompt objects on any frame, track them, scrub the result, download it."""
    _say_stopped(key)
    frame_slot = Slot(f"{key}_frame")
    _run_pending(tracker, key)
    tools = st.columns([3, 3, 2], vertical_alignment="bottom")
    known = sorted({o for _, o in tracker.prompts})
    choices = list(range(1, min(MAX_OBJECTS, max(known, default=0) + 1) + 1))
    obj = tools[0].segmented_control(
        "Object", choices, default=1, required=True, format_func=lambda o: f"Object {o}", key=f"{key}_object"
    )
    mode = tools[1].segmented_control("Left click adds", MODES, default=MODES[0], required=True, key=f"{key}_mode")
    alpha = tools[2].slider("Opacity", 0.0, 1.0, 0.5, 0.05, key=f"{key}_alpha")

    index = min(frame_slot.get(0) or 0, len(clip.frames) - 1)
    frame = CanvasFrame.fit(clip.size)
    _canvas(tracker, clip, index, obj, mode == MODES[1], frame, alpha, key)
    st.slider("Frame", 0, len(clip.frames) - 1, key=frame_slot.key, help="Scrub through the clip; click on any frame.")
    st.caption(_frame_words(tracker, index, clip))

    left, middle, right = st.columns([2, 2, 3], vertical_alignment="bottom")
    direction = left.radio(
        "Track", list(DIRECTIONS), format_func=DIRECTIONS.get, horizontal=True, key=f"{key}_direction"
    )
    retrack = right.toggle("Track again after each correction", True, key=f"{key}_retrack")
    asked = middle.button("Track", type="primary", key=f"{key}_track", disabled=not tracker.prompts)
    if asked or (video_corrected(key).pop() and retrack):
        _track(tracker, direction, key)
    _say_last_run(key)
    _show_downloads(tracker, clip, name, alpha, key)


def _run_pending(tracker: VideoTracker, key: str) -> None:
    """Segment the gesture the canvas sent: the object's prompts on that frame, with the new one."""
    pending = video_pending(key).pop()
    if pending is None:
        return
    index, obj, gesture = pending
    prompt = tracker.prompts.get((index, obj), FramePrompt()).adding(gesture)
    with user_errors("Segmenting"), st.spinner(f"SAM 2 on frame {index}…"):
        tracker.add_prompt(index, obj, prompt.points, prompt.labels, prompt.box)
        if video_last_run(key).get() is not None:  # tracked before: this click corrects the tracking
            video_corrected(key).set(True)


def _canvas(
    tracker: VideoTracker, clip: Clip, index: int, obj: int, negative: bool, frame: CanvasFrame, alpha: float, key: str
) -> None:
    display = resize_map(clip.frames[index], (frame.height, frame.width)).round().clip(0, 255).astype(np.uint8)
    masks = tracker.masks.get(index, {})
    colors = object_colors(masks)
    background = canvas_background(
        display, [masks[o] for o in sorted(masks)], [tuple(int(c) for c in colors[o]) for o in sorted(masks)], alpha, 2
    )
    drawn = tracker.prompts.get((index, obj), FramePrompt()).gestures()
    st.caption("Click to add a point, right-click for a negative one, drag to draw a box — for the chosen object.")

    seq = video_seq(key)

    def received(gesture: Prompt) -> None:
        seq.set(seq.get(0) + 1)
        video_pending(key).set((index, obj, gesture))

    prompt_canvas(
        data_url(background),
        frame,
        drawn,
        negative=negative,
        seq=seq.setdefault(0),
        key=f"{key}_canvas",
        on_prompt=received,
    )


def _frame_words(tracker: VideoTracker, index: int, clip: Clip) -> str:
    prompted = tracker.prompted_frames
    words = f"Frame {index} of {len(clip.frames) - 1} · {index / clip.fps:.2f} s"
    if prompted:
        words += f" · prompts on {count(len(prompted), 'frame')}: {', '.join(map(str, prompted[:12]))}"
    tracked = len(tracker.masks)
    return words + (f" · masks on {count(tracked, 'frame')}" if tracked else "")


def _track(tracker: VideoTracker, direction: str, key: str) -> None:
    """Propagate with a progress bar (frames and frames/s) and a Cancel button."""
    stop, place = st.columns([1, 5], vertical_alignment="center")
    stop.button(
        "Cancel", icon=":material/stop:", key=f"{key}_cancel", help="Stop after this frame; tracked frames are kept."
    )
    bar = place.progress(0.0, text="Tracking with SAM 2…")
    progress = video_progress(key)

    def update(done: int, planned: int, fps: float) -> None:
        progress.set((done, planned))
        bar.progress(done / planned, text=f"Tracking with SAM 2: {done}/{planned} frames · {fps:.1f} frames/s")

    with user_errors("Tracking"):
        progress.set((0, 0))
        video_last_run(key).set(tracker.propagate(direction, progress=update))
    progress.pop()
    bar.empty()
    stop.empty()


def _say_stopped(key: str) -> None:
    """A propagation that did not finish (Cancel, or another widget touched): say how far it came."""
    stopped = video_progress(key).pop()
    if stopped is not None:
        done, planned = stopped
        st.info(
            f"Tracking stopped after {done} of {count(planned, 'frame')}; the frames tracked so far are kept.",
            icon=":material/stop_circle:",
        )


def _say_last_run(key: str) -> None:
    run = video_last_run(key).get()
    if run is not None:
        st.caption(
            f"Last run: {count(run.done, 'frame')} tracked in {run.seconds:.1f} s "
            f"({run.frames_per_second:.1f} frames/s on {get_engine().device.type.upper()})."
        )


def _show_downloads(tracker: VideoTracker, clip: Clip, name: str, alpha: float, key: str) -> None:
    if not tracker.masks:
        return
    stem = PurePath(name).stem
    suffix, mime = overlay_format()
    where = st.columns(3)
    download_file(
        lambda: export_overlay(clip.frames, tracker.masks, clip.fps, alpha, f"{stem}_tracked").data,
        f"{stem}_tracked.{suffix}",
        mime,
        key=f"{key}_dl_video",
        label=f"Overlay video ({suffix})",
        where=where[0],
    )
    download_file(
        lambda: masks_png_zip(tracker.masks),
        f"{stem}_masks.zip",
        "application/zip",
        key=f"{key}_dl_png",
        label="Masks (PNG zip)",
        where=where[1],
    )
    download_json(
        lambda: masks_coco(tracker.masks, clip.size, clip.fps),
        f"{stem}_masks_coco.json",
        key=f"{key}_dl_coco",
        label="Masks (COCO RLE JSON)",
        where=where[2],
    )
