"""Every page in Chromium against the real server: loads cleanly, its main slider changes its plot."""
from __future__ import annotations

import pytest

from .helpers import (
    console_errors,
    open_page,
    plot_titles,
    record_console,
    wait_for_title,
    wait_for_titles_change,
    wait_idle,
)

pytestmark = pytest.mark.browser


def slider(page, label: str):
    return page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first


def test_home_links_every_page(page, server_url, screenshots):
    from explorer.pages import PAGES

    messages = record_console(page)
    open_page(page, server_url, canvases=0)
    page.get_by_text("An interactive tour").wait_for()
    for spec in PAGES[1:]:
        assert page.locator(f"a[href='?page={spec.slug}']").count() >= 1, spec.slug
    page.screenshot(path=str(screenshots / "home.png"), full_page=True)
    assert console_errors(messages) == []


def test_wavelets_theta_slider_rotates_the_wavelet(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=wavelets", canvases=5)
    before = plot_titles(page)
    assert any("θ=0°" in t for t in before), before
    handle = slider(page, "θ index")
    handle.focus()
    handle.press("ArrowRight")
    after = wait_for_titles_change(page, before)
    assert any("θ=22.5°" in t for t in after), after
    wait_for_title(page, "Re ψ · Im ψ · |ψ|, j=0, θ=22.5°")
    wait_for_title(page, "|ψ̂| in Fourier, j=0, θ=22.5°")
    # The slider writes the angle too, not only the index.
    assert "θ index (0–7): 1 (22.5°)" in page.locator(".bk-input-group", has_text="θ index").first.inner_text()
    page.locator("mjx-container").first.wait_for(timeout=15_000)  # the $$…$$ of intro and captions typeset
    assert page.get_by_text("$$").count() == 0
    wait_idle(page)
    page.screenshot(path=str(screenshots / "wavelets.png"), full_page=True)
    assert console_errors(messages) == []


def test_scattering_theta_slider_changes_the_path(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    before = plot_titles(page)
    assert any("S2 children of j1=0, θ1=0°" in t for t in before), before
    handle = slider(page, "θ1 index")
    handle.focus()
    handle.press("ArrowRight")
    after = wait_for_titles_change(page, before)
    deadline = __import__("time").time() + 10
    while not any("S2 children of j1=0, θ1=22.5°" in t for t in after) and __import__("time").time() < deadline:
        after = plot_titles(page)
    assert any("S2 children of j1=0, θ1=22.5°" in t for t in after), after
    wait_for_title(page, "|x ⋆ ψ|, j1=0, θ1=22.5°")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "scattering.png"), full_page=True)
    # The other tabs are drawn when opened, for the path selected meanwhile.
    page.locator(".bk-tab", has_text="Scattering disk").first.click()
    wait_for_title(page, "S2 disk of j1=0, θ1=22.5°")
    handle.focus()
    handle.press("ArrowRight")
    wait_for_title(page, "S2 disk of j1=0, θ1=45°")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "scattering_disk.png"), full_page=True)
    page.locator(".bk-tab", has_text="Energy").first.click()
    wait_for_title(page, "Energy per order")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "scattering_energy.png"), full_page=True)
    assert console_errors(messages) == []


def _png(mode: str, size=(40, 50)) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    if mode == "RGBA":
        arr = (rng.random((size[1], size[0], 4)) * 255).astype("uint8")
    else:
        arr = (rng.random((size[1], size[0])) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_is_shown_and_bad_upload_explained(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    page.locator("select").first.select_option("uploaded file")
    file_input = page.locator("input[type=file]")
    file_input.wait_for(state="attached")
    file_input.set_input_files(files=[{"name": "tiny.png", "mimeType": "image/png", "buffer": _png("RGBA")}])
    page.get_by_text("centre square resized to 64×64").wait_for(timeout=15_000)
    page.get_by_text("transparency flattened").wait_for(timeout=5_000)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "scattering_upload.png"))
    good = _png("L")
    file_input.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    page.get_by_text("Cannot use this image").wait_for(timeout=15_000)
    assert page.get_by_text("is not an image").count() >= 1
    file_input.set_input_files(files=[{"name": "cut.png", "mimeType": "image/png", "buffer": good[: len(good) // 2]}])
    page.get_by_text("corrupt or truncated").wait_for(timeout=15_000)
    page.screenshot(path=str(screenshots / "scattering_bad_upload.png"))
    assert console_errors(messages) == []


# Each plot's title, how wide it draws, and the room it has: from the title's left end (the frame's left edge,
# Bokeh's default alignment) to the canvas's right edge.
TITLE_ROOM_JS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!(m.type === 'Figure' || (m.constructor && m.constructor.name === 'Figure')) || !m.title || !m.title.text) continue;
    for (const v of Bokeh.index.find(m)) {
      if (!v.frame || v.bbox.width === 0) continue;  // a plot of a hidden tab
      const t = m.title;
      ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
      out.push([t.text, ctx.measureText(t.text).width, v.bbox.width - v.frame.bbox.left]);
    }
  }
  return out;
}"""


def cut_titles(page) -> list:
    """Titles wider than the room their plot gives them (the canvas cuts them off)."""
    rooms = page.evaluate(TITLE_ROOM_JS)
    assert rooms, "no plot drawn"
    return [(title, round(width), round(room)) for title, width, room in rooms if width > room]


def drawn_texts(page) -> list[str]:
    """Texts drawn inside plots (hv.Text, hv.Labels), read from the Bokeh data sources."""
    return page.evaluate("""() => {
      const out = [];
      for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.data && m.data.text) out.push(...Array.from(m.data.text, String));
      return out;
    }""")


def wait_shown(page, prefix: str, timeout: float = 60.0) -> None:
    """Wait until a plot titled `prefix`… is laid out on screen (a hidden tab's plots keep their models)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(title.startswith(prefix) for title, _, _ in page.evaluate(TITLE_ROOM_JS)):
            page.wait_for_timeout(300)  # and painted
            return
        time.sleep(0.1)
    raise AssertionError(f"no plot titled {prefix!r} shown")


def _click_option(page, text: str) -> None:
    """A radio-group button by its exact text."""
    import re

    page.locator(".bk-btn-group .bk-btn").filter(has_text=re.compile(f"^{re.escape(text)}$")).first.click()


@pytest.mark.slow
def test_scattering_at_its_extremes_reads_right(page, server_url, screenshots):
    """Formulas render, the θ1 slider writes its angle and follows L, titles fit their plots, and the coarsest
    j1 says why it has no order-2 children, at the smallest and largest settings."""
    import time

    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    page.locator("mjx-container").first.wait_for(timeout=15_000)  # MathJax typeset the $$…$$ of the intro
    assert page.get_by_text("$$").count() == 0
    theta = page.locator(".bk-input-group", has_text="θ1 index").first
    handle = theta.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    wait_for_title(page, "S2 children of j1=0, θ1=45°")
    assert "θ1 index (0–7): 2 (45°)" in theta.inner_text()

    def check_tabs(name: str) -> None:
        for i, (tab, title) in enumerate([("Paths", "S2 children of"), ("Scattering disk", "S2 disk of"),
                                          ("Energy", "Energy per path")]):
            page.locator(".bk-tab", has_text=tab).first.click()
            wait_shown(page, title)
            wait_idle(page, 120_000)
            page.screenshot(path=str(screenshots / f"scattering_{name}_{i}.png"), full_page=True)
            assert cut_titles(page) == [], (name, tab)
        page.locator(".bk-tab", has_text="Paths").first.click()

    # The coarsest j1 and the widest angle label (157.5°): the longest titles.
    j1 = slider(page, "j1 (scale")
    j1.focus()
    for _ in range(2):
        j1.press("ArrowRight")
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    wait_for_title(page, "S2 children of j1=2, θ1=157.5°")
    page.wait_for_timeout(300)
    assert any("coarsest scale: no order-2 children" in t for t in drawn_texts(page)), drawn_texts(page)
    check_tabs("coarsest")
    assert any("coarsest scale:" in t for t in drawn_texts(page))  # the S2 disk too

    _click_option(page, "12")  # L = 12: index 7 is now 105°, and the slider says so
    wait_for_title(page, "S2 children of j1=2, θ1=105°")
    deadline = time.time() + 10
    while "θ1 index (0–11): 7 (105°)" not in theta.inner_text() and time.time() < deadline:
        time.sleep(0.05)
    assert "θ1 index (0–11): 7 (105°)" in theta.inner_text()

    _click_option(page, "128")
    wait_for_title(page, "Input image (128×128)", timeout=60)
    J = slider(page, "J (scales")
    J.focus()
    for _ in range(3):
        J.press("ArrowRight")  # J = 6, the largest
    wait_for_title(page, "S0 = x ⋆ φ, J=6 (2×2)", timeout=120)
    check_tabs("128_J6_L12")

    _click_option(page, "32")
    J.focus()
    J.press("Home")  # J = 1
    wait_for_title(page, "S0 = x ⋆ φ, J=1 (16×16)", timeout=60)
    check_tabs("32_J1_L12")
    assert not page.locator(".alert-danger").first.is_visible()
    assert console_errors(messages) == []


def _text_of(page, label: str) -> str:
    return page.locator(".bk-input-group", has_text=label).first.inner_text()


def _wait_text(page, label: str, expected: str, timeout: float = 15.0) -> None:
    """Wait until the widget titled `label` shows `expected` (its title and value)."""
    import time

    deadline = time.time() + timeout
    while expected not in _text_of(page, label) and time.time() < deadline:
        time.sleep(0.05)
    assert expected in _text_of(page, label)


@pytest.mark.slow
def test_wavelets_at_its_extremes_reads_right(page, server_url, screenshots):
    """At J = 6, L = 16, j = 5 and at J = 1, L = 2: the θ slider writes index and degrees for the current L,
    titles fit their plots, and a bank with max A(ω) > 1 is said to possibly expand distances (hidden when
    max A = 1)."""
    messages = record_console(page)
    open_page(page, server_url + "?page=wavelets", canvases=5)
    warning = page.get_by_text("is no longer guaranteed")  # the warning (at J = 3, max A = 1.014: a note)
    # Each move waits for the previous one: j's and θ's sliders get their new ends from the server.
    for label, presses, title in (("J (scales)", 3, "Low-pass φ_J, J=6"), ("L (angles)", 8, "All 6×16 wavelets"),
                                  ("scale shown", 5, "Re ψ · Im ψ · |ψ|, j=5, θ=0°"),
                                  ("θ index", 2, "Re ψ · Im ψ · |ψ|, j=5, θ=22.5°")):
        handle = slider(page, label)
        handle.focus()
        for _ in range(presses):
            handle.press("ArrowRight")
        wait_for_title(page, title, timeout=120)
    _wait_text(page, "θ index", "θ index (0–15): 2 (22.5°)")
    warning.first.wait_for(timeout=15_000)  # max A ≈ 2.05 with the slant 0.5 at L = 16
    assert page.get_by_text("differs from Kymatio").first.is_visible()  # and what the usual slant gives
    wait_idle(page, 120_000)
    page.screenshot(path=str(screenshots / "wavelets_J6_L16.png"), full_page=True)
    assert cut_titles(page) == []
    for label in ("J (scales)", "L (angles)"):
        handle = slider(page, label)
        handle.focus()
        handle.press("Home")
    wait_for_title(page, "All 1×2 wavelets", timeout=60)
    _wait_text(page, "θ index", "θ index (0–1): 1 (90°)")
    page.get_by_text("may expand distances").first.wait_for(state="hidden", timeout=15_000)  # max A = 1.000
    wait_idle(page, 120_000)
    page.screenshot(path=str(screenshots / "wavelets_J1_L2.png"), full_page=True)
    assert cut_titles(page) == []
    assert console_errors(messages) == []


def test_invariance_rotation_slider_moves_the_marker(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=invariance", canvases=2)
    before = plot_titles(page)
    assert any(t.startswith("Rotation by 0°") for t in before), before
    handle = slider(page, "Rotation angle")
    handle.focus()
    handle.press("ArrowRight")
    after = wait_for_titles_change(page, before)
    deadline = __import__("time").time() + 10
    while not any(t.startswith("Rotation by 5°") for t in after) and __import__("time").time() < deadline:
        after = plot_titles(page)
    assert any(t.startswith("Rotation by 5°") for t in after), after
    wait_for_title(page, "Rotated by 5°")
    page.screenshot(path=str(screenshots / "invariance_rotation.png"), full_page=True)
    page.locator(".bk-tab", has_text="Deformation").first.click()  # each property in its tab
    handle = slider(page, "Deformation size")
    handle.focus()
    handle.press("ArrowRight")
    wait_for_title(page, "Deformation s = 0.025")
    _wait_text(page, "Deformation size", "Deformation size s: 0.025")  # not rounded to 0.03
    for label in ("Image size (pixels)", "L (angles)"):  # the radio groups say what they set
        assert page.get_by_text(label, exact=True).first.is_visible(), label
    wait_idle(page)
    page.screenshot(path=str(screenshots / "invariance_deformation.png"), full_page=True)
    # The histogram is computed in a background thread after the page is built (about a second).
    page.locator(".bk-tab", has_text="Non-expansiveness").first.click()
    wait_for_title(page, "Lipschitz ratios over", timeout=120)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "invariance.png"), full_page=True)
    assert cut_titles(page) == []
    assert console_errors(messages) == []


def test_reconstruction_button_shows_progress(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=reconstruction", canvases=3)
    wait_for_title(page, "Start x̂₀: noise")  # the start shown is the noise the descent starts from
    slider(page, "Evaluations").focus()
    for _ in range(8):
        slider(page, "Evaluations").press("ArrowLeft")  # fewer evaluations: quicker test
    page.get_by_role("button", name="Reconstruct").click()
    title = wait_for_title(page, "order ≤ 2, J=4, done", timeout=60)
    assert "pixel error" in title
    wait_idle(page)
    page.screenshot(path=str(screenshots / "reconstruction.png"))
    assert console_errors(messages) == []


def test_no_server_errors_on_every_page(page, server_url):
    """Every registered page loads with no console error (the per-page tests above cover the sliders)."""
    from explorer.pages import PAGES

    for spec in PAGES:
        messages = record_console(page)
        open_page(page, f"{server_url}?page={spec.slug}", canvases=0 if spec.slug == "home" else 1)
        assert page.locator(".alert-danger").count() == 0 or not page.locator(".alert-danger").first.is_visible()
        assert console_errors(messages) == [], spec.slug


def test_a_long_job_does_not_block_other_sessions(page, context, server_url):
    """One visitor runs a long reconstruction; another visitor's slider still answers meanwhile."""
    page.set_default_timeout(60_000)
    open_page(page, server_url + "?page=reconstruction", canvases=3)
    page.get_by_role("button", name="64").first.click()
    slider(page, "Evaluations").focus()
    slider(page, "Evaluations").press("End")  # 500 evaluations at 64×64: tens of seconds here
    page.get_by_role("button", name="Reconstruct").click()
    wait_for_title(page, "order ≤ 2, J=4: ", timeout=60)  # running, progress shown

    other = context.browser.new_context(viewport={"width": 1500, "height": 2200}).new_page()
    open_page(other, server_url + "?page=wavelets", canvases=5)
    handle = slider(other, "θ index")
    handle.focus()
    handle.press("ArrowRight")
    wait_for_title(other, "Re ψ · Im ψ · |ψ|, j=0, θ=22.5°", timeout=10)
    still_running = [t for t in plot_titles(page) if t.startswith("order ≤ 2, J=4")]
    assert still_running and "done" not in still_running[0], still_running  # it was concurrent
    page.get_by_role("button", name="Stop").click()
    wait_for_title(page, "order ≤ 2, J=4, stopped", timeout=60)


def _field(page, title: str, tag: str = "input"):
    """The input (or select) of the sidebar widget whose title starts with `title`."""
    return page.locator(".bk-input-group", has_text=title).locator(tag).first


@pytest.fixture
def server_without_dataset(tmp_path):
    """The app as a newcomer first runs it: no CIFAR-10 configured (even where CI configures one), an empty store."""
    from .conftest import served

    with served(tmp_path / "store", dataset=False) as url:
        yield url


def test_runs_page_trains_a_job_live_and_finds_it_after_a_reload(page, server_without_dataset, screenshots):
    """A newcomer without CIFAR-10 presses Start with the form as it comes: a synthetic job trains, its run
    is selected and its curves fill in; the job is still there after a reload."""
    from explorer.runs.store import SHIPPED_ROOT

    server_url = server_without_dataset
    messages = record_console(page)
    open_page(page, server_url + "?page=runs", canvases=2)
    shipped = sorted(p.name for p in SHIPPED_ROOT.iterdir() if p.is_dir())
    for run_id in shipped:
        page.get_by_text(run_id).first.wait_for(timeout=15_000)
    wait_for_title(page, "Accuracy of", timeout=90)
    dataset = _field(page, "Dataset", "select")
    assert dataset.locator("option").all_inner_texts() == ["synthetic"]
    assert page.get_by_text("Only the synthetic set").first.is_visible()  # said before any click
    assert not _field(page, "Encoder widths").is_visible()  # an SLE field, hidden for the CNN13
    page.screenshot(path=str(screenshots / "runs_form.png"), full_page=True)
    page.get_by_role("button", name="Start training").click()
    try:
        page.get_by_text("explorer train cnn13 --dataset synthetic --epochs 2 --seed 0").first.wait_for(
            timeout=60_000)
    except Exception as exc:  # say what the page shows instead
        alert = page.locator(".alert-danger")
        shown = alert.first.inner_text() if alert.count() and alert.first.is_visible() else "no alert"
        raise AssertionError(f"the default job did not start: {shown}") from exc
    try:  # seconds alone; minutes when the other test worker trains too
        page.get_by_text("finished, epoch 2/2, 100 %").wait_for(timeout=300_000)
    except Exception as exc:  # say where the job stood, not only that it timed out
        status = page.get_by_text("Job 20").first.inner_text() if page.get_by_text("Job 20").count() else "no job"
        raise AssertionError(f"the job did not finish: {status}") from exc
    run_id = page.locator("code", has_text="cnn13-").first.inner_text()
    title = wait_for_title(page, f"Accuracy of {run_id} (test", timeout=30)  # its run selected, curves drawn
    assert title.endswith("after 2)"), title
    wait_idle(page)
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)
    # The job lives on disk, not in the session: a reload finds it, with its new run.
    page.reload()
    page.get_by_text("finished, epoch 2/2, 100 %").wait_for(timeout=120_000)
    row = page.locator(".tabulator-row", has_text=run_id).first
    row.wait_for(timeout=30_000)
    assert "yours" in row.inner_text() and "2/2" in row.inner_text()
    assert console_errors(messages) == []
