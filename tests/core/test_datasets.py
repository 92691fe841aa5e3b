"""core.datasets: per-class sampling, stated subsets, readiness checks, and torchvision datasets offline."""

from __future__ import annotations

import socket
import urllib.request

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

from core import datasets
from core.data import ImageItem, ImageSet
from core.datasets import (
    DatasetUnavailable,
    check_labeled,
    describe_subset,
    load_seed_dataset,
    pick_per_class,
    take_per_class,
)


def _set(labels: list[str | None]) -> ImageSet:
    image = np.zeros((4, 4, 3), np.uint8)
    return ImageSet([ImageItem(f"im{i}.png", image, label) for i, label in enumerate(labels)])


def test_pick_per_class_caps_each_class_and_is_deterministic():
    labels = np.array(["a"] * 10 + ["b"] * 3 + ["c"] * 7)
    idx = pick_per_class(labels, 5, seed=0)
    assert idx.dtype == np.int64 and np.array_equal(idx, np.sort(idx))
    assert {c: int((labels[idx] == c).sum()) for c in "abc"} == {"a": 5, "b": 3, "c": 5}
    assert np.array_equal(idx, pick_per_class(labels, 5, seed=0))
    assert not np.array_equal(idx, pick_per_class(labels, 5, seed=1))
    with pytest.raises(ValueError, match="at least 1"):
        pick_per_class(labels, 0)


def test_take_per_class_drops_unlabeled_items_and_states_the_subset():
    images = _set(["a"] * 6 + ["b"] * 6 + [None] * 3)
    kept = take_per_class(images, 4)
    assert kept.class_counts() == {"a": 4, "b": 4} and kept.is_labeled
    assert describe_subset(kept, total=15, per_class=4) == (
        "Using 8 of 15 images: at most 4 per class, 2 classes (random sample, seed 0)."
    )
    everything = take_per_class(images, 100)
    assert describe_subset(everything, total=12, per_class=100) == ("Using all 12 images (2 classes); no subsampling.")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([None] * 12, "no class labels"),
        (["a"] * 12, "one class"),
        (["a"] * 4 + ["b"] * 4, "Too few images"),
        (["a"] * 11 + ["b"], "Too few images"),  # b has one image: nothing to hold out
    ],
)
def test_check_labeled_names_the_problem(labels, message):
    assert message in check_labeled(_set(labels))


def test_check_labeled_accepts_a_usable_set():
    assert check_labeled(_set(["a"] * 5 + ["b"] * 5)) is None


def test_digits_work_offline_with_per_class_cap():
    digits = load_seed_dataset("digits", 3)
    assert digits.class_counts() == {str(d): 3 for d in range(10)}
    assert digits.items[0].image.shape == (32, 32, 3) and digits.items[0].image.dtype == np.uint8


def test_unknown_dataset_raises():
    with pytest.raises(KeyError, match="cifar10"):
        load_seed_dataset("imagenet", 3)


@pytest.mark.parametrize("name", ["cifar10", "caltech101"])
def test_uncached_dataset_offline_fails_fast_with_one_clear_sentence(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed the network"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(DatasetUnavailable) as error:
        load_seed_dataset(name, 5, root=tmp_path)
    message = str(error.value)
    assert "not cached" in message and "network is unreachable" in message and "digits" in message
    assert isinstance(error.value, OSError)  # components.errors.user_errors shows OSErrors as messages


def test_an_unreachable_host_is_probed_not_waited_on(tmp_path, monkeypatch):
    monkeypatch.delenv("VFM_LENS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probed = []
    monkeypatch.setattr(datasets, "online", lambda host: probed.append(host) or False)
    with pytest.raises(DatasetUnavailable, match="network is unreachable"):
        load_seed_dataset("cifar10", 5, root=tmp_path)
    assert probed == ["www.cs.toronto.edu"]


class _FakeCIFAR10:
    """Stands in for torchvision's CIFAR10: 'downloads' only when asked to and the probe said online."""

    downloads: list[bool] = []

    def __init__(self, root, train=True, download=False):
        type(self).downloads.append(download)
        if not download:
            raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")
        rng = np.random.default_rng(0)
        self.targets = list(np.repeat(np.arange(3), 20))
        self.data = rng.integers(0, 256, size=(60, 32, 32, 3), dtype=np.uint8)
        self.classes = ["airplane", "automobile", "bird"]


def test_cifar10_downloads_when_online_and_samples_per_class(tmp_path, monkeypatch):
    _FakeCIFAR10.downloads = []
    monkeypatch.setattr(tvd, "CIFAR10", _FakeCIFAR10)
    monkeypatch.setattr(datasets, "online", lambda host: True)
    images = load_seed_dataset("cifar10", 4, root=tmp_path)
    assert _FakeCIFAR10.downloads == [False, True]  # looked in the cache first
    assert images.class_counts() == {"airplane": 4, "automobile": 4, "bird": 4}
    first = int(images.items[0].name.removeprefix("cifar10_").removesuffix(".png"))
    assert np.array_equal(images.items[0].image, _FakeCIFAR10("", download=True).data[first])


def test_a_failed_download_becomes_dataset_unavailable(tmp_path, monkeypatch):
    def broken(root, train=True, download=False):
        raise RuntimeError("Dataset not found") if not download else OSError("connection reset")

    monkeypatch.setattr(tvd, "CIFAR10", broken)
    monkeypatch.setattr(datasets, "online", lambda host: True)
    with pytest.raises(DatasetUnavailable, match="Downloading CIFAR-10 .* failed .*connection reset"):
        load_seed_dataset("cifar10", 4, root=tmp_path)


def test_cached_caltech101_loads_offline_from_the_torchvision_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    folder = tmp_path / "caltech101" / "101_ObjectCategories"
    for category, n in {"BACKGROUND_Google": 2, "accordion": 5, "airplanes": 2}.items():
        (folder / category).mkdir(parents=True)
        for i in range(1, n + 1):
            Image.new("L", (40, 30), 10 * i).save(folder / category / f"image_{i:04d}.jpg")  # grayscale on disk
    (folder / "airplanes" / "image_0002.jpg").write_bytes(b"broken")
    images = load_seed_dataset("caltech101", 3, root=tmp_path)
    assert images.class_counts() == {"accordion": 3, "airplanes": 1}  # no BACKGROUND_Google class
    assert all(it.image.shape == (30, 40, 3) for it in images.items)
    assert [s.name for s in images.skipped] == ["airplanes/image_0002.jpg"]
