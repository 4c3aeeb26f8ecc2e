"""Reconstruction from scattering coefficients (explorer.analysis.reconstruction)."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis import Reconstruction, reconstruct
from explorer.data import synthetic_image
from explorer.scattering import Scattering2D


@pytest.fixture(scope="module")
def disk():
    return synthetic_image("disk", 32).astype(np.float64)


@pytest.fixture(scope="module")
def by_order(disk):
    """J = 3 on 32×32: order 1 keeps 25 × 4 × 4 = 400 numbers for 1024 pixels, order 2 keeps 3472."""
    return {order: reconstruct(disk, J=3, max_order=order, steps=150, seed=0) for order in (1, 2)}


def test_order_two_reconstruction_matches_the_coefficients(disk, by_order):
    r = by_order[2]
    assert isinstance(r, Reconstruction) and r.image.shape == disk.shape
    assert r.evaluations == len(r.losses) == 150 and not r.cancelled
    assert r.losses.min() < 1e-3 * r.losses[0]  # the loss decreases by orders of magnitude
    assert r.losses[-10:].mean() < r.losses[:10].mean()
    # The reported scattering error is that of the returned image, recomputed independently.
    S = Scattering2D(3, disk.shape, 8, 2)
    recomputed = np.linalg.norm(S(r.image) - S(disk)) / np.linalg.norm(S(disk))
    assert r.scattering_error == pytest.approx(recomputed, rel=1e-6)
    assert r.relative_error == pytest.approx(np.linalg.norm(r.image - disk) / np.linalg.norm(disk))


def test_order_two_recovers_the_geometry_that_order_one_loses(by_order):
    """Both fit their own coefficients, but only order 2 pins down the image."""
    assert by_order[1].scattering_error < 0.05
    assert by_order[2].relative_error < 0.5 * by_order[1].relative_error


def test_callback_reports_progress_and_can_cancel(disk):
    seen = []

    def callback(step, loss, image):
        seen.append((step, loss, image.shape))
        return step < 10

    r = reconstruct(disk, J=2, max_order=1, steps=100, callback=callback, callback_every=5)
    assert [s for s, _, _ in seen] == [5, 10]
    assert all(shape == disk.shape for _, _, shape in seen)
    assert seen[1][1] <= seen[0][1]  # best loss so far never increases
    assert r.cancelled and r.evaluations == 10


def test_adam_also_decreases_the_loss(disk):
    r = reconstruct(disk, J=2, max_order=1, steps=40, method="adam", lr=0.05)
    assert r.evaluations == 40 and r.losses[-1] < 0.2 * r.losses[0]


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 0}, "steps must be ≥ 1"),
    ({"method": "sgd"}, "method must be one of"),
    ({"lr": -1.0}, "lr must be > 0"),
    ({"callback": 3}, "callback must be callable"),
])
def test_invalid_arguments(disk, kwargs, match):
    with pytest.raises(ValueError, match=match):
        reconstruct(disk, J=2, **kwargs)


def test_zero_image_is_rejected():
    with pytest.raises(ValueError, match="zero scattering energy"):
        reconstruct(np.zeros((16, 16)), J=2)


def test_the_optimisation_starts_from_initial_image(disk):
    """The page shows `initial_image` as the start: it must be the point the first evaluation is made at
    (one evaluation returns it as the best image met)."""
    from explorer.analysis.reconstruction import initial_image

    start = initial_image(disk, seed=3)
    assert start.shape == disk.shape and start.std() > 0
    assert start.mean() == pytest.approx(disk.mean(), abs=0.05 * disk.std())
    assert start.std() == pytest.approx(disk.std(), rel=0.1)
    np.testing.assert_array_equal(initial_image(disk, seed=3), start)  # seeded
    assert not np.allclose(initial_image(disk, seed=4), start)
    r = reconstruct(disk, J=2, max_order=1, steps=1, seed=3)
    np.testing.assert_array_equal(r.image, start)
