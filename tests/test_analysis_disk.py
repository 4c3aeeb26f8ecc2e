"""Scattering-disk geometry (explorer.analysis.disk): hand-checked wedges and oriented gratings."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis import order1_energy, order1_wedges, order2_energy, order2_wedges, wedge_polygon
from explorer.data import synthetic_image
from explorer.scattering import Scattering2D, select


def angle_mod_pi_distance(a, b):
    d = np.mod(a - b, np.pi)
    return np.minimum(d, np.pi - d)


def test_wedge_polygon_vertices_by_hand():
    x, y = wedge_polygon(1.0, 2.0, 0.0, np.pi / 2, n=3)
    h = np.sqrt(0.5)
    np.testing.assert_allclose(x, [2, 2 * h, 0, 0, h, 1], atol=1e-12)
    np.testing.assert_allclose(y, [0, 2 * h, 2, 1, h, 0], atol=1e-12)
    x, y = wedge_polygon(0.0, 1.0, np.pi / 2, np.pi, n=2)  # a pie slice in the upper-left quadrant
    np.testing.assert_allclose(x, [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(y, [1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("args,match", [((2.0, 1.0, 0.0, 1.0), "0 ≤ r0 < r1"),
                                        ((0.0, 1.0, 1.0, 1.0), "a0 < a1"),
                                        ((0.0, np.inf, 0.0, 1.0), "finite")])
def test_wedge_polygon_rejects_bad_sectors(args, match):
    with pytest.raises(ValueError, match=match):
        wedge_polygon(*args)


def test_order1_wedges_layout_by_hand():
    energy = np.arange(8.0).reshape(2, 4)  # J = 2, L = 4
    w = order1_wedges(energy)
    assert len(w) == 16
    for j, ell, mirror in [(0, 1, False), (1, 3, True), (0, 0, True)]:
        i = np.flatnonzero((w.scale == j) & (w.theta == ell) & (w.mirror == mirror))
        assert len(i) == 1
        i = i[0]
        assert w.value[i] == energy[j, ell]
        # j = 0 (finest) is the outer ring [1, 2], j = 1 the inner disk [0, 1].
        assert (w.r_inner[i], w.r_outer[i]) == ((1.0, 2.0) if j == 0 else (0.0, 1.0))
        centre = ell * np.pi / 4 + (np.pi if mirror else 0.0)
        assert w.angle_start[i] == pytest.approx(centre - np.pi / 8)
        assert w.angle_end[i] == pytest.approx(centre + np.pi / 8)
    # Sectors of one ring tile the full circle without overlap.
    ring = np.sort(w.angle_start[w.scale == 0])
    np.testing.assert_allclose(np.diff(ring), np.pi / 4)
    assert len(w.polygons(n=4)) == 16


def test_order2_wedges_rings_line_up_with_order1_scales():
    energy = np.ones((2, 8))  # children j2 = 2, 3 of j1 = 1 when J = 4
    w = order2_wedges(energy, j1=1)
    assert set(w.scale) == {2, 3}
    assert set(zip(w.r_inner[w.scale == 2], w.r_outer[w.scale == 2])) == {(1.0, 2.0)}
    assert set(zip(w.r_inner[w.scale == 3], w.r_outer[w.scale == 3])) == {(0.0, 1.0)}
    with pytest.raises(ValueError, match="shape \\(scales, L\\)"):
        order2_wedges(np.ones(8))


@pytest.mark.parametrize("degrees", [0.0, 22.5, 45.0, 67.5, 90.0, 135.0, 157.5, 30.0, 100.0, 170.0])
def test_grating_energy_is_drawn_at_the_grating_orientation(degrees):
    """The disk's brightest wedge sits at the grating's wave-vector angle (mod π; the nearest of the
    L angles when the grating lies between two) — the orientation Kymatio's gallery disk gets wrong."""
    J, L = 3, 8
    image = synthetic_image("grating", 64, angle=np.deg2rad(degrees), period=4.0).astype(np.float64)
    w = order1_wedges(order1_energy(Scattering2D(J, (64, 64), L)(image), J, L))
    best = w.value == w.value.max()
    assert best.sum() == 2  # the sector and its mirror
    nearest = np.round(np.deg2rad(degrees) / (np.pi / L)) * np.pi / L
    assert np.all(angle_mod_pi_distance(w.angle_centre[best], nearest) < 1e-9)
    assert np.all(angle_mod_pi_distance(w.angle_centre[best], np.deg2rad(degrees)) <= np.pi / (2 * L))
    centres = w.angle_centre[best]
    np.testing.assert_allclose(np.mod(centres[1] - centres[0], 2 * np.pi), np.pi)


@pytest.mark.parametrize("carrier,modulation", [(0.0, 45.0), (90.0, 0.0), (45.0, 135.0)])
def test_order2_disk_shows_the_modulation_orientation(carrier, modulation):
    """x = carrier grating × (1 + cos(modulation)): |x ⋆ ψ_{j1,θ1}| ≈ the modulation envelope, so the
    order-2 disk of the carrier's path peaks at the modulation's orientation and scale."""
    J, L, N = 3, 8, 64
    n = np.arange(N) - (N - 1) / 2
    X, Y = np.meshgrid(n, -n)  # y up
    wave = lambda deg, period: np.cos(2 * np.pi / period * (X * np.cos(np.deg2rad(deg)) + Y * np.sin(np.deg2rad(deg))))
    image = wave(carrier, 2.7) * (1 + wave(modulation, 10.7))  # ξ_0 = 3π/4 ↔ 2.7 px; ξ_2 ↔ 10.7 px
    out = Scattering2D(J, (N, N), L)(image)
    e1 = order1_energy(out, J, L)
    j1, t1 = np.unravel_index(np.argmax(e1), e1.shape)
    assert (j1, t1) == (0, round(carrier / (180 / L)) % L)
    w = order2_wedges(order2_energy(out, J, L, int(j1), int(t1)), j1=int(j1))
    best = np.argmax(w.value)
    assert w.scale[best] == 2
    assert angle_mod_pi_distance(w.angle_centre[best], np.deg2rad(modulation)) < 1e-9


def test_energies_agree_with_path_metadata():
    J, L = 3, 4
    S = Scattering2D(J, (32, 32), L)
    out = S(np.random.default_rng(0).random((2, 32, 32)))
    e1 = order1_energy(out, J, L)
    e2 = order2_energy(out, J, L, j1=0, theta1=3)
    assert e1.shape == (2, J, L) and e2.shape == (2, J - 1, L)
    for j in range(J):
        for t in range(L):
            i = select(S.paths, order=1, j1=j, theta1=t)
            np.testing.assert_allclose(e1[:, j, t], (out[:, i] ** 2).sum(axis=(1, 2, 3)))
    for k, j2 in enumerate((1, 2)):
        for t2 in range(L):
            i = select(S.paths, order=2, j1=0, theta1=3, j2=j2, theta2=t2)
            np.testing.assert_allclose(e2[:, k, t2], (out[:, i] ** 2).sum(axis=(1, 2, 3)))
    with pytest.raises(ValueError, match="j1 must be ≤ 1"):
        order2_energy(out, J, L, j1=2, theta1=0)
    with pytest.raises(ValueError, match="max_order=2"):
        order2_energy(Scattering2D(J, (32, 32), L, max_order=1)(np.ones((32, 32))), J, L, 0, 0)


def test_raster_of_two_half_discs_is_hand_checkable():
    """One disc split into the upper half [0, π) and the lower half [π, 2π), y pointing up."""
    from explorer.analysis.disk import Wedges

    wedges = Wedges(np.zeros(2), np.ones(2), np.array([0.0, np.pi]), np.array([np.pi, 2 * np.pi]),
                    np.array([1.0, 2.0]), np.zeros(2, int), np.zeros(2, int), np.array([False, True]))
    index = wedges.raster(n=20, gap=0.6)
    assert (index[2:8, 5:15] == 0).all()  # upper rows: the upper half-disc
    assert (index[12:18, 5:15] == 1).all()
    assert (index[9:11, :] == -1).all()  # the horizontal diameter is a separator
    assert index[0, 0] == -1 and index[19, 19] == -1  # corners lie outside the disc
