"""An error leaves the previous parameters' plots on screen: they are greyed out and the alert says so."""
from __future__ import annotations

import bokeh.document
import panel as pn
import pytest

from explorer.app import build_app
from explorer.pages.base import _FRAMES, STALE_STYLES, Page, figure


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def test_invalid_parameters_grey_out_the_plots_until_fixed():
    page = build_app("scattering").page
    root = pn.panel(page).get_root(bokeh.document.Document())
    panes = page.plot_panes()
    assert len(panes) >= 9 and not any(page.is_stale(p) for p in panes)
    page.size = 32
    page.J = 6  # 2^6 > 32: the plots keep J = 3
    assert page.alert.visible and "previous parameters" in page.alert.object
    assert all(page.is_stale(p) for p in panes)
    # The style reaches the Bokeh models the browser draws (each plot's figure: the plot and its caption).
    frames = [f for p in panes for f in _FRAMES[p]]
    models = [f._models[root.ref["id"]][0] for f in frames if root.ref["id"] in f._models]
    assert models and all(m.styles.get("filter") == STALE_STYLES["filter"] for m in models)
    page.J = 2
    assert not page.alert.visible
    assert not any(page.is_stale(p) for p in panes)
    assert all(m.styles.get("filter") == "none" for m in models)


def test_a_bad_image_greys_out_the_plots_of_the_previous_image():
    page = build_app("scattering").page
    pn.panel(page).get_root(bokeh.document.Document())
    page.upload.value = {"photo.png": b"this is not an image"}  # the plots still show the sample image
    assert page.alert.visible and all(page.is_stale(p) for p in page.plot_panes())


def test_pages_whose_errors_are_not_about_plots_keep_them_as_they_are():
    class FormPage(Page):
        errors_leave_plots_stale = False

    page = FormPage()
    page.plot = pn.pane.HoloViews(None)
    figure(page.plot, "a plot")
    page.show_error("Cannot start this job")
    assert page.alert.visible and page.alert.object == "Cannot start this job"
    assert not page.is_stale(page.plot)
