"""In Chromium: the Hierarchical CNN page on the shipped hierarchical CNN (F = 8) with its stored translation
test, as on a fresh machine (layer slider at both ends, another image, the last query of the example: each
redraws its figure, the translation figure marks the layer, no error, a clean console), in a wide and a narrow
window; the store without any hcnn run is checked offline (tests/test_hierarchical_page.py)."""
from __future__ import annotations

import time

import pytest

from .conftest import served
from .helpers import (
    console_errors,
    eventually,
    open_page,
    record_console,
    wait_for_title,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The drawn figure whose title starts with `prefix`: the layer its vertical line marks and the size of its
# image (rows, columns), from the views alive (a replaced frame's model may linger in the document).
FIGURE_JS = """(prefix) => {
  for (const view of Bokeh.index.all_views()) {
    const m = view.model;
    if (!(m.type === 'Figure' || (m.constructor && m.constructor.name === 'Figure'))) continue;
    if (!m.title || !m.title.text || !m.title.text.startsWith(prefix)) continue;
    const out = {title: m.title.text, spans: [], image: null};
    for (const r of m.renderers) {
      if (r.location !== undefined && r.dimension === 'height') out.spans.push(r.location);
      const data = r.data_source ? r.data_source.data : null;
      if (data && data.image !== undefined && data.image.length) {
        const im = data.image[0];
        out.image = im.shape ? Array.from(im.shape) : [im.length, im[0].length];
      }
    }
    return out;
  }
  return null;
}"""


@pytest.fixture(scope="module")
def hcnn_server(tmp_path_factory):
    """A server on an empty store and no dataset: the shipped hcnn run and its stored test only."""
    from explorer.runs import RunStore

    store = tmp_path_factory.mktemp("hcnn-browser-store")
    shipped = [i.id for i in RunStore(store / "runs").list() if i.shipped and i.config.get("model") == "hcnn"]
    if not shipped:
        pytest.skip("no hcnn run ships with this installation")
    with served(store, dataset=False) as url:
        yield url, shipped[0]


def figure(page, prefix: str, check=lambda f: True, timeout: float = 60.0) -> dict:
    return eventually(lambda: page.evaluate(FIGURE_JS, prefix), check, what=f"the figure {prefix!r} as expected",
                      timeout=timeout, page=page)


def slider(page, label: str):
    return page.locator(".bk-input-group", has_text=label).locator(".noUi-handle").first


def no_error(page) -> None:
    alert = page.locator(".alert-danger")
    assert alert.count() == 0 or not any(alert.nth(i).is_visible() for i in range(alert.count()))


def test_layer_slider_image_and_query(page, hcnn_server, screenshots):
    from explorer.data.samples import shipped_test_images

    url, run_id = hcnn_server
    samples = shipped_test_images()
    messages = record_console(page)
    open_page(page, url + "?page=hierarchical", canvases=4)
    wait_for_title(page, f"Translations along the older attribute\n{run_id}", timeout=60)
    figure(page, "Layer 11: attribute map (v₁₀ × v₁₁)", lambda f: "image 0 (" in f["title"] and f["image"] == [4, 8])
    figure(page, "Translations along", lambda f: f["spans"] == [11])
    figure(page, "Query 0 (")
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hierarchical_wide.png"), full_page=True)

    layer = slider(page, "Layer j")
    layer.focus()
    layer.press("Home")
    figure(page, "Layer 1: attribute map (v₁, one row)", lambda f: f["image"] == [1, 8])
    figure(page, "Translations along", lambda f: f["spans"] == [1])
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hierarchical_layer1.png"), full_page=True)
    layer.press("End")
    figure(page, "Layer 11: attribute map (v₁₀ × v₁₁)", lambda f: f["image"] == [4, 8])
    figure(page, "Translations along", lambda f: f["spans"] == [11])

    label = f"42: {samples.classes[int(samples.labels[42])]} (test image {int(samples.indices[42])})"
    page.locator(".bk-input-group", has_text="Image (CIFAR-10").locator("select").select_option(label=label)
    figure(page, "Layer 11: attribute map", lambda f: "image 42 (" in f["title"])
    figure(page, "Image 42:")

    query = slider(page, "Query of the last layer")
    query.focus()
    query.press("End")
    figure(page, "Query 199 (")
    figure(page, "Query 199: layer 11 map")
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hierarchical_image42_query199.png"), full_page=True)

    page.set_viewport_size({"width": 900, "height": 1600})
    time.sleep(1.0)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "hierarchical_narrow.png"), full_page=True)
    no_error(page)
    assert console_errors(messages) == []
