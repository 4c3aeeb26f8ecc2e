"""The Hierarchical CNN page and its figures, built without a browser, on a tiny hierarchical CNN (F = 6)
trained on the synthetic set with its translation test stored (on 100 of the shipped test images): the curves
are the stored test's numbers, the attribute map is the network's own at layers 1 and 11, the example's
partner is the stored one, forward passes run off the calling thread when served, a run without a stored
test is computed by the Compute button (with progress), and a store without hcnn runs, runs without or with
damaged weights and a missing dataset give their messages while the page keeps working."""
from __future__ import annotations

import shutil
import threading
import time

import bokeh.document
import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Image, Line

from explorer.analysis.attributes import analyse_attributes, attribute_maps, load_hcnn, stored_translations
from explorer.app import build_app
from explorer.config import STORE_ENV
from explorer.data.samples import shipped_test_images
from explorer.pages import hierarchical as hp
from explorer.runs import RunStore
from explorer.training import make_config, train
from explorer.views import hierarchical as hv_

from bokeh_root import plot, render
from own_loop import run_in_own_loop
from plot_ranges import stale_ranges

TINY = dict(filters=6, epochs=1, dataset="synthetic", limit_train=64, limit_test=32)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A store with one tiny hcnn and its translation test, and a copy of the run without the test. About
    fifteen seconds of training and fifteen of analysis on one CPU thread."""
    root = tmp_path_factory.mktemp("hcnn-store")
    bare = tmp_path_factory.mktemp("hcnn-bare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(root))
        mp.delenv("EXPLORER_DATA", raising=False)
        store = RunStore()
        run = train(make_config("hcnn", **TINY), store=store, progress=False, device="cpu")
        shutil.copytree(root / "runs" / run.id, bare / "runs" / run.id)
        result = analyse_attributes(run.id, images=100, queries=50, store=store, progress=False, device="cpu")
    return {"root": root, "bare": bare, "run": run.id, "result": result}


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


@pytest.fixture
def in_store(tiny, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tiny["root"]))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    return tiny


def lines(root, prefix: str) -> list[np.ndarray]:
    return [np.asarray(r.data_source.data["hc_score"], float) for r in plot(root, prefix).select({"type": GlyphRenderer})
            if isinstance(r.glyph, Line) and "hc_score" in r.data_source.data]


def image_data(root, prefix: str) -> np.ndarray:
    """The array an hv.Image sends to Bokeh: row 0 at the bottom, i.e. the attribute index 0."""
    (renderer,) = [r for r in plot(root, prefix).select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    return np.asarray(renderer.data_source.data["image"][0], np.float64)


def own_maps(run_id: str, test_index: int) -> list[np.ndarray]:
    """The run's maps of one shipped test image, computed here (what the page must show)."""
    samples = shipped_test_images()
    position = int(np.flatnonzero(samples.indices == test_index)[0])
    model = load_hcnn(run_id).build_model("cpu")
    return [m[0] for m in attribute_maps(model, np.array(samples.images[position:position + 1]), "cpu")]


def page_on(run_id=None, **params):
    page = build_app("hierarchical").page
    if run_id is not None:
        page.run = run_id
    page.param.update(**params)
    return page, render(page)


# -- the view functions -----------------------------------------------------------------------------------

def test_translation_curves_are_the_analysis_numbers(in_store):
    result = in_store["result"]
    curves = hv_.translation_curves(result)
    for label, key in ((hv_.TRAINED, "translation"), (hv_.CONTROL, "control_translation"),
                       (hv_.UNSHIFTED, "unshifted")):
        values = result[key]
        layers, shown = curves[label]
        keep = np.isfinite(values)
        assert not keep[0] and 1 not in layers  # layer 1: no older attribute, no point
        assert np.array_equal(layers, np.arange(1, 12)[keep]) and np.allclose(shown, values[keep])
        # F = 6, one epoch: the last layers barely differ between images, so they are not scored
        assert len(layers) >= 4, (label, values)
    layers, smooth = curves[hv_.SMOOTHNESS]
    expected = 0.5 * (result["self"][:, 0] + result["self"][:, 2])
    finite = np.isfinite(expected)
    assert list(layers) == list(np.arange(1, 12)[finite]) and np.allclose(smooth, expected[finite])
    assert list(result["shifts"]) == [-1, 0, 1]


def test_view_helpers(in_store):
    assert hv_.attribute_names(1) == ("", "v₁") and hv_.attribute_names(11) == ("v₁₀", "v₁₁")
    values = np.arange(12.0).reshape(4, 3)
    shifted = hv_.shifted_rows(values, 1)
    assert np.array_equal(shifted[:3], values[1:]) and np.isnan(shifted[3]).all()
    with pytest.raises(ValueError, match=r"an attribute map is \(A, F\)"):
        hv_.attribute_map_figure(np.zeros((2, 3, 4)), 3)
    empty = hv_.translation_figure(None, 4, "nothing stored")
    assert "nothing stored" in [el.text for el in empty if hasattr(el, "text")]
    # The same legend with and without data: a legend a later frame adds breaks BokehJS.
    labels = lambda overlay: [el.label for el in overlay if el.label]
    assert set(labels(empty)) == set(hv_.CURVES) == set(labels(hv_.translation_figure(in_store["result"], 4)))


# -- the page ---------------------------------------------------------------------------------------------

def test_offers_the_hcnn_runs_only(in_store):
    from explorer.runs import RunStore

    page = build_app("hierarchical").page
    ids = list(page.param.run.objects)
    hcnn = [i.id for i in RunStore().list() if (i.config or {}).get("model") == "hcnn"]
    assert in_store["run"] in ids and sorted(ids) == sorted(hcnn)
    shipped = [i.id for i in RunStore().list() if i.shipped and i.id in ids]
    assert page.run == (shipped[0] if shipped else in_store["run"])  # the shipped run first
    page.run = in_store["run"]
    label = {v: k for k, v in page.param.run.names.items()}[in_store["run"]]
    assert "F=6" in label and "complete" in label  # describe_model's words, its status
    assert len(page.param.image.objects) == 300  # the shipped test samples
    assert page.layer == 11 and page.param.layer.bounds == (1, 11)


def test_page_draws_the_stored_test(in_store):
    result = in_store["result"]
    page, root = page_on(in_store["run"])
    assert not page.alert.visible and not page.run_problems.visible and not page.compute_box.visible
    assert not page.note.visible
    drawn = lines(root, "Translations along the older attribute")
    curves = hv_.translation_curves(result)
    for label in hv_.CURVES:
        assert any(len(d) == len(curves[label][1]) and np.allclose(d, curves[label][1]) for d in drawn), label
    score, control = result["translation"], result["control_translation"]
    assert f"translation ratio **{score[-1]:.3f}** trained" in page.verdict.object
    assert f"against **{control[-1]:.3f}** untrained" in page.verdict.object
    title = plot(root, "Translations along").title.text
    assert title.splitlines()[1:] == [in_store["run"], "50 queries among 100 shipped images"]
    assert stale_ranges(root) == []


@pytest.mark.parametrize("layer", [1, 11, 2])
def test_layer_slider_draws_the_networks_own_map(in_store, layer):
    page, root = page_on(in_store["run"], image=3)
    page.layer = layer
    expected = own_maps(in_store["run"], int(page.samples.indices[3]))[layer - 1]
    title = plot(root, f"Layer {layer}: attribute map").title.text
    shown = image_data(root, f"Layer {layer}: attribute map")
    assert shown.shape == expected.shape and np.allclose(shown, expected, atol=1e-5)
    if layer == 1:
        assert shown.shape == (1, 6) and "(v₁, one row)" in title
    else:
        assert shown.shape == (3, 6) and f"(v{hv_.subscript(layer - 1)} × v{hv_.subscript(layer)})" in title
    assert "image 3 (" in title and in_store["run"] in title
    axes = plot(root, f"Layer {layer}: attribute map")
    assert axes.xaxis[0].axis_label.startswith(f"v{hv_.subscript(layer)} (newest")
    # The translation figure marks the layer shown.
    marks = [r for r in plot(root, "Translations along").renderers if type(r).__name__ == "Span"]
    assert [m.location for m in marks if m.dimension == "height"] == [layer]
    assert stale_ranges(root) == [] and not page.alert.visible


def test_another_image_redraws_the_map_from_the_cache(in_store):
    page, root = page_on(in_store["run"], layer=1)  # the tiny network's deep maps barely depend on the image
    before = image_data(root, "Layer 1: attribute map")
    page.image = 250
    after = image_data(root, "Layer 1: attribute map")
    assert not np.allclose(before, after)
    maps = own_maps(in_store["run"], int(page.samples.indices[250]))
    assert np.allclose(after, maps[0], atol=1e-5)
    page.layer = 11
    assert np.allclose(image_data(root, "Layer 11: attribute map"), maps[-1], atol=1e-5)
    assert plot(root, "Image 250:") and "image 250 (" in plot(root, "Layer 11: attribute map").title.text
    cached = hp.image_maps(in_store["run"], int(page.samples.indices[250]), page.samples.images[250])
    assert cached is page.maps["maps"]  # a second look computes nothing
    assert stale_ranges(root) == []


@pytest.mark.parametrize("query", [0, 49])
def test_example_is_the_stored_best_partner_at_plus_one(in_store, query):
    result = in_store["result"]
    page, root = page_on(in_store["run"], query=query)
    partner = int(result["partner"][query, 2])
    example = page.example
    assert (example["query"], example["partner"]) == (query, partner)
    assert example["similarity"] == pytest.approx(result["partner_similarity"][query, 2], nan_ok=True)
    pair = plot(root, f"Query {query} (").title.text
    assert f") → {partner} (" in pair and f"best at +1, correlation {result['partner_similarity'][query, 2]:.3f}" in pair
    indices = result["image_indices"][[query, partner]]
    query_map, partner_map = (own_maps(in_store["run"], int(t))[-1] for t in indices)
    assert np.allclose(image_data(root, f"Query {query}: layer 11 map"), query_map, atol=1e-5)
    shown = image_data(root, f"Partner {partner}: layer 11 map shifted by +1")
    assert np.allclose(shown[:-1], partner_map[1:], atol=1e-5) and np.isnan(shown[-1]).all()  # row r: its r + 1
    assert not page.example_note.visible and stale_ranges(root) == []


def test_query_bounds_follow_the_stored_test(in_store):
    page, _ = page_on(in_store["run"])
    assert page.param.query.bounds == (0, 49)
    with pytest.raises(ValueError):
        page.query = 50


def test_forward_passes_run_off_the_calling_thread_when_served(in_store, monkeypatch):
    """Served, a new image starts a worker thread and returns at once; its maps reach the page through the
    session's event loop (here: a queue the test runs), never computed in the widget's thread."""
    page, root = page_on(in_store["run"])
    callbacks, threads = [], []

    class Doc:
        def add_next_tick_callback(self, callback):
            callbacks.append(callback)

    real = hp.image_maps

    def slow_maps(*args):
        threads.append(threading.current_thread().name)
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(hp, "image_maps", slow_maps)
    page.session_doc = Doc()
    try:
        started = time.perf_counter()
        page.image = 17
        assert time.perf_counter() - started < 0.25  # the watcher did not wait for the forward pass
        assert page.map_pane.loading and page.maps["position"] != 17
        deadline = time.time() + 30
        while not callbacks and time.time() < deadline:
            time.sleep(0.02)
        assert callbacks and threads == ["hierarchical-maps"]
        callbacks.pop()()  # the event loop applies it
        assert page.maps["position"] == 17 and not page.map_pane.loading
        assert plot(root, "Layer 11: attribute map").title.text.count("image 17 (") == 1
    finally:
        page.session_doc = None


def test_no_hcnn_run_says_how_to_train_one(tmp_path, monkeypatch):
    from explorer.runs import store

    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    monkeypatch.setattr(store, "SHIPPED_ROOT", tmp_path / "no-shipped-runs")  # an installation without the shipped hcnn
    page = build_app("hierarchical").page
    assert page.run is None
    root = render(page)
    render(page.controls)
    assert page.note.visible and "`explorer train hcnn`" in page.note.object
    assert not page.alert.visible and not page.run_problems.visible and not page.compute_box.visible
    assert plot(root, "Translations along the older attribute\nno analysis")
    assert plot(root, "Layer 11: no run")
    page.param.update(layer=1, image=9)  # the controls still work
    assert plot(root, "Layer 1: no run") and plot(root, "Image 9:") and not page.alert.visible


def test_runs_without_or_with_damaged_weights_say_so(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    store = RunStore()
    empty = store.create_or_open(make_config("hcnn", seed=7, **TINY)).id  # created, no epoch finished
    damaged = tiny["run"]
    shutil.copytree(tiny["root"] / "runs" / damaged, tmp_path / "runs" / damaged)
    weights = tmp_path / "runs" / damaged / "weights.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"not a safetensors file")
    page, root = page_on()
    assert {empty, damaged} <= set(page.param.run.objects)  # offered: selecting one says what is wrong
    for run_id, words in ((empty, "has no weights yet"), (damaged, "is damaged")):
        page.run = run_id
        assert page.run_problems.visible and run_id in page.run_problems.object, run_id
        assert words in page.run_problems.object, page.run_problems.object
        assert not page.alert.visible and not page.compute_box.visible
        assert plot(root, f"Layer {page.layer}: cannot be computed")
        assert plot(root, "Query and best partner at +1: the run cannot be shown")
        page.layer = 1 if page.layer == 11 else 11  # the page keeps working
        assert not page.alert.visible
    weights.write_bytes(good)  # repaired: the run shows (its stored test is for these weights)
    page.run = empty
    page.run = damaged
    assert not page.run_problems.visible and page.translations is not None and page.maps is not None


def run_compute(page) -> None:
    """`page._on_compute` as the button runs it."""
    run_in_own_loop(page._on_compute(), timeout=600)


def test_compute_button_stores_the_test_with_progress(tiny, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tiny["bare"]))  # the run without its test
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    run_id = tiny["run"]
    page, root = page_on(run_id)
    assert page.translations is None and page.compute_box.visible and not page.compute_button.disabled
    assert "no stored translation test yet" in page.compute_text.object
    assert page.maps is not None  # the maps need no stored test
    assert plot(root, "Translations along the older attribute\nno analysis")
    seen: list = []
    page.progress.param.watch(lambda event: seen.append(event.new), "value")
    page.progress_text.param.watch(lambda event: seen.append(event.new), "object")
    run_compute(page)
    assert any(isinstance(v, int) and 0 < v < 1000 for v in seen), seen  # the bar moved while it ran
    assert any(isinstance(v, str) and v.startswith(f"Computing the translation test of **{run_id}**") for v in seen)
    assert not page.compute_box.visible and not page.progress.visible and not page.run_problems.visible
    stored = stored_translations(run_id)
    assert stored is not None and np.allclose(stored["translation"], page.translations["translation"], equal_nan=True)
    drawn = lines(root, "Translations along the older attribute\n")
    trained = hv_.translation_curves(stored)[hv_.TRAINED][1]
    assert any(len(d) == len(trained) and np.allclose(d, trained) for d in drawn)
    assert page.example is not None


def test_example_needs_the_dataset_its_test_was_computed_on(in_store, monkeypatch):
    from explorer.data import sources
    from explorer.data.cifar10 import DatasetNotFoundError

    def absent():  # another test of this process may have loaded the real test split already
        raise DatasetNotFoundError("No CIFAR-10 location configured. Set EXPLORER_DATA to its folder.")

    monkeypatch.setattr(sources, "cifar_test", absent)
    page, root = page_on(in_store["run"])
    on_cifar = dict(page.translations, source="CIFAR-10 test set (10,000 images)")
    page.translations = on_cifar
    page._request_example()
    assert page.example_note.visible and "computed on the CIFAR-10 test set" in page.example_note.object
    assert "EXPLORER_DATA" in page.example_note.object and page.example is None
    assert plot(root, "Query and best partner at +1: not available")
    assert not page.alert.visible


def test_show_page_in_a_notebook(in_store):
    from explorer.pages.notebook import show_page

    row = show_page("hierarchical", layer=4, image=2, query=40)
    root = row.get_root(bokeh.document.Document())
    assert row.page.controls in row.objects[0].objects
    assert row.page.query == 40 and plot(root, "Query 40 (")
    assert plot(root, "Layer 4: attribute map") and plot(root, "Image 2:")
    row.page.layer = 9
    assert plot(root, "Layer 9: attribute map")
