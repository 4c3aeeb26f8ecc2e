"""Reflect padding (edge not repeated) to the grid the filters live on: what `Scattering2D` filters, and what
the analyses measure when they compare distances before and after the transform."""
from __future__ import annotations

import functools

import numpy as np
import torch

from .filters import padded_shape


def pad_widths(shape: tuple[int, int], J: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixels added to an image of `shape` (H, W) to reach `padded_shape`."""
    (H, W), (M, N) = shape, padded_shape(shape, J)
    return (M - H) // 2, (M - H + 1) // 2, (N - W) // 2, (N - W + 1) // 2


def reflect_indices(n: int, before: int, after: int) -> np.ndarray:
    """Indices into 0..n−1 of a reflect padding by (before, after) of any width, even ≥ n (the reflection
    repeats with period 2(n − 1), as `np.pad(mode="reflect")` does)."""
    idx = np.arange(-before, n + after)
    period = 2 * (n - 1) if n > 1 else 1
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx).astype(np.int64)


@functools.lru_cache(maxsize=64)
def _indices_on(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    # Cached per device: a host-to-device copy on every call would synchronise the CUDA stream.
    return torch.from_numpy(reflect_indices(n, before, after)).to(device)


def reflect_pad(x, J: int):
    """`x` (..., H, W), a numpy array or a torch tensor, reflect-padded (edge not repeated) to
    `padded_shape((H, W), J)`, as `Scattering2D` pads it before filtering; same type, dtype and device."""
    H, W = x.shape[-2:]
    top, bottom, left, right = pad_widths((H, W), J)
    if isinstance(x, torch.Tensor):
        if max(top, bottom) < H and max(left, right) < W:  # torch's reflect pad needs pad < size
            padded = torch.nn.functional.pad(x.reshape(-1, H, W), (left, right, top, bottom), mode="reflect")
            return padded.reshape(*x.shape[:-2], *padded.shape[-2:])
        rows = _indices_on(H, top, bottom, x.device)
        cols = _indices_on(W, left, right, x.device)
        return x.index_select(-2, rows).index_select(-1, cols)
    x = np.asarray(x)
    return x[..., reflect_indices(H, top, bottom), :][..., reflect_indices(W, left, right)]
