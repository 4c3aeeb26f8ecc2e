"""Figures of a scattering result: the image, S0, the S1 grid, the S2 children of one path, |x ⋆ ψ|,
energy per order and per path, and the scattering disk.

`result` is anything with attributes x (H, W), J, L, S (P, h, w), s0 (h, w), s1 (J, L, h, w) and
s2 (J(J−1)/2, L, L, h, w), and a method modulus_map(j1, θ1) (see `explorer.analysis.cache.ScatteringResult`).
Maps are drawn with y up: row 0 of an array at the top, axes in pixels of the input image.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np
from bokeh.models import LogTicker

from explorer.analysis.invariance import energy_per_order, energy_per_path
from explorer.scattering import scale_pairs, scattering_paths

from ._common import as_float32, image_bounds

# Formulas are TeX between $$…$$, rendered by MathJax in the page (plot titles cannot: they use plain Unicode).
CAPTIONS = {
    "image": "The input $$x$$ (gray levels in [0, 1]). Everything below is computed from it.",
    "s0": r"$$S_0 x = x \star \phi_J$$: the image blurred over $$2^J$$ pixels and subsampled. "
          "Look: only the coarse layout survives.",
    "s1": r"$$S_1 x = |x \star \psi_{j_1,\theta_1}| \star \phi_J$$, one tile per scale $$j_1$$ (rows) and angle "
          r"$$\theta_1$$ (columns), log colour. Look: an edge or grating lights up the column of its orientation. "
          r"Pick a tile with the $$j_1$$, $$\theta_1$$ sliders.",
    "s2": r"Children $$S_2 x = \big||x \star \psi_{j_1,\theta_1}| \star \psi_{j_2,\theta_2}\big| \star \phi_J$$ of "
          r"the selected $$(j_1, \theta_1)$$: rows $$j_2 \gt j_1$$, columns $$\theta_2$$. "
          "Look: they describe how the selected modulus map itself varies — textures differ here.",
    "modulus": r"The unaveraged modulus $$|x \star \psi_{j_1,\theta_1}|$$ at full resolution, before $$\phi_J$$ "
               "blurs it into $$S_1$$. Look: strong where the image has structure of this scale and orientation.",
    "energy_order": r"Energy per order $$\Vert S_m x \Vert^2 / \Vert x \Vert^2$$ in percent, on a linear axis "
                    r"with each value written above its bar. Look: it decays fast with the order $$m$$ — two "
                    "orders carry almost everything.",
    "energy_path": r"Energy $$\Vert S x[p] \Vert^2 / \Vert x \Vert^2$$ of every path $$p$$ (log scale), in output "
                   r"order: $$S_0$$, then $$S_1$$ by $$(j_1, \theta_1)$$, then $$S_2$$. Look: a few paths dominate; "
                   r"hover to read $$(j_1, \theta_1, j_2, \theta_2)$$.",
    "disk1": r"Scattering disk of $$S_1$$: angle = $$\theta_1$$ (counter-clockwise from $$+x$$, both "
             r"$$\theta_1$$ and $$\theta_1$$ + 180°), radius = scale (fine scales outside). Look: a grating's "
             "energy sits at the grating's orientation.",
    "disk2": r"Scattering disk of the selected path's $$S_2$$ children: angle = $$\theta_2$$, ring = $$j_2$$ (finest "
             r"child outside). Look: which orientations and scales the modulus $$|x \star \psi_{j_1,\theta_1}|$$ "
             "itself varies along.",
}


def image_view(x: np.ndarray, title: str = "Input image", size: int = 210) -> hv.Image:
    """A (H, W) image with pixel axes, y up."""
    x = as_float32(x)
    kd = [hv.Dimension("img_x", label="x (pixels)"), hv.Dimension("img_y", label="y (pixels)")]
    return hv.Image(x, bounds=image_bounds(x.shape), kdims=kd, vdims=[hv.Dimension("gray_level", label="gray level")]
                    ).opts(cmap="gray", title=title, frame_width=size, frame_height=size, colorbar=True,
                           tools=["hover"], toolbar="below", framewise=True)


def s0_view(result, size: int = 210) -> hv.Image:
    s0 = as_float32(result.s0)
    H, W = result.x.shape
    kd = [hv.Dimension("s0_x", label="x (pixels)"), hv.Dimension("s0_y", label="y (pixels)")]
    return hv.Image(s0, bounds=(0, 0, W, H), kdims=kd, vdims=[hv.Dimension("S0", label="S0")]).opts(
        cmap="gray", title=f"S0 = x ⋆ φ, J={result.J} ({s0.shape[0]}×{s0.shape[1]})", frame_width=size,
        frame_height=size, colorbar=True, tools=["hover"], toolbar="below", framewise=True)


def mosaic(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """(R, C, h, w) maps tiled into one (R(h+gap)−gap, C(w+gap)−gap) array with NaN gaps."""
    R, C, h, w = maps.shape
    out = np.full((R * (h + gap) - gap, C * (w + gap) - gap), np.nan, np.float32)
    for r in range(R):
        for c in range(C):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = maps[r, c]
    return out


def _theta_label(ell: int, L: int) -> str:
    return f"{180 * ell / L:g}°"


def _grid_image(maps, row_labels, col_labels, prefix, xlabel, ylabel, vlabel, title, width):
    R, C, h, w = maps.shape
    data = mosaic(maps)
    positive = data[np.isfinite(data) & (data > 0)]
    lo = float(np.percentile(positive, 1)) if positive.size else 0.1  # empty: a short, quiet colour bar
    hi = float(positive.max()) if positive.size else 1.0
    lo = min(lo, hi / 10)
    kd = [hv.Dimension(f"{prefix}_col", label=xlabel), hv.Dimension(f"{prefix}_row", label=ylabel)]
    img = hv.Image(np.maximum(data, lo), bounds=(0, 0, C, R), kdims=kd,
                   vdims=[hv.Dimension(f"{prefix}_value", label=vlabel)])
    xticks = [(c + 0.5, col_labels[c]) for c in range(C)]
    yticks = [(R - r - 0.5, row_labels[r]) for r in range(R)]
    height = max(60, int(width * R * h / (C * w)))
    # Few colour-bar ticks, written short: within two decades Bokeh's log ticker places linear ticks, by
    # default six crowded at the top and written 4.000e−3.
    return img.opts(cmap="viridis", cnorm="log", clim=(lo, hi), xticks=xticks, yticks=yticks, title=title,
                    frame_width=width, frame_height=height, colorbar=True, tools=["hover"], toolbar="below",
                    framewise=True, clipping_colors={"NaN": "white"}, cformatter="%.2g",
                    colorbar_opts={"ticker": LogTicker(mantissas=[1, 2, 5], desired_num_ticks=3)})


def s1_grid(result, j1: int | None = None, theta1: int | None = None, width: int = 560) -> hv.Overlay:
    """All S1 maps as a J × L mosaic (rows j1 = 0..J−1 from the top, columns θ1), the selection boxed."""
    J, L = result.J, result.L
    title = "S1 maps"
    if j1 is not None and theta1 is not None:
        title += f", selected j1={j1}, θ1={_theta_label(theta1, L)}"
    img = _grid_image(np.asarray(result.s1), [f"j1={j}" for j in range(J)],
                      [_theta_label(t, L) for t in range(L)], "s1", "θ1 (degrees)", "scale j1", "S1", title, width)
    if j1 is None or theta1 is None:
        return img * hv.Bounds((0, 0, 0, 0), kdims=img.kdims).opts(alpha=0)
    return img * s1_selection(result, j1, theta1)


def s1_selection(result, j1: int, theta1: int) -> hv.Bounds:
    """The red box around tile (j1, θ1) of `s1_grid` (redrawn alone when the selection moves)."""
    J = result.J
    kd = [hv.Dimension("s1_col", label="θ1 (degrees)"), hv.Dimension("s1_row", label="scale j1")]
    return hv.Bounds((theta1, J - 1 - j1, theta1 + 1, J - j1), kdims=kd).opts(color="red", line_width=3)


def no_children_note(j1: int, J: int) -> str:
    """Why the selected path has no order-2 children ("" when it has some)."""
    return f"j1 = {j1} = J−1 is the coarsest scale: no order-2 children" if j1 >= J - 1 else ""


def _note(text: str, x: float, y: float, kdims) -> hv.Text:
    """A text drawn over a plot; every frame has one (maybe empty), so a DynamicMap keeps one overlay type."""
    return hv.Text(x, y, text, kdims=kdims).opts(color="black", text_font_size="12px")


def s2_children(result, j1: int, theta1: int, width: int = 560) -> hv.Overlay:
    """The S2 maps of paths (j1, θ1, j2, θ2), j2 > j1: a (J−1−j1) × L mosaic (rows j2, columns θ2), under a
    text that says why the mosaic is empty at the coarsest j1."""
    J, L = result.J, result.L
    if not (0 <= j1 < J and 0 <= theta1 < L):
        raise ValueError(f"(j1, θ1) = ({j1}, {theta1}) is not a path: j1 ∈ 0..{J - 1}, θ1 index ∈ 0..{L - 1}.")
    pairs = [(k, j2) for k, (a, j2) in enumerate(scale_pairs(J)) if a == j1]
    title = f"S2 children of j1={j1}, θ1={_theta_label(theta1, L)}"
    cols = [_theta_label(t, L) for t in range(L)]
    if pairs:
        maps = np.stack([np.asarray(result.s2)[k, theta1] for k, _ in pairs])  # (n_j2, L, h, w)
        rows = [f"j2={j2}" for _, j2 in pairs]
    else:  # one blank row, so that the note has room
        h, w = np.asarray(result.s1).shape[-2:]
        maps, rows = np.full((1, L, h, w), np.nan, np.float32), ["none"]
    img = _grid_image(maps, rows, cols, "s2", "θ2 (degrees)", "scale j2", "S2", title, width)
    return img * _note(no_children_note(j1, J), L / 2, len(rows) / 2, img.kdims)


def modulus_view(result, j1: int, theta1: int, size: int = 210) -> hv.Image:
    u = as_float32(result.modulus_map(j1, theta1))
    kd = [hv.Dimension("u_x", label="x (pixels)"), hv.Dimension("u_y", label="y (pixels)")]
    return hv.Image(u, bounds=image_bounds(u.shape), kdims=kd, vdims=[hv.Dimension("U1", label="|x ⋆ ψ|")]).opts(
        cmap="magma", title=f"|x ⋆ ψ|, j1={j1}, θ1={_theta_label(theta1, result.L)}", frame_width=size,
        frame_height=size, colorbar=True, tools=["hover"], toolbar="below", framewise=True)


def _per_input_energy(result) -> float:
    """‖x‖² / 4^J: divides an output energy into a fraction of the input's (the output is sampled every
    2^J pixels)."""
    return (float((np.asarray(result.x, np.float64) ** 2).sum()) or 1.0) / 4**result.J


def path_energies(result) -> np.ndarray:
    """‖S x[p]‖² · 4^J / ‖x‖² for every path p (the 4^J accounts for the 2^J subsampling)."""
    paths = scattering_paths(result.J, result.L, 2)
    return energy_per_path(result.S, paths, relative=False) / _per_input_energy(result)


def order_energies(result) -> np.ndarray:
    """(3,) energies of orders 0, 1, 2 relative to ‖x‖² (the 4^J accounts for the 2^J subsampling)."""
    return energy_per_order(result.S, result.J, result.L, relative=False) / _per_input_energy(result)


def _percent(v: float) -> str:
    if v == 0:  # J = 1: no order-2 paths at all
        return "0 %"
    return f"{v:.3g} %" if v >= 0.01 else f"{v:.1e} %"


def energy_per_order_figure(result, width: int = 300) -> hv.Overlay:
    """Bars of the energy of orders 0, 1, 2 in percent of ‖x‖², on a linear axis with each value written
    above its bar. Not a log axis: there a bar's length is the logarithm of its value, so S2 (under 1 %)
    looked a third as big as S0 (about 90 %); the written values keep the small orders readable."""
    e = 100 * order_energies(result)
    order = hv.Dimension("order", label="order m")
    energy = hv.Dimension("energy", label="‖Sₘ x‖² / ‖x‖² (%)")
    top = max(float(e.max()), 1e-9)
    bars = hv.Bars([(f"S{m}", float(v)) for m, v in enumerate(e)], kdims=[order], vdims=[energy]).opts(
        ylim=(0, 1.15 * top), title=f"Energy per order (total {e.sum():.1f} %)", frame_width=width,
        frame_height=220, tools=["hover"], toolbar="below", framewise=True, color="#1f77b4")
    labels = hv.Labels([(f"S{m}", float(v), _percent(v)) for m, v in enumerate(e)], kdims=[order, energy],
                       vdims=["value"]).opts(text_baseline="bottom", text_font_size="11px", yoffset=0.01 * top,
                                            text_color="black")
    return bars * labels


def energy_per_path_figure(result, width: int = 560) -> hv.Scatter:
    e = path_energies(result)
    paths = scattering_paths(result.J, result.L, 2)
    rows = []
    for i, (p, v) in enumerate(zip(paths, e)):
        t1 = -1.0 if p.theta1 is None else 180 * p.theta1 / result.L
        t2 = -1.0 if p.theta2 is None else 180 * p.theta2 / result.L
        rows.append((i, max(float(v), 1e-12), p.order, -1 if p.j1 is None else p.j1, t1,
                     -1 if p.j2 is None else p.j2, t2))
    return hv.Scatter(rows, kdims=[hv.Dimension("path", label="path index")],
                      vdims=[hv.Dimension("penergy", label="‖S x[p]‖² / ‖x‖²"), "order", "j1", "θ1 (degrees)",
                             "j2", "θ2 (degrees)"]).opts(
        logy=True, color="order", cmap=["black", "#1f77b4", "#ff7f0e"], size=4, title="Energy per path",
        frame_width=width, frame_height=220, tools=["hover"], toolbar="below", framewise=True)


# -- scattering disk ------------------------------------------------------------------------------------
def _disk_polygons(wedges, prefix: str, L: int, title: str, width: int, hover: bool = True) -> hv.Polygons:
    """hv.Polygons of the wedges (x right, y up), coloured by energy / max energy."""
    radius = float(np.max(wedges.r_outer)) if len(wedges) else 1.0
    peak = float(np.max(wedges.value)) if len(wedges) else 1.0
    peak = peak if peak > 0 else 1.0
    polys = []
    for (px, py), v, j, t, m in zip(wedges.polygons(), wedges.value, wedges.scale, wedges.theta, wedges.mirror):
        polys.append({f"{prefix}_x": px, f"{prefix}_y": py, f"{prefix}_energy": float(v) / peak, "j": int(j),
                      "θ (degrees)": 180.0 * int(t) / L + (180.0 if m else 0.0)})
    kd = [hv.Dimension(f"{prefix}_x", label="x (radius = scale)"),
          hv.Dimension(f"{prefix}_y", label="y (radius = scale)")]
    vd = [hv.Dimension(f"{prefix}_energy", label="energy / max"), "j", "θ (degrees)"]
    return hv.Polygons(polys, kdims=kd, vdims=vd).opts(
        color=f"{prefix}_energy", cmap="viridis", clim=(0, 1), colorbar=True, line_color="white",
        line_width=0.5, title=title, frame_width=width, frame_height=width, tools=["hover"] if hover else [],
        toolbar="below", xlim=(-radius, radius), ylim=(-radius, radius), framewise=True,
        xticks=0, yticks=0)


def _disk_raster(wedges, prefix: str, title: str, width: int) -> hv.Image:
    """The wedges as one image (x right, y up), coloured by energy / max energy; gaps and the outside
    are NaN (drawn blank). Used where the disk follows a slider: an image updates far faster."""
    radius = float(np.max(wedges.r_outer)) if len(wedges) else 1.0
    peak = float(np.max(wedges.value)) if len(wedges) else 1.0
    peak = peak if peak > 0 else 1.0
    index = wedges.raster(n=2 * width // 3)  # ~1.5 screen pixels per cell: crisp enough, small to send
    values = np.append(np.asarray(wedges.value, np.float64) / peak, np.nan)  # index −1 → NaN
    image = values[index].astype(np.float32)
    kd = [hv.Dimension(f"{prefix}_x", label="x (radius = scale)"),
          hv.Dimension(f"{prefix}_y", label="y (radius = scale)")]
    return hv.Image(image, bounds=(-radius, -radius, radius, radius), kdims=kd,
                    vdims=[hv.Dimension(f"{prefix}_energy", label="energy / max")]).opts(
        cmap="viridis", clim=(0, 1), colorbar=True, title=title, frame_width=width, frame_height=width,
        toolbar="below", clipping_colors={"NaN": "white"}, framewise=True, xticks=0, yticks=0)


def disk_order1(result, j1: int | None = None, theta1: int | None = None, width: int = 300):
    """The order-1 scattering disk: path (j1, θ1) is the wedge at angle θ1 (and θ1 + 180°) on ring j1, with
    j1 = 0 (finest scale, highest frequency) outermost. Energies are Σ_u S1(j1, θ1)(u)²."""
    from explorer.analysis import disk

    energy = disk.order1_energy(result.S, result.J, result.L)
    title = "S1 disk"
    out = _disk_polygons(disk.order1_wedges(energy), "d1", result.L, title, width)
    if j1 is None or theta1 is None:
        return out * hv.Path([], kdims=out.kdims)
    return out * disk_selection(result, j1, theta1)


def disk_selection(result, j1: int, theta1: int) -> hv.Path:
    """The red outline of path (j1, θ1) on the order-1 disk (both mirror wedges), titled with the selection."""
    from explorer.analysis import disk

    J, L = result.J, result.L
    kd = [hv.Dimension("d1_x", label="x (radius = scale)"), hv.Dimension("d1_y", label="y (radius = scale)")]
    sel = [disk.wedge_polygon(J - 1 - j1, J - j1, (theta1 - 0.5) * np.pi / L + m, (theta1 + 0.5) * np.pi / L + m)
           for m in (0.0, np.pi)]
    return hv.Path([{"d1_x": np.append(px, px[0]), "d1_y": np.append(py, py[0])} for px, py in sel],
                   kdims=kd).opts(color="red", line_width=2,
                                  title=f"S1 disk, selected j1={j1}, θ1={_theta_label(theta1, L)}")


def disk_order2(result, j1: int = 0, theta1: int = 0, width: int = 300):
    """The order-2 disk of the selected parent (j1, θ1): children (j2, θ2), j2 > j1, finest child outermost.
    Drawn as an image: it is redrawn on every move of θ1, and polygons cost ~45 ms there."""
    from explorer.analysis import disk

    J, L = result.J, result.L
    title = f"S2 disk of j1={j1}, θ1={_theta_label(theta1, L)}"
    if j1 >= J - 1:  # no children: an empty disk, with the note saying why
        wedges = disk.Wedges(*([np.zeros(0)] * 8))
    else:
        wedges = disk.order2_wedges(disk.order2_energy(result.S, J, L, j1, theta1), j1)
    image = _disk_raster(wedges, "d2", title, width)
    return image * _note(no_children_note(j1, J).replace(": ", ":\n"), 0.0, 0.0, image.kdims)


