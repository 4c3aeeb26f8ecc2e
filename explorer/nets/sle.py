"""Scattering + Shared Local Encoder (science.md §4): J=2 scattering of each RGB channel
(243 channels at 8×8 on CIFAR), BN without affine, a cascade of 1×1 convolutions with BN and
ReLU (an MLP shared by every 4×4-pixel window), then a linear classifier on the flattened map.

Inputs are named, never guessed from a shape: `forward` / `forward_features` take stored
scattering features (B, 3, P, h, w) from `explorer.features` (so training never recomputes the
scattering), `forward_images` takes images and scatters them with the model's own transform,
whose filters are non-persistent buffers (they move with `.to(device)` and stay out of the
state_dict, so stored runs load unchanged). W₁ is read by path with `weights_by_path()` and
replaced for a while with `replaced_first_layer(...)`.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from explorer.scattering import Path, Scattering2D, scattering_paths

COLOURS = ("red", "green", "blue")


class InputChannel(NamedTuple):
    """What column c of W₁ reads: a colour and a scattering path."""
    colour: str
    order: int
    j1: int | None
    theta1: int | None
    j2: int | None
    theta2: int | None

    @property
    def path(self) -> Path:
        """The scattering path this column reads, without its colour."""
        return Path(*self[1:])


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

    def weights_by_path(self) -> dict[tuple[str, Path], torch.Tensor]:
        """W₁'s columns (outputs,) keyed by (colour, Path), in the order of `input_channels`.
        Views of the live weight: detach or clone them to keep a copy."""
        w1 = self.first_layer_weight
        return {(c.colour, c.path): w1[:, i] for i, c in enumerate(self.input_channels)}

    @contextmanager
    def replaced_first_layer(self, new_weight: torch.Tensor | Mapping[tuple[str, Path], torch.Tensor]
                             ) -> Iterator[ScatteringSLE]:
        """``with model.replaced_first_layer(w):`` the model with W₁ replaced, the original put
        back bit for bit on exit (even on an exception). ``w`` is a full W₁ (outputs, input
        channels) or a mapping {(colour, Path): column} that replaces those columns only."""
        weight = self.encoder[0].weight
        w1 = self.first_layer_weight
        with torch.no_grad():
            replacement = w1.detach().clone()
            if isinstance(new_weight, Mapping):
                index = {(c.colour, c.path): i for i, c in enumerate(self.input_channels)}
                unknown = [key for key in new_weight if key not in index]
                if unknown:
                    raise KeyError(f"not input channels of this model: {unknown[:3]}; keys are "
                                   "(colour, Path) as in input_channels.")
                for key, column in new_weight.items():
                    replacement[:, index[key]] = torch.as_tensor(column)
            else:
                new_weight = torch.as_tensor(new_weight)
                if tuple(new_weight.shape) not in (tuple(w1.shape), tuple(weight.shape)):
                    raise ValueError(f"W₁ must have shape {tuple(w1.shape)} (outputs, input "
                                     f"channels), got {tuple(new_weight.shape)}.")
                replacement.copy_(new_weight.reshape(w1.shape))
            original = weight.detach().clone()
            weight.copy_(replacement.view_as(weight))
        try:
            yield self
        finally:
            with torch.no_grad():
                weight.copy_(original)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Scatter images (B, 3, H, W) in [0, 1] into features (B, 3, P, h, w)."""
        if images.ndim != 4 or images.shape[1] != len(COLOURS):
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}.")
        return self.scattering(images)

    def forward_images(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of images (B, 3, H, W) in [0, 1]: scattered, then classified."""
        return self.forward_features(self.features(images))

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of stored scattering features, (B, 3, P, h, w) or flattened (B, 3·P, h, w)."""
        channels = self.input_norm.num_features
        if features.ndim == 5 and features.shape[1] * features.shape[2] == channels:
            features = features.flatten(1, 2)
        elif features.ndim != 4 or features.shape[1] != channels:
            raise ValueError(
                f"features must be (B, 3, {channels // 3}, h, w) or (B, {channels}, h, w), got "
                f"{tuple(features.shape)}; for images (B, 3, H, W) call forward_images.")
        return self.head(self.encoder(self.input_norm(features)).flatten(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The model's call takes stored features (what it trains on): `forward_features`."""
        return self.forward_features(features)
