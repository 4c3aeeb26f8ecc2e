"""In Chromium: the Layers page draws its figures (three tabs) from the shipped runs' stored analyses, the k
slider opens its tab and at both ends shows |Γᵏ| of that k (column k − 1 of the stored counts), the rule
selector switches the counts, a second run overlays, and the console stays clean."""
from __future__ import annotations

import time

import numpy as np
import pytest

from .helpers import console_errors, eventually, open_page, record_console, wait_idle

pytestmark = pytest.mark.browser

SHIPPED_RELU, SHIPPED_SIGN = "cnn13-44da76659d19", "cnn13-7eab578d09c7"
TABS = {"Separation and contraction": ("Separation", "Contraction", "Per-class PCA"),  # figures by tab
        "k-local support vectors": ("k-local support vectors", "|Γᵏ| against depth at k ="),
        "ReLU_k: the network against α": ("The network against α",)}

# The figures drawn now (views alive: a replaced figure's model may linger in the document), with their
# visible renderers' |Γᵏ| and run columns.
SHOWN_JS = """() => {
  const out = [];
  for (const view of Bokeh.index.all_views()) {
    const m = view.model;
    if (!(m.type === 'Figure' || (m.constructor && m.constructor.name === 'Figure'))) continue;
    if (!m.title || !m.title.text) continue;
    const curves = [];
    for (const r of m.renderers) {
      const data = r.visible && r.data_source ? r.data_source.data : null;
      if (data && data.ly_count !== undefined)
        curves.push({counts: Array.from(data.ly_count), run: data.ly_run ? data.ly_run[0] : null});
    }
    out.push({title: m.title.text, curves: curves});
  }
  return out;
}"""


def shown(page) -> list[dict]:
    return page.evaluate(SHOWN_JS)


def wait_for_figure(page, prefix: str, check=lambda figure: True, timeout: float = 30.0) -> dict:
    """The drawn figure whose title starts with `prefix` once `check(figure)` holds."""
    return eventually(lambda: next((f for f in shown(page) if f["title"].startswith(prefix) and check(f)), None),
                      what=f"a drawn figure {prefix!r} as expected", timeout=timeout, every=0.05, page=page)


def counts_are(expected):
    expected = [np.asarray(e).tolist() for e in expected]
    return lambda figure: sorted(c["counts"] for c in figure["curves"]) == sorted(expected * 2)  # line and dots


def slider(page, label: str):
    return page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first


def test_k_slider_rule_selector_and_several_runs(page, server_url, screenshots):
    from explorer.analysis.layers import stored_layers

    relu, sign = stored_layers(SHIPPED_RELU), stored_layers(SHIPPED_SIGN)
    assert relu is not None and sign is not None, "the shipped CNN13 runs ship their layer-wise analyses"
    messages = record_console(page)
    open_page(page, server_url + "?page=layers", canvases=3)
    assert_tab_shown(page, "Separation and contraction")
    assert page.locator(".alert-danger").count() == 0 or not page.locator(".alert-danger").first.is_visible()

    k = slider(page, "k (neighbours")
    k.focus()
    k.press("Home")  # opens the tab of the k-local support vectors
    wait_for_figure(page, "|Γᵏ| against depth at k = 1\ntalk rule", counts_are([relu["lsv"]["talk"][:, 0]]))
    wait_idle(page)
    page.screenshot(path=str(screenshots / "layers_k1.png"), full_page=True)
    k.press("End")
    wait_for_figure(page, "|Γᵏ| against depth at k = 31\ntalk rule", counts_are([relu["lsv"]["talk"][:, 30]]))
    wait_idle(page)
    page.screenshot(path=str(screenshots / "layers_k31.png"), full_page=True)

    page.get_by_role("button", name="authors").click()
    wait_for_figure(page, "|Γᵏ| against depth at k = 31\nauthors' rule", counts_are([relu["lsv"]["authors"][:, 30]]))
    wait_for_figure(page, "k-local support vectors |Γᵏ| against k\nauthors' rule")
    k.focus()
    k.press("Home")  # the authors' Γ¹ is every training point, at every depth
    wait_for_figure(page, "|Γᵏ| against depth at k = 1\nauthors' rule", counts_are([[50_000] * 12]))
    k.press("End")
    wait_for_figure(page, "|Γᵏ| against depth at k = 31\nauthors' rule")
    wait_idle(page)
    page.screenshot(path=str(screenshots / "layers_authors.png"), full_page=True)

    page.locator(".choices").first.click()  # the runs' MultiChoice: add the shipped sign·√ run
    page.locator(".choices__item--choice", has_text=SHIPPED_SIGN).first.click()
    page.keyboard.press("Escape")
    both = counts_are([relu["lsv"]["authors"][:, 30], sign["lsv"]["authors"][:, 30]])
    figure = wait_for_figure(page, "|Γᵏ| against depth at k = 31\nauthors' rule", both)
    assert {c["run"] for c in figure["curves"]} == {"ReLU, K=32 · 44da7665", "sign·√, K=32 · 7eab578d"}
    page.mouse.click(5, 5)  # close the drop-down before the picture
    wait_idle(page)
    time.sleep(0.5)
    page.screenshot(path=str(screenshots / "layers_several_runs_lsv.png"), full_page=True)
    for tab in TABS:
        page.locator(".bk-tab", has_text=tab).first.click()
        assert_tab_shown(page, tab)
        wait_idle(page)
        time.sleep(0.5)
        name = {"Separation and contraction": "separation", "ReLU_k: the network against α": "alpha"}.get(tab)
        if name:
            page.screenshot(path=str(screenshots / f"layers_several_runs_{name}.png"), full_page=True)
    assert console_errors(messages) == []


def assert_tab_shown(page, tab: str) -> None:
    """The figures of `tab` are drawn, each once."""
    for prefix in TABS[tab]:
        wait_for_figure(page, prefix)
    titles = [f["title"] for f in shown(page)]
    for prefix in TABS[tab]:
        assert sum(t.startswith(prefix) for t in titles) == 1, (prefix, titles)
