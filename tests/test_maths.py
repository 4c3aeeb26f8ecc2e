"""Formulas render: every Markdown pane and plot title of every page writes maths between $$…$$ (MathJax, loaded
by the app), never as raw TeX such as ψ_{j,θ} or 2^J, and never with \\| (Markdown turns it into |)."""
from __future__ import annotations

import re

import bokeh.document
import panel as pn
import pytest
from bokeh.models import Plot

from explorer.app import build_app
from explorer.pages import PAGES

RAW_TEX = re.compile(r"_\{|\^\{|\^J\b|\\[a-zA-Z]+|_J\b")
# Markdown text that is not TeX although it looks like it: code spans and links.
NOT_TEX = re.compile(r"`[^`]*`|\]\([^)]*\)")


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def raw_tex(text: str) -> list[str]:
    """Pieces of `text` outside $$…$$ that look like TeX."""
    outside = NOT_TEX.sub("", re.sub(r"\$\$.*?\$\$", "", text, flags=re.DOTALL))
    return RAW_TEX.findall(outside)


def test_raw_tex_is_found():
    assert raw_tex("The wavelets ψ_{j,θ} and φ_J") == ["_{", "_J"]
    assert raw_tex(r"The wavelets $$\psi_{j,\theta}$$ and `EXPLORER_DATA`") == []
    assert raw_tex(r"S_J x at 2^J pixels") == ["_J", "^J"]


@pytest.mark.parametrize("slug", [p.slug for p in PAGES])
def test_every_page_writes_its_formulas_as_maths(slug):
    page = build_app(slug).page
    root = pn.Column(page, page.controls if page.controls is not None else None).get_root(
        bokeh.document.Document())
    texts = [m.object for m in pn.Column(page.__panel__(), page.controls).select(pn.pane.Markdown)
             if isinstance(m.object, str)]
    assert texts
    problems = {t[:80]: raw_tex(t) for t in texts if raw_tex(t)}
    assert problems == {}
    for text in texts:
        assert r"\|" not in text, "write ‖ as \\Vert: Markdown turns \\| into |"
    titles = [p.title.text for p in root.select({"type": Plot}) if p.title is not None and p.title.text]
    assert [t for t in titles if "_{" in t or "$" in t] == []  # Bokeh titles: plain Unicode
