"""Checks of a run's configuration and weights against the model registry, before any tensor is allocated.

A run folder may hold anything: a hand-edited ``config.json`` (a width given as "32", a width of 10⁹,
an unknown model, junk where a dict belongs) or a ``weights.safetensors`` that is not the one its
training wrote (another width, a missing or extra tensor, float64 instead of float32, not a safetensors
file at all). These checks say which, in words a user can act on, and never build a network the
weights file could not fill: the expected tensors come from the model built on PyTorch's ``meta``
device (shapes only, no memory), and every size in the configuration must be at most the number of
values the weights file holds before a model that cannot be built that way is built for real.
"""
from __future__ import annotations

import functools
import json
import math

import torch

# safetensors dtype codes of the torch dtypes a state dict holds
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
          torch.uint8: "U8", torch.bool: "BOOL"}


def model_of(config) -> tuple:
    """(registry entry, complete model_config) of a run's configuration; ValueError naming the field."""
    from explorer.nets import registry

    if not isinstance(config, dict):
        raise ValueError(f"the configuration is a {type(config).__name__}, not a JSON object")  # noqa: TRY004
    spec = registry.get(config.get("model"))  # ValueError: unknown model, with the registered ones
    given = config.get("model_config", {})
    if not isinstance(given, dict):
        raise ValueError(f"model_config must be a JSON object, got {_short(given)}")  # noqa: TRY004
    defaults = spec.defaults()
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for model {spec.name}; its options: "
                         f"{', '.join(defaults)}")
    model_config = {**defaults, **given}
    if spec.check_config is not None:
        dataset = config.get("dataset", "cifar10")
        try:
            spec.check_config(model_config, dataset if isinstance(dataset, str) else "cifar10")
        except (TypeError, KeyError, AttributeError) as exc:  # junk the checks did not expect
            raise ValueError(f"model_config is not valid for {spec.name} ({type(exc).__name__}: {exc})") from None
    return spec, model_config


def _short(value) -> str:
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _sizes(value):
    """Every integer in a configuration value (lists and dicts walked)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _sizes(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _sizes(v)


def expected_tensors(spec, model_config: dict, available: int) -> dict[str, tuple[list[int], str]]:
    """{name: (shape, safetensors dtype)} of the model's state dict. Built on the ``meta`` device when
    the model allows it (no memory used whatever the sizes); otherwise built for real, but only when
    no size in the configuration exceeds ``available`` (the values the weights file holds: a network
    with a dimension d holds at least d numbers), so a crafted width of 10⁹ is refused, not allocated."""
    key = json.dumps([spec.name, model_config], sort_keys=True, default=repr)
    try:
        return _expected_on_meta(spec.name, key, id(spec.constructor))
    except ValueError:
        raise
    except Exception:  # noqa: BLE001, S110 (a model whose constructor computes on the CPU: see below)
        pass
    too_big = [v for v in _sizes(model_config) if v > max(available, 1)]
    if too_big:
        raise ValueError(f"its configuration asks for a size of {max(too_big)}, more than the "
                         f"{available} values the weights file holds")
    return _expected_built(spec.name, key, id(spec.constructor))


# Cached by model name, configuration and constructor (a model registered again, e.g. by a test, is not
# taken for the one before).
@functools.lru_cache(maxsize=64)
def _expected_on_meta(name: str, key: str, constructor: int) -> dict:
    from explorer.nets import registry

    spec, model_config = registry.get(name), json.loads(key)[1]
    with torch.device("meta"):
        model = spec.build(**model_config)
    return _state_shapes(model)


@functools.lru_cache(maxsize=64)
def _expected_built(name: str, key: str, constructor: int) -> dict:
    from explorer.nets import registry

    spec, model_config = registry.get(name), json.loads(key)[1]
    return _state_shapes(spec.build(**model_config))


def _state_shapes(model: torch.nn.Module) -> dict:
    return {k: (list(v.shape), DTYPES.get(v.dtype, str(v.dtype))) for k, v in model.state_dict().items()}


def weights_problem(config, tensors: dict[str, dict]) -> str | None:
    """Why the tensors of a weights file ({name: {"dtype", "shape"}}, its header) cannot be loaded
    into the model of ``config``, or None. Raises nothing: a bad configuration is a problem too."""
    try:
        spec, model_config = model_of(config)
    except ValueError as exc:
        return f"config.json cannot be built into a model: {exc}"
    available = sum(math.prod(t["shape"]) for t in tensors.values())
    try:
        expected = expected_tensors(spec, model_config, available)
    except (ValueError, TypeError) as exc:
        return f"config.json cannot be built into a model: {exc}"
    except RuntimeError as exc:  # the constructor refused (out of memory, inconsistent sizes)
        return f"config.json cannot be built into a model ({type(exc).__name__}: {exc})"
    missing = [k for k in expected if k not in tensors]
    if missing:
        return (f"weights.safetensors lacks tensor {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + " that the configuration needs")
    extra = [k for k in tensors if k not in expected]
    if extra:
        return (f"weights.safetensors holds tensor {extra[0]!r}"
                + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                + " that the configuration has no place for")
    for name, (shape, dtype) in expected.items():
        got = tensors[name]
        if list(got["shape"]) != shape:
            return (f"tensor {name!r} of weights.safetensors has shape {list(got['shape'])}, the "
                    f"configuration needs {shape}")
        if got["dtype"] != dtype:
            return (f"tensor {name!r} of weights.safetensors is {got['dtype']}, the configuration "
                    f"needs {dtype}")
    return None
