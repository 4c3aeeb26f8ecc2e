"""The explorer's web app: ``panel serve explorer/app.py``.

One template with a navigation sidebar; the page is chosen by the URL (``?page=wavelets``) and built per
session, so nothing slow happens at import or for pages the visitor does not open. Pages are listed in
`explorer.pages.PAGES`.
"""
from __future__ import annotations

import re
import threading

import holoviews as hv
import panel as pn
from panel.reactive import Syncable

from explorer.pages import PAGES, page_spec
from explorer.pages.warmup import warm_in_background
from explorer.serve_cli import warn_if_exposed

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


MAX_SHOWN_SLUG = 60  # characters of an unknown ?page= value repeated in the page


def _clean_session_args() -> None:
    """Make every URL argument of this session valid UTF-8 (undecodable bytes become U+FFFD). Panel reads
    ``?theme=`` with a strict decode, so ``?theme=%FF`` answered 500; the app reads only ``page``."""
    args = pn.state.session_args if pn.state.curdoc else None
    if not isinstance(args, dict):
        return
    for key, values in list(args.items()):
        values = values if isinstance(values, list) else [values]
        args[key] = [v.decode("utf-8", "replace").encode("utf-8") if isinstance(v, bytes) else v for v in values]


def url_page() -> str:
    """The ``page`` argument of this session's URL (the first one if repeated), or "home"."""
    values = pn.state.session_args.get("page") if pn.state.curdoc else None
    if not values:
        return "home"
    value = values[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def shown_slug(slug: str) -> str:
    """An unknown page name as the page may repeat it: letters, digits and ``-_./ `` only (anything else
    becomes ?, so no HTML, Markdown or formula can be injected), cut to MAX_SHOWN_SLUG characters."""
    text = re.sub(r"[^\w .\-/]", "?", slug)
    return text if len(text) <= MAX_SHOWN_SLUG else text[:MAX_SHOWN_SLUG] + "…"


def build_app(slug: str | None = None) -> pn.template.BootstrapTemplate:
    """The template for one session showing page `slug` (default: from the URL, else home). Any other URL
    argument is ignored; an unknown page shows the home page with a warning naming it (sanitised)."""
    _clean_session_args()
    if slug is None:
        slug = url_page()
    slug = slug.strip().lower() or "home"  # ?page=Scattering finds the scattering page; ?page= is home
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
        pages = ", ".join(f"`{p.slug}`" for p in PAGES)
        main.insert(0, pn.pane.Alert(f"There is no page `{shown_slug(missing)}`; showing the home page. "
                                     f"Pages (`?page=…`): {pages}.", alert_type="warning"))
    template = pn.template.BootstrapTemplate(
        title="Structures Explorer", sidebar=sidebar, main=main, sidebar_width=330,
        header_background="#1f4e79", main_max_width="1500px")
    template.page = page  # for tests and notebooks
    return template


if pn.state.served:
    # Once per server process: a warning in the server's log when it listens on a network address with no login.
    warn_if_exposed(authenticated=bool(pn.config.basic_auth or pn.config.oauth_provider))
    warm_in_background()  # once per server process: every page's default view computed before it is asked for
    build_app().servable(title="Structures Explorer")
