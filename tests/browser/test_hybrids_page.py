"""In Chromium: the Hybrids & small data page with nothing stored (the command to run, the talk's figures
only), then with stored grids after *Reload* (a CIFAR-10 grid with a cell not run yet, a synthetic one, a
damaged file): models unticked and ticked, seeds hidden, another baseline, the other grid; no error, plots
drawn, no console error."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import served
from .helpers import (
    console_errors,
    eventually,
    open_page,
    record_console,
    rendered_canvases,
    wait_for_title,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCAT, MLP, CNN = "scat_linear J=2 L=8", "scat_mlp J=2 L=8 hidden=2048", "cnn13 K=32 relu"
SEEDS = [1, 2, 3, 4, 5]
# Made-up accuracies in the range the protocol gives (per size: the five seeds); None: not run yet.
CIFAR = {
    ("scat_linear", SCAT): {100: [0.31, 0.33, 0.30, 0.32, 0.29], 500: [0.45, 0.46, 0.44, 0.47, 0.45],
                            1000: [0.50, 0.51, 0.49, 0.52, 0.50]},
    ("scat_mlp", MLP): {100: [0.34, 0.36, 0.33, 0.35, 0.34], 500: [0.48, 0.49, 0.47, 0.50, 0.48],
                        1000: [0.54, 0.55, 0.53, 0.56, 0.54]},
    ("cnn13", CNN): {100: [0.24, 0.27, 0.22, 0.25, 0.23], 500: [0.38, 0.40, 0.37, 0.39, 0.38],
                     1000: [0.46, 0.48, 0.45, 0.47, None]},
}
SYNTHETIC = {("scat_linear", SCAT): {20: [0.9, 1.0], 40: [1.0, 1.0]},
             ("cnn13", "cnn13 K=4 relu"): {20: [0.5, 0.55], 40: [0.6, 0.5]}}


def grid_summary(grid_id: str, cells: dict, dataset: str, seeds: list[int], limit_test=None) -> dict:
    rows = []
    for (model, describe), sizes in cells.items():
        for n, accuracies in sizes.items():
            done = [a for a in accuracies if a is not None]
            rows.append({"model": model, "describe": describe, "n": n, "seeds": seeds, "accuracies": accuracies,
                         "seconds": [30.0 + n / 10 if a is not None else None for a in accuracies],
                         "run_ids": [f"{model}-{n:06d}{s:06d}" for s in seeds],
                         "devices": ["cpu (x86_64)" if a is not None else None for a in accuracies],
                         "finished": len(done), "mean": sum(done) / len(done), "std": 0.0})
    return {"format": 1, "protocol": "small-data", "id": grid_id,
            "grid": {"models": [m for m, _ in cells], "sizes": sorted({n for s in cells.values() for n in s}),
                     "seeds": seeds, "schedule": "quick", "dataset": dataset, "model_configs": {},
                     "limit_test": limit_test}, "schedule": "small-quick", "rows": rows, "complete": False}


@pytest.fixture(scope="module")
def hybrids_server(tmp_path_factory):
    store = tmp_path_factory.mktemp("hybrids-browser-store")
    with served(store, dataset=False) as url:
        yield url, store


# The page replaces a figure by a new one: the document may still hold the previous one, so the newest figure
# whose title starts with `start` is read (models are added to the document in order).
FIGURE_JS = """(start) => {
  let found = null;
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.title && m.title.text && m.title.text.startsWith(start) && m.renderers !== undefined) found = m;
  return found;
}"""

LEGEND_JS = """(start) => {
  const m = (FIGURE)(start);
  if (m === null) return null;
  const out = [];
  for (const side of [m.center, m.right, m.left, m.above, m.below])
    for (const a of side || []) if (a.items) for (const it of a.items) out.push(it.label.value);
  return out;
}""".replace("FIGURE", FIGURE_JS)

FAINT_JS = """(start) => {
  const m = (FIGURE)(start);
  if (m === null) return null;
  let n = 0;
  for (const r of m.renderers) {
    const alpha = r.glyph && r.glyph.fill_alpha;
    if (r.glyph && r.glyph.marker !== undefined && alpha && alpha.value !== undefined && alpha.value < 0.5) n++;
  }
  return n;
}""".replace("FIGURE", FIGURE_JS)


def wait_for(page, js: str, arg, predicate, what: str, timeout: float = 30.0):
    return eventually(lambda: page.evaluate(js, arg), predicate, what=what, timeout=timeout, page=page)


def no_error(page) -> None:
    alert = page.locator(".alert-danger")
    assert alert.count() == 0 or not any(alert.nth(i).is_visible() for i in range(alert.count()))


def checkbox(page, text: str):
    """The box of a model in the models' group, or the single checkbox labelled `text…`."""
    single = page.locator(".bk-Checkbox", has_text=text).locator("input")
    return single.first if single.count() else page.locator("label", has_text=text).locator("input").first


def test_hybrids_page_empty_then_stored_grids(page, hybrids_server, screenshots):
    url, store = hybrids_server
    messages = record_console(page)

    # Nothing stored: the command to run, and the talk's figures alone.
    open_page(page, url + "?page=hybrids", canvases=1)
    wait_for_title(page, "Test accuracy against training-set size: nothing stored yet", timeout=60)
    page.get_by_text("explorer protocol small-data --models scat_linear scat_mlp cnn13 --schedule quick").first \
        .wait_for(timeout=15_000)
    legend = page.evaluate(LEGEND_JS, "Test accuracy")
    assert legend == [f"{m}, reported (talk)" for m in ("Scat+ResNet", "WRN 16-8", "VGG 16")]
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hybrids_empty.png"), full_page=True)

    # Grids stored meanwhile (and a damaged file): Reload shows them.
    folder = store / "protocols" / "small-data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quick-synthetic-bbbbbbbbbbbb.json").write_text(json.dumps(
        grid_summary("quick-synthetic-bbbbbbbbbbbb", SYNTHETIC, "synthetic", [1, 2], limit_test=64)))
    time.sleep(0.05)  # the CIFAR-10 grid newer: shown first
    (folder / "quick-cifar10-aaaaaaaaaaaa.json").write_text(json.dumps(
        grid_summary("quick-cifar10-aaaaaaaaaaaa", CIFAR, "cifar10", SEEDS)))
    (folder / "quick-cifar10-damaged00000.json").write_text('{"protocol": "small-data", "rows": [')
    page.get_by_role("button", name="Reload").click()
    wait_for_title(page, "Gain over cnn13 K=32 relu, same images", timeout=30)
    legend = wait_for(page, LEGEND_JS, "Test accuracy against", lambda v: SCAT in v, "the models in the legend")
    assert legend[:3] == [SCAT, MLP, CNN] and len(legend) == 6
    assert wait_for(page, LEGEND_JS, "Gain over", lambda v: len(v) == 2, "the gain legend") == [SCAT, MLP]
    page.locator(".alert-warning", has_text="quick-cifar10-damaged00000.json").first.wait_for(timeout=15_000)
    page.get_by_text("1: 46.0, 2: 48.0, 3: 45.0, 4: 47.0, 5: –").first.wait_for(timeout=15_000)  # the table
    wait_idle(page)
    assert rendered_canvases(page) >= 2
    no_error(page)
    page.screenshot(path=str(screenshots / "hybrids_cifar10.png"), full_page=True)

    # Untick a model, hide the seeds, hide the talk's figures: the figures follow.
    checkbox(page, MLP).click()
    wait_for(page, LEGEND_JS, "Test accuracy against", lambda v: MLP not in v and SCAT in v, "scat_mlp gone")
    wait_for(page, FAINT_JS, "Test accuracy against", lambda v: v > 0, "faint seeds kept")
    checkbox(page, "Show each seed").click()
    wait_for(page, FAINT_JS, "Test accuracy against", lambda v: v == 0, "no faint seeds")
    checkbox(page, "Show the talk's reported figures").click()
    wait_for(page, LEGEND_JS, "Test accuracy against", lambda v: v == [SCAT, CNN], "only the two models")
    checkbox(page, MLP).click()
    checkbox(page, "Show each seed").click()
    checkbox(page, "Show the talk's reported figures").click()
    wait_for(page, LEGEND_JS, "Test accuracy against", lambda v: len(v) == 6, "everything back")
    wait_for(page, FAINT_JS, "Test accuracy against", lambda v: v > 0, "faint seeds back")  # may follow the legend

    # Another baseline: the hybrid MLP; the CNN is then below zero.
    page.locator(".bk-input-group", has_text="Baseline of the gain").locator("select").select_option(label=MLP)
    wait_for_title(page, f"Gain over {MLP}, same images", timeout=30)
    assert wait_for(page, LEGEND_JS, "Gain over", lambda v: CNN in v, "the gain legend") == [SCAT, CNN]
    page.get_by_text("behind at n = 100, 500, 1000").first.wait_for(timeout=15_000)
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hybrids_baseline_mlp.png"), full_page=True)

    # The synthetic grid: its models, its CNN13 the baseline, no talk figures.
    page.locator(".bk-input-group", has_text="Stored grids").locator("select").select_option(
        label="small-quick · synthetic · 64 test images (1 grid)")
    wait_for_title(page, "Gain over cnn13 K=4 relu, same images", timeout=30)
    assert wait_for(page, LEGEND_JS, "Test accuracy against", lambda v: "cnn13 K=4 relu" in v,
                    "the synthetic models") == [SCAT, "cnn13 K=4 relu"]
    wait_idle(page)
    no_error(page)
    page.screenshot(path=str(screenshots / "hybrids_synthetic.png"), full_page=True)
    assert console_errors(messages) == []
