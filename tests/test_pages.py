"""Pages built without a browser: every registered page renders a Bokeh model tree; state changes flow to views."""
from __future__ import annotations

import threading
import time

import numpy as np
import panel as pn
import pytest

from explorer.app import build_app
from explorer.pages import PAGES

from bokeh_root import render
from own_loop import run_in_own_loop


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


@pytest.mark.parametrize("slug", [p.slug for p in PAGES])
def test_every_page_renders(slug):
    template = build_app(slug)
    render(template.page)
    assert not template.page.alert.visible, template.page.alert.object
    if template.page.controls is not None:
        render(template.page.controls)


def test_unknown_page_falls_back_to_home():
    template = build_app("nope")
    assert type(template.page).__name__ == "HomePage"


def titles(root) -> list[str]:
    out = []
    for m in root.references():
        title = getattr(m, "title", None)
        if title is not None and hasattr(title, "text") and title.text:
            out.append(title.text)
    return sorted(out)  # Bokeh collects models in a set: their order follows memory addresses


def drawn_texts(root) -> list[str]:
    """Texts drawn inside plots (hv.Text, hv.Labels): the "text" columns of the data sources."""
    return [str(t) for m in root.references() if isinstance(getattr(m, "data", None), dict)
            for t in m.data.get("text", [])]


def test_wavelets_state_drives_titles():
    page = build_app("wavelets").page
    root = render(page)
    assert any("θ=0°" in t for t in titles(root))
    page.theta = 2
    assert any("θ=45°" in t for t in titles(root))
    # One plot for Re, Im and |ψ| and none for the Fourier centre: a θ move redraws three plots
    # (space, Fourier, the tiling's red dot), not five.
    space = [t for t in titles(root) if t.startswith("Re ψ")]
    assert space == ["Re ψ · Im ψ · |ψ|, j=0, θ=45°"], titles(root)
    assert any(t.startswith("|ψ̂| in Fourier, j=0, θ=45°, centre (1.67, 1.67)") for t in titles(root))
    page.J = 2  # j stays valid
    page.j = 1
    page.J = 1
    assert page.j == 0 and page.param.j.bounds == (0, 0)


def visible_texts(root) -> list[str]:
    """The texts of the Markdown panes and alerts shown (HTML models; Panel sends them escaped)."""
    import html

    from panel.models.markup import HTML
    return [html.unescape(m.text) for m in root.references() if isinstance(m, HTML) and m.visible]


@pytest.mark.parametrize("slug,attribute,name,new_L", [("wavelets", "theta_slider", "θ", 16),
                                                     ("scattering", "theta1_slider", "θ1", 12)])
def test_theta_sliders_show_index_and_degrees_following_L(slug, attribute, name, new_L):
    """A θ slider writes "2 (45°)" (formatted in the browser, so a drag shows it at once) and the degrees
    follow L; its title changes with L too, which is what makes Bokeh redraw the value with the new format."""
    from bokeh.models import CustomJSTickFormatter

    page = build_app(slug).page
    slider = getattr(page, attribute)
    assert isinstance(slider.format, CustomJSTickFormatter)
    assert slider.format.args == {"L": 8} and "tick * 180 / L" in slider.format.code
    assert slider.label == f"{name} index (0–7)"
    root = render(page.controls)
    page.L = new_L
    title = f"{name} index (0–{new_L - 1})"
    assert slider.format.args == {"L": new_L} and slider.label == title
    bk = [m for m in root.references() if getattr(m, "title", None) == title]
    assert len(bk) == 1 and bk[0].format.args == {"L": new_L} and bk[0].end == new_L - 1  # what the browser gets


def test_wavelets_page_warns_when_the_bank_may_expand_distances():
    """The page teaches that max A(ω) ≤ 1 makes the transform non-expansive: above 1 it says what that means
    and how to fix it, and says nothing for the default bank at J = 2 (1.00006)."""
    from explorer.views.wavelets import display_bank

    page = build_app("wavelets").page
    root = render(page)
    expanding = lambda: [t for t in visible_texts(root) if "may expand distances" in t]
    page.J = 2
    assert expanding() == []
    page.param.update(J=3, xi0=1.5, slant=1.0)  # the advanced sliders: max A ≈ 1.9
    lp_max = display_bank(3, 8, 0.8, 1.5, 1.0).lp_max
    assert lp_max > 1.5
    shown = expanding()
    assert len(shown) == 1 and f"{lp_max:.3f}" in shown[0] and "normalize=True" in shown[0], shown
    assert page.lp_alert.alert_type == "warning"
    page.param.update(J=2, xi0=round(3 * np.pi / 4, 3), slant=0.5)
    assert expanding() == []


def test_scattering_page_messages_and_selection():
    page = build_app("scattering").page
    root = render(page)
    page.theta1 = 3
    assert any("S2 children of j1=0, θ1=67.5°" in t for t in titles(root))
    page.size = 32
    page.J = 6  # 2^6 > 32: a message, the previous result stays
    assert page.alert.visible and "2^J = 64" in page.alert.object
    assert page.result.J == 3
    page.J = 2
    assert not page.alert.visible and page.result.J == 2
    page.j1 = 1  # the coarsest scale: no children, still one element type, and the plot says why
    assert any(t == "S2 children of j1=1, θ1=67.5°" for t in titles(root)), titles(root)
    assert any("coarsest scale" in t for t in drawn_texts(root)), drawn_texts(root)
    page.source = "uploaded file"  # no file yet: the next step, not an error
    assert not page.alert.visible and "Choose a PNG or JPEG (up to 10 MB)" in page.note.object
    page.upload.value = {"a.gif": b"GIF89a not really"}
    assert page.alert.visible and "not an image" in page.alert.object
    page.source = "synthetic pattern"
    assert not page.alert.visible and page.image.shape == (32, 32)


def _leaves(layout) -> list:
    """The widgets and panes of a layout, depth first, in the order they are shown."""
    out = []
    for obj in layout:
        out += _leaves(obj) if isinstance(obj, pn.layout.ListLike) else [obj]
    return out


def test_scattering_radio_groups_are_labelled():
    """A radio group shows no title of its own: each has a label right above it naming what it sets."""
    page = build_app("scattering").page
    leaves = _leaves(page.controls)
    radios = [i for i, w in enumerate(leaves) if isinstance(w, pn.widgets.RadioButtonGroup)]
    assert len(radios) == 2
    for i, label in zip(radios, ["Image size (pixels)", "L (angles θ = index·180°/L)"]):
        above = leaves[i - 1]
        assert isinstance(above, pn.pane.Markdown) and above.object == label, above


def test_scattering_upload_limit_is_checked_in_the_browser_and_on_the_server():
    """A FileInput sent a file as one websocket message and a 36 MB photo closed the session. The dropper
    refuses files over the limit in the browser and sends the others in one chunk under Bokeh's 20 MB
    message limit; a larger file that still arrives gets a message naming the limit."""
    from bokeh.server.tornado import DEFAULT_WEBSOCKET_MAX_MESSAGE_SIZE_BYTES

    from explorer.data.images import MAX_UPLOAD_BYTES

    page = build_app("scattering").page
    upload = page.upload
    assert isinstance(upload, pn.widgets.FileDropper) and not upload.multiple
    assert upload.max_file_size == "10MB" and MAX_UPLOAD_BYTES == 10_000_000
    assert MAX_UPLOAD_BYTES < upload.chunk_size < DEFAULT_WEBSOCKET_MAX_MESSAGE_SIZE_BYTES
    shown = " ".join(str(w.object) for w in _leaves(page.controls) if isinstance(w, pn.pane.Markdown))
    assert "PNG or JPEG up to 10 MB" in shown
    render(page)
    before = page.image
    page.source = "uploaded file"
    upload.value = {"photo.png": b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES)}
    assert page.alert.visible and "the limit is 10 MB" in page.alert.object, page.alert.object
    assert page.image is before  # the previous image stays
    upload.value = {}  # the file removed from the dropper: nothing happens
    assert page.image is before


def test_scattering_page_draws_one_tab_at_a_time():
    page = build_app("scattering").page
    root = render(page)
    first = titles(root)
    assert any(t.startswith("S2 children of") for t in first), first
    assert not any("disk" in t or t.startswith("Energy") for t in first), first  # not drawn until opened
    page.tabs.active = 1
    page.theta1 = 2
    assert any(t.startswith("S2 disk of j1=0, θ1=45°") for t in titles(root)), titles(root)
    page.tabs.active = 2
    assert any(t.startswith("Energy per order") for t in titles(root)), titles(root)


def test_invariance_page_sliders():
    page = build_app("invariance").page
    root = render(page)
    first = titles(root)
    assert any(t.startswith("Rotation by 0°") for t in first), first
    assert not any(t.startswith(("Shift by", "Deformation s", "Lipschitz")) for t in first), first  # tabs
    page.load_lipschitz()
    page.tabs.active = 3
    # On the padded images the transform sees, the Littlewood–Paley bound holds exactly; on the images
    # alone reflect padding can count a border difference twice (see the caption).
    assert page.lipschitz["ratio_padded"].max() <= page.lipschitz["bound"]
    assert page.lipschitz["ratio"].max() <= 1.05 * page.lipschitz["bound"]
    assert any(t.startswith("Lipschitz ratios over") for t in titles(root))
    page.tabs.active = 0
    page.angle = 90.0
    t = [x for x in titles(root) if x.startswith("Rotation by 90°")]
    assert t and float(t[0].split("error ")[1]) < 1e-10
    page.angle = 45.0
    assert any(x.startswith("Rotation by 45°") for x in titles(root))
    page.tabs.active = 1
    page.shift = 2
    assert any(x.startswith("Shift by 2 px") for x in titles(root))
    page.tabs.active = 2
    page.s = 0.1
    assert any(x.startswith("Deformation s = 0.100") for x in titles(root))


def _plot(root, prefix: str):
    from bokeh.models import Plot

    plots = [p for p in root.select({"type": Plot}) if p.title is not None and p.title.text.startswith(prefix)]
    assert len(plots) == 1, [p.title.text for p in root.select({"type": Plot})]
    return plots[0]


def test_invariance_lipschitz_legend_and_bound_label_leave_the_bars_visible():
    """The legend sat over the tallest bars and the bound's label: it goes above the plot, and the label
    sits above every bar, inside the y range."""
    from bokeh.models import GlyphRenderer, Legend, Quad, Text

    page = build_app("invariance").page
    root = render(page)
    page.load_lipschitz()
    page.tabs.active = 3
    plot = _plot(root, "Lipschitz ratios over")
    assert not [m for m in plot.center if isinstance(m, Legend)]
    assert [m for m in plot.above if isinstance(m, Legend)]
    glyphs = [r for r in plot.select({"type": GlyphRenderer})]
    tops = [max(r.data_source.data["top"]) for r in glyphs if isinstance(r.glyph, Quad)]
    labels = [r.data_source.data for r in glyphs if isinstance(r.glyph, Text)]
    assert len(tops) == 2 and len(labels) == 1 and "bound max A" in labels[0]["text"][0]
    assert max(tops) < labels[0]["y"][0] < plot.y_range.end


def test_invariance_deformation_slider_shows_three_decimals():
    """The slider moves by 0.025: with Bokeh's default two decimals, 0.025 read 0.03."""
    from bokeh.models import Slider

    page = build_app("invariance").page
    root = render(page)
    page.tabs.active = 2
    sliders = [m for m in root.references() if isinstance(m, Slider) and m.title == "Deformation size s"]
    assert len(sliders) == 1 and sliders[0].step == 0.025 and sliders[0].format == "0.000"


def test_invariance_curves_refit_after_a_change_of_size_or_j():
    """After the sliders moved, a change of size or J gives curves of another height (the pixel curves
    grew past the top): every plot's ranges cover its data again. Also checks that no fixed ylim hides
    data (the rotation's was (1e-17, 2))."""
    from plot_ranges import stale_ranges

    page = build_app("invariance").page
    root = render(page)
    page.param.update(angle=45.0, shift=3, s=0.3)
    for step in ({"size": 64}, {"J": 4}, {"image_name": "synthetic: noise"}, {"J": 1}, {"size": 32},
                 {"image_name": "synthetic: checkerboard", "J": 3}):
        page.param.update(**step)
        assert not page.alert.visible, (step, page.alert.object)
        for tab in range(3):  # a tab's plots are drawn only while it is open
            page.tabs.active = tab
            assert stale_ranges(root) == [], (step, tab)
    for tab, prefix in enumerate(("Rotation by", "Shift by", "Deformation s =")):
        page.tabs.active = tab
        plot = _plot(root, prefix)
        assert plot.y_range.end is not None and plot.y_range.start is not None


def test_radio_groups_are_labelled_on_the_invariance_and_reconstruction_pages():
    """A radio group shows no title of its own: each has a label right above it naming what it sets."""
    for slug, labels in (("invariance", ["Image size (pixels)", "L (angles)"]),
                         ("reconstruction", ["Image size (pixels)", "Orders used"])):
        page = build_app(slug).page
        leaves = _leaves(page.controls)
        radios = [i for i, w in enumerate(leaves) if isinstance(w, pn.widgets.RadioButtonGroup)]
        assert len(radios) == len(labels), slug
        for i, label in zip(radios, labels):
            above = leaves[i - 1]
            assert isinstance(above, pn.pane.Markdown) and above.object == label, (slug, above)
    assert not [w for w in _leaves(build_app("wavelets").page.controls)
                if isinstance(w, pn.widgets.RadioButtonGroup)]  # none to label there


def test_reconstruction_runs_and_reports_progress():
    page = build_app("reconstruction").page
    root = render(page)
    page.steps = 20
    page.J = 2
    run_in_own_loop(page._on_run())
    assert not page.alert.visible, page.alert.object
    assert len(page.losses) >= 1 and page.losses[-1][1] <= page.losses[0][1]
    assert "done" in page.status
    assert any(t.startswith("order ≤ 2, J=2, done") for t in titles(root))
    assert not np.allclose(page.current, 0.5)


def test_reconstruction_shows_the_noise_it_starts_from():
    """The start panel was flat grey while the caption said "from noise": it shows the very image the
    optimisation starts from, for the chosen image and size."""
    from bokeh.models import GlyphRenderer, Image

    from explorer.analysis.reconstruction import initial_image
    from explorer.data import sources

    page = build_app("reconstruction").page
    root = render(page)
    start = initial_image(sources.named_image("camera", 32))
    np.testing.assert_allclose(page.current, start, rtol=1e-6, atol=1e-6)
    plot = _plot(root, "Start x̂₀")
    [image] = [r for r in plot.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    shown = np.asarray(image.data_source.data["image"][0])
    assert shown.std() > 0.1  # noise, not a flat grey
    np.testing.assert_allclose(np.sort(shown.ravel()), np.sort(np.clip(start, 0, 1).ravel()), atol=1e-6)
    page.size = 64
    assert page.current.shape == (64, 64)
    np.testing.assert_allclose(page.current, initial_image(sources.named_image("camera", 64)), atol=1e-6)


@pytest.mark.dataset
def test_scattering_page_cifar_source():
    page = build_app("scattering").page
    render(page)
    assert "CIFAR-10 test image" in page.param.source.objects
    page.source = "CIFAR-10 test image"
    page.cifar_class, page.cifar_index = "ship", 5
    assert not page.alert.visible, page.alert.object
    assert "test image 5 of class ship" in page.note.object
    page.cifar_index = 999
    assert page.image.shape == (64, 64)


def test_runs_form_edit_landing_just_after_the_click_is_used(tmp_path, monkeypatch):
    """The server applies a field's last edit and the Start click in two worker threads: the edit can land
    a few milliseconds after the click handler began. The job must still get the edited value."""
    from explorer import jobs
    from explorer.pages import runs as runs_page

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    page = build_app("runs").page
    started = []

    def fake_start(argv):
        started.append(argv)
        raise jobs.JobError("not started in this test")

    monkeypatch.setattr(jobs, "start_training_job", fake_start)
    monkeypatch.setattr(runs_page, "FORM_SETTLE_S", 0.5)
    clicked = threading.Event()
    click = threading.Thread(target=lambda: clicked.set() or page._on_start())
    click.start()
    clicked.wait(10)
    time.sleep(0.05)  # the edit lands after the handler began (a wide settle time keeps a loaded CI safe)
    page.epochs = 7  # the edit, committed when the field lost focus to the button
    click.join(10)
    assert started and started[0][started[0].index("--epochs") + 1] == "7", started


def test_runs_page_lists_shipped_runs_and_explains_a_bad_form(tmp_path, monkeypatch):
    from explorer.runs.store import SHIPPED_ROOT

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    page = build_app("runs").page
    root = render(page)
    shipped = sorted(p.name for p in SHIPPED_ROOT.iterdir() if p.is_dir())
    table = page.runs_table.value
    assert sorted(table["id"]) == shipped and set(table["source"]) == {"shipped"}
    assert page.selected_run == table["id"][0]  # the first run's curves are shown
    assert any(t.startswith(f"Accuracy of {table['id'][0]}") for t in titles(root))
    page.model, page.widths = "sle", "512 lots"
    page._on_start()
    assert page.alert.visible and "Cannot start this job" in page.alert.object and "lots" in page.alert.object
    assert page.jobs_table.value.empty  # nothing was started
    page.model, page.rho, page.alpha = "cnn13", "relu_k", 0.25
    assert page.train_arguments()[-4:] == ["--rho", "relu_k", "--alpha", "0.25"]


def test_sliders_are_not_debounced_by_the_private_attribute_panel_reads():
    """app.py sets a private Panel attribute (the 50 ms merge of browser events; sliders already send one
    value per key press or release). If Panel renames it, the setting would silently do nothing."""
    import inspect

    from panel.reactive import Syncable

    assert "self._debounce" in inspect.getsource(Syncable._server_change)
    assert pn.widgets.IntSlider._debounce == 0 and pn.widgets.FloatSlider._debounce == 0
    assert pn.widgets.TextInput._debounce == Syncable._debounce > 0  # other widgets keep Panel's default
