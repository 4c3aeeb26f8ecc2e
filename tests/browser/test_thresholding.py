"""In Chromium: the thresholding page shows its figures at once, fills in the live re-evaluation after, follows
the kept-fraction slider to both ends (the live point moves with it) and the mode selector, and logs no
console error."""
from __future__ import annotations

import math

import pytest

from .helpers import console_errors, eventually, open_page, plot_titles, record_console, wait_idle

pytestmark = pytest.mark.browser

# The accuracy plot's points {kind: [f, accuracy]} (the renderers with a th_kind column), from Bokeh's models.
POINTS_JS = """() => {
  const out = {};
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models) {
      const data = m.data;
      if (data && data.th_kind !== undefined && data.th_kind.length === 1)
        out[data.th_kind[0]] = [data.th_keep[0], data.th_accuracy[0]];
    }
  return out;
}"""


def control(page, label: str):
    return page.locator(".bk-input-group", has_text=label)


def wait_for(page, what: str, check, timeout: float = 120.0):
    """Poll `check()` until it returns something truthy; fail naming `what`."""
    return eventually(check, what=what, timeout=timeout, every=0.2, page=page)


def titles_with(page, text: str) -> list[str]:
    return [t for t in plot_titles(page) if text in t]


def live_point(page):
    """The drawn live point, None when there is none (the layer keeps its length with NaN when hidden)."""
    point = (page.evaluate(POINTS_JS) or {}).get("now, live")
    finite = point is not None and all(isinstance(v, (int, float)) and math.isfinite(v) for v in point)
    return point if finite else None


def current_point(page, setting: str):
    """The live point, or the current setting's accuracy as the curve's title gives it ("now: <setting> →
    a %"): a live result on another test set than the sweep's (the 300 shipped images beside the shipped
    10,000-image sweep) is not drawn."""
    live = live_point(page)
    if live is not None:
        return live
    for title in titles_with(page, f"now: {setting} → "):
        value = title.split(f"now: {setting} → ")[1].split(" %")[0]
        try:
            return [None, float(value) / 100]
        except ValueError:
            return None
    return None


def test_slider_to_both_ends_and_the_modes(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=thresholding", canvases=4)
    titles = plot_titles(page)
    assert len(titles) == 4 and all("W₁" in t for t in titles), titles
    assert len(titles_with(page, "Fourier, global, f = 0.20")) == 3
    # Live: without stored test features (with or without the dataset), the 300 shipped images, said in the
    # note (naming the command that stores the features) and beside the figure.
    wait_for(page, "the live result", lambda: page.get_by_text("300 CIFAR-10 test images shipped").count() >= 1)
    wait_for(page, "the note naming the fix", lambda: page.get_by_text("explorer scatter", exact=False).count() >= 1)
    assert wait_for(page, "the point at f = 0.2", lambda: (p := current_point(page, "Fourier, global, f = 0.20")) and p[0] in (0.2, None) and p)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "thresholding_default.png"), full_page=True)

    keep = control(page, "Kept fraction f").locator(".noUi-handle").first
    keep.focus()
    keep.press("Home")  # f = 0: every angular coefficient zeroed, order 0 alone
    wait_for(page, "titles at f = 0", lambda: len(titles_with(page, "Fourier, global, f = 0.00")) == 3)
    wait_idle(page)
    at_zero = live_point(page)  # below the sweep's smallest fraction only a live point on its test set shows
    wait_idle(page)
    page.screenshot(path=str(screenshots / "thresholding_f0.png"), full_page=True)

    keep.press("End")  # f = 1: W₁ as learned
    wait_for(page, "titles at f = 1", lambda: len(titles_with(page, "Fourier, global, f = 1.00")) == 3)
    at_one = wait_for(page, "the point at f = 1", lambda: (p := current_point(page, "Fourier, global, f = 1.00")) and p[0] in (1.0, None) and p)
    if at_zero is not None:
        assert at_one[1] > at_zero[1]  # keeping everything beats keeping nothing
    assert any("keeps 100.0% of the energy" in t for t in plot_titles(page))
    wait_idle(page)
    page.screenshot(path=str(screenshots / "thresholding_f1.png"), full_page=True)

    keep.press("Home")
    for _ in range(5):
        keep.press("ArrowRight")  # f = 0.05
    mode = control(page, "Thresholding").locator("select")
    mode.select_option(label="θ domain, per unit")
    wait_for(page, "θ-domain titles", lambda: len(titles_with(page, "θ domain, per unit, f = 0.05")) == 3)
    wait_for(page, "the θ-domain point",
             lambda: (p := current_point(page, "θ domain, per unit, f = 0.05")) and p[0] in (0.05, None) and p)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "thresholding_theta_f005.png"), full_page=True)

    mode.select_option(label="Band limit |ω| ≤ B")
    wait_for(page, "band titles", lambda: len(titles_with(page, "band |ω| ≤ 1")) == 3)
    wait_idle(page)
    band = live_point(page)  # drawn when the live result is on the sweep's test set
    if band is not None:
        assert band[0] == pytest.approx(3 / 8, abs=0.01)  # |ω| ≤ 1 keeps 3 of L = 8 frequencies of order 1
    wait_idle(page)
    page.screenshot(path=str(screenshots / "thresholding_band1.png"), full_page=True)
    errors = console_errors(messages)
    assert errors == [], sorted(set(errors))
