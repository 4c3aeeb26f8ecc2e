"""The wavelet figures: data, orientation (y up, θ counter-clockwise) and labels, without a browser."""
from __future__ import annotations

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
