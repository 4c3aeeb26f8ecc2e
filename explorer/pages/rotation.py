"""Rotation invariance in learned weights: rotate test images by m·π/L and compare one SLE unit's response
before and after across a batch, beside every unit's measured change (`explorer.analysis.unit_rotation`)."""
from __future__ import annotations

import contextlib
import threading

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.models import CustomJSTickFormatter

from explorer.analysis import cache
from explorer.analysis import unit_rotation as ur
from explorer.analysis.piecework import RUNNER
from explorer.views import rotation as rv

from .base import Page, figure, labelled, theta_format
from .spectra import offer_sle_runs

NO_RUN = ("There is no SLE run in the run store (`explorer runs list`) nor among the shipped runs, so there is "
          "no network whose units could be rotated. Train one with `explorer train sle` (or `explorer train "
          "sle_fourier --band 0` for the structured SLE, invariant by construction), or from the **Runs** page, "
          "then reload this page.")
SOURCES = {"the 300 test images shipped with the package": False,
           "the configured CIFAR-10 test set (else the shipped images)": True}
FRAMINGS = {"disk centred on the sampling grid (exact at 90°)": "disk", "whole image": "full"}
WHAT = "W₁ pre-activation, spatial mean"


def angle_text(m: int, L: int, framing: str) -> str:
    """What the rotation by m steps is, said next to the slider: exact (a multiple of 90°) or interpolated."""
    deg = ur.degrees(m, L)
    head = f"**m = {m}: {deg:g}°**"
    if m % (2 * L) == 0:
        return f"{head} — no rotation: the responses after are the responses before."
    if ur.is_exact(m, L):
        shift = m % L
        text = (f"{head} — a multiple of 90°: an **exact** rotation of the pixel grid (np.rot90), which shifts the "
                f"scattering's angles cyclically, θ ↦ θ + {shift} (mod {L})"
                + (" — at 180° not at all: θ and θ + π are one orientation." if shift == 0 else "."))
        if framing == "full":
            text += (" With the whole image the 8×8 sampling grid is not mapped onto itself (it moves by 2^J − 1 "
                     "pixels), so even an exactly invariant unit changes by about 10–25 % of its spread here.")
        return text
    return (f"{head} — not a multiple of 90°: an **interpolated** rotation (bilinear, each colour plane), "
            f"approximate: the scattering's angles move by {m} step{'s' if m > 1 else ''} of 180°/L only "
            f"roughly (the rotated pixels fall between the grid's).")


class RotationPage(Page):
    title = "Rotation in learned weights"

    run = param.Selector(default=None, objects=[], allow_None=True, label="Run (SLE-like)")
    rank = param.Integer(0, bounds=(0, 1), label="Unit, by spectral invariance score (rank 0 = most invariant)")
    m = param.Integer(4, bounds=(0, 63), label="Rotation m (steps of 180°/L)")
    size = param.Selector(default=100, objects=[100, 300], label="Test images in the batch")
    source = param.Selector(default=False, objects=SOURCES, label="Images from")
    framing = param.Selector(default="disk", objects=FRAMINGS, label="Framing")
    responses = param.Parameter(default=None, precedence=-1, doc="The current ur.Responses (None: computing).")

    def __init__(self, **params):
        super().__init__(**params)
        self.has_runs = offer_sle_runs(self)
        w = pn.widgets
        self.rank_slider = w.IntSlider.from_param(self.param.rank, name="Rank (spectral score)",
                                                  sizing_mode="stretch_width")
        self.m_slider = w.IntSlider.from_param(self.param.m, sizing_mode="stretch_width")
        self.angle_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.unit_note = pn.pane.Markdown("", styles={"font-size": "12px"}, sizing_mode="stretch_width")
        self.source_note = pn.pane.Markdown("", styles={"font-size": "12px"}, sizing_mode="stretch_width")
        self.controls = pn.Column(
            w.Select.from_param(self.param.run), self.m_slider, self.rank_slider, self.unit_note,
            labelled(w.RadioButtonGroup.from_param(self.param.size)),
            w.Select.from_param(self.param.source), w.Select.from_param(self.param.framing),
            pn.pane.Markdown("Each (run, m, batch) is computed once (a few seconds: the batch and its rotation "
                             "are scattered) and cached; the other angles are computed in the background.",
                             styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        if not self.has_runs:
            self.show_note(NO_RUN)
            return
        if "m" not in params:
            with contextlib.suppress(ValueError, RuntimeError, OSError):  # _on_run shows the error
                self.m = self.L_of(self.run) // 2  # 90°: exact, and not trivial as 180° is
        self.param.watch(lambda *_: self.show_error(None), ["run", "m", "size", "source", "framing"])
        self.param.watch(self._on_run, ["run"])  # before the responses: m's bounds follow the run's L
        self.param.watch(self._recompute, ["run", "m", "size", "source", "framing"])
        self.param.watch(self._notes, ["rank", "responses", "m", "framing"])
        self._on_run()
        self._notes()
        bind = lambda callback: pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(callback, responses=self.param.responses, rank=self.param.rank)),
            linked_axes=False)
        self.scatter_pane = bind(self._scatter)
        self.images_pane = bind(self._images)
        self.ranking_pane = bind(self._ranking)
        self.versus_pane = bind(self._versus)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:  # served: show the page, fill the plots after
            self._compute_in_background(doc)
        else:
            self._recompute()

    # -- state ------------------------------------------------------------------------------------------
    def ranking(self, run) -> tuple[np.ndarray, np.ndarray]:
        return cache.cached_invariance_ranking(run, False)

    def L_of(self, run) -> int:
        return int(cache.cached_first_layer(run, False).L)

    def unit_of(self, run, rank) -> tuple[int, int]:
        """(rank, unit k) of the rank slider's value."""
        _, order = self.ranking(run)
        rank = min(max(int(rank), 0), len(order) - 1)
        return rank, int(order[rank])

    def _key(self) -> tuple:
        return (self.run, int(self.m), int(self.size), bool(self.source), self.framing)

    def _on_run(self, *_):
        """m's range (0..2L−1), the units and their ranking follow the chosen run."""
        try:
            scores, order = self.ranking(self.run)
            L = self.L_of(self.run)
        except (ValueError, RuntimeError, OSError) as exc:
            self.show_error(str(exc))
            return
        with param.parameterized.batch_call_watchers(self):
            self.param.m.bounds = (0, 2 * L - 1)
            self.param.rank.bounds = (0, len(order) - 1)
            self.m = min(int(self.m), 2 * L - 1)
            self.rank = min(int(self.rank), len(order) - 1)
        self.m_slider.format = theta_format(L)
        # Bokeh redraws a slider's "title: value" on a new title, not on a new format: the title changes after.
        self.m_slider.label = f"Rotation m·180°/L (L = {L}, 0–{2 * L - 1})"
        self.rank_slider.format = CustomJSTickFormatter(
            args={"units": [int(k) for k in order], "scores": [round(float(scores[k]), 4) for k in order]},
            code="const r = Math.round(tick); return r + ' = unit ' + units[r] + ' (' + scores[r].toFixed(3) + ')';")
        self.rank_slider.label = f"Rank by spectral score ({len(order)} units)"

    def compute(self, run, m, size, prefer_full, framing) -> ur.Responses:
        return ur.run_responses(run, int(m), int(size), bool(prefer_full), framing)

    def _recompute(self, *_):
        """The responses of the current parameters (cached per (run, m, batch); seconds the first time). Runs
        in the thread that handles the widget's event (Panel's pool, nthreads), never on the event loop."""
        key = self._key()
        try:
            slow = ur.cached_responses(*key) is None
        except (ValueError, RuntimeError, OSError):
            slow = True
        for pane in self.plot_panes():
            pane.loading = slow  # a spinner only while something is computed: a cached angle only draws
        try:
            result = self.compute(*key)
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            self.show_error(f"Cannot compute the responses: {exc}")
            return
        finally:
            for pane in self.plot_panes():
                pane.loading = False
        if self._key() == key:  # a newer choice supersedes this one
            self.responses = result
            self._prefetch(key)

    def _compute_in_background(self, doc):
        """First responses of a served page: computed in a thread, handed to the session's event loop."""
        key = self._key()
        for pane in self.plot_panes():
            pane.loading = True

        def work():
            try:
                result, error = self.compute(*key), None
            except (ValueError, RuntimeError, OSError, MemoryError) as exc:
                result, error = None, f"Cannot compute the responses: {exc}"

            def apply():
                for pane in self.plot_panes():
                    pane.loading = False
                if error:
                    self.show_error(error)
                elif self._key() == key:
                    self.responses = result
                    self._prefetch(key)

            with contextlib.suppress(Exception):  # the session may have closed meanwhile
                doc.add_next_tick_callback(apply)

        threading.Thread(target=work, name="rotation-responses", daemon=True).start()

    def _prefetch(self, key):
        """Compute every other angle of this (run, batch) in the background, so that later slider moves only
        draw: one angle per piece of the shared `piecework.RUNNER`, at low priority, shared by the sessions
        that show this batch and stopped when none of them is left."""
        if not self.served:
            return  # tests, notebooks: the slider computes what it needs
        run, _, size, prefer_full, framing = key
        job = ("rotation-prefetch", run, size, prefer_full, framing)
        current = self.waiting_for("prefetch")
        if current is not None and current.key == job:
            return
        compute, angles = self.compute, 2 * self.L_of(run)

        def pieces():
            for m in range(angles):
                compute(run, m, size, prefer_full, framing)
                yield (m + 1) / angles

        request = None

        def done(_result, _error):  # a failed prefetch only means the slider computes what it needs
            self.in_session(lambda: self.done_waiting("prefetch", request))

        request = RUNNER.submit(job, pieces, on_done=done, low_priority=True)
        self.wait_for("prefetch", request)

    def _notes(self, *_):
        result = self.responses
        self.angle_note.object = angle_text(int(self.m), self.L_of(self.run), self.framing) if self.run else ""
        if result is None:
            self.unit_note.object = "Computing the responses…"
            return
        try:
            scores, _ = self.ranking(self.run)
            rank, unit = self.unit_of(self.run, self.rank)
        except (ValueError, RuntimeError, OSError):
            return
        change = result.change
        self.unit_note.object = (
            f"Rank {rank} (0 = most invariant by its weights): unit **{unit}**, spectral invariance score "
            f"{scores[unit]:.3f}; measured change at {result.degrees:g}°: **{change[unit]:.3f}** of its spread "
            f"(correlation before/after {result.correlation[unit]:.3f}).")
        self.source_note.object = (f"Batch: {len(result.before)} images from {result.source}, "
                                   f"framing: {'disk' if result.framing == 'disk' else 'whole image'}.")

    # -- views ------------------------------------------------------------------------------------------
    def _current(self, responses, rank):
        _, unit = self.unit_of(self.run, rank)
        return responses, unit

    def _scatter(self, responses, rank):
        def view():
            result, unit = self._current(responses, rank)
            if result is None:
                return rv.response_scatter([], [], unit, ur.degrees(self.m, self.L_of(self.run)), int(self.m),
                                           WHAT + " (computing…)")
            return rv.response_scatter(result.before[:, unit], result.after[:, unit], unit, result.degrees,
                                       result.m, WHAT)
        return self.guarded(view)

    def _images(self, responses, rank):
        def view():
            if responses is None:
                return rv.example_images(np.zeros((0, 3, 32, 32)), np.zeros((0, 3, 32, 32)), 0.0, True)
            return rv.example_images(responses.framed, responses.rotated, responses.degrees, responses.exact,
                                     names=("test images 0 and 1 of the batch",))
        return self.guarded(view)

    def _ranking(self, responses, rank):
        def view():
            result, unit = self._current(responses, rank)
            if result is None:
                return rv.change_ranking(np.zeros(0), -1, 0.0)
            return rv.change_ranking(result.change, unit, result.degrees)
        return self.guarded(view)

    def _versus(self, responses, rank):
        def view():
            result, unit = self._current(responses, rank)
            scores, _ = self.ranking(self.run)
            if result is None:
                return rv.change_versus_score(scores, np.full(len(scores), np.nan), -1, float("nan"), 0.0)
            change = result.change
            return rv.change_versus_score(scores, change, unit, ur.rank_correlation(scores, change), result.degrees)
        return self.guarded(view)

    def warm_caches(self) -> None:
        """The default responses are computed when the page is built; nothing more (every angle of a batch
        takes a minute on a CPU: the served page computes them in the background)."""

    # -- layout -----------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Rotation invariance in learned weights\nThe SLE spectra say which units of the first layer "
            r"$$W_1$$ *should* ignore rotations (their weights' energy at angular frequency 0). Here the test "
            r"images are rotated by $$m \pi / L$$ and each unit's response is measured before and after: "
            r"$$r_k(x) = \mathrm{mean}_u \sum_c W_1[k, c]\, \mathrm{BN}(S x)_c(u)$$, the unit's first-layer "
            "pre-activation on the BatchNorm-normalised scattering coefficients (what the spectra analyse), "
            "averaged over the 8×8 positions (a rotation moves positions; their mean is comparable). The change "
            r"of a unit is $$\Vert r_k(\mathrm{rot}\,X) - r_k(X)\Vert / \Vert r_k(X) - \bar r_k\Vert$$ over the "
            "batch: 0 when invariant. At multiples of 90° the rotation is exact and shifts the scattering's angles "
            "cyclically; in between it is interpolated. The **structured SLE** (`sle_fourier`, band "
            r"$$B = 0$$) is invariant by construction: pick such a run to see every unit on the line at 90°. "
            "The shipped run is this project's own CIFAR-10 SLE (no CIFAR SLE was released).",
            sizing_mode="stretch_width")
        if not self.has_runs:
            return pn.Column(intro, self.note, sizing_mode="stretch_width")
        C = rv.CAPTIONS
        self.figures = pn.FlexBox(figure(self.scatter_pane, C["scatter"], width=440),
                                  figure(self.images_pane, C["images"], width=340),
                                  figure(self.ranking_pane, C["ranking"], width=440),
                                  figure(self.versus_pane, C["versus"], width=440))
        return pn.Column(intro, self.alert, self.note, self.angle_note, self.source_note, self.figures,
                         sizing_mode="stretch_width")
