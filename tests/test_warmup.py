"""The server warms every page's default computations once, so a page's first visitor finds them cached."""
from __future__ import annotations

import bokeh.document
import panel as pn
import pytest

from explorer.analysis import cache
from explorer.pages import warmup


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def test_warm_fills_the_caches_a_default_page_reads():
    cache.rotation_curve.cache_clear()
    cache.deformation_curve.cache_clear()
    seconds = warmup.warm(["invariance"])
    assert list(seconds) == ["invariance"]
    before = cache.rotation_curve.cache_info()
    assert before.currsize >= 1
    # A visitor's page now reads the curves from the cache: hits, no new entry.
    from explorer.app import build_app

    page = build_app("invariance").page
    pn.panel(page).get_root(bokeh.document.Document())
    after = cache.rotation_curve.cache_info()
    assert after.hits > before.hits and after.misses == before.misses


def test_warm_in_background_starts_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "warm", lambda slugs=None: calls.append(slugs))
    monkeypatch.setattr(warmup, "_started", type(warmup._started)())
    thread = warmup.warm_in_background()
    assert thread is not None
    thread.join(10)
    assert warmup.warm_in_background() is None
    assert calls == [None]
