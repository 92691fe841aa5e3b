"""A corpus of awkward inputs, generated on the fly (nothing binary is committed)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rgb(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height` pixels (a decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def exif_rotated() -> bytes:
    """A 40×30 JPEG with EXIF orientation 6 (display rotated 90°: 30×40)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(rgb(), "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [rgb(seed=i).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def palette_with_transparency() -> bytes:
    img = rgb().convert("P")
    return encode(img, "PNG", transparency=0)


def sixteen_bit() -> bytes:
    arr = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")  # uint16 → mode I;16


GOOD = {
    "plain.png": lambda: encode(rgb()),
    "photo.jpg": lambda: encode(rgb(), "JPEG"),
    "gray.png": lambda: encode(rgb().convert("L")),
    "binary.png": lambda: encode(rgb().convert("1")),
    "rgba.png": lambda: encode(rgb().convert("RGBA")),
    "la.png": lambda: encode(rgb().convert("LA")),
    "palette.png": lambda: encode(rgb().convert("P")),
    "palette_alpha.png": palette_with_transparency,
    "cmyk.jpg": lambda: encode(rgb().convert("CMYK"), "JPEG"),
    "sixteen_bit.png": sixteen_bit,
    "float.tif": lambda: encode(Image.fromarray(np.random.default_rng(1).random((30, 40)).astype(np.float32)), "TIFF"),
    "animated.gif": animated_gif,
    "exif_rotated.jpg": exif_rotated,
    "one_pixel.png": lambda: encode(rgb(1, 1)),
    "very_wide.png": lambda: encode(rgb(3000, 2)),
    "very_tall.png": lambda: encode(rgb(2, 3000)),
    "large.png": lambda: encode(Image.new("RGB", (4000, 1000), (10, 20, 30))),
    "image.webp": lambda: encode(rgb(), "WEBP"),
    "image.bmp": lambda: encode(rgb(), "BMP"),
    "名前.png": lambda: encode(rgb()),
}

BAD = {
    "empty.png": lambda: b"",
    "text.txt": lambda: b"hello, this is not an image",
    "text_as.jpg": lambda: b"<html>not a jpeg</html>",
    "truncated.png": lambda: encode(rgb(200, 200))[:300],
    "truncated.jpg": lambda: encode(rgb(200, 200), "JPEG")[:400],
    "truncated_header.jpg": lambda: encode(rgb(200, 200), "JPEG")[:20],  # cut before Pillow can identify it
    "corrupt_middle.png": lambda: (lambda b: b[:60] + bytes(200) + b[260:])(encode(rgb(200, 200))),
    "bomb.png": lambda: png_claiming(50_000, 50_000),
    "huge_20000.png": lambda: png_claiming(20_000, 20_000),
}


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(total_mb: int = 300) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("data/zeros.png", "w", force_zip64=True) as f:
            block = bytes(2**20)
            for _ in range(total_mb):
                f.write(block)
    return buffer.getvalue()


def _png() -> bytes:
    return encode(rgb())


# Archives that must not get in whole: name -> (bytes, the entry names reported as skipped)
BAD_ZIPS: dict[str, Callable[[], tuple[bytes, list[str]]]] = {
    "slip.zip": lambda: (zip_of({"../evil.png": _png(), "ok/a.png": _png()}), ["../evil.png"]),
    "bomb.zip": lambda: (zip_bomb(300), ["bomb.zip"]),
    "nested.zip": lambda: (zip_of({"inner.zip": zip_of({"x.png": _png()}), "b.png": _png()}), ["inner.zip"]),
    "empty_class.zip": lambda: (zip_of({"cats/a.png": _png(), "dogs/b.png": _png(), "fish/": b""}), ["fish/"]),
    "broken.zip": lambda: (b"PK\x03\x04 this is not really a zip", ["broken.zip"]),
}
# Archives that load but deserve a note on the page
ODD_ZIPS: dict[str, Callable[[], bytes]] = {
    "single_class.zip": lambda: zip_of({"cats/a.png": _png(), "cats/b.png": _png()}),
    "scripts.zip": lambda: zip_of({"кошки/a.png": _png(), "猫/b.png": _png(), "قطط/c.png": _png()}),
}
