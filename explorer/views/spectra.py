"""Figures of the angular Fourier analysis of an SLE's first layer W₁ (`explorer.analysis.spectra`).

Pure HoloViews, no Panel. Frequencies are shown signed, ω = −L/2..L/2−1 (index ω and L − ω of the
orthonormal DFT are the frequencies ±ω), so low angular frequency sits in the middle of every axis.
Every title says which weights are shown (`FirstLayer.label`: "W₁" or "effective W₁·diag(1/σ)").
"""
from __future__ import annotations

import holoviews as hv
import numpy as np

from ._common import as_float32

# Markdown with LaTeX between $$…$$ (only backslash-letter commands: \Vert, never \|).
CAPTIONS = {
    "omega1": r"$$\Omega_1(\omega_{\theta_1}) / \sum \Omega_1$$: the energy of the order-1 weights by angular "
              r"frequency (orthonormal DFT over the $$L$$ angles $$\theta_1$$, summed over units $$k$$ and over the "
              r"colours and $$j_1$$ chosen on the left). Look: the share falls with $$|\omega_{\theta_1}|$$ — on the "
              r"shipped run about 30 % at 0 and two thirds within $$|\omega_{\theta_1}| \le 1$$, where weights "
              r"blind to angle would give $$1/L$$ = 12.5 % per bar.",
    "omega2_raw": r"$$\Omega_2(\omega_{\theta_1}, \omega_{\theta_2}) / \sum \Omega_2$$ on the raw axes (2-D DFT "
                  r"over $$(\theta_1, \theta_2)$$; colour and scale pair on the left; log colour). Exact rotation "
                  r"invariance would put all the energy on the anti-diagonal $$\omega_{\theta_1} + \omega_{\theta_2} "
                  r"\equiv 0$$. Look: on the shipped run it is a blob around (0, 0): weights smooth in both angles.",
    "omega2_rel": r"The same $$\Omega_2$$ re-indexed on $$(\theta_1, \theta_2 - \theta_1)$$: x is the rotation "
                  r"frequency, y the frequency of the relative angle; exact invariance would fill the column "
                  r"$$\omega_{\theta_1} = 0$$ alone. Look: on the shipped run about 20 % lies there and half within "
                  r"$$|\omega_{\theta_1}| \le 1$$ (12.5 % and 37.5 % if blind to angle): a partial invariance.",
    "ranking": r"Every unit's invariance score (its share of order-1 and order-2 energy at rotation frequency "
               r"0, all colours and scales), sorted; the red dot is the unit chosen with the slider. Look: on the "
               r"shipped run the scores spread from about 0.04 to 0.6 (median about 0.2; $$1/L$$ = 0.125 if blind "
               r"to angle): some units lean to invariance, others are tuned to an orientation.",
    "polar": r"The chosen unit's order-1 weights along $$\theta_1$$ as a polar plot: radius $$|w|$$, filled dots "
             r"$$w \ge 0$$, open dots $$w \lt 0$$, one closed line per colour and $$j_1$$ (dashed: $$j_1 \ge 1$$), "
             r"drawn at $$\theta_1$$ and $$\theta_1$$ + 180° (an orientation). Look: an invariant unit draws a "
             r"circle of dots of one kind; a tuned one, petals.",
    "unit_dft": r"The same weights' energy by angular frequency, $$\sum |\hat w(\omega_{\theta_1})|^2$$ over the "
                r"selection, as shares of their total. Look: an invariant unit has one bar, at 0.",
}

COLOUR_LINES = {"red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "grey": "#555555"}
_OPTS = {"tools": ["hover"], "toolbar": "below", "framewise": True}


def signed_frequencies(L: int) -> np.ndarray:
    """The signed angular frequencies −L/2..L/2−1 (for odd L: −(L−1)/2..(L−1)/2), in display order."""
    return np.arange(L) - L // 2


def to_signed(values: np.ndarray, axes=(-1,)) -> np.ndarray:
    """Spectra indexed ω = 0..L−1 reordered to the signed order of `signed_frequencies` (fftshift)."""
    return np.fft.fftshift(np.asarray(values), axes=axes)


def _bars(values, L: int, prefix: str, ylabel: str, title: str, width: int, color: str) -> hv.Bars:
    freq = hv.Dimension(f"{prefix}_omega", label="ω_θ1 (signed, −L/2..L/2−1)")
    share = hv.Dimension(f"{prefix}_share", label=ylabel)
    shown = to_signed(np.asarray(values, np.float64))
    top = max(float(shown.max()), 1e-12)
    return hv.Bars(list(zip((str(w) for w in signed_frequencies(L)), shown.tolist())), kdims=[freq],
                   vdims=[share]).opts(
        title=title, frame_width=width, frame_height=230, ylim=(0, 1.08 * top), color=color,
        show_grid=True, **_OPTS)


def omega1_bars(fractions, L: int, label: str, selection: str, width: int = 380) -> hv.Bars:
    """Ω₁/ΣΩ₁ (L,) (index ω = 0..L−1, as `spectra.omega1`) as bars over the signed ω_θ1."""
    return _bars(fractions, L, "o1", "Ω₁ / ΣΩ₁", f"Ω₁/ΣΩ₁ of {label}, {selection}", width, "#1f77b4")


def omega2_heatmap(fractions, L: int, label: str, selection: str, reindexed: bool, size: int = 250) -> hv.Image:
    """Ω₂/ΣΩ₂ (L, L) (indices (ω_θ1, ω_θ2), or (ω_θ1, ω of θ2 − θ1) when `reindexed`) as a heatmap over the
    signed frequencies, x = ω_θ1, y = the second frequency, on a log colour scale."""
    data = to_signed(np.asarray(fractions, np.float64), axes=(0, 1))
    image = data.T[::-1]  # rows: the second frequency, highest at the top
    positive = image[image > 0]
    hi = float(positive.max()) if positive.size else 1.0
    lo = max(float(positive.min()) if positive.size else hi / 1e4, hi / 1e4)
    lo = min(lo, hi / 10)
    lo_edge = -(L // 2) - 0.5
    bounds = (lo_edge, lo_edge, lo_edge + L, lo_edge + L)
    prefix = "o2r" if reindexed else "o2"
    ylabel = "ω of θ2 − θ1 (signed)" if reindexed else "ω_θ2 (signed)"
    kd = [hv.Dimension(f"{prefix}_x", label="ω_θ1 (signed, rotation)" if reindexed else "ω_θ1 (signed)"),
          hv.Dimension(f"{prefix}_y", label=ylabel)]
    axes = "re-indexed (θ1, θ2−θ1)" if reindexed else "raw (θ1, θ2)"
    ticks = [int(w) for w in signed_frequencies(L)]
    return hv.Image(as_float32(np.maximum(image, lo)), bounds=bounds, kdims=kd,
                    vdims=[hv.Dimension(f"{prefix}_share", label="Ω₂ / ΣΩ₂")]).opts(
        title=f"Ω₂/ΣΩ₂ {axes}\n{label}, {selection}", cmap="viridis", cnorm="log", clim=(lo, hi),
        colorbar=True, cformatter="%.1e", frame_width=size, frame_height=size, xticks=ticks, yticks=ticks,
        **_OPTS)


def ranking_figure(scores, order, rank: int, label: str, width: int = 380) -> hv.Overlay:
    """The invariance scores sorted (rank 0 = most invariant, `order` = units by rank), the chosen rank marked."""
    scores, order = np.asarray(scores, np.float64), np.asarray(order)
    K = len(scores)
    rd = hv.Dimension("rk_rank", label="rank (0 = most rotation-invariant)")
    sd = hv.Dimension("rk_score", label="invariance score", range=(0, 1))
    sorted_scores = scores[order]
    curve = hv.Curve((np.arange(K), sorted_scores), rd, sd).opts(color="#1f77b4", line_width=2, **_OPTS)
    unit = int(order[rank])
    marker = hv.Scatter([(rank, float(sorted_scores[rank]))], rd, sd).opts(color="red", size=10, **_OPTS)
    return (curve * marker).opts(
        hv.opts.Curve(frame_width=width, frame_height=230, show_grid=True, ylim=(0, 1.02), xlim=(-0.02 * K, 1.02 * K)),
        hv.opts.Overlay(title=f"Invariance of {K} units of {label}\nunit {unit} is rank {rank}"))


def unit_polar(weights, colours, j1s, L: int, unit: int, label: str, selection: str,
               width: int = 320) -> hv.Overlay:
    """One unit's order-1 weights along θ1 as a polar plot. `weights` (n, L): one row per (colour, j1)
    listed in `colours` and `j1s`. Radius |w| at the angle θ1 = ℓ·180°/L and at θ1 + 180° (a wavelet's
    orientation), one closed line per row in its channel's colour (solid for j1 = 0, dashed for j1 ≥ 1);
    filled dots for w > 0, open (white) dots for w < 0."""
    weights = np.asarray(weights, np.float64).reshape(-1, L)
    angles = np.pi * np.arange(2 * L) / L
    xd, yd = hv.Dimension("pol_x", label="x (radius |w|)"), hv.Dimension("pol_y", label="y (radius |w|)")
    paths = {(name, solid): [] for name in COLOUR_LINES for solid in (True, False)}
    points = {True: [], False: []}  # w > 0, w < 0
    for row, colour, j1 in zip(weights, colours, j1s):
        values = np.concatenate([row, row])
        r = np.abs(values)
        x, y = r * np.cos(angles), r * np.sin(angles)
        key = (colour if colour in COLOUR_LINES else "grey", int(j1) == 0)
        paths[key].append({"pol_x": np.append(x, x[0]), "pol_y": np.append(y, y[0])})
        for xi, yi, v, a in zip(x, y, values, angles):
            points[bool(v >= 0)].append((float(xi), float(yi), float(v), f"{np.degrees(a) % 180:g}°",
                                         str(colour), int(j1)))
    peak = float(np.abs(weights).max()) if weights.size else 0.0
    radius = 1.08 * peak if peak > 0 else 1.0
    lim = (-radius, radius)

    def outline(rows, colour, solid):
        # Every layer in every frame (a DynamicMap keeps its first frame's layers): an empty one is a
        # zero-length line at the origin.
        rows = rows or [{"pol_x": np.zeros(2), "pol_y": np.zeros(2)}]
        return hv.Path(rows, kdims=[xd, yd]).opts(color=COLOUR_LINES[colour], line_dash="solid" if solid else "dashed",
                                                  line_width=2, framewise=True)

    def dots(rows, positive):
        rows = rows or [(0.0, 0.0, 0.0, "", "", 0)]
        vdims = [yd, hv.Dimension("pol_w", label="w"), hv.Dimension("pol_theta", label="θ1"),
                 hv.Dimension("pol_c", label="colour"), hv.Dimension("pol_j1", label="j1")]
        return hv.Scatter(rows, kdims=[xd], vdims=vdims).opts(
            color="black", fill_color="black" if positive else "white", size=6, line_width=1.5,
            tools=["hover"], framewise=True)

    layers = [outline(rows, colour, solid) for (colour, solid), rows in paths.items()]
    layers += [dots(points[True], True), dots(points[False], False)]
    return hv.Overlay(layers).opts(
        hv.opts.Path(frame_width=width, frame_height=width, xlim=lim, ylim=lim, toolbar="below",
                     show_grid=True),
        hv.opts.Overlay(title=f"Unit {unit}: r = |w(θ1)|; ● w ≥ 0, ○ w < 0\n{label}, {selection}"))


def unit_dft_bars(fractions, L: int, unit: int, label: str, selection: str, width: int = 320) -> hv.Bars:
    """The unit's order-1 energy by angular frequency (Ω₁ of this unit alone, as shares) over the signed ω."""
    return _bars(fractions, L, "ud", "Σ|ŵ|² / Σ (this unit)", f"Unit {unit}: shares of |ŵ(ω_θ1)|²\n{label}, {selection}",
                 width, "#ff7f0e")


def message_figure(text: str, title: str = "Nothing to show", width: int = 380) -> hv.Text:
    """A plot that only says `text` (no run to analyse)."""
    return hv.Text(0, 0, text).opts(xaxis=None, yaxis=None, frame_width=width, frame_height=200, toolbar=None,
                                   title=title)
