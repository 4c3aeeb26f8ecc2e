"""Invariance and stability analyses (explorer.analysis.invariance) against closed forms and theorems."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis import (
    deformation_distances,
    displacement_field,
    energy_per_order,
    energy_per_path,
    lipschitz_ratios,
    littlewood_paley_bound,
    max_jacobian_norm,
    roll_angles,
    rotate,
    rotation_errors,
    smooth_window,
    spatial_average,
    translate,
    translation_errors,
    warp,
)
from explorer.data import sample_image, synthetic_image
from explorer.scattering import Scattering2D, select
from explorer.scattering.padding import reflect_pad


@pytest.fixture(scope="module")
def camera32():
    return sample_image("camera", 32).astype(np.float64)


@pytest.fixture(scope="module")
def camera64():
    return sample_image("camera", 64).astype(np.float64)


# -- rotation ------------------------------------------------------------------------------------
def test_rotate_is_exact_at_multiples_of_90_degrees():
    x = np.random.default_rng(0).random((6, 6))
    for k in range(-2, 6):
        np.testing.assert_array_equal(rotate(x, 90 * k), np.rot90(x, k))
    wide = np.random.default_rng(1).random((4, 6))
    np.testing.assert_array_equal(rotate(wide, 180), wide[::-1, ::-1])
    assert rotate(wide, 90).shape == wide.shape  # interpolated, keeps the shape


def test_rotate_turns_counter_clockwise_as_displayed():
    """A bar rotated by +30° matches the bar drawn at +30° (synthetic images: y up, angles CCW)."""
    bar = lambda deg: synthetic_image("bar", 64, angle=np.deg2rad(deg), width=4.0).astype(np.float64)
    turned = rotate(bar(0), 30)
    assert np.linalg.norm(turned - bar(30)) < 0.5 * np.linalg.norm(turned - bar(-30))


def test_roll_angles_moves_theta_axes_only():
    J, L = 2, 4
    S = Scattering2D(J, (16, 16), L)
    s = np.arange(len(S.paths), dtype=float)
    rolled = roll_angles(s, 1, J, L)
    index = {p: i for i, p in enumerate(S.paths)}
    for i, p in enumerate(S.paths):
        if p.order == 0:
            assert rolled[i] == s[i]
        elif p.order == 1:
            assert rolled[i] == s[index[p._replace(theta1=(p.theta1 - 1) % L)]]
        else:
            source = p._replace(theta1=(p.theta1 - 1) % L, theta2=(p.theta2 - 1) % L)
            assert rolled[i] == s[index[source]]


@pytest.mark.parametrize("image_name", ["camera", "noise"])
def test_rotation_by_right_angles_is_exact_with_rolled_angles(image_name, camera32):
    x = camera32 if image_name == "camera" else np.random.default_rng(3).random((32, 32))
    L = 8
    r = rotation_errors(x, J=2, L=L, degrees=[0, 90, 180, 270, -90])
    np.testing.assert_array_equal(r["shift"], [0, L // 2, 0, L // 2, L // 2])
    assert r["error"].max() < 1e-6
    assert r["error_order1"].max() < 1e-6 and r["error_order2"].max() < 1e-6
    # Without the roll, the 90° rotation is far off: the angles must turn with the image.
    assert r["error_unrolled"][1] > 1e3 * max(r["error"][1], 1e-12)
    assert r["error_unrolled"][1] > 1e-3


def test_rotation_by_an_oblique_angle_is_approximate_but_covariant():
    """An oriented bar turned by 45° (= 2 angle steps for L = 8): rolling θ by 2 explains most of the
    change, although interpolation makes it inexact."""
    x = synthetic_image("bar", 64, angle=0.3, width=4.0, length=24.0).astype(np.float64)
    r = rotation_errors(x, J=3, L=8, degrees=[45.0], window=True)
    assert r["shift"][0] == 2
    assert 1e-6 < r["error_order1"][0]
    rolled_vs_unrolled = r["error"][0] / r["error_unrolled"][0]
    assert rolled_vs_unrolled < 0.3, r


def test_full_average_equals_mean_of_maps(camera32):
    S = Scattering2D(2, (32, 32), 4)
    avg = spatial_average(S, camera32)
    maps = S.modulus_maps(camera32, [S.paths[5]])[0]
    assert avg[0] == pytest.approx(camera32.mean())
    assert avg[5] == pytest.approx(maps.mean())
    w = smooth_window((32, 32))
    weighted = spatial_average(S, camera32, weights=3 * w)
    assert weighted[5] == pytest.approx((maps * w).sum() / w.sum())
    assert spatial_average(S, camera32, average="output")[0] == pytest.approx(S(camera32)[0].mean())
    with pytest.raises(ValueError, match="average must be one of"):
        spatial_average(S, camera32, average="median")
    with pytest.raises(ValueError, match="weights must be finite"):
        spatial_average(S, camera32, weights=-w)


def test_smooth_window_is_radial_and_rot90_symmetric():
    w = smooth_window((32, 32))
    np.testing.assert_array_equal(w, np.rot90(w))
    assert w[15, 15] == 1.0 and w[0, 0] == 0.0 and w.min() >= 0 and w.max() <= 1
    assert w[16, 0] < w[16, 4] < w[16, 8] <= 1.0


# -- translation ---------------------------------------------------------------------------------
def test_translate_is_a_circular_shift_to_the_right():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(translate(x, 1)[:, 1:], x[:, :-1])
    np.testing.assert_array_equal(translate(x, -1), np.roll(x, -1, axis=1))


def test_translation_error_grows_linearly_for_small_shifts_and_falls_with_J(camera64):
    small = translation_errors(camera64, J=3, shifts=[0, 1, 2], window=True)
    assert small["error"][0] == 0.0
    np.testing.assert_allclose(small["shift_over_scale"], [0, 1 / 8, 2 / 8])
    assert small["error"][2] / small["error"][1] == pytest.approx(2.0, rel=0.15)
    # A one-pixel shift changes the pixels far more than S_J, and less so for a larger J.
    assert small["error"][1] < 0.5 * small["pixel_error"][1]
    finer = translation_errors(camera64, J=2, shifts=[1], window=True)
    assert small["error"][1] < finer["error"][0]
    # "of order |c|/2^J"
    assert 0.1 < small["error"][1] / small["shift_over_scale"][1] < 2.0


# -- deformations --------------------------------------------------------------------------------
def test_displacement_field_has_unit_jacobian_norm():
    tau = displacement_field((32, 48), seed=4)
    assert tau.shape == (2, 32, 48)
    assert max_jacobian_norm(tau) == pytest.approx(1.0)


def test_max_jacobian_norm_of_a_linear_field_is_its_spectral_norm():
    A = np.array([[0.3, -0.2], [0.5, 0.1]])
    rows, cols = np.indices((9, 9), dtype=float)
    tau = np.einsum("ij,jhw->ihw", A, np.stack([rows, cols]))
    assert max_jacobian_norm(tau) == pytest.approx(np.linalg.norm(A, 2))


def test_warp_by_a_constant_field_is_a_translation():
    x = np.random.default_rng(5).random((8, 10))
    assert np.array_equal(warp(x, np.zeros((2, 8, 10))), x)
    one_right = np.stack([np.zeros((8, 10)), np.ones((8, 10))])  # x(u − τ): moves content right
    np.testing.assert_allclose(warp(x, one_right)[:, 1:], x[:, :-1], atol=1e-12)
    with pytest.raises(ValueError, match="tau must have shape"):
        warp(x, np.zeros((2, 10, 8)))


def test_scattering_is_stable_to_deformations(camera64):
    d = deformation_distances(camera64, J=3, L=8, s_values=np.linspace(0, 0.3, 7), seed=0)
    s, pixel, fourier, scat = d["s"], d["pixel"], d["fourier"], d["scattering"]
    assert s[0] == 0 and pixel[0] == fourier[0] == scat[0] == 0
    assert np.all(np.diff(pixel) > 0) and np.all(np.diff(scat) > 0)
    assert np.all(fourier <= pixel + 1e-12)  # ||a| − |b|| ≤ |a − b|: a theorem, checks the normalisation
    assert np.all(scat[1:] < 0.5 * pixel[1:])  # grows much more slowly
    slope = (s @ scat) / (s @ s)  # roughly linear through the origin
    residual = np.linalg.norm(scat - slope * s) / np.linalg.norm(scat)
    assert residual < 0.1, residual
    assert d["max_displacement"][-1] == pytest.approx(0.3 * np.hypot(*displacement_field((64, 64), 0)).max())


def test_bilinear_interpolation_inflates_the_fine_texture_distance():
    """The documented caveat: on a fine texture the bilinear warp's low-pass effect, not the
    deformation, dominates the first step; a cubic warp removes most of it."""
    grass = sample_image("grass", 64)
    s = [0.0, 0.05, 0.3]
    bilinear = deformation_distances(grass, 3, s_values=s)["scattering"]
    cubic = deformation_distances(grass, 3, s_values=s, interpolation_order=3)["scattering"]
    assert bilinear[1] > 2 * cubic[1]
    assert cubic[2] / cubic[1] > 3  # close to linear (6 for exactly linear)


def test_deformation_adds_s_equal_zero():
    d = deformation_distances(np.random.default_rng(0).random((16, 16)), 2, s_values=[0.1])
    np.testing.assert_array_equal(d["s"], [0.0, 0.1])


# -- non-expansiveness ---------------------------------------------------------------------------
def test_lipschitz_ratios_are_bounded_by_one():
    images = np.stack([sample_image(n, 32) for n in ("camera", "coins", "moon", "brick", "text")])
    r = lipschitz_ratios(images, J=2, L=8, n_pairs=12, seed=0)
    assert r["ratio"].shape == r["ratio_padded"].shape == (24,)
    assert list(r["kind"]).count("noise") == 12
    assert r["bound"] == pytest.approx(1.0, abs=1e-12)
    assert r["raw_lp_max"] > 1.0  # the raw Morlet bank is slightly expansive
    assert r["ratio_padded"].max() <= r["bound"]
    assert np.all(r["ratio_padded"] <= r["ratio"])  # padding only adds to ‖x − y‖
    assert r["ratio"].min() > 0.05  # the transform does not collapse everything
    distinct = r["kind"] == "distinct"
    assert np.all(r["first"][distinct] != r["second"][distinct])
    assert littlewood_paley_bound((32, 32), 2, 8, normalize=False) == pytest.approx(r["raw_lp_max"])


def test_a_difference_next_to_the_border_counts_twice():
    """Reflect padding (edge not repeated) mirrors column 1 onto column −1: a difference there enters
    the transform twice, so the ratio against the unpadded ‖x − y‖ exceeds 1 while the ratio against
    the padded difference, which the contraction theorem is about, does not."""
    stripe = np.zeros((32, 32))
    stripe[:, 1] = 1.0
    padded = reflect_pad(stripe, 2)
    assert padded.shape == (40, 40) and padded[:, 3].sum() == padded[:, 5].sum() == 40
    r = lipschitz_ratios(np.stack([np.zeros((32, 32)), stripe]), J=2, L=8, n_pairs=2)
    distinct = r["kind"] == "distinct"
    assert np.all(r["ratio"][distinct] > 1.0)
    assert np.all(r["ratio_padded"] <= 1.0)


# -- energy --------------------------------------------------------------------------------------
def test_energy_per_order_matches_path_metadata_and_decays():
    J, L = 3, 8
    x = synthetic_image("noise", 64, sigma=1.0) * smooth_window((64, 64))
    S = Scattering2D(J, (64, 64), L)
    out = S(np.stack([x, x[::-1]]).astype(np.float64))
    per_order = energy_per_order(out, J, L, relative=False)
    assert per_order.shape == (2, 3)
    for order in range(3):
        idx = select(S.paths, order=order)
        np.testing.assert_allclose(per_order[:, order], (out[:, idx] ** 2).sum(axis=(1, 2, 3)))
    relative = energy_per_order(out, J, L)
    np.testing.assert_allclose(relative.sum(-1), 1.0)
    assert np.all(relative[:, 0] > relative[:, 1]) and np.all(relative[:, 1] > relative[:, 2])
    per_path = energy_per_path(out, S.paths)
    np.testing.assert_allclose(per_path.sum(-1), 1.0)
    np.testing.assert_allclose(per_path[:, select(S.paths, order=2)].sum(-1), relative[:, 2])
    first_order_only = energy_per_order(Scattering2D(J, (64, 64), L, max_order=1)(x), J, L)
    assert first_order_only.shape == (2,)


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("call,match", [
    (lambda: rotate(np.zeros((2, 3, 3)), 10), "image must have shape"),
    (lambda: rotate(np.zeros((4, 4)), float("nan")), "degrees must be a finite"),
    (lambda: rotation_errors(np.zeros((8, 8)), 4, 8), "smaller than 2\\^J"),
    (lambda: rotation_errors(np.ones((16, 16)), 2, 4, degrees=[]), "degrees must be a non-empty"),
    (lambda: translation_errors(np.ones((16, 16)), 2, 4, shifts=[1.5]), "shifts must be an integer"),
    (lambda: translation_errors(np.ones((16, 16)), 2, 4, shifts=[16]), "shifts must be ≤ 15"),
    (lambda: deformation_distances(np.ones((16, 16)), 2, 4, s_values=[2.0]), "s_values must all be ≤ 1"),
    (lambda: lipschitz_ratios(np.ones((1, 16, 16)), 2, 4), "N ≥ 2"),
    (lambda: lipschitz_ratios(np.ones((3, 16, 16)), 2, 4, n_pairs=0), "n_pairs must be ≥ 1"),
    (lambda: energy_per_order(np.ones((5, 2, 2)), 2, 4), "matches neither"),
    (lambda: energy_per_path(np.ones((5, 2, 2)), []), "P = len\\(paths\\)"),
    (lambda: rotation_errors(np.full((16, 16), np.inf), 2, 4), "NaN or infinite"),
])
def test_invalid_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
