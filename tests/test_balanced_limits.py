"""`limit_train`/`limit_test` take class-balanced samples, not a prefix (issue 11: a prefix of 1000 of a
CIFAR-10 test split sorted by class is one class)."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.data.subsets import balanced_limit_indices
from explorer.training.data import Split, select


def test_a_split_sorted_by_class_gives_every_class_its_share():
    labels = np.repeat(np.arange(10), 1000)  # sorted by class, as in some copies of CIFAR-10's test split
    index = balanced_limit_indices(labels, 1000)
    assert np.bincount(labels[index], minlength=10).tolist() == [100] * 10
    assert index.dtype == np.int64 and np.all(np.diff(index) > 0)  # dataset order, no repeats
    np.testing.assert_array_equal(index, balanced_limit_indices(labels, 1000))  # deterministic
    # Each class gives its first samples in dataset order.
    np.testing.assert_array_equal(index[:100], np.arange(100))
    np.testing.assert_array_equal(index[-100:], np.arange(9000, 9100))


def test_a_limit_not_divisible_by_the_classes_gives_the_remainder_to_the_lowest_labels():
    labels = np.repeat(np.arange(10), 1000)
    counts = np.bincount(labels[balanced_limit_indices(labels, 1005)], minlength=10)
    assert counts.tolist() == [101] * 5 + [100] * 5  # floor(1005/10) each, the 5 left to labels 0-4
    # A class with too few samples gives all it has; the others fill in.
    small = np.array([2, 0, 0, 0, 0, 1, 2, 0])
    assert balanced_limit_indices(small, 5).tolist() == [0, 1, 2, 5, 6]
    assert np.bincount(small[balanced_limit_indices(small, 7)]).tolist() == [4, 1, 2]  # all but one


def test_select_balances_the_limit_and_keeps_the_whole_split_untouched():
    y = np.repeat(np.arange(10), 50)
    x = np.arange(len(y))[:, None] * np.ones((1, 3))
    chosen = select(Split(x, y), None, 100)
    assert np.bincount(chosen.y, minlength=10).tolist() == [10] * 10
    np.testing.assert_array_equal(chosen.x[:, 0], np.flatnonzero(np.isin(np.arange(500) % 50, range(10))))
    whole = select(Split(x, y), None, len(y))
    assert whole.x is x  # no copy: a memory map stays a memory map
    subset = select(Split(x, y), {"n": 200, "seed": 1}, 50)  # the subset first, then the limit
    assert np.bincount(subset.y, minlength=10).tolist() == [5] * 10
    alternating = np.arange(500) % 10  # a prefix already balanced stays a view
    prefix = select(Split(x, alternating), None, 100)
    assert np.shares_memory(prefix.x, x) and np.bincount(prefix.y).tolist() == [10] * 10
    with pytest.raises(ValueError, match="has only 500"):
        select(Split(x, y), None, 501)
