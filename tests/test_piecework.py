"""Heavy work in pieces: cancelled when nobody wants it, shared, in turns, after interactive work
(`explorer.analysis.piecework`), and the Invariance page's curves through it."""
from __future__ import annotations

import threading
import time
import types

import numpy as np
import panel as pn
import pytest

from explorer.analysis import cache
from explorer.analysis.invariance import rotation_error_pieces, rotation_errors
from explorer.analysis.piecework import Cancelled, PieceRunner, finish


def counting(log: list, name: str, pieces: int, seconds: float = 0.02, result=None):
    """A job of `pieces` pieces of `seconds` each that records every piece it starts."""
    for i in range(pieces):
        log.append((name, i, time.monotonic()))
        time.sleep(seconds)
        if i + 1 < pieces:
            yield (i + 1) / pieces
    return result if result is not None else name


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def runner():
    r = PieceRunner(quiet_s=0.05, max_wait_s=1.0, name="test-piecework")
    yield r
    r.stop(5)


def test_finish_returns_the_result_and_stops_when_cancelled():
    log: list = []
    assert finish(counting(log, "a", 4)) == "a" and len(log) == 4
    log.clear()
    calls = iter([False, True])
    with pytest.raises(Cancelled):
        finish(counting(log, "b", 10), cancelled=lambda: next(calls))
    assert len(log) == 2  # the check runs between pieces: two pieces, then it stopped


def test_a_cancelled_request_stops_its_job_at_the_next_piece(runner):
    log: list = []
    done: list = []
    request = runner.submit("slow", lambda: counting(log, "slow", 200, 0.02), on_done=lambda *a: done.append(a))
    assert wait_until(lambda: len(log) >= 3)
    request.cancel()
    cancelled_at = time.monotonic()
    assert wait_until(lambda: "slow" not in runner.pending(), 2.0)
    time.sleep(0.1)
    after = [t for _, _, t in log if t > cancelled_at]
    assert len(after) <= 1  # at most the piece that was starting when it was cancelled
    assert len(log) < 50 and done == []  # stopped long before its end, and nobody was called back
    assert [e[1] for e in runner.events if e[2] == "slow"][-1] == "cancelled"


def test_requests_for_the_same_key_share_one_job_until_the_last_one_is_cancelled(runner):
    log: list = []
    made: list = []
    results: list = []

    def make():
        made.append(1)
        return counting(log, "curve", 15, 0.02)

    first = runner.submit("curve", make, on_done=lambda r, e: results.append(("first", r, e)))
    runner.submit("curve", make, on_done=lambda r, e: results.append(("second", r, e)))
    assert len(made) == 1
    first.cancel()
    assert wait_until(lambda: results, 10)
    assert results == [("second", "curve", None)] and len(log) == 15  # ran to its end for the second


def test_jobs_take_turns_piece_by_piece(runner):
    log: list = []
    gate = threading.Event()
    with runner.interactive():  # hold the pieces until both jobs are there
        runner.submit("a", lambda: counting(log, "a", 4, 0.01), on_done=lambda *_: gate.set())
        runner.submit("b", lambda: counting(log, "b", 4, 0.01))
    assert wait_until(lambda: len(log) == 8, 10)
    names = [name for name, _, _ in log]
    assert names == ["a", "b"] * 4


def test_no_piece_starts_while_a_visitor_waits_for_a_plot(runner):
    log: list = []
    runner.submit("bg", lambda: counting(log, "bg", 1000, 0.01))
    assert wait_until(lambda: len(log) >= 2)
    with runner.interactive():
        entered = time.monotonic()
        time.sleep(0.4)
        left = time.monotonic()
    # At most the piece already running when the plot began (10 ms) overlaps it; then nothing until quiet.
    during = [t for _, _, t in log if entered + 0.02 < t < left + runner.quiet_s - 0.01]
    assert during == []
    assert wait_until(lambda: any(t > left for _, _, t in log), 2)


def test_constant_interaction_never_starves_the_background_work(runner):
    log: list = []
    runner.submit("bg", lambda: counting(log, "bg", 3, 0.01))
    stop = time.monotonic() + 2.5
    while time.monotonic() < stop and len(log) < 3:
        with runner.interactive():
            time.sleep(0.05)
    assert len(log) >= 2  # `max_wait_s` = 1 s: pieces still ran while plots were drawn back to back


def test_a_failing_job_reports_its_error_and_the_runner_goes_on(runner):
    def broken():
        yield 0.5
        raise ValueError("J = 9 is too large for a 32×32 image")

    got: list = []
    runner.submit("broken", broken, on_done=lambda r, e: got.append((r, e)))
    assert wait_until(lambda: got, 5)
    assert got[0][0] is None and "too large" in str(got[0][1])
    again: list = []
    runner.submit("next", lambda: counting([], "next", 2), on_done=lambda r, e: again.append(r))
    assert wait_until(lambda: again == ["next"], 5)


def test_the_rotation_curve_in_pieces_equals_the_curve_in_one_go():
    x = np.random.default_rng(0).random((16, 16))
    degrees = (0, 30, 45, 90, 135, 180)
    pieces = rotation_error_pieces(x, 2, 4, degrees, piece_s=0.0)  # a piece per angle
    fractions = []
    while True:
        try:
            fractions.append(next(pieces))
        except StopIteration as stop:
            out = stop.value
            break
    assert fractions == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    whole = rotation_errors(x, 2, 4, degrees)
    for key in whole:
        np.testing.assert_array_equal(out[key], whole[key])


def test_the_translation_curve_never_shifts_by_a_whole_image_width():
    # J = 4 on 32×32: the slider used to go to 2^(J+1) = 32 columns, which the curve refused.
    assert list(cache.translation_shifts(32, 4)) == list(range(32))
    assert list(cache.translation_shifts(64, 2)) == list(range(9))
    out = cache.curve("translation", "synthetic: disk", 32, 4, 4)
    assert out["shift"][-1] == 31 and np.all(np.isfinite(out["error"]))


# -- the Invariance page, as served: its curves come from the runner, the latest value wins -------------------
class InlineDoc:
    """A stand-in for a served Bokeh document: next-tick callbacks run at once in the calling thread."""

    def __init__(self):
        self.session_context = types.SimpleNamespace(_session=None, request=types.SimpleNamespace(arguments={}))

    def add_next_tick_callback(self, callback):
        callback()

    def on_session_destroyed(self, callback):
        self.destroyed = callback


@pytest.fixture
def served_invariance(monkeypatch):
    """An Invariance page that behaves as served, with fake curves of 50 pieces of 20 ms each."""
    from explorer.pages import invariance as invariance_page
    from explorer.pages.invariance import InvariancePage

    runner = PieceRunner(quiet_s=0.0, max_wait_s=0.5, name="test-invariance")
    monkeypatch.setattr(cache, "RUNNER", runner)
    monkeypatch.setattr(invariance_page, "RUNNER", runner)  # its Lipschitz ratios
    started: list = []

    def fake_pieces(kind, name, size, J, L):
        started.append((kind, J))
        for i in range(50):
            time.sleep(0.02)
            yield i / 50
        return {"degrees": np.array([0.0, 5.0]), "shift": np.array([0, 1]), "error": np.array([1e-3, 2e-3]),
                "error_unrolled": np.array([1e-2, 2e-2])}

    monkeypatch.setattr(cache, "_curve_pieces", fake_pieces)
    cache.clear_curves()
    doc = InlineDoc()
    with monkeypatch.context() as during:  # built as in a served session: it registers its clean-up there
        during.setattr(type(pn.state), "curdoc", property(lambda _self: doc))
        page = InvariancePage()
    assert page.session_doc is doc and page.served
    yield page, runner, started
    runner.stop(5)
    cache.clear_curves()


def test_the_page_shows_a_placeholder_then_the_curve_when_it_arrives(served_invariance):
    page, _runner, started = served_invariance
    figure = page._rotation("camera", 32, 3, 8, 0.0)
    assert "Computing the rotation curve" in figure.opts.get().kwargs["title"]
    assert page.work_text.visible and page.waiting_for("rotation") is not None
    assert wait_until(lambda: page.curves_ready == 1, 10)
    assert page.waiting_for("rotation") is None
    figure = page._rotation("camera", 32, 3, 8, 0.0)
    assert figure.opts.get().kwargs["title"].startswith("Rotation by 0°")
    assert started == [("rotation", 3)]


def test_moving_j_on_supersedes_the_curve_of_the_previous_value(served_invariance):
    page, runner, _ = served_invariance
    page._rotation("camera", 32, 3, 8, 0.0)
    assert wait_until(lambda: runner.current is not None)
    page._rotation("camera", 32, 4, 8, 0.0)  # the visitor moved J on before J = 3 was done
    assert wait_until(lambda: page.curves_ready == 1, 10)
    events = [(e[1], e[2][4]) for e in runner.events if e[2][0] == "curve"]
    assert ("cancelled", 3) in events and ("finished", 4) in events and ("finished", 3) not in events
    assert cache.cached_curve("rotation", "camera", 32, 3, 8) is None


def test_a_closed_session_stops_the_curve_it_was_computing(served_invariance):
    page, runner, _ = served_invariance
    page._rotation("camera", 32, 4, 8, 0.0)
    assert wait_until(lambda: runner.current is not None)
    page.session_doc.destroyed(None)  # what Bokeh calls when the session is destroyed
    assert wait_until(lambda: not runner.pending(), 1.0)
    assert [e[1] for e in runner.events][-1] == "cancelled"


def test_a_tab_closed_is_noticed_before_bokeh_destroys_its_session(served_invariance, monkeypatch):
    from explorer.pages import base

    page, runner, _ = served_invariance
    session = types.SimpleNamespace(connection_count=1, destroyed=False)
    page.session_doc.session_context._session = session
    page._connected_once, page._missed_checks = False, 0
    page._rotation("camera", 32, 4, 8, 0.0)
    base._check_session(page)  # connected: nothing happens
    session.connection_count = 0  # the websocket closed (a reload would open a new session)
    base._check_session(page)
    assert runner.pending()  # one missed check is not yet a closed tab
    base._check_session(page)
    assert wait_until(lambda: not runner.pending(), 1.0)
    assert not page.busy()  # the Lipschitz ratios were cancelled too


def test_the_page_keeps_working_when_a_curve_fails(served_invariance, monkeypatch):
    page, _, _ = served_invariance

    def failing(kind, name, size, J, L):
        yield 0.0
        raise MemoryError("not enough memory for this curve")

    monkeypatch.setattr(cache, "_curve_pieces", failing)
    page._deformation("camera", 32, 4, 8, 0.0)
    assert wait_until(lambda: page.alert.visible, 5)
    assert "not enough memory" in page.alert.object and page.waiting_for("deformation") is None



def test_a_low_priority_job_gets_pieces_only_when_no_other_job_waits(runner):
    log: list = []
    with runner.interactive():
        runner.submit("warm-up", lambda: counting(log, "warm-up", 3, 0.01), low_priority=True)
        runner.submit("curve", lambda: counting(log, "curve", 3, 0.01))
    assert wait_until(lambda: len(log) == 6, 10)
    assert [name for name, _, _ in log] == ["curve"] * 3 + ["warm-up"] * 3


def test_a_job_that_has_not_started_is_dropped_at_once_when_cancelled(runner):
    log: list = []
    with runner.interactive():  # no piece may start meanwhile
        request = runner.submit("waiting", lambda: counting(log, "waiting", 3))
        request.cancel()
        assert runner.pending() == []
    assert log == [] and runner.events[-1][1:3] == ("cancelled", "waiting")


def test_the_closed_session_watcher_never_keeps_a_page_alive(monkeypatch):
    """The watcher holds its pages weakly: once a session's page is gone, nothing of it stays (a list of pages
    kept across the watcher's sleep once kept every session's page and document, about 1 MB per visit)."""
    import gc
    import weakref

    from explorer.pages import base

    class Bare(base.Page):
        def __panel__(self):
            return pn.Column()

    doc = InlineDoc()
    with monkeypatch.context() as during:
        during.setattr(type(pn.state), "curdoc", property(lambda _self: doc))
        page = Bare()
    assert page in base._WATCHED
    gone = weakref.ref(page)
    time.sleep(3 * base.WATCH_S)  # the watcher has checked it
    del doc.destroyed  # the test's document outlives the page: it must not hold it
    del page
    time.sleep(2 * base.WATCH_S)  # and checked again since
    gc.collect()
    assert gone() is None
