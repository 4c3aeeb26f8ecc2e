"""The roto-translation page built without a browser: its plots show the analysis' numbers, its parameters go to
their extremes (the smallest image with J at its largest, L = 16 with K at its largest, every angle), bad
parameters are said in the alert and the page keeps working, and the classification panel reads the stored
results (none, some, damaged, no package)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, VBar

from explorer.analysis import roto as ra
from explorer.app import build_app
from explorer.data import sources
from explorer.pages.roto import NO_PACKAGE, RotoPage

from bokeh_root import plot, render, titles
from plot_ranges import stale_ranges


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def columns(root, start: str, name: str) -> list[np.ndarray]:
    return [np.asarray(r.data_source.data[name]) for r in plot(root, start).select({"type": GlyphRenderer})
            if name in r.data_source.data]


def every_tab(page, root) -> list[str]:
    """Titles and stale ranges over every tab (dynamic tabs draw a tab's plots only while it is shown)."""
    shown, problems = [], []
    for i in range(len(page.tabs)):
        page.tabs.active = i
        shown += titles(root)
        problems += stale_ranges(root)
    page.tabs.active = 0
    assert problems == [], problems
    return shown


@pytest.fixture
def page_root():
    page = build_app("roto").page
    assert isinstance(page, RotoPage)
    return page, render(page)


def test_defaults_show_the_analysis(page_root):
    page, root = page_root
    assert not page.alert.visible, page.alert.object
    shown = every_tab(page, root)
    assert "Re h along θ1 (L = 8, K = 2)" in shown
    assert any(t.startswith("Angular filters in Fourier (L = 8, K = 2)") for t in shown)
    assert "Angular spectrum E(θ2, ω) of z\n(j1, j2) = (0, 1), θ2 = 0° framed\nmean over 1024 positions" in shown
    expected = ra.rotation_comparison(sources.named_image("camera", 64), 90.0, 3, 8, 2, 0, 1)
    assert (f"z moves along θ1, (j1, j2) = (0, 1)\nrotated by 90° (exact): change "
            f"{100 * expected.profile_change:.2g} %\nshifted back by m = 4: "
            f"{100 * expected.profile_change_undone:.2g} %") in shown
    assert expected.profile_change > 0.1 and expected.spectrum_change < 1e-3  # the teaching point
    # The plots draw the analysis' numbers.
    page.tabs.active = 1
    s = expected.original
    (heat,) = columns(root, "Angular spectrum E", "image")
    share = np.fft.fftshift(s.energy / s.energy.sum(), axes=-1)  # rows θ2 (Bokeh's row 0 at the bottom)
    np.testing.assert_allclose(heat[0], np.maximum(share, heat[0].min()), rtol=1e-6)
    (profile, *_) = columns(root, "z along θ1 at θ2 = 0°", "pr_energy")
    np.testing.assert_allclose(profile, s.theta_energy[0], rtol=1e-12)
    page.theta2 = 5
    (bars,) = columns(root, "Energy per angular filter\nθ2 = 112.5°", "fe_energy")
    np.testing.assert_allclose(bars, s.filter_energy[:, 5], rtol=1e-12)
    page.tabs.active = 2
    drawn = {round(float(r.data_source.data["sc_x"][0]), 2): np.asarray(r.data_source.data["sc_y1"])
             for r in plot(root, "Energy per angular scale").select({"type": GlyphRenderer})}
    np.testing.assert_allclose(drawn[-0.38], s.scale_energy, rtol=1e-12)  # the left bars: the image
    np.testing.assert_allclose(drawn[0.02], expected.turned.scale_energy, rtol=1e-12)
    page.tabs.active = 0
    assert not page.alert.visible, page.alert.object


@pytest.mark.slow
def test_extremes(page_root):
    page, root = page_root
    # The smallest image with J at its largest for it (2^J ≤ 16), the last pair, the last θ2.
    page.param.update(size=16, J=4)
    assert not page.alert.visible, page.alert.object
    assert list(page.param.pair.objects.values()) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    page.param.update(pair=(2, 3), theta2=7)
    shown = every_tab(page, root)
    assert "Angular spectrum E(θ2, ω) of z\n(j1, j2) = (2, 3), θ2 = 157.5° framed\nmean over 4 positions" in shown
    assert not page.alert.visible, page.alert.object
    # L = 16 with K at its largest (2^4 ≤ 16); θ2's range and its slider follow L.
    page.param.update(size=32, J=2, L=16, K=4)
    assert page.pair == (0, 1) and page.param.theta2.bounds == (0, 15)
    assert page.theta2_slider.label == "θ2 index (0–15)"
    page.theta2 = 15
    shown = every_tab(page, root)
    assert "|h| along θ1 (L = 16, K = 4)" in shown
    assert any(t.startswith("Angular spectrum E(θ2, ω) of z\n(j1, j2) = (0, 1), θ2 = 168.75°") for t in shown)
    assert page.result.original.filter_energy.shape == (9, 16)
    # Every angle: both ends, an exact and an interpolated one.
    for angle in (0.0, 360.0, 270.0, 352.5):
        page.angle = angle
        assert not page.alert.visible, page.alert.object
        assert page.result.degrees == angle and page.result.exact == (angle % 90 == 0)
    assert page.result.shift == round(352.5 / (180 / 16)) % 16
    page.window = False
    assert not page.result.windowed and not page.alert.visible
    every_tab(page, root)


@pytest.mark.parametrize("change, words", [
    (dict(L=4, K=3), "angular_scales ≤ 2"),
    (dict(size=16, J=5), "smaller than 2^J = 32: use J ≤ 4"),
    (dict(size=32, J=6), "smaller than 2^J = 64: use J ≤ 5"),
])
def test_bad_parameters_are_said_and_the_page_keeps_working(page_root, change, words):
    page, root = page_root
    page.tabs.active = 2
    before = titles(root)
    page.param.update(**change)
    assert page.alert.visible and words in page.alert.object, page.alert.object
    assert "previous parameters" in page.alert.object
    assert all(page.is_stale(p) for p in page.plot_panes())
    assert titles(root) == before  # the plots keep their last good frame
    page.param.update(size=64, J=3, L=8, K=2)
    assert not page.alert.visible, page.alert.object
    assert not any(page.is_stale(p) for p in page.plot_panes())
    page.angle = 45.0
    assert any(t.startswith("z moves along θ1, (j1, j2) = (0, 1)\nrotated by 45° (interpolated)") for t in titles(root))


def test_a_failing_computation_is_said_and_the_next_choice_works(page_root, monkeypatch, capsys):
    page, root = page_root
    real = ra.rotation_comparison

    def fails(image, degrees, *args, **kwargs):
        if degrees == 30.0:
            raise MemoryError("out of memory for the spectra")
        if degrees == 60.0:
            raise KeyError("a bug")
        return real(image, degrees, *args, **kwargs)

    monkeypatch.setattr(ra, "rotation_comparison", fails)
    page.tabs.active = 2  # the rotation's tab
    page.angle = 30.0
    assert page.alert.visible and page.alert.object.startswith(
        "Cannot compute the angular spectrum: out of memory for the spectra"), page.alert.object
    page.angle = 60.0
    assert "Cannot compute the angular spectrum: Unexpected error: KeyError('a bug')" in page.alert.object
    assert "KeyError: 'a bug'" in capsys.readouterr().err  # a bug's traceback goes to the server's log
    page.angle = 45.0
    assert not page.alert.visible, page.alert.object
    assert page.result.degrees == 45.0
    assert any(t.startswith("z moves along θ1, (j1, j2) = (0, 1)\nrotated by 45° (interpolated)") for t in titles(root))


def test_the_pair_and_theta2_follow_J_and_L(page_root):
    page, _ = page_root
    page.J = 4
    page.pair = (2, 3)
    page.J = 2
    assert page.pair == (0, 1) and list(page.param.pair.objects.values()) == [(0, 1)]
    page.J = 3
    page.pair = (1, 2)
    page.J = 4
    assert page.pair == (1, 2)  # still a pair of J = 4: kept
    page.theta2 = 7
    page.L = 4
    assert page.theta2 == 3 and page.theta2_slider.format.args["L"] == 4
    assert not page.alert.visible, page.alert.object


def stored(representation, method, accuracy, finished, shipped=False):
    from explorer.classify.results import ClassifyResult

    config = {"representation": representation, "method": method, "J": 3, "L": 8, "image_size": 32, "C": 50.0,
              "train_size": 1000, "test_size": 10000, **({"K": 2, "Q": 1} if representation == "roto" else {})}
    metrics = {"test_accuracy": accuracy, "train_accuracy": 1.0, "sigma": 12.5, "seconds": {"fit": 3.0}}
    # `shipped` arrived in the results store after this page was written: passed only where it exists.
    extra = {"shipped": shipped} if "shipped" in {f.name for f in dataclasses.fields(ClassifyResult)} else {}
    return ClassifyResult(f"{representation}_{method}-0123456789ab", config, metrics, {"finished_at": finished},
                          Path("/nonexistent"), **extra)


def bar_heights(root) -> np.ndarray:
    (bars,) = [r.data_source.data["cl_accuracy"] for r in plot(root, "Stored classification").select(
        {"type": GlyphRenderer}) if isinstance(r.glyph, VBar)]
    return np.asarray(bars, np.float64)


def test_classification_panel(page_root, monkeypatch):
    from explorer.classify import results

    page, root = page_root
    page.tabs.active = 3
    monkeypatch.setattr(results, "damaged_results", lambda root=None: [])
    # No result stored (nor shipped): the panel says which command makes them, and shows no empty chart.
    monkeypatch.setattr(results, "list_results", lambda root=None, shipped=True: [])
    page.reload_button.clicks += 1
    assert page.results_rows == [] and page.classify_note.visible
    assert "`explorer classify svm`" in page.classify_note.object
    assert not page.classify_bars_frame.visible and not page.classify_table_frame.visible
    found = [stored("roto", "exact", 0.70, "2026-01-02T10:00:00+0000"),
             stored("translation", "exact", 0.65, "2026-01-02T09:00:00+0000"),
             stored("roto", "exact", 0.10, "2025-01-01T00:00:00+0000")]  # older: not shown
    monkeypatch.setattr(results, "list_results", lambda root=None, shipped=True: found)
    page.reload_button.clicks += 1
    assert not page.classify_note.visible and page.classify_bars_frame.visible
    assert [(r["representation"], r["test_accuracy"]) for r in page.results_rows] == [("roto", 0.70),
                                                                                        ("translation", 0.65)]
    np.testing.assert_allclose(bar_heights(root), [70.0, 65.0])
    table = page.classify_table_pane.object
    assert list(table.dimension_values("ct_test_accuracy")) == ["70.00 %", "65.00 %"]
    assert list(table.dimension_values("ct_representation")) == ["roto-translation", "translation"]
    if "shipped" in page.results_rows[0]:
        assert list(table.dimension_values("ct_shipped")) == ["yours", "yours"]
    assert "ct_K" in [d.name for d in table.dimensions()]
    # Only results shipped with the package: shown, and said to be so.
    if "shipped" in {f.name for f in dataclasses.fields(results.ClassifyResult)}:
        monkeypatch.setattr(results, "list_results",
                            lambda root=None, shipped=True: [stored("roto", "exact", 0.66, "x", shipped=True)])
        page.load_results()
        assert page.classify_note.visible and "ship with the package" in page.classify_note.object
        np.testing.assert_allclose(bar_heights(root), [66.0])
    # A damaged folder is named, beside the results that could be read.
    damaged = [results.DamagedResult("roto_exact-ffffffffffff", Path("/x"), "config.json is not JSON")]
    monkeypatch.setattr(results, "list_results", lambda root=None, shipped=True: found)
    monkeypatch.setattr(results, "damaged_results", lambda root=None: damaged)
    page.load_results()
    assert page.classify_note.visible and page.classify_note.alert_type == "warning"
    assert "roto_exact-ffffffffffff" in page.classify_note.object and len(page.results_rows) == 2
    # A store that cannot be read at all, and an installation without the package: said, page alive.
    monkeypatch.setattr(results, "list_results",
                        lambda root=None, shipped=True: (_ for _ in ()).throw(OSError("disk gone")))
    page.load_results()
    assert page.classify_note.alert_type == "danger" and "disk gone" in page.classify_note.object
    import explorer.classify

    monkeypatch.setitem(sys.modules, "explorer.classify.results", None)  # `import` raises ImportError
    monkeypatch.delattr(explorer.classify, "results")
    page.load_results()
    assert page.classify_note.object == NO_PACKAGE and page.results_rows == []
    assert not page.classify_bars_frame.visible
    assert not page.alert.visible, page.alert.object
