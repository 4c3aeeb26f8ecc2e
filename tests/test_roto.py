"""Roto-translation scattering (science.md §2): the engine against a direct float64 reference, against the
translation transform it extends, and under a rotation by 90°."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from roto_direct import angular_filter_values, roto_scattering_direct
from test_channels import relative, windowed_noise

from explorer.analysis.invariance import rotate
from explorer.scattering import Scattering2D, select
from explorer.scattering.angular import angular_bank, check_angular, max_angular_scales
from explorer.scattering.roto import RotoPath, RotoScattering2D, n_roto_paths, roto_pairs, roto_paths
from explorer.scattering.validation import ParameterError


# -- paths and the angular filters -----------------------------------------------------------------
def test_path_counts_and_order():
    assert n_roto_paths(3, 8, 1, 2) == 1 + 24 + 3 * 5 * 64 == 985
    assert roto_pairs(3, 2) == [(0, 2), (0, 3), (0, 4), (0, 5), (1, 3), (1, 4), (1, 5), (2, 4), (2, 5), (3, 5)]
    paths = roto_paths(2, 4, 1, 1)
    assert len(paths) == n_roto_paths(2, 4, 1, 1) == 1 + 8 + 3 * 16
    assert paths[9] == RotoPath(2, 0, 0, 1, 0, None, 0)  # the low-pass first, then θ1, then θ2
    assert paths[9 + 16] == RotoPath(2, 0, 0, 1, 0, 0, 1)
    assert paths[9 + 16 + 5] == RotoPath(2, 0, 1, 1, 1, 0, 1)
    assert paths[-1] == RotoPath(2, 0, 3, 1, 3, 0, -1)
    assert list(select(paths, order=2, k=None)) == list(range(9, 25))  # selection by the angular fields


def test_angular_filters_match_their_formula():
    """The engine folds a window of ±9 widths; the reference sums 401 periods."""
    for L, K in [(8, 2), (8, 3), (4, 2), (6, 2)]:
        bank = angular_bank(L, K)
        reference = angular_filter_values(L, K)
        assert [(r.k, r.spin) for r in bank.records] == [(k, s) for k, s, _ in reference]
        for row, (_, _, h) in zip(bank.filters, reference):
            np.testing.assert_allclose(row, h, atol=1e-15)


def test_angular_filters_are_what_they_claim():
    bank = angular_bank(8, 2)
    low, *wavelets = bank.filters
    assert abs(low.sum() - 1) < 1e-12 and np.all(low.imag == 0)  # a constant passes unchanged
    for w in wavelets:
        assert abs(w.sum()) < 1e-12  # zero mean: a constant along θ1 gives nothing
    np.testing.assert_array_equal(bank.filters[2], bank.filters[1].conj())  # spin −1 is the conjugate
    spectrum = np.abs(bank.in_fourier)
    # ξ0 = 3π/4 rad per sample is 3 cycles over 8 samples: spin +1 peaks at +3, spin −1 at −3 (bin 5);
    # the scale 2 (ξ = 3π/8, 1.5 cycles) peaks between bins 1 and 2.
    assert spectrum[1].argmax() == 3 and spectrum[2].argmax() == 5
    assert spectrum[3].argmax() in (1, 2) and spectrum[4].argmax() in (6, 7)
    assert spectrum[0].argmax() == 0
    # The convolution matrix does a circular convolution.
    z = np.random.default_rng(0).standard_normal(8) + 1j
    direct = [[sum(z[t] * h[(th - t) % 8] for t in range(8)) for th in range(8)] for h in bank.filters]
    np.testing.assert_allclose(bank.convolution_matrix() @ z, np.ravel(direct), atol=1e-12)


# -- the transform ---------------------------------------------------------------------------------
@pytest.mark.parametrize("J, size, L, Q, K", [(2, 16, 4, 1, 1), (3, 24, 8, 1, 2), (2, 16, 4, 2, 2)])
def test_equals_the_direct_float64_reference(J, size, L, Q, K):
    x = np.random.default_rng(1).random((size, size))
    engine = RotoScattering2D(J, (size, size), L, Q, K)
    fast = engine(torch.from_numpy(x[None]))[0].numpy()
    direct = roto_scattering_direct(x, J, L, Q, K)
    assert len(direct) == len(engine.paths)
    slow = np.stack([direct[tuple(p for p in path if p is not None) if path.order < 2 else tuple(path)]
                     for path in engine.paths])
    assert slow.shape == fast.shape
    assert np.abs(fast - slow).max() < 1e-12 * np.abs(slow).max()


def test_orders_0_and_1_and_the_second_layer_agree_with_the_translation_transform():
    """S0, S1 equal `Scattering2D`'s (checked against Kymatio); the modulus of the second layer before the
    angular filters, averaged, is the translation S2."""
    x = torch.from_numpy(windowed_noise(32, seed=3))[None]
    roto, translation = RotoScattering2D(3, (32, 32)), Scattering2D(3, (32, 32))
    r, s = roto(x)[0], translation(x)[0]
    first = select(translation.paths, order=(0, 1))
    np.testing.assert_allclose(r[:len(first)], s[first], rtol=0, atol=1e-13 * float(s.abs().max()))
    for j1, j2 in roto_pairs(3):
        z = roto.second_layer(x, j1, j2)[0]  # (L θ1, L θ2, m, n)
        averaged = roto._average(z.abs(), roto._filters(x.device, x.dtype), roto.res(j2))
        expected = s[select(translation.paths, order=2, j1=j1, j2=j2)].reshape(8, 8, *s.shape[-2:])
        np.testing.assert_allclose(averaged, expected, rtol=0, atol=1e-13 * float(expected.abs().max()))


def test_float32_and_numpy_and_batches():
    x = np.random.default_rng(2).random((2, 3, 32, 32))
    engine = RotoScattering2D(3, (32, 32), max_chunk_bytes=1 << 16)  # several chunks
    single = engine(x)
    assert isinstance(single, np.ndarray) and single.shape == (2, 3, 985, 4, 4)
    np.testing.assert_allclose(engine(x[1, 2]), single[1, 2], atol=1e-12)
    low = engine(torch.from_numpy(x).float()).numpy()
    assert low.dtype == np.float32
    assert relative(low, single) < 1e-5
    out = torch.empty(2, 3, 985, 4, 4, dtype=torch.float64)
    assert engine(torch.from_numpy(x), out=out) is out


def turned_path(path: RotoPath, L: int) -> RotoPath:
    """Where a rotation by 90° counter-clockwise (L/2 steps of π/L) sends a channel: θ1 and θ2 move by L/2
    (mod L, as |x ⋆ ψ_{θ+π}| = |x ⋆ ψ_θ|). When θ2 wraps past π, the spatial wavelet became its conjugate,
    so z became conj(z): the spin of the angular wavelet flips (|conj(z) ⋆ ψ̄| = |z ⋆ conj ψ̄|)."""
    half = L // 2
    if path.order == 0:
        return path
    if path.order == 1:
        return path._replace(theta1=(path.theta1 + half) % L)
    wraps = path.theta2 + half >= L
    return path._replace(theta1=(path.theta1 + half) % L, theta2=(path.theta2 + half) % L,
                         spin=-path.spin if wraps else path.spin)


@pytest.mark.parametrize("L", [4, 8])
def test_a_quarter_turn_moves_theta1_and_theta2_and_flips_the_spin_where_theta2_wraps(L):
    """S(rot90 x) is S x with every channel moved by `turned_path`, each map turned with the image (the
    turned image shifted by one pixel puts its samples back on the 2^J grid, as in test_channels). The
    angular-modulus channels are covariant along θ1, not invariant: without the move the error is large,
    and so it is with θ moved but the spin left alone."""
    J = 2
    engine = RotoScattering2D(J, (32, 32), L, angular_scales=2)
    x = windowed_noise()
    turned = rotate(x, 90)
    np.testing.assert_array_equal(turned, np.rot90(x))
    target = engine(np.roll(turned, 1, axis=0))[..., 1:, :]
    s = engine(x)
    index = {p: i for i, p in enumerate(engine.paths)}

    def predicted(move):
        moved = np.empty_like(s)
        for i, p in enumerate(engine.paths):
            moved[index[move(p)]] = s[i]
        return np.roll(np.rot90(moved, 1, axes=(-2, -1)), 1, axis=-2)[..., 1:, :]

    good = predicted(lambda p: turned_path(p, L))
    no_spin_flip = predicted(lambda p: turned_path(p, L)._replace(spin=p.spin))
    unmoved = predicted(lambda p: p)
    spin_paths = select(engine.paths, order=2, spin=(1, -1))
    for order in (1, 2):
        chosen = select(engine.paths, order=order)
        assert relative(good[chosen], target[chosen]) < 1e-10
        assert relative(unmoved[chosen], target[chosen]) > 0.1
    assert relative(no_spin_flip[spin_paths], target[spin_paths]) > 0.05
    # Summed over θ1 (an invariant built from the covariance), the low-pass channels do not move at all
    # along θ1; their θ2 does.
    low = select(engine.paths, order=2, k=None)
    assert relative(good[low], target[low]) < 1e-10


def test_sum_over_theta1_is_unchanged_by_a_circular_shift_along_theta1():
    """The angular filters commute with a shift along θ1: rolling the first layer's θ1 by one step rolls
    every second-layer output by one step. Checked on the engine's inner stages with a rolled z."""
    engine = RotoScattering2D(2, (16, 16), 8)
    x = torch.from_numpy(np.random.default_rng(4).random((1, 16, 16)))
    f = engine._filters(x.device, x.dtype)
    z = engine.second_layer(x, 0, 1)
    mixed = engine._along_theta1(z, f)  # (A, θ1, 1, θ2, m, n)
    rolled = engine._along_theta1(torch.roll(z, 1, dims=1), f)
    torch.testing.assert_close(rolled, torch.roll(mixed, 1, dims=1), rtol=0, atol=1e-12)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    (dict(J=3, shape=(32, 32), L=8, angular_scales=4), "angular_scales ≤ 3"),
    (dict(J=3, shape=(32, 32), L=4, angular_scales=3), "angular_scales ≤ 2"),
    (dict(J=3, shape=(32, 32), L=8, angular_scales=0), "angular_scales must be an integer ≥ 1"),
    (dict(J=3, shape=(32, 32), L=1), "L ≥ 2"),
    (dict(J=4, shape=(12, 12)), "smaller than 2^J = 16"),
    (dict(J=1, shape=(32, 32)), "J ≥ 2"),
    (dict(J=3, shape=(32, 32), wavelets_per_octave=3), "wavelets_per_octave must be 1 or 2"),
])
def test_bad_parameters_name_the_limit(kwargs, words):
    with pytest.raises(ParameterError, match=words.replace("^", r"\^")):
        RotoScattering2D(**kwargs)


def test_bad_input_and_pairs():
    engine = RotoScattering2D(2, (16, 16), 4, angular_scales=1)
    with pytest.raises(ValueError, match="built for images of shape"):
        engine(torch.zeros(1, 20, 20))
    with pytest.raises(TypeError, match="float32 or float64"):
        engine(torch.zeros(1, 16, 16, dtype=torch.uint8))
    with pytest.raises(ParameterError, match="not a second-layer pair"):
        engine.second_layer(torch.zeros(16, 16), 1, 1)
    assert max_angular_scales(8) == 3 and max_angular_scales(6) == 2
    assert check_angular(8, 3) == (8, 3)
