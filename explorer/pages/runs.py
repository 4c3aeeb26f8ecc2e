"""Runs page: the trained runs (shipped and the user's) with their curves, and training jobs started
from a form, run by the CLI in a background process, followed live and cancellable."""
from __future__ import annotations

import json
import time

import holoviews as hv
import pandas as pd
import panel as pn
import param

from explorer import jobs
from explorer.nets import registry
from explorer.runs import RunStore, describe_model
from explorer.views import runs as rv

from .base import Page, figure

REFRESH_MS = 1000
FORM_SETTLE_S = 0.1  # see _on_start
RUN_COLUMNS = ["id", "model", "status", "epochs", "test accuracy (%)", "source", "problem or note"]
JOB_COLUMNS = ["job", "command", "state", "done (%)", "last output"]
JOB_COLUMN_WIDTHS = {"job": "20%", "command": "27%", "state": "8%", "done (%)": "12%", "last output": "33%"}
TABLE_TEXT_CHARS = 120  # the jobs table's "last output" column; the job status shows the whole line
WIDGETS = {"int": pn.widgets.IntInput, "float": pn.widgets.FloatInput, "select": pn.widgets.Select,
           "text": pn.widgets.TextInput}


def cifar10_problem() -> str | None:
    """Why CIFAR-10 cannot be trained on here (no location configured, nothing there), or None.
    Only looks for the files (cheap); a damaged archive is reported by the job itself."""
    from explorer.data import DatasetNotFoundError, find_cifar10
    from explorer.data.cifar10 import HOW_TO_FIX

    try:
        find_cifar10()
    except DatasetNotFoundError as exc:
        return str(exc).replace(HOW_TO_FIX, "").strip()  # the page says how to fix it in its own terms
    return None


def cifar10_how_to() -> str:
    return ("To train on CIFAR-10, set `EXPLORER_DATA` to the folder holding `cifar-10-python.tar.gz` (or "
            "`cifar-10-batches-py/`) and restart the app; `explorer data download --data DIR` fetches it. "
            "On the command line, `explorer train … --data DIR` does the same for one run.")


def form_parameter(field: registry.FormField) -> param.Parameter:
    """The page parameter behind one field of a model's form (see `explorer.nets.registry.FormField`)."""
    if field.kind == "int":
        return param.Integer(field.default, bounds=field.bounds, label=field.label)
    if field.kind == "float":
        return param.Number(field.default, bounds=field.bounds, step=field.step, label=field.label)
    if field.kind == "select":
        return param.Selector(default=field.default, objects=list(field.options), label=field.label)
    return param.String(field.default, label=field.label)


def shorten(text: str, limit: int) -> str:
    """`text` cut at its end with "…" when longer than `limit` (its start says what it is about)."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def escape_markdown(text: str) -> str:
    """Log text shown literally in Markdown (tqdm bars hold |, paths hold _ and *)."""
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|~" else c for c in text)


class RunsPage(Page):
    title = "Runs"
    errors_leave_plots_stale = False  # its errors are about jobs; the curves stay valid

    # The model's own fields (width, rho, …) are parameters added from its registry entry: see _add_model_fields.
    model = param.Selector(default=registry.names()[0], objects=list(registry.names()), label="Model")
    dataset = param.Selector(default="cifar10", objects=["cifar10", "synthetic"], label="Dataset")
    epochs = param.Integer(2, bounds=(1, 400), label="Epochs")
    limit_train = param.Integer(0, bounds=(0, 50_000), label="Train on N images, balanced over the classes (0: all)")
    seed = param.Integer(0, bounds=(0, 2**31 - 1), label="Seed")

    selected_run = param.String(default="", precedence=-1)

    @classmethod
    def _add_model_fields(cls) -> dict[str, registry.FormField]:
        """Every registered model's form fields by name, each a parameter of the page (a name shared by two
        models is one field)."""
        cls.param.model.objects = list(registry.names())  # those registered since the class was made too
        fields: dict[str, registry.FormField] = {}
        for name in registry.names():
            for field in registry.get(name).form_fields:
                fields.setdefault(field.name, field)
                if field.name not in cls.param:
                    cls.param.add_parameter(field.name, form_parameter(field))
        return fields

    def __init__(self, **params):
        self.form_fields = self._add_model_fields()
        super().__init__(**params)
        self.cifar10_problem = cifar10_problem()
        if self.cifar10_problem is not None:  # offer only what can run
            self.param.dataset.objects = ["synthetic"]
            self.dataset = "synthetic"
        self.store = RunStore()
        self.runs_table = pn.widgets.Tabulator(pd.DataFrame(columns=RUN_COLUMNS), selectable=1, disabled=True,
                                               show_index=False, sizing_mode="stretch_width", height=260, layout="fit_data_stretch")
        # Fixed shares of the width: fitted to their data, the commands pushed "last output" out of sight.
        self.jobs_table = pn.widgets.Tabulator(pd.DataFrame(columns=JOB_COLUMNS), selectable=1, disabled=True,
                                               show_index=False, sizing_mode="stretch_width", height=200, layout="fit_columns",
                                               widths=JOB_COLUMN_WIDTHS)
        self.job_progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width", visible=False)
        self.job_status = pn.pane.Markdown("No training job yet: fill the form on the left and press "
                                           "**Start training**.", sizing_mode="stretch_width")
        self.start_button = pn.widgets.Button(label="Start training", color="primary",
                                              sizing_mode="stretch_width")
        self.cancel_button = pn.widgets.Button(label="Cancel the selected job", color="warning",
                                               disabled=True, sizing_mode="stretch_width")
        self.start_button.on_click(self._on_start)
        self.cancel_button.on_click(self._on_cancel)
        self.runs_table.param.watch(self._on_run_selected, "selection")
        self.jobs_table.param.watch(lambda *_: self.refresh_jobs(), "selection")
        self.curves_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._curves, run_id=self.param.selected_run)),
                                             linked_axes=False)
        self.loss_pane = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._losses, run_id=self.param.selected_run)),
                                           linked_axes=False)
        self.details = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.resume_button = pn.widgets.Button(label="Resume this run", color="primary", visible=False)
        self.resume_button.on_click(self._on_resume)
        self._job_ids: list[str] = []
        self._run_ids: list[str] = []
        self._shown_stamp: tuple | None = None  # (epochs done, status, resumable) of the run shown
        self._infos: dict = {}  # run id → RunInfo of the last listing (the curves and details read it)
        self._listed_jobs: list[jobs.Job] = []  # the last listing of jobs
        self.refresh()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:  # served
            self._poll = pn.state.add_periodic_callback(self.refresh, period=REFRESH_MS)
        w = pn.widgets
        self.fields = {name: WIDGETS[field.kind].from_param(self.param[name])
                       for name, field in self.form_fields.items()}
        self.dataset_note = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        self.model_note = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        self.param.watch(self._show_model_fields, ["model", "dataset", *self.fields])
        self._show_model_fields()
        self.controls = pn.Column(
            pn.pane.Markdown("**New training job** (runs `explorer train …` in the background)"),
            w.Select.from_param(self.param.model), *self.fields.values(), self.model_note,
            w.Select.from_param(self.param.dataset), self.dataset_note,
            w.IntInput.from_param(self.param.epochs), w.IntInput.from_param(self.param.limit_train),
            w.IntInput.from_param(self.param.seed), self.start_button, self.cancel_button,
            sizing_mode="stretch_width")

    def _model_fields(self) -> list[registry.FormField]:
        """The chosen model's fields that apply now (e.g. α only for ρ = relu_k)."""
        fields = registry.get(self.model).form_fields
        values = {field.name: getattr(self, field.name) for field in fields}
        return [field for field in fields if field.visible is None or field.visible(values)]

    def _show_model_fields(self, *_):
        """Only the chosen model's fields; what the chosen model and dataset need, said before the click."""
        shown = {field.name for field in self._model_fields()}
        for name, widget in self.fields.items():
            widget.visible = name in shown
        if self.cifar10_problem is not None:
            self.dataset_note.object = (f"Only the synthetic set (noisy stripes, 2 classes) is offered: "
                                        f"{self.cifar10_problem} {cifar10_how_to()}")
        else:
            self.dataset_note.object = ""
        spec = registry.get(self.model)
        values = {field.name: getattr(self, field.name) for field in spec.form_fields}
        self.model_note.object = spec.form_note(values, self.dataset) if spec.form_note is not None else ""

    # -- the form ---------------------------------------------------------------------------------------
    def train_arguments(self) -> list[str]:
        """The `explorer train` arguments the form describes (the CLI validates them)."""
        argv = [self.model, "--dataset", self.dataset, "--epochs", str(self.epochs), "--seed", str(self.seed)]
        for field in self._model_fields():
            argv += field.argv(getattr(self, field.name))
        if self.limit_train:
            argv += ["--limit-train", str(self.limit_train)]
        return argv

    def _on_start(self, *_):
        # With worker threads (pn.extension(nthreads=…)), a field edited just before the click (committed
        # when the field loses focus, i.e. at the click) is applied by another thread at the same moment:
        # let it land before reading the form. This runs in a worker thread, so no session waits.
        time.sleep(FORM_SETTLE_S)
        try:
            job = jobs.start_training_job(self.train_arguments())
        except (jobs.JobError, OSError) as exc:
            self.show_error(f"Cannot start this job: {exc}")
            return
        self._follow(job)

    def _on_resume(self, *_):
        try:
            job = jobs.resume_training_job(self.selected_run)
        except (jobs.JobError, OSError) as exc:
            self.show_error(f"Cannot resume this run: {exc}")
            return
        self._follow(job)

    def _follow(self, job: jobs.Job):
        """Select a job just started and its run, whose curves then grow live (the run is listed once
        the job has created it)."""
        self.show_error(None)
        self.selected_run = job.run_id
        self._shown_stamp = None
        self.details.object = (f"**{job.run_id}** — being prepared by job {job.id}: its curves grow here "
                               f"after each epoch.")
        self.refresh()
        if job.id in self._job_ids:
            self.jobs_table.selection = [self._job_ids.index(job.id)]

    def _on_cancel(self, *_):
        job = self._selected_job()
        if job is not None:
            jobs.cancel_job(job.id)
            self.refresh()

    # -- refresh (every second while served; reads files only) -------------------------------------------
    def refresh(self):
        try:
            self.refresh_jobs()  # first: whether a job trains the selected run decides what its details say
            self.refresh_runs()
            self._offer_resume()
        except Exception as exc:  # noqa: BLE001  (a damaged file must not stop the polling)
            self.show_error(f"Could not read the run store: {exc!r}")

    def refresh_runs(self):
        infos = self.store.list()
        self._infos = {i.id: i for i in infos}
        rows = [{"id": i.id, "model": describe_model(i.config), "status": i.status,
                 "epochs": f"{i.epochs_done}/{i.epochs if i.epochs is not None else '?'}",
                 "test accuracy (%)": round(100 * i.accuracy, 2) if i.accuracy is not None else None,
                 "source": "shipped" if i.shipped else "yours",
                 "problem or note": shorten(i.error or "", TABLE_TEXT_CHARS)} for i in infos]
        frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
        ids = [r["id"] for r in rows]
        if ids != self._run_ids or not frame.equals(self.runs_table.value):
            selected = self.selected_run
            self._run_ids = ids
            self.runs_table.value = frame
            self.runs_table.selection = [ids.index(selected)] if selected in ids else []
        if not self.selected_run and ids:
            self.runs_table.selection = [0]  # show the newest run's curves
        elif self.selected_run in ids:
            info = infos[ids.index(self.selected_run)]
            stamp = (info.epochs_done, info.status, self._resumable())
            if stamp != self._shown_stamp:  # a job added an epoch (or stopped): redraw its curves live
                self._shown_stamp = stamp
                self.param.trigger("selected_run")
                self._show_details()

    def refresh_jobs(self):
        listed = self._listed_jobs = jobs.list_jobs()
        reports = {job.id: jobs.progress(job) for job in listed}
        rows = []
        for job in listed:
            report = reports[job.id]
            fraction = report["fraction"]
            rows.append({"job": job.id, "command": job.command, "state": job.state,
                         "done (%)": f"{100 * fraction:.0f}" if fraction is not None else "–",
                         "last output": shorten(report["last_line"], TABLE_TEXT_CHARS)})
        frame = pd.DataFrame(rows, columns=JOB_COLUMNS)
        if not frame.equals(self.jobs_table.value):
            selected = self._selected_job_id()
            self._job_ids = [j.id for j in listed]
            self.jobs_table.value = frame
            if selected in self._job_ids:
                self.jobs_table.selection = [self._job_ids.index(selected)]
        if not self.jobs_table.selection and self._job_ids:
            self.jobs_table.selection = [0]
        job = self._selected_job(listed)
        if job is None:
            self.job_progress.visible = False
            self.cancel_button.disabled = True
            return
        report = reports[job.id]
        fraction = report["fraction"] or 0.0
        self.job_progress.visible = True
        self.job_progress.value = int(1000 * fraction)
        self.job_progress.bar_color = {"running": "primary", "finished": "success"}.get(job.state, "danger")
        self.cancel_button.disabled = job.state != "running"
        epochs = (f"epoch {report['epochs_done']}/{report['epochs']}" if report["epochs"]
                  else "starting" if job.state == "running" else "no epoch done")
        elapsed = (job.ended_at or time.time()) - job.started_at
        if job.state == "failed":  # the whole error, as the command printed it
            output = "**Error:** " + "  \n".join(escape_markdown(line) for line in report["last_lines"])
        else:
            output = escape_markdown(report["last_line"])
        self.job_status.object = (f"**Job {job.id}** — {job.state}, {epochs}, {100 * fraction:.0f} %, "
                                  f"{elapsed:.0f} s — run `{job.run_id}`  \n`{job.command}`  \n{output}")

    def _selected_job_id(self) -> str | None:
        selection = self.jobs_table.selection
        return self._job_ids[selection[0]] if selection and selection[0] < len(self._job_ids) else None

    def _selected_job(self, listed=None):
        job_id = self._selected_job_id()
        for job in listed if listed is not None else jobs.list_jobs():
            if job.id == job_id:
                return job
        return None

    # -- the selected run --------------------------------------------------------------------------------
    def _on_run_selected(self, event):
        if event.new and event.new[0] < len(self._run_ids):
            self.selected_run = self._run_ids[event.new[0]]
            self._show_details()

    def _info(self, run_id: str):
        """The run as the last listing read it (refreshed every second), else read from the store."""
        info = self._infos.get(run_id)
        return info if info is not None else self.store.info(run_id)

    def _show_details(self):
        try:
            info = self._info(self.selected_run)
        except (OSError, ValueError) as exc:
            self.details.object = f"Cannot read run {self.selected_run}: {exc}"
            return
        lines = [f"**{info.id}** ({'shipped with the package' if info.shipped else info.path}) — {info.status}"]
        if info.error:
            lines.append(f"{'Problem' if info.status == 'corrupt' else 'Note'}: {escape_markdown(info.error)}")
        note = (info.provenance.get("shipped") or {}).get("note")
        if note:
            lines.append(f"Made by: `{note}`")
        if "wall_seconds" in info.provenance:
            lines.append(f"Training wall time: {info.provenance['wall_seconds']:.0f} s")
        if info.status == "partial" and not info.shipped and info.config and not self._resumable():
            lines.append(f"Stopped after epoch {info.epochs_done} of {info.epochs}; a job is continuing it.")
        elif info.status == "partial" and not info.shipped and info.config:
            try:
                command = f"`explorer train {' '.join(jobs.train_arguments(info.config))} --resume`"
            except jobs.JobError as exc:
                command = f"not from here: {exc}"
            lines.append(f"Interrupted after epoch {info.epochs_done} of {info.epochs}; its last checkpoint "
                         f"is kept. **Resume this run** continues it ({command}).")
        lines.append("```json\n" + json.dumps(info.config, indent=1, sort_keys=True) + "\n```")
        self.details.object = "\n\n".join(lines)

    def _resumable(self) -> bool:
        """The selected run stopped before its last epoch and no job is training it."""
        info = self._infos.get(self.selected_run)
        if info is None or info.status != "partial" or info.shipped or not info.config:
            return False
        return not any(j.state == "running" and j.run_id == info.id for j in self._listed_jobs)

    def _offer_resume(self):
        self.resume_button.visible = self._resumable()

    def _metrics(self, run_id):
        if not run_id:
            return []
        try:
            return self._info(run_id).metrics or []
        except (OSError, ValueError):
            return []

    def _curves(self, run_id):
        return rv.accuracy_curves(self._metrics(run_id), title=f"Accuracy of {run_id or '(no run)'}")

    def _losses(self, run_id):
        return rv.loss_curves(self._metrics(run_id), title="Loss per epoch")

    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Runs\nEvery trained network lives in the run store, in a folder named by a hash of its full "
            "configuration. The runs marked *shipped* come with the package, so the learned-weights pages work "
            "without training. Select a run to see its curves; start a new one with the form on the left "
            "(a background `explorer train` process: it keeps running if you reload or leave this page).",
            sizing_mode="stretch_width")
        return pn.Column(
            intro, self.alert,
            pn.pane.Markdown("### Runs"), self.runs_table,
            pn.FlexBox(figure(self.curves_pane, rv.CAPTIONS["curves"], width=480),
                       figure(self.loss_pane, rv.CAPTIONS["loss"], width=480)),
            self.resume_button, self.details,
            pn.pane.Markdown("### Training jobs"), self.job_progress, self.job_status, self.jobs_table,
            sizing_mode="stretch_width",
        )
