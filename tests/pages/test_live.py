"""The Live camera page (#21) without a browser: its controls, the analysis kept for the stream, the counters."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "live.py")


def test_the_page_draws_its_controls_and_keeps_one_analysis_for_the_stream(monkeypatch):
    """The WebRTC widget needs a live server (the browser test runs it); here it only records its processor."""
    import components.live_view

    started = []
    monkeypatch.setattr(components.live_view, "webrtc_streamer", lambda **kw: started.append(kw))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    live = at.session_state["live_analysis"]
    assert live.settings.model.startswith("dinov2_tiny") and live.settings.size % 14 == 0
    processor = started[-1]["video_processor_factory"]()
    assert processor.live is live and started[-1]["media_stream_constraints"] == {"video": True, "audio": False}
    assert [m.label for m in at.metric] == ["Frames shown per second", "Model latency (median)", "Frames dropped"]
    at.radio(key="live_mode").set_value("similarity").run()
    assert at.session_state["live_analysis"] is live and live.settings.mode == "similarity"
    at.slider(key="live_x").set_value(10).run()
    assert live.settings.patch == (0.1, 0.5)
