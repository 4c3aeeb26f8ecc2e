"""Figures of the Morlet filter bank: ψ_{j,θ} in space and Fourier, φ_J, Littlewood–Paley sum, tiling.

Frequencies are in radians per pixel, ω = (ω_x, ω_y) with ω_y pointing up; the wavelet ψ_{j,θ} has its
Fourier peak at ξ_j (cos θ, sin θ) (see the orientation convention in `explorer.scattering.filters`).
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np

from explorer.scattering import FilterBank, filter_bank

from ._common import centred_bounds, square_image

CAPTIONS = {
    "space": r"The wavelet $$\psi_{j,\theta}$$ in space, real part, imaginary part and modulus side by side (one "
             r"colour scale: red > 0 > blue): stripes perpendicular to $$\theta$$, a Gaussian envelope of width "
             r"$$0.8 \cdot 2^j$$ pixels. Look: the modulus is smooth, the oscillation lives in the real and "
             r"imaginary parts.",
    "fourier": r"$$|\hat\psi_{j,\theta}(\omega)|$$: one bump centred at $$\xi_j = \xi \cdot 2^{-j}$$ in the direction "
               r"$$\theta$$ (centre in the title). Look: larger $$j$$ moves the bump towards $$\omega = 0$$ and shrinks "
               r"it; from $$j = 3$$ on the plot zooms in (×2 per scale, see the axes) so that it stays visible.",
    "lowpass": r"The low-pass $$\phi_J$$ in space: a Gaussian of width $$0.8 \cdot 2^{J-1}$$ pixels. "
               r"Look: it averages over about $$2^J$$ pixels, which sets the scale of invariance.",
    "lp": r"Littlewood–Paley sum $$A(\omega) = |\hat\phi_J(\omega)|^2 + \frac{1}{2}\sum_{j,\theta}"
          r"\left(|\hat\psi_{j,\theta}(\omega)|^2 + |\hat\psi_{j,\theta}(-\omega)|^2\right)$$. Look: gaps "
          r"($$A \ll 1$$) are frequencies the transform loses; $$\max A \le 1$$ makes every layer, hence $$S_J$$, "
          r"non-expansive: $$\Vert S_J x - S_J y \Vert \le \Vert x - y \Vert$$.",
    "tiling": r"All wavelets at once: $$\max_{j,\theta} |\hat\psi_{j,\theta}|^2 / \max |\hat\psi_{j,\theta}|^2$$, "
              r"centres as dots (selected in red). Look: the bumps tile the plane in rings, one ring per scale, "
              r"$$L$$ bumps per half ring.",
}

COLORBAR_FORMAT = "%.2g"  # short colour-bar ticks: Bokeh's default wrote "−5.000e−5" at coarse scales

# max A(ω) above 1 by more than this is reported (the default bank at J ≤ 2 gives 1.00006: rounding, not a fault).
LP_TOLERANCE = 1e-3
LP_MILD = 1.05  # up to here (Morlet banks at J ≥ 3 reach 1.01–1.05) a note; beyond, a warning


def expansiveness(lp_max: float) -> tuple[str, str] | None:
    """(alert type, Markdown message) saying what max A(ω) > 1 means, or None when the bank is non-expansive
    (to the tolerance). Maths between $$…$$ with backslash-letter commands only: Markdown drops the backslash
    of \\| (hence \\Vert) and escapes > (hence \\gt)."""
    if not lp_max > 1 + LP_TOLERANCE:
        return None
    gain = math.sqrt(lp_max)
    fix = (r"Normalise the bank to make it non-expansive: divide every $$\psi_{j,\theta}$$ and $$\phi_J$$ by "
           r"$$\sqrt{\max A}$$ (`filter_bank(..., normalize=True)`, as the Invariance page does).")
    layer = (rf"each layer $$x \mapsto (x \star \phi_J, |x \star \psi_{{j,\theta}}|)$$ can stretch a distance by up "
             rf"to $$\sqrt{{\max A}} = {gain:.3f}$$")
    if lp_max <= LP_MILD:
        return "info", (rf"**$$\max_\omega A(\omega) = {lp_max:.3f}$$, slightly above 1** (Kymatio's Morlet bank "
                        rf"is like this from $$J = 3$$ on): the transform may expand distances a little, {layer}. "
                        rf"{fix}")
    return "warning", (rf"**$$\max_\omega A(\omega) = {lp_max:.3f} \gt 1$$: the transform may expand distances.** "
                       rf"$$\Vert S_J x - S_J y \Vert \le \Vert x - y \Vert$$ is no longer guaranteed: {layer}. {fix}")


def _dims(prefix: str, xlabel: str, ylabel: str) -> list[hv.Dimension]:
    """Distinctly named key dimensions (HoloViews links axes that share a name)."""
    return [hv.Dimension(f"{prefix}_x", label=xlabel), hv.Dimension(f"{prefix}_y", label=ylabel)]


def display_grid(J: int) -> int:
    """Side of the grid the filters are drawn on: large enough for the widest wavelet and φ_J."""
    return max(64, 2 ** (int(J) + 2))


def display_bank(J: int, L: int, sigma0: float = 0.8, xi0: float = 3 * np.pi / 4,
                 slant: float | None = None) -> FilterBank:
    """The bank on a square display grid (cached by `filter_bank`)."""
    n = display_grid(J)
    return filter_bank(n, n, int(J), int(L), sigma0=float(sigma0), xi0=float(xi0), slant=slant)


def theta_degrees(ell: int, L: int) -> float:
    return 180.0 * ell / L


def _crop(a: np.ndarray, half: int) -> np.ndarray:
    M, N = a.shape[-2:]
    half = min(half, M // 2, N // 2)
    return a[..., M // 2 - half:M // 2 + half, N // 2 - half:N // 2 + half]


def _space_half_width(bank: FilterBank, j: int) -> int:
    sigma = bank.sigma0 * 2**j
    return max(8, math.ceil(3.0 * sigma / min(bank.slant, 1.0)))


def _check(bank: FilterBank, j: int, ell: int) -> None:
    if not 0 <= j < bank.J:
        raise ValueError(f"scale j={j} is out of range: the bank has scales 0..{bank.J - 1}.")
    if not 0 <= ell < bank.L:
        raise ValueError(f"angle index ℓ={ell} is out of range: the bank has angles 0..{bank.L - 1}.")


def _wavelet_in_space(bank: FilterBank, j: int, ell: int) -> np.ndarray:
    """ψ_{j,θ} in space, cropped to its envelope (complex, fftshift-ed)."""
    _check(bank, j, ell)
    _, psi = bank.in_space()
    return _crop(psi[j, ell], _space_half_width(bank, j))


def wavelet_space(bank: FilterBank, j: int, ell: int, part: str = "real", size: int = 220) -> hv.Image:
    """One part of ψ_{j,θ} in space: part ∈ {"real", "imag", "modulus"}, axes in pixels, y up."""
    z = _wavelet_in_space(bank, j, ell)
    data = {"real": z.real, "imag": z.imag, "modulus": np.abs(z)}
    if part not in data:
        raise ValueError(f"part must be 'real', 'imag' or 'modulus', got {part!r}.")
    name = {"real": "Re ψ", "imag": "Im ψ", "modulus": "|ψ|"}[part]
    title = f"{name}, j={j}, θ={theta_degrees(ell, bank.L):g}°"
    return square_image(data[part], centred_bounds(z.shape), _dims("space", "x (pixels)", "y (pixels)"),
                        hv.Dimension("psi", label=name), title, size=size,
                        symmetric=part != "modulus", cmap="viridis", cformatter=COLORBAR_FORMAT)


PANEL_GAP = 2  # blank pixels between the panels of `wavelet_space_panels`


def panel_tick_step(width: int) -> int:
    """Ticks at −step, 0, +step in each panel of `wavelet_space_panels`: a power of two at most a quarter of
    the panel's width, so that the labels of neighbouring panels stay half a panel apart (ticks at ±N/2 put
    "128" and "−128" on the same spot at the joins)."""
    return 2 ** max(0, math.floor(math.log2(max(width, 1) / 4)))


def wavelet_space_panels(bank: FilterBank, j: int, ell: int, size: int = 220) -> hv.Image:
    """Re ψ_{j,θ}, Im ψ_{j,θ} and |ψ_{j,θ}| side by side in one image (one plot to redraw when a slider
    moves, instead of three), on one symmetric colour scale: the sign of Re and Im shows as red/blue and
    the modulus, ≥ 0, in red only. Each panel's x axis is labelled in pixels from its own centre."""
    z = _wavelet_in_space(bank, j, ell)
    M, N = z.shape
    gap = np.full((M, PANEL_GAP), np.nan)
    data = np.concatenate([z.real, gap, z.imag, gap, np.abs(z)], axis=1)
    left, bottom, _right, top = centred_bounds(z.shape)
    bounds = (left, bottom, left + data.shape[1], top)
    centres = [k * (N + PANEL_GAP) for k in range(3)]
    ticks = [(c + dx, f"{dx:g}") for c in centres for dx in (-panel_tick_step(N), 0, panel_tick_step(N))]
    title = f"Re ψ · Im ψ · |ψ|, j={j}, θ={theta_degrees(ell, bank.L):g}°"
    m = float(np.abs(z).max()) or 1.0
    return square_image(data, bounds, _dims("space", "x (pixels, from each panel's centre)", "y (pixels)"),
                        hv.Dimension("psi", label="ψ"), title, size=3 * size, cmap="RdBu_r",
                        clim=(-m, m), xticks=ticks, clipping_colors={"NaN": "white"},
                        cformatter=COLORBAR_FORMAT)


def fourier_zoom(j: int) -> int:
    """How much `wavelet_fourier` zooms on ω = 0 at scale j: 1 up to j = 2, then ×2 per scale."""
    return 2 ** max(0, int(j) - 2)


def wavelet_fourier(bank: FilterBank, j: int, ell: int, size: int = 260,
                    mark_centre: bool = True) -> hv.Overlay | hv.Image:
    """|ψ̂_{j,θ}(ω)| over ω ∈ [−π, π]² (rad/pixel; from j = 3 on, [−π, π]² / `fourier_zoom(j)`, said in the
    axis labels), with the nominal centre ξ_j(cos θ, sin θ) marked by a cross, or (``mark_centre=False``: one
    plot less to redraw) written in the title."""
    _check(bank, j, ell)
    a = np.fft.fftshift(np.abs(bank.psi_hat[j, ell]))
    M, _N = a.shape
    zoom = fourier_zoom(j)
    if zoom > 1:  # ξ_j and the bump's width halve with each j: without a zoom, a dot at coarse scales
        half = max(8, M // 2 // zoom)
        a = a[M // 2 - half:M // 2 + half, M // 2 - half:M // 2 + half]
    bounds = centred_bounds(a.shape, step=2 * np.pi / M)
    theta = ell * np.pi / bank.L
    xi = bank.xi0 / 2**j
    unit = "rad/pixel" if zoom == 1 else f"rad/pixel, zoom ×{zoom}"
    kd = _dims("fourier", f"ωx ({unit})", f"ωy ({unit})")
    cx, cy = xi * np.cos(theta), xi * np.sin(theta)
    title = f"|ψ̂| in Fourier, j={j}, θ={theta_degrees(ell, bank.L):g}°"
    if not mark_centre:
        title += f", centre ({cx:.2f}, {cy:.2f})"
    img = square_image(a, bounds, kd, hv.Dimension("psi_hat", label="|ψ̂|"), title, cmap="magma", size=size,
                       cformatter=COLORBAR_FORMAT)
    if not mark_centre:
        return img
    centre = hv.Points([(cx, cy)], kdims=kd)
    return img * centre.opts(marker="x", size=14, color="red", line_width=2)


def lowpass_space(bank: FilterBank, size: int = 220) -> hv.Image:
    """φ_J in space, axes in pixels."""
    phi, _ = bank.in_space()
    half = max(8, math.ceil(3.0 * bank.sigma0 * 2 ** (bank.J - 1)))
    z = _crop(phi, half)
    return square_image(z, centred_bounds(z.shape), _dims("phi", "x (pixels)", "y (pixels)"),
                        hv.Dimension("phi", label="φ_J"), f"Low-pass φ_J, J={bank.J}", size=size,
                        cmap="viridis", cformatter=COLORBAR_FORMAT)


def littlewood_paley_image(bank: FilterBank, size: int = 260) -> hv.Image:
    """A(ω) on [−π, π]², with max A in the title."""
    A = np.fft.fftshift(bank.littlewood_paley())
    M = A.shape[0]
    return square_image(A, centred_bounds(A.shape, step=2 * np.pi / M),
                        _dims("lp", "ωx (rad/pixel)", "ωy (rad/pixel)"), hv.Dimension("A", label="A(ω)"),
                        f"Littlewood–Paley A(ω), max A = {bank.lp_max:.3f}", cmap="viridis", size=size,
                        cformatter=COLORBAR_FORMAT)


def filter_centres(bank: FilterBank) -> np.ndarray:
    """(J·L, 4) rows (ωx, ωy, j, θ in degrees): the nominal centre of every wavelet."""
    rows = []
    for j in range(bank.J):
        for ell in range(bank.L):
            t = ell * np.pi / bank.L
            xi = bank.xi0 / 2**j
            rows.append((xi * np.cos(t), xi * np.sin(t), j, theta_degrees(ell, bank.L)))
    return np.array(rows)


def filter_tiling(bank: FilterBank, j: int | None = None, ell: int | None = None,
                  size: int = 260) -> hv.Overlay:
    """max_{j,θ} |ψ̂_{j,θ}|²/max|ψ̂_{j,θ}|² together with |φ̂_J|², with each wavelet's centre as a dot."""
    energy = np.abs(bank.psi_hat) ** 2
    peak = energy.reshape(bank.J * bank.L, -1).max(axis=1).reshape(bank.J, bank.L, 1, 1)
    tiles = (energy / np.maximum(peak, 1e-30)).max(axis=(0, 1))
    phi = np.abs(bank.phi_hat) ** 2
    tiles = np.maximum(tiles, phi / max(float(phi.max()), 1e-30))
    tiles = np.fft.fftshift(tiles)
    M = tiles.shape[0]
    kd = _dims("tiling", "ωx (rad/pixel)", "ωy (rad/pixel)")
    img = square_image(tiles, centred_bounds(tiles.shape, step=2 * np.pi / M), kd,
                       hv.Dimension("tile", label="|ψ̂|² / max"),
                       f"All {bank.J}×{bank.L} wavelets and φ_J in Fourier", cmap="Blues", size=size,
                       cformatter=COLORBAR_FORMAT)
    c = filter_centres(bank)
    dots = hv.Points(c, kdims=kd, vdims=["j", "θ (degrees)"]).opts(color="orange", size=5, tools=["hover"])
    out = img * dots
    if j is not None and ell is not None:
        out = out * tiling_selection(bank, j, ell)
    return out


def tiling_selection(bank: FilterBank, j: int, ell: int) -> hv.Points:
    """The selected wavelet's centre as a red dot, to overlay on `filter_tiling` (redrawn alone on a move)."""
    _check(bank, j, ell)
    kd = _dims("tiling", "ωx (rad/pixel)", "ωy (rad/pixel)")
    sel = filter_centres(bank)[j * bank.L + ell]
    return hv.Points([tuple(sel)], kdims=kd, vdims=["j", "θ (degrees)"]).opts(color="red", size=11, marker="circle")
