"""Roto-translation page: the angular wavelets along θ1, the angular spectrum of the second layer for a chosen
image and what a rotation does to it (`explorer.analysis.roto`), and the stored classification results of the
roto-translation and translation scattering side by side (`explorer.classify.results`)."""
from __future__ import annotations

import threading
import traceback

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.analysis import roto as ra
from explorer.analysis.piecework import RUNNER
from explorer.data import sources
from explorer.scattering.angular import angular_bank, max_angular_scales
from explorer.scattering.roto import roto_pairs
from explorer.views import roto as rv

from .base import Page, attempt, figure, labelled, theta_format, theta_label

SIZES = [16, 32, 64]  # 2^J ≤ size: J ≤ 4, 5, 6 (the J slider reaches 6)
NO_RESULTS = ("No classification result is stored yet. Compute one with `explorer classify svm` (see "
              "`explorer classify svm --help`: it scatters CIFAR-10 with the roto-translation and the "
              "translation scattering and fits the paper's Gaussian SVM), then press *Reload*.")
SHIPPED_ONLY = ("These results were computed on the project's machine and ship with the package; "
                "`explorer classify svm` computes your own (they then take their place here).")
NO_PACKAGE = ("The classification package (`explorer.classify.results`) is not available in this installation, "
              "so no stored result can be read. Its command is `explorer classify svm`.")


def paper_note() -> str:
    """What the paper reported, said as unverified (science.md §2 tags it [mem])."""
    try:
        from explorer.classify.settings import PAPER_REFERENCE
    except ImportError:
        return ""
    return f"For reference: {PAPER_REFERENCE['source']}."


def pair_choices(J: int) -> dict[str, tuple[int, int]]:
    """The progressive scale pairs of J scales as selector choices, "j1 = 0, j2 = 1" → (0, 1)."""
    pairs = roto_pairs(max(int(J), 1))
    return {f"j1 = {a}, j2 = {b}": (a, b) for a, b in pairs} or {"j1 = 0, j2 = 1": (0, 1)}


def placeholder(L: int, K: int, J: int, pair: tuple[int, int], size: int, degrees: float) -> ra.RotationComparison:
    """A comparison of zeros with the shapes of a real one: what the plots draw while the first result is
    computed (a DynamicMap keeps its first frame's element types)."""
    K = max(1, min(K, max_angular_scales(L)))
    records = angular_bank(L, K).records
    empty = ra.AngularSpectrum(J, L, K, *pair, np.zeros((L, L)), np.zeros((L, L)), np.zeros((len(records), L)),
                               records, 0)
    image = np.zeros((size, size))
    return ra.RotationComparison(float(degrees), ra.rotation_steps(degrees, L), ra.is_exact_rotation(degrees),
                                 True, image, image, empty, empty)


class RotoPage(Page):
    title = "Roto-translation"

    image_name = param.Selector(default="camera", objects=sources.image_names(), label="Image")
    size = param.Selector(default=64, objects=SIZES, label="Image size (pixels)")
    J = param.Integer(3, bounds=(2, 6), label="J (scales; needs 2ᴶ ≤ image size)")
    L = param.Selector(default=8, objects=[4, 6, 8, 12, 16], label="L (angles θ = index·180°/L)")
    K = param.Integer(2, bounds=(1, 4), label="K (angular scales; needs 2ᴷ ≤ L)")
    pair = param.Selector(default=(0, 1), objects=pair_choices(3), label="Scale pair (j1, j2) of z")
    theta2 = param.Integer(0, bounds=(0, 7), label="θ2 index")
    angle = param.Number(90.0, bounds=(0.0, 360.0), step=7.5, label="Rotation angle (degrees)")
    window = param.Boolean(True, label="Window the image (smooth disk)")

    bank = param.Parameter(default=None, precedence=-1, doc="The current AngularBank (None: bad L, K).")
    result = param.Parameter(default=None, precedence=-1, doc="The current ra.RotationComparison.")

    COMPUTED = ("image_name", "size", "J", "L", "K", "pair", "angle", "window")

    def __init__(self, **params):
        super().__init__(**params)
        self._lock = threading.Lock()
        self._sync_bounds()
        w = pn.widgets
        self.theta2_slider = w.IntSlider.from_param(self.param.theta2, format=theta_format(self.L),
                                                    label=theta_label("θ2", self.L), sizing_mode="stretch_width")
        self.angle_slider = w.FloatSlider.from_param(self.param.angle, sizing_mode="stretch_width")
        self.controls = pn.Column(
            w.Select.from_param(self.param.image_name),
            labelled(w.RadioButtonGroup.from_param(self.param.size), self.param.size.label),
            w.IntSlider.from_param(self.param.J),
            labelled(w.RadioButtonGroup.from_param(self.param.L), self.param.L.label),
            w.IntSlider.from_param(self.param.K),
            w.Select.from_param(self.param.pair),
            self.theta2_slider,
            self.angle_slider,
            w.Checkbox.from_param(self.param.window),
            pn.pane.Markdown("Each (image, J, L, K, pair) is computed once and cached; a large J takes seconds "
                             "the first time (the filters are built). θ2 only redraws.",
                             styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        self.param.watch(self._on_shape, ["J", "L"])  # before the computation: the pair and θ2 follow J and L
        self.param.watch(self._update, list(self.COMPUTED), precedence=1)

        dm = lambda callback, **kw: pn.pane.HoloViews(hv.DynamicMap(pn.bind(callback, **kw)), linked_axes=False)
        bank, res, t2 = self.param.bank, self.param.result, self.param.theta2
        self.filter_re_pane = dm(self._filters, bank=bank, part="re")
        self.filter_im_pane = dm(self._filters, bank=bank, part="im")
        self.filter_abs_pane = dm(self._filters, bank=bank, part="abs")
        self.fourier_pane = dm(self._fourier, bank=bank)
        self.heatmap_pane = dm(self._heatmap, result=res, theta2=t2)
        self.profile_pane = dm(self._profile, result=res, theta2=t2)
        self.filter_energy_pane = dm(self._filter_energy, result=res, theta2=t2)
        self.images_pane = dm(self._images, result=res)
        self.moves_pane = dm(self._moves, result=res)
        self.stays_pane = dm(self._stays, result=res)
        self.scales_pane = dm(self._scales, result=res)
        self._result_panes = [self.heatmap_pane, self.profile_pane, self.filter_energy_pane, self.images_pane,
                              self.moves_pane, self.stays_pane, self.scales_pane]

        # Classification results: read from the results store (light), never at import.
        self.classify_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.classify_bars_pane = pn.pane.HoloViews(rv.classification_bars([]), linked_axes=False)
        self.classify_table_pane = pn.pane.HoloViews(rv.classification_table([]), linked_axes=False)
        self.classify_bars_frame = figure(self.classify_bars_pane, rv.CAPTIONS["classify_bars"], width=640)
        self.classify_table_frame = figure(self.classify_table_pane, rv.CAPTIONS["classify_table"], width=900)
        self.results_rows: list[dict] = []
        self.reload_button = w.Button(label="Reload", width=120)
        self.reload_button.on_click(lambda *_: self.load_results())

        self._update_bank()
        if self.served:  # show the page at once; the spectra and the stored results arrive after
            self._compute_in_background()
        else:
            self._update()
            self.load_results()

    # -- state ----------------------------------------------------------------------------------------
    def plot_panes(self) -> list[pn.pane.HoloViews]:
        """The plots an error of the parameters concerns (not the stored classification results)."""
        return [p for p in super().plot_panes() if p not in (self.classify_bars_pane, self.classify_table_pane)]

    def _sync_bounds(self):
        choices = pair_choices(self.J)
        self.param.pair.objects = choices
        if tuple(self.pair) not in choices.values():
            self.pair = next(iter(choices.values()))
        self.param.theta2.bounds = (0, int(self.L) - 1)
        self.theta2 = min(int(self.theta2), int(self.L) - 1)

    def _on_shape(self, *_):
        with param.parameterized.batch_call_watchers(self):
            self._sync_bounds()
        slider = getattr(self, "theta2_slider", None)
        if slider is not None and slider.format.args["L"] != int(self.L):
            slider.format = theta_format(self.L)
            slider.label = theta_label("θ2", self.L)  # after the format: the new title redraws the value with it

    def _key(self) -> tuple:
        return (self.image_name, int(self.size), int(self.J), int(self.L), int(self.K), tuple(self.pair),
                float(self.angle), bool(self.window))

    def image(self, name: str, size: int) -> np.ndarray:
        return sources.named_image(name, int(size))

    def compute(self, name, size, J, L, K, pair, degrees, window) -> ra.RotationComparison:
        """The spectra of the image and of its rotation (`analysis.roto.rotation_comparison`, cached)."""
        return ra.rotation_comparison(self.image(name, size), degrees, J, L, K, *pair, window=window)

    def _update_bank(self) -> None:
        """The angular filters of (L, K) (fast); kept as they were when (L, K) is refused (`_check` says why)."""
        try:
            self.bank = angular_bank(int(self.L), int(self.K))
        except ValueError:
            pass

    def _update(self, *_):
        """Recompute for the current parameters. Runs in the thread that handles the widget's event (Panel's
        pool, nthreads), never on the event loop; the latest parameters win."""
        key = self._key()
        self._update_bank()
        error = self._check(key)
        if error is not None:
            self.show_error(error)
            return
        self.show_error(None)
        slow = not self.is_cached(*key)
        for pane in self._result_panes:
            pane.loading = slow  # a spinner only while something is computed: a cached result only draws
        try:
            with RUNNER.interactive():  # a visitor waits: background pieces wait for this
                result, error = self._attempt(key)
        finally:
            for pane in self._result_panes:
                pane.loading = False
        if self._key() != key:
            return  # a newer choice supersedes this one
        if error is not None:
            self.show_error(error)
        else:
            self.result = result

    def _attempt(self, key) -> tuple[ra.RotationComparison | None, str | None]:
        """(the comparison, None), or (None, what to say); a bug's traceback also goes to the server's log."""
        result, error = attempt(lambda: self.compute(*key))
        return result, error and f"Cannot compute the angular spectrum: {error}"

    def is_cached(self, name, size, J, L, K, pair, degrees, window) -> bool:
        try:
            return ra.rotation_comparison_cached(self.image(name, size), degrees, J, L, K, *pair, window=window)
        except (ValueError, OSError):
            return False

    @staticmethod
    def _check(key) -> str | None:
        """The parameters' own limits, checked before anything is computed: the engine's message (which
        names the limit), or None."""
        from explorer.scattering.roto import check_roto_parameters

        _, size, J, L, K, pair, _, _ = key
        try:
            check_roto_parameters(J, (size, size), L, 1, K)
            if pair not in roto_pairs(J):
                raise ValueError(f"(j1, j2) = {pair} is not a second-layer pair for J={J}; pairs: {roto_pairs(J)}.")
        except ValueError as exc:
            message = str(exc)
            if "angular_scales" in message:
                message += " (angular_scales is K on the left.)"
            return f"These parameters do not fit together: {message}"
        return None

    def _compute_in_background(self):
        """First result of a served page, and the stored classification results: computed in a thread, handed
        to the session's event loop."""
        key = self._key()
        error = self._check(key)
        if error is not None:
            self.show_error(error)
        else:
            for pane in self._result_panes:
                pane.loading = True

        def work():
            result, failed = None, None
            if error is None:
                result, failed = self._attempt(key)
            stored = self.read_results()

            def apply():
                for pane in self._result_panes:
                    pane.loading = False
                if result is None and error is None:
                    self.show_error(failed)
                elif result is not None and self._key() == key:
                    self.result = result
                self.show_results(*stored)

            self.in_session(apply)

        threading.Thread(target=work, name="roto-spectrum", daemon=True).start()

    # -- classification results ----------------------------------------------------------------------
    @staticmethod
    def read_results() -> tuple[list[dict], str | None, str]:
        """(comparison rows, message, kind of message) from `explorer.classify.results` (imported here:
        reading results stays off the app's import; it reads a few small JSON files per result)."""
        try:
            from explorer.classify import results
        except ImportError:
            return [], NO_PACKAGE, "warning"
        try:
            rows = [dict(r) for r in results.comparison_table(results.list_results())]
            damaged = results.damaged_results()
        except (OSError, ValueError) as exc:
            return [], f"The stored classification results cannot be read: {exc}", "danger"
        except Exception as exc:  # noqa: BLE001  (a damaged store must not take the page down)
            traceback.print_exc()
            return [], f"The stored classification results cannot be read: {exc!r}", "danger"
        notes = [] if rows else [NO_RESULTS]
        if rows and all(r.get("shipped") for r in rows):
            notes.append(SHIPPED_ONLY)
        if damaged:
            notes.append(f"{len(damaged)} stored result folder{'s' if len(damaged) > 1 else ''} could not be read "
                         f"and {'are' if len(damaged) > 1 else 'is'} left out: "
                         + "; ".join(f"`{d.id}`: {d.reason}" for d in damaged[:3]))
        return rows, " ".join(notes) or None, "warning" if damaged else "info"

    def show_results(self, rows: list[dict], message: str | None, kind: str = "info") -> None:
        """Draw the stored results (`rv.classification_bars`, `rv.classification_table`); none: only the note."""
        self.results_rows = rows
        self.classify_note.alert_type = kind
        self.classify_note.object = message or ""
        self.classify_note.visible = bool(message)
        self.classify_bars_pane.object = rv.classification_bars(rows)
        self.classify_table_pane.object = rv.classification_table(rows)
        for frame in (self.classify_bars_frame, self.classify_table_frame):
            frame.visible = bool(rows)

    def load_results(self) -> None:
        self.show_results(*self.read_results())

    # -- views ----------------------------------------------------------------------------------------
    def _current(self, result):
        if result is None:
            return placeholder(int(self.L), int(self.K), int(self.J), tuple(self.pair), int(self.size),
                               float(self.angle)), True
        return result, False

    def _filters(self, bank, part):
        if bank is None:
            bank = angular_bank(8, 2)
        return self.guarded(rv.angular_filter_part_figure, bank, part)

    def _fourier(self, bank):
        if bank is None:
            bank = angular_bank(8, 2)
        return self.guarded(rv.angular_fourier_figure, bank)

    def _drawn(self, fn, result, *args):
        def view():
            comparison, waiting = self._current(result)
            element = fn(comparison, *args)
            return element.opts(title="Computing the angular spectrum…") if waiting else element
        return self.guarded(view)

    def _heatmap(self, result, theta2):
        return self._drawn(lambda c, t: rv.spectrum_heatmap(c.original, t), result, theta2)

    def _profile(self, result, theta2):
        return self._drawn(lambda c, t: rv.theta1_profile_figure(c.original, t), result, theta2)

    def _filter_energy(self, result, theta2):
        return self._drawn(lambda c, t: rv.filter_energy_figure(c.original, t), result, theta2)

    def _images(self, result):
        return self._drawn(rv.image_pair, result)

    def _moves(self, result):
        return self._drawn(rv.profile_comparison_figure, result)

    def _stays(self, result):
        return self._drawn(rv.spectrum_comparison_figure, result)

    def _scales(self, result):
        return self._drawn(rv.scale_comparison_figure, result)

    # -- layout ---------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Roto-translation scattering\n"
            r"The separable roto-translation scattering (Oyallon & Mallat 2015) keeps the angle $$\theta_1$$ of the "
            r"first wavelet as an axis. Its second layer takes, on each $$\theta_1$$ slice, "
            r"$$z = |x \star \psi_{j_1,\theta_1}| \star \psi_{j_2,\theta_2}$$, then filters $$z$$ **along "
            r"$$\theta_1$$** with small periodic wavelets (the angular low-pass $$\bar\phi$$ and Morlets "
            r"$$\bar\psi_k$$, $$k \lt K$$, $$2^K \le L$$) and takes the modulus. A rotation of the image shifts "
            r"$$\theta_1$$: $$z(\theta_1)$$ moves, but the modulus of its Fourier transform along $$\theta_1$$, "
            "and the energy each angular wavelet keeps, barely change. Choose an image, $$(J, L, K)$$ and a "
            "scale pair on the left; the tabs show the angular wavelets, the angular spectrum of $$z$$, a "
            "rotation (the angle slider), and stored classification results.",
            sizing_mode="stretch_width")
        C = rv.CAPTIONS
        wavelets = pn.Column(
            pn.FlexBox(figure(self.filter_re_pane, C["filter_re"], width=300),
                       figure(self.filter_im_pane, C["filter_im"], width=300),
                       figure(self.filter_abs_pane, C["filter_abs"], width=420)),
            pn.FlexBox(figure(self.fourier_pane, C["fourier"], width=640)), sizing_mode="stretch_width")
        spectrum = pn.FlexBox(figure(self.heatmap_pane, C["heatmap"], width=370),
                              figure(self.profile_pane, C["profile"], width=320),
                              figure(self.filter_energy_pane, C["filter_energy"], width=320))
        rotation = pn.Column(
            pn.FlexBox(figure(self.images_pane, C["images"], width=560),
                       figure(self.scales_pane, C["scales"], width=440)),
            pn.FlexBox(figure(self.moves_pane, C["moves"], width=440),
                       figure(self.stays_pane, C["stays"], width=440)),
            sizing_mode="stretch_width")
        classification = pn.Column(
            pn.Row(pn.pane.Markdown(
                "Test accuracy of the paper's pipeline (YUV channels scattered separately, log, standardised "
                "features, Gaussian-kernel SVM with C = 50) on the roto-translation scattering and on the "
                "translation scattering of the same images, as stored by `explorer classify svm`. " + paper_note(),
                sizing_mode="stretch_width"), self.reload_button, sizing_mode="stretch_width"),
            self.classify_note, self.classify_bars_frame, self.classify_table_frame,
            sizing_mode="stretch_width")
        # Tabs drawn only when opened (dynamic): the browser's redraw time grows with every plot on the page.
        # Every row is a FlexBox: served, a tab holding Column(FlexBox, Column(plot, caption)) never left
        # (Panel 1.9.4: the browser kept it after a click on another tab; FlexBox rows, as on the Scattering
        # page, switch).
        self.tabs = pn.Tabs(("Angular wavelets", wavelets), ("Angular spectrum", spectrum), ("Rotation", rotation),
                            ("Classification", classification), dynamic=True, sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.note, self.tabs, sizing_mode="stretch_width")

