"""Scattering + Shared Local Encoder (science.md §4): J=2 scattering of each RGB channel
(243 channels at 8×8 on CIFAR), BN without affine, a cascade of 1×1 convolutions with BN and
ReLU (an MLP shared by every 4×4-pixel window), then a linear classifier on the flattened map.

The model runs on images (it scatters them) or directly on stored features (B, 3, P, h, w)
from `explorer.features`, so training never recomputes the scattering.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from explorer.scattering import Scattering2D, scattering_paths

COLOURS = ("red", "green", "blue")


class InputChannel(NamedTuple):
    """What column c of W₁ reads: a colour and a scattering path."""
    colour: str
    order: int
    j1: Optional[int]
    theta1: Optional[int]
    j2: Optional[int]
    theta2: Optional[int]


class ScatteringSLE(nn.Module):
    def __init__(self, J: int = 2, L: int = 8, widths: tuple[int, ...] = (512, 512),
                 image_shape: tuple[int, int] = (32, 32), num_classes: int = 10):
        super().__init__()
        widths = tuple(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of integers ≥ 1, got {widths!r}.")
        self.J, self.L, self.widths = J, L, widths
        self.scattering = Scattering2D(J, image_shape, L)
        self.paths = scattering_paths(J, L)
        channels = len(COLOURS) * len(self.paths)
        h, w = self.scattering.output_shape
        self.input_norm = nn.BatchNorm2d(channels, affine=False)
        layers: list[nn.Module] = []
        previous = channels
        for width in widths:
            layers += [nn.Conv2d(previous, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            previous = width
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(previous * h * w, num_classes)

    @property
    def input_channels(self) -> list[InputChannel]:
        """Metadata of the columns of W₁, in order: colour-major, then path order."""
        return [InputChannel(colour, *path) for colour in COLOURS for path in self.paths]

    @property
    def first_layer_weight(self) -> torch.Tensor:
        """W₁ as (outputs, input channels); columns described by `input_channels`."""
        return self.encoder[0].weight[:, :, 0, 0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Scatter images (B, 3, H, W) in [0, 1] into (B, 3, P, h, w)."""
        return self.scattering(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: images (B, 3, H, W) or scattering features (B, 3, P, h, w) / (B, 3·P, h, w)."""
        if x.ndim == 4 and x.shape[1] == 3:
            x = self.features(x)
        if x.ndim == 5:
            x = x.flatten(1, 2)
        return self.head(self.encoder(self.input_norm(x)).flatten(1))
