"""The neighbour search and the k-Local Support Vectors against scikit-learn, and the two LSV rules on
hand-made cases (explorer.analysis.lsv's docstring)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from explorer.analysis import lsv
from explorer.analysis.neighbours import nearest_neighbours, without_self


def clustered(n=600, dims=6, classes=4, seed=0):
    """Overlapping Gaussian classes: many points have neighbours of other classes at every k."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(0, 1.0, (classes, dims))
    return centres[labels] + rng.normal(0, 1.2, (n, dims)), labels.astype(np.int64)


# -- the search ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [1, 5, 32])
def test_the_neighbours_are_scikit_learns(dims):
    x, _ = clustered(700, dims, seed=dims)
    queries = np.random.default_rng(1).normal(0, 1.5, (150, dims))
    reference = NearestNeighbors(n_neighbors=32, algorithm="brute").fit(x)
    expected_d, expected_i = reference.kneighbors(queries)
    indices, distances = nearest_neighbours(queries, x, 32, device="cpu")
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-9, atol=1e-9)
    # the training points themselves: each finds itself first, at distance 0
    own, own_d = nearest_neighbours(x, x, 32, device="cpu")
    np.testing.assert_array_equal(own[:, 0], np.arange(len(x)))
    np.testing.assert_array_equal(own_d[:, 0], 0)
    np.testing.assert_array_equal(own, reference.kneighbors(x, return_distance=False))


def test_small_blocks_give_the_same_answer(monkeypatch):
    from explorer.analysis import neighbours

    x, _ = clustered(300, 4)
    whole, _ = nearest_neighbours(x, x, 10, device="cpu")
    monkeypatch.setattr(neighbours, "_BLOCK_BYTES", 4 * 300 * 7)  # 7 queries per block
    seen = []
    blocked, _ = nearest_neighbours(x, x, 10, device="cpu", progress=seen.append)
    np.testing.assert_array_equal(blocked, whole)
    assert sum(seen) == 300 and max(seen) == 7


def test_equal_distances_come_in_index_order():
    # points on a line: 0 has 1 and -1 at distance 1, 2 and -2 at distance 2
    x = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]])
    indices, distances = nearest_neighbours(x[:1], x, 5, device="cpu")
    assert indices.tolist() == [[0, 1, 2, 3, 4]]
    np.testing.assert_allclose(distances, [[0, 1, 1, 2, 2]])


def test_bad_input_is_named():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="k must be an integer in 1..5"):
        nearest_neighbours(x, x, 6)
    with pytest.raises(ValueError, match="queries have 2 features, the reference points 3"):
        nearest_neighbours(np.zeros((2, 2)), x, 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        nearest_neighbours(np.full((2, 3), np.nan), x, 1)
    with pytest.raises(ValueError, match="2-D array"):
        nearest_neighbours(np.zeros(3), x, 1)


def test_without_self_removes_each_points_own_index():
    indices = np.array([[0, 4, 2], [3, 1, 0], [1, 0, 3]])  # row 2: a duplicate (1) took point 2's place
    assert without_self(indices).tolist() == [[4, 2], [3, 0], [1, 0]]


# -- the two rules on hand-made cases -----------------------------------------------------------------------

def membership(rule, own_label, others):
    return lsv.lsv_membership(np.array([others]), np.array([own_label]), rule)[:, 0].tolist()


def test_the_talk_rule_counts_disagreement_and_the_authors_rule_asks_who_wins():
    # class 2, others 1, 1, 2, 2, 2: talk leaves at Γ⁴ (2 of 4 is not more than half); authors at Γ⁵
    # (at k = 4 its own vote and 1, 1, 2 tie 2–2, and the tie goes to class 1)
    assert membership("talk", 2, [1, 1, 2, 2, 2]) == [True, True, True, False, False]
    assert membership("authors", 2, [1, 1, 2, 2, 2]) == [True, True, True, True, False]
    # class 0, others 1, 2, 3, 0, 0: talk keeps it to Γ⁵ (3 of 5 disagree); authors drops it at Γ²
    # (its own vote and a 1 tie, the tie goes to class 0, its own)
    assert membership("talk", 0, [1, 2, 3, 0, 0]) == [True, True, True, True, True]
    assert membership("authors", 0, [1, 2, 3, 0, 0]) == [True, False, False, False, False]
    # a point whose nearest other agrees: not in the talk's Γ¹; in the authors' Γ¹ (every point)
    assert membership("talk", 1, [1, 0, 0, 0]) == [False] * 4
    assert membership("authors", 1, [1, 0, 0, 0]) == [True, False, False, False]


def test_the_sets_are_nested_and_counts_are_their_sizes():
    x, y = clustered(500, 3, seed=4)
    others = y[without_self(nearest_neighbours(x, x, 32, device="cpu")[0])]
    for rule in lsv.RULES:
        member = lsv.lsv_membership(others, y, rule)
        assert member.shape == (31, 500)
        assert not (member[1:] & ~member[:-1]).any()  # Γᵏ ⊂ Γᵏ⁻¹
        counts = lsv.lsv_counts(others, y, rule)
        np.testing.assert_array_equal(counts, member.sum(1))
        assert counts[-1] > 0 and counts[-1] < counts[0]  # overlapping classes: some stay, many leave
    assert lsv.lsv_counts(others, y, "authors")[0] == 500


def test_a_bad_rule_or_k_is_named():
    with pytest.raises(ValueError, match="'talk'.*'authors'"):
        lsv.check_rule("majority")
    for k in (0, 32, 2.5, True):
        with pytest.raises(ValueError, match=r"k must be an integer in 1\.\.31"):
            lsv.check_k(k)


# -- against the authors' recipe: a k-NN classifier fitted and applied once per k --------------------------

def authors_recipe(x, y, k_max=31):
    """Γ¹ = all; Γᵏ = points of Γᵏ⁻¹ that KNeighborsClassifier(k), fitted on all of x, misclassifies."""
    member = np.ones(len(y), dtype=bool)
    counts = [len(y)]
    for k in range(2, k_max + 1):
        member &= KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x, y).predict(x) != y
        counts.append(int(member.sum()))
    return counts


def talk_recipe(x, y, k_max=31):
    """The talk's recursion on scikit-learn's neighbours of each point among the others."""
    others = y[NearestNeighbors(n_neighbors=k_max, algorithm="brute").fit(x).kneighbors(return_distance=False)]
    member = np.ones(len(y), dtype=bool)
    counts = []
    for k in range(1, k_max + 1):
        member &= (others[:, :k] != y[:, None]).sum(1) > k / 2
        counts.append(int(member.sum()))
    return counts


def lsv_both(x, y):
    others = y[without_self(nearest_neighbours(x, x, 32, device="cpu")[0])]
    return lsv.lsv_counts(others, y, "talk").tolist(), lsv.lsv_counts(others, y, "authors").tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_lsv_counts_equal_scikit_learns_on_random_features(seed):
    x, y = clustered(400, 5, classes=3 + seed, seed=seed)
    talk, authors = lsv_both(x, y)
    assert talk == talk_recipe(x, y)
    assert authors == authors_recipe(x, y)
    assert talk != authors  # the rules do differ here


def test_lsv_counts_and_1nn_equal_scikit_learns_on_real_cnn13_features():
    """The shipped ReLU CNN13's depth-7 and depth-13 features of the 300 shipped CIFAR-10 test images."""
    from explorer.analysis.layers import layer_features, load_cnn13, standardise
    from explorer.data.samples import shipped_test_images

    samples = shipped_test_images()
    run = load_cnn13("cnn13-44da76659d19")
    features = layer_features(run.build_model("cpu"), samples.images, "cpu")
    assert features.shape == (300, 12, 32)
    train, test = standardise(features[:200], features[200:])
    y_train, y_test = samples.labels[:200], samples.labels[200:]
    for depth in (7, 13):
        x = train[:, depth - 2].astype(np.float64)
        talk, authors = lsv_both(x, y_train)
        assert talk == talk_recipe(x, y_train)
        assert authors == authors_recipe(x, y_train)
        from explorer.analysis.layers import neighbour_measures

        measures = neighbour_measures(x, y_train, test[:, depth - 2].astype(np.float64), y_test, "cpu")
        expected = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(x, y_train).score(
            test[:, depth - 2], y_test)
        assert measures["nn1_accuracy"] == pytest.approx(expected)
        assert measures["lsv_talk"].tolist() == talk
