"""Our scattering against Kymatio, path by path, matched by metadata (issue #2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from kymatio.scattering2d.filter_bank import filter_bank as kymatio_filter_bank

from explorer.scattering import Scattering2D, filter_bank, padded_shape
from explorer.scattering.filters import crop_spectrum

from kymatio_reference import kymatio_paths, kymatio_scattering, load_our_filters_into, mirror, our_angle

SHAPES = [(32, 32), (64, 64), (40, 56)]


def relative_errors(ours: Scattering2D, x: torch.Tensor, kymatio) -> np.ndarray:
    """Per-path ‖ours − Kymatio‖ / ‖Kymatio‖, after matching Kymatio's list by metadata."""
    coefficients = kymatio(x)
    paths = kymatio_paths(coefficients, ours.L)
    assert sorted(paths, key=str) == sorted(ours.paths, key=str), "path sets differ"
    index = {p: i for i, p in enumerate(ours.paths)}
    S = ours(x)
    return np.array([float((S[:, index[p]] - c["coef"]).norm() / c["coef"].norm())
                     for p, c in zip(paths, coefficients)])


@pytest.mark.parametrize("J", [1, 2, 3, 4])
@pytest.mark.parametrize("L", [4, 6, 8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_float32_matches_kymatio_on_random_images(J, L, shape):
    torch.manual_seed(J * 100 + L)
    x = torch.rand(2, *shape)
    errors = relative_errors(Scattering2D(J, shape, L), x, kymatio_scattering(J, shape, L))
    assert errors.max() < 1e-5, f"worst path error {errors.max():.2e}"


@pytest.mark.parametrize("J,L", [(1, 8), (2, 8), (3, 6), (4, 4)])
def test_float64_matches_kymatio_with_the_same_filters(J, L):
    shape = (40, 56)
    ours = Scattering2D(J, shape, L)
    kymatio = kymatio_scattering(J, shape, L)
    load_our_filters_into(kymatio, ours.bank)
    kymatio = kymatio.double()
    x = torch.rand(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(J))
    errors = relative_errors(ours, x, kymatio)
    assert errors.max() < 1e-10, f"worst path error {errors.max():.2e}"


def test_max_order_one_matches_kymatio():
    x = torch.rand(3, 32, 32)
    errors = relative_errors(Scattering2D(3, (32, 32), 8, max_order=1), x,
                             kymatio_scattering(3, (32, 32), 8, max_order=1))
    assert len(errors) == 1 + 3 * 8 and errors.max() < 1e-5


@pytest.mark.parametrize("J,L,max_order", [(2, 3, 2), (3, 5, 2), (2, 5, 1)])
def test_odd_number_of_angles_matches_kymatio_with_the_same_filters(J, L, max_order):
    # Odd L cannot pack two real maps per FFT: this exercises the unpacked code path. Kymatio's
    # own angles for odd L sit half a step off the grid ℓπ/L, so it is given our filters.
    ours = Scattering2D(J, (32, 32), L, max_order=max_order)
    kymatio = kymatio_scattering(J, (32, 32), L, max_order=max_order)
    load_our_filters_into(kymatio, ours.bank)
    x = torch.rand(2, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(L))
    errors = relative_errors(ours, x, kymatio.double())
    assert errors.max() < 1e-10, f"worst path error {errors.max():.2e}"


@pytest.mark.dataset
@pytest.mark.parametrize("J,L", [(1, 8), (2, 8), (3, 6), (4, 4)])
def test_float32_matches_kymatio_on_cifar_images(cifar_dir, J, L):
    from explorer.data import load_cifar10

    test = load_cifar10("test", cifar_dir)
    x = torch.from_numpy(test.images[:4].astype(np.float32) / 255).reshape(12, 32, 32)
    errors = relative_errors(Scattering2D(J, (32, 32), L), x, kymatio_scattering(J, (32, 32), L))
    assert errors.max() < 1e-5, f"worst path error {errors.max():.2e}"


@pytest.mark.parametrize("M,N,J,L", [(40, 40, 2, 8), (48, 64, 3, 6), (96, 96, 4, 4)])
def test_filter_bank_matches_kymatio(M, N, J, L):
    """Same filters up to Kymatio's complex64 construction, including every cropped level."""
    ours = filter_bank(M, N, J, L)
    theirs = kymatio_filter_bank(M, N, J, L)
    for res, level in enumerate(theirs["phi"]["levels"]):
        np.testing.assert_allclose(ours.phi_at(res), level, atol=1e-6 * np.abs(level).max())
    for psi in theirs["psi"]:
        full = mirror(ours.psi_hat[psi["j"], our_angle(psi["theta"], L)])
        for res, level in enumerate(psi["levels"]):
            mine = crop_spectrum(ours.psi_hat[psi["j"], our_angle(psi["theta"], L)], res)
            np.testing.assert_allclose(mirror(mine), level, atol=1e-6 * np.abs(level).max())
        np.testing.assert_allclose(full, psi["levels"][0], atol=1e-6 * np.abs(full).max())


def test_padded_shape_is_kymatios():
    from kymatio.scattering2d.utils import compute_padding

    for shape, J in [((32, 32), 2), ((30, 45), 3), ((16, 16), 4), ((224, 224), 3)]:
        assert padded_shape(shape, J) == compute_padding(*shape, J)
