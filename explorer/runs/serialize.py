"""Nested training state (optimizer, scaler, RNG, counters) ↔ safetensors without pickle.

`flatten` walks a structure of dicts, lists, tuples, tensors and JSON scalars: each tensor goes
into a flat {name: tensor} dict (saved with safetensors), and the structure itself becomes JSON
in which a tensor is the reference {"__tensor__": name}. Dicts with non-string keys (an
optimizer's state is keyed by parameter index) and tuples are tagged so they come back as they
were. Anything else (a function, an object) is refused: the store never needs pickle.
"""
from __future__ import annotations

import torch

_TENSOR, _ITEMS, _TUPLE = "__tensor__", "__items__", "__tuple__"


def flatten(value, tensors: dict[str, torch.Tensor], prefix: str = "state"):
    if isinstance(value, torch.Tensor):
        name = prefix
        # safetensors refuses shared or non-contiguous storage: save an owned copy.
        tensors[name] = value.detach().to("cpu").contiguous().clone()
        return {_TENSOR: name}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: flatten(v, tensors, f"{prefix}.{k}") for k, v in value.items()}
        return {_ITEMS: [[_key(k), flatten(v, tensors, f"{prefix}.{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {prefix} without pickle")


def _key(key):
    if key is None or isinstance(key, (bool, int, float, str)):
        return key
    raise TypeError(f"cannot store a dict key of type {type(key).__name__}")


def unflatten(tree, tensors: dict[str, torch.Tensor]):
    if isinstance(tree, dict):
        if _TENSOR in tree:
            return tensors[tree[_TENSOR]]
        if _ITEMS in tree:
            return {k: unflatten(v, tensors) for k, v in tree[_ITEMS]}
        if _TUPLE in tree:
            return tuple(unflatten(v, tensors) for v in tree[_TUPLE])
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree
