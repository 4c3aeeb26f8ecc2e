"""Check that every rendered Bokeh plot's ranges cover the data its glyphs draw (stale ranges hide data)."""
from __future__ import annotations

import math

import numpy as np
from bokeh.models import (
    FactorRange,
    GlyphRenderer,
    Image,
    ImageRGBA,
    Line,
    LogScale,
    MultiLine,
    Patches,
    Plot,
    Quad,
    Scatter,
    VBar,
)


def _values(source, glyph, name):
    spec = getattr(glyph, name)
    if isinstance(spec, dict):
        if "field" in spec:
            return source.data.get(spec["field"], [])
        return [spec.get("value")]
    if isinstance(spec, str):
        return source.data.get(spec, [])
    return [spec]


def _flat(values) -> np.ndarray:
    out = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, (list, tuple, np.ndarray)):
            out.extend(np.ravel(np.asarray(v, dtype=float)).tolist())
        else:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                pass  # a categorical factor
    a = np.asarray(out, dtype=float)
    return a[np.isfinite(a)]


def glyph_extents(renderer: GlyphRenderer) -> tuple[np.ndarray, np.ndarray]:
    """The x and y values a glyph draws (image corners, line points, quad edges…)."""
    glyph, source = renderer.glyph, renderer.data_source
    v = lambda name: _flat(_values(source, glyph, name))
    if isinstance(glyph, (Image, ImageRGBA)):
        x, y, dw, dh = v("x"), v("y"), v("dw"), v("dh")
        return np.concatenate([x, x + dw]), np.concatenate([y, y + dh])
    if isinstance(glyph, (Line, Scatter)):
        return v("x"), v("y")
    if isinstance(glyph, (MultiLine, Patches)):
        return v("xs"), v("ys")
    if isinstance(glyph, Quad):
        return np.concatenate([v("left"), v("right")]), np.concatenate([v("bottom"), v("top")])
    if isinstance(glyph, VBar):
        return v("x"), np.concatenate([v("top"), v("bottom")])
    return np.zeros(0), np.zeros(0)


def _outside(values: np.ndarray, rng, log: bool) -> list[float]:
    if isinstance(rng, FactorRange) or rng.start is None or rng.end is None or values.size == 0:
        return []
    lo, hi = sorted((float(rng.start), float(rng.end)))
    if log:
        values = values[values > 0]
        if values.size == 0 or lo <= 0:
            return []
        values, lo, hi = np.log10(values), math.log10(lo), math.log10(hi)
    tol = 1e-6 * max(hi - lo, 1e-12)
    return values[(values < lo - tol) | (values > hi + tol)].tolist()


def stale_ranges(root) -> list[str]:
    """One line per plot whose x or y range leaves out data that its glyphs draw."""
    problems = []
    for plot in root.select({"type": Plot}):
        title = plot.title.text if plot.title is not None else "(untitled)"
        for renderer in plot.select({"type": GlyphRenderer}):
            if not renderer.visible:
                continue
            xs, ys = glyph_extents(renderer)
            for axis, values, rng, scale in (("x", xs, plot.x_range, plot.x_scale),
                                             ("y", ys, plot.y_range, plot.y_scale)):
                out = _outside(values, rng, isinstance(scale, LogScale))
                if out:
                    problems.append(f"{title!r}: {axis} range [{rng.start:.4g}, {rng.end:.4g}] leaves out "
                                    f"{len(out)} of {values.size} values ({type(renderer.glyph).__name__}, "
                                    f"e.g. {out[0]:.4g})")
    return problems
