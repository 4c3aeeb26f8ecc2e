"""Driving the app in Chromium: waiting for Bokeh, reading plot titles, moving sliders."""
from __future__ import annotations

import time

IGNORED_CONSOLE = ("favicon",)


def record_console(page) -> list:
    messages: list = []
    page.on("console", lambda m: messages.append(m))
    page.on("pageerror", lambda e: messages.append(e))
    return messages


def console_errors(messages) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m, Exception) or not hasattr(m, "type"):
            out.append(f"pageerror: {m}")
        elif m.type == "error" and not any(s in m.text for s in IGNORED_CONSOLE):
            out.append(m.text)
    return out


def open_page(page, url: str, timeout: float = 90_000, canvases: int = 1) -> None:
    """Go to `url`, wait for Bokeh, no spinner and at least `canvases` canvases. The generous timeout is
    for a loaded CI machine: the invariance page computes its curves while the page is built (seconds,
    longer when the other test worker is busy)."""
    page.goto(url, timeout=timeout)
    page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0", timeout=timeout)
    if canvases:
        page.locator("canvas").nth(canvases - 1).wait_for(timeout=timeout)
    wait_idle(page, timeout)


def wait_idle(page, timeout: float = 30_000) -> None:
    page.wait_for_function("() => document.querySelectorAll('.pn-loading').length === 0", timeout=timeout)


TITLES_JS = """() => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.type === 'Figure' || (m.constructor && m.constructor.name === 'Figure')) {
        if (m.title && m.title.text) out.push(m.title.text);
      }
    }
  }
  return out;
}"""


def plot_titles(page) -> list[str]:
    return page.evaluate(TITLES_JS)


def slider_handles(page):
    return page.locator(".noUi-handle")


def press_slider(page, index: int, key: str = "ArrowRight") -> None:
    handle = slider_handles(page).nth(index)
    handle.focus()
    handle.press(key)


def eventually(read, holds=bool, *, what: str, timeout: float = 30.0, every: float = 0.1, page=None):
    """`read()` once `holds` it (None never does), read every `every` seconds: the browser draws when the
    server's answer arrives. Fails after `timeout` seconds naming `what`, the last value read and, given the
    `page`, its plot titles."""
    deadline = time.time() + timeout
    while True:
        value = read()
        if value is not None and holds(value):
            return value
        if time.time() >= deadline:
            shown = f"; plot titles: {plot_titles(page)}" if page is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {value!r}{shown}")
        time.sleep(every)


def wait_for_titles(page, holds, timeout: float = 30.0, what: str = "the plot titles") -> list[str]:
    """The plot titles once `holds(titles)`."""
    return eventually(lambda: plot_titles(page), holds, what=what, timeout=timeout)


def wait_for_titles_change(page, before: list[str], timeout: float = 15.0) -> list[str]:
    return eventually(lambda: plot_titles(page), lambda now: now != before, what="the plot titles to change",
                      timeout=timeout, every=0.02)


def wait_for_title(page, prefix: str, timeout: float = 15.0) -> str:
    """Wait until some plot's title starts with `prefix`; returns it."""
    return eventually(lambda: next((t for t in plot_titles(page) if t.startswith(prefix)), None),
                      what=f"a plot title starting with {prefix!r}", timeout=timeout, every=0.05, page=page)


def rendered_canvases(page) -> int:
    """Canvases with a non-zero size: plots actually drawn, not empty placeholders."""
    return page.evaluate("""() => {
      let n = 0;
      const visit = (root) => {
        for (const el of root.querySelectorAll('*')) {
          if (el.tagName === 'CANVAS' && el.width > 50 && el.height > 50) n++;
          if (el.shadowRoot) visit(el.shadowRoot);
        }
      };
      visit(document);
      return n;
    }""")
