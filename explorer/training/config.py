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
import inspect
import json

from .data import DATASETS, NUM_CLASSES
from .schedules import DEFAULT_SCHEDULE, SCHEDULES, check_schedule, get_schedule

FORMAT = 1
MODELS = ("cnn13", "sle")
# CNN13 sees images: the paper's pad-2 crop and flip. The SLE sees stored scattering features:
# a flip only (its crop would be a translation by a fraction of a 4-pixel sample).
DEFAULT_AUGMENT = {
    "cnn13": {"crop_padding": 2, "padding_mode": "zeros", "flip": True},
    "sle": {"crop_padding": 0, "padding_mode": "zeros", "flip": True},
}
_KEYS = {"format", "model", "model_config", "dataset", "schedule", "epochs", "seed", "augment",
         "subset", "limit_train", "limit_test"}


def _model_class(model: str):
    from explorer.nets import CNN13, ScatteringSLE

    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    return {"cnn13": CNN13, "sle": ScatteringSLE}[model]


def _model_defaults(model: str) -> dict:
    parameters = inspect.signature(_model_class(model).__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


def _int(value, name: str, minimum: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")
    return value


def _check_model_config(model: str, mc: dict) -> None:
    """The checks a user hits first, with messages naming the parameter; the constructor
    checks the rest when the model is built."""
    if model == "cnn13":
        _int(mc["width"], "width K", 1)
        alpha = mc["alpha"]
        if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                                  or not 0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1] (the fraction k/K of channels with a "
                             f"ReLU), got {alpha!r}.")
        from explorer.nets import RHOS

        if mc["rho"] not in RHOS:
            raise ValueError(f"unknown non-linearity rho={mc['rho']!r}; choose one of "
                             f"{', '.join(RHOS)}.")
        if mc["rho"] == "relu_k" and alpha is None:
            raise ValueError("rho='relu_k' needs alpha, the fraction k/K of channels with a ReLU.")
        if mc["rho"] != "relu_k" and alpha is not None:
            raise ValueError(f"alpha only applies to rho='relu_k', not rho={mc['rho']!r}.")
    else:
        widths = mc["widths"]
        if not isinstance(widths, (list, tuple)) or not widths:
            raise ValueError(f"widths must be a non-empty list of integers ≥ 1, got {widths!r}.")
        for w in widths:
            _int(w, "every SLE width", 1)
        _int(mc["J"], "J", 1)
        _int(mc["L"], "L", 1)


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
    defaults = _model_defaults(model)
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
    _check_model_config(model, mc)
    if model == "sle" and list(mc["image_shape"]) != [32, 32]:
        raise ValueError(f"{dataset} images are 32×32, got image_shape={mc['image_shape']!r}")

    schedule = config.get("schedule") or DEFAULT_SCHEDULE[model]
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

    augment = {**DEFAULT_AUGMENT[model], **(config.get("augment") or {})}
    _int(augment["crop_padding"], "augment crop_padding", 0)
    if model == "sle" and augment["crop_padding"]:
        raise ValueError("the SLE trains on scattering features: only the flip applies "
                         "(augment crop_padding must be 0).")
    subset = config.get("subset")
    if subset is not None:
        if not isinstance(subset, dict) or set(subset) - {"n", "seed"}:
            raise ValueError(f"subset must be {{'n': size, 'seed': seed}}, got {subset!r}")
        subset = {"n": _int(subset.get("n"), "subset n", 1), "seed": _int(subset.get("seed", 0),
                                                                        "subset seed", 0)}
    result = {
        "format": FORMAT, "model": model, "model_config": mc, "dataset": dataset,
        "schedule": schedule, "epochs": _int(epochs, "epochs", 1),
        "seed": _int(config.get("seed", 0), "seed", 0), "augment": augment, "subset": subset,
        "limit_train": _int(config.get("limit_train"), "limit_train", 1, allow_none=True),
        "limit_test": _int(config.get("limit_test"), "limit_test", 1, allow_none=True),
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
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    schedule = get_schedule(schedule or DEFAULT_SCHEDULE[model]) if not isinstance(schedule, dict) \
        else dict(schedule)
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
