"""Layers page: the layer-wise contraction and separation of trained CNN13s (science.md §3, issue 13) — 1-NN
and SVM accuracy, intra-class distances, per-class PCA and k-local support vectors against depth, for one
run or several overlaid (ρ = ReLU, sign·√, ReLU_k), and the network's accuracy against α over the store's
ReLU_k runs. The analyses are read from the store (`explorer analyse layers RUN` stores them); a run without
one offers a Compute button that runs `analyse_layers` off the event loop with a progress bar."""
from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from explorer.analysis.lsv import K_MAX
from explorer.lru import SharedLRU
from explorer.views import layers as lv

from .base import ComputeBox, Page, failure_text, figure, labelled, run_choices, run_signature

SHIPPED_CNN13 = "cnn13-44da76659d19"  # the shipped ReLU run, K = 32: selected first
MAX_RUNS = 4  # runs overlaid at once (one line style each in the families)
DEFAULT_CLASS = "ship"  # the class of the paper's PCA figure
RULE_CHOICES = {"talk (default)": "talk", "authors": "authors"}
TABS = ("Separation and contraction", "k-local support vectors", "ReLU_k: the network against α")
RULE_HELP = ("**talk**: a point stays in $$\\Gamma^k$$ while more than half of its $$k$$ nearest *other* training "
             "points disagree with its label; **authors**: while a $$k$$-NN classifier that counts the point as "
             "its own first neighbour (ties to the smallest class) misclassifies it, so $$\\Gamma^1$$ is every "
             "point.")
NO_RUN = ("There is no CNN13 run in the run store (`explorer runs list`) nor among the shipped runs. Train one "
          "with `explorer train cnn13` (or from the **Runs** page), then `explorer analyse layers RUN`, and "
          "reload this page.")
NO_ALPHA_RUN = ("**No ReLU_k run in the store yet.** Train one per α, with the same width and epochs, e.g. "
                "`explorer train cnn13 --rho relu_k --alpha 0.5 --width 32 --epochs 30` (then `--alpha 0.25`, "
                "`--alpha 0.1`, …), or from the **Runs** page (model cnn13, ρ = relu_k), then reload this page. "
                "ReLU_k applies the ReLU to the first $$k = \\lfloor \\alpha K \\rfloor$$ channels of every inner "
                "layer and leaves the others linear.")


# -- the runs and their stored analyses ---------------------------------------------------------------------

def cnn13_runs() -> dict[str, str]:
    """The CNN13 runs of the store (label → run id), the shipped ReLU run first. Damaged runs whose
    configuration still says CNN13 are offered too: selecting one shows what is wrong with it."""
    from explorer.runs import describe_model

    def detail(info):
        return describe_model(info.config).removeprefix("cnn13 ")

    return run_choices(lambda info: (info.config or {}).get("model") == "cnn13", SHIPPED_CNN13, detail)


def alpha_runs() -> list[dict]:
    """The ReLU_k runs of the store with a test accuracy, as `explorer.views.layers.alpha_figure` takes them."""
    from explorer.runs import RunStore

    points = []
    for info in RunStore().list():
        config = info.config or {}
        model = config.get("model_config", {})
        if (config.get("model") != "cnn13" or model.get("rho") != "relu_k" or model.get("alpha") is None
                or info.accuracy is None or info.status == "corrupt"):
            continue
        points.append({"run": info.id, "dataset": config.get("dataset", "?"), "width": int(model.get("width", 0)),
                       "alpha": float(model["alpha"]), "accuracy": float(info.accuracy),
                       "epochs": int(info.epochs_done)})
    return points


_LOADED = SharedLRU(32)  # (run id, files signature) → stored analysis; shared by sessions


def stored_analysis(run_id: str) -> dict | None:
    """`explorer.analysis.layers.stored_layers` of the run (None: no stored analysis), cached while the run's
    files stay the same. Raises the analysis' errors (ValueError for a run that is not a CNN13, the run
    store's for a missing run or missing or damaged weights)."""
    from explorer.analysis.layers import stored_layers

    return _LOADED.get_or_compute((run_id, run_signature(run_id)), lambda: stored_layers(run_id))


def dataset_problem(run_id: str) -> str | None:
    """Why the run's dataset cannot be loaded here (the loader's own message, which says how to fix it), or
    None. Only looks for the files: CIFAR-10 needs a configured location, the synthetic set nothing."""
    from explorer.runs import RunStore

    dataset = RunStore().load(run_id).config.get("dataset")
    if dataset != "cifar10":
        return None
    from explorer.data import DatasetNotFoundError, find_cifar10

    try:
        find_cifar10()
    except DatasetNotFoundError as exc:
        return str(exc)
    return None


class LayersPage(Page):
    title = "Layers"
    errors_leave_plots_stale = True  # the alert is for the figures' own errors; a run's problem has its own
    compute_svm = True  # the Compute button stores the SVM part too (tests may leave it out: quicker)

    runs = param.ListSelector(default=[], objects=[], label=f"Runs (CNN13, up to {MAX_RUNS})")
    rule = param.Selector(default="talk", objects=RULE_CHOICES, label="k-LSV rule")
    k = param.Integer(5, bounds=(1, K_MAX), label=f"k (neighbours, 1–{K_MAX}) for |Γᵏ| against depth")
    pca_class = param.Selector(default=None, objects=[], allow_None=True,
                               label="Class (PCA; thick in the intra-class figure)")
    normalise = param.Boolean(True, label="PCA: divide by the total variance")
    # The stored analyses of the selected runs, in their order (runs without one are left out): the figures'.
    results = param.List(default=[], precedence=-1)
    computing = param.Boolean(False, precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        choices = cnn13_runs()
        self.param.runs.objects = choices
        if not self.runs and choices:
            self.runs = [next(iter(choices.values()))]
        self.has_runs = bool(choices)
        self.problems: dict[str, str] = {}  # run id → why it cannot be shown
        self.missing: list[str] = []  # selected runs without a stored analysis
        self.computable: list[str] = []  # those of them whose dataset is here
        self.compute_errors: dict[str, str] = {}  # run id → why its computation failed
        w = pn.widgets
        self.runs_widget = w.MultiChoice.from_param(self.param.runs, max_items=MAX_RUNS, sizing_mode="stretch_width")
        self.k_slider = w.IntSlider.from_param(self.param.k, sizing_mode="stretch_width")
        self.controls = pn.Column(
            self.runs_widget,
            w.Select.from_param(self.param.pca_class), w.Checkbox.from_param(self.param.normalise),
            labelled(w.RadioButtonGroup.from_param(self.param.rule)),
            pn.pane.Markdown(RULE_HELP, styles={"font-size": "12px"}, sizing_mode="stretch_width"),
            self.k_slider,
            sizing_mode="stretch_width")
        self.tabs: pn.Tabs | None = None  # made with the layout
        self._layout = None
        self._updating = False  # True while the page itself sets its controls (no tab switch then)
        self.run_problems = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.computation = ComputeBox("Compute the missing analyses", self._on_compute)
        self.compute_text, self.compute_button = self.computation.text, self.computation.button
        self.progress, self.progress_text = self.computation.progress, self.computation.progress_text
        self.compute_box = self.computation.box
        if not self.has_runs:
            self.show_note(NO_RUN)
        pane = lambda: pn.pane.HoloViews(None, linked_axes=False)
        self.accuracy_pane, self.intra_pane, self.pca_pane = pane(), pane(), pane()
        self.lsv_k_pane, self.lsv_depth_pane = pane(), pane()
        points = alpha_runs()
        self.alpha_pane = pn.pane.HoloViews(lv.alpha_figure(points), linked_axes=False)
        self.alpha_note = pn.pane.Markdown(NO_ALPHA_RUN, visible=not points, width=420)
        self.param.watch(lambda *_: self.show_error(None), ["runs", "rule", "k", "pca_class", "normalise"])
        self.param.watch(self._on_runs, ["runs"])
        self.param.watch(lambda *_: self.show_tab(0), ["pca_class", "normalise"])
        self.param.watch(lambda *_: self.show_tab(1), ["rule", "k"])
        self._on_runs()

    # -- state ----------------------------------------------------------------------------------------------
    def _on_runs(self, *_):
        """Read the selected runs' stored analyses; say which runs cannot be shown and which need computing."""
        loaded, problems, missing = [], {}, []
        for run_id in list(self.runs)[:MAX_RUNS]:
            try:
                result = stored_analysis(run_id)
            except Exception as exc:  # noqa: BLE001  (a damaged run must not stop the page: say what is wrong)
                problems[run_id] = failure_text(exc)
                continue
            if result is None:
                missing.append(run_id)
            else:
                loaded.append(result)
        self.problems, self.missing = problems, missing
        classes = list(dict.fromkeys(c for r in loaded for c in r["classes"]))
        self._updating = True
        try:
            with param.parameterized.batch_call_watchers(self):
                self.param.pca_class.objects = classes
                if self.pca_class not in classes:
                    self.pca_class = (DEFAULT_CLASS if DEFAULT_CLASS in classes else classes[0]) if classes else None
                self.results = loaded
        finally:
            self._updating = False
        self._draw()
        self._show_runs_state()

    def _draw(self):
        """New figures for the loaded runs, each a DynamicMap of the controls that change it (the k slider
        redraws one figure). A new set of runs makes new figures rather than new frames: a frame that adds
        or removes layers leaves HoloViews' reused layers without their hover columns ("???")."""
        results = list(self.results)
        for pane in (self.accuracy_pane, self.intra_pane, self.pca_pane, self.lsv_k_pane, self.lsv_depth_pane):
            if isinstance(pane.object, hv.DynamicMap):  # the figures replaced stop following the controls
                for stream in pane.object.streams:
                    if hasattr(stream, "unwatch"):
                        stream.unwatch()
        dm = lambda callback, **kw: hv.DynamicMap(pn.bind(callback, results=results, **kw))
        self.accuracy_pane.object = dm(self._accuracy)
        self.intra_pane.object = dm(self._intra, class_name=self.param.pca_class)
        self.pca_pane.object = dm(self._pca, class_name=self.param.pca_class, normalise=self.param.normalise)
        self.lsv_k_pane.object = dm(self._lsv_k, rule=self.param.rule)
        self.lsv_depth_pane.object = dm(self._lsv_depth, rule=self.param.rule, k=self.param.k)

    def _show_runs_state(self):
        """The problems of the selected runs (danger) and the missing analyses with the Compute button."""
        lines = [f"- **{run}**: {text}" for run, text in {**self.problems, **self.compute_errors}.items()
                 if run in self.runs]
        self.run_problems.object = ("These runs cannot be shown:\n" + "\n".join(lines)) if lines else ""
        self.run_problems.visible = bool(lines)
        if not self.missing:
            self.computable = []
            self.compute_box.visible = self.computing
            return
        text, computable = [], []
        for run_id in self.missing:
            try:
                problem = dataset_problem(run_id)
            except Exception as exc:  # noqa: BLE001
                problem = str(exc)
            if run_id in self.compute_errors:
                text.append(f"- **{run_id}**: no stored layer-wise analysis (its computation failed, see above).")
            elif problem is None:
                computable.append(run_id)
                text.append(f"- **{run_id}**: no stored layer-wise analysis yet. **Compute** it here (a few "
                            "seconds on the synthetic set; minutes on a CPU for CIFAR-10: the features of every "
                            "image, a neighbour search and an SVM per depth), or run "
                            f"`explorer analyse layers {run_id}`.")
            else:
                text.append(f"- **{run_id}**: no stored layer-wise analysis, and it cannot be computed here: "
                            f"{problem}")
        self.computable = computable
        self.compute_text.object = "**Missing analyses**\n\n" + "\n".join(text)
        self.compute_button.disabled = self.computing or not computable
        self.compute_box.visible = True

    async def _on_compute(self, *_):
        """Compute the missing analyses of the selected runs one after the other, each in a worker thread
        (`analyse_layers`, off the event loop); show its progress, then the figures."""
        from explorer.analysis.layers import analyse_layers

        if self.computing:
            return
        todo = [run_id for run_id in self.computable if run_id in self.missing and run_id not in self.compute_errors]
        if not todo:
            return
        self.computing = True
        self.computation.started()
        try:
            for i, run_id in enumerate(todo):
                job = lambda report, run_id=run_id: analyse_layers(run_id, svm=self.compute_svm, progress=False,
                                                                   report=report)
                try:
                    await self.computation.follow(job, f"Computing **{run_id}** ({i + 1} of {len(todo)})",
                                                  start=i / len(todo), share=1 / len(todo))
                except Exception as exc:  # noqa: BLE001  (the dataset missing, a damaged run: said, page kept)
                    self.compute_errors[run_id] = f"the analysis failed: {failure_text(exc)}"
        finally:
            self.computing = False
            self.computation.finished()
            self._on_runs()

    # -- views ----------------------------------------------------------------------------------------------
    def _accuracy(self, results):
        return self.guarded(lv.accuracy_figure, results)

    def _intra(self, results, class_name):
        return self.guarded(lv.intra_class_figure, results, class_name)

    def _pca(self, results, class_name, normalise):
        return self.guarded(lv.pca_figure, results, class_name, bool(normalise))

    def _lsv_k(self, results, rule):
        return self.guarded(lv.lsv_k_figure, results, rule)

    def _lsv_depth(self, results, rule, k):
        return self.guarded(lv.lsv_depth_figure, results, rule, k)

    def plot_panes(self) -> list[pn.pane.HoloViews]:
        return [p for p in super().plot_panes() if p is not self.alpha_pane]  # a run's state never greys it

    # -- layout ---------------------------------------------------------------------------------------------
    def show_tab(self, index: int) -> None:
        """Open the tab that shows what a control changes (the k slider's figure is on the second)."""
        if self.tabs is not None and not self._updating:
            self.tabs.active = index

    def __panel__(self):
        if self._layout is None:
            self._layout = self._build_layout()
        return self._layout

    def _build_layout(self):
        intro = pn.pane.Markdown(
            "## Layers: contraction and separation, depth by depth\nA trained CNN13 (13 convolutions of width "
            r"$$K$$, no pooling until the end) maps an image $$x$$, at depth $$n = 2 \ldots 13$$, to the output "
            r"of its $$n$$-th non-linearity; $$\Phi_n(x)$$ is that map averaged over space (a $$K$$-vector), "
            "standardised with the training set's statistics. How well do simple classifiers separate the classes "
            r"on $$\Phi_n$$, and how much does each layer contract a class? The 1-NN and Gaussian-SVM accuracies "
            r"rise with $$n$$ toward the network's own, the classes shrink, and fewer training points "
            r"$$\Gamma_n^k$$ stay badly classified by their $$k$$ nearest neighbours. Overlay several runs to "
            r"compare non-linearities $$\rho$$: ReLU, $$\mathrm{sign}(x)(\sqrt{|x|} + 0.1)$$, or ReLU on "
            r"$$k = \lfloor \alpha K \rfloor$$ channels only (ReLU_k). The analyses are computed once per run "
            "(`explorer analyse layers RUN`) and read here.", sizing_mode="stretch_width")
        if not self.has_runs:
            return pn.Column(intro, self.note, sizing_mode="stretch_width")
        C = lv.CAPTIONS
        width = 540
        # Tabs drawn only when opened (as the other pages): each plot shown costs browser time at every move.
        self.tabs = pn.Tabs(
            (TABS[0], pn.FlexBox(figure(self.accuracy_pane, C["accuracy"], width=width),
                                 figure(self.intra_pane, C["intra"], width=width),
                                 figure(self.pca_pane, C["pca"], width=width))),
            (TABS[1], pn.FlexBox(figure(self.lsv_k_pane, C["lsv_k"], width=width),
                                 figure(self.lsv_depth_pane, C["lsv_depth"], width=width))),
            (TABS[2], pn.FlexBox(figure(self.alpha_pane, C["alpha"], width=width), self.alpha_note)),
            dynamic=True, sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.note, self.run_problems, self.compute_box, self.tabs,
                         sizing_mode="stretch_width")


__all__ = ["SHIPPED_CNN13", "LayersPage"]
