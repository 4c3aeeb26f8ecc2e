"""SLE Thresholding page: keep a fraction f of W₁'s angular-Fourier coefficients (or of its raw weights, or a
band |ω| ≤ B) and see the spectrum and weights before and after, the accuracy against f from the stored sweep
with the current point, and a live re-evaluation of the trained network (no retraining) in the background."""
from __future__ import annotations

import threading
import time

import holoviews as hv
import panel as pn
import param

from explorer.analysis import spectra as sp
from explorer.analysis import threshold_live as live
from explorer.views import thresholding as tv

from .base import Page, failure_text, figure
from .spectra import NO_RUN, SHIPPED_SLE, offer_sle_runs

# A job waits this long before it evaluates: the slider's own redraw gets the CPU first, and a job that a
# quick next move supersedes costs nothing.
LIVE_START_DELAY_S = 0.25
TALK_KEEP = 0.2  # "80 % thresholded": keep 20 % of the angular-Fourier coefficients, globally
NO_SWEEP = ("There is no stored accuracy sweep for run {run}, so the curves are empty and the current point "
            "comes from the live re-evaluation alone. Compute it once with `explorer analyse threshold {run} "
            "--sweep` (add `--limit 2000` for a quicker class-balanced estimate), then reload this page.")


def pct(value: float) -> str:
    return f"{100 * value:.2f} %"


class ThresholdingPage(Page):
    title = "SLE thresholding"
    # False: no live re-evaluation (tests of the figures alone: without a server, a job's results would
    # redraw the plots from its own thread while the test changes them from another).
    live_enabled = True

    run = param.Selector(default=None, objects=[], allow_None=True, label="Run (SLE-like)")
    # Soft bounds only: a value outside them set from Python reaches the views, which say what is wrong.
    keep = param.Number(0.2, softbounds=(0.0, 1.0), step=0.01, label="Kept fraction f")
    mode = param.Selector(default="fourier_global", objects={v: k for k, v in live.MODE_LABELS.items()},
                          label="Thresholding")
    band = param.Integer(1, softbounds=(0, 4), label="Band B (band limit: keep |ω| ≤ B)")
    unit = param.Integer(0, softbounds=(0, 511), label="Unit k (weights figure)")
    j1 = param.Selector(default=0, objects=[0, 1], label="j1 (weights figure)")
    # The live results of the current request, by step ("estimate", "full", "samples").
    results = param.Dict(default={}, precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self.has_runs = offer_sle_runs(self)
        self.live_jobs = live.Jobs()
        self.generation = self.live_jobs.generation
        self._publish = threading.Lock()
        self._request = None
        self._live_scheduled = False  # the first live re-evaluation starts when the page is shown
        self.jobs: list[dict] = []  # one record per live job (outcome, images evaluated): the tests read it
        self._notes = {"sweep": None, "plan": None}
        w = pn.widgets
        self.keep_slider = w.FloatSlider.from_param(self.param.keep, step=0.01, sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, sizing_mode="stretch_width",
                                               height=14, bar_color="primary")
        self.live_text = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
        self.controls = pn.Column(
            w.Select.from_param(self.param.run), self.keep_slider, w.Select.from_param(self.param.mode),
            w.IntSlider.from_param(self.param.band, sizing_mode="stretch_width"),
            w.IntSlider.from_param(self.param.unit, sizing_mode="stretch_width"),
            w.Select.from_param(self.param.j1),
            pn.pane.Markdown("Thresholding applies to $$W_1$$ as learned (on BatchNorm-normalised coefficients). "
                             "f is ignored by the band limit; B only by the other modes.",
                             styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        if not self.has_runs:
            self.show_note(NO_RUN)
            return
        self.param.watch(lambda *_: self.show_error(None), ["run", "keep", "mode", "band", "unit", "j1"])
        self.param.watch(self._on_run, ["run"])
        self.param.watch(self.request_live, ["run", "keep", "mode", "band"])
        self._on_run()
        layer = dict(run=self.param.run, keep=self.param.keep, mode=self.param.mode, band=self.param.band)
        dm = lambda callback, **kw: pn.pane.HoloViews(hv.DynamicMap(pn.bind(callback, **kw)),
                                                      linked_axes=False)
        self.spectrum_pane = dm(self._spectrum, **layer)
        self.weights_pane = dm(self._weights, **layer, unit=self.param.unit, j1=self.param.j1)
        self.curves_pane = dm(self._curves, **layer, results=self.param.results)
        self.drop_pane = dm(self._drop, run=self.param.run, results=self.param.results)

    # -- state ----------------------------------------------------------------------------------------------
    def _on_run(self, *_):
        """The run's choices (B up to L/2, units, scales) and whether it has a stored sweep."""
        try:
            layer = live.thresholded_layer(self.run, 1.0, "fourier_global", 1)[0]
        except (ValueError, RuntimeError, OSError) as exc:
            self.show_error(str(exc))
            return
        with param.parameterized.batch_call_watchers(self):
            self.param.band.softbounds = (0, layer.L // 2)
            self.param.unit.softbounds = (0, layer.K - 1)
            self.param.j1.objects = list(range(layer.J))
            self.j1 = self.j1 if self.j1 in range(layer.J) else 0
            self.unit = min(self.unit, layer.K - 1)
            self.band = min(self.band, layer.L // 2)
        self._notes["sweep"] = None if live.stored_sweep(self.run) else NO_SWEEP.format(run=self.run)
        self._show_notes()

    def _show_notes(self):
        self.show_note("\n\n".join(n for n in self._notes.values() if n) or None)

    def request_key(self, run=None, keep=None, mode=None, band=None) -> tuple:
        """What the live result depends on (default: the current setting): f does not matter to the band
        limit, nor B to the others."""
        run, keep, mode, band = (self.run, self.keep, self.mode, self.band) if run is None else (run, keep, mode, band)
        return (run, None if mode == "band" else float(keep), mode, int(band) if mode == "band" else None)

    def results_for(self, results: dict, key: tuple) -> dict:
        """The live results (by step) of the request `key` only (an older request's are never shown)."""
        return {step: r for step, r in results.items() if r["key"] == key}

    def thresholded(self, run, keep, mode, band):
        """(learned W₁, thresholded W₁) as FirstLayers (cached per (run, f, mode, B)); the checks of f and B
        come first so that their message is the one shown."""
        original = live.thresholded_layer(run, 1.0, "fourier_global", 1)[0]
        if mode == "band":
            sp.check_band(original, band)
            return live.thresholded_layer(run, None, mode, int(band))
        sp.check_keep(keep)
        return live.thresholded_layer(run, float(keep), mode, 1)

    def request_live(self, *_):
        """Start a live re-evaluation of the current setting in a worker thread; a running one for an older
        setting is superseded (it stops at its next batch and never publishes)."""
        if not (self.has_runs and self.live_enabled):
            return
        key = self.request_key()
        if key == self._request:
            return
        self._request = key
        with self._publish:  # a job publishes under this lock, after checking it is still the latest
            number = self.generation.next()
        try:
            self.thresholded(self.run, self.keep, self.mode, self.band)
        except (ValueError, RuntimeError, OSError) as exc:
            self.progress.visible = False
            self.live_text.object = ""
            self.show_error(str(exc))
            return
        self.progress.value, self.progress.visible = 0, True
        self.live_text.object = self._live_markdown({}, pending=True)
        record = {"number": number, "key": key, "outcome": "running", "batches": 0}
        self.jobs.append(record)
        self.live_jobs.start(self._job, number, record, self.run, self.keep, self.mode, self.band,
                             name=f"threshold-live-{number}")

    def _job(self, number, record, run, keep, mode, band):
        current = lambda: self.generation.is_current(number)

        def on_batch(step, done, total):
            record["batches"] += 1  # how far a job got before it stopped
            self._on_batch(number, step, done, total)

        def on_result(result):
            with self._publish:
                if not current():
                    raise live.Superseded
                result["key"] = record["key"]
                shown = {**self.results_for(self.results, record["key"]), result["step"]: result}
                self.results = shown
                self.live_text.object = self._live_markdown(shown, pending=not result["final"])

        try:
            time.sleep(LIVE_START_DELAY_S)
            if not current():
                raise live.Superseded
            plan = live.evaluation_plan(run)
            if current():
                self._notes["plan"] = plan.note
                self._show_notes()
            live.evaluate_request(run, None if mode == "band" else keep, mode, band, plan,
                                  should_stop=lambda: not current(), on_result=on_result, on_batch=on_batch)
            record["outcome"] = "done"
        except live.Superseded:
            record["outcome"] = "superseded"
        except Exception as exc:  # noqa: BLE001  (a worker thread: say what failed, keep serving)
            record["outcome"] = "failed"
            if current():
                self.show_error(f"Live re-evaluation failed: {failure_text(exc)}")
        finally:
            if current():
                self.progress.visible = False

    def _on_batch(self, number, step, done, total):
        if self.generation.is_current(number):
            self.progress.value = int(100 * done / max(total, 1))

    def busy(self) -> bool:
        return any(t.is_alive() for t in self.live_jobs.threads) or super().busy()

    def cancel_work(self) -> None:
        self.live_jobs.stop()  # its job stops at its next evaluation batch
        super().cancel_work()

    def wait_live(self, timeout: float = 120.0) -> None:
        """Wait for every live job started so far (tests)."""
        self.live_jobs.join(timeout)

    def _live_markdown(self, results: dict, pending: bool) -> str:
        what = (f"band limit |ω| ≤ {self.band}" if self.mode == "band"
                else f"{live.MODE_LABELS[self.mode]}, f = {self.keep:.2f}")
        lines = [f"**Live re-evaluation** of {self.run}, W₁ thresholded ({what}), no retraining:"]
        for result in results.values():
            drop = 100 * (result["accuracy_after"] - result["accuracy_before"])
            lines.append(f"- {result['source']}: {pct(result['accuracy_before'])} → "
                         f"**{pct(result['accuracy_after'])}** ({drop:+.2f} points; kept {result['kept']:,} of "
                         f"{result['total']:,} angular coefficients)")
        if pending:
            lines.append("- computing… (" + ("the full test set next" if results else "started") + ")")
        return "\n".join(lines)

    # -- views ----------------------------------------------------------------------------------------------
    def _spectrum(self, run, keep, mode, band):
        def view():
            original, thresholded = self.thresholded(run, keep, mode, band)
            before, after = sp.omega1_energy(original), sp.omega1_energy(thresholded)
            share = after.sum() / max(before.sum(), 1e-300)
            title = (f"Ω₁/ΣΩ₁ thresholded (red) vs learned (grey), W₁\n{self._setting(keep, mode, band)}: "
                     f"keeps {share:.1%} of the energy")
            return tv.spectrum_bars(before, after, original.L, title)
        return self.guarded(view)

    def _weights(self, run, keep, mode, band, unit, j1):
        def view():
            original, thresholded = self.thresholded(run, keep, mode, band)
            if not 0 <= int(unit) < original.K:
                raise ValueError(f"unit k must be in 0..{original.K - 1} (the run's {original.K} units), got {unit}.")
            j = int(j1) if int(j1) < original.J else 0
            title = f"Unit {unit}'s order-1 W₁, j1={j}: before (solid), after (dashed)\n{self._setting(keep, mode, band)}"
            return tv.unit_weights(original.order1[unit, :, j], thresholded.order1[unit, :, j], original.colours,
                                   original.L, title)
        return self.guarded(view)

    def _setting(self, keep, mode, band) -> str:
        return f"band |ω| ≤ {band}" if mode == "band" else f"{live.MODE_LABELS[mode]}, f = {float(keep):.2f}"

    def current_point(self, run, keep, mode, band) -> tuple[tuple[float, float] | None, dict | None]:
        """(the current setting's point (f, accuracy) read off the stored sweep, or None; the sweep)."""
        sweep = live.stored_sweep(run)
        if sweep is None:
            return None, None
        curve = live.curve_of(sweep, mode, band)
        if curve is None:
            return None, sweep
        if mode == "band":
            return (curve[0][0], curve[1][0]), sweep
        accuracy = live.interpolated(*curve, float(keep))
        return (None if accuracy is None else (float(keep), accuracy)), sweep

    def _curves(self, run, keep, mode, band, results):
        def view():
            self.thresholded(run, keep, mode, band)  # f and B checked: their message first
            marker, sweep = self.current_point(run, keep, mode, band)
            band_point = None
            if sweep is not None:
                band_point = (sweep["band_kept"] / max(sweep["total"], 1), sweep["band_accuracy"])
            # The live point on the sweep's own test set (the estimate beside a 2,000-image sweep), else the
            # most precise one when there is no sweep to compare with.
            live_point = None
            current = self.results_for(results, self.request_key(run, keep, mode, band)).values()
            same = [r for r in current if (r["final"] if sweep is None else r["images"] == sweep["images"])]
            if same:
                r = same[0]
                x = r["kept"] / max(r["total"], 1) if mode == "band" else float(keep)
                live_point = (x, r["accuracy_after"])
            if sweep is None:
                head = "no stored sweep: the live point only"
            else:
                head = f"stored sweep: {sweep['images']:,} test images, band B={sweep['band']}"
            now = "not in the sweep" if marker is None else f"{100 * marker[1]:.2f} % (sweep)"
            title = f"Accuracy against f (W₁ thresholded)\n{head}\nnow: {self._setting(keep, mode, band)} → {now}"
            return tv.accuracy_curves(sweep, marker, live_point, band_point, title)
        return self.guarded(view)

    def talk_drop(self, run, results) -> dict[str, tuple[float, int] | None]:
        """The drops in points at keep 0.2, Fourier global, with their number of test images: the stored
        sweep's and the live one (the most precise so far) when the current setting is that; None when
        unknown."""
        drops: dict = {"sweep": None, "live": None}
        sweep = live.stored_sweep(run)
        if sweep is not None:
            after = live.interpolated(sweep["fractions"], sweep["accuracy"]["fourier"]["global"], TALK_KEEP)
            if after is not None:
                drops["sweep"] = (100 * (sweep["accuracy_before"] - after), sweep["images"])
        for result in self.results_for(results, (run, TALK_KEEP, "fourier_global", None)).values():
            drops["live"] = (100 * (result["accuracy_before"] - result["accuracy_after"]), result["images"])
        return drops

    def _drop(self, run, results):
        def view():
            drops = self.talk_drop(run, results)
            said = [f"{name} {value:.2f} ({images:,} images)" for name, (value, images) in
                    ((n, d) for n, d in drops.items() if d is not None)]
            ours = "\n".join(said) or "no sweep; live at f = 0.20, Fourier global"
            return tv.drop_bars(None if drops["sweep"] is None else drops["sweep"][0],
                                None if drops["live"] is None else drops["live"][0],
                                f"Points lost, 80 % thresholded (W₁, Fourier)\n{ours}")
        return self.guarded(view)

    def warm_caches(self) -> None:
        """The default threshold and the stored sweep (the live re-evaluation starts when a page is shown)."""
        if self.has_runs:
            self.thresholded(self.run, self.keep, self.mode, self.band)
            live.stored_sweep(self.run)

    # -- layout ---------------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## SLE thresholding\nHow much of the learned first layer $$W_1$$ does the network need? Keep the "
            "largest fraction $$f$$ of its angular-Fourier coefficients (over the whole layer, or per output "
            r"unit), or only the angular frequencies $$|\omega| \le B$$, invert the DFT, and re-evaluate the "
            "trained SLE on the test set **without retraining**; for comparison, the same sparsity on the raw "
            r"weights ($$\theta$$ domain). The talk: zeroing 80 % of the Fourier coefficients costs about 2 % "
            "accuracy, because the learned weights are smooth in angle (see **SLE spectra**). Thresholding "
            "always applies to $$W_1$$ as learned. The curves come from the sweep stored beside the run; the "
            "live re-evaluation of the current setting runs in the background (a class-balanced 2,000-image "
            "estimate first, then the full test set) and a newer setting replaces it.",
            sizing_mode="stretch_width")
        if not self.has_runs:
            return pn.Column(intro, self.note, sizing_mode="stretch_width")
        if not self._live_scheduled:
            self._live_scheduled = True
            doc = pn.state.curdoc
            if doc is not None and doc.session_context is not None:
                # Once the browser has the page: a job's first updates (the note) could otherwise land
                # while the session's models are being made, and be lost.
                pn.state.onload(self.request_live)
            else:
                self.request_live()
        C = tv.CAPTIONS
        return pn.Column(
            intro, self.alert, self.note,
            pn.FlexBox(figure(self.curves_pane, C["curves"], width=520),
                       pn.Column(self.live_text, self.progress, width=420)),
            pn.FlexBox(figure(self.spectrum_pane, C["spectrum"], width=470),
                       figure(self.weights_pane, C["weights"], width=420),
                       figure(self.drop_pane, C["drop"], width=420)),
            sizing_mode="stretch_width")


__all__ = ["SHIPPED_SLE", "ThresholdingPage"]
