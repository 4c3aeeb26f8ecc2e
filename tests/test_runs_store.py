"""The run store: ids from the full configuration, atomic checkpoints without pickle, listing
that survives damage, one writer per run, clear messages (issue: run store, bad input)."""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from explorer.nets import CNN13
from explorer.runs import RunCorruptError, RunLockedError, RunNotFoundError, RunStore, StoreWriteError, run_id
from explorer.runs import files as run_files
from explorer.runs.files import leftover_temporaries, safetensors_metadata

MARKER = torch.arange(256, dtype=torch.uint8)  # stands for an RNG state
CONFIG = {"model": "cnn13", "model_config": {"width": 4, "rho": "relu"}, "epochs": 3, "seed": 0,
          "schedule": {"name": "quick", "lr": 0.1}, "dataset": "synthetic", "subset": None}


def fake_epoch(model, optimizer, epoch):
    """One optimisation step, so the optimizer holds momentum buffers, and a metrics record."""
    loss = model(torch.rand(2, 3, 32, 32)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.5, "test_loss": 1.0,
            "test_acc": 0.4 + 0.1 * epoch, "seconds": 0.1, "lr": 0.1}


def checkpointed_run(store, epochs=1, config=CONFIG):
    torch.manual_seed(0)
    model = CNN13(width=4, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run = store.create_or_open(config)
    metrics = []
    for epoch in range(1, epochs + 1):
        metrics.append(fake_epoch(model, optimizer, epoch))
        run.save_checkpoint(model.state_dict(), optimizer.state_dict(), epoch, metrics,
                            training_state={"step": epoch, "rng": {"torch": MARKER},
                                            "scaler": {}, "pair": (1, None)})
    return run, model, optimizer


def test_run_id_hashes_the_whole_configuration():
    same = json.loads(json.dumps(CONFIG))
    same["model_config"] = {"rho": "relu", "width": 4}  # key order does not matter
    assert run_id(same) == run_id(CONFIG)
    assert run_id(CONFIG).startswith("cnn13-") and len(run_id(CONFIG)) == len("cnn13-") + 12
    variants = [{**CONFIG, "seed": 1}, {**CONFIG, "epochs": 4}, {**CONFIG, "subset": {"n": 10}},
                {**CONFIG, "schedule": {"name": "quick", "lr": 0.2}}, {**CONFIG, "dataset": "cifar10"}]
    assert len({run_id(v) for v in variants} | {run_id(CONFIG)}) == len(variants) + 1
    with pytest.raises(ValueError, match="plain JSON"):
        run_id({**CONFIG, "seed": object()})


def test_default_root_follows_the_configured_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere" / "runs"


def test_checkpoint_round_trip_without_pickle(tmp_path):
    store = RunStore(tmp_path)
    run, model, optimizer = checkpointed_run(store, epochs=2)
    assert {p.name for p in run.path.iterdir()} == {
        "config.json", "metrics.json", "provenance.json", "weights.safetensors",
        "checkpoint.safetensors"}
    assert not leftover_temporaries(run.path)
    for name in ("weights.safetensors", "checkpoint.safetensors"):
        assert safetensors_metadata(run.path / name)["epoch"] == "2"
    weights = run.load_weights()
    assert weights.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0)
    checkpoint = store.load(run.id).load_checkpoint()
    assert checkpoint.epoch == 2 and checkpoint.metrics == run.metrics
    restored = torch.optim.SGD(CNN13(width=4).parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(checkpoint.optimizer_state)  # int keys and momentum buffers survive
    expected = optimizer.state_dict()
    assert restored.state_dict()["param_groups"] == expected["param_groups"]
    for index, state in expected["state"].items():
        torch.testing.assert_close(restored.state_dict()["state"][index]["momentum_buffer"],
                                   state["momentum_buffer"], rtol=0, atol=0)
    assert torch.equal(checkpoint.training_state["rng"]["torch"], MARKER)
    assert checkpoint.training_state["pair"] == (1, None) and checkpoint.training_state["step"] == 2
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    rebuilt = run.build_model()
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), model.eval()(x))


def test_statuses_partial_complete_running(tmp_path):
    store = RunStore(tmp_path)
    run, _, _ = checkpointed_run(store, epochs=2)
    assert store.info(run.id).status == "partial"  # 2 of 3 epochs
    with run:  # a live writer holds the lock
        assert store.info(run.id).status == "running"
    run, _, _ = checkpointed_run(store, epochs=3)
    assert store.info(run.id).status == "partial"  # all epochs, not yet marked complete
    run.mark_complete()
    info = store.list()[0]
    assert (info.status, info.epochs_done, info.accuracy) == ("complete", 3, pytest.approx(0.7))
    assert info.provenance["complete"] and info.error is None


def damage(run, how):
    path = run.path
    if how == "truncated weights":
        data = (path / "weights.safetensors").read_bytes()
        (path / "weights.safetensors").write_bytes(data[:-100])
    elif how == "garbage weights":
        (path / "weights.safetensors").write_bytes(b"\x00" * 7)
    elif how == "bad metrics json":
        (path / "metrics.json").write_text('[{"epoch": 1,')
    elif how == "bad config json":
        (path / "config.json").write_text("{")
    elif how == "config edited":
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, "seed": 99}))
    elif how == "missing checkpoint":
        (path / "checkpoint.safetensors").unlink()


@pytest.mark.parametrize("how", ["truncated weights", "garbage weights", "bad metrics json",
                                 "bad config json", "config edited", "missing checkpoint"])
def test_a_damaged_run_is_listed_as_corrupt_and_loading_names_the_fix(tmp_path, how):
    store = RunStore(tmp_path)
    healthy, _, _ = checkpointed_run(store, config={**CONFIG, "seed": 7})
    run, _, _ = checkpointed_run(store)
    damage(run, how)
    infos = {i.id: i for i in store.list()}  # never raises
    assert infos[healthy.id].status == "partial"
    assert infos[run.id].status == "corrupt" and infos[run.id].error
    if how in ("truncated weights", "garbage weights"):
        with pytest.raises(RunCorruptError, match=f"run {run.id} is damaged.*explorer runs delete"):
            store.load(run.id).load_weights()
    if how == "bad config json":
        with pytest.raises(RunCorruptError, match="config.json is damaged"):
            store.load(run.id)


@pytest.mark.parametrize("how", ["truncated weights", "garbage weights", "bad metrics json",
                                 "bad config json", "config edited", "missing checkpoint"])
def test_a_listing_made_before_the_damage_does_not_hide_it(tmp_path, how):
    store = RunStore(tmp_path)
    run, _, _ = checkpointed_run(store)
    assert store.info(run.id).status == "partial"  # read once and remembered
    damage(run, how)
    assert store.info(run.id).status == "corrupt"


def test_listing_rereads_a_run_only_when_its_files_change(tmp_path, monkeypatch):
    store = RunStore(tmp_path, shipped=False)
    run, model, optimizer = checkpointed_run(store, epochs=1)
    other, _, _ = checkpointed_run(store, epochs=1, config={**CONFIG, "seed": 5})
    reads = []
    real_read = run_files.read_json
    monkeypatch.setattr(run_files, "read_json", lambda path: reads.append(path.parent.name) or real_read(path))
    store.list()
    first = len(reads)
    assert first >= 2 * 3  # config, metrics and provenance of both runs
    assert [i.epochs_done for i in store.list()] and len(reads) == first  # nothing changed: no read
    metrics = run.metrics + [fake_epoch(model, optimizer, 2)]
    run.save_checkpoint(model.state_dict(), optimizer.state_dict(), 2, metrics, training_state={"step": 2})
    infos = {i.id: i for i in store.list()}
    assert set(reads[first:]) == {run.id}  # only the run that changed is read again
    assert (infos[run.id].epochs_done, infos[run.id].status) == (2, "partial")
    assert infos[other.id].epochs_done == 1
    with run:  # a lock appears: running; when it goes, partial again
        assert store.info(run.id).status == "running"
    assert store.info(run.id).status == "partial"
    store.delete(other.id)
    assert [i.id for i in store.list()] == [run.id]


def test_listing_puts_the_most_recently_changed_run_first(tmp_path):
    store = RunStore(tmp_path, shipped=False)
    first, _, _ = checkpointed_run(store, epochs=1)
    second, _, _ = checkpointed_run(store, epochs=1, config={**CONFIG, "seed": 5})
    for run, when in ((first, 2_000_000_000), (second, 2_000_000_100), (first, 2_000_000_200)):
        os.utime(run.path / "metrics.json", (when, when))  # as if an epoch had just been written
        assert next(i.id for i in store.list()) == run.id
        assert store.info(run.id).changed_at == when


def test_a_full_disk_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    run, model, optimizer = checkpointed_run(store, epochs=1)
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    metrics = run.metrics + [fake_epoch(model, optimizer, 2)]
    real_write, calls = run_files._write_temp, []

    def full_disk(path, content):  # the second file of the checkpoint hits a full disk
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, content)

    monkeypatch.setattr(run_files, "_write_temp", full_disk)
    with pytest.raises(StoreWriteError, match=r"no space left on device.*\(epoch 1\) is intact"):
        run.save_checkpoint(model.state_dict(), optimizer.state_dict(), 2, metrics)
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before  # nothing changed
    assert not leftover_temporaries(run.path)
    assert store.info(run.id).status == "partial" and store.load(run.id).load_checkpoint().epoch == 1


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path):
    store = RunStore(tmp_path)
    run = store.create_or_open(CONFIG)
    other = store.load(run.id)  # another job's handle on the same run
    with run:
        holder = json.loads((run.path / "lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match=rf"run {run.id} is being written by pid "
                                                 rf"{os.getpid()}"):
            other.mark_complete()
        with pytest.raises(RunLockedError, match="stop that job first"):
            store.delete(run.id)
    assert not (run.path / "lock").exists()
    other.mark_complete()  # free again


def test_stale_and_foreign_locks(tmp_path):
    store = RunStore(tmp_path)
    run = store.create_or_open(CONFIG)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock = run.path / "lock"
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert store.info(run.id).status == "partial"  # a dead writer's lock is stale
    run.mark_complete()  # taken over
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": 1, "host": "another-machine"}))
    with pytest.raises(RunLockedError, match=f"host another-machine.*delete {lock}"):
        run.mark_complete()


def test_delete_and_unknown_ids(tmp_path):
    store = RunStore(tmp_path, shipped=False)
    run, _, _ = checkpointed_run(store)
    assert store.resolve(run.id[:9]) == run.id  # a unique prefix is enough
    store.delete(run.id)
    assert not run.path.exists() and store.list() == [] and not list(tmp_path.iterdir())
    for bad in (run.id, "../etc", "nothing"):
        with pytest.raises(RunNotFoundError):
            store.load(bad)
    fresh = store.create_or_open(CONFIG)
    with pytest.raises(RunNotFoundError, match="no weights yet"):
        fresh.load_weights()


def test_runs_cli_list_show_delete(tmp_path, capsys):
    from explorer.cli import main

    store = RunStore(tmp_path / "runs")
    run, _, _ = checkpointed_run(store)
    bad, _, _ = checkpointed_run(store, config={**CONFIG, "seed": 3})
    damage(bad, "truncated weights")
    assert main(["runs", "list", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{run.id}" in out and "partial" in out and "cnn13 K=4 relu" in out
    assert f"{bad.id}" in out and "corrupt" in out and "truncated" in out
    assert main(["runs", "show", run.id, "--store", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["seed"] == 0 and len(shown["metrics"]) == 1
    assert main(["runs", "delete", bad.id, "--store", str(tmp_path)]) == 0
    assert main(["runs", "show", bad.id, "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explorer: error: no run") and "Traceback" not in err
