"""Figures of the multiscale hierarchical CNN's attribute axes (`explorer.analysis.attributes`, science.md §5):
one layer's attribute map for one image, the translation test against the layer (trained network against its
untrained control), and the last layer's example of an image and its best partner shifted by one attribute
position.

Pure HoloViews, no Panel. The maps are numpy arrays (A, F): rows along the older attribute v_{j−1}, columns
along the newest v_j (layer 1: a single row, its filter index v_1). Every figure a control changes is
framewise, and keeps one structure in all its frames (a DynamicMap's first frame fixes its layers).
"""
from __future__ import annotations

import holoviews as hv
import numpy as np

from ._common import as_float32

N_LAYERS = 11
SHIFT = 1  # the partner shown: its best match shifted by +1 along the older attribute
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# Markdown with LaTeX between $$…$$ (only backslash-letter commands).
CAPTIONS = {
    "image": "The image whose attribute maps are shown (its class and its index in the CIFAR-10 test split).",
    "map": r"Layer $$j$$'s output $$x_j(v_{j-1}, v_j, u)$$ averaged over the positions $$u$$: one value per "
           r"older attribute $$v_{j-1}$$ (rows, the previous filter index subsampled by 2) and newest attribute "
           r"$$v_j$$ (columns, layer $$j$$'s filter index). Layer 1 has one attribute only: a single row "
           r"along $$v_1$$. Colours follow the layer shown.",
    "translations": r"The translation ratio per layer: for each query image, the best correlation between its "
                    r"map and another image's map shifted by $$\tau = \pm 1$$ along $$v_{j-1}$$, over the best "
                    r"correlation with an unshifted one, averaged over the queries. Near 1 (or above): shifted "
                    r"partners match as well as unshifted ones. Dotted: the best unshifted partner's correlation "
                    r"itself. Dashed: the trained maps' self-similarity at $$\pm 1$$ (a map against itself shifted "
                    r"by one row): when it is near 1 as well, the maps hardly change along $$v_{j-1}$$, which is "
                    r"invariance rather than translations between images. Compare the trained network (blue) with "
                    r"the untrained control (orange), and the last layers with the first. Layer 1 has no older "
                    r"attribute: no point. Grey line: the layer shown above.",
    "example_images": "A query image of the analysis and its best partner at shift +1 in the last layer: the "
                      "other image whose map, moved by one position along the older attribute, correlates "
                      "best with the query's.",
    "query_map": r"The query's last-layer map; the box is the window of rows compared "
                 r"($$v_{10} = 1 \ldots A-2$$).",
    "partner_map": r"The partner's last-layer map shifted by one row: row $$r$$ shows its row $$r + 1$$ (the "
                   r"top row has none). Inside the box it is what the query's box was correlated with (the test "
                   r"correlates the maps less their mean over the analysis' images: the correlation in the "
                   r"title).",
}

TRAINED, CONTROL = "trained network", "untrained control"
UNSHIFTED, SMOOTHNESS = "best unshifted correlation (trained)", "self-similarity at ±1 (trained)"
# curve → (the analysis' key, colour, dash); the unshifted correlation and the smoothness are the trained network's
CURVES = {TRAINED: ("translation", "#1f77b4", "solid"), CONTROL: ("control_translation", "#ff7f0e", "solid"),
          UNSHIFTED: ("unshifted", "#1f77b4", "dotted"), SMOOTHNESS: (None, "#1f77b4", "dashed")}
MAP_SIZE = {"frame_width": 360, "frame_height": 200}
_LEGEND = {"legend_position": "top", "legend_cols": 2}


def subscript(number: int) -> str:
    """"₁₀" for 10: attribute names in plot titles and axes (Bokeh titles are plain Unicode)."""
    return str(int(number)).translate(SUBSCRIPTS)


def attribute_names(layer: int) -> tuple[str, str]:
    """(older, newest) attribute of layer `layer`'s map: ("v₄", "v₅") for layer 5; layer 1: ("", "v₁")."""
    layer = int(layer)
    return ("" if layer == 1 else f"v{subscript(layer - 1)}"), f"v{subscript(layer)}"


def _map_image(values, layer: int, title: str, size=None) -> hv.Image:
    """An (A, F) map as an hv.Image, row v at y = v (index 0 at the bottom), column v at x = v."""
    values = np.asarray(values, np.float64)
    rows, cols = values.shape
    older, newest = attribute_names(layer)
    xd = hv.Dimension("hc_new", label=f"{newest} (newest attribute: layer {layer}'s filter)")
    yd = hv.Dimension("hc_old", label=f"{older} (older attribute)" if older else "one row (no older attribute)")
    vd = hv.Dimension("hc_value", label="spatial mean")
    finite = values[np.isfinite(values)]
    clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if clim[0] == clim[1]:
        clim = (clim[0] - 0.5, clim[1] + 0.5)
    empty = not finite.size
    if empty:  # an all-NaN image makes HoloViews warn (nanmin of nothing): a transparent one says the same
        values = np.zeros_like(values)
    image = hv.Image(as_float32(values[::-1]), bounds=(-0.5, -0.5, cols - 0.5, rows - 0.5), kdims=[xd, yd],
                     vdims=[vd])
    return image.opts(cmap="viridis", clim=clim, colorbar=True, tools=["hover"], toolbar="below", framewise=True,
                      title=title, xticks=_index_ticks(cols), yticks=_index_ticks(rows), alpha=0.0 if empty else 1.0,
                      **(size or MAP_SIZE))


def _index_ticks(count: int) -> list[int]:
    step = 1 if count <= 12 else 2 if count <= 24 else 4
    return list(range(0, count, step))


def attribute_map_figure(values, layer: int, what: str = "") -> hv.Image:
    """One layer's map (A, F) for one image (`what` names it in the title); None: an empty frame that says
    what is missing (`what`)."""
    layer = int(layer)
    if values is None:
        # two lines as the maps' titles: Bokeh keeps the first frame's title height
        return _map_image(np.full((1, 1), np.nan), layer, f"Layer {layer}: {what or 'no map'}\nno map to show")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"an attribute map is (A, F), got {values.shape}.")
    older, newest = attribute_names(layer)
    axes = f"{older} × {newest}" if older else f"{newest}, one row"
    return _map_image(values, layer, f"Layer {layer}: attribute map ({axes})" + (f"\n{what}" if what else ""))


def image_figure(image, title: str, size: int = 160) -> hv.RGB:
    """An image (3, H, W), uint8 or in [0, 1]; None: a blank frame."""
    if image is None:
        picture = np.ones((32, 32, 3), np.float32)
    else:
        picture = np.asarray(image)
        picture = picture.astype(np.float32) / 255.0 if picture.dtype == np.uint8 else picture.astype(np.float32)
        picture = np.clip(picture.transpose(1, 2, 0), 0.0, 1.0)
    H, W = picture.shape[:2]
    xd, yd = hv.Dimension("hc_img_x", label="x"), hv.Dimension("hc_img_y", label="y")
    return hv.RGB(as_float32(picture), bounds=(0, 0, W, H), kdims=[xd, yd]).opts(
        title=title, frame_width=size, frame_height=round(size * H / W), xaxis=None, yaxis=None, toolbar=None,
        framewise=True)


def pair_figure(query_image, partner_image, title: str, size: int = 260) -> hv.RGB:
    """Two images (3, H, W) side by side with a white gap (None: blank), in one frame."""
    blank = np.full((3, 32, 32), 255, np.uint8)
    parts = []
    for image in (query_image, partner_image):
        image = blank if image is None else np.asarray(image)
        image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        parts.append(np.clip(image.transpose(1, 2, 0), 0.0, 1.0))
    gap = np.ones((parts[0].shape[0], 3, 3), np.float32)
    picture = np.concatenate([parts[0], gap, parts[1]], axis=1)
    H, W = picture.shape[:2]
    xd = hv.Dimension("hc_pair_x", label="query | partner")
    yd = hv.Dimension("hc_pair_y", label="image")
    return hv.RGB(as_float32(picture), bounds=(0, 0, W, H), kdims=[xd, yd]).opts(
        title=title, frame_width=size, frame_height=round(size * H / W), xaxis=None, yaxis=None, toolbar=None,
        framewise=True)


# -- the translation test -----------------------------------------------------------------------------------

def self_similarity(result: dict) -> np.ndarray:
    """Per layer, the mean of the trained maps' self-similarity at −1 and +1 (NaN for layer 1)."""
    shifts = list(np.asarray(result["shifts"]))
    itself = np.asarray(result["self"], np.float64)
    return 0.5 * (itself[:, shifts.index(-SHIFT)] + itself[:, shifts.index(SHIFT)])


def translation_curves(result: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """label → (layers, values) of the figure's curves (`CURVES`), the layers without a value (layer 1) left
    out."""
    layers = np.asarray(result["layers"], np.int64)
    curves = {}
    for label, (key, _, _) in CURVES.items():
        values = np.asarray(result[key] if key is not None else self_similarity(result), np.float64)
        keep = np.isfinite(values)
        curves[label] = (layers[keep], values[keep])
    return curves


def _padded(values, always=(0.0, 1.0)) -> tuple[float, float]:
    a = np.asarray([v for v in [*np.ravel(values), *always] if np.isfinite(v)], np.float64)
    lo, hi = float(a.min()), float(a.max())
    pad = max(0.06 * (hi - lo), 0.02)
    return lo - pad, hi + pad


def translation_figure(result: dict | None, layer: int | None = None, note: str = "") -> hv.Overlay:
    """The translation ratio against the layer for the trained network and its untrained control, with the
    trained network's best unshifted correlation (dotted) and self-similarity at ±1 (dashed), the levels 0 and 1 and the
    layer `layer` marked. None: the same figure without data, saying `note`."""
    xd = hv.Dimension("hc_layer", label="layer j")
    yd = hv.Dimension("hc_score", label="ratio · correlation")
    if result is None:
        curves = {label: (np.array([np.nan]), np.array([np.nan])) for label in CURVES}
        title = f"Translations along the older attribute\nno analysis\n{note}"
    else:
        curves = translation_curves(result)
        source = "shipped" if "shipped" in str(result["source"]) else "CIFAR-10 test"
        # three lines in both cases: Bokeh keeps the first frame's title height, and one line for the run and
        # the counts was wider than the plot
        title = (f"Translations along the older attribute\n{result['run']}\n{result['queries']} queries among "
                 f"{result['images']} {source} images")
    layers = []
    for label, (x, y) in curves.items():
        _, colour, dash = CURVES[label]
        layers.append(hv.Curve((x, y), xd, yd, label=label).opts(color=colour, line_width=2, line_dash=dash,
                                                                  framewise=True))
        if label in (TRAINED, CONTROL):
            layers.append(hv.Scatter((x, y), xd, yd, label=label).opts(color=colour, size=7, tools=["hover"],
                                                                        framewise=True))
    ylim = _padded(np.concatenate([y for _, y in curves.values()]))
    text = hv.Text(6.0, 0.5 * (ylim[0] + ylim[1]), note if result is None else "", fontsize=10).opts(framewise=True)
    marker = hv.VLine(float(layer) if layer is not None else np.nan).opts(color="#7f7f7f", line_width=1.5, alpha=0.6)
    levels = [hv.HLine(level).opts(color="black", line_width=1, line_dash="dotted", alpha=0.5) for level in (0.0, 1.0)]
    return (hv.Overlay(layers) * levels[0] * levels[1] * marker * text).opts(
        hv.opts.Curve(xlim=(0.5, N_LAYERS + 0.5), ylim=ylim, xticks=list(range(1, N_LAYERS + 1)), show_grid=True,
                      toolbar="below", frame_width=400, frame_height=260),
        hv.opts.Overlay(title=title, **_LEGEND))


# -- the last layer's example -------------------------------------------------------------------------------

def shifted_rows(values, shift: int = SHIFT) -> np.ndarray:
    """The map (A, F) moved by `shift` rows: row r shows row r + shift (NaN where there is none)."""
    values = np.asarray(values, np.float64)
    out = np.full_like(values, np.nan)
    rows = len(values)
    if shift >= 0:
        out[:rows - shift] = values[shift:]
    else:
        out[-shift:] = values[:rows + shift]
    return out


def compared_window(rows: int, margin: int = SHIFT) -> tuple[int, int]:
    """The rows (first, last) of a query's map that the test compares: margin … A − margin − 1."""
    return margin, rows - margin - 1


def example_map_figure(values, layer: int, title: str, shift: int = 0) -> hv.Overlay:
    """A last-layer map (A, F) (None: an empty frame), shown moved by `shift` rows, with the compared window
    boxed."""
    if values is None:
        values = np.full((3, 1), np.nan)
    values = np.asarray(values, np.float64)
    shown = shifted_rows(values, shift) if shift else values
    first, last = compared_window(len(values))
    cols = values.shape[1]
    image = _map_image(shown, layer, title, size={"frame_width": 250, "frame_height": 150})
    box = hv.Bounds((-0.5, first - 0.5, cols - 0.5, last + 0.5), kdims=image.kdims).opts(
        color="red", line_width=2)
    return (image * box).opts(hv.opts.Bounds(framewise=True))

