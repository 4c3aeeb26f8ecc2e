"""Scattering figures: data checked without a browser, including the disk's orientation."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from explorer.analysis import cache
from explorer.data import sources
from explorer.scattering import n_paths
from explorer.views import scattering as sv


@pytest.fixture(scope="module")
def result():
    return cache.scatter(sources.sample("camera", 32), 2, 8)


def _disk_peak(polygons: hv.Polygons, vdim: str) -> tuple[float, int]:
    best = max(polygons.split(), key=lambda e: e.dimension_values(vdim)[0])
    x, y = best.dimension_values(0), best.dimension_values(1)
    return float(np.degrees(np.arctan2(y.mean(), x.mean())) % 180), int(best.dimension_values("j")[0])


@pytest.mark.parametrize("angle", [0.0, 45.0, 67.5, 90.0, 157.5])
def test_disk_puts_a_grating_at_its_orientation(angle):
    """Kymatio's gallery disk confuses orientations; ours puts a grating's energy at its own angle."""
    x = sources.synthetic("grating", 64, angle, 4.0)
    res = cache.scatter(x, 3, 8)
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
    assert children.get(0).data.shape == (h, 8 * (w + 1) - 1)
    assert children.get(1).text == ""  # children exist: nothing to explain
    with pytest.raises(ValueError):
        sv.s2_children(result, 5, 0)


def test_coarsest_scale_says_why_it_has_no_children(result):
    """At j1 = J−1 the S2 mosaic and disk are empty: the plot itself says why, under a title that stays as
    short as the others (a longer one was cut off at the disk's width)."""
    for view in (sv.s2_children, sv.disk_order2):
        empty, full = view(result, 1, 3), view(result, 0, 3)
        assert type(empty) is type(full) and isinstance(empty, hv.Overlay)  # one element type per DynamicMap
        image, note = empty.get(0), empty.get(1)
        assert np.isnan(image.data).all()
        assert note.text.replace("\n", " ") == "j1 = 1 = J−1 is the coarsest scale: no order-2 children"
        # The note sits over the middle of the blank plot.
        (l, b, r, t) = image.bounds.lbrt()
        assert l < note.x < r and b < note.y < t
        title = image.opts.get().kwargs["title"]
        assert title.endswith("j1=1, θ1=67.5°"), title
        assert full.get(1).text == ""


def test_energies(result):
    e = sv.order_energies(result)
    assert e[0] > e[1] > e[2] > 0
    assert 0.9 < e.sum() < 1.05  # the bank's max A ≈ 1.01
    bars = sv.energy_per_order_figure(result).get(0)
    np.testing.assert_allclose(bars.dimension_values(1), 100 * e, rtol=1e-6)
    assert len(sv.energy_per_path_figure(result)) == n_paths(2, 8)


def test_maps(result):
    u = sv.modulus_view(result, 0, 2)
    assert u.data.shape == result.x.shape and (u.data >= 0).all()
    im = sv.image_view(result.x)
    assert im.bounds.lbrt() == (0, 0, 32, 32)
    assert sv.s0_view(result).data.shape == result.s0.shape
    d2 = sv.disk_order2(result, 0, 0).get(0)
    assert isinstance(d2, hv.Image) and np.nanmax(d2.data) == pytest.approx(1.0)


def test_order2_disk_raster_shows_every_child_where_its_wedge_is(result):
    """Each child wedge (j2, θ2 and its mirror) owns pixels of the image, coloured by its own energy."""
    from explorer.analysis import disk

    energy = disk.order2_energy(result.S, result.J, result.L, 0, 2)
    wedges = disk.order2_wedges(energy, 0)
    image = sv.disk_order2(result, 0, 2).get(0).data
    index = wedges.raster(n=image.shape[0])
    assert set(np.unique(index)) == set(range(-1, len(wedges)))
    peak = wedges.value.max()
    for k in range(len(wedges)):
        np.testing.assert_allclose(image[index == k], wedges.value[k] / peak, rtol=1e-6)
    assert np.isnan(image[index == -1]).all()


def _figure(view):
    from bokeh.models import Plot

    plot = hv.render(view, backend="bokeh")
    return plot if isinstance(plot, Plot) else plot.select_one({"type": Plot})


def test_energy_per_order_bars_grow_with_their_values(result):
    """A log axis with the bars' bottoms at different heights made S2 look a third of S0 although it is 0.1 %
    of it: the axis is linear from 0, and each value is written above its bar."""
    from bokeh.models import GlyphRenderer, LinearScale, VBar

    e = 100 * sv.order_energies(result)
    overlay = sv.energy_per_order_figure(result)
    fig = _figure(overlay)
    assert isinstance(fig.y_scale, LinearScale)
    assert fig.y_range.start == 0 and fig.y_range.end > e.max()
    bars = [r for r in fig.select({"type": GlyphRenderer}) if isinstance(r.glyph, VBar)]
    assert len(bars) == 1 and bars[0].glyph.bottom == 0  # every bar starts at 0: length ∝ value
    labels = overlay.get(1)
    np.testing.assert_allclose(labels.dimension_values(1), e, rtol=1e-6)  # each label at its bar's top
    written = [float(t.rstrip(" %")) for t in labels.dimension_values("value")]
    np.testing.assert_allclose(written, e, rtol=5e-3)


def _labels(fig) -> list[str]:
    from bokeh.models import Axis, ColorBar

    texts = [fig.title.text] if fig.title is not None else []
    texts += [a.axis_label for a in fig.select({"type": Axis}) if a.axis_label]
    texts += [c.title for c in fig.select({"type": ColorBar}) if c.title]
    return texts


def test_titles_and_axes_are_plain_unicode(result):
    """Bokeh titles and axis labels cannot render TeX here: no φ_J or ψ_{j,θ} in them."""
    views = [sv.image_view(result.x), sv.s0_view(result), sv.s1_grid(result), sv.s2_children(result, 0, 1),
             sv.s2_children(result, 1, 1), sv.modulus_view(result, 0, 1), sv.energy_per_order_figure(result),
             sv.energy_per_path_figure(result), sv.disk_order1(result), sv.disk_order2(result, 0, 1)]
    texts = [t for v in views for t in _labels(_figure(v))]
    assert len(texts) > 20
    assert [t for t in texts if any(c in t for c in "_{}$^\\")] == []


def test_captions_write_their_formulas_as_tex():
    """Captions are Markdown rendered with MathJax: every formula between $$…$$, no raw ψ_{j,θ} or 2^J in the
    text around them, and no \\| (Markdown turns it into |)."""
    import re

    for key, caption in sv.CAPTIONS.items():
        assert "$$" in caption, key
        outside = re.sub(r"\$\$.*?\$\$", "", caption)
        assert not re.search(r"[_^{}\\]", outside), (key, outside)
        assert "\\|" not in caption and ">" not in caption, key  # Markdown eats \|; HTML escapes >
