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
