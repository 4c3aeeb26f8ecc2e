"""Background training jobs: started like the CLI, tracked on disk, cancellable (issue: Runs page)."""
from __future__ import annotations

import time

import pytest

from explorer import jobs
from explorer.runs import RunStore

TINY = ["cnn13", "--dataset", "synthetic", "--width", "2", "--epochs", "2", "--limit-train", "64",
        "--limit-test", "32"]


def wait_for(job_id, states, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {jobs.get_job(job_id).state}: {jobs.log_tail(job)}")


def test_a_job_trains_a_run_in_the_background_and_is_found_again(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    job = jobs.start_training_job(TINY)
    assert job.state == "running" and job.command.startswith("explorer train cnn13")
    with pytest.raises(jobs.JobError, match="already being trained"):
        jobs.start_training_job(TINY)  # the same configuration twice at once
    job = wait_for(job.id, {"finished", "failed"})
    assert job.state == "finished" and job.returncode == 0, jobs.log_tail(job)
    info = RunStore(shipped=False).info(job.run_id)
    assert info.status == "complete" and info.epochs_done == 2
    report = jobs.progress(job)
    assert (report["epochs_done"], report["epochs"], report["fraction"]) == (2, 2, 1.0)
    assert "test accuracy" in report["last_line"]
    # What a reloaded page sees: the job, read back from disk by a fresh listing.
    jobs._children.clear()
    assert [(j.id, j.state) for j in jobs.list_jobs()] == [(job.id, "finished")]
    with pytest.raises(jobs.JobError, match="already complete"):
        jobs.start_training_job(TINY)


def test_cancel_stops_the_process_and_the_run_can_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    long = ["cnn13", "--dataset", "synthetic", "--width", "4", "--epochs", "50", "--seed", "7"]
    job = jobs.start_training_job(long)
    deadline = time.time() + 120
    while _epochs_done(job.run_id) < 1:  # cancel after the first checkpoint
        assert time.time() < deadline, jobs.log_tail(job)
        time.sleep(0.2)
    cancelled = jobs.cancel_job(job.id)
    assert cancelled.state == "cancelled"
    assert not jobs._alive(job.pid)
    info = RunStore(shipped=False).info(job.run_id)
    assert info.status == "partial" and 1 <= info.epochs_done < 50  # kept, resumable
    assert not (info.path / "lock").exists()  # released on SIGTERM, not left for the next job to judge
    assert "stopped by SIGTERM" in jobs.log_tail(jobs.get_job(job.id))
    again = jobs.start_training_job(long)
    assert again.argv[-1] == "--resume"
    jobs.cancel_job(again.id)


def _epochs_done(run_id):
    try:
        return RunStore(shipped=False).info(run_id).epochs_done
    except OSError:  # not created yet
        return 0


@pytest.mark.parametrize("argv,message", [
    (["cnn13", "--width", "0"], "width"),
    (["cnn13", "--rho", "tanh"], "tanh"),
    (["resnet"], "invalid choice"),
    (["cnn13", "--epochs", "many"], "invalid int value"),
])
def test_bad_arguments_start_nothing(tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    with pytest.raises(jobs.JobError, match=message):
        jobs.start_training_job(argv)
    assert jobs.list_jobs() == []


def test_train_arguments_rebuild_a_runs_configuration(tmp_path, monkeypatch):
    """Resuming a run from the page starts `explorer train` with arguments rebuilt from its configuration:
    they must give back the very same configuration (hence the same run), options off the defaults included."""
    from explorer.runs import run_id
    from explorer.train_cli import config_from_args
    from explorer.training import make_config

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    configs = [info.config for info in RunStore().list() if info.shipped]
    configs += [make_config("cnn13", width=4, rho="relu_k", alpha=0.25, dropout=0.1, dataset="synthetic",
                            epochs=3, schedule="paper", lr=0.07, batch_size=16, subset={"n": 20, "seed": 3},
                            limit_train=12, limit_test=10, augment={"flip": False}, seed=5),
                make_config("sle", J=1, L=4, widths=[8, 4], dataset="synthetic", schedule="quick")]
    assert len(configs) >= 5
    for config in configs:
        argv = jobs.train_arguments(config)
        assert argv[0] == config["model"]
        assert run_id(config_from_args(jobs._parse_train_args(argv))) == run_id(config), argv


def test_a_run_the_cli_cannot_express_is_not_resumed_from_a_job(tmp_path, monkeypatch):
    from explorer.training import get_schedule, make_config

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    with pytest.raises(jobs.JobError, match=r"continue it from Python: .*train\(config, resume=True\)"):
        # no option sets the momentum (the crop has --crop-padding since the hybrids)
        jobs.train_arguments(make_config("cnn13", schedule={**get_schedule("quick"), "momentum": 0.5}))


def test_resume_refuses_complete_and_unknown_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    job = wait_for(jobs.start_training_job(TINY).id, {"finished", "failed"})
    assert job.state == "finished", jobs.log_tail(job)
    with pytest.raises(jobs.JobError, match=f"run {job.run_id} is already complete .*nothing to resume"):
        jobs.resume_training_job(job.run_id)
    with pytest.raises(jobs.JobError, match="cannot resume run cnn13-000000000000"):
        jobs.resume_training_job("cnn13-000000000000")
    assert len(jobs.list_jobs()) == 1  # nothing else was started
