"""The Layers page and its figures, built without a browser, on tiny CNN13s trained on the synthetic set: the
curves are the stored analysis' numbers, the k slider picks |Γᵏ| (column k − 1 of the counts), the rule
switch changes them, several runs overlay, the α figure lists the ReLU_k runs, a run without an analysis is
computed by the Compute button (off the event loop, with progress), and missing or damaged weights, a
missing dataset and a bad k give their messages while the page keeps working."""
from __future__ import annotations

import shutil

import bokeh.document
import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Legend

from explorer.analysis.layers import analyse_layers, stored_layers
from explorer.app import build_app
from explorer.config import STORE_ENV
from explorer.nets import build_model
from explorer.pages import layers as lp
from explorer.runs import RunStore
from explorer.training import make_config, train
from explorer.views import layers as lv

from bokeh_root import plot, render
from own_loop import run_in_own_loop
from plot_ranges import stale_ranges

TINY = dict(width=4, dataset="synthetic", epochs=1, limit_train=256, limit_test=128, batch_size=64)
SHIPPED_SIGN = "cnn13-7eab578d09c7"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A store with two tiny CNN13s trained on the synthetic set: ReLU with its analysis stored (SVM
    included), ReLU_k (α = 0.5) without one. A few seconds of training, about twenty of analysis."""
    root = tmp_path_factory.mktemp("layers-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(root))
        store = RunStore()
        relu = train(make_config("cnn13", rho="relu", **TINY), store=store, progress=False)
        relu_k = train(make_config("cnn13", rho="relu_k", alpha=0.5, **TINY), store=store, progress=False)
        result = analyse_layers(relu.id, progress=False, device="cpu")
    return {"root": root, "relu": relu.id, "relu_k": relu_k.id, "result": result,
            "relu_k_accuracy": store.info(relu_k.id).accuracy}


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


@pytest.fixture
def in_store(tiny, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tiny["root"]))
    return tiny


def columns(root, prefix: str, name: str) -> list[np.ndarray]:
    """The column `name` of every visible renderer of the plot titled `prefix…` that has it."""
    return [np.asarray(r.data_source.data[name], float) for r in plot(root, prefix).select({"type": GlyphRenderer})
            if r.visible and name in r.data_source.data]


def legend_labels(root, prefix: str) -> list[str]:
    return [str(item.label.value) for legend in plot(root, prefix).select({"type": Legend}) for item in legend.items]


def page_on(run_ids):
    page = build_app("layers").page
    page.runs = list(run_ids)
    return page, render(page)


# -- the view functions -----------------------------------------------------------------------------------

def curve_data(overlay, element_type, label=None):
    return [el for el in overlay if isinstance(el, element_type) and (label is None or el.label == label)]


def test_accuracy_curves_are_the_analysis_numbers(in_store):
    import holoviews as hv

    result = in_store["result"]
    overlay = lv.accuracy_figure([result])
    measures = {}
    for curve in curve_data(overlay, hv.Curve):
        measures[curve.dimension_values("ly_measure")[0]] = curve
    svm = next(m for m in measures if m.startswith("SVM"))
    assert np.allclose(measures["1-NN"].dimension_values("ly_accuracy"), 100 * result["nn1_accuracy"])
    assert np.allclose(measures[svm].dimension_values("ly_accuracy"), 100 * result["svm_accuracy"])
    assert np.allclose(measures["the network's own"].dimension_values("ly_accuracy"), 100 * result["test_accuracy"])
    assert list(measures["1-NN"].dimension_values("ly_depth")) == list(range(2, 14))
    # The label names ρ, K and the run.
    assert measures["1-NN"].label == f"ReLU, K=4 · {lv.short_id(result['run'])}"


def test_intra_class_pca_and_lsv_families_are_the_analysis_numbers(in_store):
    import holoviews as hv

    result = in_store["result"]
    assert result["classes"] == ["class 0", "class 1"]
    intra = lv.intra_class_figure([result], "class 1")
    thick = curve_data(intra, hv.Curve)[0]
    assert np.allclose(thick.dimension_values("ly_intra"), result["intra_class"][:, 1])
    thin = curve_data(intra, hv.Path)[0].split()
    assert len(thin) == 1 and np.allclose(thin[0].dimension_values("ly_intra"), result["intra_class"][:, 0])

    for normalise in (True, False):
        paths = curve_data(lv.pca_figure([result], "class 1", normalise), hv.Path)[0].split()
        assert len(paths) == 12
        cumulated = np.cumsum(np.sort(result["pca"][:, 1], axis=-1)[:, ::-1], axis=-1)
        if normalise:
            cumulated = cumulated / cumulated[:, -1:]
        for n, path in enumerate(paths):
            assert path.dimension_values("ly_family_depth")[0] == n + 2
            assert np.allclose(path.dimension_values("ly_pca"), cumulated[n])
    for rule in ("talk", "authors"):
        paths = curve_data(lv.lsv_k_figure([result], rule), hv.Path)[0].split()
        counts = result["lsv"][rule].astype(float)
        for n, path in enumerate(paths):
            shown = path.dimension_values("ly_lsv")
            assert np.array_equal(shown, np.where(counts[n] > 0, counts[n], np.nan), equal_nan=True)  # 0: not drawn


@pytest.mark.parametrize("k", [1, 2, 17, 31])
def test_lsv_against_depth_takes_column_k_minus_1(in_store, k):
    import holoviews as hv

    result = in_store["result"]
    for rule in ("talk", "authors"):
        curve = curve_data(lv.lsv_depth_figure([result], rule, k), hv.Curve)[0]
        assert np.array_equal(curve.dimension_values("ly_count"), result["lsv"][rule][:, k - 1])
        assert np.array_equal(lv.lsv_at_k(result, rule, k), result["lsv"][rule][:, k - 1])


@pytest.mark.parametrize("k", [0, 32, -1, 2.5, True, "3"])
def test_k_outside_1_to_31_is_a_clear_error(in_store, k):
    with pytest.raises(ValueError, match=r"k must be an integer in 1\.\.31"):
        lv.lsv_depth_figure([in_store["result"]], "talk", k)
    with pytest.raises(ValueError, match=r"k must be an integer in 1\.\.31"):
        lv.lsv_at_k(in_store["result"], "talk", k)


def test_unknown_rule_is_a_clear_error(in_store):
    with pytest.raises(ValueError, match="LSV rule is 'talk'"):
        lv.lsv_k_figure([in_store["result"]], "majority")


def test_rho_labels():
    assert lv.rho_label({"rho": "relu", "width": 32}) == "ReLU, K=32"
    assert lv.rho_label({"rho": "sign_sqrt", "width": 32}) == "sign·√, K=32"
    assert lv.rho_label({"rho": "relu_k", "alpha": 0.3, "width": 10}) == "ReLU_k α=0.3 (k=3), K=10"


def test_empty_figures_say_so():
    for figure in (lv.accuracy_figure([]), lv.intra_class_figure([], None), lv.pca_figure([], None, True),
                   lv.lsv_k_figure([], "talk"), lv.lsv_depth_figure([], "talk", 3)):
        assert "no analysis to show" in [el.text for el in figure if hasattr(el, "text")]


# -- the page ---------------------------------------------------------------------------------------------

def test_offers_cnn13_runs_only_shipped_relu_first(in_store):
    page = build_app("layers").page
    offered = list(page.param.runs.objects)
    assert offered[0] == lp.SHIPPED_CNN13 and page.runs == [lp.SHIPPED_CNN13]
    assert {in_store["relu"], in_store["relu_k"], SHIPPED_SIGN} <= set(offered)
    assert all(run.startswith("cnn13-") for run in offered)  # the shipped SLE is not offered
    labels = {v: k for k, v in page.param.runs.names.items()}
    assert "relu_k α=0.5" in labels[in_store["relu_k"]] and "shipped" in labels[lp.SHIPPED_CNN13]
    # Set from Python anyway, an SLE run says why it cannot be shown; the page goes on.
    page.runs = ["sle-695ad4593697", lp.SHIPPED_CNN13]
    assert "the layer-wise analysis needs a CNN13 run" in page.problems["sle-695ad4593697"]
    assert page.run_problems.visible and [r["run"] for r in page.results] == [lp.SHIPPED_CNN13]


def test_page_shows_the_stored_analysis(in_store):
    result = in_store["result"]
    page, root = page_on([in_store["relu"]])
    assert not page.alert.visible and not page.run_problems.visible and not page.compute_box.visible
    assert page.pca_class == "class 0"  # no "ship" in the synthetic set: its first class
    per_depth = [c for c in columns(root, "Separation", "ly_accuracy") if len(c) == 12]
    assert any(np.allclose(c, 100 * result["nn1_accuracy"]) for c in per_depth)
    assert any(np.allclose(c, 100 * result["svm_accuracy"]) for c in per_depth)
    own = [c for c in columns(root, "Separation", "ly_accuracy") if len(c) == 2]
    assert len(own) == 1 and np.allclose(own[0], 100 * result["test_accuracy"])
    assert any(np.allclose(c, result["intra_class"][:, 0]) for c in columns(root, "Contraction", "ly_intra"))
    page.pca_class = "class 1"
    assert "thick: class 1" in plot(root, "Contraction").title.text
    assert any(np.allclose(c, result["intra_class"][:, 1]) for c in columns(root, "Contraction", "ly_intra"))
    assert plot(root, "Per-class PCA of class 1")
    assert stale_ranges(root) == []


def test_k_slider_and_rule_switch(in_store):
    result = in_store["result"]
    page, root = page_on([in_store["relu"]])
    shown = {}
    for rule in ("talk", "authors"):
        page.rule = rule
        for k in (1, 31):
            page.k = k
            counts = columns(root, f"|Γᵏ| against depth at k = {k}", "ly_count")
            assert counts and all(np.array_equal(c, result["lsv"][rule][:, k - 1]) for c in counts)
            assert stale_ranges(root) == [], (rule, k)
            shown[rule, k] = counts[0]
        label = "talk rule" if rule == "talk" else "authors' rule"
        assert plot(root, "k-local support vectors").title.text.endswith(f"{label}, colour: depth")
    # The rules differ: the authors' Γ¹ is every training point (its own vote decides), the talk's is not.
    assert np.all(shown["authors", 1] == result["train_images"])
    assert not np.array_equal(shown["talk", 1], shown["authors", 1])
    assert not page.alert.visible


def test_k_out_of_range_from_python(in_store):
    page, _ = page_on([in_store["relu"]])
    with pytest.raises(ValueError):
        page.k = 32  # the parameter's bounds: the slider cannot go there either
    with pytest.raises(Exception):  # noqa: B017  (HoloViews' SkipRendering: the figure keeps its frame)
        page._lsv_depth(page.results, "talk", 0)
    assert page.alert.visible and "k must be an integer in 1..31, got 0" in page.alert.object


def test_several_runs_overlay_labelled_by_run_and_rho(in_store):
    page, root = page_on([in_store["relu"], lp.SHIPPED_CNN13, SHIPPED_SIGN])
    labels = legend_labels(root, "Separation")
    assert any(label.startswith("ReLU, K=4 ·") for label in labels)
    assert any(label.startswith("ReLU, K=32 · 44da7665") for label in labels)
    assert any(label.startswith("sign·√, K=32 · 7eab578d") for label in labels)
    assert len(legend_labels(root, "Per-class PCA")) == 3  # one line style per run
    assert page.pca_class == "ship"  # the paper's class, offered by the CIFAR-10 runs
    assert "of class 0 / ship" in plot(root, "Per-class PCA").title.text  # the chosen class, per run
    for step in ({"k": 31}, {"rule": "authors"}, {"normalise": False}, {"pca_class": "cat"}, {"k": 1},
                 {"runs": [SHIPPED_SIGN]}, {"runs": [in_store["relu"], SHIPPED_SIGN]}):
        page.param.update(**step)
        assert stale_ranges(root) == [], step
        assert not page.alert.visible, (step, page.alert.object)


def test_alpha_figure_lists_the_relu_k_runs(in_store):
    points = lp.alpha_runs()
    assert [(p["run"], p["alpha"], p["width"]) for p in points] == [(in_store["relu_k"], 0.5, 4)]
    assert points[0]["accuracy"] == pytest.approx(in_store["relu_k_accuracy"])
    page, root = page_on([in_store["relu"]])
    assert page.tabs.active == 0  # the α figure is drawn when its tab is opened
    page.tabs.active = 2
    assert columns(root, "The network against α", "ly_alpha")[0].tolist() == [0.5]
    accuracy = columns(root, "The network against α", "ly_net_accuracy")[0]
    assert np.allclose(accuracy, 100 * in_store["relu_k_accuracy"])
    assert legend_labels(root, "The network against α") == ["K=4, synthetic, 1 epoch"]
    assert not page.alpha_note.visible


def test_alpha_figure_without_relu_k_runs_says_how_to_make_some(tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))  # the shipped runs only: ReLU and sign·√
    assert lp.alpha_runs() == []
    texts = [el.text for el in lv.alpha_figure([]) if hasattr(el, "text")]
    assert any("explorer train cnn13 --rho relu_k --alpha 0.5" in t for t in texts)
    page = build_app("layers").page
    root = render(page)
    page.tabs.active = 2
    drawn = [str(t) for m in root.references() if isinstance(getattr(m, "data", None), dict)
             for t in m.data.get("text", [])]
    assert any("--rho relu_k --alpha 0.5" in t for t in drawn)
    assert page.alpha_note.visible and "`explorer train cnn13 --rho relu_k --alpha 0.5" in page.alpha_note.object


def copy_run(tiny, run_key: str, destination) -> str:
    run_id = tiny[run_key]
    shutil.copytree(tiny["root"] / "runs" / run_id, destination / "runs" / run_id)
    return run_id


def run_compute(page) -> None:
    """`page._on_compute` as the button runs it."""
    run_in_own_loop(page._on_compute(), timeout=600)


def test_compute_button_stores_the_analysis_with_progress(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    run_id = copy_run(tiny, "relu_k", tmp_path)  # a store of its own: the session's run stays without analysis
    page, root = page_on([run_id])
    assert page.missing == [run_id] and page.results == []
    assert page.compute_box.visible and not page.compute_button.disabled
    assert f"explorer analyse layers {run_id}" in page.compute_text.object
    assert "no analysis to show" in [str(t) for m in root.references() if isinstance(getattr(m, "data", None), dict)
                                     for t in m.data.get("text", [])]
    page.compute_svm = False  # quicker: the layers part alone
    seen: list = []
    page.progress.param.watch(lambda event: seen.append(event.new), "value")
    page.progress_text.param.watch(lambda event: seen.append(event.new), "object")
    run_compute(page)
    fractions = [v for v in seen if isinstance(v, int)]
    assert any(0 < v < 1000 for v in fractions), seen  # the bar moved while the worker ran
    assert any(isinstance(v, str) and v.startswith(f"Computing **{run_id}** (1 of 1)") for v in seen)
    assert page.missing == [] and not page.compute_box.visible and not page.progress.visible
    assert [r["run"] for r in page.results] == [run_id]
    stored = stored_layers(run_id)
    assert stored is not None and stored["svm_accuracy"] is None
    per_depth = [c for c in columns(root, "Separation", "ly_accuracy") if len(c) == 12]
    assert len(per_depth) == 2  # the 1-NN line and its dots: no SVM part was stored
    assert all(np.allclose(c, 100 * stored["nn1_accuracy"]) for c in per_depth)


def cifar10_run(store: RunStore) -> str:
    """A CNN13 configured for CIFAR-10 with (untrained) weights: enough to ask for its analysis."""
    config = make_config("cnn13", width=4, dataset="cifar10", epochs=1)
    run = store.create_or_open(config)
    model = build_model("cnn13", **config["model_config"])
    metrics = [{"epoch": 1, "train_loss": 2.3, "train_acc": 0.1, "test_loss": 2.3, "test_acc": 0.1}]
    run.save_checkpoint(model.state_dict(), {}, 1, metrics)
    return run.id


def test_missing_dataset_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    run_id = cifar10_run(RunStore())
    page, _ = page_on([run_id])
    assert page.missing == [run_id] and page.compute_box.visible
    assert "cannot be computed here: No CIFAR-10 location configured" in page.compute_text.object
    assert "EXPLORER_DATA" in page.compute_text.object and page.compute_button.disabled
    # Had the dataset gone between the check and the click: the analysis' own message, in the page.
    monkeypatch.setattr(lp, "dataset_problem", lambda run: None)
    page._show_runs_state()
    assert not page.compute_button.disabled
    run_compute(page)
    assert page.run_problems.visible
    assert "the analysis failed: No CIFAR-10 location configured" in page.run_problems.object
    assert "EXPLORER_DATA" in page.run_problems.object
    assert not page.alert.visible and not page.computing


def test_runs_without_or_with_damaged_weights_show_their_error(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    store = RunStore()
    empty = store.create_or_open(make_config("cnn13", seed=7, **TINY)).id  # created, no epoch finished
    damaged = copy_run(tiny, "relu", tmp_path)
    (tmp_path / "runs" / damaged / "weights.safetensors").write_bytes(b"not a safetensors file")
    offered = list(build_app("layers").page.param.runs.objects)
    assert empty in offered and damaged in offered  # offered, so that selecting one says what is wrong
    page, root = page_on([empty, damaged, lp.SHIPPED_CNN13])
    assert set(page.problems) == {empty, damaged}
    assert "has no weights yet" in page.problems[empty]
    assert "is damaged" in page.problems[damaged] and "weights.safetensors" in page.problems[damaged]
    assert page.run_problems.visible
    for run_id in (empty, damaged):
        assert run_id in page.run_problems.object
    # The other run is still shown, and the page keeps working.
    assert [r["run"] for r in page.results] == [lp.SHIPPED_CNN13]
    assert not page.alert.visible
    page.k = 31
    assert columns(root, "|Γᵏ| against depth at k = 31", "ly_count")
    page.runs = [lp.SHIPPED_CNN13]
    assert not page.run_problems.visible


def test_show_page_in_a_notebook(in_store):
    from explorer.pages.notebook import show_page

    row = show_page("layers", runs=[in_store["relu"]], k=7)
    root = row.get_root(bokeh.document.Document())
    assert row.page.controls in row.objects[0].objects
    assert plot(root, "Separation") and row.page.tabs.active == 0
    row.page.k = 8  # the k slider opens the tab of its figure
    assert row.page.tabs.active == 1 and plot(root, "|Γᵏ| against depth at k = 8")


def test_controls_open_the_tab_of_their_figures(in_store):
    page, root = page_on([in_store["relu"]])
    assert [name for name, _ in zip(lp.TABS, page.tabs)] == list(lp.TABS)
    page.rule = "authors"
    assert page.tabs.active == 1 and plot(root, "k-local support vectors")
    page.normalise = False
    assert page.tabs.active == 0 and plot(root, "Per-class PCA")
    page.k = 3
    assert page.tabs.active == 1
    page.runs = [lp.SHIPPED_CNN13]  # the page's own change of class (ship) leaves the tab as it is
    assert page.pca_class == "ship" and page.tabs.active == 1
