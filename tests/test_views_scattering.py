"""Scattering figures: data checked without a browser, including the disk's orientation."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from explorer.pages import compute
from explorer.views import scattering as sv


@pytest.fixture(scope="module")
def result():
    return compute.scatter(compute.sample("camera", 32), 2, 8)


def _disk_peak(polygons: hv.Polygons, vdim: str) -> tuple[float, int]:
    best = max(polygons.split(), key=lambda e: e.dimension_values(vdim)[0])
    x, y = best.dimension_values(0), best.dimension_values(1)
    return float(np.degrees(np.arctan2(y.mean(), x.mean())) % 180), int(best.dimension_values("j")[0])


@pytest.mark.parametrize("angle", [0.0, 45.0, 67.5, 90.0, 157.5])
def test_disk_puts_a_grating_at_its_orientation(angle):
    """Kymatio's gallery disk confuses orientations; ours puts a grating's energy at its own angle."""
    x = compute.synthetic("grating", 64, angle, 4.0)
    res = compute.scatter(x, 3, 8)
    disk = sv.disk_order1(res).get(0)
    peak, j = _disk_peak(disk, "d1_energy")
    assert min(abs(peak - angle), 180 - abs(peak - angle)) < 12, (angle, peak)
    assert j == 1  # 2π/4 rad/pixel is nearest ξ_1 = 3π/8 (ξ_0 = 3π/4)
    # The S1 grid agrees: the brightest tile is in the grating's θ1 column.
    best = np.unravel_index(np.argmax((res.s1**2).sum(axis=(-2, -1))), res.s1.shape[:2])
    assert best[1] == round(angle / 22.5) % 8


def test_s1_grid_and_children(result):
    grid = sv.s1_grid(result, 1, 3)
    img = grid.get(0)
    assert img.kdims[0].label == "θ1 (degrees)"
    h, w = result.s1.shape[-2:]
    assert img.data.shape == (2 * (h + 1) - 1, 8 * (w + 1) - 1)
    # Tile (j1=0, θ1=0) is the top-left block.
    np.testing.assert_allclose(img.data[:h, :w], np.maximum(result.s1[0, 0], img.data[np.isfinite(img.data)].min()))
    assert "θ1=67.5°" in img.opts.get().kwargs["title"]
    children = sv.s2_children(result, 0, 3)
    assert children.data.shape == (h, 8 * (w + 1) - 1)
    none = sv.s2_children(result, 1, 3)
    assert isinstance(none, hv.Image) and np.isnan(none.data).all()
    assert np.isnan(sv.disk_order2(result, 1, 3).data).all()  # j1 = J−1 has no children
    with pytest.raises(ValueError):
        sv.s2_children(result, 5, 0)


def test_energies(result):
    e = sv.order_energies(result)
    assert e[0] > e[1] > e[2] > 0
    assert 0.9 < e.sum() < 1.05  # the bank's max A ≈ 1.01
    bars = sv.energy_per_order(result)
    np.testing.assert_allclose(bars.dimension_values(1), e, rtol=1e-6)
    assert len(sv.energy_per_path(result)) == 1 + 2 * 8 + 64


def test_maps(result):
    u = sv.modulus_view(result, 0, 2)
    assert u.data.shape == result.x.shape and (u.data >= 0).all()
    im = sv.image_view(result.x)
    assert im.bounds.lbrt() == (0, 0, 32, 32)
    assert sv.s0_view(result).data.shape == result.s0.shape
    d2 = sv.disk_order2(result, 0, 0)
    assert isinstance(d2, hv.Image) and np.nanmax(d2.data) == pytest.approx(1.0)


def test_order2_disk_raster_shows_every_child_where_its_wedge_is(result):
    """Each child wedge (j2, θ2 and its mirror) owns pixels of the image, coloured by its own energy."""
    from explorer.analysis import disk

    energy = disk.order2_energy(result.S, result.J, result.L, 0, 2)
    wedges = disk.order2_wedges(energy, 0)
    image = sv.disk_order2(result, 0, 2).data
    index = wedges.raster(n=image.shape[0])
    assert set(np.unique(index)) == set(range(-1, len(wedges)))
    peak = wedges.value.max()
    for k in range(len(wedges)):
        np.testing.assert_allclose(image[index == k], wedges.value[k] / peak, rtol=1e-6)
    assert np.isnan(image[index == -1]).all()
