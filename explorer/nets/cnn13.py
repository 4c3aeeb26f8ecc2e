"""The 13-layer regular-boundary CNN of Oyallon (CVPR 2017), science.md §3.

conv 3×3 3→K → BN → ReLU, then 12 convs 3×3 K→K (3 groups × 2 blocks × 2 convs), each → BN → ρ;
stride 2 at the first conv of groups 2 and 3 (32 → 16 → 8); no bias, BN without affine, no
residual, no max-pooling; dropout 0.4 after every second conv (training only); 8×8 average
pooling; linear K → classes. Parameters: 28 k (K=16), 112 k (K=32), 445 k (K=64).
"""
from __future__ import annotations

import torch
from torch import nn

from .nonlinearities import make_rho

# CIFAR-10 per-channel statistics, for the input normalisation.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
N_INNER = 12  # depth n = 2..13 are the outputs of these non-linearities


class CNN13(nn.Module):
    def __init__(self, width: int = 32, rho: str = "relu", alpha: float | None = None,
                 num_classes: int = 10, dropout: float = 0.4):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width K must be an integer ≥ 1, got {width!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.width, self.rho_name, self.alpha = width, rho, alpha
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width, affine=False), nn.ReLU())
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.rhos = nn.ModuleList()
        for i in range(N_INNER):
            stride = 2 if i in (4, 8) else 1  # first conv of groups 2 and 3
            self.convs.append(nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(width, affine=False))
            self.rhos.append(make_rho(rho, width, alpha))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 32, 32) in [0, 1]. Returns the logits (B, classes)."""
        return self.head(self._trunk(x).mean(dim=(-2, -1)))

    def inner_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the 12 inner non-linearities (depth 2..13), each (B, K, h, w), computed
        in the module's current mode. For inference-mode extraction (BN running statistics, no
        dropout, mode restored), batch by batch, use `explorer.nets.extract`."""
        inner: list[torch.Tensor] = []
        self._trunk(x, inner)
        return inner

    def _trunk(self, x: torch.Tensor, inner: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The last feature map (B, K, 8, 8); appends each inner map to `inner` when given."""
        h = self.stem((x - self.mean) / self.std)
        for i, (conv, norm, rho) in enumerate(zip(self.convs, self.norms, self.rhos)):
            h = rho(norm(conv(h)))
            if inner is not None:
                inner.append(h)
            if i % 2 == 1:  # after every second conv
                h = self.dropout(h)
        return h
