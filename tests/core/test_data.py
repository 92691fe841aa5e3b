import os
from pathlib import Path

import numpy as np
import pytest

from core import data
from tests import corpus


@pytest.mark.parametrize("name", sorted(corpus.GOOD))
def test_awkward_but_valid_images_become_rgb_uint8(name):
    image, _ = data.load_image(corpus.GOOD[name](), name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert max(image.shape[:2]) <= data.MAX_SIDE


@pytest.mark.parametrize("name", sorted(corpus.BAD))
def test_bad_inputs_raise_a_readable_image_error(name):
    with pytest.raises(data.ImageError) as info:
        data.load_image(corpus.BAD[name](), name)
    assert "Traceback" not in str(info.value) and len(str(info.value)) > 10


def test_exif_orientation_is_applied():
    image, _ = data.load_image(corpus.exif_rotated())
    assert image.shape[:2] == (40, 30)  # stored 40 wide × 30 high, displayed rotated


def test_alpha_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    image, _ = data.load_image(corpus.encode(corpus.Image.fromarray(rgba, "RGBA")))
    assert (image == 255).all()


def test_sixteen_bit_keeps_its_range():
    image, _ = data.load_image(corpus.sixteen_bit())
    assert image.min() == 0 and image.max() == 255


def test_animated_and_large_images_say_what_was_done():
    _, note = data.load_image(corpus.animated_gif())
    assert note == "first of 3 frames"
    image, note = data.load_image(corpus.GOOD["large.png"]())
    assert image.shape[:2] == (512, 2048) and "downscaled from 4000×1000" in note


def test_bomb_message_names_the_limit():
    with pytest.raises(data.ImageError, match="megapixels"):
        data.load_image(corpus.png_claiming(20_000, 20_000))


def test_load_files_reports_bad_files_by_name_and_keeps_the_good():
    files = [("good.png", corpus.GOOD["plain.png"]()), ("bad.jpg", corpus.BAD["text_as.jpg"]())]
    result = data.load_files(files)
    assert result.names == ["good.png"]
    assert [s.name for s in result.skipped] == ["bad.jpg"]


def test_zip_class_layout_gives_labels_under_a_common_top_folder():
    png = corpus.GOOD["plain.png"]()
    archive = corpus.zip_of(
        {
            "set/cats/a.png": png,
            "set/cats/b.png": png,
            "set/dogs/c.png": png,
            "set/dogs/notes.txt": b"x",
            "__MACOSX/set/._a.png": b"junk",
            "set/.DS_Store": b"junk",
        }
    )
    result = data.load_zip(archive)
    assert result.is_labeled and result.class_counts() == {"cats": 2, "dogs": 1}
    assert [s.name for s in result.skipped] == ["set/dogs/notes.txt"]


def test_zip_refuses_slip_entries_and_skips_nested_archives():
    png = corpus.GOOD["plain.png"]()
    archive = corpus.zip_of(
        {
            "../evil.png": png,
            "/abs.png": png,
            "a/../../up.png": png,
            "inner.zip": corpus.zip_of({"x.png": png}),
            "ok/писмо.png": png,
            "ok2/图.png": png,
        }
    )
    result = data.load_zip(archive)
    assert sorted(result.names) == ["ok/писмо.png", "ok2/图.png"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert all("outside the archive" in reasons[n] for n in ("../evil.png", "/abs.png", "a/../../up.png"))
    assert "nested zip" in reasons["inner.zip"]


def test_zip_bomb_is_refused_whole():
    result = data.load_zip(corpus.zip_bomb(300), "bomb.zip")
    assert not result.items and "refused" in result.skipped[0].reason


def test_not_a_zip_is_reported():
    result = data.load_files([("data.zip", b"PK\x03\x04 broken")])
    assert not result.items and "not a readable zip" in result.skipped[0].reason


def test_folder_is_confined_to_roots_and_links_cannot_escape(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "ds" / "a").mkdir(parents=True)
    (root / "ds" / "b").mkdir()
    outside.mkdir()
    png = corpus.GOOD["plain.png"]()
    (root / "ds" / "a" / "1.png").write_bytes(png)
    (root / "ds" / "b" / "2.png").write_bytes(png)
    (outside / "secret.png").write_bytes(png)
    os.symlink(outside / "secret.png", root / "ds" / "b" / "link.png")
    result = data.load_folder(root / "ds", [root])
    assert result.class_counts() == {"a": 1, "b": 1}
    assert any("outside" in s.reason for s in result.skipped)
    with pytest.raises(data.ImageError, match="outside the allowed"):
        data.load_folder(outside, [root])
    with pytest.raises(data.ImageError, match="outside the allowed"):
        data.load_folder(root / ".." / "outside", [root])


def test_built_in_samples_work_offline():
    samples = data.load_samples()
    assert len(samples.items) == 7 and not samples.skipped
    assert all(im.dtype == np.uint8 and im.shape[2] == 3 for im in samples.images)
    digits = data.load_digits_set(per_class=3)
    assert digits.is_labeled and digits.class_counts() == {str(d): 3 for d in range(10)}


def test_empty_class_folders_are_reported_in_zips_and_folders(tmp_path):
    png = corpus.GOOD["plain.png"]()
    archive = corpus.zip_of({"cats/a.png": png, "dogs/b.png": png, "birds/": b""})
    result = data.load_zip(archive)
    assert result.class_counts() == {"cats": 1, "dogs": 1}
    assert [(s.name, "empty folder" in s.reason) for s in result.skipped] == [("birds/", True)]
    for cls in ("cats", "dogs", "birds"):
        (tmp_path / cls).mkdir()
    (tmp_path / "cats" / "a.png").write_bytes(png)
    (tmp_path / "dogs" / "b.png").write_bytes(png)
    result = data.load_folder(tmp_path, [tmp_path])
    assert result.class_counts() == {"cats": 1, "dogs": 1}
    assert [s.name for s in result.skipped] == ["birds/"]


@pytest.mark.parametrize("name", ["truncated.png", "truncated.jpg", "truncated_header.jpg", "corrupt_middle.png"])
def test_a_damaged_image_is_called_truncated_or_corrupt_not_a_wrong_extension(name):
    with pytest.raises(data.ImageError, match="truncated or corrupt") as info:
        data.load_image(corpus.BAD[name](), name)
    assert "wrong extension" not in str(info.value)


def test_a_file_that_is_no_image_at_all_is_still_called_that():
    with pytest.raises(data.ImageError, match="not an image at all"):
        data.load_image(corpus.BAD["text_as.jpg"](), "text_as.jpg")


def _item(name: str, seed: int, label: str | None = None) -> data.ImageItem:
    return data.ImageItem(name, np.asarray(corpus.rgb(8, 6, seed=seed)), label)


def test_merge_adds_only_new_pixels_and_a_duplicate_brings_its_label_to_an_unlabeled_copy():
    current = data.ImageSet([_item("a.png", 1), _item("b.png", 2, "dogs")])
    new = data.ImageSet([_item("cats/a.png", 1, "cats"), _item("b copy.png", 2), _item("c.png", 3), _item("c2.png", 3)])
    merged = current.merge(new)
    assert (merged.added, merged.present, merged.labeled) == (2, 2, 1)  # c.png twice: duplicates within a load stay
    assert merged.images.names == ["a.png", "b.png", "c.png", "c2.png"]
    assert merged.images.labels == ["cats", "dogs", None, None]  # b.png keeps its own label
    assert current.labels == [None, "dogs"]  # the set merged into is not changed (its items may be shared)
    assert merged.images.unlabeled == 2


def test_one_class_folder_is_a_class_in_zips_and_folders_and_a_common_top_folder_is_not(tmp_path):
    png = corpus.GOOD["plain.png"]()
    assert data.load_zip(corpus.zip_of({"cats/a.png": png, "cats/b.png": png})).class_counts() == {"cats": 2}
    nested = data.load_zip(corpus.zip_of({"set/cats/a.png": png, "set/loose.png": png}))
    assert nested.labels == ["cats", None]
    assert data.load_zip(corpus.zip_of({"a.png": png})).labels == [None]
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.png").write_bytes(png)
    (tmp_path / "fish").mkdir()
    result = data.load_folder(tmp_path, [tmp_path])
    assert result.class_counts() == {"cats": 1} and [s.name for s in result.skipped] == ["fish/"]


def test_prepare_roots_creates_missing_roots_and_returns_them_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = data.prepare_roots([Path("data")])
    assert roots == [tmp_path.resolve() / "data"] and roots[0].is_dir()
