"""The scoreboard (science.md §6 beside the project's measurements): which run, result, grid or sweep stands
beside each figure, the commands that rebuild exactly that measurement (parsed back by the real CLI), the
CIFAR-10 copy flag (recorded by newly trained runs, presumed for older ones), damaged inputs left out, and
the page built without a browser. One real tiny run is trained on a fake CIFAR-10 in a temporary store."""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import panel as pn
import pytest

from explorer.analysis import scoreboard as sa
from explorer.analysis.threshold import DEFAULT_FRACTIONS, sweep_params
from explorer.cli import build_parser
from explorer.data import cifar10
from explorer.runs import RunInfo, RunStore, run_id
from explorer.runs.analyses import params_key
from explorer.training import make_config

from bokeh_root import render

JPEG = {"dataset": "cifar10", "source": "/data/cifar-10-python.tar.gz", "md5": cifar10.KNOWN_COPIES[
    "jpeg-derived"]["archive"], "batches_md5": {}, "copy": "jpeg-derived"}
OFFICIAL = {**JPEG, "md5": cifar10.MD5, "copy": "official"}


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def session(device="cuda:0 (NVIDIA H100 80GB HBM3)", host="vm", copies=None) -> dict:
    record = {"device": device, "host": host, "started_at": "2026-01-01T00:00:00+0000"}
    if copies is not None:
        record["datasets"] = copies
    return record


def run_info(config: dict, accuracy: float | None = 0.8, status="complete", sessions=None, shipped=False,
             **changes) -> RunInfo:
    return RunInfo(id=run_id(config), path=Path("/nowhere") / run_id(config), status=status, config=config,
                   accuracy=accuracy, provenance={"sessions": sessions if sessions is not None else [session()]},
                   shipped=shipped, epochs_done=config["epochs"], epochs=config["epochs"], **changes)


def board(*runs, **inputs) -> sa.Scoreboard:
    return sa.scoreboard(runs, **inputs)


def parse(command: str):
    words = shlex.split(command)
    assert words[0] == "explorer", command
    return build_parser().parse_args(words[1:])


def rebuilt_run_id(command: str) -> str:
    """The run id `explorer train …` would write, from the command's words (the CLI's own parser)."""
    from explorer.train_cli import config_from_args

    return run_id(config_from_args(parse(command)))


# -- the reference figures ----------------------------------------------------------------------------------

def test_every_row_of_section_6_is_there_with_its_figures():
    table = {(r.result, r.measure): r.figure for r in sa.REFERENCES if r.in_table}
    assert table[("P2 CNN, K=512", "CIFAR-10 test accuracy")] == 95.4
    assert table[("P2 CNN, K=512", "CIFAR-100 test accuracy")] == 79.6
    assert table[("P2 CNN, K=32", "CIFAR-10 test accuracy")] == 88.0
    small = [r.figure for r in sa.REFERENCES if r.result == "Small-sample Scat+ResNet"]
    assert small == [38.0, 55.0, 62.0]
    imagenet = sorted(r.figure for r in sa.REFERENCES if "ImageNet" in r.result)
    assert imagenet == [57.0, 69.0, 80.0, 90.0]
    assert {r.result for r in sa.REFERENCES if r.in_table} >= {
        "Roto-translation scattering + SVM", "P2 CNN with ρ = sign(x)(√|x|+0.1)", "Scat + MLP", "Scat + linear",
        "SLE W₁ thresholded at 80 % in angular Fourier", "Hierarchical CNN"}
    assert len({r.key for r in sa.REFERENCES}) == len(sa.REFERENCES)


def test_recalled_figures_say_unverified_and_the_others_their_source():
    rows = {r.key: r for r in sa.REFERENCES}
    assert rows["roto_svm_cifar10"].reported.startswith("reported (unverified)")
    assert rows["scat_wrn"].reported.startswith("reported (unverified)")
    assert rows["cnn13_k32"].reported == "authors' code [code]"
    assert rows["cnn13_k512"].reported == "talk, abstract [abs]"
    assert "no confidence tag" in rows["scat_linear"].reported
    assert not any(r.reported.startswith("reported (unverified)") for r in sa.REFERENCES if r.confidence != "mem")


# -- runs ---------------------------------------------------------------------------------------------------

def test_the_most_faithful_then_most_accurate_run_is_chosen():
    quick = make_config("cnn13", width=32, rho="relu")  # 30 epochs of the quick schedule
    quick_seed1 = make_config("cnn13", width=32, rho="relu", seed=1)
    paper = make_config("cnn13", width=32, rho="relu", schedule="paper")
    short_paper = make_config("cnn13", width=32, rho="relu", schedule="paper", epochs=2)
    result = board(run_info(quick, 0.80), run_info(quick_seed1, 0.82), run_info(short_paper, 0.9)).row("cnn13_k32")
    assert result.status == "measured" and result.run_id == run_id(short_paper) and result.others == 2
    assert result.measured == pytest.approx(90.0) and result.difference == pytest.approx(2.0)
    assert "not the paper's schedule" in result.note
    # The paper's schedule for its full length wins over any accuracy.
    result = board(run_info(quick, 0.80), run_info(short_paper, 0.9), run_info(paper, 0.7)).row("cnn13_k32")
    assert result.run_id == run_id(paper) and result.measured == pytest.approx(70.0)
    assert "not the paper's schedule" not in result.note


@pytest.mark.parametrize("changes", [
    {"subset": {"n": 100, "seed": 1}}, {"limit_train": 1000}, {"limit_test": 500}, {"dataset": "synthetic"},
    {"width": 16}, {"rho": "sign_sqrt"}, {"model": "wrn"}])
def test_runs_that_do_not_measure_the_figure_are_not_matched(changes):
    options = {"model": "cnn13", "width": 32, "rho": "relu", **changes}
    model = options.pop("model")
    if model == "wrn":
        options.pop("width"), options.pop("rho")
    config = make_config(model, **options)
    assert board(run_info(config, 0.99)).row("cnn13_k32").status == "not yet run"


def test_unfinished_and_damaged_runs_are_not_measurements():
    config = make_config("cnn13", width=32, rho="relu")
    partial = run_info(config, 0.5, status="partial")
    damaged = RunInfo(id="cnn13-0123456789ab", path=Path("/x"), status="corrupt", error="config.json is damaged")
    no_accuracy = run_info(make_config("cnn13", width=32, rho="relu", seed=3), None)
    result = board(partial, damaged, no_accuracy)
    row = result.row("cnn13_k32")
    assert row.status == "not yet run" and run_id(config) in row.note and "--resume" in row.note
    assert any("cnn13-0123456789ab" in s and "damaged" in s for s in result.skipped)


def test_a_run_whose_configuration_is_garbage_is_left_out_and_the_rest_shown():
    good = run_info(make_config("cnn13", width=32, rho="relu"), 0.8)
    garbage = RunInfo(id="cnn13-ffffffffffff", path=Path("/x"), status="complete", accuracy=0.9,
                      config={"model": "cnn13", "model_config": "not a dict", "dataset": "cifar10"})
    weird = RunInfo(id="cnn13-eeeeeeeeeeee", path=Path("/x"), status="complete", accuracy=float("nan"),
                    config=make_config("cnn13", width=32, rho="relu", seed=9))
    row = board(garbage, weird, good).row("cnn13_k32")
    assert row.status == "measured" and row.run_id == good.id and row.others == 0


def test_the_command_rebuilds_the_same_run_and_says_the_machine():
    config = make_config("cnn13", width=32, rho="sign_sqrt", seed=4, batch_size=64, lr=0.05,
                         augment={"flip": False, "crop_padding": 3})
    sessions = [session(), session("cpu (x86_64)", "laptop"), session()]
    row = board(run_info(config, 0.61, sessions=sessions)).row("cnn13_sign_sqrt")
    assert row.status == "measured" and row.measured_text == "61.00 %"
    assert row.command.startswith("explorer train cnn13 ")
    assert rebuilt_run_id(row.command) == row.run_id == run_id(config)
    assert row.machine == "cuda:0 (NVIDIA H100 80GB HBM3) on vm; cpu (x86_64) on laptop"
    assert "cnn13 K=32 sign_sqrt" in row.configuration and "seed 4" in row.configuration


def test_a_configuration_the_cli_cannot_express_gets_the_python_call(monkeypatch):
    config = make_config("cnn13", width=32, rho="relu", schedule={"name": "mine", "lr": 0.1, "batch_size": 128,
                                                                  "momentum": 0.9, "nesterov": False,
                                                                  "weight_decay": 1e-4, "epochs": 3,
                                                                  "decay": {"kind": "constant"}})
    row = board(run_info(config, 0.5)).row("cnn13_k32")
    words = shlex.split(row.command)
    assert words[:2] == ["python", "-c"]
    import explorer.training

    called = []
    monkeypatch.setattr(explorer.training, "train", lambda c, **kw: called.append((c, kw)))
    exec(words[2], {})  # noqa: S102  (the command's own code, with train replaced)
    assert run_id(called[0][0]) == run_id(config) and called[0][1] == {"resume": True}


def test_figures_never_measured_give_the_command_that_measures_them():
    result = board()
    row = result.row("cnn13_k512")
    assert row.status == "not yet run" and row.measured is None and row.dataset == ""
    assert rebuilt_run_id(row.command) == run_id(make_config("cnn13", width=512, rho="relu", schedule="paper"))
    assert parse(row.command).epochs == 310
    linear = result.row("scat_linear")
    assert rebuilt_run_id(linear.command) == run_id(make_config("scat_linear", epochs=90))
    for key in ("scat_mlp", "scat_wrn", "cnn13_k32", "cnn13_sign_sqrt"):
        assert result.row(key).status == "not yet run" and parse(result.row(key).command).command == "train"


def test_what_cannot_be_reproduced_says_why():
    result = board()
    for key in ("roto_svm_caltech", "roto_svm_cifar100", "cnn13_k512_cifar100", "imagenet_resnet_top1",
                "imagenet_resnet_top5", "imagenet_sle_top1", "imagenet_sle_top5"):
        row = result.row(key)
        assert row.status == "not reproducible here" and row.command == "" and "not at hand" in row.note
    assert "Roto-translation scattering + SVM, CIFAR-10" in result.row("roto_svm_caltech").note
    unknown = board(models=["cnn13"]).row("hierarchical")  # a row whose model is not registered
    assert unknown.status == "not reproducible here" and "no such model" in unknown.note


def test_the_hierarchical_cnn_row_takes_a_released_configuration_run_on_all_of_cifar10():
    row = board().row("hierarchical")
    assert row.status == "not yet run" and parse(row.command).command == "train"
    assert row.command.split()[:3] == ["explorer", "train", "hcnn"] and "hcnn-paper" in row.command
    measured = board(run_info(make_config("hcnn", schedule="hcnn-paper"), 0.9)).row("hierarchical")
    assert measured.status == "measured" and measured.measured == pytest.approx(90.0)
    small = make_config("hcnn", filters=8, limit_train=10_000, epochs=3)  # the CPU run: neither its size nor data
    assert board(run_info(small, 0.5)).row("hierarchical").status == "not yet run"


# -- the CIFAR-10 copy ---------------------------------------------------------------------------------------

def test_the_copy_recorded_by_a_run_and_the_presumed_one():
    config = make_config("cnn13", width=32, rho="relu")
    recorded = [session(copies=[JPEG])]
    assert board(run_info(config, sessions=recorded)).row("cnn13_k32").dataset == "JPEG-derived copy"
    assert board(run_info(config, sessions=recorded), current_copy=OFFICIAL).row("cnn13_k32").dataset \
        == "JPEG-derived copy"  # what was recorded wins over what is configured now
    assert board(run_info(config, sessions=[session(copies=[OFFICIAL])])).row("cnn13_k32").dataset \
        == "official release"
    unknown = {**JPEG, "md5": "0" * 32, "copy": "unknown"}
    assert board(run_info(config, sessions=[session(copies=[unknown])])).row("cnn13_k32").dataset \
        == "unrecognised copy (not the official release)"
    mixed = [session(copies=[OFFICIAL]), session(copies=[JPEG])]
    assert board(run_info(config, sessions=mixed)).row("cnn13_k32").dataset.startswith("mixed copies")
    older = run_info(config, sessions=[session()])
    assert board(older, current_copy=JPEG).row("cnn13_k32").dataset == "presumably JPEG-derived copy"
    assert board(older, current_copy=OFFICIAL).row("cnn13_k32").dataset == "presumably official release"
    assert board(older).row("cnn13_k32").dataset == sa.NOT_RECORDED


def fake_archive(folder: Path, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in the official layout: 20 images per batch, every class in each."""
    rng = np.random.default_rng(seed)
    members = {name: pickle.dumps({"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                                   "labels": [i % 10 for i in range(20)]}, protocol=2)
               for name in cifar10.BATCH_FILES}
    members["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / cifar10.ARCHIVE_NAME, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER_NAME}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return folder / cifar10.ARCHIVE_NAME


def test_the_fingerprint_of_a_copy_is_read_once_and_recognises_known_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    archive = fake_archive(tmp_path / "data")
    found = cifar10.copy_fingerprint(tmp_path / "data")
    assert found["copy"] == "unknown" and found["md5"] == hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10, "_md5", lambda *a: pytest.fail("read again"))
    cifar10._FINGERPRINTS.clear()  # a new process: the store's copy is read, not the archive
    assert cifar10.copy_fingerprint(archive) == found
    # An extracted folder is known by its batch files; here the fake one stands for a known copy.
    monkeypatch.undo()
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    folder = tmp_path / "folder"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    batches = folder / cifar10.FOLDER_NAME
    md5s = {name: hashlib.md5((batches / name).read_bytes()).hexdigest() for name in cifar10.BATCH_FILES}
    monkeypatch.setitem(cifar10.KNOWN_COPIES, "jpeg-derived", {"archive": "-", "batches": md5s})
    extracted = cifar10.copy_fingerprint(batches)
    assert extracted["copy"] == "jpeg-derived" and extracted["md5"] is None and extracted["batches_md5"] == md5s
    # A changed file is another copy: read again.
    (batches / "test_batch").write_bytes((batches / "test_batch").read_bytes() + b"\0")
    assert cifar10.copy_fingerprint(batches)["copy"] == "unknown"


def test_the_configured_copy_here_is_recognised(cifar_dir):
    found = cifar10.copy_fingerprint(cifar_dir)
    assert found["copy"] in ("official", "jpeg-derived"), found
    if found["md5"] == "9723ecdb668c9de9d8e24c5caa87e53a":  # the copy of shared/datasets (its README)
        assert found["copy"] == "jpeg-derived"


def test_a_real_tiny_run_records_its_copy_and_stands_on_the_board(tmp_path, monkeypatch):
    """Trained for real (one step) on a fake CIFAR-10 in a temporary store: the run records which copy it
    loaded, the board shows it with that flag, this machine, and a command that rebuilds its id."""
    from explorer.data import cifar10 as cifar10_module
    from explorer.training import train

    # The process's record of the copies it loaded: a copy this test worker loaded before (the real CIFAR-10,
    # on CI) is not this run's, and would make it "mixed copies".
    monkeypatch.setattr(cifar10_module, "_LOADED", {})
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "data"))
    fake_archive(tmp_path / "data")
    store = RunStore(tmp_path / "store" / "runs", shipped=False)
    config = make_config("cnn13", width=32, rho="relu", epochs=1)
    run = train(config, store=store, progress=False, device="cpu")
    sessions = run.provenance["sessions"]
    assert sessions[-1]["datasets"][-1]["copy"] == "unknown"  # the fake archive is no known copy
    result = sa.read_scoreboard(store)
    row = result.row("cnn13_k32")
    assert row.status == "measured" and row.run_id == run.id and row.others == 0
    assert row.dataset == "unrecognised copy (not the official release)"
    assert row.machine == f"{sessions[-1]['device']} on {sessions[-1]['host']}"
    assert rebuilt_run_id(row.command) == run.id
    assert row.measured == pytest.approx(100 * store.info(run.id).accuracy)


# -- classification results ----------------------------------------------------------------------------------

def classify_result(accuracy, shipped=False, **settings):
    from explorer.classify.results import ClassifyResult, result_id
    from explorer.classify.settings import ClassifySettings, result_config

    s = ClassifySettings(**settings)
    train_size = 50_000 if s.method == "nystroem" else 10 * s.subset_per_class
    config = result_config(s, train_key=s.feature_config("train").key, test_key=s.feature_config("test").key,
                           train_split_size=50_000, train_size=train_size,
                           test_size=s.test_limit or 10_000, classes=10)
    provenance = {"device": "cpu (x86_64)", "host": "vm", "finished_at": "2026-01-01T00:00:00+0000"}
    return ClassifyResult(result_id(config), config, {"test_accuracy": accuracy}, provenance, Path("/x"), shipped)


def rebuilt_result_id(command: str) -> str:
    """The result id `explorer classify svm …` would store (settings built as the CLI's `_svm` builds them)."""
    from explorer.classify.results import result_id
    from explorer.classify.settings import ClassifySettings, result_config

    args = parse(command)
    assert args.scattering != "both" and "," not in args.methods
    roto = {"wavelets_per_octave": args.wavelets_per_octave,
            "angular_scales": args.angular_scales} if args.scattering == "roto" else {}
    s = ClassifySettings(representation=args.scattering, method=args.methods, J=args.J, image_size=args.image_size,
                         L=args.L, subset_per_class=args.subset_per_class, components=args.components,
                         seed=args.seed, C=args.C, test_limit=args.test_limit, **roto)
    train_size = 50_000 if s.method == "nystroem" else 10 * s.subset_per_class
    return result_id(result_config(s, train_key=s.feature_config("train").key,
                                   test_key=s.feature_config("test").key, train_split_size=50_000,
                                   train_size=train_size, test_size=s.test_limit or 10_000, classes=10))


def test_the_roto_translation_svm_on_cifar10():
    exact = classify_result(0.66, method="exact")
    nystroem = classify_result(0.69, method="nystroem")
    limited = classify_result(0.95, method="exact", test_limit=1000)  # not the whole test set
    translation = classify_result(0.99, representation="translation", method="exact")
    row = board(classify_results=[exact, nystroem, limited, translation]).row("roto_svm_cifar10")
    assert row.status == "measured" and row.run_id == nystroem.id and row.others == 1
    assert row.measured == pytest.approx(69.0) and row.reference.reported.startswith("reported (unverified)")
    assert rebuilt_result_id(row.command) == nystroem.id
    assert row.machine == "cpu (x86_64) on vm" and row.dataset == sa.NOT_RECORDED
    # The paper's resolution (64×64, J = 4) comes first, whatever the accuracy.
    paper_like = classify_result(0.5, method="exact", J=4, image_size=64, seed=2, C=10.0)
    row = board(classify_results=[nystroem, paper_like], current_copy=JPEG).row("roto_svm_cifar10")
    assert row.run_id == paper_like.id and rebuilt_result_id(row.command) == paper_like.id
    assert row.dataset == "presumably JPEG-derived copy"
    empty = board().row("roto_svm_cifar10")
    assert empty.status == "not yet run" and parse(empty.command).scattering == "roto"


def test_the_shipped_results_commands_give_back_their_ids():
    from explorer.classify.results import list_results

    shipped = [r for r in list_results() if r.shipped]
    assert shipped, "the package ships its classification results"
    for result in shipped:
        assert rebuilt_result_id(sa.classify_command(result.config)) == result.id


# -- the small-data protocol ---------------------------------------------------------------------------------

def summary(schedule="small-quick", model="scat_wrn", means=(0.3, 0.5, 0.6), finished=5, mtime=1.0, **grid):
    from explorer.protocols import SmallDataGrid

    g = SmallDataGrid(models=[model], schedule={"small-quick": "quick", "small-paper": "paper"}[schedule], **grid)
    describe = {"scat_wrn": "scat_wrn J=2 L=8 12-8", "wrn": "wrn 16-8"}[model]
    rows = []
    for n, mean in zip(g.sizes, means):
        accuracies = [mean] * finished + [None] * (len(g.seeds) - finished)
        rows.append({"model": model, "describe": describe, "n": n, "seeds": list(g.seeds),
                     "accuracies": accuracies, "run_ids": [f"{model}-{i:012x}" for i in range(len(g.seeds))],
                     "devices": ["cpu (x86_64)"] * len(g.seeds), "seconds": [1.0] * len(g.seeds),
                     "finished": finished, "mean": mean if finished else None, "std": 0.01 if finished else None})
    return {"format": 1, "protocol": "small-data", "id": g.id, "grid": g.as_dict(), "schedule": schedule,
            "rows": rows, "complete": finished == len(g.seeds), "mtime": mtime}


def rebuilt_grid_id(command: str) -> str:
    from explorer.protocols import SmallDataGrid

    args = parse(command)
    return SmallDataGrid(models=args.models, sizes=args.sizes, seeds=args.seeds, schedule=args.schedule,
                         dataset=args.dataset, limit_test=args.limit_test).id


def test_the_paper_schedule_first_and_a_quick_one_said_so():
    quick = summary("small-quick", means=(0.30, 0.50, 0.60))
    paper = summary("small-paper", means=(0.20, 0.40, 0.50), finished=2, mtime=0.0)
    result = board(summaries=[quick, paper])
    row = result.row("small_scat_wrn_100")
    assert row.status == "measured" and row.run_id == paper["id"] and row.measured == pytest.approx(20.0)
    assert row.spread == pytest.approx(1.0) and "(2/5 seeds)" in row.measured_text
    assert "2 of 5 seeds finished" in row.note and rebuilt_grid_id(row.command) == paper["id"]
    assert row.runs == ("scat_wrn-000000000000", "scat_wrn-000000000001") and row.others == 1
    row = board(summaries=[quick]).row("small_scat_wrn_1000")
    assert row.measured == pytest.approx(60.0) and "schedule small-quick: not the paper's" in row.note
    assert rebuilt_grid_id(row.command) == quick["id"] and row.machine == "cpu (x86_64)"
    assert board(summaries=[summary(model="wrn")]).row("small_wrn_500").measured == pytest.approx(50.0)


def test_summaries_that_do_not_measure_the_figure_or_are_damaged():
    unfinished = summary(finished=0)
    synthetic = summary(dataset="synthetic", sizes=(2, 4, 6))
    limited = summary(limit_test=100)
    damaged = summary()
    damaged["rows"][0]["n"] = "many"
    broken = {"protocol": "small-data", "id": "broken", "rows": []}  # no grid
    result = board(summaries=[unfinished, synthetic, limited, damaged, broken])
    assert result.row("small_scat_wrn_500").status == "not yet run"
    assert any("broken" in s for s in result.skipped) and any(damaged["id"] in s for s in result.skipped)
    row = result.row("small_scat_wrn_100")
    assert rebuilt_grid_id(row.command) == summary("small-paper", sizes=(100, 500, 1000))["id"]


def test_a_grid_with_model_options_gets_the_python_call(monkeypatch):
    grid = summary(model_configs={"scat_wrn": {"widen": 2}})
    grid["rows"][0]["describe"] = "scat_wrn J=2 L=8 12-2"
    row = board(summaries=[grid]).row("small_scat_wrn_100")
    assert "not the paper's model" in row.note
    words = shlex.split(row.command)
    assert words[:2] == ["python", "-c"]
    import explorer.protocols

    grids = []
    monkeypatch.setattr(explorer.protocols, "run_grid", grids.append)
    exec(words[2], {})  # noqa: S102  (the command's own code, with run_grid replaced)
    assert grids[0].id == grid["id"]


def test_a_stored_summary_file_is_read_from_the_store(tmp_path):
    from explorer.protocols import SmallDataGrid
    from explorer.protocols.small_data import write_summary

    store = RunStore(tmp_path / "runs", shipped=False)
    write_summary(SmallDataGrid(models=["scat_wrn"], schedule="paper"), store)  # nothing trained yet
    (tmp_path / "protocols" / "small-data" / "damaged.json").write_text("{not json")
    result = sa.read_scoreboard(store)
    assert result.row("small_scat_wrn_100").status == "not yet run"
    assert any("damaged.json" in s for s in result.skipped)


# -- the thresholded SLE -----------------------------------------------------------------------------------

def sweep(before=0.78, after=0.76, limit=None, fractions=DEFAULT_FRACTIONS):
    accuracy = {d: {m: [after if abs(f - 0.2) < 1e-9 else before for f in fractions]
                    for m in ("global", "per_unit")} for d in ("fourier", "theta")}
    return {"fractions": list(fractions), "accuracy": accuracy, "accuracy_before": before, "band": 1,
            "limit": limit, "images": limit or 10_000}


def test_the_stored_sweep_of_the_best_sle_run():
    first = make_config("sle")
    second = make_config("sle", seed=1)
    runs = [run_info(first, 0.78), run_info(second, 0.80)]
    sweeps = {run_id(first): [sweep(0.78, 0.76)], run_id(second): [sweep(0.80, 0.70, limit=2000)]}
    row = board(*runs, sweeps=sweeps).row("sle_threshold")
    assert row.status == "measured" and row.run_id == run_id(first)  # the whole test set first
    assert row.measured == pytest.approx(-2.0) and row.difference == pytest.approx(0.0)
    assert row.measured_text.startswith("−2.00 points (78.00 % → 76.00 %")
    train, analyse = row.command.split(" && ")
    assert rebuilt_run_id(train) == run_id(first)
    args = parse(analyse)
    assert args.run == run_id(first) and args.sweep and args.limit is None
    assert "stands in for the talk's ImageNet J = 4 SLE" in row.note
    row = board(runs[1], sweeps=sweeps).row("sle_threshold")
    assert row.measured == pytest.approx(-10.0) and "on 2000 test images" in row.note
    assert parse(row.command.split(" && ")[1]).limit == 2000
    odd = {run_id(first): [sweep(fractions=(0.2, 0.5, 1.0))]}
    assert "fractions=[0.2, 0.5, 1.0]" in board(runs[0], sweeps=odd).row("sle_threshold").command


def test_no_sweep_and_no_sle_say_which_command():
    first = make_config("sle")
    row = board(run_info(first, 0.78), sweeps={run_id(first): [{"fractions": "damaged"}]}).row("sle_threshold")
    assert row.status == "not yet run" and row.run_id == run_id(first)
    assert parse(row.command).run == run_id(first)
    row = board().row("sle_threshold")
    train, analyse = row.command.split(" && ")
    assert rebuilt_run_id(train) == run_id(make_config("sle")) == parse(analyse).run


def test_the_shipped_sle_sweep_is_read_not_computed(tmp_path, monkeypatch):
    from explorer.analysis import threshold

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    monkeypatch.setattr(threshold, "_compute_sweep", lambda *a, **k: pytest.fail("computed"))
    result = sa.read_scoreboard()  # an empty store, and the shipped runs
    row = result.row("sle_threshold")
    assert row.status == "measured" and row.run_id == "sle-695ad4593697"
    assert row.measured == pytest.approx(100 * (0.7672 - 0.7849))
    analyse = parse(row.command.split(" && ")[1])
    stored = next(a for a in RunStore().info(row.run_id).analyses if a.name == threshold.SWEEP_NAME)
    assert params_key(sweep_params(None, analyse.limit, 1)) == stored.key  # the command recomputes that file


# -- the page ---------------------------------------------------------------------------------------------------

@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """An empty store of its own: what the page shows is then the shipped runs and results only."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    return tmp_path


def test_the_page_shows_the_board_and_its_filters(empty_store):
    from explorer.app import build_app
    from explorer.pages.scoreboard import ScoreboardPage

    page = build_app("scoreboard").page
    assert isinstance(page, ScoreboardPage)
    render(page)
    assert not page.alert.visible, page.alert.object
    frame = page.table.value
    assert len(frame) == len(sa.REFERENCES)
    k32 = frame[frame["figure"] == "P2 CNN, K=32: CIFAR-10 test accuracy"].iloc[0]
    assert k32["status"] == "measured" and k32["measured"] == "80.15 %" and k32["run"] == "cnn13-44da76659d19"
    assert k32["difference"] == "−7.8" and "explorer train cnn13 --width 32" in k32["command"]
    assert "**4** figures measured here" in page.counts.object
    bars = page.chart_pane.object.data
    assert {"CNN13 K=32", "roto SVM CIFAR-10"} <= set(bars["sb_figure"])
    assert sorted(bars[bars["sb_figure"] == "CNN13 K=32"]["sb_accuracy"]) == pytest.approx([80.15, 88.0])
    page.only_measured = True
    assert set(page.table.value["status"]) == {"measured"} and len(page.table.value) == 4
    page.text_figures = False
    assert "Roto-translation scattering + SVM, CIFAR-10: CIFAR-10 test accuracy" not in set(page.table.value["figure"])
    page.only_measured = False
    assert len(page.table.value) == sum(r.in_table for r in sa.REFERENCES)
    page.table.selection = [int(np.flatnonzero(page.table.value["figure"].str.startswith("P2 CNN, K=32"))[0])]
    assert "explorer train cnn13 --width 32" in page.details.object and "<pre" in page.details.object
    assert "`science.md`" in page.details.object  # never a link to a web site called science.md


def test_the_page_survives_damaged_stores(tmp_path, monkeypatch):
    from explorer.pages.scoreboard import ScoreboardPage

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    runs = tmp_path / "runs" / "cnn13-0123456789ab"
    runs.mkdir(parents=True)
    (runs / "config.json").write_text("{damaged")
    (tmp_path / "protocols" / "small-data").mkdir(parents=True)
    (tmp_path / "protocols" / "small-data" / "grid.json").write_text('{"protocol": "small-data", "rows": [1]}')
    page = ScoreboardPage()
    render(page)
    assert not page.alert.visible and page.note.visible
    assert "cnn13-0123456789ab" in page.note.object and "grid" in page.note.object
    assert len(page.table.value) == len(sa.REFERENCES)
    # A store that cannot be read at all: said in the alert, the table keeps what it showed.
    monkeypatch.setattr(ScoreboardPage, "read", staticmethod(lambda: (_ for _ in ()).throw(OSError("disk gone"))))
    page.reload()
    assert page.alert.visible and "disk gone" in page.alert.object
    assert len(page.table.value) == len(sa.REFERENCES)


def test_the_page_in_a_notebook(empty_store):
    from explorer.pages.notebook import show_page

    row = show_page("scoreboard", only_measured=True)
    assert row.poll is None  # read once; *Reload* reads again
    assert len(row.page.table.value) == 4
    render(row)


def test_reading_the_board_loads_no_ui_library(tmp_path):
    """The computation side (a script, the CLI, a training job) reads the board without Panel or HoloViews."""
    code = ("import json, sys; from explorer.analysis.scoreboard import read_scoreboard; b = read_scoreboard(); "
            "print(json.dumps([len(b.rows), sorted(m for m in sys.modules if m.split('.')[0] in "
            "('panel', 'holoviews', 'bokeh', 'param'))]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "EXPLORER_STORE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [len(sa.REFERENCES), []]


def test_row_dicts_are_plain_data():
    rows = [r.as_dict() for r in board().rows]
    assert json.loads(json.dumps(rows)) == rows  # the table, a notebook or a script take them as they are
    assert {r["status"] for r in rows} == set(sa.STATUSES) - {"measured"}
