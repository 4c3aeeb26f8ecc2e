"""The non-linearities ρ of the regular-boundary CNN (science.md §3)."""
from __future__ import annotations

import math

import torch
from torch import nn

RHOS = ("relu", "relu_k", "sign_sqrt")


class ReLUk(nn.Module):
    """ReLU_k^K: ReLU on the first k = ⌊αK⌋ channels, identity on the others."""

    def __init__(self, width: int, alpha: float):
        super().__init__()
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1] (the fraction of channels with a ReLU), "
                             f"got {alpha!r}.")
        self.width, self.alpha = width, float(alpha)
        self.k = math.floor(self.alpha * width + 1e-9)  # ⌊αK⌋, robust to 0.3·10 = 2.9999…

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return x
        if self.k == self.width:
            return torch.relu(x)
        return torch.cat([torch.relu(x[:, :self.k]), x[:, self.k:]], dim=1)

    def extra_repr(self) -> str:
        return f"k={self.k} of K={self.width} (alpha={self.alpha})"


class SignSqrt(nn.Module):
    """ρ(x) = sign(x)(√|x| + 0.1). |x| is floored at 1e-8 inside the root so that the gradient
    stays finite at 0 (the value changes by at most 1e-4 there); computed in float32 at least,
    since 1e-8 underflows to 0 in float16 under mixed precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = torch.sign(wide) * (torch.sqrt(wide.abs().clamp_min(1e-8)) + 0.1)
        return y.to(x.dtype)


def make_rho(rho: str, width: int, alpha: float | None = None) -> nn.Module:
    if rho == "relu":
        return nn.ReLU()
    if rho == "relu_k":
        if alpha is None:
            raise ValueError("rho='relu_k' needs alpha, the fraction k/K of channels with a ReLU.")
        return ReLUk(width, alpha)
    if rho == "sign_sqrt":
        return SignSqrt()
    raise ValueError(f"unknown non-linearity rho={rho!r}; choose one of {', '.join(RHOS)}.")
