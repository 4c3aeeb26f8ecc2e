"""Invariance and stability page: rotation, translation, deformation sliders and the Lipschitz histogram."""
from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from explorer.analysis import cache
from explorer.analysis.piecework import RUNNER
from explorer.data import sources
from explorer.views import invariance as iv

from .base import Page, figure, labelled


class InvariancePage(Page):
    title = "Invariance & stability"

    image_name = param.Selector(default="camera", objects=sources.image_names(), label="Image")
    size = param.Selector(default=32, objects=[32, 64], label="Image size (pixels)")
    J = param.Integer(2, bounds=(1, 4), label="J (scales)")
    L = param.Selector(default=8, objects=[4, 8], label="L (angles)")
    angle = param.Number(0.0, bounds=(0.0, 360.0), step=5.0, label="Rotation angle (degrees)")
    shift = param.Integer(0, bounds=(0, 8), label="Horizontal shift c (pixels)")
    s = param.Number(0.0, bounds=(0.0, 0.3), step=0.025, label="Deformation size s")
    lipschitz = param.Dict(default=None, precedence=-1, doc="Lipschitz ratios, computed after the page loads")
    curves_ready = param.Integer(0, precedence=-1, doc="Counts the curves that arrived from the background")

    def __init__(self, **params):
        super().__init__(**params)
        self._sync_bounds()
        self.param.watch(self._sync_bounds, ["J", "size"])
        self.param.watch(lambda *_: self.show_error(None), ["image_name", "size", "J", "L"])
        base = {"name": self.param.image_name, "size": self.param.size, "J": self.param.J, "L": self.param.L,
                "ready": self.param.curves_ready}
        self.work_text = pn.pane.Markdown("", visible=False, margin=(0, 10), sizing_mode="stretch_width")
        self.work_progress = pn.indicators.Progress(value=0, max=1000, visible=False, sizing_mode="stretch_width",
                                                    bar_color="info")
        dm = lambda callback, **kw: hv.DynamicMap(pn.bind(callback, **base, **kw))
        pane = lambda obj: pn.pane.HoloViews(obj, linked_axes=False)
        self.rotation_pane = pane(dm(self._rotation, angle=self.param.angle))
        self.rotated_pane = pane(dm(self._rotated, angle=self.param.angle))
        self.translation_pane = pane(dm(self._translation, shift=self.param.shift))
        self.shifted_pane = pane(dm(self._shifted, shift=self.param.shift))
        self.deformation_pane = pane(dm(self._deformation, s=self.param.s))
        self.deformed_pane = pane(dm(self._deformed, s=self.param.s))
        self.lipschitz_pane = pane(pn.bind(self._lipschitz, res=self.param.lipschitz))
        self.param.watch(self.load_lipschitz, ["size", "J", "L"])
        if self.served:  # slow (about a second): computed in the background while the page is shown
            self.load_lipschitz()
        w = pn.widgets
        self.angle_slider = w.FloatSlider.from_param(self.param.angle, sizing_mode="stretch_width")
        self.shift_slider = w.IntSlider.from_param(self.param.shift, sizing_mode="stretch_width")
        # 3 decimals: the steps of 0.025 rounded to 2 read 0.03, 0.05, 0.08…
        self.s_slider = w.FloatSlider.from_param(self.param.s, format="0.000", sizing_mode="stretch_width")
        self.controls = pn.Column(
            w.Select.from_param(self.param.image_name),
            labelled(w.RadioButtonGroup.from_param(self.param.size)),
            w.IntSlider.from_param(self.param.J),
            labelled(w.RadioButtonGroup.from_param(self.param.L)),
            pn.pane.Markdown("Small images keep every slider fast: each curve is computed once per "
                             "(image, size, J, L) and cached.", styles={"font-size": "12px"}),
            sizing_mode="stretch_width",
        )

    def _sync_bounds(self, *_):
        largest = cache.translation_shifts(int(self.size), int(self.J))[-1]
        self.param.shift.bounds = (0, largest)
        self.shift = min(self.shift, largest)

    # -- curves: computed in pieces in the background when served, so other sessions are served in between --
    def _curve(self, kind, name, size, J, L):
        """The curve, or None while it is computed in the background (a served page asks the shared
        `piecework.RUNNER` and redraws when it arrives; elsewhere it is computed here)."""
        key = cache.curve_key(kind, name, size, J, L)
        found = cache.cached_curve(kind, name, size, J, L)
        request = self.waiting_for(kind)
        if found is not None or not self.served:
            if request is not None and request.key != key:  # the visitor moved on to computed parameters
                request.cancel()
                self.done_waiting(kind, request)
                if not self.busy():
                    self._show_work(None)
            return found if found is not None else cache.curve(kind, name, size, J, L)
        if request is not None and request.key == key:
            return None
        what = f"the {kind} curve ({size}×{size}, J = {J}, L = {L})"
        request = None  # bound before a callback could read it

        def progress(fraction):
            self.in_session(lambda: self._show_work(what, fraction) if self.waiting_for(kind) is request else None)

        def done(_curve, error):
            self.in_session(lambda: self._curve_arrived(kind, request, error))

        request = cache.request_curve(kind, name, size, J, L, done, progress)
        self.wait_for(kind, request)  # cancels this page's request for the previous parameters
        self._show_work(what, 0.0)
        return None

    def _curve_arrived(self, kind, request, error):
        if self.waiting_for(kind) is not request:
            return  # superseded meanwhile
        self.done_waiting(kind, request)
        if not self.busy():
            self._show_work(None)
        if error is not None:
            self.show_error(f"Cannot compute the {kind} curve: {error}")
        else:
            self.curves_ready += 1

    def _show_work(self, what, fraction=0.0):
        self.work_text.visible = self.work_progress.visible = what is not None
        if what is not None:
            self.work_text.object = f"Computing {what}: {100 * fraction:.0f} % (other plots stay usable)"
            self.work_progress.value = int(1000 * fraction)

    def _waiting(self, figure_fn, kind, J, *args):
        return figure_fn(iv.waiting_curve(kind, J), *args).opts(title=f"Computing the {kind} curve…")

    # -- views ------------------------------------------------------------------------------------
    def _rotation(self, name, size, J, L, angle, ready=0):
        def draw():
            curve = self._curve("rotation", name, size, J, L)
            if curve is None:
                return self._waiting(iv.rotation_figure, "rotation", J, angle, float("nan"))
            return iv.rotation_figure(curve, angle, cache.rotation_error(curve, name, size, J, L, float(angle)))
        return self.guarded(draw)

    def _rotated(self, name, size, J, L, angle, ready=0):
        return self.guarded(lambda: iv.small_image(cache.rotated(name, size, float(angle)),
                                                   f"Rotated by {angle:g}° (θ index roll {round(angle / (180 / L)) % L})"))

    def _translation(self, name, size, J, L, shift, ready=0):
        def draw():
            curve = self._curve("translation", name, size, J, L)
            if curve is None:
                return self._waiting(iv.translation_figure, "translation", J, shift, J)
            return iv.translation_figure(curve, shift, J)
        return self.guarded(draw)

    def _shifted(self, name, size, J, L, shift, ready=0):
        return self.guarded(lambda: iv.small_image(cache.shifted(name, size, int(shift)), f"Shifted by {shift} px"))

    def _deformation(self, name, size, J, L, s, ready=0):
        def draw():
            curve = self._curve("deformation", name, size, J, L)
            if curve is None:
                return self._waiting(iv.deformation_figure, "deformation", J, s)
            return iv.deformation_figure(curve, s)
        return self.guarded(draw)

    def _deformed(self, name, size, J, L, s, ready=0):
        return self.guarded(lambda: iv.small_image(cache.deformed(name, size, round(float(s), 4)),
                                                   f"Deformed, s = {s:.3f}"))

    def load_lipschitz(self, *_):
        """The Lipschitz ratios for the current (size, J, L), with the pane's loading spinner: computed here,
        or in the background, in pieces, by the shared `piecework.RUNNER` when served (about a second)."""
        size, J, L = int(self.size), int(self.J), int(self.L)
        if not self.served:
            self.lipschitz_pane.loading = True
            try:
                self.lipschitz = cache.lipschitz(size, J, L)
            except (ValueError, MemoryError, RuntimeError) as exc:
                self.show_error(f"Cannot compute the Lipschitz ratios: {exc}")
            finally:
                self.lipschitz_pane.loading = False
            return
        self.lipschitz_pane.loading = True
        request = None

        def done(result, error):
            def apply():
                if self.waiting_for("lipschitz") is not request:
                    return  # superseded by newer parameters
                self.done_waiting("lipschitz", request)
                self.lipschitz_pane.loading = False
                if error is not None:
                    self.show_error(f"Cannot compute the Lipschitz ratios: {error}")
                else:
                    self.lipschitz = result
            self.in_session(apply)

        request = RUNNER.submit(("lipschitz", size, J, L), lambda: cache.lipschitz_pieces(size, J, L), on_done=done)
        self.wait_for("lipschitz", request)

    def _lipschitz(self, res):
        if res is None:
            return hv.Text(0, 0, "computing the ratios over many pairs…").opts(
                xaxis=None, yaxis=None, frame_width=420, frame_height=260, toolbar=None,
                title="Lipschitz ratios (computing…)")
        return iv.lipschitz_histogram(res)

    def __panel__(self):
        C = iv.CAPTIONS
        intro = pn.pane.Markdown(
            "## Invariance and stability\n$$S_J$$ is built to forget translations smaller than $$2^J$$, to turn "
            "rotations into a roll of its angle indices, and to change little under small deformations — "
            "without ever expanding distances: $$\\Vert S_J x - S_J y \\Vert \\le \\Vert x - y \\Vert$$. "
            "Each tab moves one thing: move its slider and watch the red marker on its curve.",
            sizing_mode="stretch_width")

        def section(slider, plot, image, cap_plot, cap_image):
            return pn.Column(slider, pn.FlexBox(figure(plot, cap_plot, width=480),
                                                figure(image, cap_image, width=330)),
                             sizing_mode="stretch_width")

        # One tab per property, each drawn only when opened (dynamic): with all seven plots on one page the
        # browser took 2.8 s to show the first one (issue 10's target is 2 s) and redrew all on every move.
        self.tabs = pn.Tabs(
            ("Rotation", section(self.angle_slider, self.rotation_pane, self.rotated_pane, C["rotation"],
                                 C["rotation_image"])),
            ("Translation", section(self.shift_slider, self.translation_pane, self.shifted_pane,
                                    C["translation"], C["translation_image"])),
            ("Deformation", section(self.s_slider, self.deformation_pane, self.deformed_pane, C["deformation"],
                                    C["deformation_image"])),
            ("Non-expansiveness", figure(self.lipschitz_pane, C["lipschitz"], width=480)),
            dynamic=True, sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.work_text, self.work_progress, self.tabs,
                         sizing_mode="stretch_width")
