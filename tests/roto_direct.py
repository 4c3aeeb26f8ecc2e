"""A slow, direct float64 roto-translation scattering: the reference `RotoScattering2D` is checked against
(tests/test_roto.py) and timed against (benchmarks/roto.py).

It shares only the spatial Morlet filters with the engine (those are checked against Kymatio elsewhere).
Everything else is written out the plain way, one path at a time: numpy's reflect padding, each
convolution as a full FFT product on the grid of its resolution followed by explicit decimation in space
(the engine instead sums aliased spectral blocks), the angular filters sampled from their formula over
many periods (the engine folds a truncated window), the angular convolution as an explicit sum over θ1
(the engine: one planar matrix product), and the average by φ_J as an FFT product then decimation (the
engine: two separable matrix products).
"""
from __future__ import annotations

import math

import numpy as np

from explorer.scattering.filters import crop_spectrum, filter_bank, kymatio_angle, morlet_2d, padded_shape


def spatial_wavelets(M, N, J, L, Q):
    """ψ̂ (J·Q, L, M, N) and φ̂ (M, N): Morlets at the scales 2^(a/Q), in Fourier."""
    psi = np.empty((J * Q, L, M, N))
    for a in range(J * Q):
        s = 2.0 ** (a / Q)
        psi[a] = np.fft.fft2(morlet_2d(M, N, 0.8 * s, kymatio_angle(np.arange(L), L), 0.75 * np.pi / s, 4 / L)).real
    return psi, filter_bank(M, N, J, L).phi_hat


def angular_filter_values(L, K, periods=200):
    """[(k, spin, h)] with h (L,) complex: the low-pass (summing to 1), then ψ̄_k and its conjugate, from
    g(t) = exp(−t²/2σ²)/(√(2π)σ) summed over t + pL for |p| ≤ periods."""
    t = np.arange(L)[:, None] + L * np.arange(-periods, periods + 1)[None, :]

    def gauss(sigma):
        return np.exp(-t * t / (2 * sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma)

    low = gauss(0.8 * 2 ** (K - 1)).sum(1)
    out = [(None, 0, (low / low.sum()).astype(complex))]
    for k in range(K):
        sigma, xi = 0.8 * 2**k, 0.75 * np.pi / 2**k
        g = gauss(sigma)
        gabor, envelope = (g * np.exp(1j * xi * t)).sum(1), g.sum(1)
        psi = gabor - gabor.sum() / envelope.sum() * envelope
        out += [(k, 1, psi), (k, -1, psi.conj())]
    return out


def circular(u, filter_hat):
    return np.fft.ifft2(np.fft.fft2(u) * filter_hat)


def roto_scattering_direct(x, J, L=8, Q=1, K=2):
    """x (H, W) → {path record tuple: map (H', W')}, float64, every path computed on its own."""
    x = np.asarray(x, dtype=np.float64)
    H, W = x.shape
    M, N = padded_shape((H, W), J)
    top, left = (M - H) // 2, (N - W) // 2
    padded = np.pad(x, ((top, M - H - top), (left, N - W - left)), mode="reflect")
    psi, phi = spatial_wavelets(M, N, J, L, Q)
    res = [a // Q for a in range(J * Q)]

    def average(u, r):  # u real at resolution r → (H', W')
        k = 2 ** (J - r)
        return circular(u, crop_spectrum(phi, r)).real[::k, ::k][1:-1, 1:-1]

    out = {(0,): average(padded, 0)}
    first = {}
    for a in range(J * Q):
        k = 2 ** res[a]
        for t1 in range(L):
            first[a, t1] = np.abs(circular(padded, psi[a, t1]))[::k, ::k]
            out[(1, a, t1)] = average(first[a, t1], res[a])
    angular = angular_filter_values(L, K)
    for a in range(J * Q):
        for b in range(a + Q, J * Q):
            k = 2 ** (res[b] - res[a])
            small = crop_spectrum(psi[b], res[a])
            for t2 in range(L):
                z = [circular(first[a, t1], small[t2])[::k, ::k] for t1 in range(L)]
                for kk, spin, h in angular:
                    for t1 in range(L):
                        mixed = sum(z[t] * h[(t1 - t) % L] for t in range(L))
                        out[(2, a, t1, b, t2, kk, spin)] = average(np.abs(mixed), res[b])
    return out
