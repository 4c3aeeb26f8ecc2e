"""The rotation page built without a browser: titles say the angle, unit and response shown; the scatter's
points are the analysis' responses; m at both ends of its range; the note says exact or interpolated; a
structured SLE (band 0, trained here on the synthetic set) shows every unit invariant at 90°; a store without
SLE runs and a failing computation say so."""
from __future__ import annotations

import html

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer

from explorer.analysis import unit_rotation as ur
from explorer.app import build_app
from explorer.pages.rotation import angle_text
from explorer.pages.spectra import SHIPPED_SLE

from bokeh_root import plot, render, titles

WHAT = "W₁ pre-activation, spatial mean"


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def column(root, start: str, name: str) -> np.ndarray:
    """A column of the data shown by the plot whose title starts with `start`: of its longest renderer that
    has it (the points, not the y = x line or the red marker)."""
    found = [r.data_source.data[name] for r in plot(root, start).select({"type": GlyphRenderer})
             if name in r.data_source.data]
    assert found, f"no column {name} in {start!r}"
    return np.asarray(max(found, key=len), np.float64)


@pytest.fixture
def page_root():
    page = build_app("rotation").page
    return page, render(page)


def test_titles_and_notes_at_defaults(page_root):
    page, root = page_root
    assert page.run == SHIPPED_SLE and not page.alert.visible, page.alert.object
    assert page.m == 4 and page.param.m.bounds == (0, 15)  # L = 8: 90° by default
    _, unit = page.unit_of(page.run, 0)
    found = titles(root)
    assert f"Unit {unit}: response before vs after 90° (m = 4)\n{WHAT}, 100 images" in found
    assert "Rotated by 90° (exact, np.rot90)\ntest images 0 and 1 of the batch" in found
    change = page.responses.change
    rank = int(np.flatnonzero(np.argsort(change, kind="stable") == unit)[0])
    assert f"Change at 90° of 512 units\nunit {unit}: rank {rank}, change {change[unit]:.3g}" in found
    rho = ur.rank_correlation(page.ranking(page.run)[0], change)
    assert f"Measured change vs spectral score\nSpearman ρ = {rho:.2f}" in found and rho < 0
    assert len(found) == 4
    assert "**exact**" in page.angle_note.object and "θ ↦ θ + 4 (mod 8)" in page.angle_note.object
    assert "300 CIFAR-10 test images shipped with the package" in page.source_note.object
    assert f"unit **{unit}**" in page.unit_note.object


@pytest.mark.parametrize("m", [0, 1, 15])
def test_scatter_points_are_the_analysis_responses(page_root, m):
    page, root = page_root
    page.param.update(m=m, rank=7)
    assert not page.alert.visible, page.alert.object
    _, unit = page.unit_of(page.run, 7)
    expected = ur.run_responses(SHIPPED_SLE, m, 100)
    start = f"Unit {unit}: response before vs after {ur.degrees(m, 8):g}° (m = {m})"
    np.testing.assert_allclose(column(root, start, "rot_before"), expected.before[:, unit], rtol=1e-12)
    np.testing.assert_allclose(column(root, start, "rot_after"), expected.after[:, unit], rtol=1e-12)
    sorted_change = column(root, "Change at", "rotk_change")
    np.testing.assert_allclose(sorted_change, np.sort(expected.change), rtol=1e-12)
    if m == 0:  # no rotation: every point on the line, every change 0
        assert np.array_equal(expected.before, expected.after) and sorted_change.max() == 0
        assert "no rotation" in page.angle_note.object
    else:
        assert sorted_change.max() > 0.5


def test_the_note_says_exact_or_interpolated_for_every_m(page_root):
    page, _ = page_root
    for m in range(16):
        note = angle_text(m, 8, "disk")
        assert note.startswith(f"**m = {m}: {m * 22.5:g}°**"), note
        if m == 0:
            assert "no rotation" in note
        elif m % 4 == 0:
            assert "**exact**" in note and "interpolated" not in note
            assert ("not at all" in note) == (m == 8)  # 180°: θ and θ + π are one orientation
        else:
            assert "**interpolated**" in note and "exact" not in note
    for m in (15, 0):  # the page shows it, at both ends of the slider
        page.m = m
        assert page.angle_note.object == angle_text(m, 8, "disk")
    page.param.update(framing="full", m=4)
    assert page.angle_note.object == angle_text(4, 8, "full") and "is not mapped onto itself" in angle_text(4, 8, "full")
    assert not page.alert.visible, page.alert.object


def test_units_and_batch_follow_the_controls(page_root):
    page, root = page_root
    last = page.param.rank.bounds[1]
    assert last == 511
    _, unit = page.unit_of(page.run, last)
    page.param.update(rank=last, size=300)
    found = titles(root)
    assert any(t.startswith(f"Unit {unit}: response before vs after 90°") and t.endswith("300 images") for t in found)
    assert "Batch: 300 images" in page.source_note.object
    # The configured CIFAR-10 test set is asked for; without one the shipped images are used, and said so.
    page.source = True
    assert page.responses.source in page.source_note.object


@pytest.fixture(scope="module")
def structured_store(tmp_path_factory):
    """A store with a tiny structured SLE (sle_fourier, band 0, L = 4) trained on the synthetic stripes."""
    from explorer.runs import RunStore
    from explorer.training import make_config, train

    folder = tmp_path_factory.mktemp("store")
    config = make_config("sle_fourier", band=0, widths=[8], L=4, dataset="synthetic", epochs=1,
                         limit_train=64, limit_test=64, batch_size=16)
    run = train(config, store=RunStore(folder / "runs", shipped=False), progress=False)
    return folder, run.id


def test_the_structured_sle_shows_every_unit_invariant_at_90_degrees(structured_store, monkeypatch):
    folder, run_id = structured_store
    monkeypatch.setenv("EXPLORER_STORE", str(folder))
    page = build_app("rotation").page
    root = render(page)
    assert run_id in page.param.run.objects.values() and SHIPPED_SLE in page.param.run.objects.values()
    page.run = run_id
    assert not page.alert.visible, page.alert.object
    assert page.param.m.bounds == (0, 7)  # L = 4
    page.m = 2  # 90°
    change = column(root, "Change at 90° of 8 units", "rotk_change")
    assert len(change) == 8 and change.max() < 1e-4
    before = column(root, "Unit ", "rot_before")
    np.testing.assert_allclose(column(root, "Unit ", "rot_after"), before, atol=1e-4 * np.ptp(before))
    page.m = 7  # the last m: 315°, interpolated: no longer exact
    assert "**interpolated**" in page.angle_note.object
    assert column(root, "Change at 315° of 8 units", "rotk_change").max() > 1e-3


def test_a_store_without_sle_runs_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.setattr("explorer.runs.store.SHIPPED_ROOT", tmp_path / "no-shipped-runs")
    page = build_app("rotation").page
    root = render(page)
    render(page.controls)
    assert page.run is None and not page.has_runs and not page.alert.visible
    from panel.models.markup import HTML

    shown = " ".join(html.unescape(m.text) for m in root.references() if isinstance(m, HTML) and m.visible)
    assert page.note.visible and "explorer train sle" in page.note.object
    assert titles(root) == [] and page.plot_panes() == []
    assert "Rotation invariance in learned weights" in shown and "explorer train sle" in shown


def test_a_failing_computation_shows_in_the_alert_and_the_page_recovers(page_root, monkeypatch):
    page, root = page_root
    before = titles(root)

    def broken(*args, **kwargs):
        raise ValueError("cannot load run sle-695ad4593697: damaged weights")

    monkeypatch.setattr(ur, "run_responses", broken)
    page.m = 5
    assert page.alert.visible and "Cannot compute the responses: cannot load run" in page.alert.object
    assert all(page.is_stale(pane) for pane in page.plot_panes())
    assert titles(root) == before  # the last good frame stays, greyed
    monkeypatch.undo()
    page.m = 6
    assert not page.alert.visible and not any(page.is_stale(pane) for pane in page.plot_panes())
    assert any(t.startswith("Change at 135°") for t in titles(root))
