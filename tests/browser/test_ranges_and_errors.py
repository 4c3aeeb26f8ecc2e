"""In Chromium: a plot's ranges follow a change of its extent, and an error greys out the stale plots."""
from __future__ import annotations

import time

import pytest

from .helpers import console_errors, eventually, open_page, record_console, wait_idle

pytestmark = pytest.mark.browser

X_RANGE_JS = """(prefix) => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title && m.title.text && m.title.text.startsWith(prefix) && m.x_range)
        return [m.x_range.start, m.x_range.end];
  return null;
}"""


def radio(page, text: str):
    return page.locator(".bk-btn-group").get_by_text(text, exact=True).first


def wait_for(page, predicate, timeout: float = 30.0, what: str = "condition"):
    return eventually(predicate, what=what, timeout=timeout)


def test_s1_grid_shows_every_orientation_after_L_grows(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    assert page.evaluate(X_RANGE_JS, "S1 maps")[1] == 8
    radio(page, "12").click()
    wait_for(page, lambda: page.evaluate(X_RANGE_JS, "S1 maps")[1] == 12, what="S1 x range 0..12")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "scattering_L12.png"), full_page=True)
    assert console_errors(messages) == []


def test_invalid_parameters_grey_out_the_plots(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    radio(page, "32").click()
    wait_idle(page)
    handle = page.locator(".bk-input-group", has_text="J (scales").locator(".noUi-handle").first
    handle.focus()
    for _ in range(3):  # J 3 → 6 on a 32×32 image: 2^J > 32
        handle.press("ArrowRight")
        time.sleep(0.3)
    alert = page.locator(".alert-danger", has_text="previous parameters")
    alert.wait_for(timeout=30_000)
    greyed = wait_for(page, lambda: page.evaluate(
        "() => Array.from(document.querySelectorAll('*')).length") and page.locator(
        "[style*='grayscale']").count(), what="greyed plots")
    assert greyed >= 3
    page.screenshot(path=str(screenshots / "scattering_error_greyed.png"), full_page=True)
    handle.press("ArrowLeft")
    handle.press("ArrowLeft")
    alert.wait_for(state="hidden", timeout=30_000)
    assert console_errors(messages) == []
