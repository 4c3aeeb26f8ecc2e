"""Warm the process-wide caches behind every page's default view, once per server, in the background: one page
per piece of the shared `explorer.analysis.piecework.RUNNER`, so a visitor's plots go first.

Each page's first visitor would otherwise wait for the computations of its default parameters (filter
banks, scattering results, the invariance curves). Building every page once and evaluating its plots'
callbacks runs exactly the code a visitor runs, so nothing here repeats what a page computes;
`Page.warm_caches` adds what a page computes only after it is shown. No Bokeh model is made here: Panel
rendering outside a session thread leaves state behind (stylesheets resolved to the CDN, lock errors).
"""
from __future__ import annotations

import threading
import time
import traceback

import holoviews as hv

from explorer.analysis.piecework import RUNNER, Pieces, finish

_started = threading.Event()


def warm_pieces(slugs: list[str] | None = None) -> Pieces:
    """Build each page (all by default) with its default parameters and compute its plots, one page per piece
    (`explorer.analysis.piecework`); returns the seconds per page."""
    from . import PAGES

    specs = [spec for spec in PAGES if slugs is None or spec.slug in slugs]
    seconds = {}
    for i, spec in enumerate(specs):
        t = time.perf_counter()
        page = spec.load()()
        for pane in page.plot_panes():
            if isinstance(pane.object, hv.DynamicMap):
                pane.object[()]  # runs the view callback: the computation, not the Bokeh rendering
        page.warm_caches()
        seconds[spec.slug] = time.perf_counter() - t
        if i + 1 < len(specs):
            yield (i + 1) / len(specs)
    return seconds


def warm(slugs: list[str] | None = None) -> dict[str, float]:
    """`warm_pieces` in this thread: seconds per page."""
    return finish(warm_pieces(slugs))


def warm_in_background():
    """Hand `warm_pieces()` to the shared background runner the first time it is called in this process (a
    visitor's plots and curves go first, between pages); its `piecework.Request`, None afterwards."""
    if _started.is_set():
        return None
    _started.set()

    def done(_seconds, error):
        if error is not None:  # a warm-up failure must never stop the server; the page will say why
            traceback.print_exception(error)

    return RUNNER.submit(("warm-up",), warm_pieces, on_done=done, low_priority=True)
