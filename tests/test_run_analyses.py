"""Analyses stored beside their run: keyed by name and parameters, tied to the weights' checksum,
listed, exported, shipped and deleted with the run (issue 11: analyses stored beside their run)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.runs import AnalysisCorruptError, RunNotFoundError, RunStore
from explorer.runs.analyses import params_key

CONFIG = {"model": "tiny", "model_config": {}, "epochs": 1, "seed": 0, "dataset": "synthetic"}
METRICS = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5,
            "seconds": 0.1, "lr": 0.1}]


def complete_run(store, weight=1.0, config=CONFIG):
    run = store.create_or_open(config)
    state = {"w": torch.full((3, 4), weight)}
    run.save_checkpoint(state, {}, 1, METRICS)
    run.mark_complete()
    return run


class Counter:
    """A compute function that counts its calls and returns arrays and JSON values."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"spectrum": np.arange(5, dtype=np.float64) * self.calls, "rank": 3,
                "weights": torch.ones(2, 2), "label": "demo"}


def test_an_analysis_is_stored_listed_and_loaded(tmp_path, capsys):
    store = RunStore(tmp_path / "runs", shipped=False)
    run = complete_run(store)
    compute = Counter()
    first = store.analysis(run.id, "spectrum", {"layer": 3}, compute=compute)
    assert first.computed and compute.calls == 1
    again = store.analysis(run.id, "spectrum", {"layer": 3}, compute=compute)
    assert not again.computed and compute.calls == 1
    np.testing.assert_array_equal(again["spectrum"], np.arange(5.0))
    assert again["rank"] == 3 and again["label"] == "demo"
    np.testing.assert_array_equal(again["weights"], np.ones((2, 2), np.float32))
    assert again.params == {"layer": 3} and len(again.weights_sha256) == 64
    assert store.analysis(run.id, "spectrum", {"layer": 3})["rank"] == 3  # no compute needed
    (listed,) = store.analyses(run.id)
    assert (listed.name, listed.key, listed.params, listed.error, listed.current) == (
        "spectrum", params_key({"layer": 3}), {"layer": 3}, None, True)
    (info,) = store.list()
    assert [a.name for a in info.analyses] == ["spectrum"] and info.status == "complete"
    assert main(["runs", "show", run.id, "--store", str(tmp_path)]) == 0
    assert 'analysis spectrum' in capsys.readouterr().out
    assert main(["runs", "list", "--json", "--store", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["analyses"][0]["params"] == {"layer": 3}


def test_other_parameters_make_another_analysis(tmp_path):
    store = RunStore(tmp_path, shipped=False)
    run = complete_run(store)
    compute = Counter()
    store.analysis(run.id, "spectrum", {"layer": 3}, compute=compute)
    store.analysis(run.id, "spectrum", {"layer": 4}, compute=compute)
    store.analysis(run.id, "other", {"layer": 3}, compute=compute)
    assert compute.calls == 3
    assert sorted((a.name, a.params["layer"]) for a in store.analyses(run.id)) == [
        ("other", 3), ("spectrum", 3), ("spectrum", 4)]
    with pytest.raises(RunNotFoundError, match="no analysis 'spectrum'"):
        store.analysis(run.id, "spectrum", {"layer": 5})
    with pytest.raises(ValueError, match="analysis name"):
        store.analysis(run.id, "../escape", {}, compute=compute)


def test_new_weights_make_the_analysis_recomputed(tmp_path):
    store = RunStore(tmp_path, shipped=False)
    run = complete_run(store, weight=1.0)
    compute = Counter()
    old = store.analysis(run.id, "spectrum", {}, compute=compute)
    complete_run(store, weight=2.0)  # the same run, other weights (e.g. trained again)
    assert [a.current for a in store.analyses(run.id)] == [False]
    with pytest.raises(RunNotFoundError):
        store.analysis(run.id, "spectrum", {})  # the stored one is stale: not trusted
    new = store.analysis(run.id, "spectrum", {}, compute=compute)
    assert new.computed and compute.calls == 2 and new.weights_sha256 != old.weights_sha256
    np.testing.assert_array_equal(new["spectrum"], 2 * np.arange(5.0))
    assert len(store.analyses(run.id)) == 1  # replaced, not added


def test_a_damaged_analysis_is_listed_as_damaged_and_recomputed(tmp_path, capsys):
    """Choice: a damaged file is recomputed (and replaced) when a compute function is given, and
    raises AnalysisCorruptError when it is not; the listing shows it with its error."""
    store = RunStore(tmp_path / "runs", shipped=False)
    run = complete_run(store)
    compute = Counter()
    stored = store.analysis(run.id, "spectrum", {"layer": 1}, compute=compute)
    stored.path.write_bytes(stored.path.read_bytes()[:40])  # truncated
    info = store.info(run.id)
    assert info.status == "complete"  # the run itself is fine
    (listed,) = info.analyses
    assert listed.error and "damaged" in listed.error
    assert main(["runs", "list", "--store", str(tmp_path)]) == 0
    assert main(["runs", "show", run.id, "--store", str(tmp_path)]) == 0
    assert "damaged" in capsys.readouterr().out
    with pytest.raises(AnalysisCorruptError, match="damaged"):
        store.analysis(run.id, "spectrum", {"layer": 1})
    again = store.analysis(run.id, "spectrum", {"layer": 1}, compute=compute)
    assert again.computed and compute.calls == 2
    assert store.analyses(run.id)[0].error is None


def test_deleting_a_run_deletes_its_analyses_and_export_takes_the_current_ones(tmp_path):
    store = RunStore(tmp_path / "runs", shipped=False)
    run = complete_run(store)
    store.analysis(run.id, "stale", {}, compute=Counter())
    complete_run(store, weight=5.0)  # "stale" now names older weights
    current = store.analysis(run.id, "spectrum", {"layer": 2}, compute=Counter())
    assert {a.name: a.current for a in store.analyses(run.id)} == {"stale": False, "spectrum": True}
    exported = store.export(run.id, tmp_path / "ship", note="test")
    names = sorted(p.name for p in exported.iterdir())
    assert current.path.name in names and not any(".stale." in n for n in names)
    store.delete(run.id)
    assert not run.path.exists() and not list((tmp_path / "runs").iterdir())


def test_a_shipped_runs_analyses_are_found_read_only(tmp_path):
    maker = RunStore(tmp_path / "maker", shipped=False)
    run = complete_run(maker)
    maker.analysis(run.id, "spectrum", {"layer": 1}, compute=Counter())
    shipped_root = tmp_path / "ship"
    maker.export(run.id, shipped_root, note="test")
    before = sorted(p.name for p in (shipped_root / run.id).iterdir())
    user = RunStore(tmp_path / "user", shipped_root=shipped_root)
    compute = Counter()
    found = user.analysis(run.id, "spectrum", {"layer": 1}, compute=compute)
    assert not found.computed and compute.calls == 0 and found.path.parent == shipped_root / run.id
    assert [a.name for a in user.info(run.id).analyses] == ["spectrum"]
    # A new analysis of a shipped run goes to the user's store; the package folder is not written.
    added = user.analysis(run.id, "spectrum", {"layer": 2}, compute=compute)
    assert added.computed and shipped_root not in added.path.parents
    assert sorted(p.name for p in (shipped_root / run.id).iterdir()) == before
    assert user.analysis(run.id, "spectrum", {"layer": 2}, compute=compute).computed is False
    (info,) = user.list()
    assert info.shipped and sorted(a.params["layer"] for a in info.analyses) == [1, 2]
