"""Video tracking (SAM 2): click objects on any frame of a clip, track them through it, scrub, correct, export."""

import streamlit as st

from components.video_view import pick_clip, pick_model, show_tracker, tracker_for

st.title("Video tracking")
st.caption(
    "SAM 2 follows the objects you click through a short clip: prompt on any frame, track forward and backward, "
    "scrub the result, click again where it went wrong. Frames and SAM 2's memory stay in CPU memory, so a 60 s "
    "clip fits; the progress bar says how many frames per second this server tracks."
)

model = pick_model("video")
picked = pick_clip("video")
if picked is None:
    st.info("Upload a short clip (mp4, webm or gif, up to 60 s) to start.")
    st.stop()
file_id, name, clip = picked
tracker = tracker_for(model, file_id, clip, "video")
if tracker is not None:
    show_tracker(tracker, clip, name, key="video")
