"""What every page shares: an alert for errors (greying the plots it concerns), figures with captions."""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback
import weakref

import panel as pn
from holoviews.core.options import SkipRendering

from explorer.analysis.piecework import RUNNER

POLL_S = 0.25  # how often a page shows the progress of work running off the event loop
# The errors a computation is expected to raise (a missing dataset, a damaged run, a full disk, too little
# memory): said plainly; any other is a bug, said as one and printed with its traceback.
EXPECTED_ERRORS = (ValueError, OSError, RuntimeError, MemoryError)

# pane → the Columns that `figure` drew it in: a stale plot is greyed through its frame, because a change of
# styles on a HoloViews pane itself fails in a served session (Panel 1.9 copies the plot's stylesheets back).
_FRAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def figure(obj, caption: str, width: int = 400, **kwargs) -> pn.Column:
    """A HoloViews object (or pane) with its one-line caption underneath, `width` pixels wide (fixed, so that
    figures sit side by side in a FlexBox)."""
    pane = obj if isinstance(obj, pn.viewable.Viewable) else pn.pane.HoloViews(obj, linked_axes=False, **kwargs)
    frame = pn.Column(pane, pn.pane.Markdown(f"*{caption}*", styles={"font-size": "12px"}, width=width,
                                            margin=(0, 10, 10, 10)))
    _FRAMES.setdefault(pane, weakref.WeakSet()).add(frame)
    return frame


def labelled(widget, label: str | None = None) -> pn.Column:
    """A widget that shows no title of its own (a radio group) under `label` (default: its name), in the
    sliders' style."""
    return pn.Column(pn.pane.Markdown(label or widget.name, margin=(5, 10, -12, 10), styles={"font-size": "13px"}),
                     widget, sizing_mode="stretch_width")


def theta_format(L: int):
    """How a θ-index slider shows its value: the index and its angle, "2 (45°)" for L = 8, computed in the
    browser so that a drag shows it at once."""
    from bokeh.models import CustomJSTickFormatter

    return CustomJSTickFormatter(args={"L": int(L)},
                                 code="return tick.toFixed(0) + ' (' + +(tick * 180 / L).toFixed(2) + '°)';")


def theta_label(name: str, L: int) -> str:
    # Changes with L on purpose: Bokeh redraws a slider's "title: value" on a new title, not on a new format.
    return f"{name} index (0–{int(L) - 1})"


def _is_stale(frame) -> bool:
    return all(frame.styles.get(k) == v for k, v in STALE_STYLES.items())


# How a plot that still shows the previous parameters looks while the alert explains why (greyed, faded).
STALE_STYLES = {"opacity": "0.35", "filter": "grayscale(100%)"}
CURRENT_STYLES = {"opacity": "1", "filter": "none"}  # explicit: a removed key would stay in the browser
STALE_NOTE = " The plots below still show the previous parameters (greyed out) until this is fixed."


class Page(pn.viewable.Viewer):
    """A page: its param parameters are its state, `self.alert` shows what went wrong."""

    title = "Page"
    # An error on most pages means the plots keep the previous parameters' frame; a page whose errors
    # never concern its plots (a training job that failed to start) sets this False.
    errors_leave_plots_stale = True

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self._requests: dict = {}  # what → the `piecework.Request` this page waits for
        doc = pn.state.curdoc
        self.session_doc = doc if doc is not None and doc.session_context is not None else None
        if self.session_doc is not None:
            self.session_doc.on_session_destroyed(lambda _context: self.cancel_work())
            _watch_session(self)

    # -- background work --------------------------------------------------------------------------------
    @property
    def served(self) -> bool:
        """Whether this page belongs to a served session (else: a notebook, a test, the server's warm-up)."""
        return self.session_doc is not None

    def in_session(self, callback) -> None:
        """Run `callback` on the session's event loop (the only place where a served document may change),
        or at once when the page is not served. Does nothing once the session has closed."""
        if self.session_doc is None:
            callback()
            return
        with contextlib.suppress(Exception):  # the session closed meanwhile: nothing to show it in
            self.session_doc.add_next_tick_callback(callback)

    def wait_for(self, what: str, request) -> None:
        """Record that the page waits for `request` under `what`; a previous request under the same name is
        cancelled (the latest value wins)."""
        previous = self._requests.get(what)
        if previous is not None and previous is not request:
            previous.cancel()
        self._requests[what] = request

    def waiting_for(self, what: str):
        request = self._requests.get(what)
        return request if request is not None and not request.cancelled else None

    def done_waiting(self, what: str, request) -> None:
        if self._requests.get(what) is request:
            del self._requests[what]

    def busy(self) -> bool:
        """Whether the page has work running for its visitor (pages with their own jobs add theirs)."""
        return any(not r.cancelled for r in self._requests.values())

    def cancel_work(self) -> None:
        """Stop what the page computes for its visitor: the session has closed (pages with their own jobs
        extend it)."""
        for request in list(self._requests.values()):
            request.cancel()
        self._requests.clear()

    def show_error(self, message: str | None) -> None:
        """Show `message` in the alert and grey out every plot, which keeps its last good frame; None
        clears both."""
        stale = bool(message) and self.errors_leave_plots_stale
        self.alert.object = (message + STALE_NOTE if stale else message) or ""
        self.alert.visible = bool(message)
        for pane in self.plot_panes():
            self.mark_stale(pane, stale)

    def plot_panes(self) -> list[pn.pane.HoloViews]:
        """The page's plots (its HoloViews panes, wherever they are attributes)."""
        return [v for v in vars(self).values() if isinstance(v, pn.pane.HoloViews)]

    @staticmethod
    def mark_stale(pane, stale: bool) -> None:
        """Grey out (or restore) the figure that shows `pane`; a pane shown without `figure` stays as is."""
        for frame in _FRAMES.get(pane, ()):
            if _is_stale(frame) != stale:
                frame.styles = {**frame.styles, **(STALE_STYLES if stale else CURRENT_STYLES)}

    @staticmethod
    def is_stale(pane) -> bool:
        frames = list(_FRAMES.get(pane, ()))
        return bool(frames) and all(_is_stale(frame) for frame in frames)

    def warm_caches(self) -> None:
        """Compute what this page computes only once it is served (the server warms every page's defaults
        at start, `explorer.pages.warmup`). Rendering the page already covers its plots."""

    def show_note(self, message: str | None) -> None:
        self.note.object = message or ""
        self.note.visible = bool(message)

    def guarded(self, fn, *args, **kwargs):
        """Call a view function for a DynamicMap; on an error show it in the alert and keep the figure as it
        was (HoloViews' SkipRendering: a DynamicMap must keep returning the same type of element)."""
        try:
            with RUNNER.interactive():  # a visitor waits for this plot: background pieces wait for it
                return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (a bug too: keep the session alive and say so)
            # A TypeError here is a widget's value of the wrong kind, said as it is.
            message = str(exc) if isinstance(exc, TypeError) else failure_text(exc)
            self.show_error(message)
            raise SkipRendering(message) from None


# -- closed sessions ---------------------------------------------------------------------------------------
# Bokeh destroys a session only some 15–30 s after its tab closed (its unused-session check); a page's work
# must stop within a second or two. A thread watches the pages that have work running: a session whose
# websocket has gone (connected once, no connection for two checks in a row) has its work cancelled.
WATCH_S = 0.5
_WATCHED: weakref.WeakSet = weakref.WeakSet()
_WATCH_LOCK = threading.Lock()
_watcher: threading.Thread | None = None


def session_connections(doc) -> int | None:
    """How many browser connections the served document `doc` has (None when Bokeh does not say: its
    `ServerSession` is reached through a private attribute of the session context)."""
    session = getattr(doc.session_context, "_session", None)
    if session is None:
        return None
    if getattr(session, "destroyed", False):
        return 0
    return getattr(session, "connection_count", None)


def _watch_session(page: Page) -> None:
    global _watcher
    page._connected_once, page._missed_checks = False, 0
    with _WATCH_LOCK:
        _WATCHED.add(page)
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch_loop, name="closed-sessions", daemon=True)
            _watcher.start()


def _check_session(page: Page) -> None:
    count = session_connections(page.session_doc)
    if count is None:
        return
    if count > 0:
        page._connected_once, page._missed_checks = True, 0
        return
    if page._connected_once:
        page._missed_checks += 1
        if page._missed_checks >= 2 and page.busy():
            print(f"[sessions] a tab closed: stopping the work of its {type(page).__name__}", file=sys.stderr,
                  flush=True)
            page.cancel_work()


def _check_sessions() -> None:
    # Strong references to the pages live only during a check: a list kept across the sleep would keep every
    # page (and its session's document) alive forever, each check taking them again from the weak set.
    with _WATCH_LOCK:
        pages = list(_WATCHED)
    for page in pages:
        try:
            _check_session(page)
        except Exception:  # noqa: BLE001  (the watcher must outlive any one page)
            traceback.print_exc()


def _watch_loop() -> None:
    while True:
        time.sleep(WATCH_S)
        _check_sessions()


def run_choices(accept, first: str | None = None, detail=None) -> dict[str, str]:
    """The store's runs (shipped ones included) that `accept(info)` keeps, as selector choices: label → run
    id, "id (detail, shipped|status, accuracy %)", with the run `first` first. `detail(info)` adds a word
    on the model (None: nothing). Reads only the runs' listing (`RunStore.list`), never their weights."""
    from explorer.runs import RunStore

    found = {}
    for info in RunStore().list():
        if not accept(info):
            continue
        accuracy = f", {100 * info.accuracy:.2f} %" if info.accuracy is not None else ""
        words = [detail(info)] if detail is not None else []
        words.append(("shipped" if info.shipped else info.status) + accuracy)
        found[f"{info.id} ({', '.join(words)})"] = info.id
    return dict(sorted(found.items(), key=lambda item: item[1] != first))


def run_signature(run_id: str) -> tuple:
    """What a run's stored results depend on: the files of its folder and of its shipped analyses' folder
    (name, size, mtime); new weights or a new analysis change it. Pages key their caches on it."""
    from explorer.runs import RunStore
    from explorer.runs.store import SHIPPED_ANALYSES

    store = RunStore()
    folder = store.locate(store.resolve(run_id))
    stamps = []
    for place in (folder, store.root / SHIPPED_ANALYSES / folder.name):
        try:
            with os.scandir(place) as entries:
                stamps.append(tuple(sorted((e.name, st.st_size, st.st_mtime_ns)
                                           for e in entries for st in [e.stat()])))
        except OSError:
            stamps.append(None)
    return (str(folder), *stamps)


def failure_text(exc: BaseException) -> str:
    """What to tell a visitor of a failed computation; an unexpected kind of error (a bug) is also printed
    with its traceback for the server's log."""
    if isinstance(exc, EXPECTED_ERRORS):
        return str(exc)
    traceback.print_exception(exc)
    return f"Unexpected error: {exc!r}"


def attempt(work) -> tuple:
    """(work(), None), or (None, `failure_text` of its error): for work whose failure a page says and survives."""
    try:
        return work(), None
    except Exception as exc:  # noqa: BLE001  (a bug too: keep the session alive and say so)
        return None, failure_text(exc)


async def in_worker(fn, *args, poll=None, **kwargs):
    """`fn(*args, **kwargs)` in a worker thread, so that the server's event loop (every other visitor) goes on;
    `poll()` runs on the loop every POLL_S seconds meanwhile. Returns fn's result, or raises its exception."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    while not task.done():
        await asyncio.wait([task], timeout=POLL_S)
        if poll is not None:
            poll()
    return task.result()


class ComputeBox:
    """A tinted box offering to compute what a page lacks: its text, a button, and a progress bar with a
    line of text that follow the computation's `report(label, fraction)`."""

    def __init__(self, label: str, on_click):
        self.text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.button = pn.widgets.Button(label=label, color="primary", width=280)
        self.button.on_click(on_click)
        self.progress = pn.indicators.Progress(value=0, max=1000, visible=False, sizing_mode="stretch_width",
                                               height=14, bar_color="primary")
        self.progress_text = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
        self.box = pn.Column(self.text, self.button, self.progress, self.progress_text, visible=False,
                             sizing_mode="stretch_width", styles={"background": "#eef4fb", "border-radius": "6px"})

    def started(self) -> None:
        self.button.disabled = True
        self.progress.value, self.progress.visible = 0, True

    def finished(self) -> None:
        self.progress.visible = False
        self.progress_text.object = ""

    async def follow(self, job, heading: str, start: float = 0.0, share: float = 1.0):
        """`job(report)` in a worker thread (`in_worker`); the bar shows start + share × the last fraction it
        reported, the text "heading: label, N %". Returns job's result, or raises its exception."""
        state = {"label": "starting", "fraction": start}

        def report(label, fraction):
            state["label"], state["fraction"] = label, start + share * float(fraction)

        def show():
            self.progress.value = int(1000 * state["fraction"])
            self.progress_text.object = f"{heading}: {state['label']}, {100 * state['fraction']:.0f} %"

        return await in_worker(job, report, poll=show)
