"""Figures of the roto-translation page: the angular wavelets along θ1 (`explorer.scattering.angular`), the
angular spectrum of the second layer and what a rotation does to it (`explorer.analysis.roto`), and the
stored classification results of both representations (`explorer.classify.results`).

Pure HoloViews, no Panel. Angles in degrees; angular frequencies ω in cycles per 180° (the DFT over the L
samples of θ1), shown signed, −L/2..L/2−1 (bin L − ω is −ω), so that ω = 0 sits in the middle. Every figure
a parameter changes recomputes its ranges per frame (framewise).
"""
from __future__ import annotations

import holoviews as hv
import numpy as np

from ._common import as_float32

# Markdown with LaTeX between $$…$$ (only backslash-letter commands: \Vert, never \|).
CAPTIONS = {
    "filter_re": r"Real part of the angular filters along $$\theta_1$$ (their $$L$$ samples, joined; centred on "
                 r"0°): the low-pass $$\bar\phi$$ and the Morlet wavelets $$\bar\psi_k$$, of width "
                 r"$$0.8 \cdot 2^k$$ samples.",
    "filter_im": r"Imaginary part: 0 for the low-pass. The spin −1 filters (not drawn) are the conjugates: the "
                 r"same real part and modulus, the imaginary part negated.",
    "filter_abs": r"Modulus. Look: $$\bar\psi_0$$ is the narrowest and turns fastest; $$\bar\phi$$ widens "
                  r"with $$K$$ (width $$0.8 \cdot 2^{K-1}$$).",
    "fourier": r"$$|\hat h(\omega)|^2$$ of every angular filter over the angular frequency $$\omega$$ (cycles per "
               r"180°; dashed: spin −1, the mirror image), and their sum, the angular Littlewood–Paley sum (grey). "
               r"Look: spin +1 keeps positive $$\omega$$, spin −1 negative, the low-pass $$\omega$$ near 0; the sum "
               r"stays between about 0.7 and 1.35 (the bank is not rescaled): no angular frequency of $$z$$ is lost.",
    "heatmap": r"$$E(\theta_2, \omega)$$ = mean over positions of $$|\hat z(\omega)|^2$$, the DFT of $$z = |x \star "
               r"\psi_{j_1,\theta_1}| \star \psi_{j_2,\theta_2}$$ along $$\theta_1$$, as a share of the total (log "
               r"colour); the framed row is the chosen $$\theta_2$$. Look: most energy sits at low $$|\omega|$$: "
               r"$$z$$ varies slowly with $$\theta_1$$.",
    "profile": r"At the chosen $$\theta_2$$, the mean of $$|z|^2$$ over positions for each $$\theta_1$$: how the "
               r"second layer's energy depends on the first wavelet's orientation. Look: its peaks are the "
               r"orientations of the image's edges at scale $$2^{j_1}$$.",
    "filter_energy": r"At the chosen $$\theta_2$$, the energy each angular filter keeps, mean of $$|z \star_{\theta_1} "
                     r"h|^2$$ (computed as $$\sum_\omega |\hat h(\omega)|^2 E(\theta_2,\omega) / L^2$$). Look: the "
                     r"low-pass keeps what does not vary with $$\theta_1$$; the wavelets what does.",
    "images": r"What is analysed: the image (multiplied by a smooth disk when *window* is on, so that a rotation "
              r"brings nothing in from outside the corners) and its rotation by the chosen angle (exact at "
              r"multiples of 90°, cubic interpolation otherwise).",
    "moves": r"The energy of $$z$$ along $$\theta_1$$ (mean over positions, summed over $$\theta_2$$) for the image "
             r"and its rotation, and the rotated one shifted back by $$m$$ steps of $$180°/L$$ (dashed). Look: a "
             r"rotation moves $$z$$ along $$\theta_1$$; shifted back, it lies on the original.",
    "stays": r"The angular spectrum over $$|\omega|$$ (summed over $$\theta_2$$ and over $$\pm\omega$$; log scale) "
             r"for the image and its rotation. Look: at multiples of 90° the two coincide (a shift along "
             r"$$\theta_1$$ changes only the phase of $$\hat z$$), to about 0.03 % for the finest pair on 64×64 "
             r"images; coarse pairs average over few positions, sampled every $$2^{j_2}$$ pixels on a grid that a "
             r"quarter turn moves by a pixel, and differ by up to a few percent. In between, the interpolation's "
             r"blur of the finest scales adds to that.",
    "scales": r"The energy each angular scale keeps (low-pass, then $$\bar\psi_k$$ with both spins; summed over "
              r"$$\theta_2$$) for the image and its rotation. Look: the same bars: the angular wavelets' moduli "
              r"are the covariant, rotation-stable part the classifier learns from.",
    "classify_bars": r"Test accuracy of each stored classification run, per representation and classifier "
                     r"(`explorer classify svm`). Look: the roto-translation representation against the "
                     r"translation scattering on the same images and classifier.",
    "classify_table": r"The stored runs with their settings, one row per representation and classifier (the newest "
                      r"of each; source: yours, or shipped with the package). `explorer classify list` shows all.",
}

FILTER_COLOURS = ["#222222", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
_OPTS = {"tools": ["hover"], "toolbar": "below", "framewise": True}
ENERGY_FORMAT = "%.1e"  # energies are small (1e-6..1e-3): Bokeh's default wrote "7.000e−6"


def filter_label(k: int | None, spin: int) -> str:
    """"φ̄ (low-pass)", "ψ̄0 +" (spin +1), "ψ̄0 −" (spin −1)."""
    if k is None:
        return "φ̄ (low-pass)"
    return f"ψ̄{k} {'+' if spin > 0 else '−'}"


def scale_label(k: int | None) -> str:
    return "φ̄ (low-pass)" if k is None else f"ψ̄{k} (k = {k})"


def _colour(k: int | None) -> str:
    return FILTER_COLOURS[0 if k is None else (1 + k) % len(FILTER_COLOURS)]


def signed_frequencies(L: int) -> np.ndarray:
    """−L/2..L/2−1 (display order of `np.fft.fftshift`)."""
    return np.arange(L) - L // 2


def _theta_ticks(L: int, step_degrees: float = 45.0, centred: bool = False) -> list[tuple[float, str]]:
    step = 180.0 / L
    values = (np.arange(L) - L // 2) * step if centred else np.arange(L) * step
    every = max(1, round(step_degrees / step))
    return [(float(v), f"{v:g}°") for i, v in enumerate(values) if i % every == 0]


# -- the angular wavelets -----------------------------------------------------------------------------
FILTER_PARTS = {"re": ("Re h", np.real), "im": ("Im h", np.imag), "abs": ("|h|", np.abs)}


def angular_filter_part_figure(bank, part: str, width: int = 220) -> hv.NdOverlay:
    """One part of the angular filters of an `AngularBank` along θ1 (degrees, centred on 0): `part` is "re",
    "im" or "abs"; the low-pass and the spin +1 wavelets, one curve per filter in its colour (the spin −1
    filters are their conjugates). The modulus carries the legend."""
    name, fn = FILTER_PARTS[part]
    L = bank.L
    degrees = (np.arange(L) - L // 2) * 180.0 / L
    shown = [(a, r) for a, r in enumerate(bank.records) if r.spin >= 0]
    xd = hv.Dimension(f"af_{part}_theta", label="θ1 − centre (degrees)")
    yd = hv.Dimension(f"af_{part}_value", label=name)
    curves = {}
    for a, record in shown:
        values = fn(np.roll(bank.filters[a], L // 2))  # sample 0 in the middle
        curves[filter_label(record.k, record.spin)] = hv.Curve((degrees, values), xd, yd).opts(
            color=_colour(record.k), line_width=2, framewise=True, tools=["hover"])
    values = np.concatenate([fn(bank.filters[a]) for a, _ in shown])
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = 0.06 * (hi - lo or 1.0)
    legend = part == "abs"
    return hv.NdOverlay(curves, kdims=[hv.Dimension(f"af_{part}_filter", label="filter")]).opts(
        title=f"{name} along θ1 (L = {L}, K = {bank.K})", frame_width=width, frame_height=200,
        # Hidden through legend_opts: with show_legend=False an NdOverlay in a DynamicMap is never redrawn
        # (HoloViews 1.23: its first frame stays).
        legend_position="right", legend_opts={} if legend else {"visible": False},
        xticks=_theta_ticks(L, 45.0, centred=True),
        xlim=(degrees[0] - 90.0 / L, degrees[-1] + 90.0 / L), ylim=(lo - pad, hi + pad), show_grid=True,
        toolbar="below")


def angular_fourier_figure(bank, width: int = 420) -> hv.NdOverlay:
    """|ĥ_a(ω)|² over the signed angular frequency for every filter of `bank` (spin −1 dashed), and their
    sum (the angular Littlewood–Paley sum, `AngularBank.littlewood_paley`)."""
    L = bank.L
    omega = signed_frequencies(L)
    gain = np.fft.fftshift(np.abs(bank.in_fourier) ** 2, axes=-1)
    xd = hv.Dimension("afh_omega", label="ω (cycles per 180°, signed)")
    yd = hv.Dimension("afh_gain", label="|ĥ(ω)|²")
    curves = {}
    for a, record in enumerate(bank.records):
        curves[filter_label(record.k, record.spin)] = hv.Curve((omega, gain[a]), xd, yd).opts(
            color=_colour(record.k), line_width=2, line_dash="dashed" if record.spin < 0 else "solid",
            framewise=True, tools=["hover"])
    lp = np.fft.fftshift(bank.littlewood_paley())
    curves["Σ |ĥ|² (Littlewood–Paley)"] = hv.Curve((omega, lp), xd, yd).opts(
        color="#7f7f7f", line_width=4, alpha=0.6, framewise=True, tools=["hover"])
    top = max(float(lp.max()), float(gain.max()))
    return hv.NdOverlay(curves, kdims=[hv.Dimension("afh_filter", label="filter")]).opts(
        title=f"Angular filters in Fourier (L = {L}, K = {bank.K})\n"
              f"their sum between {float(lp.min()):.3f} and {float(lp.max()):.3f}",
        frame_width=width, frame_height=240, legend_position="right", show_grid=True, toolbar="below",
        xticks=[int(w) for w in omega], xlim=(omega[0] - 0.5, omega[-1] + 0.5), ylim=(0, 1.08 * top))


# -- the angular spectrum of one image -----------------------------------------------------------------
def pair_text(spectrum) -> str:
    return f"(j1, j2) = ({spectrum.j1}, {spectrum.j2})"


def theta_text(theta: int, L: int) -> str:
    return f"{180.0 * theta / L:g}°"


def spectrum_heatmap(spectrum, theta2: int, size: int = 220) -> hv.Overlay:
    """E(θ2, ω)/ΣE (`AngularSpectrum.energy`) as a heatmap, x the signed ω, y θ2 (degrees), log colour, the
    row `theta2` framed in red."""
    L = spectrum.L
    theta2 = min(max(int(theta2), 0), L - 1)
    energy = np.asarray(spectrum.energy, np.float64)
    total = float(energy.sum()) or 1.0
    share = np.fft.fftshift(energy / total, axes=-1)  # rows θ2, columns signed ω
    image = share[::-1]  # row 0 at the top is the largest θ2
    positive = image[image > 0]
    hi = float(positive.max()) if positive.size else 1.0
    lo = min(max(float(positive.min()) if positive.size else hi / 1e4, hi / 1e4), hi / 10)
    left = -(L // 2) - 0.5
    bounds = (left, -0.5, left + L, L - 0.5)
    kd = [hv.Dimension("sp_omega", label="ω (cycles per 180°, signed)"), hv.Dimension("sp_theta2", label="θ2")]
    heat = hv.Image(as_float32(np.maximum(image, lo)), bounds=bounds, kdims=kd,
                    vdims=[hv.Dimension("sp_share", label="share of E")]).opts(
        cmap="viridis", cnorm="log", clim=(lo, hi), colorbar=True, cformatter="%.1e", frame_width=size,
        frame_height=size, xticks=[int(w) for w in signed_frequencies(L)],
        yticks=[(v, f"{v * 180 / L:g}°") for v, _ in _theta_index_ticks(L)], **_OPTS)
    frame = hv.Bounds((left, theta2 - 0.5, left + L, theta2 + 0.5), kdims=kd).opts(
        color="red", line_width=3, framewise=True)
    return (heat * frame).opts(title=f"Angular spectrum E(θ2, ω) of z\n{pair_text(spectrum)}, "
                                     f"θ2 = {theta_text(theta2, L)} framed\nmean over {spectrum.positions} positions")


def _theta_index_ticks(L: int, step_degrees: float = 45.0) -> list[tuple[int, str]]:
    every = max(1, round(step_degrees / (180.0 / L)))
    return [(i, f"{i * 180 / L:g}°") for i in range(0, L, every)]


def theta1_profile_figure(spectrum, theta2: int, width: int = 240) -> hv.Overlay:
    """mean_u |z(θ1; θ2)|² along θ1 (degrees) at `theta2` (`AngularSpectrum.theta_energy`)."""
    L = spectrum.L
    theta2 = min(max(int(theta2), 0), L - 1)
    degrees = np.arange(L) * 180.0 / L
    values = np.asarray(spectrum.theta_energy[theta2], np.float64)
    xd = hv.Dimension("pr_theta1", label="θ1 (degrees)")
    yd = hv.Dimension("pr_energy", label="mean |z|²")
    top = max(float(values.max()), 1e-30)
    curve = hv.Curve((degrees, values), xd, yd).opts(color="#1f77b4", line_width=2, **_OPTS)
    dots = hv.Scatter((degrees, values), xd, yd).opts(color="#1f77b4", size=7, **_OPTS)
    return (curve * dots).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, ylim=(0, 1.08 * top),
                      xlim=(-0.5 * 180 / L, 180 - 0.5 * 180 / L), xticks=_theta_ticks(L), yformatter=ENERGY_FORMAT),
        hv.opts.Overlay(title=f"z along θ1 at θ2 = {theta_text(theta2, L)}\n{pair_text(spectrum)}"))


def filter_energy_figure(spectrum, theta2: int, width: int = 240) -> hv.Bars:
    """mean_{u,θ1} |z ⋆ h_a|² at `theta2` for every angular filter (`AngularSpectrum.filter_energy`)."""
    L = spectrum.L
    theta2 = min(max(int(theta2), 0), L - 1)
    values = np.asarray(spectrum.filter_energy[:, theta2], np.float64)
    labels = [filter_label(r.k, r.spin) for r in spectrum.records]
    top = max(float(values.max()), 1e-30)
    return hv.Bars(list(zip(labels, values.tolist())), kdims=[hv.Dimension("fe_filter", label="angular filter")],
                   vdims=[hv.Dimension("fe_energy", label="mean |z ⋆ h|²")]).opts(
        title=f"Energy per angular filter\nθ2 = {theta_text(theta2, L)}, {pair_text(spectrum)}",
        frame_width=width, frame_height=230, ylim=(0, 1.08 * top), color="#1f77b4", show_grid=True,
        xrotation=30, yformatter=ENERGY_FORMAT, **_OPTS)


# -- a rotation ---------------------------------------------------------------------------------------
def percent(value: float) -> str:
    """A relative change as a percentage with two significant digits ("31 %", "0.012 %", "0 %")."""
    p = 100.0 * float(value)
    if not np.isfinite(p):
        return "–"
    return "0 %" if p == 0 else f"{p:.2g} %" if p >= 1e-3 else f"{p:.1e} %"


def rotation_words(comparison) -> str:
    kind = "exact" if comparison.exact else "interpolated"
    return f"{comparison.degrees:g}° ({kind})"


def image_pair(comparison, size: int = 250) -> hv.Image:
    """The image as analysed and its rotation, side by side in one plot (gray, y up)."""
    a, b = np.asarray(comparison.image, np.float64), np.asarray(comparison.rotated, np.float64)
    H, W = a.shape
    gap = max(1, W // 16)
    data = np.concatenate([a, np.full((H, gap), np.nan), b], axis=1)
    xd, yd = hv.Dimension("ip_x", label="image | rotated (pixels)"), hv.Dimension("ip_y", label="y (pixels)")
    width = data.shape[1]
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    return hv.Image(as_float32(data), bounds=(0, 0, width, H), kdims=[xd, yd],
                    vdims=[hv.Dimension("ip_gray", label="gray level")]).opts(
        cmap="gray", clim=(lo, hi if hi > lo else lo + 1), clipping_colors={"NaN": "white"},
        title=f"{'Windowed image' if comparison.windowed else 'Image'} · rotated by {rotation_words(comparison)}",
        frame_width=size * 2, frame_height=size, xaxis=None, yaxis=None, colorbar=False, **_OPTS)


def profile_comparison_figure(comparison, width: int = 340) -> hv.Overlay:
    """Σθ2 mean_u |z(θ1)|² along θ1 for the image, its rotation, and the rotation shifted back by m steps."""
    s, r = comparison.original, comparison.turned
    L = s.L
    degrees = np.arange(L) * 180.0 / L
    xd = hv.Dimension("mv_theta1", label="θ1 (degrees)")
    yd = hv.Dimension("mv_energy", label="Σθ2 mean |z|²")
    back = np.roll(r.profile, -comparison.shift)
    top = max(float(max(s.profile.max(), r.profile.max())), 1e-30)
    layers = [
        hv.Curve((degrees, s.profile), xd, yd, label="image").opts(color="#1f77b4", line_width=3),
        hv.Curve((degrees, r.profile), xd, yd, label="rotated").opts(color="#ff7f0e", line_width=3),
        hv.Curve((degrees, back), xd, yd, label=f"rotated, shifted back by m = {comparison.shift}").opts(
            color="#222222", line_width=2, line_dash="dashed"),
    ]
    return hv.Overlay(layers).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, ylim=(0, 1.08 * top),
                      xlim=(-0.5 * 180 / L, 180 - 0.5 * 180 / L), xticks=_theta_ticks(L),
                      yformatter=ENERGY_FORMAT, **_OPTS),
        hv.opts.Overlay(title=f"z moves along θ1, {pair_text(s)}\n"
                              f"rotated by {rotation_words(comparison)}: change {percent(comparison.profile_change)}\n"
                              f"shifted back by m = {comparison.shift}: {percent(comparison.profile_change_undone)}",
                        legend_position="top", legend_cols=2))


def spectrum_comparison_figure(comparison, width: int = 340) -> hv.Overlay:
    """The angular spectrum over |ω| (`AngularSpectrum.folded`) of the image and of its rotation, log y."""
    s, r = comparison.original, comparison.turned
    freq = np.arange(len(s.folded))
    xd = hv.Dimension("st_omega", label="|ω| (cycles per 180°)")
    yd = hv.Dimension("st_energy", label="Σθ2 mean |ẑ(±ω)|²")
    values = np.concatenate([s.folded, r.folded])
    positive = values[values > 0]
    hi = float(positive.max()) if positive.size else 1.0
    lo = float(positive.min()) if positive.size else hi / 10
    floor = max(lo, hi * 1e-12)
    layers = [
        hv.Curve((freq, np.maximum(s.folded, floor)), xd, yd, label="image").opts(color="#1f77b4", line_width=4),
        hv.Scatter((freq, np.maximum(s.folded, floor)), xd, yd, label="image").opts(color="#1f77b4", size=9),
        hv.Curve((freq, np.maximum(r.folded, floor)), xd, yd, label="rotated").opts(
            color="#ff7f0e", line_width=2, line_dash="dashed"),
        hv.Scatter((freq, np.maximum(r.folded, floor)), xd, yd, label="rotated").opts(
            color="#ff7f0e", size=5),
    ]
    return hv.Overlay(layers).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, logy=True,
                      ylim=(floor / 1.5, hi * 1.5), xlim=(-0.3, freq[-1] + 0.3), xticks=[int(f) for f in freq],
                      yformatter=ENERGY_FORMAT, **_OPTS),
        hv.opts.Scatter(**_OPTS),
        hv.opts.Overlay(title=f"|ẑ(ω)| stays, {pair_text(s)}\n"
                              f"rotated by {rotation_words(comparison)}: change {percent(comparison.spectrum_change)}",
                        legend_position="top", legend_cols=2))


def scale_comparison_figure(comparison, width: int = 340) -> hv.Overlay:
    """The energy per angular scale (`AngularSpectrum.scale_energy`) of the image (left bars) and of its
    rotation (right bars), side by side for each scale."""
    s, r = comparison.original, comparison.turned
    labels = [scale_label(None)] + [scale_label(k) for k in range(s.K)]
    xd, yd = hv.Dimension("sc_x", label="angular scale"), hv.Dimension("sc_y", label="Σθ2 mean |z ⋆ h|²")
    top = max(float(max(s.scale_energy.max(), r.scale_energy.max())), 1e-30)

    def bars(values, left, colour, label):
        boxes = [(i + left, 0.0, i + left + 0.36, float(v)) for i, v in enumerate(values)]
        return hv.Rectangles(boxes, kdims=[xd, yd, "sc_x1", "sc_y1"], label=label).opts(
            color=colour, line_color="black", framewise=True, tools=["hover"])

    return (bars(s.scale_energy, -0.38, "#1f77b4", "image") * bars(r.scale_energy, 0.02, "#ff7f0e", "rotated")).opts(
        hv.opts.Rectangles(frame_width=width, frame_height=230, show_grid=True, ylim=(0, 1.1 * top),
                           xlim=(-0.6, len(labels) - 0.4), xticks=list(enumerate(labels)), yformatter=ENERGY_FORMAT,
                           toolbar="below"),
        hv.opts.Overlay(title=f"Energy per angular scale, {pair_text(s)}\n"
                              f"rotated by {rotation_words(comparison)}: change {percent(comparison.scale_change)}",
                        legend_position="top", legend_cols=2))


# -- classification results ---------------------------------------------------------------------------
def _accuracy(row: dict) -> float:
    value = row.get("test_accuracy")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    return float(value) if ok else float("nan")


REPRESENTATION_NAMES = {"roto": "roto-translation", "translation": "translation"}
REPRESENTATION_COLOURS = {"roto": "#ff7f0e", "translation": "#1f77b4"}


def classification_bars(rows: list[dict], width: int = 520) -> hv.Overlay:
    """Test accuracy (%) per (representation, method), from `explorer.classify.results.comparison_table` rows
    (dicts with "representation", "method" and "test_accuracy" in [0, 1]), written above each bar."""
    data = []
    for r in rows:
        accuracy = 100.0 * _accuracy(r)
        if np.isfinite(accuracy):
            rep = str(r.get("representation", "?"))
            data.append((f"{REPRESENTATION_NAMES.get(rep, rep)}, {r.get('method', '?')}", accuracy, rep))
    data = data or [("none stored", 0.0, "")]
    xd = hv.Dimension("cl_run", label="representation, method")
    yd = hv.Dimension("cl_accuracy", label="test accuracy (%)", range=(0, 100))
    bars = hv.Bars(data, kdims=[xd], vdims=[yd, hv.Dimension("cl_representation")]).opts(
        color=hv.dim("cl_representation").categorize(REPRESENTATION_COLOURS, default="#7f7f7f"),
        framewise=True, tools=["hover"])
    labels = hv.Labels([(x, a + 2.5, f"{a:.1f} %" if rep else "") for x, a, rep in data], kdims=[xd, yd],
                       vdims=["cl_text"]).opts(text_font_size="11pt", framewise=True)
    return (bars * labels).opts(
        hv.opts.Bars(frame_width=width, frame_height=260, ylim=(0, 100), show_grid=True, toolbar="below"),
        hv.opts.Overlay(title="Stored classification results: test accuracy"))


TABLE_COLUMNS = {"representation": "representation", "method": "method", "test_accuracy": "test acc.",
                 "train_accuracy": "train acc.", "train_size": "train n", "test_size": "test n",
                 "gap": "Nyström gap", "J": "J", "L": "L", "K": "K", "image_size": "size", "seconds": "seconds",
                 "shipped": "source"}  # the rest (C, σ, support vectors, id, …): `explorer classify list`


def classification_table(rows: list[dict], width: int = 1080) -> hv.Table:
    """The comparison rows as a table: the fields of `TABLE_COLUMNS` that some row has (in that order; others
    left out), accuracies and the Nyström gap in %, lists and dicts as text, None as blank."""
    present = [k for k in TABLE_COLUMNS if any(row.get(k) is not None for row in rows)]
    columns = present or ["representation", "method", "test_accuracy"]

    def cell(key, value):
        if value is None:
            return ""
        if key == "shipped":
            return "shipped" if value else "yours"
        if key == "representation":
            return REPRESENTATION_NAMES.get(value, str(value))
        if key in ("test_accuracy", "train_accuracy", "gap") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            return f"{100 * value:.2f} %"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    data = {f"ct_{c}": [cell(c, row.get(c)) for row in rows] for c in columns}
    return hv.Table(data, kdims=[hv.Dimension(f"ct_{c}", label=TABLE_COLUMNS.get(c, c)) for c in columns]).opts(
        width=width, height=min(60 + 28 * max(len(rows), 1), 320))
