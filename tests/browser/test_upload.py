"""Uploading on the Scattering page in Chromium: a file over the size limit is refused in the browser, with a
message naming the limit, and the session keeps working."""
from __future__ import annotations

import time

import pytest

from explorer.data.images import MAX_UPLOAD_MB

from .helpers import console_errors, open_page, plot_titles, record_console, wait_for_title, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _big_png(megabytes: int) -> bytes:
    """A PNG signature followed by `megabytes` MB of filler: what matters is the size the browser sees."""
    return b"\x89PNG\r\n\x1a\n" + bytes(megabytes * 1_000_000)


def test_oversized_upload_is_refused_with_the_limit_and_the_session_lives(page, server_url, screenshots):
    messages = record_console(page)
    open_page(page, server_url + "?page=scattering", canvases=6)
    page.locator("select").first.select_option("uploaded file")
    page.get_by_text(f"PNG or JPEG up to {MAX_UPLOAD_MB} MB").first.wait_for(timeout=15_000)
    file_input = page.locator("input[type=file]")
    file_input.wait_for(state="attached")
    file_input.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _big_png(36)}])
    refusal = page.get_by_text(f"Maximum file size is {MAX_UPLOAD_MB} MB", exact=True)  # FilePond's words
    refusal.wait_for(timeout=15_000)
    assert refusal.is_visible()
    page.screenshot(path=str(screenshots / "scattering_upload_too_large.png"))

    # Still connected: a slider move reaches the server and comes back as new plot titles.
    before = plot_titles(page)
    handle = page.locator(".bk-input-group", has_text="θ1 index").locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    wait_for_title(page, "S2 children of j1=0, θ1=22.5°")
    assert plot_titles(page) != before
    wait_idle(page)
    time.sleep(0.5)  # a closing websocket logs its error a moment later
    errors = console_errors(messages)
    assert not [e for e in errors if "websocket" in e.lower() or "not connected" in e.lower()], errors
    assert errors == []
