"""Recover an image from its scattering coefficients by gradient descent (torch autograd, CPU).

    >>> result = reconstruct(image, J=4, max_order=2, steps=150)
    >>> result.image, result.losses, result.relative_error

The loss is the relative scattering distance ‖S_J x̂ − S_J x‖² / ‖S_J x‖², minimised from Gaussian noise
with the mean and standard deviation of x (`initial_image`). Order 1 loses the geometry once it has far fewer
coefficients than the image has pixels: on the 32×32 camera image, J = 4 keeps 33 paths × 2×2 = 132 numbers
at order 1 (pixel error 0.26 after 150 evaluations, a blur) and 417 × 4 = 1668 at order 2 (0.06, the
cameraman). At J = 3 (25 × 4×4 = 400 numbers for 1024 pixels) order 1 still recovers the image well (0.10
against 0.03).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explorer.scattering import Scattering2D
from explorer.scattering.validation import check_size_fits_J

from ._checks import check_image, check_int, check_real

METHODS = ("lbfgs", "adam")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.05}

Callback = Callable[[int, float, np.ndarray], bool | None]


@dataclass(frozen=True)
class Reconstruction:
    """What `reconstruct` returns.

    image: (H, W) float64, the point of lowest loss met; losses: (n,) the loss at each evaluation
    (L-BFGS line searches may evaluate trial points above the current best, so it need not be
    monotone); relative_error: ‖x̂ − x‖ / ‖x‖ in pixels; scattering_error: ‖S x̂ − S x‖ / ‖S x‖ (the
    square root of the best loss); evaluations: loss/gradient evaluations done; cancelled: True when
    the callback asked to stop; seconds: wall-clock time of the optimisation.
    """

    image: np.ndarray
    losses: np.ndarray
    relative_error: float
    scattering_error: float
    evaluations: int
    cancelled: bool
    seconds: float


class _Stop(Exception):
    """Raised inside the L-BFGS closure to end the optimisation (budget spent or cancelled)."""


def initial_image(image, seed: int = 0) -> np.ndarray:
    """Where `reconstruct` starts: Gaussian noise (seeded) with the mean and standard deviation of `image`,
    (H, W) float64."""
    x = check_image(image, min_side=4)
    seed = check_int("seed", seed, 0)
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(x.shape, generator=generator, dtype=torch.float64) * float(x.std()) + float(x.mean())
    return start.numpy()


def reconstruct(image, J: int, L: int = 8, max_order: int = 2, steps: int = 200,
                lr: float | None = None, seed: int = 0, callback: Callback | None = None, *,
                method: str = "lbfgs", callback_every: int = 5) -> Reconstruction:
    """An image x̂ (H, W) whose S_J coefficients match those of `image` (H, W).

    Minimises ‖S_J x̂ − S_J x‖² / ‖S_J x‖² (float64, CPU) from x̂0 = `initial_image(image, seed)`, with
    `steps` loss/gradient evaluations at most: L-BFGS with a strong-Wolfe line search (method="lbfgs",
    lr 1.0 by default, converges to ~1e-7 in 200 evaluations) or Adam (method="adam", lr 0.05 by default,
    one evaluation per step, slower to converge).

    `callback(step, loss, current_image)` is called every `callback_every` evaluations and at the end,
    with the evaluation count, the current best loss and the best image so far (a (H, W) copy); return
    False from it to stop early (the result then has cancelled=True and holds the best point met).

    Cost (measured on a quiet 2-core CPU, torch 2.13, float64): a 32×32 image with 200 evaluations takes
    ≈ 1.7 s for J = 3, order 2 (≈ 9 ms per evaluation), ≈ 0.7 s for J = 3, order 1, and ≈ 0.6–1 s for
    J = 2. On a CPU shared with other busy processes it was up to 10× slower.
    """
    x = check_image(image, min_side=4)
    check_size_fits_J(x.shape, J)
    steps = check_int("steps", steps, 1)
    seed = check_int("seed", seed, 0)
    callback_every = check_int("callback_every", callback_every, 1)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    lr = DEFAULT_LR[method] if lr is None else check_real("lr", lr, 0.0, strict_minimum=True)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable as callback(step, loss, image), got {callback!r}.")

    S = Scattering2D(J, x.shape, L, max_order)
    target_image = torch.from_numpy(np.ascontiguousarray(x))
    with torch.no_grad():
        target = S(target_image)
        scale = float((target ** 2).sum())
    if scale == 0:
        raise ValueError("image has zero scattering energy (an all-zero image): nothing to reconstruct.")
    start = torch.from_numpy(initial_image(x, seed))
    z = start.clone().requires_grad_(True)

    losses: list[float] = []
    best = {"loss": float("inf"), "image": start.numpy().copy()}
    state = {"cancelled": False}

    def evaluate() -> torch.Tensor:
        if len(losses) >= steps:
            raise _Stop
        loss = ((S(z) - target) ** 2).sum() / scale
        value = float(loss.detach())
        losses.append(value)
        if value < best["loss"]:
            best["loss"], best["image"] = value, z.detach().numpy().copy()
        n = len(losses)
        due = callback is not None and n % callback_every == 0
        if due and callback(n, best["loss"], best["image"].copy()) is False:
            state["cancelled"] = True
            raise _Stop
        return loss

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = evaluate()
        loss.backward()
        return loss

    began = time.perf_counter()
    try:
        if method == "adam":
            optimizer = torch.optim.Adam([z], lr=lr)
            while True:
                optimizer.step(closure)
        else:
            optimizer = torch.optim.LBFGS([z], lr=lr, max_iter=steps, max_eval=steps, history_size=20,
                                          tolerance_grad=1e-12, tolerance_change=1e-15,
                                          line_search_fn="strong_wolfe")
            while len(losses) < steps:
                before = len(losses)
                optimizer.step(closure)
                if len(losses) == before + 1:  # converged: L-BFGS returns at once
                    break
    except _Stop:
        pass
    seconds = time.perf_counter() - began
    if callback is not None and not state["cancelled"] and len(losses) % callback_every:
        callback(len(losses), best["loss"], best["image"].copy())

    result = best["image"]
    norm = float(np.linalg.norm(x))
    return Reconstruction(
        image=result,
        losses=np.asarray(losses),
        relative_error=float(np.linalg.norm(result - x) / norm) if norm > 0 else float("nan"),
        scattering_error=float(np.sqrt(best["loss"])),
        evaluations=len(losses),
        cancelled=state["cancelled"],
        seconds=seconds,
    )
