"""Inside the second layer of the separable roto-translation scattering (science.md §2): the angular spectrum
of z along θ1, the energy each angular filter keeps, and what a rotation of the image does to both.

For a scale pair (j1, j2), the engine (`explorer.scattering.roto`) computes, before its angular transform,

    z(u, θ1; θ2) = |x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}(u),

L samples θ1 = ℓπ/L of a π-periodic signal for every position u and second angle θ2. The paper's second
layer filters z along θ1 with the angular low-pass and the angular Morlet wavelets (`scattering.angular`).
Here:

- ẑ(u, ω; θ2) = Σ_θ1 z(u, θ1; θ2) e^{−2iπωθ1/L}, the DFT along θ1 (unnormalised: Parseval reads
  Σ_ω |ẑ|² = L Σ_θ1 |z|²); ω is the angular frequency in cycles per π;
- E(θ2, ω) = mean_u |ẑ(u, ω; θ2)|², the mean over the positions u of the padded grid (sampled every
  2^j2 pixels) that fall inside the image (`unpadded_window`);
- the energy each angular filter h keeps, mean_{u,θ1} |z ⋆_θ1 h|², is (1/L²) Σ_ω |ĥ(ω)|² E(θ2, ω)
  (the circular convolution is a product of DFTs; Parseval along θ1).

What a rotation does (science.md §1, rotation covariance; tests/test_roto.py): rotating the image by α
moves θ1 by m = α/(π/L) steps, and θ2 too (the spatial wavelet ψ_{j2,θ2} is not turned with θ1); past π
in θ2, ψ_{θ2+π} = conj ψ_{θ2}, so z there becomes conj(z), whose DFT flips ω ↦ −ω. So z(θ1) itself moves,
while |ẑ(ω)| does not see the shift along θ1: summed over θ2 and over ±ω (`AngularSpectrum.folded`), the
angular spectrum is invariant to a rotation by a multiple of 90°, and so is the energy of each angular
scale with both spins summed (`AngularSpectrum.scale_energy`) -- exactly for the continuous mean over
positions. The means here are over the samples of z, every 2^j2 pixels, and a quarter turn about the image's
centre moves that grid by one pixel: measured on 64×64 images windowed by a disk, the spectrum then changes
by about 0.03 % for (j1, j2) = (0, 1) and up to a few percent for the coarsest pairs, more on 16×16 images
where a coarse pair has a handful of positions. (Moved by that pixel, a windowed image whose content stays
away from the border gives rounding: tests/test_roto_analysis.py.) Between multiples of 90°,
`explorer.analysis.invariance.rotate` interpolates, which blurs the finest scales: the spectrum then changes
by the interpolation's amount too.

Computation only: no UI import.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from explorer.lru import SharedLRU
from explorer.scattering.angular import AngularFilter, angular_bank
from explorer.scattering.padding import pad_widths
from explorer.scattering.roto import RotoScattering2D, check_roto_parameters, roto_pairs
from explorer.scattering.validation import ParameterError

from .invariance import rotate, smooth_window


@functools.lru_cache(maxsize=4)
def roto_transform(J: int, shape: tuple[int, int], L: int, K: int) -> RotoScattering2D:
    """The engine for images of `shape`, one wavelet per octave (built once per parameters; a large J
    takes seconds: J = 6 on 64×64 with L = 16 about 3.5 s on 2 CPU cores)."""
    return RotoScattering2D(J, shape, L, 1, K)


def unpadded_window(shape: tuple[int, int], J: int, r: int) -> tuple[slice, slice]:
    """The samples of a map kept at resolution 2^−r on the padded grid of an image of `shape` (sample p
    at padded pixel p·2^r) that fall inside the image: (rows, columns) slices."""
    top, _, left, _ = pad_widths(shape, J)
    H, W = shape
    s = 2 ** int(r)
    return slice(-(-top // s), (top + H - 1) // s + 1), slice(-(-left // s), (left + W - 1) // s + 1)


def fold_frequencies(energy: np.ndarray) -> np.ndarray:
    """Energies indexed by ω = 0..L−1 on the last axis, with ±ω summed: (..., L//2 + 1), index |ω|
    (ω = 0 and, for even L, ω = L/2 have no partner)."""
    energy = np.asarray(energy, dtype=np.float64)
    L = energy.shape[-1]
    folded = energy[..., :L // 2 + 1].copy()
    partners = np.arange(1, (L + 1) // 2)  # ω with a distinct −ω ≡ L − ω
    folded[..., partners] += energy[..., L - partners]
    return folded


def relative_change(after, before) -> float:
    """‖after − before‖ / ‖before‖ (0 when both are 0)."""
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    norm = float(np.linalg.norm(before))
    return float(np.linalg.norm(after - before)) / norm if norm > 0 else float(np.linalg.norm(after) > 0)


@dataclass(frozen=True)
class AngularSpectrum:
    """The angular content of z = |x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2} for one image (module docstring).

    energy (L θ2, L ω): E(θ2, ω) = mean_u |ẑ(u, ω; θ2)|², ω = 0..L−1 (bin L − ω is −ω);
    theta_energy (L θ2, L θ1): mean_u |z(u, θ1; θ2)|²;
    filter_energy (A, L θ2): mean_{u,θ1} |z ⋆_θ1 h_a|² for the angular filters `records` (A = 1 + 2K:
    the low-pass, then (k, spin +1), (k, spin −1) for k = 0..K−1);
    positions: how many positions u the means are over."""

    J: int
    L: int
    K: int
    j1: int
    j2: int
    energy: np.ndarray
    theta_energy: np.ndarray
    filter_energy: np.ndarray
    records: tuple[AngularFilter, ...]
    positions: int

    @property
    def profile(self) -> np.ndarray:
        """Σ_θ2 mean_u |z(u, θ1; θ2)|² along θ1 (L,): what a rotation moves by m steps."""
        return self.theta_energy.sum(0)

    @property
    def folded(self) -> np.ndarray:
        """Σ_θ2 E(θ2, ω) with ±ω summed (L//2 + 1,), index |ω|: what a rotation by 90° leaves unchanged."""
        return fold_frequencies(self.energy).sum(0)

    @property
    def scale_energy(self) -> np.ndarray:
        """Σ_θ2 of the energy each angular scale keeps, both spins summed (1 + K,): the low-pass, then k."""
        per_filter = self.filter_energy.sum(1)
        return np.array([per_filter[0]] + [per_filter[1 + 2 * k] + per_filter[2 + 2 * k] for k in range(self.K)])


def _as_image(image) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ParameterError(f"the image must be a real 2-D array (H, W), got {x.dtype} of shape {x.shape}.")
    return x.astype(np.float64)


def angular_spectrum(image, J: int, L: int = 8, K: int = 2, j1: int = 0, j2: int = 1) -> AngularSpectrum:
    """E(θ2, ω), the energy along θ1 and per angular filter of z for the scale pair (j1, j2) (science.md §2;
    module docstring), computed in float64 by `RotoScattering2D.second_layer`. ParameterError (with the
    limit in its message) for an image smaller than 2^J, angular scales beyond what L allows (2^K ≤ L), or a
    pair that is not progressive (j2 ≥ j1 + 1, both < J)."""
    x = _as_image(image)
    check_roto_parameters(J, x.shape, L, 1, K)
    J, L, K = int(J), int(L), int(K)
    if (j1, j2) not in roto_pairs(J):
        raise ParameterError(f"(j1, j2) = ({j1}, {j2}) is not a second-layer pair for J={J}: the pairs are "
                             f"{roto_pairs(J)} (j1 < j2 < J).")
    j1, j2 = int(j1), int(j2)
    engine = roto_transform(J, x.shape, L, K)
    rows, cols = unpadded_window(x.shape, J, engine.res(j2))
    z = engine.second_layer(x, j1, j2)[..., rows, cols]  # (L θ1, L θ2, m, n) complex128
    positions = z.shape[-2] * z.shape[-1]
    z_hat = np.fft.fft(z, axis=0)
    energy = (z_hat.real ** 2 + z_hat.imag ** 2).mean(axis=(-2, -1)).T  # (θ2, ω)
    theta_energy = (z.real ** 2 + z.imag ** 2).mean(axis=(-2, -1)).T  # (θ2, θ1)
    bank = angular_bank(L, K)
    gain = np.abs(bank.in_fourier) ** 2  # (A, ω)
    filter_energy = gain @ energy.T / L ** 2  # (A, θ2)
    return AngularSpectrum(J, L, K, j1, j2, energy, theta_energy, filter_energy, bank.records, positions)


def rotation_steps(degrees: float, L: int) -> int:
    """m = round(α / (180°/L)) mod L: the steps of θ1 (and θ2) a rotation by α moves (mod L, as θ and θ + π
    are one orientation)."""
    return round(float(degrees) / (180.0 / L)) % L


def is_exact_rotation(degrees: float) -> bool:
    """A multiple of 90°: `rotate` turns the pixel grid exactly (np.rot90) on a square image."""
    quarter = float(degrees) / 90.0
    return abs(quarter - round(quarter)) < 1e-9


@dataclass(frozen=True)
class RotationComparison:
    """The angular spectra of an image and of its rotation by `degrees` (module docstring). `image` is what
    was analysed (windowed when asked), `rotated` its rotation; `shift` = `rotation_steps`."""

    degrees: float
    shift: int
    exact: bool
    windowed: bool
    image: np.ndarray
    rotated: np.ndarray
    original: AngularSpectrum
    turned: AngularSpectrum

    @property
    def profile_change(self) -> float:
        """How much the energy along θ1 changes: ‖P_rot − P‖/‖P‖ (large: z moves)."""
        return relative_change(self.turned.profile, self.original.profile)

    @property
    def profile_change_undone(self) -> float:
        """The same once the rotated profile is shifted back by `shift` steps (small: z only moved)."""
        return relative_change(np.roll(self.turned.profile, -self.shift), self.original.profile)

    @property
    def spectrum_change(self) -> float:
        """How much the angular spectrum over |ω| (Σθ2) changes: 0 up to rounding at multiples of 90°."""
        return relative_change(self.turned.folded, self.original.folded)

    @property
    def scale_change(self) -> float:
        """How much the energy per angular scale (spins summed, Σθ2) changes."""
        return relative_change(self.turned.scale_energy, self.original.scale_energy)


def prepared_image(image, window: bool = True) -> np.ndarray:
    """The image as analysed: float64, multiplied by `invariance.smooth_window` when `window` (the content
    kept in the inscribed disk, which every rotation maps onto itself: no corner comes from outside)."""
    x = _as_image(image)
    return x * smooth_window(x.shape) if window else x


def rotation_comparison(image, degrees: float, J: int, L: int = 8, K: int = 2, j1: int = 0, j2: int = 1, *,
                        window: bool = True, interpolation_order: int = 3) -> RotationComparison:
    """`angular_spectrum` of the (windowed) image and of its rotation by `degrees` counter-clockwise
    (`invariance.rotate`: exact at multiples of 90°, spline interpolation of `interpolation_order`
    otherwise)."""
    x = prepared_image(image, window)
    original = cached_angular_spectrum(x, J, L, K, j1, j2)
    turned_image = rotate(x, degrees, order=interpolation_order)
    turned = cached_angular_spectrum(turned_image, J, L, K, j1, j2)
    return RotationComparison(float(degrees), rotation_steps(degrees, int(L)), is_exact_rotation(degrees),
                              bool(window), x, turned_image, original, turned)


def rotation_comparison_cached(image, degrees: float, J: int, L: int = 8, K: int = 2, j1: int = 0, j2: int = 1, *,
                               window: bool = True, interpolation_order: int = 3) -> bool:
    """Whether `rotation_comparison` with these arguments only reads the cache (milliseconds: the rotation
    is redone to find its key)."""
    x = prepared_image(image, window)
    keys = [(image_key(y), J, L, K, j1, j2) for y in (x, rotate(x, degrees, order=interpolation_order))]
    return all(key in _spectra for key in keys)


# -- a bounded cache shared by the sessions (spectra are small: L² + L² + A·L numbers) -------------------
MAX_SPECTRA = 64
_spectra = SharedLRU(MAX_SPECTRA)


def image_key(x) -> str:
    x = np.ascontiguousarray(x, np.float64)
    return hashlib.sha1(x.tobytes() + repr(x.shape).encode()).hexdigest()


def cached_angular_spectrum(image, J: int, L: int = 8, K: int = 2, j1: int = 0, j2: int = 1) -> AngularSpectrum:
    """`angular_spectrum`, cached by (image content, J, L, K, j1, j2)."""
    return _spectra.get_or_compute((image_key(image), J, L, K, j1, j2),
                                   lambda: angular_spectrum(image, J, L, K, j1, j2))
