"""Runs shipped with the package: listed, loaded and evaluated like the user's, never changed
(issue: shipped demo runs)."""
from __future__ import annotations

import json

import pytest
import torch

from explorer.cli import main
from explorer.runs import RunReadOnlyError, RunStore
from explorer.runs.store import SHIPPED_ROOT
from explorer.training import evaluate_run, make_config, train

SHIPPED = sorted(p.name for p in SHIPPED_ROOT.iterdir() if p.is_dir()) if SHIPPED_ROOT.is_dir() else []


def test_the_package_ships_the_demo_runs_small_and_complete(tmp_path):
    store = RunStore(tmp_path)  # an empty user store: only the shipped runs
    infos = store.list()
    assert [i.id for i in infos] == SHIPPED
    described = {(i.config["model"], i.config["model_config"].get("rho")) for i in infos}
    assert {("cnn13", "relu"), ("cnn13", "sign_sqrt"), ("sle", None)} <= described
    for info in infos:
        assert info.shipped and info.status == "complete", (info.id, info.status, info.error)
        assert info.accuracy is not None and info.provenance["shipped"]["note"].startswith("explorer train")
        assert not (info.path / "checkpoint.safetensors").exists()  # weights only
    total = sum(f.stat().st_size for f in SHIPPED_ROOT.rglob("*") if f.is_file())
    assert total < 8 * 2**20, f"shipped runs take {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("run_id", SHIPPED)
def test_a_shipped_run_loads_and_classifies(tmp_path, run_id):
    run = RunStore(tmp_path).load(run_id)
    model = run.build_model()
    on_features = run.config["model"] in ("sle", "sle_fourier")  # scattering features J = 2, L = 8
    shape = (2, 3, 81, 8, 8) if on_features else (2, 3, 32, 32)
    with torch.no_grad():
        logits = model(torch.rand(shape))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_shipped_runs_cannot_be_deleted_and_a_user_run_shadows_one(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(RunReadOnlyError, match="ships with the package"):
        store.delete(SHIPPED[0])
    assert main(["runs", "delete", SHIPPED[0], "--store", str(tmp_path)]) == 2
    assert "ships with the package" in capsys.readouterr().err
    assert (SHIPPED_ROOT / SHIPPED[0] / "weights.safetensors").exists()
    # Export a user run as if shipping it, then train the same configuration in the user's store.
    config = make_config("cnn13", width=2, epochs=1, dataset="synthetic", limit_train=64, limit_test=32)
    user = RunStore(tmp_path / "runs", shipped=False)
    run = train(config, store=user, progress=False)
    exported = user.export(run.id, tmp_path / "ship", note="explorer train cnn13 --width 2")
    both = RunStore(tmp_path / "runs", shipped_root=tmp_path / "ship")
    assert [(i.id, i.shipped) for i in both.list()] == [(run.id, False)]  # the user's copy wins
    trained = run.load_weights()["head.weight"]
    user.delete(run.id)
    (info,) = both.list()
    assert info.shipped and info.status == "complete" and info.path == exported
    assert sorted(p.name for p in exported.iterdir()) == ["config.json", "metrics.json",
                                                         "provenance.json", "weights.safetensors"]
    assert torch.equal(both.load(run.id).load_weights()["head.weight"], trained)


def test_runs_list_marks_shipped_runs(tmp_path, capsys):
    assert main(["runs", "list", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"{i}" in out for i in SHIPPED) and out.count("[shipped]") == len(SHIPPED)
    assert main(["runs", "list", "--json", "--store", str(tmp_path)]) == 0
    assert all(r["shipped"] for r in json.loads(capsys.readouterr().out))


@pytest.mark.dataset
@pytest.mark.parametrize("run_id", SHIPPED)
def test_a_shipped_runs_stored_accuracy_matches_a_fresh_evaluation(tmp_path, monkeypatch, cifar_dir,
                                                                     run_id):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))  # SLE features are recomputed here
    run = RunStore().load(run_id)
    _, accuracy = evaluate_run(run, device="cpu")
    stored = run.metrics[-1]["test_acc"]
    assert accuracy == pytest.approx(stored, abs=0.002), (run_id, accuracy, stored)
