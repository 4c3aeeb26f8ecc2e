"""SLE spectra page: the angular Fourier spectra Ω₁, Ω₂ of a trained SLE's first layer W₁ (learned or effective
weights), and its units ranked by rotation-invariance score with one unit's weights along θ1."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.models import CustomJSTickFormatter

from explorer.analysis import cache
from explorer.analysis import spectra as sp
from explorer.views import spectra as sv

from .base import Page, figure, run_choices

SHIPPED_SLE = "sle-695ad4593697"
COLOURS = ("all", "red", "green", "blue")
NO_RUN = ("There is no SLE run in the run store (`explorer runs list`) nor among the shipped runs, so there are "
          "no weights to analyse. Train one with `explorer train sle` (it trains on stored scattering features: "
          "`explorer scatter --split all` computes them first), or from the **Runs** page, then reload this page.")


def sle_runs() -> dict[str, str]:
    """The SLE-like runs of the store (label → run id), the shipped demo run first: a run is SLE-like when its
    registered model's constructor is a ScatteringSLE (sle, sle_fourier, …). Damaged runs are left out."""
    from explorer.nets import ScatteringSLE, registry

    def sle_like(info) -> bool:
        model = (info.config or {}).get("model")
        return (info.status != "corrupt" and model in registry.names()
                and issubclass(registry.get(model).constructor, ScatteringSLE))

    return run_choices(sle_like, first=SHIPPED_SLE)


def offer_sle_runs(page) -> bool:
    """Fill the page's `run` selector with the SLE-like runs (the shipped one first) and select the first
    when the current value is not among them; False when there is none."""
    runs = sle_runs()
    page.param.run.objects = runs
    if runs and page.run not in runs.values():
        page.run = next(iter(runs.values()))
    return bool(runs)


def selection_text(colour, j1) -> str:
    """What an order-1 figure sums over, short enough for a title."""
    return f"{'all colours' if colour == 'all' else colour}, {'all j1' if j1 == 'all' else f'j1={j1}'}"


def pair_text(colour, pair) -> str:
    return f"{'all colours' if colour == 'all' else colour}, " + (
        "all (j1, j2)" if pair == "all" else f"(j1, j2)=({pair[0]}, {pair[1]})")


class SpectraPage(Page):
    title = "SLE spectra"

    run = param.Selector(default=None, objects=[], allow_None=True, label="Run (SLE-like)")
    effective = param.Boolean(False, label="Effective weights W₁·diag(1/σ) (on raw coefficients)")
    colour = param.Selector(default="all", objects=list(COLOURS), label="Colour")
    j1 = param.Selector(default="all", objects=["all", 0, 1], label="j1 (order 1: Ω₁ and the unit's weights)")
    pair = param.Selector(default="all", objects={"all": "all"}, label="Scale pair (j1, j2) (order 2: Ω₂)")
    rank = param.Integer(0, bounds=(0, 1), label="Unit, by invariance score (rank 0 = most invariant)")

    def __init__(self, **params):
        super().__init__(**params)
        self.has_runs = offer_sle_runs(self)
        w = pn.widgets
        self.rank_slider = w.IntSlider.from_param(self.param.rank, name="Rank (W₁)",
                                                  sizing_mode="stretch_width")
        self.rank_note = pn.pane.Markdown("", styles={"font-size": "12px"}, sizing_mode="stretch_width")
        self.controls = pn.Column(
            w.Select.from_param(self.param.run), w.Checkbox.from_param(self.param.effective),
            w.Select.from_param(self.param.colour), w.Select.from_param(self.param.j1),
            w.Select.from_param(self.param.pair), self.rank_slider, self.rank_note,
            pn.pane.Markdown("The spectra sum over every unit $$k$$; the scores and the ranking over every "
                             "colour and scale of a unit.", styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        if not self.has_runs:
            self.show_note(NO_RUN)
            return
        self.param.watch(lambda *_: self.show_error(None), ["run", "effective", "colour", "j1", "pair", "rank"])
        self.param.watch(self._on_run, ["run"])  # before the plots: their choices follow the run first
        self.param.watch(self._on_ranking, ["effective"])
        self.param.watch(self._show_rank, ["rank"])
        self._on_run()
        base = {"run": self.param.run, "effective": self.param.effective}
        dm = lambda callback, **kw: pn.pane.HoloViews(hv.DynamicMap(pn.bind(callback, **base, **kw)),
                                                      linked_axes=False)
        self.omega1_pane = dm(self._omega1, colour=self.param.colour, j1=self.param.j1)
        self.omega2_pane = dm(self._omega2, colour=self.param.colour, pair=self.param.pair, reindexed=False)
        self.omega2_rel_pane = dm(self._omega2, colour=self.param.colour, pair=self.param.pair, reindexed=True)
        self.ranking_pane = dm(self._ranking, rank=self.param.rank)
        self.polar_pane = dm(self._polar, colour=self.param.colour, j1=self.param.j1, rank=self.param.rank)
        self.unit_dft_pane = dm(self._unit_dft, colour=self.param.colour, j1=self.param.j1, rank=self.param.rank)

    # -- state ------------------------------------------------------------------------------------------
    def layer(self, run, effective) -> sp.FirstLayer:
        return cache.cached_first_layer(run, bool(effective))

    def ranking(self, run, effective) -> tuple[np.ndarray, np.ndarray]:
        return cache.cached_invariance_ranking(run, bool(effective))

    def _on_run(self, *_):
        """The choices (colours, scales, pairs, units) of the chosen run's W₁."""
        try:
            layer = self.layer(self.run, self.effective)
        except (ValueError, RuntimeError, OSError) as exc:
            self.show_error(str(exc))
            return
        colours = ["all", *layer.colours]
        pairs = {"all": "all", **{f"j1={a}, j2={b}": (a, b) for a, b in layer.pairs}}
        with param.parameterized.batch_call_watchers(self):
            self.param.colour.objects = colours
            self.param.j1.objects = ["all", *range(layer.J)]
            self.param.pair.objects = pairs
            self.param.rank.bounds = (0, layer.K - 1)
            self.colour = self.colour if self.colour in colours else "all"
            self.j1 = self.j1 if self.j1 == "all" or self.j1 < layer.J else "all"
            self.pair = self.pair if self.pair in pairs.values() else "all"
            self.rank = min(self.rank, layer.K - 1)
        self._on_ranking()

    def _on_ranking(self, *_):
        """The rank slider shows "rank r: unit k (score s)" for the current ranking (it changes with the weights)."""
        try:
            scores, order = self.ranking(self.run, self.effective)
        except (ValueError, RuntimeError, OSError):
            return
        self.rank_slider.format = CustomJSTickFormatter(
            args={"units": [int(k) for k in order], "scores": [round(float(scores[k]), 4) for k in order]},
            code="const r = Math.round(tick); return r + ' = unit ' + units[r] + ' (' + scores[r].toFixed(3) + ')';")
        # Bokeh redraws a slider's "title: value" on a new title, not on a new format: the title changes after.
        self.rank_slider.label = f"Rank ({'effective' if self.effective else 'W₁'})"
        self._show_rank()

    def _show_rank(self, *_):
        try:
            scores, order = self.ranking(self.run, self.effective)
        except (ValueError, RuntimeError, OSError):
            return
        rank = min(int(self.rank), len(order) - 1)
        unit = int(order[rank])
        self.rank_note.object = (f"Rank {rank} of {len(order)} (0 = most invariant): unit **{unit}**, invariance score "
                                 f"{scores[unit]:.3f} (its share of angular energy at rotation frequency 0).")

    def _sanitised(self, layer, colour="all", j1="all", pair="all"):
        """The selection as the analysis functions take it (None: all), tolerating a value of another run."""
        colour = colour if colour in layer.colours else None
        j1 = int(j1) if j1 != "all" and int(j1) < layer.J else None
        pair = tuple(pair) if pair != "all" and tuple(pair) in layer.pairs else None
        return colour, j1, pair

    def unit_of(self, run, effective, rank) -> tuple[int, int]:
        """(rank, unit k) of the rank slider's value."""
        _, order = self.ranking(run, effective)
        rank = min(max(int(rank), 0), len(order) - 1)
        return rank, int(order[rank])

    # -- views ------------------------------------------------------------------------------------------
    def _omega1(self, run, effective, colour, j1):
        def view():
            layer = self.layer(run, effective)
            c, j, _ = self._sanitised(layer, colour, j1)
            return sv.omega1_bars(sp.omega1(layer, colour=c, j1=j), layer.L, layer.label, selection_text(colour, j1))
        return self.guarded(view)

    def _omega2(self, run, effective, colour, pair, reindexed):
        def view():
            layer = self.layer(run, effective)
            c, _, p = self._sanitised(layer, colour, pair=pair)
            values = sp.omega2(layer, colour=c, j1=p[0] if p else None, j2=p[1] if p else None,
                               reindexed=reindexed)
            return sv.omega2_heatmap(values, layer.L, layer.label, pair_text(colour, pair), reindexed)
        return self.guarded(view)

    def _ranking(self, run, effective, rank):
        def view():
            scores, order = self.ranking(run, effective)
            r, _ = self.unit_of(run, effective, rank)
            return sv.ranking_figure(scores, order, r, self.layer(run, effective).label)
        return self.guarded(view)

    def _unit_layer(self, run, effective, colour, j1, rank):
        layer = self.layer(run, effective)
        _, unit = self.unit_of(run, effective, rank)
        c, j, _ = self._sanitised(layer, colour, j1)
        one = layer.replace(order0=layer.order0[unit:unit + 1], order1=layer.order1[unit:unit + 1],
                            order2=layer.order2[unit:unit + 1])
        return layer, unit, one, c, j

    def _polar(self, run, effective, colour, j1, rank):
        def view():
            layer, unit, one, c, j = self._unit_layer(run, effective, colour, j1, rank)
            colours = list(layer.colours) if c is None else [c]
            scales = list(range(layer.J)) if j is None else [j]
            rows = [(name, s) for name in colours for s in scales]
            weights = np.stack([one.order1[0, layer.colours.index(name), s] for name, s in rows])
            return sv.unit_polar(weights, [name for name, _ in rows], [s for _, s in rows], layer.L, unit,
                                 layer.label, selection_text(colour, j1))
        return self.guarded(view)

    def _unit_dft(self, run, effective, colour, j1, rank):
        def view():
            layer, unit, one, c, j = self._unit_layer(run, effective, colour, j1, rank)
            return sv.unit_dft_bars(sp.omega1(one, colour=c, j1=j), layer.L, unit, layer.label,
                                    selection_text(colour, j1))
        return self.guarded(view)

    def warm_caches(self) -> None:
        """Load the other weights (effective or learned) of the default run too: a click on the checkbox then
        only draws."""
        if self.has_runs:
            for effective in (False, True):
                self.ranking(self.run, effective)

    # -- layout -----------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## SLE spectra\nThe Shared Local Encoder's first layer $$W_1$$ gives each output unit $$k$$ a weight "
            r"per scattering path: $$w(\theta_1)$$ at order 1 (for each colour $$c$$ and scale $$j_1$$), "
            r"$$w(\theta_1, \theta_2)$$ at order 2. An orthonormal DFT along the angles gives $$\hat w$$, and "
            r"$$\Omega_1(\omega_{\theta_1}) = \sum_{k,c,j_1} |\hat w(\omega_{\theta_1})|^2$$, "
            r"$$\Omega_2(\omega_{\theta_1}, \omega_{\theta_2}) = \sum_{k,c,j_1,j_2} |\hat w(\omega_{\theta_1}, "
            r"\omega_{\theta_2})|^2$$ say how the weights' energy spreads over angular frequency (shown as "
            r"$$\Omega / \sum \Omega$$, frequencies signed: $$-L/2 \ldots L/2-1$$). **The finding:** the energy "
            "sits at low angular frequency — the encoder learns (part of) rotation invariance: on the shipped run "
            r"about 30 % of $$\Omega_1$$ is at $$\omega_{\theta_1} = 0$$ and two thirds within $$|\omega_{\theta_1}| "
            r"\le 1$$, where weights blind to angle would give $$1/L$$ = 12.5 % per frequency. $$W_1$$ acts on "
            "BatchNorm-normalised coefficients; the *effective* weights "
            r"$$W_1 \mathrm{diag}(1/\sigma)$$ act on the raw ones (every title says which is shown). The "
            "shipped run is this project's own CIFAR-10 SLE (no CIFAR SLE was released; the talk's is ImageNet's).",
            sizing_mode="stretch_width")
        if not self.has_runs:
            return pn.Column(intro, self.note, sizing_mode="stretch_width")
        C = sv.CAPTIONS
        self.tabs = pn.Tabs(
            ("Spectra Ω₁, Ω₂", pn.FlexBox(figure(self.omega1_pane, C["omega1"], width=470),
                                          figure(self.omega2_pane, C["omega2_raw"], width=400),
                                          figure(self.omega2_rel_pane, C["omega2_rel"], width=400))),
            ("Units by invariance", pn.FlexBox(figure(self.ranking_pane, C["ranking"], width=470),
                                               figure(self.polar_pane, C["polar"], width=400),
                                               figure(self.unit_dft_pane, C["unit_dft"], width=400))),
            dynamic=True, sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.note, self.tabs, sizing_mode="stretch_width")
