"""Figures of the invariance and stability demonstrations (curves from `explorer.analysis.invariance`)."""
from __future__ import annotations

import holoviews as hv
import numpy as np

from .scattering import image_view

# Markdown with LaTeX between $$…$$: only backslash-letter commands (Markdown strips a backslash before
# punctuation, so \Vert rather than \|).
CAPTIONS = {
    "rotation": r"Relative error between $$\bar S_J$$ of the rotated image and $$\bar S_J$$ of the original with "
                r"$$\theta$$ indices rolled by the rotation (blue), and without the roll (grey). Look: exact "
                r"($$\approx 10^{-16}$$) at multiples of 90°, small between them (interpolation, $$L$$ discrete angles).",
    "rotation_image": "The rotated image (bilinear interpolation, corners filled by reflection).",
    "translation": r"Relative change $$\Vert S_J x_c - S_J x \Vert / \Vert S_J x \Vert$$ against the shift "
                   r"$$c / 2^J$$ (blue) and the pixel change $$\Vert x_c - x \Vert / \Vert x \Vert$$ (grey). Look: the "
                   r"scattering change grows slowly for $$c \lt 2^J$$.",
    "translation_image": "The shifted image (windowed so that the circular shift is a pure translation).",
    "deformation": r"Relative distances between $$x$$ and its deformation $$L_\tau x$$, $$\tau = s \tau_0$$ with "
                   r"$$\Vert \nabla \tau_0 \Vert_\infty = 1$$: pixels, Fourier modulus, scattering. Look: the "
                   r"scattering distance stays low and grows linearly in $$s$$.",
    "deformation_image": r"The deformed image $$L_\tau x$$ (cubic-spline warp of a smooth random displacement field).",
    "lipschitz": r"Histogram of $$\Vert S_J x - S_J y \Vert \cdot 2^J / \Vert x - y \Vert$$ over pairs of images "
                 r"(normalised filters). Look: measured on the reflect-padded images the transform sees (orange), "
                 r"every ratio stays left of the Littlewood–Paley bound (red line); on the images alone (blue) a "
                 r"pair may pass it by a few %, because the padding counts a difference at the border twice.",
}

# Legends go above the plot: inside, they covered data (the rotation's dips at 270°, the tallest bars).
_LEGEND_OPTS = {"legend_position": "top"}
_CURVE_OPTS = {"frame_width": 420, "frame_height": 260, "tools": ["hover"], "toolbar": "below", "framewise": True,
               "show_grid": True}


def _floor(values, floor=1e-17):
    return np.maximum(np.asarray(values, np.float64), floor)


def rotation_figure(curve: dict, degrees: float, error: float) -> hv.Overlay:
    """Error against the angle (log scale), with the current angle marked."""
    xd = hv.Dimension("rot_angle", label="rotation angle (degrees)")
    yd = hv.Dimension("rot_error", label="relative error")
    a = np.asarray(curve["degrees"], np.float64)
    rolled = hv.Curve((a, _floor(curve["error"])), xd, yd, label="rolled θ (covariance)").opts(color="#1f77b4")
    plain = hv.Curve((a, _floor(curve["error_unrolled"])), xd, yd, label="not rolled").opts(
        color="grey", line_dash="dashed")
    marker = hv.Scatter([(degrees, max(error, 1e-17))], xd, yd).opts(color="red", size=10)
    line = hv.VLine(degrees).opts(color="red", line_width=1)
    return (rolled * plain * line * marker).opts(
        hv.opts.Overlay(title=f"Rotation by {degrees:g}°: error {error:.1e}", **_LEGEND_OPTS),
        hv.opts.Curve(logy=True, xticks=list(range(0, 361, 45)), **_CURVE_OPTS),
        hv.opts.Scatter(logy=True, framewise=True))


def translation_figure(curve: dict, shift: int, J: int) -> hv.Overlay:
    xd = hv.Dimension("tr_shift", label="shift c / 2^J")
    yd = hv.Dimension("tr_error", label="relative change")
    x = np.asarray(curve["shift_over_scale"], np.float64)
    scat = hv.Curve((x, curve["error"]), xd, yd, label="scattering").opts(color="#1f77b4")
    pix = hv.Curve((x, curve["pixel_error"]), xd, yd, label="pixels").opts(color="grey", line_dash="dashed")
    k = int(np.argmin(np.abs(np.asarray(curve["shift"]) - shift)))
    current = float(curve["error"][k])
    marker = hv.Scatter([(shift / 2**J, current)], xd, yd).opts(color="red", size=10)
    return (scat * pix * hv.VLine(shift / 2**J).opts(color="red", line_width=1) * marker).opts(
        hv.opts.Overlay(title=f"Shift by {shift} px (c/2^J = {shift / 2**J:.2f}): change {current:.3f}",
                        **_LEGEND_OPTS),
        hv.opts.Curve(**_CURVE_OPTS))


def deformation_figure(curve: dict, s: float) -> hv.Overlay:
    xd = hv.Dimension("def_s", label="deformation size s = ‖∇τ‖∞")
    yd = hv.Dimension("def_distance", label="relative distance")
    x = np.asarray(curve["s"], np.float64)
    curves = [hv.Curve((x, curve[key]), xd, yd, label=label).opts(color=color)
              for key, label, color in (("pixel", "pixels", "grey"), ("fourier", "Fourier modulus", "#ff7f0e"),
                                        ("scattering", "scattering", "#1f77b4"))]
    k = int(np.argmin(np.abs(x - s)))
    marker = hv.Scatter([(float(x[k]), float(curve["scattering"][k]))], xd, yd).opts(color="red", size=10)
    out = curves[0] * curves[1] * curves[2] * hv.VLine(s).opts(color="red", line_width=1) * marker
    return out.opts(
        hv.opts.Overlay(title=f"Deformation s = {s:.3f}: scattering distance {float(curve['scattering'][k]):.3f}",
                        **_LEGEND_OPTS),
        hv.opts.Curve(**_CURVE_OPTS))


def lipschitz_histogram(res: dict, bins: int = 20) -> hv.Overlay:
    """Both histograms of ratios, the bound as a red line labelled above the tallest bar, and the legend
    above the plot (inside, it hid the tallest bars and the bound's label)."""
    ratios = np.asarray(res["ratio"], np.float64)
    padded = np.asarray(res["ratio_padded"], np.float64)
    bound = float(res["bound"])
    hi = max(bound, float(ratios.max()), float(padded.max())) * 1.05
    edges = np.linspace(0, hi, bins + 1)
    xd = hv.Dimension("lip_ratio", label="‖Sx − Sy‖·2^J / ‖x − y‖")
    yd = hv.Dimension("lip_count", label="number of pairs")
    counts = np.histogram(ratios, edges)[0], np.histogram(padded, edges)[0]
    image_hist = hv.Histogram((edges, counts[0]), kdims=[xd], vdims=[yd],
                              label=f"‖x − y‖ on the images (max {ratios.max():.3f})").opts(color="#1f77b4", alpha=0.6)
    padded_hist = hv.Histogram((edges, counts[1]), kdims=[xd], vdims=[yd],
                               label=f"on the padded images (max {padded.max():.3f})").opts(color="#ff7f0e", alpha=0.6)
    line = hv.VLine(bound).opts(color="red", line_width=2)
    top = max(int(counts[0].max()), int(counts[1].max()), 1)
    # The label sits in a band above the tallest bar (the y range leaves room for it), ending at the line.
    label = hv.Text(bound, top * 1.12, f"bound max A = {bound:.3f} ", halign="right", valign="center",
                    fontsize=10).opts(color="red")
    return (image_hist * padded_hist * line * label).opts(
        hv.opts.Histogram(ylim=(0, top * 1.25), **_CURVE_OPTS),
        hv.opts.Overlay(title=f"Lipschitz ratios over {len(ratios)} pairs of images", legend_cols=1, **_LEGEND_OPTS))


def small_image(x, title: str, size: int = 220) -> hv.Image:
    return image_view(np.clip(x, 0, 1), title=title, size=size)


def waiting_curve(kind: str, J: int) -> dict:
    """A curve of NaNs with the keys of `kind`'s figure: drawn while the real curve is computed, with the same
    layers, so the plot updates in place when the curve arrives."""
    nan = np.full(2, np.nan)
    if kind == "rotation":
        return {"degrees": np.array([0.0, 360.0]), "shift": np.zeros(2, np.int64), "error": nan,
                "error_unrolled": nan}
    if kind == "translation":
        shifts = np.array([0, 2 ** (J + 1)])
        return {"shift": shifts, "shift_over_scale": shifts / 2**J, "error": nan, "pixel_error": nan}
    return {"s": np.array([0.0, 0.3]), "pixel": nan, "fourier": nan, "scattering": nan}
