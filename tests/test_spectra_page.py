"""The SLE spectra page built without a browser: titles say which weights and selection are shown, the Ω₁ bars
are the analysis' Ω₁/ΣΩ₁, the unit slider follows the invariance ranking, and a store without SLE says so."""
from __future__ import annotations

import functools
import html

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Plot

from explorer.analysis import spectra as sp
from explorer.app import build_app
from explorer.pages.spectra import SHIPPED_SLE
from explorer.views.spectra import to_signed

from bokeh_root import render, titles

EFFECTIVE = "effective W₁·diag(1/σ)"


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


@functools.lru_cache(maxsize=1)
def model():
    from explorer.runs import RunStore

    return RunStore().load(SHIPPED_SLE).build_model("cpu")


def all_titles(page, root) -> list[str]:
    """The titles of both tabs (dynamic tabs draw only the one shown)."""
    out = titles(root)
    page.tabs.active = 1
    out += titles(root)
    page.tabs.active = 0
    return out


def one(found: list[str], start: str) -> str:
    hits = [t for t in found if t.startswith(start)]
    assert len(hits) == 1, (start, found)
    return hits[0]


def omega1_shown(root) -> tuple[list[str], np.ndarray]:
    """The Ω₁ bars' frequencies and heights, read from the Bokeh data source."""
    plot = next(p for p in root.select({"type": Plot}) if p.title.text.startswith("Ω₁/ΣΩ₁"))
    source = next(r for r in plot.select({"type": GlyphRenderer})).data_source
    return [str(x) for x in source.data["o1_omega"]], np.asarray(source.data["o1_share"], np.float64)


@pytest.fixture
def page_root():
    page = build_app("spectra").page
    return page, render(page)


def test_titles_at_defaults(page_root):
    page, root = page_root
    assert page.run == SHIPPED_SLE and not page.alert.visible, page.alert.object
    found = all_titles(page, root)
    assert one(found, "Ω₁/ΣΩ₁") == "Ω₁/ΣΩ₁ of W₁, all colours, all j1"
    assert one(found, "Ω₂/ΣΩ₂ raw") == "Ω₂/ΣΩ₂ raw (θ1, θ2)\nW₁, all colours, all (j1, j2)"
    assert one(found, "Ω₂/ΣΩ₂ re-indexed") == "Ω₂/ΣΩ₂ re-indexed (θ1, θ2−θ1)\nW₁, all colours, all (j1, j2)"
    _, unit = page.unit_of(page.run, False, 0)
    assert one(found, "Invariance of") == f"Invariance of 512 units of W₁\nunit {unit} is rank 0"
    assert one(found, f"Unit {unit}: r = |w(θ1)|") == f"Unit {unit}: r = |w(θ1)|; ● w ≥ 0, ○ w < 0\nW₁, all colours, all j1"
    assert one(found, f"Unit {unit}: shares") == f"Unit {unit}: shares of |ŵ(ω_θ1)|²\nW₁, all colours, all j1"
    assert len(found) == 6


def test_parameters_change_the_right_titles(page_root):
    page, root = page_root
    before = all_titles(page, root)

    page.effective = True
    found = all_titles(page, root)
    assert all(EFFECTIVE in t for t in found), found

    page.colour = "red"
    found = all_titles(page, root)
    assert one(found, "Ω₁/ΣΩ₁") == f"Ω₁/ΣΩ₁ of {EFFECTIVE}, red, all j1"
    assert one(found, "Ω₂/ΣΩ₂ raw").endswith(f"{EFFECTIVE}, red, all (j1, j2)")
    assert sum("red, " in t for t in found) == 5  # every figure but the ranking (all colours)

    page.j1 = 1
    after_j1 = all_titles(page, root)
    assert one(after_j1, "Ω₁/ΣΩ₁") == f"Ω₁/ΣΩ₁ of {EFFECTIVE}, red, j1=1"
    assert [t for t in after_j1 if t.startswith("Ω₂")] == [t for t in found if t.startswith("Ω₂")]
    assert sum("red, j1=1" in t for t in after_j1) == 3  # Ω₁, the polar plot, the unit's DFT

    page.pair = (0, 1)
    found = all_titles(page, root)
    assert one(found, "Ω₂/ΣΩ₂ raw").endswith("red, (j1, j2)=(0, 1)")
    assert one(found, "Ω₂/ΣΩ₂ re-indexed").endswith("red, (j1, j2)=(0, 1)")

    last = page.param.rank.bounds[1]
    _, unit = page.unit_of(page.run, True, last)
    page.rank = last
    found = all_titles(page, root)
    assert one(found, "Invariance of") == f"Invariance of 512 units of {EFFECTIVE}\nunit {unit} is rank {last}"
    assert one(found, f"Unit {unit}: r = |w(θ1)|").endswith(f"\n{EFFECTIVE}, red, j1=1")
    assert one(found, f"Unit {unit}: shares").endswith(f"\n{EFFECTIVE}, red, j1=1")
    assert not page.alert.visible, page.alert.object
    assert found != before


@pytest.mark.parametrize("effective, colour, j1", [(False, "all", "all"), (True, "red", 1), (False, "blue", 0)])
def test_omega1_bars_are_the_analysis_fractions(page_root, effective, colour, j1):
    page, root = page_root
    page.param.update(effective=effective, colour=colour, j1=j1)
    omegas, shown = omega1_shown(root)
    L = 8
    assert omegas == [str(w) for w in range(-L // 2, L // 2)]  # signed frequencies, said on the axis
    assert shown.sum() == pytest.approx(1.0, abs=1e-9)
    expected = sp.omega1(sp.first_layer(model(), effective=effective), colour=None if colour == "all" else colour,
                         j1=None if j1 == "all" else j1)
    np.testing.assert_allclose(shown, to_signed(expected), rtol=1e-6, atol=1e-9)
    assert omegas[int(np.argmax(shown))] == "0"  # the finding: the energy sits at ω = 0


@pytest.mark.parametrize("effective", [False, True])
def test_unit_slider_follows_the_invariance_scores(page_root, effective):
    page, _ = page_root
    page.effective = effective
    scores = sp.invariance_scores(sp.first_layer(model(), effective=effective))
    K = len(scores)
    assert page.param.rank.bounds == (0, K - 1)
    units = [page.unit_of(page.run, effective, r)[1] for r in range(K)]
    assert sorted(units) == list(range(K))
    assert np.all(np.diff(scores[units]) <= 0)  # rank 0 is the most invariant unit
    assert units[0] == int(np.argmax(scores))
    for rank in (0, 7, K - 1):
        page.rank = rank
        assert f"unit **{units[rank]}**" in page.rank_note.object
        assert f"{scores[units[rank]]:.3f}" in page.rank_note.object
    formatter = page.rank_slider.format
    assert formatter.args["units"] == units
    assert page.rank_slider.label == ("Rank (effective)" if effective else "Rank (W₁)")


def test_a_store_without_sle_runs_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.setattr("explorer.runs.store.SHIPPED_ROOT", tmp_path / "no-shipped-runs")
    template = build_app("spectra")
    page = template.page
    root = render(page)
    render(page.controls)
    assert page.run is None and not page.has_runs
    assert not page.alert.visible
    from panel.models.markup import HTML

    shown = " ".join(html.unescape(m.text) for m in root.references() if isinstance(m, HTML) and m.visible)
    assert page.note.visible and "explorer train sle" in page.note.object
    assert titles(root) == [] and page.plot_panes() == []
    assert "SLE spectra" in shown and "explorer train sle" in shown  # the intro and the note
