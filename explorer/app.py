"""The explorer's web app: ``panel serve explorer/app.py``.

One template with a navigation sidebar; the page is chosen by the URL (``?page=wavelets``) and built per
session, so nothing slow happens at import or for pages the visitor does not open. Pages are listed in
`explorer.pages.PAGES`.
"""
from __future__ import annotations

import threading

import holoviews as hv
import panel as pn
from panel.reactive import Syncable

from explorer.pages import PAGES, page_spec
from explorer.pages.warmup import warm_in_background

# Torch work runs in worker threads (nthreads), so one session's computation never blocks another's;
# sliders send their value when released (throttled).
# Extensions: tabulator for the Runs page; filedropper for the Scattering page's upload (without it
# FilePond's JavaScript is missing and later sessions fail to render); mathjax for formulas written $$…$$
# in Markdown (Bokeh's bundle, served by the app, so it works offline; write ‖ as \Vert, > as \gt).
pn.extension("tabulator", "filedropper", "mathjax", nthreads=2, throttled=True, notifications=False)
hv.extension("bokeh", logo=False)

# Panel waits 50 ms (Syncable._debounce, a private class attribute) before handling a change sent by the
# browser, to merge bursts of events. Slider values are already throttled (sent on release or key press),
# so that wait is pure latency: measured 50–60 ms of a ~210 ms slider update (benchmarks/app_latency.py).
pn.widgets.slider._SliderBase._debounce = 0


def _change_event_in_order(change_event):
    """With a thread pool (nthreads), Panel hands each burst of browser changes of one widget to any free
    thread, so two bursts of the same slider could be applied at once, and an older value could reach
    the browser after a newer one (the slider then showed 4 while the plots showed 7). Here a burst that
    arrives while the widget's previous one is being applied is left to that thread, which applies it
    next: one widget's changes in order, no worker thread ever waiting (a waiting worker could starve
    the pool), different widgets still in parallel."""
    guard = threading.Lock()

    def in_order(self, doc):
        with guard:
            if self.__dict__.get("_explorer_applying"):
                self._explorer_more = True  # the applying thread takes these events next
                return
            self._explorer_applying, self._explorer_more = True, False
        try:
            while True:
                change_event(self, doc)
                with guard:
                    if not (self._explorer_more and self._events):
                        self._explorer_applying = self._explorer_more = False
                        return
                    self._explorer_more = False
        except BaseException:
            with guard:
                self._explorer_applying = self._explorer_more = False
            raise
    in_order.__wrapped__ = change_event
    return in_order


if not hasattr(Syncable._change_event, "__wrapped__"):  # once, even if this script runs per session
    Syncable._change_event = _change_event_in_order(Syncable._change_event)


def _nav(current: str) -> pn.pane.HTML:
    links = []
    for spec in PAGES:
        style = "font-weight:bold;" if spec.slug == current else ""
        links.append(f'<li><a class="nav-link" href="?page={spec.slug}" style="{style}">{spec.title}</a></li>')
    return pn.pane.HTML("<ul style='list-style:none;padding-left:0;line-height:2'>" + "".join(links) + "</ul>",
                        sizing_mode="stretch_width")


def build_app(slug: str | None = None) -> pn.template.BootstrapTemplate:
    """The template for one session showing page `slug` (default: from the URL, else home)."""
    if slug is None:
        arg = pn.state.session_args.get("page", [b"home"]) if pn.state.curdoc else [b"home"]
        slug = arg[0].decode() if isinstance(arg[0], bytes) else str(arg[0])
    slug = slug.strip().lower()  # ?page=Scattering finds the scattering page
    try:
        spec = page_spec(slug)
        missing = None
    except KeyError:
        spec, missing = page_spec("home"), slug
    page = spec.load()()
    sidebar = [pn.pane.Markdown("### Pages"), _nav(spec.slug)]
    if getattr(page, "controls", None) is not None:
        sidebar += [pn.pane.Markdown(f"### {spec.title} controls"), page.controls]
    main = [page]
    if missing is not None:
        main.insert(0, pn.pane.Alert(f"There is no page {missing!r}; showing the home page.",
                                     alert_type="warning"))
    template = pn.template.BootstrapTemplate(
        title="Structures Explorer", sidebar=sidebar, main=main, sidebar_width=330,
        header_background="#1f4e79", main_max_width="1500px")
    template.page = page  # for tests and notebooks
    return template


if pn.state.served:
    warm_in_background()  # once per server process: every page's default view computed before it is asked for
    build_app().servable(title="Structures Explorer")
