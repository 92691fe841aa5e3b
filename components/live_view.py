"""The live camera view: the browser's camera through WebRTC (streamlit-webrtc), each frame analysed on the server.

Frames are dropped, not queued: when the model is slower than the camera, each analysis takes the newest frame
that arrived and the others are counted as dropped (`recv_queued` receives every frame that queued up meanwhile).
"""

from __future__ import annotations

import json
import os

import av
import streamlit as st
from streamlit_webrtc import VideoProcessorBase, WebRtcMode, webrtc_streamer

from components.state import get_engine, live_analysis
from core.live import LiveAnalysis, LiveSettings

# No STUN server by default: on one laptop (the usual lecture hall) the browser reaches the server directly, and
# an offline hall cannot reach Google's. Remote deployments give theirs as JSON in VFM_LENS_ICE_SERVERS.
ICE_SERVERS = json.loads(os.environ.get("VFM_LENS_ICE_SERVERS", "[]"))


class _Processor(VideoProcessorBase):
    def __init__(self, live: LiveAnalysis) -> None:
        self.live = live

    async def recv_queued(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        newest = frames[-1]
        out = av.VideoFrame.from_ndarray(
            self.live.process(newest.to_ndarray(format="rgb24"), received=len(frames)), format="rgb24"
        )
        out.pts, out.time_base = newest.pts, newest.time_base
        return [out]


def show_live(settings: LiveSettings, key: str) -> LiveAnalysis:
    """The camera stream with the analysis on top; returns the analysis (its stats and refit)."""
    slot = live_analysis(key)
    live = slot.get()
    if live is None:
        live = LiveAnalysis(get_engine(), settings)
        slot.set(live)
    live.update(settings)
    webrtc_streamer(
        key=f"{key}_stream",
        mode=WebRtcMode.SENDRECV,
        video_processor_factory=lambda: _Processor(live),
        media_stream_constraints={"video": True, "audio": False},
        async_processing=True,
        rtc_configuration={"iceServers": ICE_SERVERS},
        translations={"start": "Start the camera", "stop": "Stop"},
    )
    return live


def show_stats(live: LiveAnalysis, key: str) -> None:
    """Frames per second shown, the model's latency and the frames dropped, refreshed every second."""

    @st.fragment(run_every=1.0)
    def stats() -> None:
        snapshot = live.stats.snapshot()
        shown, latency, dropped = st.columns(3)
        shown.metric("Frames shown per second", f"{snapshot['fps']:.1f}")
        latency.metric(
            "Model latency (median)", "—" if snapshot["latency_ms"] is None else f"{snapshot['latency_ms']:.0f} ms"
        )
        dropped.metric("Frames dropped", f"{snapshot['dropped']:,} of {snapshot['received']:,}")
        if live.error:
            st.warning(f"This frame could not be analysed: {live.error}")

    stats()
