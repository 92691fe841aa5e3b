"""The fast decode (`load_image`: JPEG draft scaling, resize on the array, no needless copies) against the plain
Pillow path it replaces, format by format (#24).

Plain: `Image.open` → `load` → `ImageOps.exif_transpose` → the same mode conversion (`_to_rgb`: alpha on white,
16-bit scaled, CMYK converted) → `thumbnail(MAX_SIDE, LANCZOS)` when larger. An image that needs no reduction gives
exactly the plain pixels. A reduced one differs by resampling only (DCT scaling then bicubic against a full decode
then Lanczos): mean difference ≤ 0.5 levels of 255, 99th percentile ≤ 2 levels (seen: 0.27 and 1).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps

from core.data import MAX_SIDE, _to_rgb, load_image
from tests.corpus import encode


def plain_decode(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    rgb = _to_rgb(ImageOps.exif_transpose(img))
    if max(rgb.size) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def photo(w: int, h: int) -> Image.Image:
    """A photo (scikit-image's astronaut) at w×h."""
    return Image.fromarray(skimage.data.astronaut()).resize((w, h), Image.Resampling.BICUBIC)


def rotated(img: Image.Image, **options) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    return encode(img, "JPEG", exif=exif.tobytes(), **options)


def sixteen_bit_tiff(w: int, h: int) -> bytes:
    gray = np.asarray(photo(w, h).convert("L"), np.uint16) * 257 + 100  # uses the low byte too
    return encode(Image.fromarray(gray), "TIFF")


SMALL = (900, 600)
LARGE = {"JPEG": (4400, 3000), "other": (2600, 1700)}  # a JPEG ≥ 2 × MAX_SIDE is decoded at 1/2 scale
FORMATS = {
    "progressive JPEG": lambda size: encode(photo(*size), "JPEG", progressive=True, quality=90),
    "CMYK JPEG": lambda size: encode(photo(*size).convert("CMYK"), "JPEG", quality=90),
    "EXIF-rotated JPEG": lambda size: rotated(photo(*size), quality=90),
    "PNG with alpha": lambda size: encode(photo(*size).convert("RGBA"), "PNG", compress_level=1),
    "16-bit TIFF": lambda size: sixteen_bit_tiff(*size),
}


def large(kind: str) -> tuple[int, int]:
    return LARGE["JPEG" if kind.endswith("JPEG") else "other"]


@pytest.mark.parametrize("kind", FORMATS)
def test_an_image_that_needs_no_reduction_decodes_to_exactly_the_plain_pixels(kind):
    data = FORMATS[kind](SMALL)
    fast, note = load_image(data, kind)
    plain = plain_decode(data)
    assert fast.dtype == np.uint8 and fast.flags.writeable and fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, plain)
    assert note is None


@pytest.mark.parametrize("kind", FORMATS)
def test_a_reduced_image_equals_the_plain_pixels_within_resampling_tolerance(kind):
    data = FORMATS[kind](large(kind))
    fast, note = load_image(data, kind)
    plain = plain_decode(data)
    assert fast.shape == plain.shape and max(fast.shape) == MAX_SIDE
    diff = np.abs(fast.astype(int) - plain.astype(int))
    assert diff.mean() <= 0.5 and np.percentile(diff, 99) <= 2, (diff.mean(), np.percentile(diff, 99))
    w, h = large(kind) if kind != "EXIF-rotated JPEG" else large(kind)[::-1]
    assert note == f"downscaled from {w}×{h}"


def test_a_jpeg_twice_the_side_limit_is_decoded_at_reduced_scale(monkeypatch):
    decoded = []
    real = ImageOps.exif_transpose

    def spy(image, **options):  # the first step after decoding sees the decoded size
        decoded.append(image.size)
        return real(image, **options)

    monkeypatch.setattr("core.data.ImageOps.exif_transpose", spy)
    image, _ = load_image(FORMATS["progressive JPEG"](LARGE["JPEG"]), "big.jpg")
    assert decoded == [(2200, 1500)] and image.shape == (1396, 2048, 3)  # DCT scaling 1/2, then the resize
