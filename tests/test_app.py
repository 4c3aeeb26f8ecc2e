"""The app shell: page lookup by URL."""
from __future__ import annotations

import panel as pn
import pytest

from explorer.app import build_app


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


@pytest.mark.parametrize("slug", ["Scattering", "SCATTERING", " scattering "])
def test_page_slug_ignores_case_and_spaces(slug):
    template = build_app(slug)
    assert type(template.page).__name__ == "ScatteringPage"
    assert not any(isinstance(obj, pn.pane.Alert) and "There is no page" in str(obj.object)
                   for obj in template.main)


def test_wavelets_page_takes_both_shape_parameters_at_once():
    """A notebook user may set J and L in one call: the bounds follow both."""
    page = build_app("wavelets").page
    page.param.update(J=2, L=4, j=1, theta=3)
    page.param.update(J=1, L=2)
    assert (page.j, page.theta) == (0, 1)
    assert page.param.theta.bounds == (0, 1)
