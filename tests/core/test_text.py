from core.text import count


def test_count_uses_the_singular_only_for_one():
    assert count(1, "file") == "1 file"
    assert count(0, "file") == "0 files"
    assert count(2, "image") == "2 images"
    assert count(1, "patch", "patches") == "1 patch"
    assert count(12_345, "patch", "patches") == "12,345 patches"
