"""Invariance and stability page: rotation, translation, deformation sliders and the Lipschitz histogram."""
from __future__ import annotations

import contextlib
import threading

import holoviews as hv
import panel as pn
import param

from explorer.analysis import cache
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

    def __init__(self, **params):
        super().__init__(**params)
        self._sync_bounds()
        self.param.watch(self._sync_bounds, ["J"])
        self.param.watch(lambda *_: self.show_error(None), ["image_name", "size", "J", "L"])
        base = {"name": self.param.image_name, "size": self.param.size, "J": self.param.J, "L": self.param.L}
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
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:  # served
            # Slow (about a second): computed in a thread while the page is shown. Not pn.state.onload:
            # its callback was sometimes never run (about 1 page load in 5 under parallel tests).
            self._load_lipschitz_in_background(pn.state.curdoc)
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
        self.param.shift.bounds = (0, 2 ** (self.J + 1))
        self.shift = min(self.shift, 2 ** (self.J + 1))

    # -- views ------------------------------------------------------------------------------------
    def _rotation(self, name, size, J, L, angle):
        return self.guarded(lambda: iv.rotation_figure(cache.rotation_curve(name, size, J, L), angle,
                                                       cache.rotation_point(name, size, J, L, float(angle))["error"]))

    def _rotated(self, name, size, J, L, angle):
        return self.guarded(lambda: iv.small_image(cache.rotation_point(name, size, J, L, float(angle))["image"],
                                                   f"Rotated by {angle:g}° (θ index roll {round(angle / (180 / L)) % L})"))

    def _translation(self, name, size, J, L, shift):
        return self.guarded(lambda: iv.translation_figure(cache.translation_curve(name, size, J, L), shift, J))

    def _shifted(self, name, size, J, L, shift):
        return self.guarded(lambda: iv.small_image(cache.shifted(name, size, int(shift)), f"Shifted by {shift} px"))

    def _deformation(self, name, size, J, L, s):
        return self.guarded(lambda: iv.deformation_figure(cache.deformation_curve(name, size, J, L), s))

    def _deformed(self, name, size, J, L, s):
        return self.guarded(lambda: iv.small_image(cache.deformed(name, size, round(float(s), 4)),
                                                   f"Deformed, s = {s:.3f}"))

    def load_lipschitz(self, *_):
        """Compute the Lipschitz ratios for the current (size, J, L), with the pane's loading spinner."""
        self.lipschitz_pane.loading = True
        try:
            self.lipschitz = cache.lipschitz(int(self.size), int(self.J), int(self.L))
        except (ValueError, MemoryError, RuntimeError) as exc:
            self.show_error(f"Cannot compute the Lipschitz ratios: {exc}")
        finally:
            self.lipschitz_pane.loading = False

    def _load_lipschitz_in_background(self, doc):
        """Compute the ratios in a thread, then hand the result to the session's event loop (the only
        place where a served document may change)."""
        size, J, L = int(self.size), int(self.J), int(self.L)
        self.lipschitz_pane.loading = True

        def work():
            try:
                result, error = cache.lipschitz(size, J, L), None
            except (ValueError, MemoryError, RuntimeError) as exc:
                result, error = None, f"Cannot compute the Lipschitz ratios: {exc}"

            def apply():
                self.lipschitz_pane.loading = False
                if error:
                    self.show_error(error)
                elif (int(self.size), int(self.J), int(self.L)) == (size, J, L):
                    self.lipschitz = result

            # The session may have closed meanwhile: then there is nothing to show the result in.
            with contextlib.suppress(Exception):
                doc.add_next_tick_callback(apply)

        threading.Thread(target=work, name="lipschitz-ratios", daemon=True).start()

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
        return pn.Column(intro, self.alert, self.tabs, sizing_mode="stretch_width")
