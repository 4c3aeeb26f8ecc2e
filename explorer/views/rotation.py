"""Figures of SLE units' responses to rotated test images (`explorer.analysis.unit_rotation`).

Pure HoloViews, no Panel. Every function accepts empty data (a result still being computed) and returns the
same element types then, as a DynamicMap requires. Responses are unit k's first-layer pre-activation
(W₁ on BN-normalised scattering coefficients) averaged over positions.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np

from ._common import as_float32

# Markdown with LaTeX between $$…$$ (only backslash-letter commands: \Vert, never \|).
CAPTIONS = {
    "scatter": r"Each dot is one test image: the chosen unit's response $$r_k(x)$$ (x axis) against its response "
               r"to the image rotated, $$r_k(\mathrm{rot}\,x)$$ (y axis); the grey line is $$y = x$$. Look: "
               r"dots on the line mean the unit does not notice the rotation. At 180° every unit is on it (the "
               r"scattering cannot tell $$\theta$$ from $$\theta + \pi$$); at 90° and at the interpolated angles "
               r"the free SLE's units scatter off it, the structured SLE at $$B = 0$$ stays on it at 90°.",
    "images": "Two of the test images as the network sees them here (left; with the disk framing, windowed to a "
              "disk centred on the scattering's sampling grid) and rotated (right). Look: at multiples of 90° "
              "the pixels are only moved (np.rot90); in between they are interpolated and slightly blurred.",
    "ranking": r"Every unit's measured change at this angle, $$\Vert r_k(\mathrm{rot}\,X) - r_k(X) \Vert / "
               r"\Vert r_k(X) - \bar r_k \Vert$$ over the batch (0: invariant; about 1.4: as unrelated as another "
               r"image), sorted; the red dot is the chosen unit. Look: on the shipped run at 90° a few units "
               r"change by 0.2–0.4 of their spread and most by about 1; the structured SLE's are all 0 at 90°.",
    "versus": r"Measured change (y) against the spectral invariance score of the SLE spectra page (x: the share "
              r"of the unit's angular $$W_1$$ energy at rotation frequency 0); red: the chosen unit. Look: "
              r"units with more energy at frequency 0 tend to change less (a negative rank correlation "
              r"$$\rho$$): the spectra predict what the images show, though only in part (the input "
              r"normalisation and the image statistics also matter).",
}

_OPTS = {"tools": ["hover"], "toolbar": "below", "framewise": True}
# The change axes reach at least this far: an invariant unit's rounding (1e-6) must read as 0, not fill the axis.
CHANGE_FLOOR = 0.5


def _padded(lo: float, hi: float) -> tuple[float, float]:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    return (lo - pad, hi + pad)


def response_scatter(before, after, unit: int, degrees: float, m: int, what: str, width: int = 380) -> hv.Overlay:
    """Unit `unit`'s responses (N,) before (x) and after (y) a rotation by `degrees` (m steps), with y = x.
    Equal ranges on both axes, so that the line is the diagonal."""
    before = np.asarray(before, np.float64).ravel()
    after = np.asarray(after, np.float64).ravel()
    xd = hv.Dimension("rot_before", label="response r_k(x), image as is")
    yd = hv.Dimension("rot_after", label="response r_k(rot x), image rotated")
    both = np.concatenate([before, after])
    lim = _padded(float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    line = hv.Curve([(lim[0], lim[0]), (lim[1], lim[1])], xd, yd).opts(color="#888888", line_dash="dashed",
                                                                       framewise=True)
    index = hv.Dimension("rot_image", label="image")
    points = hv.Scatter((before, after, np.arange(len(before))), xd, [yd, index]).opts(
        color="#1f77b4", size=5, alpha=0.7, **_OPTS)
    return (line * points).opts(
        hv.opts.Curve(frame_width=width, frame_height=width, xlim=lim, ylim=lim, show_grid=True),
        hv.opts.Overlay(title=f"Unit {unit}: response before vs after {degrees:g}° (m = {m})\n{what}, "
                              f"{len(before)} images"))


def example_images(framed, rotated, degrees: float, exact: bool, names=(), size: int = 300) -> hv.RGB:
    """Up to two images (3, H, W) in [0, 1]: each row is the image as scattered (left) and rotated (right)."""
    framed, rotated = np.asarray(framed, np.float32), np.asarray(rotated, np.float32)
    rows = []
    for before, after in zip(framed[:2], rotated[:2]):
        gap = np.ones((before.shape[1], 2, 3), np.float32)
        rows.append(np.concatenate([before.transpose(1, 2, 0), gap, after.transpose(1, 2, 0)], axis=1))
    while len(rows) < 2:  # a DynamicMap keeps its first frame's size: always two rows of two images
        H, W = (framed.shape[-2:] if framed.ndim == 4 else (32, 32))
        rows.append(np.ones((H, 2 * W + 2, 3), np.float32))
    grid = []
    for i, row in enumerate(rows):
        if i:
            grid.append(np.ones((2, row.shape[1], 3), np.float32))
        grid.append(row)
    picture = as_float32(np.clip(np.concatenate(grid), 0, 1))
    H, W = picture.shape[:2]
    kind = "exact, np.rot90" if exact else "interpolated"
    label = ", ".join(str(n) for n in names[:2])
    xd, yd = hv.Dimension("rot_img_x", label="as scattered | rotated"), hv.Dimension("rot_img_y", label="image")
    return hv.RGB(picture, bounds=(0, 0, W, H), kdims=[xd, yd]).opts(
        title=f"Rotated by {degrees:g}° ({kind})" + (f"\n{label}" if label else ""),
        frame_width=size, frame_height=round(size * H / W), xaxis=None, yaxis=None, toolbar=None,
        framewise=True)


def change_ranking(change, unit: int, degrees: float, width: int = 380) -> hv.Overlay:
    """Every unit's measured change (K,) sorted increasingly (rank 0 = least change), the chosen unit marked."""
    change = np.asarray(change, np.float64)
    K = len(change)
    order = np.argsort(change, kind="stable")
    sorted_change = change[order]
    rd = hv.Dimension("rotk_rank", label="rank by measured change (0 = most invariant)")
    cd = hv.Dimension("rotk_change", label="change ‖Δr_k‖ / spread of r_k (pre-activation)")
    finite = sorted_change[np.isfinite(sorted_change)]
    top = max(float(finite.max()), CHANGE_FLOOR) if finite.size else 1.0
    if K and 0 <= unit < K:
        rank = int(np.flatnonzero(order == unit)[0])
        marked, mark = [(rank, float(min(change[unit], top)))], f"unit {unit}: rank {rank}, change {change[unit]:.3g}"
    else:
        marked, mark = [(0, 0.0)], "computing…"
    curve = hv.Curve((np.arange(K), np.minimum(sorted_change, top)), rd, cd).opts(color="#1f77b4", line_width=2,
                                                                                   **_OPTS)
    marker = hv.Scatter(marked, rd, cd).opts(color="red", size=10, **_OPTS)
    return (curve * marker).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, ylim=(0, 1.05 * top),
                      xlim=(-0.02 * max(K, 1), 1.02 * max(K, 1))),
        hv.opts.Overlay(title=f"Change at {degrees:g}° of {K} units\n{mark}"))


def change_versus_score(scores, change, unit: int, rho: float, degrees: float, width: int = 380) -> hv.Overlay:
    """Measured change (K,) against the spectral invariance score (K,), the chosen unit in red."""
    scores, change = np.asarray(scores, np.float64), np.asarray(change, np.float64)
    sd = hv.Dimension("rotv_score", label="spectral invariance score (share at ω = 0)")
    cd = hv.Dimension("rotv_change", label=f"measured change at {degrees:g}°")
    ud = hv.Dimension("rotv_unit", label="unit")
    shown = np.isfinite(change)
    points = hv.Scatter((scores[shown], change[shown], np.flatnonzero(shown)), sd, [cd, ud]).opts(
        color="#1f77b4", size=4, alpha=0.5, **_OPTS)
    chosen = [(float(scores[unit]), float(change[unit]), unit)] if 0 <= unit < len(change) and shown[unit] \
        else [(0.0, 0.0, -1)]
    marker = hv.Scatter(chosen, sd, [cd, ud]).opts(color="red", size=10, **_OPTS)
    ymax = max(float(change[shown].max()), CHANGE_FLOOR) if shown.any() else 1.0
    xmax = float(scores.max()) if scores.size else 1.0
    rho_text = f"Spearman ρ = {rho:.2f}" if np.isfinite(rho) else "ρ undefined (no variation)"
    return (points * marker).opts(
        hv.opts.Scatter(frame_width=width, frame_height=230, show_grid=True, xlim=(0, 1.05 * max(xmax, 1e-6)),
                        ylim=(0, 1.05 * ymax)),
        hv.opts.Overlay(title=f"Measured change vs spectral score\n{rho_text}"))
