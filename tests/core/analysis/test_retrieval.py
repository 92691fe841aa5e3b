import numpy as np
import pytest

from core.analysis import retrieval as R


def _angles(degrees):
    rad = np.deg2rad(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


# Four unit vectors at 0°, 15°, 25°, 90°, labeled a a b b. Neighbours by angle, worked out by hand:
#   q0: 15° (a), 25° (b), 90° (b)   q1: 25° (b), 0° (a), 90° (b)
#   q2: 15° (a), 0° (a), 90° (b)    q3: 25° (b), 15° (a), 0° (a)
FEATURES = _angles([0, 15, 25, 90]) * np.array([[1.0], [3.0], [0.5], [2.0]])  # lengths must not matter
LABELS = ["a", "a", "b", "b"]


def test_average_precision_of_hand_computed_rankings():
    assert R.average_precision([True, False, False]) == 1.0
    assert R.average_precision([False, True, False, True]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert R.average_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(R.average_precision([False, False]))


def test_retrieval_map_on_a_hand_computed_ranking():
    # relevant item at rank 1, 2, 3, 1 for queries 0..3
    assert R.retrieval_map(FEATURES, LABELS) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1) / 4)
    assert R.retrieval_map(FEATURES, ["a", "b", "b", "a"]) == pytest.approx((1 / 3 + 1 + 1 + 1 / 3) / 4)


def test_retrieval_map_leaves_out_singleton_queries_and_refuses_all_singletons():
    # q3 has no relevant item and is left out; q0, q1, q2 find the two other a's first (AP 1 each)
    assert R.retrieval_map(FEATURES, ["a", "a", "a", "b"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two or more images"):
        R.retrieval_map(FEATURES, ["a", "b", "c", "d"])


def test_knn_known_answers_with_ties_to_the_nearest():
    assert R.knn_accuracy(FEATURES, LABELS, k=1) == 0.5  # q0 ✓ q1 ✗ q2 ✗ q3 ✓
    assert R.knn_accuracy(FEATURES, LABELS, k=2) == 0.5  # every vote 1:1, the nearest decides: same as 1-NN
    assert R.knn_accuracy(FEATURES, ["b", "b", "a", "a"], k=2) == 0.5  # not the alphabetically first class
    assert R.knn_accuracy(FEATURES, LABELS, k=3) == 0.0  # all others vote: the other class wins 2:1 everywhere
    with pytest.raises(ValueError, match="k must be"):
        R.knn_accuracy(FEATURES, LABELS, k=4)


def test_knn_scores_blocks_of_rows_like_one_block(monkeypatch):
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(50, 8)), rng.integers(0, 3, 50)
    whole = R.knn_accuracy(features, labels, 5), R.retrieval_map(features, labels)
    monkeypatch.setattr(R, "_BLOCK", 7)
    assert (R.knn_accuracy(features, labels, 5), R.retrieval_map(features, labels)) == pytest.approx(whole)


def _clusters(n_classes, per_class, dim, spread, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 5
    features = np.concatenate([c + spread * rng.normal(size=(per_class, dim)) for c in centres])
    return features, np.repeat([f"class{i}" for i in range(n_classes)], per_class)


@pytest.mark.parametrize("shots", [1, 5, 10])
def test_few_shot_on_separable_classes_is_perfect(shots):
    features, labels = _clusters(5, 30, 16, spread=0.1)
    result = R.few_shot_accuracy(features, labels, shots, episodes=20)
    assert result.mean == pytest.approx(1.0) and result.n_way == 5 and result.accuracies.shape == (20,)


def test_few_shot_on_noise_is_at_chance_with_an_honest_interval():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(200, 16)), np.repeat(list("abcde"), 40)
    result = R.few_shot_accuracy(features, labels, 5, episodes=200)
    assert abs(result.mean - 0.2) < 0.03
    assert 0.003 < result.ci95 < 0.03 and abs(result.mean - 0.2) < 3 * result.ci95


def test_few_shot_needs_two_classes_with_more_images_than_shots():
    features, labels = _clusters(3, 4, 8, spread=0.1)
    assert R.few_shot_accuracy(features, labels, 3, episodes=5).n_way == 3
    with pytest.raises(ValueError, match="two classes with 5"):
        R.few_shot_accuracy(features, labels, 4)


def test_few_shot_centres_by_the_support_mean_before_normalising():
    # two classes on one ray, at lengths 1 and 2: normalised as they are, both become the same direction;
    # centred by the support mean first, they point opposite ways
    rng = np.random.default_rng(2)
    direction = R.normalize(rng.normal(size=16))
    lengths = np.repeat([1.0, 2.0], 20)
    features = lengths[:, None] * direction + 1e-3 * rng.normal(size=(40, 16))
    labels = np.repeat(["near", "far"], 20)
    assert R.few_shot_accuracy(features, labels, 5, episodes=20).mean == pytest.approx(1.0)


def test_templating_is_class_major_and_checks_templates():
    assert R.expand_prompts([" cat", "dog"], ["a {}", "the {}."]) == ["a cat", "the cat.", "a dog", "the dog."]
    assert len(R.expand_prompts(["cat"])) == len(R.DEFAULT_TEMPLATES)
    with pytest.raises(ValueError, match="exactly one"):
        R.expand_prompts(["cat"], ["a photo"])
    with pytest.raises(ValueError, match="class name"):
        R.expand_prompts(["cat", " "], ["a {}"])
    with pytest.raises(ValueError, match="template"):
        R.expand_prompts(["cat"], [])


def test_class_embeddings_average_normalised_prompts():
    text = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 1.0]])  # class 0: two prompts, class 1: two
    out = R.class_embeddings(text, 2)
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5], [0.0, 1.0]], atol=1e-6)  # a raw mean would lean to x
    with pytest.raises(ValueError, match="do not split"):
        R.class_embeddings(text, 3)


def test_zero_shot_probabilities_are_a_softmax_of_scaled_cosines():
    images = np.array([[1.0, 0.0], [0.0, 5.0]])
    classes = np.array([[1.0, 0.0], [np.cos(0.1), np.sin(0.1)], [0.0, 1.0]])
    probs = R.zero_shot_probabilities(images, classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert list(probs.argmax(axis=1)) == [0, 2]
    ratio = probs[0, 0] / probs[0, 1]
    assert ratio == pytest.approx(np.exp(100 * (1 - np.cos(0.1))), rel=1e-4)


def test_classification_accuracy_and_confusion():
    result = R.compute_classification(["a", "a", "b", "c"], ["a", "b", "b", "a"], ["a", "b", "c"])
    assert result.accuracy == 0.5
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_rank_is_by_cosine_best_first_excluding_the_query_with_ties_to_the_lower_index():
    gallery = _angles([0, 30, 30, 90]) * 7
    ranking = R.rank(gallery[0], gallery)
    assert list(ranking.indices) == [0, 1, 2, 3]
    np.testing.assert_allclose(ranking.scores, [1, np.cos(np.pi / 6), np.cos(np.pi / 6), 0], atol=1e-6)
    assert list(R.rank(gallery[1], gallery, k=2, exclude=1).indices) == [2, 0]


def test_compute_scores_and_table_say_when_few_shot_has_too_few_images():
    features, labels = _clusters(3, 6, 8, spread=0.1)
    scores = R.compute_scores(features, labels, k=5, episodes=10)
    assert scores.nn1 == scores.knn == scores.map == 1.0 and scores.few_shot[10] is None
    assert scores.few_shot[5].mean == 1.0
    (row,) = R.scores_table({"tiny": scores})
    assert row["model"] == "tiny" and row["5-NN"] == 1.0 and row["10-shot"] is None and row["mAP"] == 1.0
    with pytest.raises(ValueError, match="two or more classes"):
        R.compute_scores(features, ["a"] * len(features))


def test_peak_points_are_patch_centres_in_pixels_best_first():
    sim = np.zeros((4, 4))
    sim[1, 3], sim[2, 0] = 0.9, 0.5
    np.testing.assert_allclose(R.peak_points(sim, (80, 160), 2), [[140.0, 30.0], [20.0, 50.0]])
    text = np.array([0.0, 1.0])
    patches = np.zeros((2, 2, 2))
    patches[0, 1] = [0, 3]
    patches[1, 0] = [3, 0]
    np.testing.assert_allclose(R.patch_text_similarity(patches, text), [[0, 1], [0, 0]])
