"""The angular Fourier analysis of W₁ (explorer.analysis.spectra, science.md §4) on small random arrays and a
tiny random ScatteringSLE: no dataset, a second or two."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis import spectra
from explorer.analysis.spectra import (
    FirstLayer,
    absolute_angles,
    angular_dft,
    band_coefficients,
    band_limit,
    breakdown_by,
    first_layer,
    first_layer_from_matrix,
    invariance_scores,
    inverse_angular_dft,
    keep_masks,
    kept_coefficients,
    n_angular_coefficients,
    nonzero_coefficients,
    omega1,
    omega1_energy,
    omega2,
    omega2_energy,
    relative_angles,
    threshold_fourier,
    threshold_theta,
)
from explorer.nets import CNN13, ScatteringSLE
from explorer.scattering import scale_pairs
from explorer.scattering.channels import colour_channels
from explorer.scattering.paths import scattering_paths

COLOURS = ("red", "green", "blue")


def random_layer(K=5, J=3, L=8, seed=0, effective=False) -> FirstLayer:
    rng = np.random.default_rng(seed)
    P = J * (J - 1) // 2
    return FirstLayer(order0=rng.normal(size=(K, 3)), order1=rng.normal(size=(K, 3, J, L)),
                      order2=rng.normal(size=(K, 3, P, L, L)), colours=COLOURS, J=J, L=L,
                      pairs=scale_pairs(J), effective=effective)


def snapshot(layer: FirstLayer):
    return [block.copy() for block in (layer.order0, layer.order1, layer.order2)]


def assert_same(layer: FirstLayer, blocks, atol=0.0):
    for block, before in zip((layer.order0, layer.order1, layer.order2), blocks):
        np.testing.assert_allclose(block, before, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ScatteringSLE(J=2, L=4, widths=(6,))


# -- arrangement ------------------------------------------------------------------------------------
def test_first_layer_shapes_and_round_trip(tiny):
    layer = first_layer(tiny)
    assert layer.order0.shape == (6, 3) and layer.order1.shape == (6, 3, 2, 4)
    assert layer.order2.shape == (6, 3, 1, 4, 4) and layer.pairs == [(0, 1)]
    assert layer.colours == COLOURS and (layer.J, layer.L) == (2, 4) and not layer.effective
    assert layer.label == "W₁" and layer.order1.dtype == np.float64
    W = tiny.first_layer_weight.detach().double().numpy()
    np.testing.assert_array_equal(layer.to_matrix(tiny.input_channels), W)
    np.testing.assert_array_equal(layer.to_matrix(), W)  # the default layout is the model's
    assert layer.energy() == pytest.approx(float((W ** 2).sum()), rel=1e-12)
    # by meaning: red, order 1, j1 = 1, θ1 = 2, and blue, pair (0, 1), θ1 = 3, θ2 = 1
    column = {tuple(c): i for i, c in enumerate(tiny.input_channels)}
    np.testing.assert_array_equal(layer.order1[:, 0, 1, 2], W[:, column[("red", 1, 1, 2, None, None)]])
    np.testing.assert_array_equal(layer.order2[:, 2, 0, 3, 1], W[:, column[("blue", 2, 0, 3, 1, 1)]])
    # a copy: changing it never changes the model
    layer.order1[:] = 0
    assert tiny.first_layer_weight.abs().sum() > 0


def test_to_matrix_inverts_first_layer_from_matrix():
    channels = colour_channels(scattering_paths(3, 8), COLOURS)
    W = np.random.default_rng(1).normal(size=(7, len(channels)))
    layer = first_layer_from_matrix(W, channels, 3, 8)
    assert layer.order2.shape == (7, 3, 3, 8, 8) and layer.pairs == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_array_equal(layer.to_matrix(channels), W)


def test_effective_weights_by_hand(tiny):
    norm = tiny.input_norm
    with torch.no_grad():
        norm.running_var.copy_(torch.linspace(0.5, 4.0, norm.num_features))
    sigma = np.sqrt(norm.running_var.double().numpy() + norm.eps)
    W = tiny.first_layer_weight.detach().double().numpy()
    effective = first_layer(tiny, effective=True)
    assert effective.effective and effective.label == "effective W₁·diag(1/σ)"
    expected = W @ np.diag(1.0 / sigma)
    np.testing.assert_allclose(effective.to_matrix(tiny.input_channels), expected, rtol=1e-12)
    np.testing.assert_allclose(spectra.input_sigma(tiny), sigma, rtol=1e-12)
    back = spectra.as_learned(effective, tiny)
    assert not back.effective
    np.testing.assert_allclose(back.to_matrix(), W, rtol=1e-12)
    np.testing.assert_allclose(spectra.as_effective(first_layer(tiny), tiny).to_matrix(), expected, rtol=1e-12)
    column = {tuple(c): i for i, c in enumerate(tiny.input_channels)}
    i = column[("green", 1, 0, 3, None, None)]
    np.testing.assert_allclose(effective.order1[:, 1, 0, 3], W[:, i] / sigma[i], rtol=1e-12)


def test_clear_errors_for_models_and_shapes(tiny):
    with pytest.raises(ValueError, match="CNN13 is not an SLE-like model"):
        first_layer(CNN13(width=4))
    channels = tiny.input_channels
    with pytest.raises(ValueError, match=r"weights of shape \(6, 10\) do not match the 75 channels of the "
                                         r"stored path metadata"):
        first_layer_from_matrix(np.zeros((6, 10)), channels, 2, 4)
    with pytest.raises(ValueError, match="do not match"):
        first_layer_from_matrix(np.zeros(len(channels)), channels, 2, 4)
    with pytest.raises(ValueError, match="not J=3"):
        first_layer_from_matrix(np.zeros((6, len(channels))), channels, 3, 4)

    class Broken(torch.nn.Module):  # SLE-like, but its W₁ does not match its metadata
        input_channels = channels
        first_layer_weight = torch.zeros(6, 200)
    with pytest.raises(ValueError, match=r"weights of shape \(6, 200\) do not match the 75 channels"):
        first_layer(Broken())
    with pytest.raises(ValueError, match="FirstLayer blocks do not match"):
        FirstLayer(np.zeros((2, 3)), np.zeros((2, 3, 2, 4)), np.zeros((2, 3, 1, 4, 5)), COLOURS, 2, 4, [(0, 1)])


# -- DFT and spectra ------------------------------------------------------------------------------
def test_angular_dft_is_orthonormal_and_inverts():
    x = np.random.default_rng(2).normal(size=(3, 8, 8))
    X = angular_dft(x, (-2, -1))
    assert np.sum(np.abs(X) ** 2) == pytest.approx(np.sum(x ** 2), rel=1e-12)
    np.testing.assert_allclose(inverse_angular_dft(X, (-2, -1)).real, x, atol=1e-12)
    np.testing.assert_allclose(angular_dft(x, -1), np.fft.fft(x, axis=-1) / np.sqrt(8), atol=1e-12)


def test_constant_along_theta_puts_all_energy_at_zero():
    layer = random_layer()
    const = layer.replace(order1=np.broadcast_to(layer.order1[..., :1], layer.order1.shape).copy(),
                          order2=np.broadcast_to(layer.order2[..., :1, :1], layer.order2.shape).copy())
    expected1 = np.zeros(8)
    expected1[0] = 1
    np.testing.assert_allclose(omega1(const), expected1, atol=1e-12)
    expected2 = np.zeros((8, 8))
    expected2[0, 0] = 1
    np.testing.assert_allclose(omega2(const), expected2, atol=1e-12)
    np.testing.assert_allclose(omega2(const, reindexed=True), expected2, atol=1e-12)


def test_parseval_and_fractions():
    layer = random_layer()
    assert omega1_energy(layer).sum() == pytest.approx(np.sum(layer.order1 ** 2), rel=1e-12)
    assert omega2_energy(layer).sum() == pytest.approx(np.sum(layer.order2 ** 2), rel=1e-12)
    assert omega2_energy(layer, reindexed=True).sum() == pytest.approx(np.sum(layer.order2 ** 2), rel=1e-12)
    sub = layer.order1[:, 1, 2]
    assert omega1_energy(layer, colour="green", j1=2).sum() == pytest.approx(np.sum(sub ** 2), rel=1e-12)
    pair = layer.pairs.index((0, 2))
    block = layer.order2[:, 0, pair]
    assert omega2_energy(layer, colour="red", j1=0, j2=2).sum() == pytest.approx(np.sum(block ** 2), rel=1e-12)
    assert omega1(layer).shape == (8,) and omega1(layer).sum() == pytest.approx(1.0)
    assert omega2(layer, j1=1).shape == (8, 8) and omega2(layer, j1=1).sum() == pytest.approx(1.0)
    # Hermitian symmetry of real weights: Ω₁(ω) = Ω₁(L − ω)
    o1 = omega1(layer)
    np.testing.assert_allclose(o1[1:], o1[1:][::-1], rtol=1e-10)
    assert layer.energy() == pytest.approx(np.sum(layer.order0 ** 2) + omega1_energy(layer).sum()
                                           + omega2_energy(layer).sum(), rel=1e-12)


def test_cyclic_shift_along_theta_leaves_omega_unchanged():
    layer = random_layer()
    for shift in (1, 3):
        turned = layer.replace(order1=np.roll(layer.order1, shift, axis=-1),
                               order2=np.roll(layer.order2, shift, axis=(-2, -1)))  # a rotation
        np.testing.assert_allclose(omega1(turned), omega1(layer), atol=1e-12)
        np.testing.assert_allclose(omega2(turned), omega2(layer), atol=1e-12)
        np.testing.assert_allclose(omega2(turned, reindexed=True), omega2(layer, reindexed=True), atol=1e-12)
        np.testing.assert_allclose(invariance_scores(turned), invariance_scores(layer), atol=1e-12)
        one_axis = layer.replace(order2=np.roll(layer.order2, shift, axis=-1))
        np.testing.assert_allclose(omega2(one_axis), omega2(layer), atol=1e-12)


def test_rotation_invariant_order2_block():
    L = 8
    g = np.random.default_rng(3).normal(size=L)
    theta = np.arange(L)
    block = g[(theta[None, :] - theta[:, None]) % L]  # w(θ1, θ2) = g(θ2 − θ1)
    np.testing.assert_array_equal(relative_angles(block), np.broadcast_to(g, (L, L)))
    np.testing.assert_array_equal(absolute_angles(relative_angles(block)), block)
    layer = random_layer(K=1, J=2, L=L)
    layer = layer.replace(order2=np.broadcast_to(block, layer.order2.shape).copy())
    re = omega2(layer, reindexed=True)
    assert re[0].sum() == pytest.approx(1.0, abs=1e-12) and np.abs(re[1:]).max() < 1e-12
    raw = omega2(layer)
    line = (theta[:, None] + theta[None, :]) % L == 0
    assert raw[line].sum() == pytest.approx(1.0, abs=1e-12) and np.abs(raw[~line]).max() < 1e-12
    np.testing.assert_allclose(raw[line], re[0][theta[line.nonzero()[1]]], atol=1e-12)


def test_breakdowns():
    layer = random_layer()
    by_colour = breakdown_by(layer, "colour")
    assert list(by_colour) == list(COLOURS)
    np.testing.assert_allclose(by_colour["blue"], omega1(layer, colour="blue"))
    by_j1 = breakdown_by(layer, "j1")
    assert list(by_j1) == [0, 1, 2] and all(v.sum() == pytest.approx(1.0) for v in by_j1.values())
    by_pair = breakdown_by(layer, "pair", reindexed=True)
    assert list(by_pair) == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_allclose(by_pair[(1, 2)], omega2(layer, j1=1, j2=2, reindexed=True))
    assert breakdown_by(layer, "colour", order=2)["red"].shape == (8, 8)
    with pytest.raises(ValueError, match="what must be one of"):
        breakdown_by(layer, "scale")
    with pytest.raises(ValueError, match="colour must be one of"):
        omega1(layer, colour="purple")
    with pytest.raises(ValueError, match="j1 must be a scale in 0..2"):
        omega1(layer, j1=3)
    with pytest.raises(ValueError, match="no order-2 scale pair"):
        omega2(layer, j1=2)


def test_invariance_scores():
    L = 8
    layer = random_layer(K=3, J=2, L=L)
    theta = np.arange(L)
    order1 = layer.order1.copy()
    order2 = layer.order2.copy()
    order1[0] = 1.5  # unit 0: constant along θ
    order2[0] = -0.5
    order1[1] = np.cos(2 * np.pi * theta / L)  # unit 1: a pure ω = 1 on every angle axis
    order2[1] = np.cos(2 * np.pi * theta / L)[:, None] * np.ones(L)  # ω_θ1 = 1, constant in θ2
    g = np.random.default_rng(4).normal(size=L)
    order2[2] = g[(theta[None, :] - theta[:, None]) % L]  # unit 2: rotation invariant, not constant
    order1[2] = 0.3
    scores = invariance_scores(layer.replace(order1=order1, order2=order2))
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, [1.0, 0.0, 1.0], atol=1e-12)
    zero = layer.replace(order1=np.zeros_like(order1), order2=np.zeros_like(order2))
    np.testing.assert_array_equal(invariance_scores(zero), np.zeros(3))
    random_scores = invariance_scores(random_layer())
    assert np.all((random_scores >= 0) & (random_scores <= 1))


# -- thresholding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [threshold_fourier, threshold_theta])
@pytest.mark.parametrize("per_unit", [False, True])
def test_keep_one_is_identity_and_input_untouched(threshold, per_unit):
    layer = random_layer()
    before = snapshot(layer)
    same = threshold(layer, 1.0, per_unit=per_unit)
    assert same is not layer and same.order1 is not layer.order1
    assert_same(same, before, atol=1e-12)
    for keep in (0.0, 0.2, 0.5):
        out = threshold(layer, keep, per_unit=per_unit)
        assert_same(layer, before)  # the input never changes
        np.testing.assert_array_equal(out.order0, layer.order0)  # order 0 untouched
        assert out.order0 is not layer.order0
        assert out.order1.dtype == np.float64 and not np.iscomplexobj(out.order2)
    assert threshold(random_layer(effective=True), 0.5, per_unit=per_unit).label == "effective W₁·diag(1/σ)"
    nothing = threshold(layer, 0.0, per_unit=per_unit)
    assert not nothing.order1.any() and not nothing.order2.any()


@pytest.mark.parametrize("per_unit", [False, True])
def test_threshold_counts(per_unit):
    layer = random_layer(K=4, J=2, L=8)
    n = n_angular_coefficients(layer)
    assert n == 4 * 3 * (2 * 8 + 1 * 64) and n_angular_coefficients(layer, per_unit=True) == n // 4
    keep = 0.2
    count = kept_coefficients(layer, keep, per_unit=per_unit)
    assert count == (4 * round(0.2 * (n // 4)) if per_unit else round(0.2 * n))
    theta = threshold_theta(layer, keep, per_unit=per_unit)
    assert nonzero_coefficients(theta, "theta") == count
    kept = np.concatenate([np.abs(layer.order1[theta.order1 != 0]), np.abs(layer.order2[theta.order2 != 0])])
    dropped = np.concatenate([np.abs(layer.order1[theta.order1 == 0]),
                              np.abs(layer.order2[theta.order2 == 0])])
    if not per_unit:
        assert kept.min() >= dropped.max()  # the largest ones
    F1, F2 = angular_dft(layer.order1, -1), angular_dft(layer.order2, (-2, -1))
    m1, m2 = keep_masks(F1, F2, keep, per_unit)
    assert m1.sum() + m2.sum() == count
    if per_unit:
        assert all(m1[k].sum() + m2[k].sum() == count // 4 for k in range(4))
    else:
        assert np.abs(F1[m1]).min() >= np.abs(F1[~m1]).max() - 1e-12
    # what threshold_fourier keeps before taking the real part: exactly those coefficients
    fourier = threshold_fourier(layer, keep, per_unit=per_unit)
    expected1 = inverse_angular_dft(np.where(m1, F1, 0), -1).real
    np.testing.assert_allclose(fourier.order1, expected1, atol=1e-12)
    # the real part keeps at most the kept coefficients and their conjugates
    assert nonzero_coefficients(fourier, "fourier", atol=1e-9) <= 2 * count


def test_threshold_fourier_keeps_a_band_limited_layer():
    layer = band_limit(random_layer(K=2, J=2, L=8), band=1, order2_axes="raw")
    # order 1 has 3 frequencies of 8, order 2 has 9 of 64: keeping that many keeps everything
    count = n_angular_coefficients(layer)
    kept = band_coefficients(layer, band=1, order2_axes="raw")
    assert kept == 2 * 3 * (2 * 3 + 1 * 9)
    out = threshold_fourier(layer, kept / count)
    assert_same(out, snapshot(layer), atol=1e-10)


def test_band_limit():
    layer = random_layer(J=2, L=8)
    before = snapshot(layer)
    flat = band_limit(layer, band=0)
    assert_same(layer, before)
    np.testing.assert_allclose(flat.order1, np.broadcast_to(layer.order1.mean(-1, keepdims=True),
                                                            layer.order1.shape), atol=1e-12)
    np.testing.assert_array_equal(flat.order0, layer.order0)
    # band 0, relative axes: the projection onto rotation-invariant weights
    np.testing.assert_allclose(invariance_scores(flat), 1.0, atol=1e-12)
    rel = relative_angles(flat.order2)
    np.testing.assert_allclose(rel, np.broadcast_to(rel[..., :1, :], rel.shape), atol=1e-12)
    raw0 = band_limit(layer, band=0, order2_axes="raw")
    np.testing.assert_allclose(raw0.order2, np.broadcast_to(layer.order2.mean((-2, -1), keepdims=True),
                                                            layer.order2.shape), atol=1e-12)
    one = band_limit(layer, band=1)
    o1 = omega1(one)
    assert o1[[0, 1, 7]].sum() == pytest.approx(1.0) and np.abs(o1[2:7]).max() < 1e-12
    re = omega2(one, reindexed=True)
    assert re[[0, 1, 7]].sum() == pytest.approx(1.0) and np.abs(re[2:7]).max() < 1e-12
    assert nonzero_coefficients(one, "fourier", atol=1e-9) <= band_coefficients(layer, 1)
    assert band_coefficients(layer, 1) == 5 * 3 * (2 * 3 + 1 * 3 * 8)
    half = band_limit(layer, band=4)  # L/2: every frequency
    assert_same(half, before, atol=1e-12)
    assert_same(band_limit(layer, band=4, order2_axes="raw"), before, atol=1e-12)


def test_threshold_and_band_errors():
    layer = random_layer(L=8)
    for keep in (-0.1, 1.5, float("nan"), "half", True):
        with pytest.raises(ValueError, match="keep must be a fraction in"):
            threshold_fourier(layer, keep)
    with pytest.raises(ValueError, match=r"keep must be a fraction in \[0, 1\], got 1.5"):
        threshold_theta(layer, 1.5)
    with pytest.raises(ValueError, match="larger than L/2"):
        band_limit(layer, band=5)
    with pytest.raises(ValueError, match="integer ≥ 0"):
        band_limit(layer, band=-1)
    with pytest.raises(ValueError, match="order2_axes must be one of"):
        band_limit(layer, band=1, order2_axes="diagonal")


def test_thresholded_layer_goes_back_into_the_model(tiny):
    layer = first_layer(tiny)
    original = tiny.first_layer_weight.detach().clone()
    features = torch.rand(2, 3, 1 + 2 * 4 + 16, 8, 8)
    tiny.eval()
    with torch.no_grad():
        reference = tiny(features)
        with tiny.replaced_first_layer(torch.as_tensor(threshold_fourier(layer, 1.0).to_matrix())):
            np.testing.assert_array_equal(tiny(features).numpy(), reference.numpy())
        with tiny.replaced_first_layer(torch.as_tensor(band_limit(layer, 0).to_matrix())):
            changed = tiny(features)
    assert not torch.equal(changed, reference)
    assert torch.equal(tiny.first_layer_weight, original)
