"""Labeled datasets for the Embedding Scatter page: scikit-learn digits, CIFAR-10 and Caltech-101.

Digits ship inside scikit-learn (offline). CIFAR-10 (train split) and Caltech-101 come through torchvision:
downloaded once into `root` (default ``<cache dir>/datasets``) when the network answers a 2 s probe, read
from there afterwards. Offline and not cached, `load_seed_dataset` raises `DatasetUnavailable` at once.
Every loader takes at most `per_class` images per class, chosen at random with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import config
from core.analysis.projection import MIN_POINTS
from core.data import ImageError, ImageItem, ImageSet, Skipped, load_digits_set, load_image
from core.weights import online


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    n_images: int  # in the full dataset (CIFAR-10: the train split)
    n_classes: int
    host: str | None  # where torchvision downloads it from; None: ships with an installed package


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", "Digits (scikit-learn)", 1797, 10, None),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", 50_000, 10, "www.cs.toronto.edu"),
    "caltech101": DatasetInfo("caltech101", "Caltech-101", 8677, 101, "data.caltech.edu"),
}


class DatasetUnavailable(OSError):
    """A dataset that is neither cached nor downloadable now; the message says what to do."""


def default_root() -> Path:
    return config.cache_dir() / "datasets"


def is_cached(name: str, root: Path | None = None) -> bool:
    """Whether dataset `name` can be read without the network: it ships with a package or is already in `root`."""
    info = DATASETS[name]
    if info.host is None:
        return True
    root = Path(root) if root is not None else default_root()
    folder = root / "cifar-10-batches-py" if name == "cifar10" else root / "caltech101" / "101_ObjectCategories"
    return folder.is_dir()  # torchvision's own layout; a broken download still fails later, with its message


def pick_per_class(labels: Sequence, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted int64 indices of at most `per_class` items of each label in `labels` (N,), chosen at random."""
    if per_class < 1:
        raise ValueError(f"Images per class must be at least 1, got {per_class}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks)).astype(np.int64) if picks else np.zeros(0, np.int64)


def take_per_class(images: ImageSet, per_class: int, seed: int = 0) -> ImageSet:
    """The labeled items of `images`, at most `per_class` per class (unlabeled items are dropped)."""
    labeled = [it for it in images.items if it.label is not None]
    keep = pick_per_class([it.label for it in labeled], per_class, seed)
    return ImageSet([labeled[i] for i in keep], list(images.skipped))


def describe_subset(kept: ImageSet, total: int, per_class: int, seed: int = 0) -> str:
    """One sentence saying how many images of how many classes are used, and whether that is a sample."""
    n, n_classes = len(kept.items), len(kept.class_counts())
    if n >= total:
        return f"Using all {n:,} images ({n_classes} classes); no subsampling."
    return (
        f"Using {n:,} of {total:,} images: at most {per_class} per class, {n_classes} classes "
        f"(random sample, seed {seed})."
    )


def check_labeled(images: ImageSet) -> str | None:
    """Why `images` cannot be projected and scored (what to do about it), or None when it can."""
    counts = images.class_counts()
    if not counts:
        return (
            "These images have no class labels. Load a zip or server folder in class-subfolder layout "
            "(class/image.jpg) on the Upload page, or pick a built-in dataset."
        )
    if len(counts) < 2:
        return f"All images are in one class ({next(iter(counts))!r}). Add at least one more class."
    if sum(counts.values()) < MIN_POINTS or sum(c >= 2 for c in counts.values()) < 2:
        return (
            f"Too few images ({sum(counts.values())}) to split into train and held-out: use at least {MIN_POINTS}, "
            "with two or more in each of at least two classes (raise the images per class)."
        )
    return None


def load_seed_dataset(name: str, per_class: int, root: Path | None = None, seed: int = 0) -> ImageSet:
    """At most `per_class` labeled images per class of dataset `name` (a key of DATASETS), HWC uint8 RGB.

    Raises DatasetUnavailable (an OSError) when a torchvision dataset is not in `root` and cannot be downloaded.
    """
    if name not in DATASETS:
        raise KeyError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if name == "digits":
        return load_digits_set(per_class, side=32, seed=seed)
    root = Path(root) if root is not None else default_root()
    loader = _load_cifar10 if name == "cifar10" else _load_caltech101
    return loader(_open_torchvision(DATASETS[name], root), per_class, seed)


def _open_torchvision(info: DatasetInfo, root: Path):
    """The torchvision dataset object, from `root` if it is there, else downloaded when online."""
    import torchvision.datasets as tvd

    def build(download: bool):
        if info.name == "cifar10":
            return tvd.CIFAR10(root, train=True, download=download)
        return tvd.Caltech101(root, download=download)

    try:
        return build(False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        pass
    if not online(info.host or ""):
        raise DatasetUnavailable(
            f"{info.title} is not cached in {root} and the network is unreachable: open this page once on a "
            "connected machine (the download is kept there), or use the built-in digits or your own labeled images."
        )
    root.mkdir(parents=True, exist_ok=True)
    try:
        return build(True)
    except Exception as exc:  # noqa: BLE001 - urllib, checksum and archive errors all mean the same to the user
        raise DatasetUnavailable(f"Downloading {info.title} into {root} failed ({exc}). Try again later.") from exc


def _load_cifar10(dataset, per_class: int, seed: int) -> ImageSet:
    targets = np.asarray(dataset.targets)
    items = [
        ImageItem(f"cifar10_{i:05d}.png", np.asarray(dataset.data[i], dtype=np.uint8), dataset.classes[targets[i]])
        for i in pick_per_class(targets, per_class, seed)
    ]
    return ImageSet(items)


def _load_caltech101(dataset, per_class: int, seed: int) -> ImageSet:
    folder = Path(dataset.root) / "101_ObjectCategories"
    result = ImageSet()
    for i in pick_per_class(dataset.y, per_class, seed):
        category = dataset.categories[dataset.y[i]]
        name = f"{category}/image_{dataset.index[i]:04d}.jpg"
        try:
            image, note = load_image(folder / name, name)
        except (ImageError, OSError) as exc:
            result.skipped.append(Skipped(name, str(exc)))
            continue
        result.items.append(ImageItem(name, image, category, note))
    return result
