"""Figures of the SLE Thresholding page: the spectrum of W₁ before and after thresholding, one unit's weights
before and after, the accuracy against the kept fraction from the stored sweep with the current point, and
the drop at 80 % thresholded beside the talk's.

Pure HoloViews, no Panel. Thresholding always applies to W₁ as learned (on BN-normalised coefficients):
every title says "W₁". Accuracies are shown in percent.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np

from .spectra import signed_frequencies, to_signed

TALK_DROP = 2.0  # points: "about 2 %" lost at 80 % thresholded (the ImageNet J = 4 SLE, science.md §4)
_OPTS = {"tools": ["hover"], "toolbar": "below", "framewise": True}

# Markdown with LaTeX between $$…$$ (only backslash-letter commands).
CAPTIONS = {
    "spectrum": r"$$\Omega_1(\omega_{\theta_1})$$ of the learned $$W_1$$ (grey) and of the thresholded $$W_1$$ "
                r"(red), both divided by the original's $$\sum \Omega_1$$, so the red bars sum to the share of "
                r"order-1 energy kept. Look: a Fourier threshold keeps the low frequencies, where the energy is; "
                r"a $$\theta$$-domain threshold spreads its loss over every frequency.",
    "weights": r"One unit's order-1 weights $$w(\theta_1)$$ at the chosen $$j_1$$, the three colours side by "
               r"side: grey before, red dashed after thresholding. Look: Fourier thresholding smooths the curves "
               r"along $$\theta_1$$ (few harmonics left); $$\theta$$-domain thresholding zeroes single angles.",
    "curves": r"Test accuracy against the kept fraction $$f$$, from the sweep stored beside the run: angular "
              r"Fourier (blue) and $$\theta$$ domain (orange), global (solid) or per unit (dashed), the band "
              r"limit as a green diamond; the red dot is the current setting read off the sweep at once, the "
              r"black cross the live re-evaluation when it is on the same test set. Look: Fourier stays high "
              r"down to small $$f$$, where the $$\theta$$ domain collapses.",
    "drop": r"Accuracy lost when 80 % of $$W_1$$'s angular-Fourier coefficients are zeroed (keep $$f$$ = 0.2, "
            r"global), without retraining: this run (CIFAR-10, this project's SLE) beside the talk's "
            r"\"about 2 %\" (its ImageNet $$J$$ = 4 SLE). Look: a couple of points, as in the talk.",
}

SWEEP_STYLES = {  # (domain, mode) → label, colour, dash
    ("fourier", "global"): ("Fourier, global", "#1f77b4", "solid"),
    ("fourier", "per_unit"): ("Fourier, per unit", "#1f77b4", "dashed"),
    ("theta", "global"): ("θ domain, global", "#ff7f0e", "solid"),
    ("theta", "per_unit"): ("θ domain, per unit", "#ff7f0e", "dashed"),
}


def spectrum_bars(original, thresholded, L: int, title: str, width: int = 400) -> hv.Overlay:
    """Ω₁ energies (L,) (index ω = 0..L−1) of W₁ before (grey, left half) and after (red, right half),
    both divided by the original's total, as bars over the signed ω_θ1 (rectangles on a numeric axis: a
    categorical grouped bar chart costs ~100 ms more per slider move)."""
    original, thresholded = np.asarray(original, np.float64), np.asarray(thresholded, np.float64)
    total = float(original.sum()) or 1.0
    omega = signed_frequencies(L).astype(float)
    xd, yd = hv.Dimension("th_omega", label="ω_θ1 (signed)"), hv.Dimension("th_share", label="Ω₁ / ΣΩ₁ (learned)")
    x1d, y1d = hv.Dimension("th_omega_end"), hv.Dimension("th_share_end")

    def bars(values, left, colour):
        data = {"th_omega": omega + left, "th_share": np.zeros(L), "th_omega_end": omega + left + 0.4,
                "th_share_end": to_signed(values) / total}
        return hv.Rectangles(data, kdims=[xd, yd, x1d, y1d], datatype=["dictionary"]).opts(
            color=colour, line_color=colour, tools=["hover"], framewise=True)

    top = max(float(original.max()), float(thresholded.max()), 1e-300) / total
    return (bars(original, -0.4, "#999999") * bars(thresholded, 0.0, "#d62728")).opts(
        hv.opts.Rectangles(frame_width=width, frame_height=230, ylim=(0, 1.08 * top), xlim=(omega[0] - 0.6,
                           omega[-1] + 0.6), xticks=[int(w) for w in omega], show_grid=True, toolbar="below"),
        hv.opts.Overlay(title=title))


def unit_weights(before, after, colours, L: int, title: str, width: int = 400) -> hv.Overlay:
    """One unit's order-1 weights (C, L) along θ1, the colours side by side on x (θ1 + 180°·c, a gap
    between colours): before (grey, solid) and after (red, dashed). Two layers whatever C: fewer plots
    to update per slider move than one line per colour."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    theta = 180.0 * np.arange(L) / L
    x = np.concatenate([np.append(theta + 180.0 * c, np.nan) for c in range(len(colours))])

    def joined(rows):
        return np.concatenate([np.append(row, np.nan) for row in rows])

    td = hv.Dimension("th_theta", label="θ1 (degrees) within each colour")
    wd = hv.Dimension("th_weight", label="w(θ1) (W₁)")
    ticks = [(180.0 * c + t, f"{c_name} {t:g}°" if t == 0 else f"{t:g}°")
             for c, c_name in enumerate(colours) for t in (0, 90)]
    peak = float(max(np.abs(before).max(initial=0), np.abs(after).max(initial=0))) or 1.0
    solid = hv.Curve((x, joined(before)), td, wd, label="before", datatype=["array"]).opts(
        color="#555555", line_width=2)
    dashed = hv.Curve((x, joined(after)), td, wd, label="after", datatype=["array"]).opts(
        color="#d62728", line_width=3, line_dash="dashed")
    return (solid * dashed).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, ylim=(-1.1 * peak, 1.1 * peak),
                      xlim=(-8, 180.0 * len(colours) - 180.0 / L + 8), xticks=ticks, tools=["hover"],
                      toolbar="below", framewise=True),
        hv.opts.Overlay(title=title, legend_position="bottom_right"))


def accuracy_curves(sweep: dict | None, marker: tuple[float, float] | None, live: tuple[float, float] | None,
                    band_point: tuple[float, float] | None, title: str, width: int = 470) -> hv.Overlay:
    """The sweep's accuracy (%) against f: one curve per (domain, mode) (empty without a sweep), the band
    limit's point, the current point read off the sweep (`marker`, (f, accuracy fraction)) and the live
    re-evaluation (`live`). Every layer is present in every frame (a DynamicMap keeps its first layers)."""
    fd = hv.Dimension("th_keep", label="kept fraction f", range=(0, 1))
    ad = hv.Dimension("th_accuracy", label="test accuracy (%) (W₁ thresholded)")
    layers, values = [], []
    for (domain, mode), (label, colour, dash) in SWEEP_STYLES.items():
        if sweep is not None:
            x = np.asarray(sweep["fractions"], float)
            y = 100 * np.asarray(sweep["accuracy"][domain][mode], float)
        else:
            x, y = np.zeros(0), np.zeros(0)
        values += y.tolist()
        layers.append(hv.Curve((x, y), fd, ad, label=label, datatype=["array"]).opts(color=colour, line_dash=dash, line_width=2,
                                                                 framewise=True))

    # One layer per kind of point, always one row (NaN, not drawn, when absent): a layer whose columns
    # change length beside vectorised styles gave "Size mismatch" errors in the browser.
    kinds = {"band limit (sweep)": ("#2ca02c", "diamond", 12, band_point),
             "now, read off the sweep": ("#d62728", "circle", 13, marker),
             "now, live": ("black", "x", 14, live)}
    kd = hv.Dimension("th_kind", label="point")
    for kind, (colour, shape, size, xy) in kinds.items():
        x, y = (np.nan, np.nan) if xy is None else (float(xy[0]), 100 * float(xy[1]))
        if np.isfinite(y):
            values.append(y)
        layers.append(hv.Scatter({"th_keep": [x], "th_accuracy": [y], "th_kind": [kind]}, fd, [ad, kd],
                                 datatype=["dictionary"]).opts(
            color=colour, marker=shape, size=size, line_width=3, framewise=True, tools=["hover"]))
    lo, hi = (min(values), max(values)) if values else (0.0, 100.0)
    pad = max(2.0, 0.05 * (hi - lo))
    return hv.Overlay(layers).opts(
        hv.opts.Curve(frame_width=width, frame_height=260, show_grid=True, xlim=(-0.02, 1.02),
                      ylim=(max(lo - pad, 0), min(hi + pad, 100)), tools=["hover"], toolbar="below"),
        hv.opts.Overlay(title=title, legend_position="bottom_right"))


DROP_BARS = ("this run: sweep", "this run: live", "talk: ImageNet")


def drop_bars(sweep: float | None, live: float | None, title: str, width: int = 360) -> hv.Bars:
    """Accuracy drops in points (positive: lost): this run's from the sweep and live (None: unknown, no
    bar), the talk's "about 2". Always the same three bars (a DynamicMap's columns keep their length)."""
    label = hv.Dimension("th_which", label="which")
    drop = hv.Dimension("th_drop", label="accuracy lost (points)")
    values = [np.nan if v is None else float(v) for v in (sweep, live)] + [TALK_DROP]
    known = [v for v in values if np.isfinite(v)]
    return hv.Bars(list(zip(DROP_BARS, values)), kdims=[label], vdims=[drop]).opts(
        title=title, frame_width=width, frame_height=230, ylim=(min(0, min(known) * 1.1), 1.25 * max(map(abs, known))),
        color=hv.dim("th_which").categorize({DROP_BARS[2]: "#7f7f7f"}, default="#d62728"), show_grid=True,
        xrotation=0, **_OPTS)
