"""Warm the process-wide caches behind every page's default view, once per server, in a background thread.

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

_started = threading.Event()


def warm(slugs: list[str] | None = None) -> dict[str, float]:
    """Build each page (all by default) with its default parameters and compute its plots; seconds per page."""
    from . import PAGES

    seconds = {}
    for spec in PAGES:
        if slugs is not None and spec.slug not in slugs:
            continue
        t = time.perf_counter()
        page = spec.load()()
        for pane in page.plot_panes():
            if isinstance(pane.object, hv.DynamicMap):
                pane.object[()]  # runs the view callback: the computation, not the Bokeh rendering
        page.warm_caches()
        seconds[spec.slug] = time.perf_counter() - t
    return seconds


def warm_in_background() -> threading.Thread | None:
    """Start `warm()` in a daemon thread the first time it is called in this process; None afterwards."""
    if _started.is_set():
        return None
    _started.set()

    def run():
        try:
            warm()
        except Exception:  # noqa: BLE001  (a warm-up failure must never stop the server; the page will say why)
            traceback.print_exc()

    thread = threading.Thread(target=run, name="warm-page-caches", daemon=True)
    thread.start()
    return thread
