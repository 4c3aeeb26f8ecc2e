"""Every page's plots recompute their ranges when a parameter changes their extent (defect: the S1 grid kept
0°–105° after L went from 8 to 12, hiding 4 of 12 orientations). Checked on the rendered Bokeh models."""
from __future__ import annotations

import bokeh.document
import panel as pn
import pytest

from explorer.app import build_app

from plot_ranges import stale_ranges

# (page, successive parameter changes): each step changes the extent of some plots.
SCENARIOS = {
    "wavelets": [{"L": 16}, {"J": 6}, {"j": 5, "theta": 15}, {"J": 1, "L": 2}, {"xi0": 3.0, "sigma0": 2.0}],
    "scattering": [{"L": 12}, {"J": 2}, {"size": 128, "J": 5}, {"size": 32, "J": 1, "L": 4},
                   {"source": "synthetic pattern"}],
    "invariance": [{"J": 1}, {"size": 64}, {"L": 4}, {"J": 3}, {"image_name": "synthetic: grating"}],
    "reconstruction": [{"size": 64}, {"image_name": "synthetic: grating"}, {"size": 32}],
    "spectra": [{"effective": True}, {"colour": "red"}, {"j1": 1}, {"pair": (0, 1)}, {"rank": 511},
                {"effective": False, "colour": "all", "j1": "all", "pair": "all", "rank": 0}],
    "rotation": [{"m": 0}, {"m": 15, "rank": 511}, {"size": 300}, {"framing": "full", "m": 8}, {"rank": 0, "m": 1}],
    "thresholding": [{"keep": 0.0}, {"keep": 1.0}, {"mode": "theta_per_unit", "keep": 0.05},
                     {"mode": "band", "band": 0}, {"band": 4}, {"unit": 511, "j1": 1},
                     {"mode": "fourier_global", "keep": 0.2, "unit": 0, "j1": 0}],
    "layers": [{"k": 1}, {"k": 31}, {"rule": "authors"}, {"normalise": False}, {"pca_class": "cat"},
               {"runs": ["cnn13-44da76659d19", "cnn13-7eab578d09c7"]}, {"k": 5, "rule": "talk", "normalise": True}],
    "hierarchical": [{"layer": 1}, {"layer": 11}, {"image": 5}, {"layer": 2}],  # with an hcnn run: the test's own
}


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def render_page(slug: str):
    page = build_app(slug).page
    root = pn.panel(page).get_root(bokeh.document.Document())
    tabs = getattr(page, "tabs", None)
    return page, root, tabs


def check_all_tabs(page, root, tabs) -> list[str]:
    """Stale ranges on every tab (dynamic tabs render a tab's plots only while it is shown)."""
    problems = stale_ranges(root)
    if tabs is not None:
        for i in range(1, len(tabs)):
            tabs.active = i
            problems += stale_ranges(root)
        tabs.active = 0
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_ranges_follow_parameter_changes(slug):
    page, root, tabs = render_page(slug)
    assert check_all_tabs(page, root, tabs) == []
    for step in SCENARIOS[slug]:
        page.param.update(**step)
        assert not page.alert.visible, (step, page.alert.object)
        problems = check_all_tabs(page, root, tabs)
        assert problems == [], (step, problems)


def test_checker_sees_a_stale_overlay():
    """The checker itself: an overlay with axiswise=True keeps its first frame's ranges (HoloViews 1.23)."""
    import holoviews as hv
    import numpy as np
    import param

    class Width(param.Parameterized):
        n = param.Integer(8)

    state = Width()

    def frame(n, axiswise):
        image = hv.Image(np.ones((3, n)), bounds=(0, 0, n, 3)).opts(framewise=True, axiswise=axiswise)
        return image * hv.Bounds((0, 0, 1, 1))

    for axiswise, stale in ((True, True), (False, False)):
        state.n = 8
        pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(frame, n=state.param.n, axiswise=axiswise)),
                                 linked_axes=False)
        root = pane.get_root(bokeh.document.Document())
        state.n = 12
        assert bool(stale_ranges(root)) is stale


def test_runs_curves_follow_the_selected_run(tmp_path, monkeypatch):
    """The Runs page's accuracy and loss curves refit when another run (another loss scale) is selected."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    page, root, _ = render_page("runs")
    run_ids = [info.id for info in page.store.list()]
    assert len(run_ids) >= 2  # the shipped runs
    for run_id in run_ids + run_ids[:1]:
        page.selected_run = run_id
        assert stale_ranges(root) == [], run_id


def test_hybrids_figures_follow_the_grid_and_the_models(tmp_path, monkeypatch):
    """The Hybrids page's accuracy and gain figures refit to another grid (CIFAR-10 sizes and the "all" point,
    then a synthetic grid of 20 and 40 images), fewer models, the seeds and the talk's figures hidden."""
    from test_hybrids_page import CNN, EXAMPLE, SCAT, row, summary, write_summaries

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    write_summaries(tmp_path, summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE),
                    summary("quick-synthetic-bbbbbbbbbbbb", [row("scat_linear", SCAT, 20, [0.9, 1.0]),
                                                             row("cnn13", "cnn13 K=4 relu", 40, [0.1, 0.2])],
                            dataset="synthetic"))
    page, root, _ = render_page("hybrids")
    assert stale_ranges(root) == []
    for step in ({"models": [CNN]}, {"show_seeds": False}, {"show_reported": False}, {"models": [SCAT, CNN]},
                 {"baseline": SCAT}, {"grid": "small-quick|synthetic|all"}, {"show_seeds": True},
                 {"grid": "small-quick|cifar10|all"}, {"show_reported": True}):
        page.param.update(**step)
        assert not page.alert.visible, (step, page.alert.object)
        assert stale_ranges(root) == [], step
