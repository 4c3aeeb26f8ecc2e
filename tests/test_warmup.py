"""The server warms every page's default computations once, so a page's first visitor finds them cached."""
from __future__ import annotations

import time

import bokeh.document
import panel as pn
import pytest

from explorer.analysis import cache
from explorer.analysis.piecework import RUNNER
from explorer.pages import warmup


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def test_warm_fills_the_caches_a_default_page_reads():
    cache.clear_curves()
    seconds = warmup.warm(["invariance"])
    assert list(seconds) == ["invariance"]
    warmed = cache.cached_curve("rotation", "camera", 32, 2, 8)
    assert warmed is not None
    # A visitor's page now reads the curve from the cache: the very same object, nothing recomputed.
    from explorer.app import build_app

    page = build_app("invariance").page
    pn.panel(page).get_root(bokeh.document.Document())
    assert cache.cached_curve("rotation", "camera", 32, 2, 8) is warmed
    assert cache.curve("rotation", "camera", 32, 2, 8) is warmed


def test_warm_in_background_starts_once_per_process(monkeypatch):
    calls = []

    def pieces(slugs=None):
        calls.append(slugs)
        yield 0.5
        return {"home": 0.0}

    monkeypatch.setattr(warmup, "warm_pieces", pieces)
    monkeypatch.setattr(warmup, "_started", type(warmup._started)())
    request = warmup.warm_in_background()
    assert request is not None and request.key == ("warm-up",)
    deadline = time.monotonic() + 10
    while ("warm-up",) in RUNNER.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("warm-up",) not in RUNNER.pending()
    assert warmup.warm_in_background() is None
    assert calls == [None]
