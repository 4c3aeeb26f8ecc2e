"""Slider latency of the explorer app, measured in a real browser.

    python benchmarks/app_latency.py [--presses 20] [--size 128]

Starts `panel serve explorer/app.py` on 127.0.0.1, opens each page in headless Chromium (/usr/bin/chromium),
and presses ArrowRight on the page's main slider N times, waiting for the page to settle between presses.
Latency = browser time from the key press to the first animation frame in which EVERY plot that slider
drives shows its new title (read from Bokeh's models), i.e. the whole page has re-rendered. The Scattering
page shows one tab at a time: "scattering" measures its first tab (paths), "scat-disk" its disk tab.
Prints the time to first render of each page and the median / p90 / max latency per page.

First render on a warm server (issue 10's target: the first plot visible within 2 s of opening any page):
every page is opened once to warm the server's caches, then each page is opened --opens times in a fresh tab;
"shell" is the time until the page's text shows, "first plot" until the first plot has drawn its canvas,
"all plots" until every plot of the shown tab has (no loading spinner left).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM_ARGS, free_port, start_server, stop_server

# name, page slug, slider label, title prefixes of the plots it drives, setup before measuring:
# "size" picks the --size image, "tab:NAME" opens that tab (the Scattering page renders one tab at a time).
PAGES = [
    ("wavelets", "wavelets", "θ index", ["Re ψ · Im ψ · |ψ|", "|ψ̂| in Fourier"], []),
    ("scattering", "scattering", "θ1 index", ["S2 children of", "|x ⋆ ψ|"], ["size"]),
    ("scat-disk", "scattering", "θ1 index", ["S2 disk of"], ["size", "tab:Scattering disk"]),
    ("invariance", "invariance", "Rotation angle", ["Rotation by", "Rotated by"], []),
    ("layers", "layers", "k (neighbours", ["|Γᵏ| against depth at k ="], ["tab:k-local support vectors"]),
]

TITLE_JS = """(prefix) => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title && m.title.text && m.title.text.startsWith(prefix)) return m.title.text;
  return null;
}"""

TITLES_JS = "(prefixes) => { const f = " + TITLE_JS + "; return prefixes.map(f); }"

WAIT_JS = """([prefixes, olds]) => {
  const titles = [];
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title && m.title.text) titles.push(m.title.text);
  for (let i = 0; i < prefixes.length; i++) {
    const now = titles.find(t => t.startsWith(prefixes[i]));
    if (now === undefined || now === olds[i]) return false;
  }
  window.__t1 = performance.now();
  return true;
}"""


def measure_page(page, url: str, slug: str, label: str, prefixes: list, setup: list, presses: int, size: int):
    prefix = prefixes[0]
    t = time.perf_counter()
    page.goto(f"{url}?page={slug}")
    page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0", timeout=60_000)
    tabs = [s[4:] for s in setup if s.startswith("tab:")]
    # First render: the measured plot, or the page's first plot when that plot is in a tab not yet opened.
    page.wait_for_function(TITLE_JS, arg="" if tabs else prefix, timeout=60_000)
    first_render = time.perf_counter() - t
    if "size" in setup:
        page.locator(".bk-btn-group").get_by_text(str(size), exact=True).first.click()
        page.wait_for_function(TITLE_JS, arg=f"Input image ({size}×{size})", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.pn-loading').length === 0", timeout=60_000)
        time.sleep(1.0)
    for tab in tabs:
        page.locator(".bk-tab", has_text=tab).first.click()
        page.wait_for_function(TITLE_JS, arg=prefix, timeout=60_000)
        time.sleep(1.0)
    handle = page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first
    handle.focus()
    latencies = []
    key = "ArrowRight"
    for i in range(presses + 1):
        olds = page.evaluate(TITLES_JS, prefixes)
        t0 = page.evaluate("() => performance.now()")
        handle.press(key)
        try:
            page.wait_for_function(WAIT_JS, arg=[prefixes, olds], polling="raf", timeout=20_000)
        except Exception:  # noqa: BLE001  (at the end of the range the value does not change: turn round)
            key = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
            continue
        t1 = page.evaluate("() => window.__t1")
        if i > 0:  # the first press warms the caches
            latencies.append(t1 - t0)
        time.sleep(0.3)  # let the page settle, as between two moves of a person
    return first_render, latencies


# The slugs opened by the first-render measurement (every page of the app).
RENDER_PAGES = ["home", "wavelets", "scattering", "invariance", "reconstruction", "runs"]


def plots_drawn(page) -> tuple[int, int]:
    """(plots with a drawn canvas, loading spinners) on the page now; locators pierce Bokeh's shadow DOM."""
    return page.locator(".bk-Canvas canvas").count(), page.locator(".pn-loading").count()


def first_render_times(browser, url: str, slug: str) -> dict:
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    try:
        t = time.perf_counter()
        page.goto(f"{url}?page={slug}", wait_until="commit")
        page.get_by_text("Pages", exact=True).first.wait_for(timeout=60_000)
        shell = time.perf_counter() - t
        first = everything = None
        while time.perf_counter() - t < 60:
            canvases, spinners = plots_drawn(page)
            if canvases and first is None:
                first = time.perf_counter() - t
            if first is not None and not spinners:
                everything = time.perf_counter() - t
                break
            time.sleep(0.02)
        return {"shell": shell, "first": first, "all": everything}
    finally:
        page.close()


def _median(values: list) -> float:
    """Median of the measured values (None: never reached within the wait), NaN when none was."""
    measured = [v for v in values if v is not None]
    return statistics.median(measured) if measured else float("nan")


def measure_first_renders(browser, url: str, opens: int) -> None:
    for slug in RENDER_PAGES:  # warm the server: caches, imports of every page module
        first_render_times(browser, url, slug)
    print(f"{'page':<15} {'shell':>7} {'first plot':>11} {'(min–max)':>12} {'all plots':>10}"
          f"   (s, median of {opens} opens, warm server)")
    for slug in RENDER_PAGES:
        runs = [first_render_times(browser, url, slug) for _ in range(opens)]
        med = {key: _median([r[key] for r in runs]) for key in ("shell", "first", "all")}
        firsts = [r["first"] for r in runs if r["first"] is not None]
        spread = f"{min(firsts):.2f}–{max(firsts):.2f}" if firsts else "–"
        print(f"{slug:<15} {med['shell']:>7.2f} {med['first']:>11.2f} {spread:>12} {med['all']:>10.2f}")


def latency_row(name: str, first_render: float, latencies: list, width: int = 12) -> str:
    """One table row: first render, then n, median, p90 and max of the latencies (ms)."""
    if not latencies:
        return f"{name:<{width}} {first_render * 1000:>12.0f}   no measurement"
    lat = sorted(latencies)
    p90 = lat[min(len(lat) - 1, round(0.9 * (len(lat) - 1)))]
    return (f"{name:<{width}} {first_render * 1000:>12.0f} {len(lat):>3} {statistics.median(lat):>8.0f} "
            f"{p90:>8.0f} {max(lat):>8.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=20, help="key presses per page (after one warm-up)")
    parser.add_argument("--size", type=int, default=128, help="image size on the scattering page")
    parser.add_argument("--pages", nargs="+", default=[p[0] for p in PAGES], choices=[p[0] for p in PAGES],
                        help="pages to measure (default: all)")
    parser.add_argument("--opens", type=int, default=3, help="opens per page for the first-render figures")
    parser.add_argument("--first-render-only", action="store_true", help="skip the slider latencies")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    port = free_port()
    t = time.perf_counter()
    proc = start_server(port)
    print(f"server answered /liveness after {time.perf_counter() - t:.1f} s")
    url = f"http://127.0.0.1:{port}/app"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.set_default_timeout(90_000)  # a first render can be slow on a loaded machine
            measure_first_renders(browser, url, args.opens)
            if args.first_render_only:
                browser.close()
                return 0
            print(f"{'page':<12} {'first render':>12} {'n':>3} {'median':>8} {'p90':>8} {'max':>8}   (ms)")
            for name, slug, label, prefixes, setup in PAGES:
                if name not in args.pages:
                    continue
                first, lat = measure_page(page, url, slug, label, prefixes, setup, args.presses, args.size)
                print(latency_row(name, first, lat))
            browser.close()
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
