"""Morlet filter bank, built in space, periodised and stored in Fourier (science.md §1).

The construction follows ScatNet/Kymatio so that outputs can be compared path by path, but it
is vectorised over all angles of a scale: Kymatio's Python loops take seconds at 224×224,
this takes milliseconds, so the dashboards can rebuild the bank on every slider move.

Orientation convention (used everywhere in the explorer): angle index ℓ ∈ {0..L−1} means the
angle θ = ℓπ/L of the wavelet's *wave vector* (the direction along which it oscillates),
measured counter-clockwise from the image's horizontal axis pointing right, with the vertical
axis pointing *up* (towards decreasing row index). So ℓ = 0 oscillates along rows (it responds
to vertical stripes and edges) and ℓ = L/2 oscillates along columns (horizontal stripes).
An oriented grating whose wave vector has angle α puts its energy at θ ≈ α (mod π).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .validation import ParameterError, check_J_L

# ScatNet's and Kymatio's Gaussian normalisation uses 3.1415, not π; keeping it lets the
# outputs match Kymatio to 1e-5 (with π every order would differ by a factor 1.00003^order).
_KYMATIO_PI = 3.1415
# Half-width, in standard deviations, beyond which the Gaussian envelope is below 1e-17.
_ENVELOPE_HALF_WIDTH_SD = 9.0


def padded_shape(shape: tuple[int, int], J: int) -> tuple[int, int]:
    """Size of the padded grid on which the filters live (Kymatio's rule: a multiple of 2^J
    with at least 2^J − 1 pixels of reflected border)."""
    step = 2**J
    return tuple(((n + step) // step + 1) * step for n in shape)


def _fold(values: np.ndarray, start: int, period: int, axis: int) -> np.ndarray:
    """Periodise `values`, sampled at coordinates start, start+1, … along `axis`, onto
    0..period−1 (sum of all copies that land on the same residue)."""
    n = values.shape[axis]
    shape = list(values.shape)
    shape[axis] = period
    out = np.zeros(shape, values.dtype)
    index = [slice(None)] * values.ndim
    dest = [slice(None)] * values.ndim
    for p in range(start // period, -(-(start + n) // period)):
        lo, hi = max(p * period, start), min((p + 1) * period, start + n)
        index[axis] = slice(lo - start, hi - start)
        dest[axis] = slice(lo - p * period, hi - p * period)
        out[tuple(dest)] += values[tuple(index)]
    return out


def gabor_2d(M: int, N: int, sigma: float, angles: np.ndarray, xi: float, slant: float,
             with_envelope: bool = False):
    """Periodised Gabor filters on an M×N grid for each angle of `angles` (Kymatio's angle
    convention: the wave vector is (cos a, sin a) in (row, column) coordinates).

    Returns complex128 of shape (len(angles), M, N); with `with_envelope`, also the real
    periodised envelopes (the ξ = 0 Gabor filters) of the same shape.
    """
    angles = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    cos, sin = np.cos(angles), np.sin(angles)
    # Quadratic form R diag(1, slant²) R⁻¹ / (2σ²), one 2×2 matrix per angle.
    s2 = slant * slant
    c00 = (cos * cos + s2 * sin * sin) / (2 * sigma**2)
    c11 = (sin * sin + s2 * cos * cos) / (2 * sigma**2)
    c01 = (cos * sin * (1 - s2)) / (2 * sigma**2)
    # Evaluate only where the envelope is not negligible, within Kymatio's 5-period window.
    half = math.ceil(_ENVELOPE_HALF_WIDTH_SD * sigma / min(slant, 1.0))
    x0, x1 = max(-2 * M, -half), min(3 * M, M + half)
    y0, y1 = max(-2 * N, -half), min(3 * N, N + half)
    # torch's vectorised, multi-threaded exp is several times faster than numpy's here.
    x = torch.arange(x0, x1, dtype=torch.float64)[None, :, None]
    y = torch.arange(y0, y1, dtype=torch.float64)[None, None, :]
    a, b, c = (torch.from_numpy(v)[:, None, None] for v in (c00, c01, c11))
    quadratic = (-a * x * x) + (-c * y * y)
    quadratic.sub_((2 * b * x) * y)
    envelope = quadratic.exp_()
    cos_t = torch.from_numpy(cos)[:, None, None]
    sin_t = torch.from_numpy(sin)[:, None, None]
    wave = torch.polar(torch.ones((), dtype=torch.float64), xi * cos_t * x) * torch.polar(torch.ones((), dtype=torch.float64), xi * sin_t * y)
    norm = 2 * _KYMATIO_PI * sigma * sigma / slant
    gabor = _fold(_fold((envelope * wave).numpy(), x0, M, 1), y0, N, 2) / norm
    if not with_envelope:
        return gabor
    envelope = _fold(_fold(envelope.numpy(), x0, M, 1), y0, N, 2) / norm
    return gabor, envelope


def morlet_2d(M: int, N: int, sigma: float, angles: np.ndarray, xi: float, slant: float):
    """Morlet wavelets ψ = g·(e^{iξ·u} − β), β making each filter zero-mean; (L, M, N)."""
    gabor, envelope = gabor_2d(M, N, sigma, angles, xi, slant, with_envelope=True)
    beta = gabor.sum(axis=(1, 2)) / envelope.sum(axis=(1, 2))
    return gabor - beta[:, None, None] * envelope


def crop_spectrum(filter_hat: np.ndarray, res: int) -> np.ndarray:
    """The filter at resolution 2^-res: the low-frequency block of its spectrum, of size
    (M/2^res, N/2^res), assuming the filter is compactly supported there (as Kymatio does).

    Our wavelets are Kymatio's mirrored in frequency (ψ̂_ours(ω) = ψ̂_kymatio(−ω), same
    |x ⋆ ψ| for real x), so the small grid's Nyquist bin is taken from the positive side;
    Kymatio takes it from the negative side of its own filters. Both give identical outputs.
    """
    *_, M, N = filter_hat.shape

    def keep(n: int) -> np.ndarray:
        small = n // 2**res
        back = int(n * 2.0 ** (-res - 1)) - 1  # Kymatio's rounding when 2^(res+1) ∤ n
        return np.r_[0:small - back, n - back:n]

    return filter_hat[..., keep(M), :][..., keep(N)]


def kymatio_angle(ell: np.ndarray | int, L: int):
    """Kymatio's construction angle for our angle index ℓ: our wave vector (−sin θ, cos θ) in
    (row, column) coordinates is Kymatio's (cos a, sin a) with a = θ + π/2."""
    return np.asarray(ell, dtype=np.float64) * np.pi / L + np.pi / 2


@dataclass(frozen=True)
class FilterBank:
    """Filters in Fourier on the padded M×N grid (real: the imaginary parts of the DFT of the
    periodised Morlets are below 1e-7 and dropped, as in Kymatio).

    phi_hat: (M, N); psi_hat: (J, L, M, N), psi_hat[j, ℓ] is ψ_{j, ℓπ/L}.
    """

    J: int
    L: int
    M: int
    N: int
    sigma0: float
    xi0: float
    slant: float
    normalized: bool
    phi_hat: np.ndarray
    psi_hat: np.ndarray
    scale: float  # factor applied to every filter (1/√max A when normalized, else 1)

    @property
    def angles(self) -> np.ndarray:
        return np.arange(self.L) * np.pi / self.L

    def littlewood_paley(self) -> np.ndarray:
        """A(ω) = |φ̂(ω)|² + ½ Σ_{j,θ} (|ψ̂_{j,θ}(ω)|² + |ψ̂_{j,θ}(−ω)|²), on the M×N grid."""
        return littlewood_paley(self.phi_hat, self.psi_hat)

    @property
    def lp_max(self) -> float:
        return float(self.littlewood_paley().max())

    def phi_at(self, res: int) -> np.ndarray:
        return crop_spectrum(self.phi_hat, res)

    def psi_at(self, j: int, res: int) -> np.ndarray:
        return crop_spectrum(self.psi_hat[j], res)

    def in_space(self) -> tuple[np.ndarray, np.ndarray]:
        """(φ, ψ) in space, centred (fftshift) for display: (M, N) real and (J, L, M, N) complex."""
        phi = np.fft.fftshift(np.fft.ifft2(self.phi_hat).real)
        psi = np.fft.fftshift(np.fft.ifft2(self.psi_hat), axes=(-2, -1))
        return phi, psi


def littlewood_paley(phi_hat: np.ndarray, psi_hat: np.ndarray) -> np.ndarray:
    flipped = np.roll(np.flip(psi_hat, axis=(-2, -1)), shift=(1, 1), axis=(-2, -1))  # ψ̂(−ω)
    band = 0.5 * (np.abs(psi_hat) ** 2 + np.abs(flipped) ** 2).reshape(-1, *phi_hat.shape).sum(0)
    return np.abs(phi_hat) ** 2 + band


def _validate(J, L, M, N, sigma0, xi0, slant):
    check_J_L(J, L)
    if L > 64:
        raise ParameterError(f"L={L} angles is absurd (each adds L filters per scale); use L ≤ 64.")
    if J > 12:
        raise ParameterError(f"J={J} needs images of at least 2^{J} = {2**J} pixels; use J ≤ 12.")
    if M < 2**J or N < 2**J:
        raise ParameterError(f"the grid {M}×{N} is smaller than 2^J = {2**J}: lower J.")
    for name, value in (("sigma0", sigma0), ("xi0", xi0), ("slant", slant)):
        if not (np.isfinite(value) and value > 0):
            raise ParameterError(f"{name} must be a positive finite number, got {value!r}.")


@functools.lru_cache(maxsize=32)
def _cached_bank(M, N, J, L, sigma0, xi0, slant, normalize) -> FilterBank:
    psi = np.empty((J, L, M, N))
    ells = np.arange(L)
    for j in range(J):
        space = morlet_2d(M, N, sigma0 * 2**j, kymatio_angle(ells, L), xi0 / 2**j, slant)
        psi[j] = np.fft.fft2(space).real
    phi_space = gabor_2d(M, N, sigma0 * 2 ** (J - 1), np.zeros(1), 0.0, 1.0)[0]
    phi = np.fft.fft2(phi_space).real
    scale = 1.0
    if normalize:
        scale = 1.0 / math.sqrt(float(littlewood_paley(phi, psi).max()))
        phi, psi = phi * scale, psi * scale
    phi.flags.writeable = False
    psi.flags.writeable = False
    return FilterBank(J, L, M, N, sigma0, xi0, slant, normalize, phi, psi, scale)


def clear_filter_cache() -> None:
    """Forget every cached bank (a benchmark times the construction itself)."""
    _cached_bank.cache_clear()


def filter_bank(M: int, N: int, J: int, L: int = 8, *, sigma0: float = 0.8,
                xi0: float = 3 * np.pi / 4, slant: float | None = None,
                normalize: bool = False) -> FilterBank:
    """Morlet bank on an M×N grid (use `padded_shape` for a scattering's grid); cached.

    ψ_{j,θ} has envelope width σ0·2^j, slant (default 4/L) and centre frequency ξ0/2^j;
    φ_J is a Gaussian of width σ0·2^(J−1). With `normalize`, every filter is divided by
    √max A so that the Littlewood–Paley sum satisfies max A = 1 (non-expansive transform).
    """
    slant = 4.0 / L if slant is None and isinstance(L, (int, np.integer)) and L > 0 else slant
    _validate(J, L, M, N, sigma0, xi0, slant if slant is not None else 1.0)
    return _cached_bank(int(M), int(N), int(J), int(L), float(sigma0), float(xi0),
                        float(slant), bool(normalize))


@functools.lru_cache(maxsize=8)
def _cached_octave_wavelets(M, N, J, L, Q) -> np.ndarray:
    psi = np.empty((J * Q, L, M, N))
    ells = np.arange(L)
    for a in range(J * Q):
        scale = 2.0 ** (a / Q)
        space = morlet_2d(M, N, 0.8 * scale, kymatio_angle(ells, L), 3 * np.pi / 4 / scale, 4.0 / L)
        psi[a] = np.fft.fft2(space).real
    psi.flags.writeable = False
    return psi


def octave_wavelets(M: int, N: int, J: int, L: int = 8, Q: int = 1) -> np.ndarray:
    """Morlets with Q wavelets per octave on an M×N grid, in Fourier: (J·Q, L, M, N), index a at the scale
    2^(a/Q) (envelope width 0.8·2^(a/Q), centre frequency (3π/4)/2^(a/Q)). Q = 1 is `filter_bank`'s psi_hat."""
    if Q == 1:
        return filter_bank(M, N, J, L).psi_hat
    if isinstance(Q, bool) or not isinstance(Q, (int, np.integer)) or Q not in (1, 2):
        raise ParameterError(f"wavelets_per_octave must be 1 or 2, got {Q!r}.")
    _validate(J, L, M, N, 0.8, 3 * np.pi / 4, 4.0 / L)
    return _cached_octave_wavelets(int(M), int(N), int(J), int(L), int(Q))
