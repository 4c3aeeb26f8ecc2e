"""The Runs page as a newcomer meets it (issue 10): only datasets that can run are offered, a failed job's
error is shown whole, a started job's run is selected, only the chosen model's fields show, and an
interrupted run can be resumed. Pages are built without a browser, on a store of the test's own."""
from __future__ import annotations

import time

import bokeh.document
import bokeh.models
import panel as pn
import pytest

from explorer import jobs
from explorer.app import build_app
from explorer.runs import RunStore
from explorer.training import make_config, train

from bokeh_root import render
from plot_ranges import stale_ranges


@pytest.fixture(autouse=True)
def _store_and_panel_state(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    yield
    pn.state.reset()


def fake_cifar10(tmp_path, monkeypatch):
    """A CIFAR-10 location the page accepts (it only looks for the files; nothing here reads them)."""
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "data"))


def widget(page, label: str):
    """The form's widget whose label starts with `label`."""
    found = [w for w in page.controls.select(pn.widgets.Widget) if w.name.startswith(label)]
    assert len(found) == 1, (label, [w.name for w in page.controls.select(pn.widgets.Widget)])
    return found[0]


def wait_for_job(job_id: str, timeout: float = 120) -> jobs.Job:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(job_id)
        if job.state != "running":
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running: {jobs.log_tail(jobs.get_job(job_id))}")


def test_without_cifar10_only_the_synthetic_set_is_offered_and_the_page_says_why(tmp_path, monkeypatch):
    page = build_app("runs").page
    render(page.controls)
    assert list(widget(page, "Dataset").options) == ["synthetic"] and page.dataset == "synthetic"
    assert "--dataset synthetic" in " ".join(page.train_arguments())
    note = page.dataset_note.object
    assert "No CIFAR-10 location configured" in note and "EXPLORER_DATA" in note and "--data" in note
    # Configured: both are offered, CIFAR-10 first, and nothing needs explaining.
    fake_cifar10(tmp_path, monkeypatch)
    page = build_app("runs").page
    assert list(widget(page, "Dataset").options) == ["cifar10", "synthetic"] and page.dataset == "cifar10"
    assert page.dataset_note.object == ""


def test_the_sle_says_before_the_click_whether_its_features_must_be_computed(tmp_path, monkeypatch):
    from explorer.features import FeatureConfig

    fake_cifar10(tmp_path, monkeypatch)
    page = build_app("runs").page
    assert page.model_note.object == ""  # cnn13 reads the images
    page.model = "sle"
    assert "computes them first" in page.model_note.object and "train and test splits" in page.model_note.object
    for split in ("train", "test"):
        FeatureConfig("cifar10", split, J=2, L=8).folder.mkdir(parents=True)
    page.dataset = "synthetic"  # any form change looks again
    assert page.model_note.object == ""  # the synthetic set's features are computed in memory
    page.dataset = "cifar10"
    assert "reuses the stored CIFAR-10 scattering features" in page.model_note.object


def test_a_failed_job_shows_its_whole_error(tmp_path):
    job = jobs.start_training_job(["cnn13", "--dataset", "cifar10", "--epochs", "1"])  # no CIFAR-10 here
    job = wait_for_job(job.id)
    assert job.state == "failed"
    error = jobs.progress(job)["last_line"]
    assert error.startswith("explorer: error: No CIFAR-10 location configured") and len(error) > 160
    page = build_app("runs").page
    status = page.job_status.object.replace("\\", "")  # Markdown escapes removed: the text as shown
    assert error in status and "**Error:**" in status
    cell = page.jobs_table.value["last output"][0]
    assert cell.startswith("explorer: error: No CIFAR-10") and cell.endswith("…") and len(cell) <= 120


def test_starting_a_job_selects_its_run_and_its_curves_grow(tmp_path):
    page = build_app("runs").page
    root = render(page)
    shipped = page.selected_run
    page.param.update(width=2, epochs=2, limit_train=64, seed=3)
    page._on_start()
    job = jobs.list_jobs()[0]
    assert page.selected_run == job.run_id != shipped
    assert page.jobs_table.selection == [0] and "being prepared by job" in page.details.object
    assert wait_for_job(job.id).state == "finished", jobs.log_tail(job)
    page.refresh()  # what the served page does every second
    assert page.runs_table.value["id"][page.runs_table.selection[0]] == job.run_id
    titles = [m.title.text for m in root.select({"type": bokeh.models.Plot})]
    assert any(t.startswith(f"Accuracy of {job.run_id} (test") and t.endswith("after 2)") for t in titles), titles
    assert stale_ranges(root) == []  # 2 epochs after the shipped runs' 30: the axes refit
    assert "complete" in page.details.object


def test_only_the_chosen_models_fields_are_shown():
    page = build_app("runs").page
    shown = lambda: {label for label in ("Width K", "Non-linearity", "α = k/K", "Encoder widths")
                     if widget(page, label).visible}
    assert shown() == {"Width K", "Non-linearity"}
    page.rho = "relu_k"
    assert shown() == {"Width K", "Non-linearity", "α = k/K"}
    page.model = "sle"
    assert shown() == {"Encoder widths"}
    page.model, page.rho = "cnn13", "sign_sqrt"
    assert shown() == {"Width K", "Non-linearity"}


class Killed(Exception):
    pass


def _stop_after_first_epoch(record):
    if record["epoch"] == 1:
        raise Killed


def test_an_interrupted_run_is_resumed_from_the_page():
    config = make_config("cnn13", width=2, epochs=2, dataset="synthetic", limit_train=32, limit_test=32,
                         batch_size=16)
    with pytest.raises(Killed):  # a job killed after its first epoch
        train(config, store=RunStore(), progress=False, on_epoch=_stop_after_first_epoch, device="cpu")
    run_id = RunStore.run_id(config)
    page = build_app("runs").page
    render(page)
    assert page.selected_run == run_id  # the newest run
    assert page.resume_button.visible
    assert "Interrupted after epoch 1 of 2" in page.details.object and "--resume" in page.details.object
    page.resume_button.clicks += 1
    job = jobs.list_jobs()[0]
    assert job.run_id == run_id and job.argv[-1] == "--resume"
    assert "--batch-size 16" in job.command and "--limit-train 32" in job.command  # the run's own configuration
    assert not page.resume_button.visible  # no second job on the same run
    assert wait_for_job(job.id).state == "finished", jobs.log_tail(job)
    page.refresh()
    info = RunStore().info(run_id)
    assert (info.status, info.epochs_done) == ("complete", 2)
    assert not page.resume_button.visible and page.selected_run == run_id


def test_a_shipped_or_complete_run_offers_no_resume():
    page = build_app("runs").page
    assert page.selected_run and not page.resume_button.visible
    with pytest.raises(jobs.JobError, match="cannot resume run"):
        jobs.resume_training_job(page.selected_run)  # shipped: not in the user's store
