"""Images in, clean HWC uint8 RGB arrays out — or a reason, by file name, why not.

Sources: uploaded files, a zip, a server folder (class-subfolder layout gives labels), and built-in
samples that ship inside installed packages (scikit-image photos; scikit-learn digits, labeled).
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.text import count

MAX_PIXELS = 64_000_000  # larger images are refused (decompression bombs, 20,000² scans)
MAX_SIDE = 2048  # larger accepted images are downscaled for the working set (and it is said)
MAX_FILE_BYTES = 64 * 2**20
MAX_ZIP_BYTES = 2 * 2**30  # total uncompressed
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per archive
MAX_ZIP_FILES = 20_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow raises DecompressionBombError beyond twice this


class ImageError(ValueError):
    """An input that cannot become an image; the message is written for the user."""


# Leading bytes of the formats Pillow reads here: a file that starts like one but cannot be opened is damaged.
_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"RIFF": "WebP",
}


def image_hash(image: np.ndarray) -> str:
    """Content hash of an image array (shape and dtype included): SHA-256, which CPUs run in hardware (SHA-NI,
    ARMv8), ~3× faster than BLAKE2b over full-resolution pixels; 128 bits of it."""
    digest = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass
class ImageItem:
    name: str
    image: np.ndarray  # HWC uint8 RGB
    label: str | None = None
    note: str | None = None  # what was done to it (resized, first frame of an animation, ...)

    @cached_property
    def digest(self) -> str:
        """`image_hash` of the pixels, computed once: what makes two items the same image."""
        return image_hash(self.image)


@dataclass(frozen=True)
class Merged:
    """The working set after adding a load to it, and what happened to the load's images."""

    images: ImageSet
    added: int  # new images
    present: int  # already in the set (same pixels), not added again
    labeled: int  # of those, how many gave their class to an unlabeled copy


@dataclass
class ImageSet:
    items: list[ImageItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def images(self) -> list[np.ndarray]:
        return [it.image for it in self.items]

    @property
    def names(self) -> list[str]:
        return [it.name for it in self.items]

    @property
    def labels(self) -> list[str | None]:
        return [it.label for it in self.items]

    @property
    def is_labeled(self) -> bool:
        return bool(self.items) and all(it.label is not None for it in self.items)

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(it.label for it in self.items if it.label is not None).items()))

    @property
    def unlabeled(self) -> int:
        return sum(it.label is None for it in self.items)

    def extend(self, other: ImageSet) -> ImageSet:
        return ImageSet(self.items + other.items, self.skipped + other.skipped)

    def merge(self, new: ImageSet) -> Merged:
        """`new` added, except images whose pixels are already here; a label it brings fills an unlabeled copy.

        Duplicates inside `new` itself are kept (a dataset may hold the same picture twice)."""
        index = {it.digest: i for i, it in enumerate(self.items)}
        items, added, labeled = list(self.items), [], 0
        for item in new.items:
            i = index.get(item.digest)
            if i is None:
                added.append(item)
            elif items[i].label is None and item.label is not None:
                items[i], labeled = replace(items[i], label=item.label), labeled + 1
        merged = ImageSet(items + added, self.skipped + new.skipped)
        return Merged(merged, len(added), len(new.items) - len(added), labeled)


# ---- one image --------------------------------------------------------------------------------
def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB: alpha composited on white, 16-bit and float scaled, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr, top = arr - lo, max(hi - lo, 1e-12)
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img if img.mode == "RGB" else img.convert("RGB")


def load_image(source: bytes | str | Path, name: str | None = None) -> tuple[np.ndarray, str | None]:
    """Decode one image to HWC uint8 RGB, EXIF orientation applied, at most MAX_SIDE px (the note says when it
    was reduced). Returns (image, note); raises ImageError.

    Fast: a JPEG at least twice MAX_SIDE is decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, `Image.draft`), still
    ≥ MAX_SIDE; the reduction to MAX_SIDE is an antialiased bicubic resize on the array; no mode conversion or
    EXIF step copies an image that needs none. The pixels equal the plain Pillow path's (`tests/core/
    test_fast_decode.py`), within resampling tolerance where the image is reduced."""
    name = name or str(source)
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MB")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageError(f"the image is {w}×{h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels")
        frames = getattr(img, "n_frames", 1)
        if img.format == "JPEG" and max(w, h) >= 2 * MAX_SIDE:
            img.draft(img.mode, _fitted((w, h), MAX_SIDE))
        img.load()
        decoded = img.size
        ImageOps.exif_transpose(img, in_place=True)
        rgb = _to_rgb(img)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"refused as a possible decompression bomb (over {MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except UnidentifiedImageError:
        raise ImageError(_unidentified(data)) from None
    except (OSError, SyntaxError, ValueError) as exc:  # identified, but its data ends early or is broken
        raise ImageError(f"truncated or corrupt: the image data is damaged ({exc})") from None
    notes = [f"first of {frames} frames"] if frames > 1 else []
    array = np.asarray(rgb, dtype=np.uint8)
    if max(rgb.size) > MAX_SIDE:
        notes.append("downscaled from {}×{}".format(*((h, w) if rgb.size != decoded else (w, h))))
        target = _fitted(rgb.size, MAX_SIDE)
        from core.models.pixels import resize_uint8  # torch, imported only when a photo is this large

        array = resize_uint8(array, (target[1], target[0])).permute(0, 2, 3, 1)[0].numpy()
    return np.require(array, requirements=("C", "W")), "; ".join(notes) or None


BROWSER_SIDE = 1280  # px: pictures a browser draws itself (Patch Search's hits) are sent at most this large
_ORIENTATION = 0x0112  # EXIF tag


def browser_ready_size(data: bytes, side: int = BROWSER_SIDE) -> tuple[int, int] | None:
    """(height, width) of an image file a browser can be given as it is, to draw the pixels `load_image` gives: a
    JPEG in RGB or grey, not rotated by EXIF, at most `side` px; None for any other file (reads the header only)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            plain = img.format == "JPEG" and img.mode in ("RGB", "L") and max(img.size) <= side
            if plain and img.getexif().get(_ORIENTATION, 1) == 1:
                return img.size[1], img.size[0]
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        pass
    return None


def browser_copy(image: np.ndarray, side: int = BROWSER_SIDE, quality: int = 90) -> tuple[bytes, tuple[int, int]]:
    """HWC uint8 RGB → (JPEG bytes at most `side` px (bicubic), its (height, width)), for a browser to draw; colour
    kept at full resolution (4:4:4: the crops are shown enlarged)."""
    picture = Image.fromarray(image)
    if max(picture.size) > side:
        picture = picture.resize(_fitted(picture.size, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue(), (picture.size[1], picture.size[0])


def _fitted(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(W, H) scaled to fit a `side` square, rounded as `Image.thumbnail` rounds it (closest aspect ratio)."""
    w, h = size
    aspect = w / h

    def closest(number: float, ratio) -> int:
        return max(min(math.floor(number), math.ceil(number), key=lambda n: abs(aspect - ratio(n))), 1)

    if w >= h:
        return side, closest(side / aspect, lambda n: side / n)
    return closest(side * aspect, lambda n: n / side), side


def _unidentified(data: bytes) -> str:
    """Why Pillow could not identify `data`: a damaged file of a known format, or not an image at all."""
    kind = next((k for magic, k in _MAGIC.items() if data.startswith(magic)), None)
    if kind is not None:
        return f"truncated or corrupt: it starts like a {kind} file, but the rest cannot be read"
    return "not an image Pillow can read (wrong extension, or not an image at all)"


def _add(result: ImageSet, name: str, data: bytes, label: str | None) -> None:
    try:
        image, note = load_image(data, name)
    except ImageError as exc:
        result.skipped.append(Skipped(name, str(exc)))
        return
    result.items.append(ImageItem(name, image, label, note))


# ---- many images ------------------------------------------------------------------------------
def _label_of(parts: tuple[str, ...]) -> str | None:
    return parts[-2] if len(parts) >= 2 else None


def _strip_common_root(paths: list[PurePosixPath]) -> list[tuple[str, ...]]:
    """Paths without the top folders all of them share, as long as a folder (a class) stays below them.

    `set/cats/a.png` + `set/dogs/b.png` → `cats/…`, `dogs/…`; `cats/a.png` + `cats/b.png` keep `cats`: one class
    folder is a class too (another upload may bring the next one)."""
    parts = [p.parts for p in paths]
    while (
        parts and all(len(p) > 1 for p in parts) and len({p[0] for p in parts}) == 1 and any(len(p) > 2 for p in parts)
    ):
        parts = [p[1:] for p in parts]
    return parts


def _ignored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


def load_zip(data: bytes, name: str = "archive.zip") -> ImageSet:
    """Images of a zip; `class/file.jpg` (optionally under one top folder) gives labels.

    Entries with absolute or `..` paths, nested archives and non-images are skipped with a reason;
    an archive that would unpack to too much (a zip bomb) is refused whole."""
    result = ImageSet()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not _ignored(i.filename)]
        infos = [i for i in entries if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return ImageSet(skipped=[Skipped(name, f"not a readable zip archive ({exc})")])
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if len(infos) > MAX_ZIP_FILES or total > MAX_ZIP_BYTES or (total > 64 * 2**20 and total / packed > MAX_ZIP_RATIO):
        return ImageSet(
            skipped=[
                Skipped(
                    name,
                    f"refused: it would unpack to {total / 2**20:.0f} MB in {count(len(infos), 'file')} "
                    f"(limits {MAX_ZIP_BYTES / 2**30:.0f} GB, {MAX_ZIP_FILES} files, ratio {MAX_ZIP_RATIO}:1)",
                )
            ]
        )
    folders = [i.filename.rstrip("/") for i in entries if i.is_dir()]
    result.skipped += _empty_folders(folders, [i.filename for i in infos])
    safe = []
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            result.skipped.append(Skipped(info.filename, "refused: the path points outside the archive"))
        elif path.suffix.lower() == ".zip":
            result.skipped.append(Skipped(info.filename, "nested zip archives are not opened; upload it on its own"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            result.skipped.append(Skipped(info.filename, f"not an image file type ({path.suffix or 'no extension'})"))
        else:
            safe.append((info, path))
    for (info, _), parts in zip(safe, _strip_common_root([p for _, p in safe]), strict=True):
        try:
            payload = archive.read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # CRC errors, encrypted entries
            result.skipped.append(Skipped(info.filename, f"could not be read from the archive ({exc})"))
            continue
        _add(result, info.filename, payload, _label_of(parts))
    return result


def _empty_folders(folders: Iterable[str], files: list[str]) -> list[Skipped]:
    """A Skipped note for each folder (POSIX path) with no file below it: an empty class gives no images."""
    return [
        Skipped(f"{folder}/", "empty folder: it holds no images, so it adds no class")
        for folder in folders
        if not any(f.startswith(folder + "/") for f in files)
    ]


def load_files(files: Iterable[tuple[str, bytes]]) -> ImageSet:
    """Uploaded (name, bytes) pairs; a .zip among them is opened with `load_zip`."""
    result = ImageSet()
    for name, data in files:
        if name.lower().endswith(".zip"):
            result = result.extend(load_zip(data, name))
        else:
            _add(result, name, data, None)
    return result


def within(path: str | Path, roots: Iterable[Path]) -> tuple[Path, Path] | None:
    """(`path` resolved with symlinks followed, the root of `roots` that holds it), or None when no root does."""
    resolved = Path(path).expanduser().resolve()
    allowed = (Path(r).expanduser().resolve() for r in roots)
    return next(((resolved, root) for root in allowed if resolved.is_relative_to(root)), None)


def confine(path: str | Path, roots: Iterable[Path], folder: bool = True) -> Path:
    """`path` resolved (symlinks followed) if it lies inside one of `roots` (and, with `folder`, is a folder);
    else ImageError. The one check of "inside the data roots" for folders, stored datasets and stored images."""
    roots = list(roots)
    found = within(path, roots)
    if found is None:
        allowed = ", ".join(str(Path(r).expanduser().resolve()) for r in roots)
        raise ImageError(
            f"{path} is outside the allowed dataset folders ({allowed}); set VFM_LENS_DATA_ROOTS to allow more"
        )
    if folder and not found[0].is_dir():
        raise ImageError(f"{path} is not a folder")
    return found[0]


def prepare_roots(roots: Iterable[Path]) -> list[Path]:
    """The allowed dataset folders, absolute, each created when missing (a fresh clone has no ./data yet)."""
    ready = [Path(r).expanduser().resolve() for r in roots]
    for root in ready:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:  # read-only disk, no permission: the page says the folder is missing
            pass
    return ready


def load_folder(path: str | Path, roots: Iterable[Path], limit: int = MAX_ZIP_FILES) -> ImageSet:
    """A server folder; `class/file.jpg` gives labels. Files are confined to `roots` (no symlink escape)."""
    root = confine(path, roots)
    result = ImageSet()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not _ignored(str(p.relative_to(root))))
    rel = [PurePosixPath(p.relative_to(root).as_posix()) for p in files]
    for file, parts in zip(files[:limit], _strip_common_root(rel)[:limit], strict=True):
        name = "/".join(parts)
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            result.skipped.append(Skipped(name, f"not an image file type ({file.suffix or 'no extension'})"))
        elif within(file, [root]) is None:
            result.skipped.append(Skipped(name, "refused: a link that points outside the dataset folder"))
        else:
            _add(result, name, file.read_bytes(), _label_of(parts))
    folders = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()]
    result.skipped += _empty_folders(
        (f for f in folders if not _ignored(f)), [p.relative_to(root).as_posix() for p in files]
    )
    if len(files) > limit:
        result.skipped.append(Skipped(str(path), f"only the first {limit} of {len(files)} files were read"))
    return result


def list_image_files(root: str | Path) -> list[tuple[Path, str | None]]:
    """(file, label) for every image-suffixed file under `root`, sorted; labels as in `load_folder`.

    Nothing is read or decoded (batch jobs list millions of files); hidden files and folders are left out."""
    root = Path(root)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not _ignored(str(p.relative_to(root)))
    )
    rel = [PurePosixPath(p.relative_to(root).as_posix()) for p in files]
    return [(file, _label_of(parts)) for file, parts in zip(files, _strip_common_root(rel), strict=True)]


# ---- built-in samples (ship inside installed packages: work offline) ---------------------------
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def load_samples() -> ImageSet:
    """scikit-image's sample photos plus scikit-learn's two, unlabeled, as RGB."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    items = [
        ImageItem(f"{n}.png", np.asarray(_to_rgb(Image.fromarray(getattr(skimage.data, n)())))) for n in SAMPLE_PHOTOS
    ]
    bunch = load_sample_images()
    items += [ImageItem(Path(f).name, im) for f, im in zip(bunch.filenames, bunch.images, strict=True)]
    return ImageSet(items)


def load_digits_set(per_class: int = 30, side: int = 32, seed: int = 0) -> ImageSet:
    """scikit-learn's 8×8 digits (10 classes), `per_class` each, upscaled to `side` px RGB, labeled."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    items = []
    for cls in range(10):
        picks = rng.permutation(np.flatnonzero(digits.target == cls))[:per_class]
        for i in picks:
            gray = (255 - digits.images[i] / 16 * 255).astype(np.uint8)  # dark digit on white
            big = Image.fromarray(gray).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")
            items.append(ImageItem(f"digit_{cls}_{i}.png", np.asarray(big), str(cls)))
    return ImageSet(items)
