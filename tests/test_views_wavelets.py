"""The wavelet figures: data, orientation (y up, θ counter-clockwise) and labels, without a browser."""
from __future__ import annotations

import itertools

import holoviews as hv
import numpy as np
import pytest

from explorer.views import wavelets as wv


def peak(img: hv.Image) -> tuple[float, float]:
    x, y, v = (img.dimension_values(i) for i in range(3))
    k = int(np.argmax(v))
    return float(x[k]), float(y[k])


@pytest.mark.parametrize("ell", range(8))
def test_fourier_bump_is_at_theta(ell):
    bank = wv.display_bank(3, 8)
    overlay = wv.wavelet_fourier(bank, 0, ell)
    img = overlay.get(0)
    x, y = peak(img)
    angle = np.degrees(np.arctan2(y, x)) % 180
    expected = 180 * ell / 8
    assert min(abs(angle - expected), 180 - abs(angle - expected)) < 10
    assert np.hypot(x, y) == pytest.approx(bank.xi0, rel=0.15)
    assert f"θ={expected:g}°" in img.opts.get().kwargs["title"]


def test_space_parts_and_axes():
    bank = wv.display_bank(2, 8)
    re, im, mod = (wv.wavelet_space(bank, 1, 2, part) for part in ("real", "imag", "modulus"))
    assert re.kdims[0].label == "x (pixels)" and re.kdims[1].label == "y (pixels)"
    np.testing.assert_allclose(mod.dimension_values(2) ** 2,
                               re.dimension_values(2) ** 2 + im.dimension_values(2) ** 2, rtol=1e-4, atol=1e-7)
    # y up: a wavelet at θ = 90° oscillates along y, so its real part varies along y at x = 0.
    vertical = wv.wavelet_space(bank, 0, 4, "real")
    assert vertical.dimension_values(0).min() < 0 < vertical.dimension_values(1).max()
    with pytest.raises(ValueError, match="scale j=5"):
        wv.wavelet_space(bank, 5, 0)


@pytest.mark.parametrize("j,ell", [(0, 0), (1, 3), (2, 6)])
def test_the_page_s_three_panel_image_holds_the_three_parts(j, ell):
    bank = wv.display_bank(3, 8)
    panels = wv.wavelet_space_panels(bank, j, ell)
    parts = [wv.wavelet_space(bank, j, ell, part) for part in ("real", "imag", "modulus")]
    grid = panels.dimension_values(2, flat=False)  # rows top to bottom, like each part's
    side = parts[0].dimension_values(2, flat=False)
    rows, cols = side.shape
    assert grid.shape == (rows, 3 * cols + 2 * wv.PANEL_GAP)
    for k, part in enumerate(parts):
        start = k * (cols + wv.PANEL_GAP)
        np.testing.assert_allclose(grid[:, start:start + cols], part.dimension_values(2, flat=False),
                                   rtol=1e-6)
        if k < 2:
            assert np.isnan(grid[:, start + cols:start + cols + wv.PANEL_GAP]).all()
    opts = panels.opts.get().kwargs
    m = float(np.abs(parts[2].dimension_values(2)).max())
    assert opts["clim"] == pytest.approx((-m, m), rel=1e-6)  # one symmetric scale for all three
    assert opts["title"] == f"Re ψ · Im ψ · |ψ|, j={j}, θ={180 * ell / 8:g}°"
    # Each panel's ticks are labelled from its own centre: the labels repeat three times.
    labels = [label for _, label in opts["xticks"]]
    assert labels[:3] * 3 == labels and "0" in labels


def test_fourier_without_the_cross_names_the_centre():
    bank = wv.display_bank(3, 8)
    img = wv.wavelet_fourier(bank, 1, 2, mark_centre=False)
    assert isinstance(img, hv.Image)
    xi = bank.xi0 / 2
    expected = f"centre ({xi * np.cos(np.pi / 4):.2f}, {xi * np.sin(np.pi / 4):.2f})"
    assert img.opts.get().kwargs["title"].endswith(expected)
    np.testing.assert_array_equal(img.dimension_values(2),
                                  wv.wavelet_fourier(bank, 1, 2).get(0).dimension_values(2))


def test_littlewood_paley_and_tiling():
    bank = wv.display_bank(3, 8)
    lp = wv.littlewood_paley_image(bank)
    assert lp.dimension_values(2).max() == pytest.approx(bank.lp_max, rel=1e-5)
    assert f"{bank.lp_max:.3f}" in lp.opts.get().kwargs["title"]
    tiling = wv.filter_tiling(bank, 1, 3)
    centres = tiling.get(1).array()
    assert centres.shape == (24, 4)
    selected = tiling.get(2).array()[0]
    assert selected[2] == 1 and selected[3] == pytest.approx(67.5)
    phi = wv.lowpass_space(bank)
    x, y = peak(phi)
    assert abs(x) <= 1 and abs(y) <= 1


def tick_gaps_px(ticks, left, right, frame_width, char_px=7.0):
    """For consecutive x ticks: the gap in screen pixels between their label boxes (negative: overlap)."""
    ticks = sorted(ticks)
    scale = frame_width / (right - left)
    return [(b - a) * scale - char_px * (len(la) + len(lb)) / 2 for (a, la), (b, lb) in itertools.pairwise(ticks)]


@pytest.mark.parametrize("J,L,slant", [(6, 16, 0.5), (6, 16, 0.1), (6, 8, 1.0), (1, 2, 0.5), (1, 2, 0.1), (3, 8, 0.5)])
def test_the_three_panel_tick_labels_never_collide(J, L, slant):
    """At every scale of the bank the labels of neighbouring panels (e.g. "128" ending one panel and "−128"
    starting the next) stay apart on the page's 3 × 220 px frame."""
    bank = wv.display_bank(J, L, slant=slant)
    for j in range(J):
        panels = wv.wavelet_space_panels(bank, j, L // 2)
        opts = panels.opts.get().kwargs
        left, _, right, _ = panels.bounds.lbrt()
        gaps = tick_gaps_px(opts["xticks"], left, right, opts["frame_width"])
        assert min(gaps) >= 8, (j, opts["xticks"], gaps)
        # Every tick lies inside the plot.
        assert all(left <= x <= right for x, _ in opts["xticks"]), opts["xticks"]


def test_expansiveness_message_says_what_max_a_above_one_means():
    assert wv.expansiveness(1.00006) is None  # the default bank at J ≤ 2: rounding
    assert wv.expansiveness(0.97) is None
    kind, text = wv.expansiveness(2.2)
    assert kind == "warning"
    assert r"2.200 \gt 1" in text and "expand distances" in text and "normalize=True" in text
    assert "1.483" in text  # each layer stretches by up to √2.2
    kind, text = wv.expansiveness(1.0137)  # the Morlet bank at J = 3: slightly above 1, a note
    assert kind == "info" and "1.014" in text and "slightly above 1" in text and "1.007" in text
    assert "normalize=True" in text


def test_fourier_plot_zooms_on_coarse_scales_and_says_so():
    """At J = 6 the bump of j = 5 was a dot on [−π, π]²: from j = 3 on the plot zooms ×2 per scale, keeps
    the bump inside, and its axis labels say by how much."""
    bank = wv.display_bank(6, 8)
    for j in range(6):
        img = wv.wavelet_fourier(bank, j, 2, mark_centre=False)
        zoom = wv.fourier_zoom(j)
        assert zoom == (1 if j < 3 else 2 ** (j - 2))
        left, _, right, _ = img.bounds.lbrt()
        assert right - left == pytest.approx(2 * np.pi / zoom, rel=0.05)
        assert (f"zoom ×{zoom}" in img.kdims[0].label) == (zoom > 1)
        x, y = peak(img)
        xi = bank.xi0 / 2**j
        assert np.hypot(x, y) == pytest.approx(xi, rel=0.3)  # the bump is in the window
        # The bump is wider than a few pixels of the window: not a dot.
        values = img.dimension_values(2)
        assert (values > 0.5 * values.max()).mean() > 0.005, j
