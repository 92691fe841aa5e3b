"""What the hover-thumbnail component (components/hover_images.py) was given, read back in an AppTest.

AppTest runs no JavaScript, but keeps the component's element with its JSON data."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest


def hover_data(at: AppTest) -> dict:
    """{"metas", "rows", "sprite" (data URL), "side", "columns", "id"} of the page's one hover component."""
    (element,) = [e for e in at.get("bidi_component") if e.proto.component_name == "vfm_hover_thumbnails"]
    return json.loads(element.proto.json)


def sprite_pixels(hover: dict) -> np.ndarray:
    """The sprite sheet as HWC uint8 RGB."""
    data = base64.b64decode(hover["sprite"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
