"""Images handed to the browser to draw (Patch Search's hits, `core.store.stored_browser_image`): a file the browser
draws exactly as `load_image` decodes it goes as it is (same bytes); any other file goes as `load_image`'s pixels
in a JPEG, at most BROWSER_SIDE px, made once per file version; a file outside the data roots is refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core import store
from core.data import BROWSER_SIDE, ImageError, browser_copy, browser_ready_size, load_image
from tests.core.test_fast_decode import photo, rotated
from tests.corpus import encode


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_plain_jpeg_goes_as_it_is(tmp_path, mode):
    data = encode(photo(320, 240).convert(mode), "JPEG", quality=90)
    assert browser_ready_size(data) == (240, 320)
    (tmp_path / "a.jpg").write_bytes(data)
    sent, size = store.stored_browser_image(str(tmp_path / "a.jpg"), [tmp_path])
    assert sent == data and size == (240, 320)


@pytest.mark.parametrize(
    "name, data, size",
    [
        ("rotated.jpg", rotated(photo(320, 240)), (320, 240)),  # EXIF 6: shown upright, as load_image gives it
        ("cmyk.jpg", encode(photo(320, 240).convert("CMYK"), "JPEG"), (240, 320)),
        ("big.jpg", encode(photo(2 * BROWSER_SIDE, BROWSER_SIDE), "JPEG"), (BROWSER_SIDE // 2, BROWSER_SIDE)),
        ("a.png", encode(photo(320, 240)), (240, 320)),
    ],
)
def test_any_other_file_goes_as_the_pixels_load_image_gives(tmp_path, name, data, size):
    assert browser_ready_size(data) is None
    (tmp_path / name).write_bytes(data)
    store._browser_copy.cache_clear()
    sent, got = store.stored_browser_image(str(tmp_path / name), [tmp_path])
    assert got == size and browser_ready_size(sent) == size  # a plain JPEG now, of the size it says
    want = load_image(data)[0]
    if max(want.shape[:2]) > BROWSER_SIDE:
        want = np.asarray(Image.fromarray(want).resize(size[::-1], Image.Resampling.BICUBIC))
    assert np.abs(decoded(sent).astype(int) - want).mean() < 2.5  # JPEG quality 90, 4:4:4: ~2.0 on this photo
    again = store.stored_browser_image(str(tmp_path / name), [tmp_path])
    assert again[0] is sent  # made once per file version


def test_a_changed_file_is_made_again_and_a_file_outside_the_roots_is_refused(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(encode(photo(64, 48)))
    first = store.stored_browser_image(str(path), [tmp_path])
    path.write_bytes(encode(photo(32, 48)))
    assert store.stored_browser_image(str(path), [tmp_path])[1] == (48, 32) != first[1]
    with pytest.raises(ImageError):
        store.stored_browser_image(str(tmp_path / ".." / "elsewhere.png"), [tmp_path])


def test_a_damaged_file_is_an_image_error_and_a_copy_of_pixels_is_a_plain_jpeg():
    with pytest.raises(ImageError):
        load_image(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert browser_ready_size(b"\xff\xd8\xff\xe0 not really a jpeg") is None
    image = np.asarray(photo(40, 30))
    jpeg, size = browser_copy(image)
    assert size == (30, 40) and browser_ready_size(jpeg) == size
