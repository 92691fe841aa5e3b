"""Zero-shot classification, retrieval, k-NN and few-shot evaluation on embeddings: pure numpy.

Conventions:
- features are (N, D) floats, one row per image; labels are (N,) values compared for equality (strings in the app).
- Similarity is cosine. Rankings are best first; ties go to the lower index.
- Leave-one-out everywhere a labeled set is scored on itself: an image is never its own neighbour.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix

from core.analysis.matching import patch_center

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a drawing of a {}.",
    "a photo of the small {}.",
)
ZERO_SHOT_SCALE = 100.0  # CLIP's learned logit scale, fixed at its trained value
SHOTS = (1, 5, 10)
_BLOCK = 1024  # rows of the (N, N) similarity matrix held at once


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; a zero row stays zero."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


# ---- zero-shot ------------------------------------------------------------------------------
def expand_prompts(classes: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[str]:
    """C × T prompts, class-major (every template of class 0, then of class 1, ...); `{}` takes the class name."""
    names = [c.strip() for c in classes]
    if not names or not all(names):
        raise ValueError("give at least one class name, and no empty ones")
    if not templates:
        raise ValueError("give at least one prompt template")
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise ValueError(f"every template needs exactly one {{}} where the class name goes, not {bad[0]!r}")
    return [t.replace("{}", name) for name in names for t in templates]


def class_embeddings(text_features: np.ndarray, n_classes: int) -> np.ndarray:
    """(C × T, D) class-major prompt embeddings → (C, D) unit vectors: the mean of each class's normalised prompts."""
    if n_classes < 1 or len(text_features) % n_classes:
        raise ValueError(f"{len(text_features)} prompt embeddings do not split into {n_classes} classes")
    per_class = normalize(text_features).reshape(n_classes, -1, text_features.shape[-1])
    return normalize(per_class.mean(axis=1))


def zero_shot_probabilities(
    image_features: np.ndarray, class_features: np.ndarray, scale: float = ZERO_SHOT_SCALE
) -> np.ndarray:
    """(N, C) float32 class probabilities: softmax over classes of `scale` × cosine(image, class)."""
    logits = scale * normalize(image_features) @ normalize(class_features).T
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def sigmoid_probabilities(
    image_features: np.ndarray, class_features: np.ndarray, scale: float, bias: float
) -> np.ndarray:
    """(N, C) float32 per-class probabilities: sigmoid(`scale` × cosine(image, class) + `bias`), each class on its own
    (SigLIP's rule); a row need not sum to 1."""
    logits = scale * normalize(image_features) @ normalize(class_features).T + bias
    return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # the sigmoid, without overflow in exp


@dataclass(frozen=True)
class ZeroShotRule:
    """How a model turns image–class cosines into class probabilities; its adapter's `zero_shot_rule()` gives it.

    sigmoid False: a softmax over the classes of `scale` × cosine (CLIP; a row sums to 1).
    sigmoid True: every class on its own, sigmoid(`scale` × cosine + `bias`) (SigLIP; a row need not sum to 1).
    """

    sigmoid: bool
    scale: float
    bias: float = 0.0
    model: str = "CLIP"  # the family's title, for the sentence

    def probabilities(self, image_features: np.ndarray, class_features: np.ndarray) -> np.ndarray:
        if self.sigmoid:
            return sigmoid_probabilities(image_features, class_features, self.scale, self.bias)
        return zero_shot_probabilities(image_features, class_features, self.scale)

    def describe(self) -> str:
        """One sentence for the page: which rule applies, with its numbers."""
        if self.sigmoid:
            sign = "+" if self.bias >= 0 else "−"
            return (
                f"{self.model} scores each class on its own with a sigmoid: probabilities need not sum to 1 "
                f"(sigmoid({self.scale:.4g} × cosine {sign} {abs(self.bias):.4g}), its learned scale and bias)."
            )
        return (
            f"{self.model} picks among the classes with a softmax over {self.scale:g} × the cosine similarity between "
            "the image and each class: an image's probabilities sum to 1."
        )


@dataclass(frozen=True)
class Classification:
    """accuracy in [0, 1]; confusion (C, C) int64, rows = true class, columns = predicted, in `classes` order."""

    accuracy: float
    confusion: np.ndarray
    classes: list[str]


def compute_classification(true: Sequence, predicted: Sequence, classes: Sequence) -> Classification:
    true, predicted = np.asarray(true), np.asarray(predicted)
    if true.shape != predicted.shape or true.size == 0:
        raise ValueError(f"need as many predictions as labels, and at least one (got {true.size}, {predicted.size})")
    confusion = confusion_matrix(true, predicted, labels=list(classes)).astype(np.int64)
    return Classification(float(np.mean(true == predicted)), confusion, [str(c) for c in classes])


# ---- ranking --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranking:
    """Gallery rows best first: indices (K,) int64 and their cosine scores (K,) float32."""

    indices: np.ndarray
    scores: np.ndarray


def rank(query: np.ndarray, gallery: np.ndarray, k: int | None = None, exclude: int | None = None) -> Ranking:
    """The gallery (N, D) ranked by cosine to one (D,) query; `exclude` drops one row (the query itself)."""
    scores = normalize(gallery) @ normalize(query)
    order = np.argsort(-scores, kind="stable")
    if exclude is not None:
        order = order[order != exclude]
    order = order[:k]
    return Ranking(order.astype(np.int64), scores[order].astype(np.float32))


def _neighbour_blocks(features: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(start, (B, N) cosine) blocks of every row against all rows, each row's own entry set to -inf."""
    unit = normalize(features)
    for start in range(0, len(unit), _BLOCK):
        block = unit[start : start + _BLOCK] @ unit.T
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf
        yield start, block


def _codes(labels: Sequence) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1 if len(codes) else 0


def knn_accuracy(features: np.ndarray, labels: Sequence, k: int = 1) -> float:
    """Leave-one-out k-NN accuracy (cosine): each image takes the majority class of its k nearest others.

    A tied vote goes to the tied class whose nearest member ranks first.
    """
    codes, n_classes = _codes(labels)
    if not 1 <= k < len(codes):
        raise ValueError(f"k must be between 1 and {len(codes) - 1} (the other images), got {k}")
    correct = 0
    for start, block in _neighbour_blocks(features):
        nearest = np.argsort(-block, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(block), n_classes))
        first = np.full((len(block), n_classes), k)
        rows = np.arange(len(block))
        for position in range(k - 1, -1, -1):  # last to first, so `first` ends at the earliest position
            cls = codes[nearest[:, position]]
            votes[rows, cls] += 1
            first[rows, cls] = position
        predicted = np.argmax(votes * (k + 1) - first, axis=1)
        correct += int(np.sum(predicted == codes[start : start + len(block)]))
    return correct / len(codes)


def average_precision(relevant: Sequence[bool]) -> float:
    """AP of one ranking given as relevant flags in rank order: the mean precision at each relevant item (NaN if none)."""
    hits = np.asarray(relevant, dtype=bool)
    if not hits.any():
        return float("nan")
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision_at[hits].mean())


def retrieval_map(features: np.ndarray, labels: Sequence) -> float:
    """Mean AP with every image as a query against the rest (same label = relevant).

    Queries whose class has no other image are left out; ValueError when that leaves none.
    """
    codes, _ = _codes(labels)
    aps = []
    for start, block in _neighbour_blocks(features):
        order = np.argsort(-block, axis=1, kind="stable")[:, :-1]  # the last one is the query itself (-inf)
        for row, ranked in enumerate(order):
            aps.append(average_precision(codes[ranked] == codes[start + row]))
    valid = [ap for ap in aps if not np.isnan(ap)]
    if not valid:
        raise ValueError("retrieval mAP needs at least one class with two or more images")
    return float(np.mean(valid))


# ---- few-shot -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FewShot:
    """Accuracy over random episodes: mean, half-width of its 95 % interval, and every episode's accuracy."""

    shots: int
    mean: float
    ci95: float
    accuracies: np.ndarray  # (episodes,) float64
    n_way: int


def few_shot_accuracy(
    features: np.ndarray, labels: Sequence, shots: int, episodes: int = 100, queries: int = 15, seed: int = 0
) -> FewShot:
    """N-way `shots`-shot accuracy over `episodes` random episodes, N = every class with more than `shots` images.

    Per episode and class: `shots` support and up to `queries` query images. Features are centred by the
    support mean, L2-normalised, and each query takes the class of the nearest support-class mean.
    """
    codes, n_classes = _codes(labels)
    counts = np.bincount(codes, minlength=n_classes)
    eligible = np.flatnonzero(counts > shots)
    if shots < 1 or len(eligible) < 2:
        raise ValueError(f"{shots}-shot needs at least two classes with {shots + 1} or more images each")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(codes == c) for c in eligible]
    features = np.asarray(features, dtype=np.float32)
    accuracies = np.array([_episode(features, members, shots, queries, rng) for _ in range(episodes)])
    ci95 = 1.96 * accuracies.std(ddof=1) / np.sqrt(episodes) if episodes > 1 else 0.0
    return FewShot(shots, float(accuracies.mean()), float(ci95), accuracies, len(eligible))


def _episode(
    features: np.ndarray, members: list[np.ndarray], shots: int, queries: int, rng: np.random.Generator
) -> float:
    picks = [rng.permutation(m) for m in members]
    support = np.stack([features[p[:shots]] for p in picks])  # (C, shots, D)
    query_idx = [p[shots : shots + queries] for p in picks]
    query = features[np.concatenate(query_idx)]
    truth = np.concatenate([np.full(len(q), c) for c, q in enumerate(query_idx)])
    centre = support.reshape(-1, support.shape[-1]).mean(axis=0)
    means = normalize(support - centre).mean(axis=1)  # (C, D)
    distances = np.linalg.norm(normalize(query - centre)[:, None] - means[None], axis=-1)
    return float(np.mean(distances.argmin(axis=1) == truth))


# ---- comparing models -----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelScores:
    """One model's scores on a labeled set; a few-shot entry is None when too few images per class."""

    nn1: float
    knn: float
    k: int
    few_shot: dict[int, FewShot | None]
    map: float


def compute_scores(
    features: np.ndarray, labels: Sequence, k: int = 5, shots: Sequence[int] = SHOTS, episodes: int = 100, seed: int = 0
) -> ModelScores:
    """1-NN, k-NN (k capped at N - 1), few-shot per entry of `shots`, and retrieval mAP of one model's features."""
    codes, n_classes = _codes(labels)
    if len(codes) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(codes)} labels")
    if n_classes < 2 or len(codes) < 3:
        raise ValueError("comparing models needs at least three labeled images in two or more classes")
    k = min(k, len(codes) - 1)
    few = {}
    for n in shots:
        try:
            few[n] = few_shot_accuracy(features, labels, n, episodes, seed=seed)
        except ValueError:
            few[n] = None
    return ModelScores(
        knn_accuracy(features, labels, 1), knn_accuracy(features, labels, k), k, few, retrieval_map(features, labels)
    )


def scores_table(scores: dict[str, ModelScores]) -> list[dict]:
    """One row per model for display and CSV: accuracies and mAP as fractions, few-shot mean and ±95 % half-width."""
    rows = []
    for model, s in scores.items():
        row: dict = {"model": model, "1-NN": s.nn1, f"{s.k}-NN": s.knn}
        for n, few in s.few_shot.items():
            row[f"{n}-shot"] = few.mean if few else None
            row[f"{n}-shot ±95%"] = few.ci95 if few else None
        row["mAP"] = s.map
        rows.append(row)
    return rows


# ---- text-prompted points -------------------------------------------------------------------
def patch_text_similarity(patches: np.ndarray, text: np.ndarray) -> np.ndarray:
    """(h, w) float32 cosine of each (h, w, D) patch embedding to one (D,) text embedding."""
    return normalize(patches) @ normalize(text)


def peak_points(similarity: np.ndarray, image_size: tuple[int, int], n: int = 1) -> np.ndarray:
    """(n, 2) float (X, Y) pixel centres of the `n` most similar patches of an (h, w) map, best first.

    The patch grid covers the whole image of `image_size` = (H, W).
    """
    grid = similarity.shape
    best = np.argsort(-similarity.reshape(-1), kind="stable")[: max(n, 0)]
    return np.array([patch_center(i // grid[1], i % grid[1], image_size, grid) for i in best]).reshape(-1, 2)
