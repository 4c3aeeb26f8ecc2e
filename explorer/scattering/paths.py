"""Path metadata: one record per output channel (selection, per-order views and the moves of
channels under rotations and mirrors are in `channels`).

Channel order of a `Scattering2D` output (per input channel):
  0                      S0
  1 .. J·L               S1, ordered by (j1, θ1)
  then                   S2, ordered by (pair (j1 < j2) in lexicographic order, θ1, θ2)
so that S1 reshapes to (J, L) and S2 to (J(J−1)/2, L, L) without copies (`channels.split_orders`).
Angle indices follow the convention documented in `explorer.scattering.filters` (θ = ℓπ/L,
counter-clockwise from the horizontal axis, vertical axis pointing up).
"""
from __future__ import annotations

from itertools import combinations
from typing import NamedTuple


class Path(NamedTuple):
    order: int
    j1: int | None = None
    theta1: int | None = None
    j2: int | None = None
    theta2: int | None = None


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


def max_order_of(count: int, J: int, L: int) -> int:
    """The max_order (1 or 2) of an output with `count` paths for (J, L); ValueError when neither fits."""
    for max_order in (1, 2):
        if count == n_paths(J, L, max_order):
            return max_order
    raise ValueError(f"S has {count} paths on axis −3, which matches neither order 1 ({n_paths(J, L, 1)}) "
                     f"nor order 2 ({n_paths(J, L, 2)}) for J={J}, L={L}.")
