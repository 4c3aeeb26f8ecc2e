"""Work for a tab that closed stops: the served app, a real Chromium, the server's own log."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, free_port, stop_server, wait_until_answering
from .helpers import console_errors, open_page, record_console, wait_for_title

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory):
    """`panel serve explorer/app.py` on loopback whose output goes to a file the test reads."""
    folder = tmp_path_factory.mktemp("cancel")
    log = folder / "server.log"
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "EXPLORER_STORE": str(folder / "store")},
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 60, "panel serve", log.read_text)
    try:
        yield f"http://127.0.0.1:{port}/app", log
    finally:
        stop_server(proc)


def wait_for_log(log, pattern: str, seconds: float) -> float | None:
    """Seconds until `pattern` (a regular expression) appears in the log, None if it does not."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if re.search(pattern, log.read_text()):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def start_a_long_curve(tab, url: str) -> None:
    """Open the Invariance page at 64×64 and J = 4: a rotation curve of tens of seconds on a 2-core machine."""
    open_page(tab, url + "?page=invariance", canvases=2)
    tab.locator(".bk-btn", has_text="64").first.click()
    handle = tab.locator(".bk-input-group", has_text="J (scales)").locator(".noUi-handle").first
    handle.focus()
    handle.press("End")
    wait_for_title(tab, "Computing the rotation curve", timeout=60)


def test_closing_the_tab_stops_its_invariance_curves(browser, logged_server, screenshots):
    url, log = logged_server
    context = browser.new_context(viewport={"width": 1500, "height": 1600})
    tab = context.new_page()
    messages = record_console(tab)
    start_a_long_curve(tab, url)
    tab.get_by_text("Computing the rotation curve (64×64, J = 4").first.wait_for(timeout=30_000)
    tab.screenshot(path=str(screenshots / "invariance_computing.png"), full_page=True)
    assert console_errors(messages) == []
    assert "cancelled ('curve', 'rotation', 'camera', 64, 4" not in log.read_text()
    tab.close()
    waited = wait_for_log(log, r"cancelled \('curve', 'rotation', 'camera', 64, 4, 8\)", 10)
    context.close()
    # Noticed by the closed-session watcher (two checks 0.5 s apart) and stopped at the next piece.
    assert waited is not None, log.read_text()[-3000:]
    assert waited < 5, waited


def test_another_visitor_is_served_while_a_curve_is_computed(browser, logged_server):
    url, log = logged_server
    cancelled = "cancelled ('curve', 'rotation', 'camera', 64, 4, 8)"
    before = log.read_text().count(cancelled)
    first = browser.new_context(viewport={"width": 1500, "height": 1600})
    busy = first.new_page()
    start_a_long_curve(busy, url)
    second = browser.new_context(viewport={"width": 1500, "height": 1600})
    visitor = second.new_page()
    messages = record_console(visitor)
    open_page(visitor, url + "?page=reconstruction", canvases=3)
    wait_for_title(visitor, "Target x")
    assert console_errors(messages) == []
    # The first tab's curve was still being computed meanwhile, piece by piece, and goes on.
    assert log.read_text().count(cancelled) == before
    done = busy.locator("text=/Computing the rotation curve \\(64×64, J = 4, L = 8\\): [1-9][0-9]* %/")
    done.first.wait_for(timeout=120_000)
    second.close()
    first.close()
