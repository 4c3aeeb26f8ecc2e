"""Browser changes of one widget are applied one burst after another, even with Panel's thread pool."""
from __future__ import annotations

import inspect
import threading
import time

import panel as pn
from bokeh.document import Document
from panel.reactive import Syncable

import explorer.app  # noqa: F401  (installs the per-widget ordering)


def _instrument(widget, applied: list, running: list, peaks: list, lock: threading.Lock) -> None:
    """Record what each application of browser changes sees; each takes a while (a plot recomputed)."""
    def slow_process(events):
        with lock:
            running[0] += 1
            peaks.append(running[0])
            applied.append(dict(events))
        time.sleep(0.05)
        with lock:
            running[0] -= 1
    widget._process_events = slow_process


def _burst(widget, doc, value) -> threading.Thread:
    """What Panel does when the browser sends a change: store it, hand the widget to a worker thread."""
    widget._events.update({"value": value})
    thread = threading.Thread(target=widget._change_event, args=(doc,))
    thread.start()
    return thread


def test_bursts_of_one_slider_are_applied_one_after_another_and_the_last_wins():
    slider = pn.widgets.IntSlider(start=0, end=10)
    applied, running, peaks, lock = [], [0], [], threading.Lock()
    _instrument(slider, applied, running, peaks, lock)
    doc = Document()
    threads = []
    for value in range(1, 6):
        threads.append(_burst(slider, doc, value))
        time.sleep(0.01)  # key presses 10 ms apart, each applied in 50 ms
    for t in threads:
        t.join(10)
    assert max(peaks) == 1  # never two at once
    values = [e["value"] for e in applied]
    assert values == sorted(values) and values[-1] == 5, values  # in order, the newest last
    assert len(values) < 5  # bursts that arrived meanwhile were merged, no worker waited for them


def test_different_widgets_still_run_in_parallel():
    applied, running, peaks, lock = [], [0], [], threading.Lock()
    sliders = [pn.widgets.IntSlider(start=0, end=10) for _ in range(3)]
    for s in sliders:
        _instrument(s, applied, running, peaks, lock)
    threads = [_burst(s, Document(), 1) for s in sliders]
    for t in threads:
        t.join(10)
    assert len(peaks) == 3 and max(peaks) > 1


def test_the_wrapped_panel_method_still_takes_the_pending_events():
    """The ordering wraps a private Panel method: if Panel renames or reshapes it, this fails first."""
    original = Syncable._change_event.__wrapped__
    assert "self._events = {}" in inspect.getsource(original)  # it takes and clears the pending events
    assert "_change_event" in inspect.getsource(Syncable._change_coroutine)
