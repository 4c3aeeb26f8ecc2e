"""A page of the app, live in a Jupyter notebook: ``show_page("wavelets")`` as a cell's last line.

Panel templates do not render in notebooks, so the page is laid out as the app lays it out, minus the
template: its controls (the app's sidebar) left of its main area. Widgets and plots are the page's own and
run through the kernel. The app itself does not use this module.

Load the extensions first, in the notebook: ``pn.extension("mathjax", inline=True, throttled=True)`` then
``hv.extension("bokeh", inline=True)`` (in that order, or the formulas in the pages' text stay raw), plus
``"filedropper"`` for the Scattering page and ``"tabulator"`` for the Runs page. Inline: the pages work
offline. A component whose extension is missing logs a warning to stderr and may not render.
"""
from __future__ import annotations

import panel as pn

from . import page_spec

SIDEBAR_WIDTH = 330  # the app's sidebar_width
REFRESH_MS = 1000  # the Runs page's own polling period when served

# slug → the periodic refresh of the page shown last with that slug: showing it again stops the old one,
# so re-running a cell does not pile up pollers in the kernel.
_polls: dict[str, pn.io.PeriodicCallback] = {}


def show_page(page: str | pn.viewable.Viewer, **params) -> pn.Row:
    """The page `page` (a slug of `explorer.pages.PAGES`, or a page instance) as controls | main area.

    `params` set the page's parameters, e.g. ``show_page("wavelets", J=2, theta=3)``. The returned Row's
    `page` attribute is the page, for code that drives it (``row.page.theta = 4`` moves the slider too), and
    `poll` its periodic refresh (None for pages that need none).
    """
    if isinstance(page, str):
        spec = page_spec(page.strip().lower())
        slug, page = spec.slug, spec.load()(**params)
    else:
        slug = type(page).__name__
        page.param.update(**params)
    poll = _start(slug, page)
    controls = getattr(page, "controls", None)
    sidebar = [] if controls is None else [
        pn.Column(pn.pane.Markdown(f"### {page.title} controls"), controls, width=SIDEBAR_WIDTH)]
    row = pn.Row(*sidebar, page, sizing_mode="stretch_width")
    row.page, row.poll = page, poll
    return row


def _start(slug: str, page) -> pn.io.PeriodicCallback | None:
    """What the served app starts with a session but a notebook must do itself (pages check
    `pn.state.curdoc.session_context`, which a notebook does not have)."""
    # Invariance: the Lipschitz histogram is computed in a thread only when served; here, now (a few
    # seconds, while the cell runs), then on every change of size, J or L as in the app.
    if hasattr(page, "load_lipschitz") and getattr(page, "lipschitz", None) is None:
        page.load_lipschitz()
    # Runs: the run and job tables are polled only when served; a notebook polls them on the kernel's
    # event loop (between cells), so a job started from the form is followed live here too.
    if callable(getattr(page, "refresh", None)):
        old = _polls.pop(slug, None)
        if old is not None:
            old.stop()
        _polls[slug] = pn.state.add_periodic_callback(page.refresh, period=REFRESH_MS)
        return _polls[slug]
    return None
