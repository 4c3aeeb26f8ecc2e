"""Wavelets page: the Morlet bank ψ_{j,θ}, φ_J, the Littlewood–Paley sum and the Fourier tiling."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.views import wavelets as wv

from .base import Page, figure, theta_format, theta_label


class WaveletsPage(Page):
    title = "Wavelets"

    J = param.Integer(3, bounds=(1, 6), doc="Number of scales J (wavelets j = 0..J−1, low-pass φ_J)")
    L = param.Integer(8, bounds=(2, 16), doc="Number of angles L over [0°, 180°)")
    j = param.Integer(0, bounds=(0, 2), doc="Scale j of the wavelet shown")
    theta = param.Integer(0, bounds=(0, 7), label="θ index",
                          doc="Angle index ℓ of the wavelet shown: θ = ℓ·180°/L")
    sigma0 = param.Number(0.8, bounds=(0.4, 2.0), step=0.05, label="σ (envelope width at j = 0, pixels)")
    xi0 = param.Number(round(3 * np.pi / 4, 3), bounds=(0.5, 3.0), step=0.05,
                       label="ξ (centre frequency at j = 0, rad/pixel)")
    slant = param.Number(0.5, bounds=(0.1, 1.0), step=0.05, label="slant (envelope aspect; Kymatio: 4/L)")

    def __init__(self, **params):
        super().__init__(**params)
        self._sync_bounds()
        self.param.watch(self._on_shape, ["J", "L"])
        self.param.watch(lambda *_: self.show_error(None), list(self._bank_args()) + ["j", "theta"],
                         )
        dims = {"J": self.param.J, "L": self.param.L, "sigma0": self.param.sigma0, "xi0": self.param.xi0,
                    "slant": self.param.slant}
        sel = dict(dims, j=self.param.j, ell=self.param.theta)
        self.space_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._space, **sel)), linked_axes=False)
        self.fourier_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._fourier, **sel)), linked_axes=False)
        self.lowpass_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._lowpass, **dims)), linked_axes=False)
        self.lp_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._lp, **dims)), linked_axes=False)
        # The tiling depends on the bank only; a move of j or θ redraws only the red dot over it.
        self.tiling_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._tiling, **dims))
                                             * hv.DynamicMap(pn.bind(self._tiling_selection, **sel)),
                                             linked_axes=False)
        w = pn.widgets
        self.controls = pn.Column(
            w.IntSlider.from_param(self.param.J, name="J (scales)"),
            w.IntSlider.from_param(self.param.L, name="L (angles)"),
            w.IntSlider.from_param(self.param.j, name="j (scale shown)"),
            w.IntSlider.from_param(self.param.theta),
            pn.Card(w.FloatSlider.from_param(self.param.sigma0), w.FloatSlider.from_param(self.param.xi0),
                    w.FloatSlider.from_param(self.param.slant), title="Advanced: Morlet parameters",
                    collapsed=True, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        self.theta_slider = self.controls[3]
        self._label_theta()
        # max A(ω) > 1 contradicts what the page teaches (non-expansiveness): say so where it is seen first.
        self.lp_alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.param.watch(self._check_lp, list(self._bank_args()))
        self._check_lp()

    def _bank_args(self):
        return ("J", "L", "sigma0", "xi0", "slant")

    def _sync_bounds(self):
        self.param.j.bounds = (0, self.J - 1)
        self.param.theta.bounds = (0, self.L - 1)

    def _on_shape(self, *_):
        with param.parameterized.batch_call_watchers(self):
            self._sync_bounds()
            self._label_theta()
            self.j = min(self.j, self.J - 1)
            self.theta = min(self.theta, self.L - 1)

    def _label_theta(self):
        """The θ slider shows "index (degrees)" for the current L. The title changes with L too: Bokeh redraws
        a slider's "title: value" on a new title, not on a new format."""
        self.theta_slider.format = theta_format(self.L)
        self.theta_slider.label = theta_label("θ", self.L)

    def _check_lp(self, *_):
        try:
            lp_max = self.bank(self.J, self.L, self.sigma0, self.xi0, self.slant).lp_max
        except (ValueError, MemoryError):  # the plots' alert says what is wrong with the parameters
            return
        found = wv.expansiveness(lp_max)
        if found:
            kind, text = found
            kymatio = 4 / self.L  # the slant does not follow L here: at L = 16, 0.5 gives max A ≈ 2
            lo, hi = self.param.slant.bounds
            if kind == "warning" and abs(self.slant - kymatio) > 1e-6 and lo <= kymatio <= hi:
                usual = self.bank(self.J, self.L, self.sigma0, self.xi0, kymatio).lp_max
                text += (f" Here the slant {self.slant:.2f} differs from Kymatio's $$4/L = {kymatio:.2f}$$, "
                         f"which gives $$\\max A = {usual:.3f}$$.")
            self.lp_alert.alert_type, self.lp_alert.object = kind, text
        self.lp_alert.visible = bool(found)

    def bank(self, J, L, sigma0, xi0, slant):
        return wv.display_bank(J, L, sigma0, xi0, slant)

    def _space(self, J, L, sigma0, xi0, slant, j, ell):
        return self.guarded(lambda: wv.wavelet_space_panels(self.bank(J, L, sigma0, xi0, slant),
                                                            min(j, J - 1), min(ell, L - 1)))

    def _fourier(self, J, L, sigma0, xi0, slant, j, ell):
        return self.guarded(lambda: wv.wavelet_fourier(self.bank(J, L, sigma0, xi0, slant), min(j, J - 1),
                                                       min(ell, L - 1), mark_centre=False))

    def _lowpass(self, J, L, sigma0, xi0, slant):
        return self.guarded(lambda: wv.lowpass_space(self.bank(J, L, sigma0, xi0, slant)))

    def _lp(self, J, L, sigma0, xi0, slant):
        return self.guarded(lambda: wv.littlewood_paley_image(self.bank(J, L, sigma0, xi0, slant)))

    def _tiling(self, J, L, sigma0, xi0, slant):
        return self.guarded(lambda: wv.filter_tiling(self.bank(J, L, sigma0, xi0, slant)))

    def _tiling_selection(self, J, L, sigma0, xi0, slant, j, ell):
        return self.guarded(lambda: wv.tiling_selection(self.bank(J, L, sigma0, xi0, slant), min(j, J - 1),
                                                        min(ell, L - 1)))

    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Wavelets\nA scattering transform is built from one Morlet wavelet $$\\psi$$, dilated by $$2^j$$ and "
            "rotated by $$\\theta$$ into $$\\psi_{j,\\theta}$$, and one low-pass $$\\phi_J$$. Pick a scale **j** and an "
            "angle **θ** on the left; the *Advanced* section changes the mother wavelet itself.",
            sizing_mode="stretch_width")
        return pn.Column(
            intro, self.alert, self.lp_alert,
            figure(self.space_pane, wv.CAPTIONS["space"], width=900),
            pn.FlexBox(figure(self.fourier_pane, wv.CAPTIONS["fourier"]),
                   figure(self.tiling_pane, wv.CAPTIONS["tiling"])),
            pn.FlexBox(figure(self.lp_pane, wv.CAPTIONS["lp"]), figure(self.lowpass_pane, wv.CAPTIONS["lowpass"])),
            sizing_mode="stretch_width",
        )
