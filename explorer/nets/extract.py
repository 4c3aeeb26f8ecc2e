"""The one way to read a network's intermediate representations.

A model's ``forward`` returns logits only; a model with inner representations exposes them
through one method, ``inner_maps(x) -> list[Tensor]`` (CNN13: the outputs of its 12 inner
non-linearities). The functions here call that method in inference mode — BN running
statistics, dropout off, under ``torch.inference_mode`` — and give the model back in the
train/eval mode they found it in, before each result is handed out. They take an iterable of
batches (a generator is fine) and yield one result per batch, so a dataset's full maps are
never held at once::

    >>> from explorer.nets.extract import inner_means
    >>> for means in inner_means(model, (x for x, _ in loader)):   # doctest: +SKIP
    ...     means[0].shape                                          # (B, K): depth 2
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def inference(model: nn.Module) -> Iterator[nn.Module]:
    """``with inference(model):`` the model in eval mode under ``torch.inference_mode``; its
    previous train/eval mode comes back on exit, even on an exception."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def inner_representations(model: nn.Module, batches: Iterable[torch.Tensor],
                          reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                          device=None) -> Iterator[list[torch.Tensor]]:
    """For each batch of inputs, the list of ``model.inner_maps(batch)`` in inference mode,
    each passed through ``reduce`` when given. Batches are moved to ``device`` (default: the
    model's); results stay there. The mode is restored before each yield, so the model may be
    used between batches."""
    if not callable(getattr(model, "inner_maps", None)):
        raise TypeError(f"{type(model).__name__} has no inner_maps(x) method: it exposes no "
                        "inner representations.")
    device = torch.device(device) if device is not None else _model_device(model)
    return _per_batch(model, batches, reduce, device)  # checked now, computed on iteration


def _per_batch(model, batches, reduce, device) -> Iterator[list[torch.Tensor]]:
    for batch in batches:
        with inference(model):  # left before the yield: the caller's code runs in its own mode
            maps = model.inner_maps(batch.to(device))
            result = [reduce(m) for m in maps] if reduce is not None else maps
        yield result


def spatial_mean(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) → (B, C): the mean over the spatial axes."""
    return maps.mean(dim=(-2, -1))


def inner_means(model: nn.Module, batches: Iterable[torch.Tensor],
                device=None) -> Iterator[list[torch.Tensor]]:
    """For each batch (B, 3, H, W), the spatial mean of each inner map: for CNN13 a list of
    12 tensors (B, K), depth 2..13. Only one batch's maps exist at a time."""
    return inner_representations(model, batches, spatial_mean, device)
