"""Ground truth in: images with object masks, from a server folder or a zip, as mask PNGs or a COCO JSON.

Two layouts (optionally under one top folder):
- `images/` and `masks/`, paired by file stem: `images/a.jpg` ↔ `masks/a.png` (one PNG for all objects of the
  image) or `masks/a/*.png` (one PNG per object; each file read the same way, objects appended in name order).
- a COCO instances JSON (`*.json` with "images" and "annotations") beside its images: an image is found by its
  `file_name` (its path, or its base name anywhere in the folder). Polygons and RLE (compressed or not) are decoded
  with pycocotools; crowd annotations (`iscrowd` 1) are left out (the SAM evaluations ignore them) and counted.

A mask PNG becomes one (H, W) bool mask per object:
- 1-bit or two-valued (0 and one other value): one object, every non-zero pixel (a binary mask; touching
  instances in one binary mask are one object — give them ids to separate them);
- 8-bit grey with several values: instance ids, one object per non-zero value; 255 is "void" (VOC) and ignored
  when other ids are present;
- palette (P) PNG: one object per non-zero palette index (255 ignored as above);
- RGB: one object per distinct non-black colour (grey RGB is read as 8-bit grey).

Refused, each with its reason (`Skipped`), while the rest loads: a mask whose size differs from its image's, an
image without a mask, a mask without an image, an empty mask, a 16-bit mask, a JPEG mask (lossy: ids smear), an
unreadable file, a COCO annotation whose image id is not in the file, a COCO image whose file is missing or whose
size differs from the JSON's. An image larger than the working set's limit is downscaled (`core.data.load_image`)
and its masks with it (nearest neighbour), which its note says.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.data import (
    IMAGE_SUFFIXES,
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    MAX_ZIP_RATIO,
    ImageError,
    Skipped,
    confine,
    load_image,
)
from core.text import count

Reader = Callable[[], bytes]
MASK_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".gif"}
VOID = 255


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be used; the message is written for the user."""


# what reading one file can raise: its reason goes to the skipped list, the rest loads
_FILE_ERRORS = (GroundTruthError, ImageError, OSError, zipfile.BadZipFile, RuntimeError)


@dataclass(frozen=True)
class GroundTruthImage:
    """One image and its objects: image HWC uint8 RGB, masks (K, H, W) bool at the image's size, a label each."""

    name: str
    image: np.ndarray
    masks: np.ndarray
    labels: list[str]
    note: str | None = None


@dataclass
class GroundTruth:
    items: list[GroundTruthImage] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def objects(self) -> int:
        return sum(len(item.masks) for item in self.items)


# ---- one mask file ------------------------------------------------------------------------------
def _objects_from_values(values: np.ndarray, name_of: Callable[[int], str]) -> tuple[np.ndarray, list[str]]:
    ids = [int(v) for v in np.unique(values) if v != 0]
    if len(ids) > 1 and VOID in ids:
        ids.remove(VOID)
    if len(ids) == 1:
        return (values != 0)[None], [name_of(ids[0])]
    return np.stack([values == i for i in ids]) if ids else np.zeros((0, *values.shape), bool), [
        name_of(i) for i in ids
    ]


def decode_mask(data: bytes, name: str = "mask") -> tuple[np.ndarray, list[str]]:
    """A mask file → ((K, H, W) bool, K labels); GroundTruthError says why it cannot be used."""
    if PurePosixPath(name).suffix.lower() in {".jpg", ".jpeg"}:
        raise GroundTruthError("JPEG mask: lossy compression smears object ids; save masks as PNG")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise GroundTruthError(f"not a readable mask image ({exc})") from None
    if img.mode.startswith("I;16") or (img.mode == "I" and np.asarray(img).max() > 255) or img.mode == "F":
        raise GroundTruthError(f"16-bit or float mask ({img.mode}): save instance ids as an 8-bit grey or palette PNG")
    if img.mode == "P":
        masks, labels = _objects_from_values(np.asarray(img), lambda i: f"index {i}")
    elif img.mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB"))
        if (rgb == rgb[..., :1]).all():
            masks, labels = _objects_from_values(rgb[..., 0], lambda i: f"id {i}")
        else:
            packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
            ids = [int(v) for v in np.unique(packed) if v != 0]
            masks = np.stack([packed == i for i in ids]) if ids else np.zeros((0, *packed.shape), bool)
            labels = [f"#{i:06x}" for i in ids]
    else:  # "1", "L", "LA", "I" with small values
        masks, labels = _objects_from_values(
            np.asarray(img.convert("L") if img.mode != "I" else img), lambda i: f"id {i}"
        )
    if not len(masks):
        raise GroundTruthError("empty mask: no object pixels")
    return masks, labels


# ---- images -------------------------------------------------------------------------------------------
def _oriented_size(data: bytes) -> tuple[int, int]:
    """(H, W) of an image file as shown, EXIF orientation applied, before any downscaling."""
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    return (w, h) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (h, w)


def _fit_masks(masks: np.ndarray, image: np.ndarray, original: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """Masks at the original image size → at the loaded image's size (nearest neighbour when it was downscaled)."""
    if masks.shape[1:] != original:
        h, w = masks.shape[1:]
        raise GroundTruthError(f"the mask is {w}×{h} pixels, the image {original[1]}×{original[0]}")
    if image.shape[:2] == original:
        return masks, None
    size = (image.shape[1], image.shape[0])
    fitted = np.stack([np.asarray(Image.fromarray(m).resize(size, Image.Resampling.NEAREST)) for m in masks])
    return fitted, "masks downscaled with the image (nearest neighbour)"


def _load(name: str, read: Reader) -> tuple[np.ndarray, tuple[int, int], str | None]:
    data = read()
    image, note = load_image(data, name)
    return image, _oriented_size(data), note


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


# ---- images/ + masks/ ---------------------------------------------------------------------------------
def _split(files: dict[str, Reader]) -> tuple[dict[str, str], dict[str, list[str]], list[Skipped]]:
    """(stem → image path, stem → mask paths, skipped) of the images/ and masks/ layout."""
    images, masks, skipped = {}, defaultdict(list), []
    for path in sorted(files):
        parts = PurePosixPath(path).parts
        suffix = PurePosixPath(path).suffix.lower()
        if "images" in parts and suffix in IMAGE_SUFFIXES:
            stem = PurePosixPath(*parts[parts.index("images") + 1 :]).with_suffix("").as_posix()
            if stem in images:
                skipped.append(Skipped(path, f"another image has the same stem ({images[stem]})"))
            else:
                images[stem] = path
        elif "masks" in parts and (suffix in MASK_SUFFIXES or suffix in {".jpg", ".jpeg"}):
            rest = parts[parts.index("masks") + 1 :]
            stem = PurePosixPath(*rest).with_suffix("").as_posix()
            masks[stem].append(path)
        elif suffix != ".json":
            skipped.append(Skipped(path, "not under images/ or masks/ (or not an image file)"))
    # masks/<stem>/<object>.png: one file per object
    for stem in [s for s in masks if s not in images]:
        parent = PurePosixPath(stem).parent.as_posix()
        if parent in images:
            masks[parent] += masks.pop(stem)
    return images, dict(masks), skipped


def load_pairs(files: dict[str, Reader]) -> GroundTruth:
    """The images/ + masks/ layout from (POSIX path → bytes reader)."""
    images, masks, skipped = _split(files)
    result = GroundTruth(skipped=skipped)
    for stem, paths in masks.items():
        if stem not in images:
            result.skipped += [Skipped(p, "mask without an image (no images/ file with this stem)") for p in paths]
    for stem, path in images.items():
        if stem not in masks:
            result.skipped.append(Skipped(path, "no mask for this image (masks/ has no file with this stem)"))
            continue
        try:
            image, original, note = _load(path, files[path])
            decoded = [decode_mask(files[p](), p) for p in sorted(masks[stem])]
            stacked = np.concatenate([m for m, _ in decoded])
            labels = [label for _, names in decoded for label in names]
            fitted, fit_note = _fit_masks(stacked, image, original)
        except _FILE_ERRORS as exc:
            result.skipped.append(Skipped(path, str(exc)))
            continue
        result.items.append(GroundTruthImage(path, image, fitted, labels, _join(note, fit_note)))
    return result


# ---- COCO -----------------------------------------------------------------------------------------------
def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO annotation's segmentation (polygons, uncompressed or compressed RLE) → (H, W) bool."""
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        coco_mask = None
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        if coco_mask is None:
            from core.analysis.masks import decode_rle

            return decode_rle(segmentation)
        rle = coco_mask.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
        if coco_mask is None:
            from core.analysis.masks import decode_rle

            return decode_rle(rle)
    elif isinstance(segmentation, list):
        if coco_mask is None:
            raise GroundTruthError("polygon annotations need pycocotools (pip install pycocotools)")
        polygons = [p for p in segmentation if len(p) >= 6]  # at least three points
        if not polygons:
            raise GroundTruthError("a polygon with fewer than three points")
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
    else:
        raise GroundTruthError(f"unknown segmentation format ({type(segmentation).__name__})")
    mask = coco_mask.decode(rle).astype(bool)
    if mask.shape != (height, width):
        raise GroundTruthError(f"the segmentation is {mask.shape[1]}×{mask.shape[0]}, the image {width}×{height}")
    return mask


def _find(file_name: str, files: dict[str, Reader]) -> str | None:
    """The path of a COCO `file_name`: its full path (below any top folder), else a unique base name."""
    wanted = PurePosixPath(file_name)
    full = [p for p in files if PurePosixPath(p).parts[-len(wanted.parts) :] == wanted.parts]
    if len(full) == 1:
        return full[0]
    by_name = [p for p in files if PurePosixPath(p).name == wanted.name]
    return by_name[0] if len(by_name) == 1 else None


def load_coco(data: bytes | str, files: dict[str, Reader], name: str = "annotations.json") -> GroundTruth:
    """A COCO instances JSON and the image files it names (POSIX path → bytes reader)."""
    try:
        coco = json.loads(data)
        entries, annotations = coco["images"], coco["annotations"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        return GroundTruth(skipped=[Skipped(name, f"not a COCO instances JSON ({exc})")])
    result = GroundTruth()
    categories = {c.get("id"): c.get("name", str(c.get("id"))) for c in coco.get("categories", [])}
    by_id = {e.get("id"): e for e in entries}
    per_image = defaultdict(list)
    for ann in annotations:
        if ann.get("image_id") not in by_id:
            result.skipped.append(
                Skipped(f"{name}: annotation {ann.get('id')}", f"unknown image id {ann.get('image_id')}")
            )
        else:
            per_image[ann["image_id"]].append(ann)
    for image_id, entry in by_id.items():
        result_item = _coco_image(entry, per_image.get(image_id, []), categories, files, result.skipped)
        if result_item is not None:
            result.items.append(result_item)
    return result


def _coco_image(entry: dict, anns: list[dict], categories: dict, files: dict[str, Reader], skipped: list[Skipped]):
    file_name = str(entry.get("file_name", entry.get("id")))
    path = _find(file_name, files)
    if path is None:
        skipped.append(Skipped(file_name, "image file not found beside the JSON"))
        return None
    if not anns:
        skipped.append(Skipped(path, "no annotations for this image"))
        return None
    try:
        image, original, note = _load(path, files[path])
        h, w = int(entry.get("height", original[0])), int(entry.get("width", original[1]))
        if (h, w) != original:
            raise GroundTruthError(f"the JSON says {w}×{h} pixels, the image is {original[1]}×{original[0]}")
    except _FILE_ERRORS as exc:
        skipped.append(Skipped(path, str(exc)))
        return None
    masks, labels, crowd = [], [], 0
    for ann in anns:
        if ann.get("iscrowd"):
            crowd += 1
            continue
        try:
            mask = decode_segmentation(ann.get("segmentation"), h, w)
        except (GroundTruthError, ValueError, KeyError, TypeError) as exc:
            skipped.append(Skipped(f"{path}: annotation {ann.get('id')}", str(exc)))
            continue
        if not mask.any():
            skipped.append(Skipped(f"{path}: annotation {ann.get('id')}", "empty mask: no object pixels"))
            continue
        masks.append(mask)
        labels.append(str(categories.get(ann.get("category_id"), ann.get("category_id", "object"))))
    if not masks:
        skipped.append(Skipped(path, "no usable annotation for this image"))
        return None
    fitted, fit_note = _fit_masks(np.stack(masks), image, original)
    crowd_note = f"{count(crowd, 'crowd annotation')} left out" if crowd else None
    return GroundTruthImage(path, image, fitted, labels, _join(note, fit_note, crowd_note))


# ---- sources ----------------------------------------------------------------------------------------------
def _hidden(path: str) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(path).parts)


def load_ground_truth_files(files: dict[str, Reader]) -> GroundTruth:
    """A COCO JSON among the files makes a COCO set (unless there is a masks/ folder); else images/ + masks/."""
    files = {p: r for p, r in files.items() if not _hidden(p)}
    has_masks = any("masks" in PurePosixPath(p).parts for p in files)
    jsons = sorted(p for p in files if p.lower().endswith(".json"))
    if jsons and not has_masks:
        result = GroundTruth()
        for path in jsons:
            loaded = load_coco(files[path](), files, path)
            result.items += loaded.items
            result.skipped += loaded.skipped
        return result
    if not any("images" in PurePosixPath(p).parts for p in files):
        return GroundTruth(skipped=[Skipped("(the set)", "no images/ folder and no COCO JSON: nothing to pair")])
    return load_pairs(files)


def load_ground_truth_folder(path: str | Path, roots: Iterable[Path]) -> GroundTruth:
    """A server folder (confined to `roots`, as every folder the app reads)."""
    root = confine(path, roots)
    found = sorted(p for p in root.rglob("*") if p.is_file())
    if len(found) > MAX_ZIP_FILES:
        raise ImageError(f"{count(len(found), 'file')} in the folder; the limit is {MAX_ZIP_FILES}")
    return load_ground_truth_files({p.relative_to(root).as_posix(): p.read_bytes for p in found})


def load_ground_truth_zip(data: bytes, name: str = "ground_truth.zip") -> GroundTruth:
    """A zip archive, read in memory (nothing is unpacked to disk); zip bombs are refused whole."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return GroundTruth(skipped=[Skipped(name, f"not a readable zip archive ({exc})")])
    total, packed = sum(i.file_size for i in infos), max(1, sum(i.compress_size for i in infos))
    if len(infos) > MAX_ZIP_FILES or total > MAX_ZIP_BYTES or (total > 64 * 2**20 and total / packed > MAX_ZIP_RATIO):
        return GroundTruth(skipped=[Skipped(name, f"refused: it would unpack to {total / 2**20:.0f} MB")])

    def reader(info: zipfile.ZipInfo) -> Reader:
        return lambda: archive.read(info)

    return load_ground_truth_files({i.filename.replace("\\", "/"): reader(i) for i in infos})


# ---- a built-in set ---------------------------------------------------------------------------------------
def demo_ground_truth(seed: int = 0) -> GroundTruth:
    """Three synthetic images (160 × 200) with known objects — a disc, a square, an annulus, two touching
    rectangles, a one-pixel dot — on a textured background: ground truth to try the page without data."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:160, :200]
    items = []
    for i in range(3):
        image = (rng.normal(90, 25, (160, 200, 3)) + 30 * np.sin(xx / (7 + i))[..., None]).clip(0, 255)
        disc = (xx - 50 - 10 * i) ** 2 + (yy - 50) ** 2 <= 30**2
        square = (xx >= 120) & (xx < 175) & (yy >= 20) & (yy < 75)
        ring = ((xx - 60) ** 2 + (yy - 120) ** 2 <= 30**2) & ((xx - 60) ** 2 + (yy - 120) ** 2 > 14**2)
        left = (xx >= 110) & (xx < 145) & (yy >= 100) & (yy < 145)
        right = (xx >= 145) & (xx < 185) & (yy >= 100) & (yy < 145)  # touches `left`
        dot = (xx == 195) & (yy == 5)
        masks = [disc, square, ring, left, right, dot]
        colors = [(220, 60, 50), (60, 180, 80), (240, 200, 40), (70, 90, 220), (160, 70, 200), (255, 255, 255)]
        for mask, color in zip(masks, colors, strict=True):
            image[mask] = np.asarray(color) + rng.normal(0, 8, (int(mask.sum()), 3))
        labels = ["disc", "square", "annulus", "left block", "right block", "dot"]
        items.append(
            GroundTruthImage(f"shapes_{i + 1}.png", image.clip(0, 255).astype(np.uint8), np.stack(masks), labels)
        )
    return GroundTruth(items)
