"""The model registry is the only place that knows a model (issue 11): a toy model registered here, in the
test alone, trains, is stored, listed, described and evaluated through the public paths (the CLI, the run
store, the Runs page form); the run ids of CNN13 and SLE runs are those of before the registry."""
from __future__ import annotations

import json

import panel as pn
import pytest
import torch
from torch import nn

from explorer import jobs
from explorer.cli import main
from explorer.nets import build_model, registry
from explorer.nets.registry import CliOption, FormField, ModelSpec, check_int
from explorer.runs import RunStore, describe_model, run_id
from explorer.runs.store import SHIPPED_ROOT
from explorer.train_cli import config_from_args
from explorer.training import MODELS, evaluate_run, make_config


class TinyConv(nn.Module):
    """Two convolutions and a global mean: the smallest network that trains on images."""

    def __init__(self, channels: int = 4, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.head = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x))).mean(dim=(-2, -1))


def _check(config: dict, dataset: str) -> None:
    check_int(config["channels"], "channels", 1)


TOY = ModelSpec(
    name="toyconv", constructor=TinyConv, summary="a toy network of the registry test",
    description="Two convolutions and a global mean.", describe=lambda mc: f"toyconv C={mc.get('channels')}",
    default_schedule="quick", check_config=_check,
    cli_options=(CliOption("channels", ("--channels",), int, 4, "channels of the first convolution"),),
    form_fields=(FormField("channels", "Channels (toyconv)", "int", 4, "--channels", bounds=(1, 64)),),
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)
    pn.state.reset()


def test_a_model_registered_in_a_test_trains_lists_describes_and_evaluates(toy, capsys):
    assert "toyconv" in MODELS and registry.get("toyconv") is toy
    argv = ["toyconv", "--channels", "3", "--dataset", "synthetic", "--epochs", "1", "--limit-train", "64",
            "--limit-test", "32", "--device", "cpu", "--no-progress"]
    assert main(["train", *argv]) == 0
    identifier = capsys.readouterr().out.strip().splitlines()[-1].split(":")[0]
    assert identifier.startswith("toyconv-")

    store = RunStore()
    info = store.info(identifier)
    assert info.status == "complete" and info.config["model_config"] == {"channels": 3, "num_classes": 2}
    assert info.config["augment"] == {"crop_padding": 2, "padding_mode": "zeros", "flip": True}  # the default
    assert describe_model(info.config) == "toyconv C=3"
    assert main(["runs", "list"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if identifier in line]
    assert len(listed) == 1 and "toyconv C=3" in listed[0]

    run = store.load(identifier)
    assert isinstance(run.build_model(), TinyConv)
    loss, accuracy = evaluate_run(run, device="cpu")
    assert accuracy == pytest.approx(run.metrics[-1]["test_acc"]) and loss == pytest.approx(
        run.metrics[-1]["test_loss"], rel=1e-5)
    # Resuming from the Runs page rebuilds the command from the configuration alone.
    rebuilt = jobs.train_arguments(info.config)
    assert rebuilt[:3] == ["toyconv", "--channels", "3"]
    assert run_id(config_from_args(jobs._parse_train_args(rebuilt))) == identifier


def test_the_runs_page_form_offers_the_registered_model_and_only_its_fields(toy, capsys):
    from explorer.app import build_app

    page = build_app("runs").page
    model_select = next(w for w in page.controls.select(pn.widgets.Select) if w.name == "Model")
    assert list(model_select.options) == [*registry.names()] and registry.names()[-1] == "toyconv"
    shown = lambda: {w.name for w in page.fields.values() if w.visible}
    assert shown() == {"Width K (cnn13)", "Non-linearity ρ (cnn13)"}
    page.param.update(model="toyconv", channels=2, epochs=1, limit_train=32, dataset="synthetic", seed=4)
    assert shown() == {"Channels (toyconv)"} and page.model_note.object == ""
    argv = page.train_arguments()
    assert argv[0] == "toyconv" and argv[argv.index("--channels") + 1] == "2"
    config = config_from_args(jobs._parse_train_args(argv))
    assert config["model_config"]["channels"] == 2 and config["limit_train"] == 32
    # The job the form would start runs `explorer train` with these arguments: the same thing in-process.
    assert main(["train", *argv, "--device", "cpu", "--no-progress"]) == 0
    assert RunStore().info(run_id(config)).status == "complete"


def test_the_registry_validates_with_the_models_own_messages(toy):
    with pytest.raises(ValueError, match="channels must be an integer ≥ 1, got 0"):
        make_config("toyconv", channels=0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['width'\] for model toyconv"):
        make_config("toyconv", width=3)
    with pytest.raises(ValueError, match=rf"^unknown model 'resnet'; choose one of {', '.join(registry.names())}\.$"):
        build_model("resnet")
    assert main(["train", "toyconv", "--channels", "0", "--dataset", "synthetic"]) == 2


def test_unknown_models_are_named_with_the_registered_choices():
    assert "toyconv" not in registry.names()  # the fixture unregistered it
    for call in (lambda: make_config("resnet"), lambda: build_model("resnet"), lambda: registry.get("resnet")):
        with pytest.raises(ValueError, match=rf"^unknown model 'resnet'; choose one of {', '.join(registry.names())}\.$"):
            call()
    assert describe_model({"model": "resnet", "model_config": {}}) == "resnet"


def test_run_ids_of_cnn13_and_sle_are_those_of_before_the_registry():
    """The configuration that is hashed is byte for byte what it was: shipped runs are found again."""
    for folder in sorted(p for p in SHIPPED_ROOT.iterdir() if p.is_dir()):
        config = json.loads((folder / "config.json").read_text())
        assert run_id(make_config(**_make_config_arguments(config))) == folder.name
    # Identifiers computed before the registry existed.
    assert run_id(make_config("cnn13")) == "cnn13-44da76659d19"
    assert run_id(make_config("sle")) == "sle-695ad4593697"
    assert run_id(make_config(
        "cnn13", width=4, rho="relu_k", alpha=0.25, dropout=0.1, dataset="synthetic", epochs=3,
        schedule="paper", lr=0.07, batch_size=16, subset={"n": 20, "seed": 3}, limit_train=12, limit_test=10,
        augment={"flip": False}, seed=5)) == "cnn13-54be3687c51b"
    assert run_id(make_config("sle", J=1, L=4, widths=[8, 4], dataset="synthetic", schedule="quick")) \
        == "sle-1d12af7bde0d"
    assert run_id(make_config("cnn13", rho="sign_sqrt", width=16, epochs=30)) == "cnn13-9e176d29089a"


def _make_config_arguments(config: dict) -> dict:
    """``make_config`` arguments that describe a stored configuration anew (from defaults, not from a copy)."""
    mc = {k: v for k, v in config["model_config"].items() if k != "num_classes"}
    return {"model": config["model"], "schedule": config["schedule"]["name"], "epochs": config["epochs"],
            "seed": config["seed"], "dataset": config["dataset"], "subset": config["subset"],
            "limit_train": config["limit_train"], "limit_test": config["limit_test"], **mc}
