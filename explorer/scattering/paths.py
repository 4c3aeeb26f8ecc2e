"""Path metadata: one record per output channel, and structured views with angles as axes.

Channel order of a `Scattering2D` output (per input channel):
  0                      S0
  1 .. J·L               S1, ordered by (j1, θ1)
  then                   S2, ordered by (pair (j1 < j2) in lexicographic order, θ1, θ2)
so that S1 reshapes to (J, L) and S2 to (J(J−1)/2, L, L) without copies. Angle indices follow
the convention documented in `explorer.scattering.filters` (θ = ℓπ/L, counter-clockwise from
the horizontal axis, vertical axis pointing up).
"""
from __future__ import annotations

from itertools import combinations
from typing import NamedTuple, Optional

import numpy as np


class Path(NamedTuple):
    order: int
    j1: Optional[int] = None
    theta1: Optional[int] = None
    j2: Optional[int] = None
    theta2: Optional[int] = None


def scale_pairs(J: int) -> list[tuple[int, int]]:
    """The progressive scale pairs (j1, j2), j1 < j2, in output order."""
    return list(combinations(range(J), 2))


def scattering_paths(J: int, L: int, max_order: int = 2) -> list[Path]:
    paths = [Path(0)]
    paths += [Path(1, j1, t1) for j1 in range(J) for t1 in range(L)]
    if max_order >= 2:
        paths += [Path(2, j1, t1, j2, t2) for j1, j2 in scale_pairs(J)
                  for t1 in range(L) for t2 in range(L)]
    return paths


def n_paths(J: int, L: int, max_order: int = 2) -> int:
    """1 + J·L + L²·J(J−1)/2 for order 2 (81, 217, 417 for J = 2, 3, 4 and L = 8)."""
    return 1 + J * L + (L * L * J * (J - 1) // 2 if max_order >= 2 else 0)


def select(paths: list[Path], **fields) -> np.ndarray:
    """Indices of the paths whose fields equal the given values, e.g. select(p, order=1, j1=0)."""
    unknown = set(fields) - set(Path._fields)
    if unknown:
        raise ValueError(f"unknown path field(s) {sorted(unknown)}; fields are {Path._fields}.")
    return np.array([i for i, p in enumerate(paths)
                     if all(getattr(p, k) == v for k, v in fields.items())], dtype=np.int64)


def split_orders(S, J: int, L: int, max_order: int = 2):
    """Structured views of an output (..., P, h, w): S0 (..., h, w), S1 (..., J, L, h, w) and,
    for order 2, S2 (..., J(J−1)/2, L, L, h, w) (pair axis ordered as `scale_pairs(J)`).
    Works on torch tensors and numpy arrays; returns views, not copies."""
    expected = n_paths(J, L, max_order)
    if S.shape[-3] != expected:
        raise ValueError(f"expected {expected} paths on axis −3 for J={J}, L={L}, "
                         f"max_order={max_order}, got shape {tuple(S.shape)}.")
    lead, (h, w) = tuple(S.shape[:-3]), tuple(S.shape[-2:])
    s0 = S[..., 0, :, :]
    s1 = S[..., 1:1 + J * L, :, :].reshape(lead + (J, L, h, w))
    if max_order < 2:
        return s0, s1
    s2 = S[..., 1 + J * L:, :, :].reshape(lead + (J * (J - 1) // 2, L, L, h, w))
    return s0, s1, s2
