"""Ground truth in: mask PNG kinds, images/ + masks/ pairing, COCO JSON (against pycocotools), and every bad
pairing listed with its reason while the rest loads."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import ImageError
from core.ground_truth import (
    GroundTruthError,
    decode_mask,
    decode_segmentation,
    load_coco,
    load_ground_truth_files,
    load_ground_truth_folder,
    load_ground_truth_zip,
)


def png(array: np.ndarray, mode: str | None = None, palette: bool = False) -> bytes:
    img = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:
        img = img.convert("L").convert("P")  # palette indices = the grey values
        img.putpalette([v for i in range(256) for v in ((i * 40) % 256, (i * 90) % 256, (i * 150) % 256)])
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def photo(h: int = 24, w: int = 32, seed: int = 0) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def ids(h: int = 24, w: int = 32) -> np.ndarray:
    """Three touching instances (ids 1, 2, 3) and background."""
    out = np.zeros((h, w), np.uint8)
    out[2:12, 2:10], out[2:12, 10:20], out[14:20, 5:25] = 1, 2, 3
    return out


def readers(files: dict[str, bytes]) -> dict:
    return {path: (lambda data=data: data) for path, data in files.items()}


# ---- mask kinds ----------------------------------------------------------------------------------------
def test_a_binary_mask_is_one_object():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 255
    masks, labels = decode_mask(png(mask))
    assert masks.shape == (1, 10, 12) and len(labels) == 1
    np.testing.assert_array_equal(masks[0], mask > 0)
    one_bit, _ = decode_mask(png(mask > 0))  # mode "1"
    np.testing.assert_array_equal(one_bit[0], mask > 0)


def test_instance_ids_give_one_object_each_even_touching():
    masks, labels = decode_mask(png(ids()))
    assert labels == ["id 1", "id 2", "id 3"]
    for i, m in enumerate(masks):
        np.testing.assert_array_equal(m, ids() == i + 1)


def test_a_palette_png_gives_one_object_per_index_and_void_255_is_ignored():
    values = ids()
    values[0, :] = 255  # VOC's void border
    masks, labels = decode_mask(png(values, palette=True))
    assert Image.open(io.BytesIO(png(values, palette=True))).mode == "P"
    assert labels == ["index 1", "index 2", "index 3"] and not masks[:, 0].any()


def test_rgb_colours_give_one_object_each():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4, :4], rgb[4:, 4:] = (255, 0, 0), (0, 128, 255)
    masks, labels = decode_mask(png(rgb))
    assert labels == ["#0080ff", "#ff0000"] and masks.sum(axis=(1, 2)).tolist() == [16, 16]


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (png(np.zeros((8, 8), np.uint8)), "m.png", "empty mask"),
        (png(np.full((8, 8), 300, np.uint16)), "m.png", "16-bit"),
        (b"not an image", "m.png", "not a readable mask"),
        (png(np.full((8, 8), 255, np.uint8)), "m.jpg", "JPEG mask"),
    ],
)
def test_unusable_masks_say_why(data, name, reason):
    with pytest.raises(GroundTruthError, match=reason):
        decode_mask(data, name)


# ---- pairing --------------------------------------------------------------------------------------------
def gt_files() -> dict[str, bytes]:
    small = np.zeros((10, 10), np.uint8)
    small[2:5, 2:5] = 255
    return {
        "set/images/good.jpg": photo(),
        "set/masks/good.png": png(ids()),
        "set/images/split.png": photo(seed=1),  # one PNG per object
        "set/masks/split/a.png": png((ids() == 1).astype(np.uint8) * 255),
        "set/masks/split/b.png": png((ids() == 3).astype(np.uint8) * 255),
        "set/images/wrong_size.png": photo(seed=2),
        "set/masks/wrong_size.png": png(small),
        "set/images/no_mask.png": photo(seed=3),
        "set/masks/orphan.png": png(ids()),
        "set/images/empty.png": photo(seed=4),
        "set/masks/empty.png": png(np.zeros((24, 32), np.uint8)),
        "set/images/deep.png": photo(seed=5),
        "set/masks/deep.png": png(ids().astype(np.uint16) * 1000),
        "set/notes.txt": b"hello",
    }


def test_pairs_load_and_every_bad_pairing_is_listed_with_its_reason():
    gt = load_ground_truth_files(readers(gt_files()))
    assert [item.name for item in gt.items] == ["set/images/good.jpg", "set/images/split.png"]
    good, split = gt.items
    assert good.image.shape == (24, 32, 3) and good.masks.shape == (3, 24, 32) and good.masks.dtype == bool
    np.testing.assert_array_equal(split.masks, np.stack([ids() == 1, ids() == 3]))
    reasons = {s.name: s.reason for s in gt.skipped}
    assert "the mask is 10×10 pixels, the image 32×24" in reasons["set/images/wrong_size.png"]
    assert reasons["set/images/no_mask.png"].startswith("no mask for this image")
    assert reasons["set/masks/orphan.png"].startswith("mask without an image")
    assert reasons["set/images/empty.png"].startswith("empty mask")
    assert reasons["set/images/deep.png"].startswith("16-bit")
    assert "not under images/ or masks/" in reasons["set/notes.txt"]
    assert gt.objects == 5


def test_a_zip_and_a_server_folder_load_the_same(tmp_path):
    files = gt_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    zipped = load_ground_truth_zip(buffer.getvalue())
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    folder = load_ground_truth_folder(tmp_path / "set", [tmp_path])
    assert [i.name for i in zipped.items] == ["set/images/good.jpg", "set/images/split.png"]
    assert [i.name for i in folder.items] == ["images/good.jpg", "images/split.png"]
    for a, b in zip(zipped.items, folder.items, strict=True):
        np.testing.assert_array_equal(a.masks, b.masks)
    assert len(zipped.skipped) == len(folder.skipped) == 6
    with pytest.raises(ImageError, match="outside the allowed"):
        load_ground_truth_folder(tmp_path, [tmp_path / "set" / "images"])
    assert load_ground_truth_zip(b"nope").skipped[0].reason.startswith("not a readable zip")


def test_a_large_image_is_downscaled_with_its_masks():
    wide = np.zeros((20, 2100), np.uint8)
    wide[5:15, 1000:1500] = 1
    gt = load_ground_truth_files(readers({"images/w.png": photo(20, 2100), "masks/w.png": png(wide)}))
    (item,) = gt.items
    assert item.image.shape[1] == 2048 and item.masks.shape[1:] == item.image.shape[:2]
    assert "downscaled" in item.note and abs(item.masks[0].sum() - 10 * 500 * 2048 / 2100) < 30


# ---- COCO ---------------------------------------------------------------------------------------------------
def coco_files() -> tuple[dict, dict[str, bytes]]:
    square = [[4.0, 4.0, 20.0, 4.0, 20.0, 16.0, 4.0, 16.0]]
    triangle = [[2.0, 2.0, 30.0, 2.0, 16.0, 22.0]]
    rle_mask = np.zeros((24, 32), bool)
    rle_mask[10:20, 22:30] = True
    from core.analysis.masks import compress_rle, encode_rle

    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 24, "width": 32},
            {"id": 2, "file_name": "sub/b.png", "height": 24, "width": 32},
            {"id": 3, "file_name": "missing.png", "height": 24, "width": 32},
            {"id": 4, "file_name": "c.png", "height": 99, "width": 32},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": square, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 2, "segmentation": encode_rle(rle_mask), "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 2, "segmentation": encode_rle(rle_mask), "iscrowd": 1},
            {"id": 20, "image_id": 2, "category_id": 1, "segmentation": compress_rle(encode_rle(rle_mask))},
            {"id": 21, "image_id": 2, "category_id": 1, "segmentation": triangle},
            {"id": 30, "image_id": 3, "category_id": 1, "segmentation": square},
            {"id": 40, "image_id": 4, "category_id": 1, "segmentation": square},
            {"id": 50, "image_id": 77, "category_id": 1, "segmentation": square},
        ],
        "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "patch"}],
    }
    files = {"data/a.png": photo(), "data/images/sub/b.png": photo(seed=1), "data/c.png": photo(seed=2)}
    return coco, files


def test_coco_polygons_and_rle_load_and_bad_entries_are_listed():
    pytest.importorskip("pycocotools")
    coco, files = coco_files()
    gt = load_coco(json.dumps(coco), readers(files), "data/ann.json")
    assert [i.name for i in gt.items] == ["data/a.png", "data/images/sub/b.png"]
    a, b = gt.items
    assert a.labels == ["box", "patch"] and "1 crowd annotation left out" in a.note
    assert b.labels == ["box", "box"] and b.masks.shape == (2, 24, 32)
    np.testing.assert_array_equal(a.masks[1], b.masks[0])  # uncompressed and compressed RLE of one mask
    reasons = {s.name: s.reason for s in gt.skipped}
    assert reasons["missing.png"] == "image file not found beside the JSON"
    assert reasons["data/c.png"] == "the JSON says 32×99 pixels, the image is 32×24"
    assert reasons["data/ann.json: annotation 50"] == "unknown image id 77"
    # the same through the folder layout detection
    folder = load_ground_truth_files(readers({**files, "data/ann.json": json.dumps(coco).encode()}))
    assert [i.name for i in folder.items] == ["data/a.png", "data/images/sub/b.png"]


def test_coco_polygons_match_pycocotools():
    coco_mask = pytest.importorskip("pycocotools.mask")
    polygon = [[2.0, 2.0, 30.0, 2.0, 16.0, 22.0], [1.0, 20.0, 6.0, 20.0, 3.0, 23.0]]
    ours = decode_segmentation(polygon, 24, 32)
    theirs = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygon, 24, 32))).astype(bool)
    np.testing.assert_array_equal(ours, theirs)
    assert ours[5, 16] and not ours[20, 30] and ours[21, 3]  # inside the triangle, outside it, the second part


def test_a_bad_coco_file_is_one_message():
    gt = load_coco("{not json", {}, "x.json")
    assert gt.skipped[0].name == "x.json" and gt.skipped[0].reason.startswith("not a COCO instances JSON")
