"""Periodic 1-D wavelets along the angle θ1, for the roto-translation scattering (science.md §2).

The first layer |x ⋆ ψ_{j1,θ1}| of a real image is π-periodic in θ1 (|x ⋆ ψ_{θ+π}| = |x ⋆ ψ_θ|), so its L
angles θ1 = ℓπ/L are one period of a periodic signal of L samples. The second layer filters that signal with:

- an angular low-pass φ̄ (a periodised Gaussian of width σ0·2^(K−1) samples, summing to 1);
- angular Morlet wavelets ψ̄_k at the scales 2^k, k = 0..K−1 (width σ0·2^k, centre frequency ξ0/2^k radians
  per sample, zero mean over the period), each with spin +1 (ψ̄_k) and spin −1 (its conjugate, the same
  wavelet turning the other way along θ1). Filtering z with conj ψ̄_k and taking the modulus is filtering
  conj(z) with ψ̄_k: the paper's "on z and on conj(z)", or equivalently θ2 over [0, 2π).

σ0 = 0.8 and ξ0 = 3π/4 are the spatial Morlets' constants (filters.py), so an angular scale means what a
spatial scale means. A wavelet of scale 2^k needs 2^k < L samples and the low-pass 2^K ≤ L: K ≤ log2 L.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .validation import ParameterError

SIGMA0 = 0.8
XI0 = 3 * np.pi / 4
_HALF_WIDTH_SD = 9.0  # the Gaussian is below 1e-17 of its peak beyond this many widths


class AngularFilter(NamedTuple):
    """One filter along θ1: k is the angular scale index (None for the low-pass), spin +1, −1 (0: low-pass)."""
    k: int | None
    spin: int


def angular_filters(K: int) -> list[AngularFilter]:
    """The filters' order in the output: the low-pass, then (k, +1), (k, −1) for k = 0..K−1."""
    return [AngularFilter(None, 0)] + [AngularFilter(k, s) for k in range(K) for s in (1, -1)]


def max_angular_scales(L: int) -> int:
    """The largest K for L angles: 2^K ≤ L."""
    return math.floor(math.log2(L)) if L >= 2 else 0


def check_angular(L, K) -> tuple[int, int]:
    """(L, K) as ints, or ParameterError naming the limit."""
    for name, value in (("L", L), ("angular_scales", K)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be an integer ≥ 1, got {value!r}.")
    if L < 2:
        raise ParameterError(f"L={L}: the angular wavelets need at least 2 angles along θ1; use L ≥ 2 (8 is usual).")
    top = max_angular_scales(int(L))
    if K > top:
        raise ParameterError(
            f"angular_scales={K} is more than L={L} angles allow: the angular low-pass of scale 2^K must fit "
            f"in the L samples of θ1 (2^K ≤ L), so use angular_scales ≤ {top}, or more angles "
            f"(L ≥ {2 ** int(K)}).")
    return int(L), int(K)


def periodic_gaussian(L: int, sigma: float, xi: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """exp(−t²/2σ²)·e^{iξt} / (√(2π)σ) and its envelope alone, sampled at t ∈ ℤ and folded onto 0..L−1
    (the sum of all the copies t + pL): two arrays of L values (complex, real)."""
    half = math.ceil(_HALF_WIDTH_SD * sigma) + L
    t = np.arange(-half, half + 1, dtype=np.float64)
    envelope = np.exp(-t * t / (2 * sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma)
    residue = np.mod(t, L).astype(np.int64)
    folded_envelope = np.bincount(residue, weights=envelope, minlength=L)
    wave = envelope * np.exp(1j * xi * t)
    folded = (np.bincount(residue, weights=wave.real, minlength=L)
              + 1j * np.bincount(residue, weights=wave.imag, minlength=L))
    return folded, folded_envelope


def periodic_morlet(L: int, sigma: float, xi: float) -> np.ndarray:
    """g·(e^{iξt} − β) folded on L samples, β making the sum over the period zero: complex (L,)."""
    gabor, envelope = periodic_gaussian(L, sigma, xi)
    return gabor - (gabor.sum() / envelope.sum()) * envelope


@dataclass(frozen=True)
class AngularBank:
    """The filters along θ1 in the sample domain: `filters[a, t]` is filter a at t·π/L (complex128,
    (A, L), A = 1 + 2K), in the order of `records` (see `angular_filters`)."""
    L: int
    K: int
    filters: np.ndarray
    records: tuple[AngularFilter, ...]

    @property
    def in_fourier(self) -> np.ndarray:
        """DFT along θ1: (A, L); bin ω is the angular frequency ω (cycles per π)."""
        return np.fft.fft(self.filters, axis=-1)

    def convolution_matrix(self) -> np.ndarray:
        """(A·L, L): row (a, θ) holds filter a shifted to θ, so that M @ z is the circular convolution
        (z ⋆ h_a)(θ) = Σ_t z(t) h_a(θ − t mod L) for every filter a and angle θ."""
        L = self.L
        shifts = (np.arange(L)[:, None] - np.arange(L)[None, :]) % L  # θ − t
        return self.filters[:, shifts].reshape(-1, L)

    def littlewood_paley(self) -> np.ndarray:
        """Σ_a |ĥ_a(ω)|² per angular frequency (L,): how much of each frequency the bank keeps (the
        spins ± cover ±ω, so no ½ here)."""
        return (np.abs(self.in_fourier) ** 2).sum(0)


@functools.lru_cache(maxsize=16)
def angular_bank(L: int = 8, K: int = 2) -> AngularBank:
    """The angular low-pass and the K angular Morlet scales, each with spins ±1, on L samples of θ1."""
    L, K = check_angular(L, K)
    low, _ = periodic_gaussian(L, SIGMA0 * 2 ** (K - 1))
    rows = [low.real / low.real.sum()]
    for k in range(K):
        wavelet = periodic_morlet(L, SIGMA0 * 2**k, XI0 / 2**k)
        rows += [wavelet, wavelet.conj()]
    filters = np.array(rows, dtype=np.complex128)
    filters.flags.writeable = False
    return AngularBank(L, K, filters, tuple(angular_filters(K)))
