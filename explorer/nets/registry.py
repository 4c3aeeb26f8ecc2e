"""The model registry: everything the rest of the package knows about a model, in one `ModelSpec`.

A model is one module plus one ``register(ModelSpec(...))`` at its end (see the end of `cnn13.py` and
`sle.py`). The CLI (`explorer train NAME`), configuration defaults and validation, the trainer, the
run descriptions and the Runs page form all read the spec; none of them names a model.

- ``constructor``: the `nn.Module` class; its keyword arguments and their defaults are the run's
  ``model_config`` (it must take ``num_classes``: the dataset sets it).
- ``check_config(model_config, dataset)``: the checks a user hits first, with messages naming the
  parameter (the constructor checks the rest); ``check_augment(augment)`` likewise.
- ``trains_on``: "images" (the dataset's images, augmented by a random crop and flip) or "features"
  (stored scattering features, ``feature_params(model_config)`` → the ``J`` and ``L`` they need).
- ``augmenter(augment, model)``: the training augmentation as a function ``(x, generator) → x``;
  None: the random crop and flip of images.
- ``cli_options``: the options of ``explorer train NAME``, each mapped to one ``model_config`` key.
- ``form_fields``: the Runs page fields (shared by name between models, so a name means one thing),
  ``form_note(values, dataset)``: what the form says about the choice before the click.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

TRAINS_ON = ("images", "features")
FIELD_KINDS = ("int", "float", "select", "text")


@dataclass(frozen=True)
class CliOption:
    """One option of ``explorer train MODEL``, stored as ``model_config[key]``."""
    key: str
    flags: tuple[str, ...]
    type: type = str
    default: Any = None
    help: str = ""
    nargs: str | None = None
    metavar: str | None = None

    def add_to(self, parser) -> None:
        extra = {k: v for k, v in (("nargs", self.nargs), ("metavar", self.metavar)) if v is not None}
        parser.add_argument(*self.flags, dest=self.key, type=self.type, default=self.default,
                            help=self.help, **extra)

    def arguments(self, value) -> list[str]:
        """The command-line words that give back ``value`` (none for None: the option's default)."""
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [self.flags[0], *map(str, value)]
        return [self.flags[0], str(value)]


@dataclass(frozen=True)
class FormField:
    """One field of the Runs page's training form. ``kind``: int, float, select (``options``) or
    text; ``bounds`` for numbers. ``visible(values)``: shown only when true of the form's values
    (all shown fields by name); ``arguments(value)``: its `explorer train` words (default
    ``[option, str(value)]``)."""
    name: str
    label: str
    kind: str
    default: Any
    option: str = ""
    options: tuple = ()
    bounds: tuple | None = None
    step: float | None = None
    visible: Callable[[dict], bool] | None = None
    arguments: Callable[[Any], list[str]] | None = None

    def argv(self, value) -> list[str]:
        if self.arguments is not None:
            return self.arguments(value)
        return [self.option, str(value)]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    constructor: type
    summary: str  # the CLI's one-line help
    description: str  # the CLI's help of `explorer train NAME`
    describe: Callable[[dict], str]  # model_config → "cnn13 K=32 relu"
    default_schedule: str
    trains_on: str = "images"
    default_augment: dict = field(default_factory=lambda: {"crop_padding": 2, "padding_mode": "zeros",
                                                           "flip": True})
    check_config: Callable[[dict, str], None] | None = None
    check_augment: Callable[[dict], None] | None = None
    feature_params: Callable[[dict], dict] | None = None
    augmenter: Callable[[dict, Any], Callable] | None = None
    channels_last: bool = False  # on CUDA: convolutions on images run faster in that layout
    cli_options: tuple[CliOption, ...] = ()
    form_fields: tuple[FormField, ...] = ()
    form_note: Callable[[dict, str], str] | None = None

    def __post_init__(self):
        if self.trains_on not in TRAINS_ON:
            raise ValueError(f"model {self.name}: trains_on must be one of {TRAINS_ON}, got {self.trains_on!r}")
        if self.trains_on == "features" and self.feature_params is None:
            raise ValueError(f"model {self.name} trains on features: it needs feature_params")
        for form_field in self.form_fields:
            if form_field.kind not in FIELD_KINDS:
                raise ValueError(f"form field {form_field.name}: kind must be one of {FIELD_KINDS}")

    def defaults(self) -> dict:
        """Every constructor argument with its default: a complete ``model_config``."""
        parameters = inspect.signature(self.constructor.__init__).parameters
        return {name: p.default for name, p in parameters.items()
                if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def build(self, **model_config):
        return self.constructor(**model_config)

    def config_from_cli(self, args) -> dict:
        return {option.key: getattr(args, option.key) for option in self.cli_options}

    def cli_arguments(self, model_config: dict) -> list[str]:
        """The `explorer train NAME` options that give back ``model_config``."""
        return [word for option in self.cli_options for word in option.arguments(model_config.get(option.key))]


_SPECS: dict[str, ModelSpec] = {}


class ModelNames(Sequence):
    """The registered model names, in registration order, always up to date."""

    def __getitem__(self, index):
        return tuple(_SPECS)[index]

    def __len__(self) -> int:
        return len(_SPECS)

    def __repr__(self) -> str:
        return repr(tuple(_SPECS))


MODELS = ModelNames()


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model; a second model of the same name replaces the first (a module reloaded)."""
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _SPECS.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_SPECS)


def get(name: str) -> ModelSpec:
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_SPECS)}.") from None


def check_int(value, name: str, minimum: int, allow_none: bool = False):
    """``value`` when it is an integer ≥ ``minimum`` (or None when allowed), else a ValueError naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")
    return value
