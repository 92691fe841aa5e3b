"""Streamlit Components v2 widgets in AppTest: what a component was given, and a trigger sent as its page would.

AppTest runs no JavaScript, but keeps each component's element with its JSON data, and reruns the script with
the widget states it is handed: a trigger is sent exactly as the frontend sends one (a JSON list of
{"event", "value"} under the component's trigger widget), so its `on_<event>_change` callback runs.
"""

from __future__ import annotations

import base64
import io
import json
from contextlib import contextmanager

import numpy as np
import pytest
import streamlit
from PIL import Image
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest


def component(at: AppTest, name: str):
    """The page's one element of the component registered as `name`."""
    (element,) = [e for e in at.get("bidi_component") if e.proto.component_name == name]
    return element


def component_data(at: AppTest, name: str) -> dict:
    return json.loads(component(at, name).proto.json)


def send_trigger(at: AppTest, name: str, event: str, value: object) -> AppTest:
    """Rerun as after the component `name` called `setTriggerValue(event, value)` in the browser."""
    states = at._tree.get_widget_states()  # every other widget keeps its value, as in a browser rerun
    trigger = WidgetState(id=_make_trigger_id(component(at, name).proto.id, "events"))
    trigger.json_trigger_value = json.dumps([{"event": event, "value": value}])
    states.widgets.append(trigger)
    return at._run(states)


def hover_data(at: AppTest) -> dict:
    """{"metas", "rows", "sprite" (data URL), "side", "columns", "id"} of the page's one hover component."""
    return component_data(at, "vfm_hover_thumbnails")


def data_url_pixels(url: str) -> np.ndarray:
    """A data-URL image as HWC uint8 RGB."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def sprite_pixels(hover: dict) -> np.ndarray:
    """The sprite sheet as HWC uint8 RGB."""
    return data_url_pixels(hover["sprite"])


def record_spinners(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts of the `st.spinner`s the page opens from now on, in order (AppTest runs it in this process;
    a spinner only shows in a browser after 0.5 s, so a test asks which steps have one, not whether it showed)."""
    texts: list[str] = []
    real = streamlit.spinner

    @contextmanager
    def spinner(text: str = "In progress...", *args, **kwargs):
        texts.append(text)
        with real(text, *args, **kwargs):
            yield

    monkeypatch.setattr(streamlit, "spinner", spinner)
    return texts


def patch_hits(at: AppTest) -> list[dict]:
    """The hits Patch Search's results widget was given (`components.patch_hits`), best first; [] when none."""
    from components.patch_hits import decode_hits

    elements = [e for e in at.get("bidi_component") if e.proto.component_name == "vfm_patch_hits"]
    return decode_hits(elements[0].proto.bytes)[0]["hits"] if elements else []


def hit_captions(at: AppTest) -> list[str]:
    """The captions of the hits drawn (not those whose image cannot be read)."""
    return [hit["caption"] for hit in patch_hits(at) if "error" not in hit]
