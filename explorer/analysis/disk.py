"""Geometry of the "scattering disk": path energies drawn in a Fourier-plane picture (pure numpy).

Angle = orientation θ, radius = scale. Each order-1 path (j, ℓ) is a wedge of a ring: the finest scale
j = 0 (highest frequency) is the OUTER ring, coarser scales are rings further in, so the picture reads
like the Fourier plane the wavelets tile. Orientation is defined mod π, so index ℓ fills the sector
centred at θ = ℓπ/L (width π/L) AND its mirror centred at θ + π, as a real image's spectrum does.
θ is measured counter-clockwise from the horizontal axis with the vertical axis pointing UP, as in
`explorer.scattering.filters`: polygons come out with x to the right and y up, so a plot with the usual
y-up axes shows a grating's energy at the grating's own orientation (its wave vector's angle).

Order 2 draws, for one chosen (j1, θ1), the children j2 > j1 the same way (the ring of j2 lies where the
order-1 ring of j2 would if the disk had only the scales j1+1 … J−1).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from explorer.scattering import scale_pairs, split_orders

from ._checks import check_int, check_output


@dataclass(frozen=True)
class Wedges:
    """Annular sectors, one entry per wedge, all arrays of shape (n,):
    r_inner, r_outer (radii), angle_start, angle_end (radians, counter-clockwise, y up; start < end),
    value (the energy drawn), scale (j of the ring: j1 at order 1, j2 at order 2), theta (angle index ℓ),
    mirror (False for the sector at ℓπ/L, True for its copy at ℓπ/L + π)."""

    r_inner: np.ndarray
    r_outer: np.ndarray
    angle_start: np.ndarray
    angle_end: np.ndarray
    value: np.ndarray
    scale: np.ndarray
    theta: np.ndarray
    mirror: np.ndarray

    def __len__(self) -> int:
        return len(self.value)

    @property
    def angle_centre(self) -> np.ndarray:
        return 0.5 * (self.angle_start + self.angle_end)

    def raster(self, n: int = 200, gap: float = 0.6) -> np.ndarray:
        """Which wedge covers each pixel of an n×n image of the disk: an int array (n, n), −1 outside
        every wedge and within `gap` pixels of a wedge's edge (drawn as thin separators). Row 0 is the
        TOP (y up), columns go left to right, the image spans [−R, R]² with R the outer radius. A
        raster redraws in ~1 ms where polygons take tens (the order-2 disk follows every slider move)."""
        return _raster(self.r_inner.tobytes(), self.r_outer.tobytes(), self.angle_start.tobytes(),
                       self.angle_end.tobytes(), int(n), float(gap))

    def polygons(self, n: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
        """One (x, y) vertex pair per wedge, from `wedge_polygon`."""
        return [wedge_polygon(*w, n=n) for w in zip(self.r_inner, self.r_outer,
                                                    self.angle_start, self.angle_end)]


@functools.lru_cache(maxsize=64)
def _raster(r0b: bytes, r1b: bytes, a0b: bytes, a1b: bytes, n: int, gap: float) -> np.ndarray:
    r0, r1, a0, a1 = (np.frombuffer(b) for b in (r0b, r1b, a0b, a1b))
    index = np.full((n, n), -1, dtype=np.int64)
    if len(r0) == 0:
        return index
    radius = float(r1.max())
    pixel = 2 * radius / n
    centres = (np.arange(n) + 0.5) * pixel - radius
    x, y = centres[None, :], centres[::-1, None]  # row 0 at the top: y up
    r = np.hypot(x, y)
    angle = np.arctan2(y, x) % (2 * np.pi)
    margin = gap * pixel
    for k in range(len(r0)):
        offset = (angle - a0[k]) % (2 * np.pi)  # angle measured from the wedge's start
        span = a1[k] - a0[k]
        inside = (r >= r0[k] + margin * (r0[k] > 0)) & (r < r1[k] - margin)
        inside &= (offset * r >= margin) & ((span - offset) * r >= margin) & (offset < span)
        index[inside] = k
    index.flags.writeable = False
    return index


def wedge_polygon(r0: float, r1: float, a0: float, a1: float, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (x, y) of the annular sector r0 ≤ r ≤ r1, a0 ≤ angle ≤ a1 (radians, counter-clockwise from
    +x, y pointing up): the outer arc from a0 to a1 (n points), then the inner arc back from a1 to a0
    (n points, or the single point (0, 0) when r0 = 0). Not closed (the first vertex is not repeated).
    Arrays of shape (2n,) or (n + 1,)."""
    n = check_int("n", n, 2)
    values = [float(v) for v in (r0, r1, a0, a1)]
    if not all(np.isfinite(values)):
        raise ValueError(f"wedge_polygon needs finite radii and angles, got {values}.")
    r0, r1, a0, a1 = values
    if not 0 <= r0 < r1:
        raise ValueError(f"radii must satisfy 0 ≤ r0 < r1, got r0={r0}, r1={r1}.")
    if not a0 < a1:
        raise ValueError(f"angles must satisfy a0 < a1 (radians), got a0={a0}, a1={a1}.")
    t = np.linspace(a0, a1, n)
    x, y = r1 * np.cos(t), r1 * np.sin(t)
    if r0 == 0:
        return np.append(x, 0.0), np.append(y, 0.0)
    return np.concatenate([x, r0 * np.cos(t[::-1])]), np.concatenate([y, r0 * np.sin(t[::-1])])


def _rings(energy, name: str) -> np.ndarray:
    if isinstance(energy, torch.Tensor):
        energy = energy.detach().cpu().numpy()
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 2 or min(energy.shape) < 1:
        raise ValueError(f"{name} must have shape (scales, L) with at least one scale and one angle, "
                         f"got shape {energy.shape}.")
    if not np.isfinite(energy).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return energy


def _wedges(energy: np.ndarray, scales: np.ndarray) -> Wedges:
    """Row k of `energy` (K, L) is drawn on the ring [K−1−k, K−k] (row 0 outermost), each ℓ twice."""
    K, L = energy.shape
    k, ell = np.meshgrid(np.arange(K), np.arange(L), indexing="ij")
    k, ell = np.tile(k.ravel(), 2), np.tile(ell.ravel(), 2)
    mirror = np.repeat([False, True], K * L)
    centre = ell * np.pi / L + np.where(mirror, np.pi, 0.0)
    half = np.pi / (2 * L)
    return Wedges(
        r_inner=(K - 1 - k).astype(np.float64),
        r_outer=(K - k).astype(np.float64),
        angle_start=centre - half,
        angle_end=centre + half,
        value=np.tile(energy.ravel(), 2),
        scale=scales[k],
        theta=ell,
        mirror=mirror,
    )


def order1_wedges(s1_energy) -> Wedges:
    """Wedges of the order-1 disk from energies (J, L) (entry [j, ℓ] for the path (j1 = j, θ1 = ℓπ/L)):
    2·J·L wedges; scale j on the ring [J−1−j, J−j] (j = 0 outermost), ℓ on the sectors centred at
    ℓπ/L and ℓπ/L + π, each π/L wide."""
    energy = _rings(s1_energy, "s1_energy")
    return _wedges(energy, np.arange(energy.shape[0]))


def order2_wedges(s2_energy_for_j1_theta1, j1: int = 0) -> Wedges:
    """Wedges of the order-2 disk of one parent (j1, θ1), from energies (K, L) with K = J − 1 − j1 rows,
    row k for the child scale j2 = j1 + 1 + k and column ℓ for θ2 = ℓπ/L (see `order2_energy`):
    2·K·L wedges, row 0 (the finest child) outermost, sectors as in `order1_wedges`. `j1` only labels
    the wedges' `scale` with j2."""
    energy = _rings(s2_energy_for_j1_theta1, "s2_energy_for_j1_theta1")
    j1 = check_int("j1", j1, 0)
    return _wedges(energy, j1 + 1 + np.arange(energy.shape[0]))


# -- energies from a scattering output -------------------------------------------------------------
def order1_energy(S, J: int, L: int = 8) -> np.ndarray:
    """Energies Σ_u S1(j1, θ1)(u)² of a scattering output `S` (..., P, h, w): (..., J, L)."""
    S, J, L, max_order = check_output(S, J, L)
    return (split_orders(S, J, L, max_order)[1] ** 2).sum(axis=(-2, -1))


def order2_energy(S, J: int, L: int, j1: int, theta1: int) -> np.ndarray:
    """Energies Σ_u S2(j1, θ1, j2, θ2)(u)² of the children j2 = j1+1 … J−1 of one parent (j1, θ1), from an
    order-2 output `S` (..., P, h, w): (..., J − 1 − j1, L), row k for j2 = j1 + 1 + k."""
    S, J, L, max_order = check_output(S, J, L)
    if max_order < 2:
        raise ValueError("S holds order 0 and 1 only: compute it with max_order=2 for order-2 energies.")
    j1 = check_int("j1", j1, 0, J - 2)
    theta1 = check_int("theta1", theta1, 0, L - 1)
    s2 = split_orders(S, J, L, 2)[2]  # (..., pairs, L, L, h, w)
    rows = [scale_pairs(J).index((j1, j2)) for j2 in range(j1 + 1, J)]
    return (s2[..., rows, theta1, :, :, :] ** 2).sum(axis=(-2, -1))
