"""In Chromium: the roto-translation page at its defaults, every tab drawn, its sliders moved to their ends,
L = 16 with K at its maximum, the smallest image with J too large then at its maximum, angular scales beyond
what L allows; errors are said in the page and the session keeps working; no console error."""
from __future__ import annotations

import time

import pytest

from .helpers import (
    console_errors,
    eventually,
    open_page,
    record_console,
    rendered_canvases,
    wait_for_title,
    wait_for_titles,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def slider(page, label: str):
    return page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first


def radio(page, group: int, text: str):
    """A button of a radio group in the sidebar: group 0 is the image size, 1 is L (both offer "16")."""
    return page.locator(".bk-btn-group").nth(group).get_by_text(text, exact=True).first


def tab(page, name: str):
    page.locator(".bk-tab", has_text=name).first.click()


def error_alert(page):
    return page.locator(".alert-danger", has_text="previous parameters")


def no_error(page) -> None:
    assert error_alert(page).count() == 0 or not error_alert(page).first.is_visible()


SCALES_JS = """() => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.data && m.data.sc_y1 !== undefined) return Array.from(m.data.sc_y1);
  return null;
}"""


def wait_for_scales(page, K: int, timeout: float = 60.0) -> None:
    """Until the energy-per-scale bars (of the image) show the low-pass and K angular scales."""
    eventually(lambda: page.evaluate(SCALES_JS), lambda scales: len(scales) == 1 + K,
               what=f"the scale bars to show 1 + {K} scales", timeout=timeout, every=0.2)


def test_roto_page_tabs_extremes_and_errors(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=roto", canvases=2)
    wait_for_title(page, "Re h along θ1 (L = 8, K = 2)", timeout=60)
    wait_for_title(page, "Angular filters in Fourier (L = 8, K = 2)")
    page.locator("mjx-container").first.wait_for(timeout=15_000)  # formulas typeset
    assert page.get_by_text("$$").count() == 0
    wait_idle(page)
    assert rendered_canvases(page) >= 4
    page.screenshot(path=str(screenshots / "roto_wavelets.png"), full_page=True)

    tab(page, "Angular spectrum")
    wait_for_title(page, "Angular spectrum E(θ2, ω) of z\n(j1, j2) = (0, 1), θ2 = 0° framed", timeout=60)
    wait_for_title(page, "z along θ1 at θ2 = 0°")
    handle = slider(page, "θ2 index")
    handle.focus()
    handle.press("End")  # θ2 = 7: 157.5°
    wait_for_titles(page, lambda ts: any("θ2 = 157.5° framed" in t for t in ts)
                    and any(t.startswith("Energy per angular filter\nθ2 = 157.5°") for t in ts), 60, "θ2 = 157.5°")
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "roto_spectrum.png"), full_page=True)

    tab(page, "Rotation")
    wait_for_title(page, "z moves along θ1, (j1, j2) = (0, 1)\nrotated by 90° (exact)", timeout=60)
    wait_for_title(page, "|ẑ(ω)| stays, (j1, j2) = (0, 1)\nrotated by 90° (exact)")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "roto_rotation_90.png"), full_page=True)
    angle = slider(page, "Rotation angle")
    angle.focus()
    angle.press("Home")
    wait_for_title(page, "z moves along θ1, (j1, j2) = (0, 1)\nrotated by 0° (exact): change 0 %")
    angle.press("ArrowRight")  # 7.5°: interpolated
    wait_for_title(page, "z moves along θ1, (j1, j2) = (0, 1)\nrotated by 7.5° (interpolated)")
    angle.press("End")
    wait_for_title(page, "|ẑ(ω)| stays, (j1, j2) = (0, 1)\nrotated by 360° (exact)")
    for _ in range(6):  # 315°
        angle.press("ArrowLeft")
        time.sleep(0.15)
    wait_for_title(page, "Energy per angular scale, (j1, j2) = (0, 1)\nrotated by 315° (interpolated)", timeout=30)
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "roto_rotation_315.png"), full_page=True)

    # L = 16 with K at its maximum (4): no error, every plot drawn for the new bank.
    radio(page, 1, "16").click()
    wait_for_title(page, "Energy per angular scale, (j1, j2) = (0, 1)\nrotated by 315°", timeout=30)
    k = slider(page, "K (angular scales")
    k.focus()
    k.press("End")
    wait_for_scales(page, 4, timeout=120)  # L = 16, K = 4 builds a new engine: seconds
    wait_idle(page, 120_000)
    no_error(page)
    page.screenshot(path=str(screenshots / "roto_rotation_L16_K4.png"), full_page=True)
    tab(page, "Angular wavelets")
    wait_for_title(page, "Re h along θ1 (L = 16, K = 4)", timeout=30)
    wait_for_title(page, "Angular filters in Fourier (L = 16, K = 4)")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "roto_wavelets_L16_K4.png"), full_page=True)

    # K beyond what L allows: L = 4 keeps K = 4, which needs L ≥ 16.
    radio(page, 1, "4").click()
    alert = page.locator(".alert-danger", has_text="angular_scales ≤ 2")
    alert.wait_for(timeout=30_000)
    assert page.locator("[style*='grayscale']").count() >= 2
    page.screenshot(path=str(screenshots / "roto_error_K.png"), full_page=True)
    k.press("Home")  # K = 1: valid again
    alert.wait_for(state="hidden", timeout=30_000)
    wait_for_title(page, "Re h along θ1 (L = 4, K = 1)", timeout=30)

    # The smallest image with J too large for it, then J at its maximum (4 for 16×16).
    tab(page, "Angular spectrum")
    radio(page, 0, "16").click()
    j = slider(page, "J (scales")
    j.focus()
    j.press("End")  # J = 6 > log2(16)
    too_big = page.locator(".alert-danger", has_text="smaller than 2^J = 64")
    too_big.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "roto_error_J.png"), full_page=True)
    j.press("ArrowLeft")
    j.press("ArrowLeft")  # J = 4
    too_big.wait_for(state="hidden", timeout=30_000)
    page.locator(".bk-input-group", has_text="Scale pair").locator("select").select_option(label="j1 = 2, j2 = 3")
    wait_for_title(page, "Angular spectrum E(θ2, ω) of z\n(j1, j2) = (2, 3)", timeout=60)
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "roto_spectrum_16px_J4.png"), full_page=True)
    tab(page, "Rotation")
    wait_for_title(page, "z moves along θ1, (j1, j2) = (2, 3)\nrotated by 315° (interpolated)", timeout=30)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "roto_rotation_16px_J4.png"), full_page=True)

    # Stored classification results: none in the test store, and the page says which command makes them.
    tab(page, "Classification")
    page.get_by_text("explorer classify svm").first.wait_for(timeout=30_000)
    wait_for_title(page, "Stored classification results")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "roto_classification.png"), full_page=True)
    assert console_errors(messages) == []
