"""Hybrids & small data page: test accuracy against the training-set size (100 / 500 / 1000 / all) for each
model, its spread over seeds, and the gain of each hybrid over the CNN13 trained on the same images
(science.md §4). It reads what `explorer protocol small-data` stored (`explorer.protocols.small_data`) and
the run store's listing; `explorer.analysis.hybrids` merges and compares, `explorer.views.hybrids` draws.
Nothing is computed or trained here: a page load reads a few JSON files."""
from __future__ import annotations

import warnings

import panel as pn
import param

from explorer.analysis import hybrids as ha
from explorer.views import hybrids as hv_

from .base import Page, failure_text, figure

COMMAND = "explorer protocol small-data --models scat_linear scat_mlp cnn13 --schedule quick"
NOTHING_STORED = (
    "**No small-data result is stored yet.** The figure shows only the talk's reported figures. Run the "
    f"protocol from a terminal, e.g.\n\n`{COMMAND}`\n\n(the paper's sizes 100 500 1000 and seeds 1–5 by default; "
    "`--schedule paper` for the paper's 200×20 epochs, `--dataset synthetic --sizes 20 40` for a quick try "
    "without CIFAR-10), then press **Reload**. A grid stopped half-way continues where it stopped with the same "
    "command, and this page shows what has finished.")
NO_CHOICE = "none"  # the baseline selector's choice for no baseline (its value: a Select shows None as blank)
NO_BASELINE = ("This grid has no CNN13 to compare with: add one with "
               "`explorer protocol small-data --models cnn13 --schedule {schedule} --dataset {dataset}` "
               "(same sizes and seeds as the hybrids), then press **Reload**.")


def read_stored() -> tuple[list[dict], list, list[str], str | None]:
    """(grid summaries newest first, the run store's listing, warnings on files left out, an error reading the
    store or None). Imported here: the protocol's module loads the model registry (torch)."""
    from explorer.protocols.small_data import list_summaries
    from explorer.runs import RunStore

    summaries, runs, skipped, error = [], [], [], None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summaries = list_summaries()
        skipped = [str(w.message) for w in caught]
    except Exception as exc:  # noqa: BLE001  (an unreadable store must not take the page down)
        error = f"The stored small-data summaries cannot be read: {failure_text(exc)}"
    try:
        runs = RunStore().list()
    except Exception as exc:  # noqa: BLE001
        error = ((error + " " if error else "")
                 + f"The run store cannot be listed (no \"all\" points): {failure_text(exc)}")
    return summaries, runs, skipped, error


class HybridsPage(Page):
    title = "Hybrids & small data"

    # check_on_set: objects start empty, and a value set then must not be added to them (param's default).
    grid = param.Selector(default=None, objects=[], allow_None=True, check_on_set=True,
                          label="Stored grids (schedule · dataset)")
    models = param.ListSelector(default=[], objects=[], check_on_set=True, label="Models shown")
    baseline = param.Selector(default=None, objects=[], allow_None=True, check_on_set=True,
                              label="Baseline of the gain")
    show_seeds = param.Boolean(True, label="Show each seed (faint dots)")
    show_reported = param.Boolean(True, label="Show the talk's reported figures (CIFAR-10)")

    def __init__(self, **params):
        super().__init__(**params)
        self.collections: dict[str, ha.Collection] = {}
        self.skipped: list[str] = []
        w = pn.widgets
        # The three selectors are kept in step with their parameters here, options and value in one update:
        # linked by `from_param`, a served selector given its new options before its new value keeps what of
        # the old value fits them and sends it back (Panel 1.9): after Reload the CNN13 baseline became the first
        # model, and a new grid showed only the models it shares with the grid before.
        self.grid_widget = w.Select(label=self.param.grid.label, options={}, sizing_mode="stretch_width")
        self.models_widget = w.CheckBoxGroup(options=[], value=[], inline=False)
        self.baseline_widget = w.Select(label=self.param.baseline.label, options={NO_CHOICE: NO_CHOICE},
                                        sizing_mode="stretch_width")
        self.grid_widget.param.watch(lambda e: self._from_widget("grid", e.new), "value")
        self.baseline_widget.param.watch(
            lambda e: self._from_widget("baseline", None if e.new == NO_CHOICE else e.new), "value")
        self.models_widget.param.watch(lambda e: self._from_widget("models", list(e.new)), "value")
        self.param.watch(self._to_widgets, ["grid", "models", "baseline"], precedence=0)
        self._syncing = False
        self.reload_button = w.Button(label="Reload", width=120)
        self.reload_button.on_click(lambda *_: self.load())
        self.grid_text = pn.pane.Markdown("", styles={"font-size": "12px"}, sizing_mode="stretch_width")
        self.controls = pn.Column(
            self.grid_widget, self.grid_text,
            pn.pane.Markdown("Models shown", margin=(5, 10, -8, 10), styles={"font-size": "13px"}),
            self.models_widget, self.baseline_widget,
            w.Checkbox.from_param(self.param.show_seeds), w.Checkbox.from_param(self.param.show_reported),
            self.reload_button,
            pn.pane.Markdown("Reads the grids stored by `explorer protocol small-data` and the run store; "
                             "*Reload* after a grid has advanced.", styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        self.accuracy_pane = pn.pane.HoloViews(hv_.accuracy_figure([]), linked_axes=False)
        self.gain_pane = pn.pane.HoloViews(hv_.gain_figure([], [], None), linked_axes=False)
        self.table_pane = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
        self.verdict = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.accuracy_frame = figure(self.accuracy_pane, hv_.CAPTIONS["accuracy"], width=720)
        self.gain_frame = figure(self.gain_pane, hv_.CAPTIONS["gain"], width=720)
        self.table_frame = figure(self.table_pane, hv_.CAPTIONS["table"], width=720)
        self.rows: list[dict] = []  # the table's rows (text), for tests
        self.store_error: str | None = None
        self._quiet = False
        self._grid_shown = None  # the grid whose models the model choice is of
        self.param.watch(self._on_grid, ["grid"], precedence=0)
        self.param.watch(self._update, ["grid", "models", "baseline", "show_seeds", "show_reported"], precedence=1)
        self.load()

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def collection(self) -> ha.Collection | None:
        return self.collections.get(self.grid) if self.grid is not None else None

    def load(self) -> None:
        """Read the stored summaries and the run listing (light: JSON files) and show them; the grid chosen
        stays chosen when it is still stored."""
        summaries, runs, skipped, error = read_stored()
        try:
            found = ha.collect(summaries, runs)
        except Exception as exc:  # noqa: BLE001  (a bug too: say it, keep the page)
            found, error = [], f"Cannot read the stored summaries: {failure_text(exc)}"
        self.collections = {c.key: c for c in found}
        self.skipped, self.store_error = skipped, error
        keep = self.grid if self.grid in self.collections else (found[0].key if found else None)
        self._quiet = True  # one redraw at the end, not one per parameter set here
        try:
            with param.parameterized.batch_call_watchers(self):
                self.param.grid.objects = {c.label: c.key for c in found}
                self.grid = keep
            self._on_grid()
        finally:
            self._quiet = False
        self._update()

    def _on_grid(self, *_):
        """The models and baselines of the chosen grid: another grid shows all its models, CNN13 the baseline;
        the same grid reloaded keeps the choice and adds the models new to it."""
        c = self.collection
        labels = [s.label for s in c.series] if c is not None else []
        same, before = self._grid_shown == self.grid, list(self.param.models.objects)
        self._grid_shown = self.grid
        quiet, self._quiet = self._quiet, True
        try:
            with param.parameterized.batch_call_watchers(self):
                self.param.models.objects = labels
                self.models = [m for m in labels if m in self.models or m not in before] if same else labels
                self.param.baseline.objects = labels
                if not same or self.baseline not in labels:
                    self.baseline = ha.default_baseline(c) if c is not None else None
        finally:
            self._quiet = quiet
        self._to_widgets()

    def _to_widgets(self, *_):
        """Options and values of the three selectors from the parameters, in one update each."""
        grids = {c.label: c.key for c in self.collections.values()}
        baselines = {NO_CHOICE: NO_CHOICE, **{label: label for label in self.param.models.objects}}
        self._syncing = True
        try:
            self.grid_widget.param.update(options=grids, value=self.grid if self.grid in grids.values() else None,
                                          disabled=not grids)
            self.baseline_widget.param.update(options=baselines, value=self.baseline or NO_CHOICE)
            self.models_widget.param.update(options=list(self.param.models.objects), value=list(self.models))
        finally:
            self._syncing = False

    def _from_widget(self, name: str, value) -> None:
        if not self._syncing and getattr(self, name) != value:
            setattr(self, name, value)

    def _notes(self) -> str:
        c = self.collection
        notes = []
        if not self.collections:
            notes.append(NOTHING_STORED)
        elif c is not None and ha.default_baseline(c) is None:
            notes.append(NO_BASELINE.format(schedule="paper" if c.schedule == "small-paper" else "quick",
                                            dataset=c.dataset))
        if c is not None and c.problems:
            notes.append("Left out of this grid: " + "; ".join(c.problems[:3]) + ("…" if len(c.problems) > 3 else ""))
        if self.store_error:
            notes.append(self.store_error)
        if self.skipped:
            notes.append(f"{len(self.skipped)} stored summar{'ies' if len(self.skipped) > 1 else 'y'} could not be "
                         "read and " + ("are" if len(self.skipped) > 1 else "is") + " left out: "
                         + "; ".join(f"`{s}`" for s in self.skipped[:3]))
        return "\n\n".join(notes)

    def _grid_words(self) -> str:
        c = self.collection
        if c is None:
            return ""
        state = "complete" if c.complete else "not finished yet (a grid running, or stopped: run its command again)"
        ids = ", ".join(c.grid_ids[:4]) + ("…" if len(c.grid_ids) > 4 else "")
        return f"Grids {ids}: {state}."

    def _update(self, *_):
        """Redraw the figures and the table for the chosen grid, models and baseline."""
        if self._quiet:
            return
        self.show_note(self._notes())
        self.note.alert_type = "warning" if (self.skipped or self.store_error or (
            self.collection is not None and self.collection.problems)) else "info"
        self.grid_text.object = self._grid_words()
        c = self.collection
        dataset = c.dataset if c is not None else ha.REPORTED_DATASET
        try:
            shown = [s for s in c.series if s.label in self.models] if c is not None else []
            all_gains = ha.gains(c, self.baseline) if c is not None else []
            gains = [g for g in all_gains if g.label in self.models]
            title = None if c is not None else "Test accuracy against training-set size: nothing stored yet"
            accuracy = hv_.accuracy_figure(shown, dataset, bool(self.show_seeds), bool(self.show_reported), title)
            missing = ("Gain over the baseline: no CNN13 in this grid" if c is None or ha.default_baseline(c) is None
                       else None)
            gain = hv_.gain_figure(gains, shown, self.baseline, bool(self.show_seeds), missing)
            self.rows = hv_.table_rows(shown, all_gains, dataset)
            table = hv_.results_markdown(self.rows)
        except Exception as exc:  # noqa: BLE001  (a bug too: keep the session alive and say so)
            self.show_error(f"Cannot draw these results: {failure_text(exc)}")
            return
        self.show_error(None)
        self.accuracy_pane.object = accuracy
        self.gain_pane.object = gain
        self.table_pane.object = table
        self.verdict.object = self._verdict(gains)
        self.gain_frame.visible = c is not None
        self.table_frame.visible = bool(self.rows)

    def _verdict(self, gains: list[ha.Gain]) -> str:
        """Where each model is ahead of the baseline, and where behind, beyond the seeds' spread."""
        if not gains:
            return ""
        lines = []
        for label, (ahead, behind) in ha.verdict(gains).items():
            sizes = sorted({g.n for g in gains if g.label == label})
            words = []
            if ahead:
                words.append("ahead at n = " + ", ".join(map(str, ahead)))
            if behind:
                words.append("behind at n = " + ", ".join(map(str, behind)))
            if not words:
                words.append("within the seeds' spread at n = " + ", ".join(map(str, sizes)))
            lines.append(f"- **{label}** against {self.baseline}: " + "; ".join(words))
        return ("**Beyond one standard deviation of the per-seed gain:**\n" + "\n".join(lines))

    # -- layout -----------------------------------------------------------------------------------------------
    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Hybrids & small data\n"
            "A scattering transform is a fixed, well-conditioned first stage: a hybrid network learns only what "
            "comes after it. Oyallon, Belilovsky & Zagoruyko (ICCV 2017) show that this prior pays off when "
            "labelled images are few: trained on 100, 500 or 1000 CIFAR-10 images (n/10 per class, chosen by "
            "seed), a Scattering + ResNet beats CNNs trained on the same images. Here: the accuracy of each "
            "model against the training-set size, its spread over seeds, the whole training set (\"all\") from "
            "the run store, and the gain of each model over CNN13 **seed by seed on the same images**. Choose "
            "the stored grid and the models on the left.",
            sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.note, self.accuracy_frame, self.gain_frame, self.verdict,
                         self.table_frame, sizing_mode="stretch_width")
