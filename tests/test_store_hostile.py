"""Hostile content in the run store (issue 15, "Hostile input", store side): a crafted config.json (wrong
types, huge numbers, an unknown model, a newer format), run ids that are paths, and weights whose tensors
do not match the architecture. Each gets a clear message naming the run, the problem and the fix; the
listing survives all of them; nothing outside the store is read or written; nothing is unpickled."""
from __future__ import annotations

import json
import pickle
import re
import resource
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file

from explorer import jobs
from explorer.cli import main
from explorer.nets import CNN13, registry
from explorer.runs import RunCorruptError, RunNotFoundError, RunStore, run_id
from explorer.training import make_config

ROOT = Path(__file__).resolve().parents[1]
BASE = make_config("cnn13", width=4, dataset="synthetic", epochs=1, limit_train=8, limit_test=8)
METRICS = [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "test_loss": 0.7, "test_acc": 0.5,
            "seconds": 0.1, "lr": 0.1}]


def cnn13_state(width=4, classes=2):
    torch.manual_seed(0)
    return CNN13(width=width, num_classes=classes).state_dict()


def plant(root: Path, config, weights=None, *, metrics=METRICS, provenance=True, checkpoint=True,
          name=None) -> Path:
    """A run folder written by hand, as a hostile or older copy could hold it: ``config`` (any JSON),
    ``weights`` a state dict or raw bytes, named by the hash of the config unless ``name`` is given."""
    folder = root / (name or run_id(config))
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if provenance:
        (folder / "provenance.json").write_text(json.dumps({"complete": True}))
    weights = cnn13_state() if weights is None else weights
    if isinstance(weights, dict):
        save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "weights.safetensors"),
                  metadata={"format": "1"})
    else:
        (folder / "weights.safetensors").write_bytes(weights)
    if checkpoint:
        (folder / "checkpoint.safetensors").write_bytes(save({}, metadata={"epoch": "1"}))
    return folder


def with_model_config(**changes) -> dict:
    return {**BASE, "model_config": {**BASE["model_config"], **changes}}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    return RunStore()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- crafted config.json ----------------------------------------------------------------------------
CRAFTED = {
    "width as a string": (with_model_config(width="32"), r"width K must be an integer ≥ 1, got '32'"),
    "width of 10**9": (with_model_config(width=10**9), (r"its configuration asks for a size of 1000000000, "
                                                         r"more than the 1969 values the weights file holds")),
    "width of 10**5": (with_model_config(width=10**5), (r"tensor 'stem.0.weight' of weights.safetensors has "
                                                         r"shape \[4, 3, 3, 3\], the configuration needs "
                                                         r"\[100000, 3, 3, 3\]")),
    "nested junk as model_config": ({**BASE, "model_config": [{"width": {"a": [1, 2]}}]},
                                    "model_config must be a JSON object"),
    "nested junk as an option": (with_model_config(rho={"$ne": [None, 1e308]}), "rho"),
    "an unknown option": (with_model_config(depth=99), r"unknown option\(s\) \['depth'\] for model cnn13"),
    "an unknown model": ({**BASE, "model": "resnet"}, r"unknown model 'resnet'; choose one of cnn13"),
    "a model that is not a string": ({**BASE, "model": ["cnn13"]}, r"unknown model \['cnn13'\]"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_config_is_listed_and_refused_with_a_clear_message(store, case, capsys):
    config, message = CRAFTED[case]
    healthy = plant(store.root, BASE)
    folder = plant(store.root, config)
    before = peak_rss_mb()
    started = time.perf_counter()
    infos = {i.id: i for i in store.list()}  # never raises
    assert infos[healthy.name].status == "complete" and infos[healthy.name].error is None
    info = infos[folder.name]
    if "unknown model" in message:  # a model registered elsewhere (a plugin): listed, with a note
        assert info.status == "complete" and "is not registered in this version" in info.error
    else:
        assert info.status == "corrupt" and info.error, (case, info)
    with pytest.raises(RunCorruptError, match=rf"run {folder.name} is damaged: .*{message}.*"
                                              rf"explorer runs delete {folder.name}"):
        store.load(folder.name).build_model()
    assert time.perf_counter() - started < 5 and peak_rss_mb() - before < 200  # nothing huge was allocated
    assert store.load(healthy.name).build_model() is not None
    # The CLI: the listing shows it with its reason; show says the problem; exit code 0 for both.
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(folder.name))
    assert info.status in line and f"({info.error})" in line
    assert main(["runs", "show", folder.name]) == 0
    assert ("note:" if info.status == "complete" else "problem:") in capsys.readouterr().out


def test_huge_numbers_are_refused_before_anything_is_allocated(store):
    """A width of 10⁹ (CNN13: checked on the meta device), SLE widths of 10⁹ (its constructor computes
    filters on the CPU, so it cannot be built on the meta device: the sizes are checked against the
    weights file first), epochs of 10¹²: no network is built for real, the listing stays quick."""
    sle_config = make_config("sle", widths=[8], L=4, dataset="synthetic", epochs=1)
    sle_state = registry.get("sle").build(**sle_config["model_config"]).state_dict()
    sle_huge = {**sle_config, "model_config": {**sle_config["model_config"], "widths": [10**9]}}
    cnn_huge = with_model_config(width=10**5)  # 10¹² parameters: its shapes are read on the meta device
    many_epochs = {**BASE, "epochs": 10**12}
    folders = [plant(store.root, sle_huge, sle_state), plant(store.root, cnn_huge),
               plant(store.root, many_epochs)]
    before = peak_rss_mb()
    started = time.perf_counter()
    infos = {i.id: i for i in store.list()}
    assert infos[folders[0].name].status == "corrupt"
    # Either refused by size (the SLE's filters cannot be computed on the meta device) or, when its
    # filter bank is cached already, read on the meta device: never allocated.
    sle_refusal = r"asks for a size of 1000000000, more than the|needs \[1000000000, 75, 1, 1\]"
    assert re.search(sle_refusal, infos[folders[0].name].error)
    assert infos[folders[1].name].status == "corrupt"
    assert (infos[folders[2].name].status, infos[folders[2].name].epochs) == ("partial", 10**12)
    with pytest.raises(RunCorruptError, match=rf"({sle_refusal}).*explorer runs delete"):
        store.load(folders[0].name).build_model()
    with pytest.raises(RunCorruptError, match=r"shape \[4, 3, 3, 3\].*needs \[100000, 3, 3, 3\]"):
        store.load(folders[1].name).build_model()
    store.load(folders[2].name).build_model()  # its weights fit: only the epoch count is odd
    assert time.perf_counter() - started < 5 and peak_rss_mb() - before < 200


@pytest.mark.parametrize("epochs", [-1, 0, "3", None, {"n": 3}, True])
def test_a_config_whose_epochs_are_not_a_count_is_corrupt(store, epochs):
    folder = plant(store.root, {**BASE, "epochs": epochs})
    info = store.info(folder.name)
    assert info.status == "corrupt" and f"epochs={epochs!r}" in info.error


def test_a_run_of_a_newer_format_says_to_upgrade(store):
    folder = plant(store.root, {**BASE, "format": 2})
    info = store.info(folder.name)
    assert info.status == "corrupt" and "format 2, newer than" in info.error and "upgrade" in info.error


def test_other_crafted_files_of_a_run(store):
    """metrics.json with junk records or a non-numeric accuracy, an empty folder: listed, not raised."""
    junk = plant(store.root, {**BASE, "seed": 1}, metrics=["epoch 1"])
    text_accuracy = plant(store.root, {**BASE, "seed": 2}, metrics=[{**METRICS[0], "test_acc": "99%"}])
    (store.root / "cnn13-0123456789ab").mkdir()
    infos = {i.id: i for i in store.list()}
    assert infos[junk.name].status == "corrupt" and "epoch 1 is not a JSON object" in infos[junk.name].error
    assert "test accuracy of epoch 1 is '99%'" in infos[text_accuracy.name].error
    assert infos["cnn13-0123456789ab"].status == "corrupt"
    assert "empty folder" in infos["cnn13-0123456789ab"].error


# -- run ids that are paths ---------------------------------------------------------------------------
def bad_ids(outside: Path) -> list:
    return ["../x", "..", ".", "a/b", "/etc/passwd", str(outside), "", " ", "cnn13-0123456789ab/../../x",
            f"{BASE['model']}-{'0' * 12}\n", "~", "..\\x", "\0", None, 42, ["cnn13"]]


def test_path_like_run_ids_never_reach_outside_the_store(store, tmp_path):
    # Outside the store: a complete, valid run folder an attacker hopes the store will read or delete.
    outside_root = tmp_path / "outside"
    outside = plant(outside_root, BASE)
    plant(store.root, BASE)  # one run in the store: an empty prefix would match it
    export_to = tmp_path / "exported"
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in outside_root.rglob("*"))
    for bad in bad_ids(outside) + [f"../outside/{outside.name}", f"../../{tmp_path.name}/outside/{outside.name}"]:
        for call, extra in ((store.load, ()), (store.resolve, ()), (store.info, ()), (store.delete, ()),
                            (store.export, (export_to,)), (store.path, ()), (store.analysis, ("x", {}, dict))):
            with pytest.raises(RunNotFoundError, match="is not a run id|no run"):
                call(bad, *extra)
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in outside_root.rglob("*")) == before
    assert not export_to.exists()
    assert [i.id for i in store.list() if not i.shipped] == [run_id(BASE)]  # the store's run is still there


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc/passwd", ""])
@pytest.mark.parametrize("action", [["show"], ["delete"], ["export", "--to", "EXPORT"]])
def test_the_cli_refuses_path_like_ids_in_one_line(store, tmp_path, capsys, bad, action):
    plant(store.root, BASE)
    argv = ["runs", action[0], bad, *[str(tmp_path / "export") if a == "EXPORT" else a for a in action[1:]]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("explorer: error: ") and "not a run id" in err and "\n" not in err
    assert "Traceback" not in err and not (tmp_path / "export").exists()
    assert store.info(run_id(BASE)).status == "complete"


def test_path_like_job_ids_are_refused(store, tmp_path):
    # A job.json planted outside the jobs folder, naming a process to kill: never read, never signalled.
    decoy = tmp_path / "store" / "decoy"
    decoy.mkdir(parents=True)
    (decoy / "job.json").write_text(json.dumps({"id": "x", "argv": [], "pid": 1, "run_id": "x",
                                                "started_at": 0, "state": "running"}))
    for bad in ["../decoy", "..", "/etc", "", "20250101-120000-0a1b2c/../../decoy"]:
        for call in (jobs.get_job, jobs.cancel_job):
            with pytest.raises(jobs.JobError, match="is not a job id"):
                call(bad)


# -- nothing is unpickled -----------------------------------------------------------------------------
def test_the_store_and_the_trainer_never_unpickle(store, monkeypatch):
    """By reading the code (no torch.load, pickle or numpy's allow_pickle in the store, the trainer, the
    jobs, the nets) and by running it: listing, loading, building, resuming and analysing a run with
    pickle and torch.load made to fail."""
    sources = [*ROOT.joinpath("explorer", "runs").glob("*.py"), *ROOT.joinpath("explorer", "training").glob("*.py"),
               *ROOT.joinpath("explorer", "nets").glob("*.py"), ROOT / "explorer" / "jobs.py",
               ROOT / "explorer" / "runs_cli.py", ROOT / "explorer" / "train_cli.py"]
    for source in sources:
        code = "\n".join(line.split("#")[0] for line in source.read_text().splitlines())
        if source.name == "distributed.py":
            # The ranks of one job check that an error can travel to the others (pickled in memory by
            # torch.distributed's object collectives, as the check does); nothing read from the store.
            code = code.replace("import pickle", "").replace("pickle.loads(pickle.dumps(", "")
        for forbidden in ("torch.load(", "import pickle", "pickle.load", "allow_pickle=True", "weights_only=False"):
            assert forbidden not in code, (source, forbidden)

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    from explorer.training import train

    config = make_config("cnn13", width=2, dataset="synthetic", epochs=2, limit_train=16, limit_test=16,
                         batch_size=8)

    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    with pytest.raises(Stop):  # before the patches: every lazy import of training is done by then
        train(config, progress=False, on_epoch=stop, device="cpu")
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    run = train(config, resume=True, progress=False, device="cpu")  # reads the checkpoint
    assert run.status == "complete"
    store.list()
    store.load(run.id).build_model()
    store.analysis(run.id, "probe", {"a": 1}, compute=lambda: {"x": torch.ones(3)})
    assert store.analysis(run.id, "probe", {"a": 1})["x"].tolist() == [1, 1, 1]
    # A pickle named weights.safetensors (what torch.save writes) is refused as damaged, not loaded.
    planted = plant(store.root, {**BASE, "seed": 9}, weights=b"")
    torch.save(cnn13_state(), planted / "weights.safetensors")  # pickles (dump, not load)
    assert store.info(planted.name).status == "corrupt"
    with pytest.raises(RunCorruptError, match="weights.safetensors is unreadable"):
        store.load(planted.name).build_model()


# -- weights that do not match the architecture --------------------------------------------------------
def _weights(how: str):
    state = cnn13_state()
    if how == "wrong shape":
        return cnn13_state(width=8)
    if how == "missing key":
        return {k: v for k, v in state.items() if k != "head.bias"}
    if how == "extra key":
        return {**state, "head.extra": torch.zeros(3)}
    if how == "wrong dtype":
        return {k: v.double() if k == "head.weight" else v for k, v in state.items()}
    if how == "not safetensors":
        return b"PK\x03\x04 this is a zip archive, not a safetensors file" * 10
    if how == "empty file":
        return b""
    if how == "the other model's":
        return registry.get("sle").build(**make_config("sle", widths=[8], L=4, dataset="synthetic")
                                         ["model_config"]).state_dict()
    raise AssertionError(how)


WEIGHT_PROBLEMS = {
    "wrong shape": r"tensor 'stem.0.weight' of weights.safetensors has shape \[8, 3, 3, 3\], the "
                   r"configuration needs \[4, 3, 3, 3\]",
    "missing key": r"weights.safetensors lacks tensor 'head.bias' that the configuration needs",
    "extra key": r"weights.safetensors holds tensor 'head.extra' that the configuration has no place for",
    "wrong dtype": r"tensor 'head.weight' of weights.safetensors is F64, the configuration needs F32",
    "not safetensors": r"weights.safetensors is unreadable \(weights.safetensors is truncated or not a "
                       r"safetensors file",
    "empty file": r"weights.safetensors is unreadable \(weights.safetensors is truncated \(0 bytes\)",
    "the other model's": r"weights.safetensors lacks tensor 'mean' \(and \d+ more\)",
}


@pytest.mark.parametrize("how", list(WEIGHT_PROBLEMS))
def test_weights_that_do_not_fit_the_architecture_name_the_tensor_and_the_fix(store, how):
    healthy = plant(store.root, BASE)
    folder = plant(store.root, {**BASE, "seed": 3}, weights=_weights(how))
    with pytest.raises(RunCorruptError) as caught:
        store.load(folder.name).build_model()
    message = str(caught.value)
    assert message.startswith(f"run {folder.name} is damaged: ")
    assert re.search(WEIGHT_PROBLEMS[how], message), message
    assert f"explorer runs delete {folder.name}` and train it again" in message
    assert "Error(s) in loading state_dict" not in message and "Traceback" not in message
    infos = {i.id: i for i in store.list()}  # the listing still works and says why
    assert infos[folder.name].status == "corrupt" and infos[healthy.name].status == "complete"
    listed = WEIGHT_PROBLEMS[how].replace(r"weights.safetensors is unreadable \(", "")
    assert re.search(listed, infos[folder.name].error), infos[folder.name].error


# -- an older format ----------------------------------------------------------------------------------
def test_a_run_of_an_older_format_is_listed_loaded_and_said_to_be_older(store, capsys):
    """Format 0, as an earlier version wrote it: config.json without the "format" field and without the
    keys added later (limit_train, limit_test), no provenance.json, no checkpoint, weights without
    metadata. Listed complete (all its epochs are there) with a note, and loadable."""
    old = {k: v for k, v in BASE.items() if k not in ("format", "limit_train", "limit_test")}
    folder = plant(store.root, old, provenance=False, checkpoint=False)
    save_file(cnn13_state(), str(folder / "weights.safetensors"))  # no metadata at all
    info = store.info(folder.name)
    assert info.status == "complete" and info.legacy
    assert "an older run format (no provenance.json, no format field" in info.error
    assert "no checkpoint: it cannot be resumed" in info.error
    model = store.load(folder.name).build_model()
    assert model.width == 4 and not model.training
    assert main(["runs", "show", folder.name]) == 0
    assert "note: an older run format" in capsys.readouterr().out
    # Partial and without a checkpoint it cannot continue: that is damage, said as such.
    partial = plant(store.root, {**old, "epochs": 5}, provenance=False, checkpoint=False)
    assert store.info(partial.name).status == "corrupt"
    assert "checkpoint.safetensors is missing" in store.info(partial.name).error
