"""Shared helpers for the views: grids with y up, image options."""
from __future__ import annotations

import holoviews as hv
import numpy as np


def centred_bounds(shape: tuple[int, int], step: float = 1.0) -> tuple[float, float, float, float]:
    """hv.Image bounds (left, bottom, right, top) for an fftshift-ed array: column c is at
    x = (c − N/2)·step, row r at y = −(r − M/2)·step (y up, row 0 at the top)."""
    M, N = shape
    left = (-N / 2 - 0.5) * step
    right = (N / 2 - 0.5) * step
    top = (M / 2 + 0.5) * step
    bottom = (-M / 2 + 0.5) * step
    return (left, bottom, right, top)


def image_bounds(shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """Bounds of an image in pixels with y up: x ∈ [0, W], y ∈ [0, H] (row 0 at y = H)."""
    H, W = shape
    return (0.0, 0.0, float(W), float(H))


def as_float32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


# Every figure a slider can change is framewise (ranges recomputed per frame). Never axiswise=True: in an
# overlay it freezes the ranges at the first frame (HoloViews 1.23), which hid S1 columns after L grew.
# tests/test_plot_ranges.py checks every page's rendered ranges after parameter changes.
IMAGE_OPTS = {"colorbar": True, "tools": ["hover"], "toolbar": "below", "framewise": True}


def square_image(data, bounds, kdims, vdim, title, cmap="viridis", size=260, symmetric=False, **opts):
    """An hv.Image with equal aspect, a colour bar and a title."""
    img = hv.Image(as_float32(data), bounds=bounds, kdims=kdims, vdims=[vdim])
    l, b, r, t = bounds
    height = round(size * (t - b) / (r - l)) if r > l else size
    o = dict(IMAGE_OPTS, cmap=cmap, title=title, frame_width=size, frame_height=height)
    if symmetric:
        m = float(np.abs(data).max()) or 1.0
        o["clim"] = (-m, m)
        o["cmap"] = "RdBu_r"
    o.update(opts)
    return img.opts(**o)
