"""Balanced training subsets for the small-sample experiments (science.md §4, P3)."""

from __future__ import annotations

import numpy as np


def balanced_subset_indices(labels, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` training samples, ``n / num_classes`` per class, as in the authors' code.

    Within each class c, the class's indices in dataset order are permuted by
    ``np.random.RandomState(seed).permutation(len(class))`` (a fresh generator per class, so with equal
    class sizes every class uses the same permutation, as the authors' single permutation of 5000 does)
    and the first ``n // num_classes`` are kept. The number of classes is ``labels.max() + 1``.

    Returns the indices sorted in dataset order (int64, shape (n,)).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty 1-D integer array, got shape {labels.shape} {labels.dtype}"
        )
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    num_classes = int(labels.max()) + 1
    if not isinstance(n, (int, np.integer)) or n <= 0 or n % num_classes:
        raise ValueError(f"n must be a positive multiple of the number of classes ({num_classes}), got {n!r}")
    per_class = n // num_classes
    picked = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if per_class > len(members):
            raise ValueError(
                f"n={n} asks for {per_class} samples of class {c}, which has only {len(members)}"
            )
        picked.append(members[np.random.RandomState(seed).permutation(len(members))[:per_class]])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def balanced_limit_indices(labels, limit: int) -> np.ndarray:
    """Indices of ``limit`` samples spread evenly over the classes present in ``labels``.

    A plain prefix is not enough: some copies of CIFAR-10's test split are sorted by class, so its first
    1000 images are all one class. The classes take turns in the order of their labels (0, 1, 2, ...), each
    giving its next sample in dataset order, until ``limit`` samples are taken. So every class gets
    ``limit // k`` samples and, when ``limit`` is not a multiple of the number of classes ``k``, the
    ``limit % k`` lowest labels get one more; a class with too few samples gives all it has and the others
    fill in. Deterministic (no random draw). Returns the indices sorted in dataset order (int64).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} {labels.dtype}")
    if not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if limit > len(labels):
        raise ValueError(f"limit of {limit} samples, but the split has only {len(labels)}")
    order = np.argsort(labels, kind="stable")  # grouped by class, dataset order within a class
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - starts  # position of each sample within its class
    # Take turns: every class's 1st sample, then every class's 2nd, ...; lower labels first in a turn.
    turns = np.lexsort((sorted_labels, rank))
    return np.sort(order[turns[:limit]]).astype(np.int64)
