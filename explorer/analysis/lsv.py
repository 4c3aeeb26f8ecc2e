"""k-Local Support Vectors (science.md §3): the training points that stay badly classified by their
neighbours as the neighbourhood grows. Both rules read one search of the training points' neighbours.

``talk`` (the default; the seed talk's recursive form). With x⁽ˡ⁾ the l-th nearest *other* training
point, Γ¹ = {x : y(x⁽¹⁾) ≠ y(x)} and Γᵏ = {x ∈ Γᵏ⁻¹ : #{l ≤ k : y(x⁽ˡ⁾) ≠ y(x)} > k/2}: more than half of
the k nearest others disagree with the label, whichever classes they vote for.

``authors`` (the authors' code): a k-NN classifier fitted on all training points and applied to them,
so each point is its own first neighbour; uniform vote over the k neighbours, a tie going to the
smallest class index (scikit-learn's). Γ¹ = all points (the point's own vote decides) and Γᵏ = the
points of Γᵏ⁻¹ that the k-NN classifier misclassifies.

Where they differ, for a point of class 2 whose nearest others have the classes 1, 1, 2, 2, 2, …:
- talk: 1 of 1, 2 of 2, 2 of 3 disagree, then 2 of 4 (not more than half): in Γ¹, Γ², Γ³, not in Γ⁴;
- authors: at k = 4 the votes (its own 2; 1, 1, 2) tie 2–2 and the tie goes to class 1: misclassified,
  so it is in Γ¹ … Γ⁴ and leaves at Γ⁵ (votes 2, 1, 1, 2, 2).
And a point of class 0 whose others are 1, 2, 3, 0, …: talk, in Γ¹ … Γ⁴ (3 of 4 disagree); authors,
out at Γ² (its own vote and a 1 tie, the tie goes to class 0). The talk's rule counts disagreement,
the authors' asks which class wins.
`tests/test_lsv.py` checks these cases by hand.
"""
from __future__ import annotations

import numpy as np

RULES = ("talk", "authors")
DEFAULT_RULE = "talk"
K_MAX = 31  # |Γᵏ| for k = 1..31: 32 neighbours per point with itself


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"the LSV rule is 'talk' (the default: more than k/2 of the k nearest other points "
                         f"disagree) or 'authors' (a k-NN classifier counting each point as its own first "
                         f"neighbour), got {rule!r}.")
    return rule


def check_k(k, k_max: int = K_MAX) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= k_max:
        raise ValueError(f"k must be an integer in 1..{k_max}, got {k!r}.")
    return int(k)


def _check(other_labels, labels) -> tuple[np.ndarray, np.ndarray]:
    other_labels, labels = np.asarray(other_labels), np.asarray(labels)
    if labels.ndim != 1 or other_labels.ndim != 2 or len(other_labels) != len(labels):
        raise ValueError(f"other_labels must be (N, k) for labels (N,), got {other_labels.shape} and "
                         f"{labels.shape}.")
    if not (np.issubdtype(labels.dtype, np.integer) and np.issubdtype(other_labels.dtype, np.integer)):
        raise ValueError("labels must be integers.")
    return other_labels, labels


def lsv_membership(other_labels, labels, rule: str = DEFAULT_RULE, k_max: int | None = None) -> np.ndarray:
    """(k_max, N) booleans: row k − 1 says which points are in Γᵏ, k = 1..k_max.

    ``other_labels`` (N, ≥ k_max): the labels of each point's nearest *other* points, nearest first
    (the rows of `explorer.analysis.neighbours.without_self`, as labels). The sets are nested."""
    other_labels, labels = _check(other_labels, labels)
    check_rule(rule)
    k_max = other_labels.shape[1] if k_max is None else check_k(k_max, other_labels.shape[1])
    if rule == "talk":
        disagree = np.cumsum(other_labels[:, :k_max] != labels[:, None], axis=1)  # (N, k_max)
        ks = np.arange(1, k_max + 1)
        wrong = (2 * disagree > ks).T  # more than k/2 of the k nearest others disagree
    else:
        classes = int(max(labels.max(), other_labels[:, :k_max].max())) + 1
        votes = np.zeros((len(labels), classes), dtype=np.int64)
        rows = np.arange(len(labels))
        votes[rows, labels] += 1  # the point's own vote: its first neighbour
        wrong = np.zeros((k_max, len(labels)), dtype=bool)
        for k in range(2, k_max + 1):
            votes[rows, other_labels[:, k - 2]] += 1
            wrong[k - 1] = votes.argmax(1) != labels  # argmax: the smallest class among the tied
    return np.logical_and.accumulate(wrong, axis=0) if rule == "talk" else _nested_from_all(wrong)


def _nested_from_all(wrong: np.ndarray) -> np.ndarray:
    wrong = wrong.copy()
    wrong[0] = True  # Γ¹: every point (its own vote classifies it)
    return np.logical_and.accumulate(wrong, axis=0)


def lsv_counts(other_labels, labels, rule: str = DEFAULT_RULE, k_max: int | None = None) -> np.ndarray:
    """|Γᵏ| for k = 1..k_max (int64), by `lsv_membership`."""
    return lsv_membership(other_labels, labels, rule, k_max).sum(1).astype(np.int64)
