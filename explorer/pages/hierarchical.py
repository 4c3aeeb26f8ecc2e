"""Hierarchical CNN page: the attribute axes of a trained multiscale hierarchical CNN (science.md §5) — one
layer's attribute map for a chosen image, the translation test along the older attribute against the layer
(trained network against its untrained control), and the last layer's example of a query and its best
partner shifted by one position. The test is read from the store (`explorer.analysis.attributes`); a run
without one offers a Compute button that runs `analyse_attributes` off the event loop with a progress bar.
The forward passes of the images shown run in a worker thread (served) and are cached per (run, image)."""
from __future__ import annotations

import threading

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.lru import SharedLRU
from explorer.views import hierarchical as hv_

from .base import ComputeBox, Page, attempt, failure_text, figure, run_choices, run_signature

N_LAYERS = hv_.N_LAYERS
NO_RUN = ("There is no hierarchical CNN run in the run store (`explorer runs list`) nor among the shipped runs. "
          "Train one with `explorer train hcnn` (or from the **Runs** page, model hcnn), then reload this page.")
NO_ANALYSIS = "no stored translation test: compute it above"
FORWARD_DEVICE = "cpu"  # one or two images at a time: the CPU, whatever else the accelerator runs


# -- the runs, their stored tests and their maps -------------------------------------------------------------

def is_hcnn(info) -> bool:
    return (info.config or {}).get("model") == "hcnn"


def hcnn_runs() -> dict[str, str]:
    """The hierarchical-CNN runs of the store (label → run id): a shipped one first, else the newest with
    weights. Damaged runs whose configuration still says hcnn are offered too: selecting one says why."""
    from explorer.runs import RunStore, describe_model

    infos = [info for info in RunStore().list() if is_hcnn(info)]
    first = (next((i.id for i in infos if i.shipped), None)
             or next((i.id for i in infos if i.accuracy is not None), None))
    return run_choices(is_hcnn, first, lambda info: describe_model(info.config).removeprefix("hcnn "))


_TESTS = SharedLRU(32)  # (run, files signature) → stored translation test or None
_MODELS = SharedLRU(4)  # (run, signature) → the trained network on FORWARD_DEVICE
_MAPS = SharedLRU(512)  # (run, signature, test index) → 11 maps (A, F)
_FORWARD_LOCK = threading.Lock()  # one forward pass at a time: a pass switches the shared model's mode


def stored_test(run_id: str) -> dict | None:
    """`explorer.analysis.attributes.stored_translations` of the run (None: none stored), cached while the
    run's files stay the same. Raises the run's errors (not an hcnn, no weights, damaged)."""
    from explorer.analysis.attributes import stored_translations

    key = (run_id, run_signature(run_id))
    return _TESTS.get_or_compute(key, lambda: stored_translations(run_id))


def image_maps(run_id: str, test_index: int, image: np.ndarray) -> list[np.ndarray]:
    """The 11 attribute maps (A, F) of `image` (3, 32, 32) uint8, the CIFAR-10 test image `test_index`, in the
    trained network `run_id`; cached per (run, weights, image)."""
    from explorer.analysis.attributes import attribute_maps, load_hcnn

    signature = run_signature(run_id)
    key = (run_id, signature, int(test_index))
    maps = _MAPS.get(key)
    if maps is not None:
        return maps
    model = _MODELS.get_or_compute((run_id, signature), lambda: load_hcnn(run_id).build_model(FORWARD_DEVICE))
    with _FORWARD_LOCK:
        per_layer = attribute_maps(model, np.array(image)[None], FORWARD_DEVICE)
    return _MAPS.put(key, [layer[0] for layer in per_layer])


def analysis_images(result: dict, positions) -> list[np.ndarray]:
    """The images (3, 32, 32) uint8 of the analysis' images at `positions`: from the shipped samples, or the
    configured CIFAR-10 test split (the loader's error, saying how to configure it, when there is none)."""
    from explorer.data.samples import shipped_test_images
    from explorer.data.sources import cifar_test

    indices = np.asarray(result["image_indices"])[list(positions)]
    if "shipped" in str(result["source"]):
        shipped = shipped_test_images()
        where = {int(t): i for i, t in enumerate(shipped.indices)}
        return [shipped.images[where[int(t)]] for t in indices]
    return [cifar_test().images[int(t)] for t in indices]


class HierarchicalPage(Page):
    title = "Hierarchical CNN"
    errors_leave_plots_stale = True

    run = param.Selector(default=None, objects=[], allow_None=True, label="Run (hierarchical CNN)")
    layer = param.Integer(N_LAYERS, bounds=(1, N_LAYERS), label=f"Layer j (1–{N_LAYERS})")
    image = param.Selector(default=0, objects=[0], label="Image (CIFAR-10 test samples shipped)")
    query = param.Integer(0, bounds=(0, 1), label="Query of the last layer's example")
    # What the figures show (set by the page): the stored test, the chosen image's maps, the example.
    translations = param.Parameter(default=None, precedence=-1)
    maps = param.Parameter(default=None, precedence=-1)
    example = param.Parameter(default=None, precedence=-1)
    computing = param.Boolean(False, precedence=-1)

    def __init__(self, **params):
        # Set once their choices are known: the samples' (image) and the stored test's (query).
        image, self._initial_query = params.pop("image", None), params.pop("query", None)
        super().__init__(**params)
        self.samples, samples_error = None, None
        try:
            from explorer.data.samples import shipped_test_images

            self.samples = shipped_test_images()
            choices = {f"{i}: {self.samples.classes[label]} (test image {index})": i
                       for i, (label, index) in enumerate(zip(self.samples.labels, self.samples.indices))}
        except OSError as exc:  # a broken installation: said, the rest of the page works
            choices, samples_error = {"none": 0}, str(exc)
        self.param.image.objects = choices
        if image is not None:
            self.image = image
        choices = hcnn_runs()
        self.param.run.objects = choices
        if self.run is None and choices:
            self.run = next(iter(choices.values()))
        self.has_runs = bool(choices)
        self.run_problem: str | None = None  # why the run (or its maps) cannot be shown
        self.compute_error: str | None = None
        self._wanted: dict[str, tuple] = {}  # what → the key whose result is still wanted
        w = pn.widgets
        self.layer_slider = w.IntSlider.from_param(self.param.layer, sizing_mode="stretch_width")
        self.query_slider = w.IntSlider.from_param(self.param.query, sizing_mode="stretch_width")
        self.controls = pn.Column(
            w.Select.from_param(self.param.run, sizing_mode="stretch_width"), self.layer_slider,
            w.Select.from_param(self.param.image, sizing_mode="stretch_width"), self.query_slider,
            pn.pane.Markdown("The maps of each image are computed once per run (a forward pass, a fraction of a "
                             "second) and kept; the translation test is read from the store.",
                             styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        self.run_problems = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.example_note = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.verdict = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.computation = ComputeBox("Compute the translation test", self._on_compute)
        self.compute_text, self.compute_button = self.computation.text, self.computation.button
        self.progress, self.progress_text = self.computation.progress, self.computation.progress_text
        self.compute_box = self.computation.box
        if not self.has_runs:
            self.show_note(NO_RUN)
        elif samples_error:
            self.show_note(samples_error)
        dm = lambda callback, **kw: pn.pane.HoloViews(hv.DynamicMap(pn.bind(callback, **kw)), linked_axes=False)
        self.image_pane = dm(self._image, image=self.param.image)
        self.map_pane = dm(self._map, maps=self.param.maps, layer=self.param.layer)
        self.translation_pane = dm(self._translations, translations=self.param.translations,
                                   layer=self.param.layer)
        self.pair_pane = dm(self._pair, example=self.param.example)
        self.query_map_pane = dm(self._example_map, example=self.param.example, which="query")
        self.partner_map_pane = dm(self._example_map, example=self.param.example, which="partner")
        self.param.watch(self._on_run, ["run"])
        self.param.watch(lambda *_: self._request_maps(), ["image"])
        self.param.watch(lambda *_: self._request_example(), ["query"])
        self._on_run()

    # -- state ----------------------------------------------------------------------------------------------
    def _on_run(self, *_):
        """Read the run's stored test (fast: a file of the store); then the chosen image's maps and the
        example, computed off the event loop."""
        self.run_problem, self.compute_error = None, None
        translations = None
        if self.run is not None:
            try:
                translations = stored_test(self.run)
            except Exception as exc:  # noqa: BLE001  (a damaged run must not stop the page: say what is wrong)
                self.run_problem = failure_text(exc)
        with param.parameterized.batch_call_watchers(self):
            if translations is not None:
                queries = int(translations["queries"])
                self.param.query.bounds = (0, max(queries - 1, 1))
                query = self._initial_query if self._initial_query is not None else self.query
                self.query = min(int(query), queries - 1)
            self._initial_query = None
            self.translations = translations
            if self.run_problem is not None:
                self.maps, self.example = None, None
        self._show_state()
        if self.run_problem is None and self.run is not None:
            self._request_maps()
            self._request_example()

    def _show_state(self):
        """The run's problem (danger), the Compute box when the run has no stored test, the verdict."""
        problem = self.run_problem or self.compute_error
        self.run_problems.object = f"**{self.run}** cannot be shown: {problem}" if problem else ""
        self.run_problems.visible = bool(problem)
        missing = self.run is not None and self.run_problem is None and self.translations is None
        if missing:
            self.compute_text.object = (
                f"**{self.run}** has no stored translation test yet. **Compute** it here: the attribute maps of "
                "1000 CIFAR-10 test images (the 300 shipped ones when no dataset is configured) through the "
                "trained network and an untrained copy, then the best partners at shifts −1, 0, +1 (about a "
                "minute on a CPU). It is stored beside the run and read from then on.")
        self.compute_button.disabled = self.computing or not missing
        self.compute_box.visible = missing or self.computing
        self.verdict.object = self._verdict()

    def _verdict(self) -> str:
        result = self.translations
        if result is None:
            return ""
        score, control = np.asarray(result["translation"]), np.asarray(result["control_translation"])
        unshifted = np.asarray(result["unshifted"])
        accuracy = result["test_accuracy"]
        smooth = 0.5 * (np.asarray(result["self"])[:, 0] + np.asarray(result["self"])[:, -1])
        return (f"Last layer: translation ratio **{score[-1]:.3f}** trained (best unshifted correlation "
                f"{unshifted[-1]:.3f}, self-similarity at ±1 {smooth[-1]:.3f}) against **{control[-1]:.3f}** "
                f"untrained; layers 2–4 of the trained network: {np.nanmean(score[1:4]):.3f} on average. "
                + (f"Test accuracy of the run: {100 * accuracy:.2f} %. " if accuracy is not None else "")
                + f"{result['queries']} queries among {result['images']} images ({result['source']}).")

    def _in_background(self, what: str, key: tuple, work, apply, panes) -> None:
        """`work()` (forward passes) in a worker thread when served, then `apply(result, error)` on the
        session's event loop, unless a newer `what` was asked for meanwhile; at once when not served."""
        self._wanted[what] = key
        if not self.served:
            apply(*attempt(work))
            return
        for pane in panes:
            pane.loading = True

        def worker():
            if self._wanted.get(what) != key:
                return  # superseded before it started: the newer request shows its own result
            outcome = attempt(work)

            def done():
                if self._wanted.get(what) != key:
                    return
                for pane in panes:
                    pane.loading = False
                apply(*outcome)

            self.in_session(done)

        threading.Thread(target=worker, name=f"hierarchical-{what}", daemon=True).start()

    def _request_maps(self):
        """The chosen image's maps in the chosen run (cached per (run, image))."""
        if self.run is None or self.run_problem is not None or self.samples is None:
            return
        run_id, position = self.run, int(self.image)
        test_index = int(self.samples.indices[position])
        image = self.samples.images[position]

        def work():
            return {"run": run_id, "position": position, "test_index": test_index,
                    "label": self.samples.classes[int(self.samples.labels[position])],
                    "maps": image_maps(run_id, test_index, image)}

        def apply(result, error):
            if error is not None:
                self.run_problem = f"its maps cannot be computed: {error}"
                self._show_state()
                return
            self.maps = result

        self._in_background("maps", (run_id, position), work, apply, [self.map_pane])

    def _request_example(self):
        """The query's and its best partner's images and last-layer maps (cached per (run, image))."""
        result = self.translations
        if self.run is None or result is None:
            self.example = None
            self._say_example(None)
            return
        run_id, query = self.run, min(int(self.query), int(result["queries"]) - 1)
        shifts = list(np.asarray(result["shifts"]))
        column = shifts.index(hv_.SHIFT)
        partner = int(np.asarray(result["partner"])[query, column])

        def work():
            images = analysis_images(result, [query, partner])
            indices = np.asarray(result["image_indices"])[[query, partner]]
            maps = [image_maps(run_id, int(t), im)[-1] for t, im in zip(indices, images)]
            classes = self.samples.classes if self.samples is not None else None
            labels = [int(v) for v in np.asarray(result["labels"])[[query, partner]]]
            return {"run": run_id, "query": query, "partner": partner, "images": images, "maps": maps,
                    "test_indices": [int(t) for t in indices],
                    "classes": [classes[v] if classes else f"class {v}" for v in labels],
                    "similarity": float(np.asarray(result["partner_similarity"])[query, column])}

        def apply(example, error):
            self.example = example
            self._say_example(error)

        self._in_background("example", (run_id, query, id(result)), work, apply,
                            [self.pair_pane, self.query_map_pane, self.partner_map_pane])

    def _say_example(self, error: str | None):
        if error and "shipped" not in str((self.translations or {}).get("source", "shipped")):
            error = f"the stored test was computed on the CIFAR-10 test set, whose images are needed here: {error}"
        self.example_note.object = f"The example cannot be shown: {error}" if error else ""
        self.example_note.visible = bool(error)

    async def _on_compute(self, *_):
        """Compute the run's translation test in a worker thread (`analyse_attributes`, off the event loop),
        showing its progress; then read it as stored."""
        from explorer.analysis.attributes import analyse_attributes

        run_id = self.run
        if self.computing or run_id is None or self.translations is not None or self.run_problem is not None:
            return
        self.computing = True
        self.computation.started()
        error = None
        try:
            await self.computation.follow(lambda report: analyse_attributes(run_id, progress=False, report=report),
                                          f"Computing the translation test of **{run_id}**")
        except Exception as exc:  # noqa: BLE001  (a damaged run, a full disk: said, page kept)
            error = f"the translation test failed: {failure_text(exc)}"
        finally:
            self.computing = False
            self.computation.finished()
            if self.run == run_id:
                self._on_run()
                self.compute_error = error
                self._show_state()

    # -- views ----------------------------------------------------------------------------------------------
    def _image(self, image):
        def view():
            if self.samples is None:
                return hv_.image_figure(None, "No image")
            position = int(image)
            label = self.samples.classes[int(self.samples.labels[position])]
            return hv_.image_figure(self.samples.images[position],
                                    f"Image {position}: {label}\ntest image {int(self.samples.indices[position])}")
        return self.guarded(view)

    def _map(self, maps, layer):
        def view():
            if maps is None:
                what = "no run" if self.run is None else ("cannot be computed" if self.run_problem else "computing…")
                return hv_.attribute_map_figure(None, layer, what)
            return hv_.attribute_map_figure(maps["maps"][int(layer) - 1], layer,
                                            f"image {maps['position']} ({maps['label']}), {maps['run']}")
        return self.guarded(view)

    def _translations(self, translations, layer):
        note = "no hierarchical CNN run" if self.run is None else (
            "the run cannot be shown" if self.run_problem else NO_ANALYSIS)
        return self.guarded(hv_.translation_figure, translations, layer, note)

    def _pair(self, example):
        def view():
            if example is None:
                return hv_.pair_figure(None, None, f"Query and best partner at +1: {self._no_example()}\n"
                                                   "nothing to show")
            query_class, partner_class = example["classes"]
            return hv_.pair_figure(*example["images"],
                                   f"Query {example['query']} ({query_class}) → {example['partner']} "
                                   f"({partner_class})\nbest at +1, correlation {example['similarity']:.3f}")
        return self.guarded(view)

    def _example_map(self, example, which):
        def view():
            shift = hv_.SHIFT if which == "partner" else 0
            if example is None:
                return hv_.example_map_figure(None, N_LAYERS, f"{which.capitalize()}: {self._no_example()}", shift)
            index = 0 if which == "query" else 1
            number = example["query"] if which == "query" else example["partner"]
            title = (f"Query {number}: layer {N_LAYERS} map" if which == "query"
                     else f"Partner {number}: layer {N_LAYERS} map shifted by +1")
            return hv_.example_map_figure(example["maps"][index], N_LAYERS, title, shift)
        return self.guarded(view)

    def _no_example(self) -> str:
        if self.run is None:
            return "no run"
        if self.run_problem is not None:
            return "the run cannot be shown"
        return "not available" if self.translations is not None else "no stored test"

    def plot_panes(self) -> list[pn.pane.HoloViews]:
        return [p for p in super().plot_panes() if p is not self.image_pane]

    # -- layout ---------------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Hierarchical CNN: translations along attributes\nThe multiscale hierarchical CNN (Jacobsen, "
            "Oyallon, Mallat & Smeulders, 2017) gives every layer's output two attribute axes beside the position "
            r"$$u$$: $$x_j(v_{j-1}, v_j, u)$$, the older attribute $$v_{j-1}$$ (the previous layer's filter "
            r"index, subsampled by 2) and the newest $$v_j$$ (this layer's filter index). Each layer convolves "
            "jointly along space and both attributes, then averages the oldest attribute out. The talk's claim: "
            "after training, the last layers' maps move along the older attribute from one image to another "
            "(a *translation* along it) while the earlier layers' do not, and an untrained network does not. "
            "Choose a run, a layer and an image on the left.", sizing_mode="stretch_width")
        C = hv_.CAPTIONS
        maps = pn.FlexBox(figure(self.image_pane, C["image"], width=220),
                          figure(self.map_pane, C["map"], width=500), sizing_mode="stretch_width")
        test = pn.Column(figure(self.translation_pane, C["translations"], width=520), self.verdict,
                         sizing_mode="stretch_width")
        example = pn.FlexBox(figure(self.pair_pane, C["example_images"], width=290),
                             figure(self.query_map_pane, C["query_map"], width=370),
                             figure(self.partner_map_pane, C["partner_map"], width=370), sizing_mode="stretch_width")
        heading = lambda text: pn.pane.Markdown(f"### {text}", sizing_mode="stretch_width", margin=(10, 10, 0, 10))
        return pn.Column(intro, self.alert, self.note, self.run_problems, self.compute_box,
                         heading("Attribute map of one layer"), maps,
                         heading("The translation test, layer by layer"), test,
                         heading(f"The last layer's example (layer {N_LAYERS})"), self.example_note, example,
                         sizing_mode="stretch_width")


__all__ = ["HierarchicalPage", "hcnn_runs"]
