"""Heavy work in pieces: how long another visitor waits, and how fast a closed tab's work stops.

    python benchmarks/pieces.py [--opens 3]

Starts `panel serve explorer/app.py` on 127.0.0.1 with its output in a log, waits for the server's warm-up,
then in headless Chromium (/usr/bin/chromium):

1. opens the Reconstruction page --opens times in fresh tabs: the time until its first plot ("Target x")
   has drawn, on an idle server (the reference);
2. opens the Invariance page in another tab and moves it to 64×64 and J = 4 (a rotation curve of about
   half a minute on a 2-core machine, computed in pieces by `explorer.analysis.piecework.RUNNER`), then
   opens the Reconstruction page --opens times again while that curve is computed;
3. closes the Invariance tab and times how long until the server's log says the curve was cancelled.

Prints the medians, the ratio busy / idle, the difference against the size of one piece (the rotation curve's
median piece, measured here in-process) and the cancellation delay. Issue 15's figures before the pieces:
the Reconstruction page showed its first plot after 9.4 + 20.9 s instead of 2 s.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM_ARGS, free_port, stop_server, wait_until_answering

CANCELLED = "cancelled ('curve', 'rotation', 'camera', 64, 4, 8)"


def first_plot_seconds(browser, url: str) -> float:
    """Open the Reconstruction page in a fresh tab: seconds until its target image has drawn."""
    context = browser.new_context(viewport={"width": 1500, "height": 1600})
    tab = context.new_page()
    started = time.perf_counter()
    tab.goto(url + "?page=reconstruction", timeout=300_000)
    tab.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && [...Bokeh.documents[0].all_models].some("
        "m => m.title && m.title.text && m.title.text.startsWith('Target x'))", timeout=300_000, polling=20)
    tab.locator("canvas").first.wait_for(timeout=300_000)
    seconds = time.perf_counter() - started
    context.close()
    return seconds


def seconds_per_piece() -> float:
    """The median piece of the 64×64, J = 4 rotation curve as the runner gets it (angles grouped up to
    `invariance.PIECE_S`), in this process."""
    from explorer.analysis.invariance import rotation_error_pieces
    from explorer.data import sources

    pieces = rotation_error_pieces(sources.named_image("camera", 64), 4, 8, degrees=tuple(range(0, 90, 5)))
    next(pieces)  # the first piece also builds the transform and the reference
    times = []
    while True:
        started = time.perf_counter()
        try:
            next(pieces)
        except StopIteration:
            break
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def wait_for_quiet_server(pid: int, seconds: float = 600) -> None:
    """Until the server's CPU use stays under 20 % of a core for 2 s (its warm-up done)."""
    import psutil

    process = psutil.Process(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.cpu_percent(2.0) < 20:
            return
    print("warning: the server never went quiet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opens", type=int, default=3, help="Reconstruction page openings per phase")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="pieces-bench-"))
    log = folder / "server.log"
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--address", "127.0.0.1", "--port",
           str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "EXPLORER_STORE": str(folder / "store")},
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/app"
    try:
        wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 60, "panel serve", log.read_text)
        wait_for_quiet_server(proc.pid)
        piece = seconds_per_piece()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            first_plot_seconds(browser, url)  # the page's own first visit, not measured
            idle = [first_plot_seconds(browser, url) for _ in range(args.opens)]
            context = browser.new_context(viewport={"width": 1500, "height": 1600})
            heavy = context.new_page()
            heavy.goto(url + "?page=invariance", timeout=300_000)
            heavy.locator("canvas").nth(1).wait_for(timeout=300_000)
            heavy.locator(".bk-btn", has_text="64").first.click()
            handle = heavy.locator(".bk-input-group", has_text="J (scales)").locator(".noUi-handle").first
            handle.focus()
            handle.press("End")
            heavy.get_by_text("Computing the rotation curve (64×64, J = 4").first.wait_for(timeout=120_000)
            busy = [first_plot_seconds(browser, url) for _ in range(args.opens)]
            still_running = CANCELLED not in log.read_text() and "Rotation by" not in "".join(
                heavy.evaluate("() => [...Bokeh.documents[0].all_models].filter(m => m.title && m.title.text)"
                               ".map(m => m.title.text)"))
            heavy.close()
            closed = time.perf_counter()
            stopped = None
            while time.perf_counter() - closed < 30:
                if CANCELLED in log.read_text():
                    stopped = time.perf_counter() - closed
                    break
                time.sleep(0.02)
            context.close()
            browser.close()
    finally:
        stop_server(proc)
    idle_median, busy_median = statistics.median(idle), statistics.median(busy)
    print(f"one piece of the 64×64, J = 4 rotation curve (median): {piece:.2f} s")
    print(f"Reconstruction's first plot, idle server:            median {idle_median:.2f} s  "
          f"({', '.join(f'{s:.2f}' for s in idle)})")
    print(f"Reconstruction's first plot, a J = 4 curve computed: median {busy_median:.2f} s  "
          f"({', '.join(f'{s:.2f}' for s in busy)})"
          + ("" if still_running else "  [the curve was no longer running at the end: measure again]"))
    print(f"ratio busy / idle: {busy_median / idle_median:.2f}; delay {busy_median - idle_median:+.2f} s "
          f"= {(busy_median - idle_median) / piece:+.1f} pieces")
    print("closed tab's curve cancelled after: " + (f"{stopped:.2f} s" if stopped is not None else "never (30 s)"))
    pieces_log = [line for line in log.read_text().splitlines() if re.match(r"\[(piecework|sessions)\]", line)]
    print("server log:\n  " + "\n  ".join(pieces_log[-8:]))


if __name__ == "__main__":
    main()
