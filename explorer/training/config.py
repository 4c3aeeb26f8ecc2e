"""A training run's full configuration: what the run store hashes into the run's id.

    {"format": 1, "model": "cnn13", "model_config": {...every constructor argument...},
     "dataset": "cifar10", "schedule": {...see schedules...}, "epochs": 30, "seed": 0,
     "augment": {"crop_padding": 2, "padding_mode": "zeros", "flip": true},
     "subset": null | {"n": 500, "seed": 1}, "limit_train": null, "limit_test": null}

`make_config` builds one from a few choices; `normalise_config` fills every default of a partial
one and validates it, so that two equal runs always get the same id. The device is not part of
it: the same run may be resumed elsewhere (each session's device is in the provenance).
"""
from __future__ import annotations

import copy
import json

from explorer.nets import registry
from explorer.nets.registry import check_int

from .data import DATASETS, NUM_CLASSES
from .schedules import SCHEDULES, check_schedule, get_schedule

FORMAT = 1
MODELS = registry.MODELS  # the registered names, always up to date (one definition: the registry's)
# Each model's default augmentation is in its registry entry (explorer.nets.registry).
_KEYS = {"format", "model", "model_config", "dataset", "schedule", "epochs", "seed", "augment",
         "subset", "limit_train", "limit_test"}


def normalise_config(config: dict) -> dict:
    """A complete, validated copy of ``config`` (missing fields get their defaults)."""
    if not isinstance(config, dict):
        raise ValueError(  # noqa: TRY004 (ValueError: the CLI reports it in one line)
            f"a training configuration must be a dict, got {type(config).__name__}")
    unknown = set(config) - _KEYS
    if unknown:
        raise ValueError(f"unknown configuration field(s) {sorted(unknown)}; fields: {sorted(_KEYS)}")
    config = copy.deepcopy(config)
    model = config.get("model", "cnn13")
    spec = registry.get(model)
    defaults = spec.defaults()
    mc = dict(config.get("model_config") or {})
    unknown = set(mc) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for model {model}; options: "
                         f"{', '.join(defaults)}.")
    dataset = config.get("dataset", "cifar10")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    mc = {**defaults, **mc}
    if mc.get("num_classes") not in (NUM_CLASSES[dataset], defaults.get("num_classes")):
        raise ValueError(f"num_classes={mc['num_classes']} but {dataset} has "
                         f"{NUM_CLASSES[dataset]} classes.")
    mc["num_classes"] = NUM_CLASSES[dataset]
    if spec.check_config is not None:
        spec.check_config(mc, dataset)

    schedule = config.get("schedule") or spec.default_schedule
    if isinstance(schedule, str):
        schedule = get_schedule(schedule)
    elif isinstance(schedule, dict):
        base = get_schedule(schedule["name"]) if schedule.get("name") in SCHEDULES else {}
        schedule = {**base, **schedule}
    else:
        raise ValueError(f"schedule must be a name or a dict, got {schedule!r}")  # noqa: TRY004
    default_epochs = schedule.pop("epochs", None)
    check_schedule(schedule)
    epochs = config.get("epochs", default_epochs)

    augment = {**spec.default_augment, **(config.get("augment") or {})}
    check_int(augment["crop_padding"], "augment crop_padding", 0)
    if spec.check_augment is not None:
        spec.check_augment(augment)
    subset = config.get("subset")
    if subset is not None:
        if not isinstance(subset, dict) or set(subset) - {"n", "seed"}:
            raise ValueError(f"subset must be {{'n': size, 'seed': seed}}, got {subset!r}")
        subset = {"n": check_int(subset.get("n"), "subset n", 1), "seed": check_int(subset.get("seed", 0),
                                                                        "subset seed", 0)}
    result = {
        "format": FORMAT, "model": model, "model_config": mc, "dataset": dataset,
        "schedule": schedule, "epochs": check_int(epochs, "epochs", 1),
        "seed": check_int(config.get("seed", 0), "seed", 0), "augment": augment, "subset": subset,
        "limit_train": check_int(config.get("limit_train"), "limit_train", 1, allow_none=True),
        "limit_test": check_int(config.get("limit_test"), "limit_test", 1, allow_none=True),
    }
    return json.loads(json.dumps(result))  # tuples → lists: the form the store keeps


def make_config(model: str = "cnn13", *, schedule: str | dict | None = None,
                epochs: int | None = None, batch_size: int | None = None,
                lr: float | None = None, seed: int = 0, dataset: str = "cifar10",
                subset: dict | None = None, limit_train: int | None = None,
                limit_test: int | None = None, augment: dict | None = None,
                **model_config) -> dict:
    """A full configuration, e.g. ``make_config("cnn13", width=32, rho="relu", epochs=30)``;
    ``batch_size`` and ``lr`` override the schedule's."""
    default_schedule = registry.get(model).default_schedule  # an unknown model fails here
    schedule = get_schedule(schedule or default_schedule) if not isinstance(schedule, dict) else dict(schedule)
    if batch_size is not None:
        schedule["batch_size"] = batch_size
    if lr is not None:
        schedule["lr"] = lr
    config = {"model": model, "model_config": model_config, "dataset": dataset,
              "schedule": schedule, "seed": seed, "augment": augment, "subset": subset,
              "limit_train": limit_train, "limit_test": limit_test}
    if epochs is not None:
        config["epochs"] = epochs
    return normalise_config(config)
