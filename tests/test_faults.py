"""Faults (issue 15): training jobs killed at random moments, a full disk while a checkpoint or an analysis is
written, the app on a store holding damaged, older and mismatched runs, cancelled and crashed background
jobs. Each test checks what a user relies on without saying: nothing stored is lost or half-written, the
listing tells the truth, the next job can start."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from explorer import jobs
from explorer.cli import main
from explorer.runs import RunCorruptError, RunStore, StoreWriteError
from explorer.runs import analyses as stored_analyses
from explorer.runs.files import safetensors_metadata
from explorer.train_cli import config_from_args
from explorer.training import train

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.json", "metrics.json", "provenance.json", "weights.safetensors", "checkpoint.safetensors",
             "lock"}
# The fastest job that still writes a few checkpoints: 4 epochs of 4 steps of a width-2 CNN13.
TINY = ["cnn13", "--dataset", "synthetic", "--width", "2", "--epochs", "4", "--limit-train", "64",
        "--limit-test", "32", "--batch-size", "16", "--device", "cpu"]


def tiny_config(*extra: str) -> dict:
    return config_from_args(jobs._parse_train_args([*TINY, *extra]))


def env_for(store: Path) -> dict:
    return {**os.environ, "EXPLORER_STORE": str(store), "PYTHONUNBUFFERED": "1"}


def train_process(store: Path, *extra: str, log=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "explorer", "train", *TINY, "--no-progress", *extra],
                            env=env_for(store), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=ROOT)


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_store(runs: Path) -> list[Path]:
    """Every file a reader can see is whole: each JSON parses, each safetensors loads, a lock holds its
    holder. Returns the hidden temporaries a killed writer left (never taken for run files)."""
    temporaries = []
    if not runs.is_dir():
        return temporaries
    for folder in runs.iterdir():
        if folder.name.startswith("."):  # a run being created (.<id>.*.tmp) or deleted: never listed
            assert folder.name.endswith(".tmp") or folder.name.startswith(".deleting-"), folder
            temporaries.append(folder)
            continue
        for path in folder.iterdir():
            if path.name.startswith("."):
                assert path.name.endswith(".tmp"), path
                temporaries.append(path)
                continue
            assert path.name in RUN_FILES or stored_analyses.is_analysis_file(path.name), path
            if path.name.endswith(".json") or path.name == "lock":
                assert json.loads(path.read_text()) is not None, path  # a lock is never empty
            elif path.name.endswith(".safetensors"):
                safetensors_metadata(path)
                load_file(path)
    return temporaries


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]


# -- kill -9 at random moments ----------------------------------------------------------------------
KILLS = 20


@pytest.mark.slow
def test_training_killed_at_random_moments_resumes_to_the_same_weights(tmp_path, monkeypatch, capsys):
    """20 `kill -9` of `explorer train` at seeded random moments from start-up to the end of training (half
    timed from the launch, half from the moment the job records its session and begins training). After
    each: no half-written file, the run listed as partial (incomplete) or complete, never corrupt or
    running, the other run of the store untouched byte for byte. Each next attempt resumes; every run that
    completes has exactly the weights and metrics of an uninterrupted run."""
    reference_store, store = tmp_path / "reference", tmp_path / "store"
    monkeypatch.setenv("EXPLORER_STORE", str(store))
    started = time.perf_counter()
    identifier = RunStore.run_id(tiny_config())
    reference = reference_store / "runs" / identifier
    process = train_process(reference_store)
    start_up = wait_for_session(process, reference, 0)
    assert process.wait(timeout=300) == 0 and start_up is not None
    training = time.perf_counter() - started - start_up  # the session recorded to the end of the job
    reference_metrics = without_timing(json.loads((reference / "metrics.json").read_text()))
    # Another run in the store, complete before the kills begin: it must not change at all.
    assert train_process(store, "--seed", "5", "--epochs", "1").wait(timeout=300) == 0
    other = store / "runs" / RunStore.run_id(tiny_config("--seed", "5", "--epochs", "1"))
    other_files = file_hashes(other)

    rng = random.Random(15)
    kills, attempts, completions, outcomes, temporaries, delays = 0, 0, 0, {}, 0, []
    folder = store / "runs" / identifier
    while kills < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, (kills, attempts)
        before = epochs_done(identifier) if folder.is_dir() else None
        # Half the kills during start-up, half once training has begun, each drawn over the reference's own
        # phase: start-up (imports, data) is most of a job's time, and slows most when the machine is loaded.
        in_start_up = rng.random() < 0.5
        delay = rng.uniform(0.0, start_up if in_start_up else training)
        process = train_process(store, "--resume")
        if not in_start_up:
            wait_for_session(process, folder, sessions_recorded(folder))
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
        code = process.wait()
        temporaries += bool(check_store(store / "runs"))
        assert file_hashes(other) == other_files
        infos = {i.id: i for i in RunStore().list()}
        assert infos[other.name].status == "complete"
        if code == -signal.SIGKILL:
            kills += 1
            delays.append(("start-up" if in_start_up else "training", round(delay, 2)))
            info = infos.get(identifier)
            assert info is None or info.status in ("partial", "complete"), (info.status, info.error)
            after = None if info is None else info.epochs_done
            outcome = ("before the run folder existed" if after is None else
                       "before its first checkpoint" if after == 0 else
                       "with nothing new saved" if after == before else
                       f"after saving epoch {after} of 4" if info.status == "partial" else "after the last epoch")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if info is not None and info.status == "partial":  # incomplete, and `explorer runs list` says so
                assert main(["runs", "list"]) == 0
                out = capsys.readouterr().out
                assert re.search(rf"^{identifier}\s+partial\s+{info.epochs_done}/4\s", out, re.MULTILINE), out
        else:
            assert code == 0
        info = infos.get(identifier)
        if info is not None and info.status == "complete":  # compare, then start over
            completions += 1
            assert same_weights(folder / "weights.safetensors", reference / "weights.safetensors")
            assert without_timing(json.loads((folder / "metrics.json").read_text())) == reference_metrics
            assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # the resume swept them
            RunStore().delete(identifier)
    assert train_process(store, "--resume").wait(timeout=300) == 0  # the last interrupted run, finished
    assert same_weights(folder / "weights.safetensors", reference / "weights.safetensors")
    assert without_timing(json.loads((folder / "metrics.json").read_text())) == reference_metrics
    assert not [p for p in folder.iterdir() if p.name.startswith(".")] and not (folder / "lock").exists()
    assert file_hashes(other) == other_files
    report = {"kills": kills, "attempts": attempts, "completed and compared": completions + 1,
              "kills by outcome": dict(sorted(outcomes.items())), "kills leaving a temporary": temporaries,
              "delays": sorted(delays), "reference start-up seconds": round(start_up, 1),
              "reference training seconds": round(training, 2),
              "test seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(report), file=sys.stderr)
    assert len(outcomes) >= 3  # the kills did land at different moments


CRASH_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from explorer.jobs import _parse_train_args
    from explorer.runs import RunStore
    from explorer.train_cli import config_from_args
    from explorer.training import train
    target, n, argv = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    real, calls = getattr(os, target), [0]
    def crash(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            os._exit(137)  # as abrupt as SIGKILL, at an exact moment of the write
        return real(*args, **kwargs)
    setattr(os, target, crash)
    train(config_from_args(_parse_train_args(argv)), store=RunStore(), resume=True, progress=False, device="cpu")
    print("no crash: fewer than", n, "calls")
""")


@pytest.mark.slow
def test_a_crash_at_each_step_of_a_checkpoint_write(tmp_path, monkeypatch):
    """Random kills rarely land inside the few milliseconds of a write: crash (os._exit, as abrupt as
    SIGKILL) on the n-th fsync (a temporary written, not renamed) and on the n-th rename (some files of a
    checkpoint replaced, not all) of a training, then resume: the same weights as without the crash."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    reference = train(tiny_config(), store=RunStore(tmp_path / "reference"), progress=False, device="cpu")
    # Renames: 1 = provenance of the session, 2-5 = epoch 1's four files, 6-9 = epoch 2's, ...
    for target, n in (("fsync", 2), ("fsync", 4), ("replace", 1), ("replace", 3), ("replace", 5),
                      ("replace", 7), ("replace", 18)):
        done = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, target, str(n), json.dumps(TINY)],
                              env=env_for(tmp_path / "store"),
                              cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 137, (target, n, done.stdout, done.stderr[-2000:])
        assert check_store(RunStore().root), (target, n)  # killed mid-write: its hidden temporaries are there
        info = RunStore().info(reference.id)
        assert info.status == "partial" and info.error is None, (target, n, info)
        run = train(tiny_config(), store=RunStore(), resume=True, progress=False, device="cpu")
        assert run.status == "complete", (target, n)
        assert same_weights(run.path / "weights.safetensors", reference.path / "weights.safetensors"), (target, n)
        assert without_timing(run.metrics) == without_timing(reference.metrics)
        assert not [p.name for p in run.path.iterdir() if p.name.startswith(".")], (target, n)
        RunStore().delete(run.id)


def test_a_writer_killed_while_taking_the_lock_does_not_block_the_run(tmp_path):
    """The lock is created with its content in one step: a writer killed while taking it leaves no empty
    lock (which would read as "a job that is starting" for 30 s), and the next writer locks at once."""
    store = RunStore(tmp_path)
    run = store.create_or_open(tiny_config())
    script = textwrap.dedent(f"""
        import os
        from explorer.runs import RunStore, lock
        lock.json.dump = lambda *args, **kwargs: os._exit(137)  # killed while writing its holder
        RunStore({str(tmp_path)!r}).load({run.id!r}).mark_complete()
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 137, done.stderr
    assert not (run.path / "lock").exists()
    with run:  # at once, no RunLockedError
        assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []  # its temporary swept
    assert store.info(run.id).status == "partial"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process start times from /proc")
def test_a_killed_writers_lock_is_stale_even_when_its_pid_lives_on(tmp_path):
    """After a kill -9 the lock names a dead pid; it must read as stale even when that pid has been given to
    another process since (pid reuse: the start time recorded in the lock differs) or when the killed process
    is a zombie its parent has not reaped yet. Otherwise the run would show "running" and refuse every job."""
    store = RunStore(tmp_path)
    run = store.create_or_open(tiny_config())
    lock = run.path / "lock"
    with run:
        holder = json.loads(lock.read_text())
    assert isinstance(holder["started"], int)  # recorded by the writer
    # The same pid, alive, but another process: this one, with the start time of a process long gone.
    lock.write_text(json.dumps({**holder, "pid": os.getpid(), "started": holder["started"] - 1}))
    assert store.info(run.id).status == "partial"
    lock.write_text(json.dumps({**holder, "pid": os.getpid()}))  # really this process: live
    assert store.info(run.id).status == "running"
    # A zombie: killed, not reaped.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": child.pid, "host": holder["host"]}))
        assert store.info(run.id).status == "running"
        child.kill()
        wait_for(lambda: process_state(child.pid) == "Z", timeout=30)
        assert store.info(run.id).status == "partial"
        run.mark_complete()  # taken over at once
    finally:
        child.kill()
        child.wait()
    assert not lock.exists()


# -- a full disk ------------------------------------------------------------------------------------
FULL_DISK_SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from explorer.cli import main
    from explorer.runs import RunStore, StoreWriteError
    from explorer.runs import store as run_store

    real_save = run_store.Run.save_checkpoint

    def save_then_fill_the_disk(self, model_state, optimizer_state, epoch, *args, **kwargs):
        if epoch == 2:  # epoch 1 is stored; an analysis of its weights too; then the size limit
            RunStore().analysis(self.id, "probe", {"n": 1}, compute=lambda: {"x": np.arange(1000.0)})
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        return real_save(self, model_state, optimizer_state, epoch, *args, **kwargs)

    run_store.Run.save_checkpoint = save_then_fill_the_disk
    code = main(["train", *sys.argv[1:], "--no-progress"])
    print("exit code", code, flush=True)
    try:
        [run_id] = [i.id for i in RunStore().list() if not i.shipped]
        RunStore().analysis(run_id, "probe", {"n": 2}, compute=lambda: {"x": np.zeros(100_000)})
    except StoreWriteError as exc:
        print("analysis:", exc, flush=True)
""")


@pytest.mark.slow
def test_a_file_size_limit_while_writing_a_checkpoint_and_an_analysis(tmp_path, monkeypatch):
    """A real process under RLIMIT_FSIZE (SIGXFSZ ignored, so writes fail with EFBIG, as on a full disk):
    the CLI says in one line what happened and what to do, the previous checkpoint still loads and resumes
    to the weights of an uninterrupted run, the previous analysis is readable, nothing is half-written."""
    store = tmp_path / "store"
    monkeypatch.setenv("EXPLORER_STORE", str(store))
    done = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, *TINY], env=env_for(store), cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert "exit code 2" in done.stdout, (done.stdout, done.stderr[-3000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("explorer:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    identifier = RunStore.run_id(tiny_config())
    assert re.fullmatch(rf"explorer: error: could not write the checkpoint of epoch 2 of run {identifier} in "
                        rf".* \(file too large: a file-size limit \(ulimit -f\) .*\); the previous checkpoint "
                        rf"\(epoch 1\) is intact\. Raise the limit \(ulimit -f unlimited\) or use another file "
                        rf"system, then run again with --resume\.", errors[0]), errors[0]
    assert re.search(r"analysis: could not store analysis 'probe' of run .* \(file too large.*\); the run itself "
                     r"is unchanged and nothing was stored\. Raise the limit", done.stdout), done.stdout
    runs = store / "runs"
    assert check_store(runs) == []  # no temporary left, every file whole
    assert not (runs / identifier / "lock").exists()
    run = RunStore().load(identifier)
    assert run.load_checkpoint().epoch == 1 and len(run.metrics) == 1 and run.status == "partial"
    run.build_model()
    assert RunStore().analysis(identifier, "probe", {"n": 1})["x"][-1] == 999.0
    resumed = train(tiny_config(), store=RunStore(), resume=True, progress=False, device="cpu")
    reference = train(tiny_config(), store=RunStore(tmp_path / "reference"), progress=False, device="cpu")
    assert same_weights(resumed.path / "weights.safetensors", reference.path / "weights.safetensors")


class DiskFull:
    """os.fdopen whose files take ``room`` bytes in all, then fail with ENOSPC (half a file written)."""

    def __init__(self, room: int):
        self.room, self.real = room, os.fdopen

    def __call__(self, *args, **kwargs):
        f = self.real(*args, **kwargs)
        real_write, disk = f.write, self

        def write(data):
            if len(data) > disk.room:
                real_write(bytes(data[:disk.room]))
                disk.room = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            disk.room -= len(data)
            return real_write(data)

        f.write = write
        return f


class Stop(Exception):
    pass


def _stop_after_first_epoch(record):
    if record["epoch"] == 1:
        raise Stop


@pytest.mark.slow
def test_a_full_disk_in_process_keeps_the_checkpoint_and_the_analysis(tmp_path, monkeypatch):
    """ENOSPC part-way through a file (os.fdopen's writes fail once the disk is full) while the checkpoint of
    epoch 2 is written, and while a stale analysis is recomputed: each fails with a message naming the disk
    and the fix; the files of epoch 1 and the analysis stored before are byte for byte what they were (the
    provenance records the attempt), and no temporary is left."""
    from explorer.runs import store as run_store

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    config = tiny_config()
    with pytest.raises(Stop):
        train(config, progress=False, on_epoch=_stop_after_first_epoch, device="cpu")
    store = RunStore()
    run = store.load(store.run_id(config))
    first = store.analysis(run.id, "probe", {"k": 1}, compute=lambda: {"x": np.arange(50_000.0)})

    def kept(folder):
        return {k: v for k, v in file_hashes(folder).items() if k != "provenance.json"}

    before = kept(run.path)
    real_save = run_store.Run.save_checkpoint
    for room in (0, 10_000):  # nothing of the checkpoint written, or part of its first file
        def save_on_a_full_disk(self, *args, room=room, **kwargs):
            with monkeypatch.context() as m:
                m.setattr(os, "fdopen", DiskFull(room))
                return real_save(self, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(run_store.Run, "save_checkpoint", save_on_a_full_disk)
            with pytest.raises(StoreWriteError, match=rf"could not write the checkpoint of epoch 2 of run {run.id} "
                                                      r".*\(no space left on device\); the previous checkpoint "
                                                      r"\(epoch 1\) is intact\. Free some space"):
                train(config, resume=True, progress=False, device="cpu")
        assert kept(run.path) == before and check_store(store.root) == []
        assert not (run.path / "lock").exists()
        assert store.info(run.id).status == "partial" and run.provenance["epochs_done"] == 1
        assert run.load_checkpoint().epoch == 1 and run.build_model() is not None
    done = train(config, resume=True, progress=False, device="cpu")  # space again: it finishes
    assert done.status == "complete"
    analysis_file = first.path
    stored = analysis_file.read_bytes()
    with monkeypatch.context() as m:  # the weights changed: the analysis is stale and must be recomputed
        m.setattr(os, "fdopen", DiskFull(1000))
        with pytest.raises(StoreWriteError, match=r"could not store analysis 'probe' .*\(no space left on "
                                                  r"device\); the run itself is unchanged and the analysis "
                                                  r"stored before is kept\. Free some space"):
            store.analysis(run.id, "probe", {"k": 1}, compute=lambda: {"x": np.zeros(50_000)})
    assert analysis_file.read_bytes() == stored and check_store(store.root) == []
    assert stored_analyses.read(analysis_file)["x"][-1] == 49_999.0  # still readable
    listed = store.analyses(run.id)
    assert [(a.name, a.error, a.current) for a in listed] == [("probe", None, False)]  # stale, not damaged
    assert store.analysis(run.id, "probe", {"k": 1}, compute=lambda: {"x": np.zeros(3)}).computed


# -- the app on a damaged store ---------------------------------------------------------------------
def _damaged_store(store: RunStore) -> dict[str, str]:
    """A healthy run, a corrupt one, one of an older format, an empty folder, one whose weights do not fit
    its configuration, one with a crafted configuration. Returns {id: what it is}."""
    from safetensors.torch import save_file

    healthy = train(tiny_config("--epochs", "1"), store=store, progress=False, device="cpu")
    kinds = {healthy.id: "healthy"}
    corrupt = train(tiny_config("--epochs", "1", "--seed", "1"), store=store, progress=False, device="cpu")
    (corrupt.path / "metrics.json").write_text('[{"epoch": 1,')
    kinds[corrupt.id] = "corrupt"
    older = train(tiny_config("--epochs", "1", "--seed", "2"), store=store, progress=False, device="cpu")
    config = {k: v for k, v in older.config.items() if k not in ("format", "limit_train", "limit_test")}
    legacy = store.root / store.run_id(config)  # what an earlier version wrote: no provenance, no checkpoint
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps(config))
    for name in ("metrics.json", "weights.safetensors"):
        (legacy / name).write_bytes((older.path / name).read_bytes())
    store.delete(older.id)
    kinds[legacy.name] = "older"
    (store.root / "cnn13-0123456789ab").mkdir()
    kinds["cnn13-0123456789ab"] = "empty"
    mismatched = train(tiny_config("--epochs", "1", "--seed", "3"), store=store, progress=False, device="cpu")
    wide = train(tiny_config("--epochs", "1", "--seed", "4", "--width", "3"), store=store, progress=False,
                 device="cpu")
    save_file(load_file(wide.path / "weights.safetensors"), str(mismatched.path / "weights.safetensors"))
    store.delete(wide.id)
    kinds[mismatched.id] = "mismatched"
    crafted = {**healthy.config, "model_config": {**healthy.config["model_config"], "width": "32"}}
    folder = store.root / store.run_id(crafted)
    folder.mkdir()
    for name in ("metrics.json", "provenance.json", "weights.safetensors", "checkpoint.safetensors"):
        (folder / name).write_bytes((healthy.path / name).read_bytes())
    (folder / "config.json").write_text(json.dumps(crafted))
    kinds[folder.name] = "crafted"
    return kinds


EXPECTED = {  # kind → (status, what the reason says)
    "healthy": ("complete", None),
    "corrupt": ("corrupt", "metrics.json is damaged"),
    "older": ("complete", r"an older run format \(no provenance.json"),
    "empty": ("corrupt", "an empty folder, not a run"),
    "mismatched": ("corrupt", (r"tensor 'stem.0.weight' of weights.safetensors has shape \[3, 3, 3, 3\], the "
                               r"configuration needs \[2, 3, 3, 3\]")),
    "crafted": ("corrupt", r"width K must be an integer ≥ 1, got '32'"),
}


@pytest.mark.slow
def test_the_app_on_a_store_of_damaged_older_and_mismatched_runs(tmp_path, monkeypatch):
    """The Runs page lists each run with its status and reason, shows each one's details, and every other
    page builds and renders; loading the mismatched run says which tensor and what to do."""
    import bokeh.document
    import panel as pn

    from explorer.app import build_app
    from explorer.pages import PAGES

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    store = RunStore()
    kinds = _damaged_store(store)
    infos = {i.id: i for i in store.list()}
    for identifier, kind in kinds.items():
        status, reason = EXPECTED[kind]
        assert infos[identifier].status == status, (kind, infos[identifier])
        assert (infos[identifier].error is None) if reason is None else re.search(reason, infos[identifier].error)
    mismatched = next(i for i, k in kinds.items() if k == "mismatched")
    with pytest.raises(RunCorruptError, match=rf"run {mismatched} is damaged: tensor 'stem.0.weight' .*Delete it "
                                              rf"with `explorer runs delete {mismatched}` and train it again"):
        store.load(mismatched).build_model()
    try:
        page = build_app("runs").page
        pn.panel(page).get_root(bokeh.document.Document())
        assert not page.alert.visible, page.alert.object
        table = page.runs_table.value
        for identifier, kind in kinds.items():
            row = table[table["id"] == identifier].iloc[0]
            status, reason = EXPECTED[kind]
            assert row["status"] == status
            assert (row["problem or note"] == "") if reason is None else re.search(reason, row["problem or note"])
            page.runs_table.selection = [list(table["id"]).index(identifier)]
            assert page.selected_run == identifier
            details = page.details.object.replace("\\", "")
            assert f"— {status}" in details
            if reason is not None:
                assert ("Problem: " if status == "corrupt" else "Note: ") in details
                assert re.search(reason, details), details
        for spec in PAGES:
            template = build_app(spec.slug)
            pn.panel(template.page).get_root(bokeh.document.Document())
            assert not template.page.alert.visible, (spec.slug, template.page.alert.object)
            if template.page.controls is not None:
                pn.panel(template.page.controls).get_root(bokeh.document.Document())
    finally:
        pn.state.reset()


# -- cancelled and crashed background jobs -----------------------------------------------------------
LONG = ["cnn13", "--dataset", "synthetic", "--width", "2", "--epochs", "40", "--limit-train", "64",
        "--limit-test", "32", "--batch-size", "16", "--device", "cpu"]


def process_state(pid: int) -> str | None:
    """The process's state letter in /proc (Z: a zombie nobody reaped), None when it no longer exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def wait_for(condition, timeout=120, what=""):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, what
        time.sleep(0.1)


def reapable(pid: int) -> bool:
    """Dead and not yet reaped: a zombie whose threads have all exited. The leader shows Z as soon as it is
    killed, while torch's worker threads may still be exiting (measured: 0.1 s), and until they have,
    waitpid does not report the process."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    return threads == [str(pid)] and process_state(pid) == "Z"


def sessions_recorded(folder: Path) -> int:
    """How many training sessions the run's provenance lists (0 before the run exists)."""
    try:
        return len(json.loads((folder / "provenance.json").read_text()).get("sessions", []))
    except (OSError, ValueError):  # not there yet
        return 0


def wait_for_session(process: subprocess.Popen, folder: Path, before: int, timeout: float = 300) -> float | None:
    """Seconds until `process` has recorded its training session in the run's provenance (its start-up is
    over); None if it ended first."""
    started = time.perf_counter()
    while process.poll() is None:
        if sessions_recorded(folder) > before:
            return time.perf_counter() - started
        assert time.perf_counter() - started < timeout, "the job never began training"
        time.sleep(0.005)
    return None


def epochs_done(run_id: str) -> int:
    try:
        return RunStore(shipped=False).info(run_id).epochs_done
    except OSError:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_cancelled_and_crashed_jobs_leave_no_lock_and_no_zombie(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    # Cancelled while it trains (it holds the run's lock).
    job = jobs.start_training_job(LONG)
    wait_for(lambda: epochs_done(job.run_id) >= 1, what=jobs.log_tail(job))
    lock = RunStore(shipped=False).path(job.run_id) / "lock"
    assert lock.exists()
    assert jobs.cancel_job(job.id).state == "cancelled"
    assert process_state(job.pid) is None  # reaped: not even a zombie
    assert not lock.exists()
    # Crashed: killed outright (the OOM killer, kill -9) while it trains.
    again = jobs.start_training_job(LONG)
    assert again.argv[-1] == "--resume"
    done_before = epochs_done(job.run_id)
    wait_for(lambda: epochs_done(job.run_id) > done_before and lock.exists(), what=jobs.log_tail(again))
    os.kill(again.pid, signal.SIGKILL)
    wait_for(lambda: reapable(again.pid), timeout=30)  # dead, not yet reaped
    assert lock.exists()  # a SIGKILL cannot release it
    assert jobs.get_job(again.id).state == "failed"  # noticed (the Runs page polls every second)...
    assert process_state(again.pid) is None  # ...and reaped
    assert not lock.exists()  # its stale lock removed with it
    assert RunStore(shipped=False).info(job.run_id).status == "partial"
    # Crashed on its own (an error before training: no CIFAR-10 here).
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    failing = jobs.start_training_job(["cnn13", "--dataset", "cifar10", "--epochs", "1", "--device", "cpu"])
    wait_for(lambda: jobs.get_job(failing.id).state != "running", what=jobs.log_tail(failing))
    assert jobs.get_job(failing.id).state == "failed" and process_state(failing.pid) is None
    # A new job on the same run starts, resumes from the last checkpoint and trains on.
    resumed = jobs.start_training_job(LONG)
    assert resumed.argv[-1] == "--resume"
    done_before = epochs_done(job.run_id)
    wait_for(lambda: epochs_done(job.run_id) > done_before, what=jobs.log_tail(resumed))
    assert jobs.cancel_job(resumed.id).state == "cancelled"
    assert process_state(resumed.pid) is None and not lock.exists()
    assert not any(process_state(j.pid) == "Z" for j in jobs.list_jobs())
