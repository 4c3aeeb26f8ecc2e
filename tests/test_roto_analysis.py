"""The angular spectrum of the roto-translation second layer (`explorer.analysis.roto`, science.md §2)
against an independent direct computation, Parseval along θ1, what a rotation does, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from roto_direct import angular_filter_values, circular, spatial_wavelets
from test_roto import windowed_noise

from explorer.analysis import roto as ra
from explorer.analysis.invariance import rotate
from explorer.scattering.filters import crop_spectrum, padded_shape
from explorer.scattering.validation import ParameterError


def direct_z(x, J, L, j1, j2):
    """z(θ1, θ2) = |x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2} the plain way (numpy reflect padding, full FFT products,
    explicit decimation), cropped to the samples inside the image: (L θ1, L θ2, m, n)."""
    H, W = x.shape
    M, N = padded_shape((H, W), J)
    top, left = (M - H) // 2, (N - W) // 2
    padded = np.pad(x, ((top, M - H - top), (left, N - W - left)), mode="reflect")
    psi, _ = spatial_wavelets(M, N, J, L, 1)
    first = [np.abs(circular(padded, psi[j1, t1]))[::2**j1, ::2**j1] for t1 in range(L)]
    small = crop_spectrum(psi[j2], j1)
    k = 2 ** (j2 - j1)
    z = np.array([[circular(u, small[t2])[::k, ::k] for t2 in range(L)] for u in first])
    s = 2**j2  # the samples p·2^j2 of the padded grid inside [top, top + H)
    rows = [p for p in range(M // s) if top <= p * s < top + H]
    cols = [p for p in range(N // s) if left <= p * s < left + W]
    return z[..., rows, :][..., cols]


@pytest.mark.parametrize("size, J, L, K, j1, j2", [(16, 2, 4, 1, 0, 1), (24, 3, 8, 2, 0, 2), (20, 3, 6, 2, 1, 2)])
def test_spectrum_and_filter_energies_equal_a_direct_computation(size, J, L, K, j1, j2):
    x = np.random.default_rng(size).random((size, size))
    spectrum = ra.angular_spectrum(x, J, L, K, j1, j2)
    z = direct_z(x, J, L, j1, j2)
    assert spectrum.positions == z.shape[-2] * z.shape[-1]
    # E(θ2, ω): the DFT along θ1 written out as a sum, then the mean over positions.
    t = np.arange(L)
    dft = np.exp(-2j * np.pi * np.outer(t, t) / L)  # [ω, θ1]
    z_hat = np.einsum("wt,tsmn->wsmn", dft, z)
    energy = (np.abs(z_hat) ** 2).mean(axis=(-2, -1)).T
    scale = energy.max()
    np.testing.assert_allclose(spectrum.energy, energy, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(spectrum.theta_energy, (np.abs(z) ** 2).mean(axis=(-2, -1)).T, rtol=0,
                               atol=1e-12 * scale)
    # The energy each angular filter keeps: the circular convolution along θ1 as an explicit sum, filters
    # sampled from their formula (not the engine's bank).
    filters = angular_filter_values(L, K)
    assert [(r.k, r.spin) for r in spectrum.records] == [(k, s) for k, s, _ in filters]
    for a, (_, _, h) in enumerate(filters):
        mixed = np.array([sum(z[t] * h[(t1 - t) % L] for t in range(L)) for t1 in range(L)])
        expected = (np.abs(mixed) ** 2).mean(axis=(0, -2, -1))  # mean over θ1 and positions, per θ2
        np.testing.assert_allclose(spectrum.filter_energy[a], expected, rtol=0, atol=1e-12 * scale)


def test_parseval_along_theta1_and_the_folded_sums():
    x = np.random.default_rng(3).random((32, 32))
    s = ra.angular_spectrum(x, 3, 8, 3, 0, 2)
    # Σ_ω |ẑ(ω)|² = L Σ_θ1 |z(θ1)|², per θ2 (the DFT is unnormalised).
    np.testing.assert_allclose(s.energy.sum(1), 8 * s.theta_energy.sum(1), rtol=1e-12)
    assert s.folded.shape == (5,)
    np.testing.assert_allclose(s.folded.sum(), s.energy.sum(), rtol=1e-12)
    np.testing.assert_allclose(s.folded[0], s.energy[:, 0].sum(), rtol=1e-12)
    np.testing.assert_allclose(s.folded[3], s.energy[:, 3].sum() + s.energy[:, 5].sum(), rtol=1e-12)
    np.testing.assert_allclose(s.folded[4], s.energy[:, 4].sum(), rtol=1e-12)  # ω = L/2 is its own −ω
    # The filters together keep Σ_ω LP(ω) E(ω) / L²: LP = Σ_a |ĥ_a(ω)|² (`AngularBank.littlewood_paley`).
    from explorer.scattering.angular import angular_bank
    lp = angular_bank(8, 3).littlewood_paley()
    np.testing.assert_allclose(s.filter_energy.sum(0), s.energy @ lp / 64, rtol=1e-12)
    # The low-pass sums to 1: it keeps ω = 0 whole, and nothing of a constant is lost.
    assert s.scale_energy.shape == (4,)
    np.testing.assert_allclose(s.scale_energy.sum(), s.filter_energy.sum(), rtol=1e-12)


@pytest.mark.parametrize("L", [5, 6])
def test_fold_frequencies(L):
    e = np.arange(2 * L, dtype=float).reshape(2, L) ** 2
    folded = ra.fold_frequencies(e)
    expected = np.zeros((2, L // 2 + 1))
    for w in range(L):
        expected[:, min(w, L - w)] += e[:, w]
    np.testing.assert_array_equal(folded, expected)


@pytest.mark.parametrize("L", [4, 8])
def test_a_quarter_turn_moves_z_along_theta1_and_leaves_the_angular_spectrum(L):
    """rot90, moved by one pixel so that the sampling grid of every resolution maps onto itself (as in
    tests/test_roto.py): the energy along θ1 moves by L/2 steps, θ2 by L/2 (with ω ↦ −ω where θ2 wraps
    past π: z becomes conj z), and the spectrum over |ω| summed over θ2 is unchanged. To rounding for
    (0, 1); (0, 2) to about 1e-8 here (measured: the Gaussian tails of ψ_{j2} reach the image's edge row,
    which the one-pixel move takes in or out; rounding on a 128×128 image); (1, 2) to about 1e-6 (measured:
    ψ̂_{j2} cropped to the coarser grid of z keeps one Nyquist row and column, `filters.crop_spectrum`, which a
    quarter turn does not map onto themselves; the first layer alone is exact)."""
    x = windowed_noise(64)
    turned = np.roll(rotate(x, 90), 1, axis=0)
    half = L // 2
    for j1, j2 in [(0, 1), (0, 2), (1, 2)]:
        s, r = ra.angular_spectrum(x, 3, L, 2, j1, j2), ra.angular_spectrum(turned, 3, L, 2, j1, j2)
        tol = {(0, 1): 1e-12, (0, 2): 1e-6, (1, 2): 1e-5}[j1, j2]
        assert ra.relative_change(r.folded, s.folded) < tol
        assert ra.relative_change(r.scale_energy, s.scale_energy) < tol
        assert ra.relative_change(np.roll(r.profile, -half), s.profile) < tol
        assert ra.relative_change(r.profile, s.profile) > 0.1  # z itself moved
        # Per θ2: rotated θ2 + L/2 is θ2, with ω flipped where θ2 + L/2 wraps past L.
        moved = r.energy[(np.arange(L) + half) % L]
        expected = np.array([s.energy[t2] if t2 + half < L else s.energy[t2][(-np.arange(L)) % L]
                             for t2 in range(L)])
        assert ra.relative_change(moved, expected) < 10 * tol
        assert ra.relative_change(r.energy, s.energy) > 10 * tol  # θ2 moved too: not the same array


def test_rotation_comparison():
    x = np.random.default_rng(5).random((32, 32))
    none = ra.rotation_comparison(x, 0.0, 2, 8, 2, 0, 1)
    assert none.shift == 0 and none.exact and none.windowed
    assert none.profile_change == none.spectrum_change == none.scale_change == 0.0
    np.testing.assert_array_equal(none.image, x * ra.smooth_window((32, 32)))
    quarter = ra.rotation_comparison(x, 90.0, 2, 8, 2, 0, 1)
    assert quarter.shift == 4 and quarter.exact
    np.testing.assert_array_equal(quarter.rotated, np.rot90(quarter.image))
    # Without the one-pixel move the sampling grid is off by a pixel: equal up to the sampling.
    assert quarter.spectrum_change < 1e-2 and quarter.profile_change_undone < 1e-2
    assert quarter.profile_change > 10 * quarter.spectrum_change
    tilted = ra.rotation_comparison(x, 22.5, 2, 8, 2, 0, 1, window=False, interpolation_order=1)
    assert tilted.shift == 1 and not tilted.exact and not tilted.windowed
    np.testing.assert_allclose(tilted.rotated, rotate(x, 22.5, order=1))
    assert ra.rotation_steps(-22.5, 8) == 7 and ra.rotation_steps(360, 8) == 0 and ra.rotation_steps(170, 8) == 0
    assert ra.is_exact_rotation(270.0) and not ra.is_exact_rotation(45.0)


def test_cache_returns_the_same_spectrum_for_the_same_content():
    x = np.random.default_rng(6).random((16, 16))
    a = ra.cached_angular_spectrum(x, 2, 4, 1, 0, 1)
    assert ra.cached_angular_spectrum(x.copy(), 2, 4, 1, 0, 1) is a
    assert ra.cached_angular_spectrum(x.T.copy(), 2, 4, 1, 0, 1) is not a


@pytest.mark.parametrize("args, words", [
    (dict(J=3, L=8, K=4), "angular_scales ≤ 3"),
    (dict(J=3, L=4, K=3), "angular_scales ≤ 2"),
    (dict(J=5, L=8, K=2), "smaller than 2^J = 32: use J ≤ 4"),
    (dict(J=1, L=8, K=2), "J ≥ 2"),
    (dict(J=3, L=8, K=2, j1=1, j2=1), "not a second-layer pair for J=3"),
    (dict(J=2, L=8, K=2, j1=0, j2=2), "not a second-layer pair for J=2"),
])
def test_bad_parameters_name_the_limit(args, words):
    with pytest.raises(ParameterError, match=words.replace("^", r"\^")):
        ra.angular_spectrum(np.zeros((16, 16)), **args)


def test_bad_images():
    with pytest.raises(ParameterError, match="real 2-D array"):
        ra.angular_spectrum(np.zeros((2, 16, 16)), 2)
    with pytest.raises(ParameterError, match="real 2-D array"):
        ra.angular_spectrum(np.zeros((16, 16), complex), 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ra.angular_spectrum(np.full((16, 16), np.nan), 2)
