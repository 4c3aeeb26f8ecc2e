"""In Chromium: the rotation page fills its plots after it shows, follows the rotation slider to both ends and a
change of unit, and logs no console error."""
from __future__ import annotations

import pytest

from .helpers import (
    console_errors,
    eventually,
    open_page,
    plot_titles,
    record_console,
    wait_for_title,
    wait_for_titles,
    wait_idle,
)

pytestmark = pytest.mark.browser

# The scatter's points (the renderer with an image column) as [before, after], read from Bokeh's models.
SCATTER_JS = """() => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models) {
      const data = m.data;
      if (data && data.rot_image !== undefined && data.rot_before !== undefined && data.rot_before.length > 1)
        return [Array.from(data.rot_before), Array.from(data.rot_after)];
    }
  return null;
}"""


def slider(page, label: str):
    return page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first


def wait_for_points(page, predicate, timeout: float = 90.0):
    return eventually(lambda: page.evaluate(SCATTER_JS), lambda points: points and predicate(*points),
                      what="the scatter's expected points", timeout=timeout, every=0.2)


def test_rotation_slider_to_both_ends_and_a_change_of_unit(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=rotation", canvases=4)
    # The page shows at once; the responses arrive after (computed in a thread).
    title = wait_for_title(page, "Unit ", timeout=90)
    assert "90° (m = 4)" in title, title
    before_90, after_90 = wait_for_points(page, lambda b, a: len(b) == 100)
    assert before_90 != after_90
    wait_idle(page)
    page.screenshot(path=str(screenshots / "rotation_90.png"), full_page=True)

    rotation = slider(page, "Rotation m")
    rotation.focus()
    rotation.press("Home")  # m = 0: no rotation, every point on the line
    before_0, _ = wait_for_points(page, lambda b, a: b == a)
    assert page.get_by_text("no rotation").count() >= 1
    wait_idle(page)
    page.screenshot(path=str(screenshots / "rotation_m0.png"), full_page=True)

    rotation.press("End")  # m = 2L − 1 = 15: 337.5°, interpolated
    wait_for_titles(page, lambda titles: any("337.5° (m = 15)" in t for t in titles), timeout=90)
    _, after_15 = wait_for_points(page, lambda b, a: b != a)
    assert after_15 != after_90
    assert page.get_by_text("interpolated").count() >= 1
    wait_idle(page)
    page.screenshot(path=str(screenshots / "rotation_m15.png"), full_page=True)

    unit_before = next(t for t in plot_titles(page) if t.startswith("Unit ")).split(":")[0]
    rank = slider(page, "Rank by spectral score")
    rank.focus()
    rank.press("End")  # the least invariant unit by its weights
    eventually(lambda: next(t for t in plot_titles(page) if t.startswith("Unit ")).split(":")[0],
               lambda unit: unit != unit_before, what="another unit", every=0.2)
    wait_for_points(page, lambda b, a: b != before_0)  # another unit's responses
    wait_idle(page)
    page.screenshot(path=str(screenshots / "rotation_m15_last_rank.png"), full_page=True)
    assert console_errors(messages) == []
