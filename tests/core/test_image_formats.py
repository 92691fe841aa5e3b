"""Awkward image files decode to the right pixels, and the pixel limit holds below Pillow's own (#22)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data import MAX_PIXELS, ImageError, load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's warning is the premise
def test_an_image_over_the_pixel_limit_is_refused_even_when_pillow_only_warns():
    side = 9000
    assert MAX_PIXELS < side * side < 2 * Image.MAX_IMAGE_PIXELS  # Pillow alone would only warn
    data = _encode(Image.new("1", (side, side)), "PNG")
    assert len(data) < 100_000
    with pytest.raises(ImageError):
        load_image(data, "huge.png")


def test_a_float_tiff_is_rescaled_to_its_range():
    ramp = np.tile(np.linspace(0.0, 0.01, 16, dtype=np.float32), (8, 1))  # tiny values: black if not rescaled
    rgb, _ = load_image(_encode(Image.fromarray(ramp, mode="F"), "TIFF"), "ramp.tif")
    assert rgb.shape == (8, 16, 3)
    assert rgb[:, 0].max() == 0 and rgb[:, -1].min() == 255
    assert (np.diff(rgb[0, :, 0].astype(int)) >= 0).all()


def test_palette_transparency_is_composited_on_white():
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    img.putpixel((0, 0), 1)
    rgb, _ = load_image(_encode(img, "PNG", transparency=0), "palette.png")
    assert rgb[0, 0].tolist() == [200, 30, 40]
    assert rgb[3, 3].tolist() == [255, 255, 255]
