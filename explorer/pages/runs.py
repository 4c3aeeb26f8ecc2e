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
from explorer.runs import RunStore, describe_model
from explorer.views import runs as rv

from .base import Page, figure

REFRESH_MS = 1000
FORM_SETTLE_S = 0.1  # see _on_start
RUN_COLUMNS = ["id", "model", "status", "epochs", "test accuracy (%)", "source"]
JOB_COLUMNS = ["job", "command", "state", "progress (%)", "last output"]


class RunsPage(Page):
    title = "Runs"

    model = param.Selector(default="cnn13", objects=["cnn13", "sle"], label="Model")
    width = param.Integer(32, bounds=(1, 512), label="Width K (cnn13)")
    rho = param.Selector(default="relu", objects=["relu", "relu_k", "sign_sqrt"], label="Non-linearity ρ (cnn13)")
    alpha = param.Number(0.5, bounds=(0.0, 1.0), step=0.05, label="α = k/K for relu_k")
    widths = param.String("512 512", label="Encoder widths (sle)")
    dataset = param.Selector(default="cifar10", objects=["cifar10", "synthetic"], label="Dataset")
    epochs = param.Integer(2, bounds=(1, 400), label="Epochs")
    limit_train = param.Integer(0, bounds=(0, 50_000), label="Train on the first N images (0: all)")
    seed = param.Integer(0, bounds=(0, 2**31 - 1), label="Seed")

    selected_run = param.String(default="", precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self.store = RunStore()
        self.runs_table = pn.widgets.Tabulator(pd.DataFrame(columns=RUN_COLUMNS), selectable=1, disabled=True,
                                               show_index=False, sizing_mode="stretch_width", height=260, layout="fit_data_stretch",
                                               name="runs")
        self.jobs_table = pn.widgets.Tabulator(pd.DataFrame(columns=JOB_COLUMNS), selectable=1, disabled=True,
                                               show_index=False, sizing_mode="stretch_width", height=200, layout="fit_data_stretch",
                                               name="jobs")
        self.job_progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width", visible=False)
        self.job_status = pn.pane.Markdown("No training job yet: fill the form on the left and press "
                                           "**Start training**.", sizing_mode="stretch_width")
        self.start_button = pn.widgets.Button(name="Start training", button_type="primary",
                                              sizing_mode="stretch_width")
        self.cancel_button = pn.widgets.Button(name="Cancel the selected job", button_type="warning",
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
        self._job_ids: list[str] = []
        self._run_ids: list[str] = []
        self._shown_stamp: tuple | None = None  # (epochs done, status) of the run whose curves are shown
        self._infos: dict = {}  # run id → RunInfo of the last listing (the curves and details read it)
        self.refresh()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:  # served
            self._poll = pn.state.add_periodic_callback(self.refresh, period=REFRESH_MS)
        w = pn.widgets
        self.controls = pn.Column(
            pn.pane.Markdown("**New training job** (runs `explorer train …` in the background)"),
            w.Select.from_param(self.param.model), w.IntInput.from_param(self.param.width),
            w.Select.from_param(self.param.rho), w.FloatInput.from_param(self.param.alpha),
            w.TextInput.from_param(self.param.widths), w.Select.from_param(self.param.dataset),
            w.IntInput.from_param(self.param.epochs), w.IntInput.from_param(self.param.limit_train),
            w.IntInput.from_param(self.param.seed), self.start_button, self.cancel_button,
            sizing_mode="stretch_width")

    # -- the form ---------------------------------------------------------------------------------------
    def train_arguments(self) -> list[str]:
        """The `explorer train` arguments the form describes (the CLI validates them)."""
        argv = [self.model, "--dataset", self.dataset, "--epochs", str(self.epochs), "--seed", str(self.seed)]
        if self.model == "cnn13":
            argv += ["--width", str(self.width), "--rho", self.rho]
            if self.rho == "relu_k":
                argv += ["--alpha", str(self.alpha)]
        else:
            argv += ["--widths", *self.widths.replace(",", " ").split()]
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
        self.show_error(None)
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
            self.refresh_runs()
            self.refresh_jobs()
        except Exception as exc:  # noqa: BLE001  (a damaged file must not stop the polling)
            self.show_error(f"Could not read the run store: {exc!r}")

    def refresh_runs(self):
        infos = self.store.list()
        self._infos = {i.id: i for i in infos}
        rows = [{"id": i.id, "model": describe_model(i.config), "status": i.status,
                 "epochs": f"{i.epochs_done}/{i.epochs if i.epochs is not None else '?'}",
                 "test accuracy (%)": round(100 * i.accuracy, 2) if i.accuracy is not None else None,
                 "source": "shipped" if i.shipped else "yours"} for i in infos]
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
            stamp = (info.epochs_done, info.status)
            if stamp != self._shown_stamp:  # a job added an epoch: redraw its curves live
                self._shown_stamp = stamp
                self.param.trigger("selected_run")
                self._show_details()

    def refresh_jobs(self):
        listed = jobs.list_jobs()
        reports = {job.id: jobs.progress(job) for job in listed}
        rows = []
        for job in listed:
            report = reports[job.id]
            fraction = report["fraction"]
            rows.append({"job": job.id, "command": job.command, "state": job.state,
                         "progress (%)": round(100 * fraction, 1) if fraction is not None else None,
                         "last output": report["last_line"][-120:]})
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
        epochs = (f"epoch {report['epochs_done']}/{report['epochs']}" if report["epochs"] else "starting")
        elapsed = (job.ended_at or time.time()) - job.started_at
        self.job_status.object = (f"**Job {job.id}** — {job.state}, {epochs}, {100 * fraction:.0f} %, "
                                  f"{elapsed:.0f} s — run `{job.run_id}`  \n`{job.command}`  \n"
                                  f"{report['last_line'][-160:]}")

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
            lines.append(f"Problem: {info.error}")
        note = (info.provenance.get("shipped") or {}).get("note")
        if note:
            lines.append(f"Made by: `{note}`")
        if "wall_seconds" in info.provenance:
            lines.append(f"Training wall time: {info.provenance['wall_seconds']:.0f} s")
        lines.append("```json\n" + json.dumps(info.config, indent=1, sort_keys=True) + "\n```")
        self.details.object = "\n\n".join(lines)

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
            self.details,
            pn.pane.Markdown("### Training jobs"), self.job_progress, self.job_status, self.jobs_table,
            sizing_mode="stretch_width",
        )
