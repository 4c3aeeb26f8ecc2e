"""Input and parameter checks with messages that name the problem and the fix."""
from __future__ import annotations

import numpy as np
import torch


class ParameterError(ValueError):
    """A parameter of the wrong type or out of its range (J, L, max_order, an image too small for J, a
    sweep's values): the message names the parameter, its value and what is allowed."""


def check_J_L(J, L) -> tuple[int, int]:
    """J (scales) and L (angles) as ints ≥ 1; ParameterError otherwise."""
    for name, value in (("J", J), ("L", L)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be an integer ≥ 1, got {value!r}.")
    return int(J), int(L)


def check_size_fits_J(shape, J: int) -> None:
    """ParameterError unless both sides of `shape` (H, W) are at least 2^J pixels."""
    H, W = shape
    if min(H, W) < 2**J:
        raise ParameterError(f"an image of {H}×{W} pixels is smaller than 2^J = {2**J}: "
                             f"use J ≤ {max(int(np.log2(max(min(H, W), 1))), 0)} or a larger image.")


def check_parameters(J, shape, L, max_order) -> None:
    check_J_L(J, L)
    if max_order not in (1, 2):
        raise ParameterError(f"max_order must be 1 or 2, got {max_order!r}.")
    try:
        H, W = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ParameterError(f"shape must be (height, width), got {shape!r}.") from None
    check_size_fits_J((H, W), J)


def check_input(x, shape, J) -> torch.Tensor:
    """Validate a real image batch (..., H, W) and return it as a float tensor."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch tensor or numpy array of shape (..., H, W), "
                        f"got {type(x).__name__}.")
    if x.is_complex():
        raise TypeError("the scattering transform takes real images; got a complex tensor. "
                        "Pass x.real or x.abs() explicitly.")
    if not x.is_floating_point():
        raise TypeError(f"expected float32 or float64 images, got {x.dtype}; convert with "
                        f"x.float() (and scale integers, e.g. uint8 / 255).")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"expected float32 or float64 images, got {x.dtype}; use x.float().")
    if x.ndim < 2:
        raise ValueError(f"expected at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}.")
    if tuple(x.shape[-2:]) != tuple(shape):
        if min(x.shape[-2:]) < 2**J:
            raise ValueError(f"images of {x.shape[-2]}×{x.shape[-1]} pixels are smaller than "
                             f"2^J = {2**J}: lower J or use larger images.")
        raise ValueError(f"this transform was built for images of shape {tuple(shape)}, got "
                         f"{tuple(x.shape[-2:])}: build Scattering2D(J, shape={tuple(x.shape[-2:])}).")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError("the images contain NaN or infinite values; clean or mask them first.")
    return x.contiguous()
