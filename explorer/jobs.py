"""Background training jobs: the CLI's `explorer train …` in a subprocess, tracked on disk.

Each job is ``<store>/jobs/<job id>/`` with ``job.json`` (command, pid, run id, times, state) and
``log.txt`` (the command's output, tqdm bars included). Everything a page shows is read back from
those files and from the run store, so a job outlives the page (and the session) that started it:
reloading the page finds it again. Cancelling sends SIGTERM to the job's process group; the run
keeps its last finished epoch and resumes with ``--resume``. No Panel here: the app's Runs page
and scripts use the same functions.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from explorer.atomic import atomic_write
from explorer.config import store_dir

STATES = ("running", "finished", "failed", "cancelled")
ERROR_LINES = 3  # log lines a failed job's report keeps (a traceback's last frame and its error)
_PERCENT = re.compile(r"(\d{1,3})%\|")  # a tqdm bar: " 37%|███▋      | …"
_JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
_children: dict[int, subprocess.Popen] = {}  # jobs started by this process (reaped with poll)


class JobError(ValueError):
    """A job could not be started or found; the message says why and what to do."""


@dataclass
class Job:
    id: str
    folder: Path
    argv: list[str]
    pid: int
    run_id: str
    started_at: float
    state: str = "running"
    returncode: int | None = None
    ended_at: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.folder / "log.txt"

    @property
    def command(self) -> str:
        return "explorer train " + " ".join(self.argv)


def jobs_dir() -> Path:
    return store_dir() / "jobs"


def start_training_job(argv: list[str]) -> Job:
    """Validate ``explorer train`` arguments (e.g. ``["cnn13", "--width", "8", "--epochs", "2"]``)
    exactly as the CLI would, then run them in a background process. Raises JobError on bad
    arguments (nothing is started) and when the same run is already being trained."""
    from explorer.runs import RunStore, run_id
    from explorer.train_cli import config_from_args

    args = _parse_train_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    identifier = run_id(config)
    for job in list_jobs():
        if job.state == "running" and job.run_id == identifier:
            raise JobError(f"run {identifier} is already being trained by job {job.id}; wait for it "
                           f"or cancel it first.")
    info = None
    try:
        info = RunStore(shipped=False).info(identifier)
    except (OSError, ValueError):
        pass
    argv = [a for a in argv if a not in ("--no-progress", "--resume")]
    if info is not None and info.epochs_done > 0:
        if info.status == "complete":
            raise JobError(f"run {identifier} is already complete ({info.epochs_done} epochs); change "
                           f"the configuration (e.g. the seed) to train another.")
        argv.append("--resume")  # a partial run continues from its last finished epoch
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    folder = jobs_dir() / job_id
    folder.mkdir(parents=True)
    env = {**os.environ, "EXPLORER_STORE": str(store_dir()), "PYTHONUNBUFFERED": "1"}
    with open(folder / "log.txt", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "explorer", "train", *argv], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)  # its own group: cancel reaches all of it
    _children[process.pid] = process
    job = Job(id=job_id, folder=folder, argv=list(argv), pid=process.pid, run_id=identifier,
              started_at=time.time())
    _save(job)
    return job


def train_arguments(config: dict) -> list[str]:
    """The `explorer train` arguments that rebuild ``config`` (a run's full configuration), checked
    by building the configuration back from them. Raises JobError when the CLI cannot express it
    (a run made from Python with a custom schedule or augmentation)."""
    try:
        return _train_arguments(config)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:  # a hand-made configuration
        raise JobError(f"run {_run_id_or_unknown(config)} has a configuration `explorer train` cannot "
                       f"express ({type(exc).__name__}: {exc}), so it cannot be continued from here.") from None


def _run_id_or_unknown(config) -> str:
    from explorer.runs import run_id

    try:
        return run_id(config)
    except (TypeError, ValueError):
        return "?"


def _train_arguments(config: dict) -> list[str]:
    from explorer.nets import registry
    from explorer.runs import run_id
    from explorer.train_cli import config_from_args
    from explorer.training import SCHEDULES

    schedule = config["schedule"]
    try:
        spec = registry.get(config["model"])
    except ValueError as exc:
        raise JobError(str(exc)) from None
    argv = [config["model"], *spec.cli_arguments(config["model_config"])]
    argv += ["--dataset", config["dataset"], "--epochs", str(config["epochs"]), "--seed", str(config["seed"])]
    named = SCHEDULES.get(schedule.get("name"), {})
    if named:
        argv += ["--schedule", schedule["name"]]
    for key, option in (("batch_size", "--batch-size"), ("lr", "--lr")):
        if schedule.get(key) != named.get(key):
            argv += [option, str(schedule.get(key))]
    if config.get("subset"):
        argv += ["--subset", str(config["subset"]["n"]), "--subset-seed", str(config["subset"]["seed"])]
    for key, option in (("limit_train", "--limit-train"), ("limit_test", "--limit-test")):
        if config.get(key) is not None:
            argv += [option, str(config[key])]
    augment, default_augment = config.get("augment", {}), spec.default_augment
    if not augment.get("flip", True):
        argv.append("--no-flip")
    for key, option in (("crop_padding", "--crop-padding"), ("padding_mode", "--padding-mode")):
        if key in augment and augment[key] != default_augment.get(key):
            argv += [option, str(augment[key])]
    try:
        rebuilt = config_from_args(_parse_train_args(argv))
    except (JobError, ValueError, KeyError):
        rebuilt = None
    if rebuilt is None or run_id(rebuilt) != run_id(config):
        raise JobError(f"run {run_id(config)} was configured outside `explorer train` (its schedule or "
                       f"augmentation has no command-line option), so it cannot be continued from here; "
                       f"continue it from Python: explorer.training.train(config, resume=True).")
    return argv


def resume_training_job(run_id: str) -> Job:
    """Continue an interrupted run of the store (``explorer train … --resume`` with the run's own
    configuration) as a background job. Raises JobError when the run cannot be continued."""
    from explorer.runs import RunStore

    try:
        info = RunStore(shipped=False).info(run_id)
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot resume run {run_id}: {exc}") from None
    if info.status == "complete":
        raise JobError(f"run {run_id} is already complete ({info.epochs_done} epochs): nothing to resume.")
    if info.status == "running":
        raise JobError(f"run {run_id} is being trained right now; wait for that job or cancel it first.")
    if info.status == "corrupt":
        raise JobError(f"run {run_id} is damaged ({info.error}), so it cannot be resumed; delete it with "
                       f"`explorer runs delete {run_id}` and train it again.")
    return start_training_job([*train_arguments(info.config), "--resume"])


def list_jobs() -> list[Job]:
    """Every job in the store, newest first, with its state brought up to date."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    jobs = [job for folder in root.iterdir() if (job := _load(folder)) is not None]
    return sorted(jobs, key=lambda j: j.started_at, reverse=True)


def get_job(job_id: str) -> Job:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):  # never a path (../x, /etc)
        raise JobError(f"{job_id!r} is not a job id (they look like 20250101-120000-0a1b2c); the Runs "
                       f"page lists the jobs.")
    job = _load(jobs_dir() / job_id)
    if job is None:
        raise JobError(f"no job {job_id!r} in {jobs_dir()}.")
    return job


def cancel_job(job_id: str) -> Job:
    """Stop a running job (SIGTERM to its process group). The run keeps its finished epochs."""
    job = get_job(job_id)
    if job.state != "running":
        return job
    job.extra["cancel_requested"] = True
    _save(job)
    try:
        os.killpg(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    child = _children.get(job.pid)
    if child is not None:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            child.wait()
    return get_job(job_id)


def progress(job: Job) -> dict:
    """What a progress display needs: epochs done and planned (from the run store), the fraction
    of the current epoch (from the last tqdm bar in the log), the overall fraction and the log's
    last line (and last few lines, whole: a failed job's error)."""
    from explorer.runs import RunStore

    done = total = None
    accuracy = None
    try:
        info = RunStore(shipped=False).info(job.run_id)
        done, total, accuracy = info.epochs_done, info.epochs, info.accuracy
    except (OSError, ValueError):
        pass
    tail = log_tail(job, 4000)
    within = 0.0
    if job.state == "running":
        bars = _PERCENT.findall(tail)
        within = int(bars[-1]) / 100 if bars and int(bars[-1]) < 100 else 0.0  # 100%: counted in done
    fraction = None
    if total:
        fraction = 1.0 if job.state == "finished" else min(1.0, ((done or 0) + within) / total)
    lines = [line.strip() for line in re.split(r"[\r\n]+", tail) if line.strip()]
    return {"epochs_done": done, "epochs": total, "fraction": fraction, "accuracy": accuracy,
            "last_line": lines[-1] if lines else "", "last_lines": lines[-ERROR_LINES:]}


def log_tail(job: Job, size: int = 2000) -> str:
    try:
        with open(job.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# -- state on disk -----------------------------------------------------------------------------------
def _save(job: Job) -> None:
    record = {"id": job.id, "argv": job.argv, "pid": job.pid, "run_id": job.run_id,
              "started_at": job.started_at, "state": job.state, "returncode": job.returncode,
              "ended_at": job.ended_at, **job.extra}
    atomic_write(job.folder / "job.json", (json.dumps(record, indent=1) + "\n").encode())


def _load(folder: Path) -> Job | None:
    try:
        record = json.loads((folder / "job.json").read_text())
        known = {"id", "argv", "pid", "run_id", "started_at", "state", "returncode", "ended_at"}
        job = Job(folder=folder, extra={k: v for k, v in record.items() if k not in known},
                  **{k: record[k] for k in known if k in record})
    except (OSError, ValueError, TypeError):
        return None  # half-created or damaged: not a job a page can show
    if job.state == "running":
        _refresh(job)
    return job


def _refresh(job: Job) -> None:
    """A job marked running whose process has ended: record how it ended."""
    child = _children.get(job.pid)
    if child is not None:
        code = child.poll()  # also reaps it (no zombie left by the server)
        if code is None:
            return
        _children.pop(job.pid, None)
    elif _alive(job.pid):
        return
    else:
        code = None  # started by another process that is gone: judge by the run itself
    job.returncode, job.ended_at = code, time.time()
    _release_dead_lock(job)
    if job.extra.get("cancel_requested"):
        job.state = "cancelled"
    elif code == 0 or (code is None and _run_complete(job.run_id)):
        job.state = "finished"
    else:
        job.state = "failed"
    try:
        _save(job)
    except OSError:
        pass


def _release_dead_lock(job: Job) -> None:
    """A job killed outright (SIGKILL, the OOM killer, a crash of Python itself) could not release its
    run's lock; the lock is stale (its pid is gone), so delete it now that the job is known dead, rather
    than leave it for the next writer to judge."""
    from explorer.runs import RunStore
    from explorer.runs.lock import LOCK_NAME, read_lock, remove_if_stale

    try:
        folder = RunStore(shipped=False).path(job.run_id)
        holder = read_lock(folder / LOCK_NAME)
        if holder and holder.get("pid") == job.pid:
            remove_if_stale(folder)
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    """True if ``pid`` is a live `explorer train` process (a reused pid does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return sys.platform != "linux"
    return b"explorer" in cmdline and b"train" in cmdline


def _run_complete(identifier: str) -> bool:
    from explorer.runs import RunStore

    try:
        return RunStore(shipped=False).info(identifier).status == "complete"
    except (OSError, ValueError):
        return False


def _parse_train_args(argv: list[str]):
    import argparse
    import contextlib
    import io

    from explorer.train_cli import add_parser

    parser = argparse.ArgumentParser(prog="explorer")
    add_parser(parser.add_subparsers(dest="command"))
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(["train", *[str(a) for a in argv]])
    except SystemExit:  # argparse reports a bad argument by printing usage and exiting
        message = errors.getvalue().strip().splitlines()
        raise JobError(f"invalid training arguments: {message[-1] if message else argv}") from None
