"""Input checks shared by the analysis modules: messages name the parameter, its value and what is allowed.
A bad parameter raises `explorer.scattering.validation.ParameterError` (a ValueError), as in the engine."""
from __future__ import annotations

import numbers

import numpy as np

from explorer.scattering.paths import max_order_of
from explorer.scattering.validation import ParameterError, check_J_L


def check_image(image, name: str = "image", min_side: int = 2) -> np.ndarray:
    """A real, finite 2-D array (H, W), returned as a float64 copy-free view when possible."""
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be a numeric array of shape (H, W), got dtype {array.dtype}.")
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real; got a complex array (pass its .real or abs()).")
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W) (one grayscale image), got shape {array.shape}.")
    if min(array.shape) < min_side:
        raise ValueError(f"{name} of shape {array.shape} is too small: both sides must be ≥ {min_side}.")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; clean or mask them first.")
    return array


def check_images(images, name: str = "images") -> np.ndarray:
    """A real, finite stack (N, H, W) with N ≥ 2, as float64."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    array = np.asarray(images)
    if array.ndim != 3 or array.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, H, W) with N ≥ 2 images, got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must be a real numeric array, got dtype {array.dtype}.")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values; clean or mask them first.")
    return array


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be ≥ {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be ≤ {maximum}, got {value!r}.")
    return int(value)


def check_real(name: str, value, minimum: float | None = None, maximum: float | None = None,
               strict_minimum: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ParameterError(f"{name} must be a finite real number, got {value!r}.")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ParameterError(f"{name} must be {'>' if strict_minimum else '≥'} {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be ≤ {maximum}, got {value!r}.")
    return float(value)


def check_reals(name: str, values, minimum: float | None = None, maximum: float | None = None) -> np.ndarray:
    """A non-empty 1-D sequence of finite reals within [minimum, maximum]."""
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a sequence of numbers, got {values!r}.") from None
    if array.ndim != 1 or array.size == 0:
        raise ParameterError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ParameterError(f"{name} must be finite, got {values!r}.")
    if minimum is not None and array.min() < minimum:
        raise ParameterError(f"{name} must all be ≥ {minimum}, got {array.min()!r}.")
    if maximum is not None and array.max() > maximum:
        raise ParameterError(f"{name} must all be ≤ {maximum}, got {array.max()!r}.")
    return array


def as_float64(array) -> np.ndarray:
    """A numpy array or torch tensor as a float64 numpy array."""
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def check_output(S, J, L) -> tuple[np.ndarray, int, int, int]:
    """A scattering output (..., P, h, w) as float64, with J and L checked and its max_order read from P:
    (S, J, L, max_order)."""
    S = as_float64(S)
    J, L = check_J_L(J, L)
    if S.ndim < 3:
        raise ValueError(f"S must have shape (..., P, h, w), got shape {S.shape}.")
    return S, J, L, max_order_of(S.shape[-3], J, L)
