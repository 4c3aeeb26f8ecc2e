"""Wide residual networks (Zagoruyko & Komodakis, 2016): the WRN 16-8 baseline on raw pixels of
science.md §4, and the residual blocks that Scattering + WRN 12-8 (`explorer.nets.hybrids`) stacks.

A block is pre-activation: BN → ReLU → 3×3 conv → BN → ReLU → 3×3 conv, plus the input (through a
1×1 conv when the width or the stride changes). WRN d-k: a 3×3 stem of 16 channels, then 3 groups of
(d − 4)/6 blocks of widths 16k, 32k, 64k at strides 1, 2, 2, then BN → ReLU → global average pool →
linear. WRN 16-8: 2 blocks per group, widths 128, 256, 512, about 11.0 M parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from .cnn13 import CIFAR10_MEAN, CIFAR10_STD


class WideBlock(nn.Module):
    """One pre-activation residual block ``in_width → width`` at ``stride``."""

    def __init__(self, in_width: int, width: int, stride: int = 1):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_width)
        self.conv1 = nn.Conv2d(in_width, width, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(in_width, width, 1, stride=stride, bias=False)
                         if in_width != width or stride != 1 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm1(x))
        skip = x if self.shortcut is None else self.shortcut(h)  # the projection sees the normalised input
        h = self.conv2(torch.relu(self.norm2(self.conv1(h))))
        return h + skip


def wide_group(in_width: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` blocks of ``width``; the first one changes width and stride."""
    return nn.Sequential(*[WideBlock(in_width if i == 0 else width, width, stride if i == 0 else 1)
                           for i in range(blocks)])


def check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n ≥ 1 (10, 16, 22, 28, …), got {depth!r}.")
    return (depth - 4) // 6


class WideResNet(nn.Module):
    """WRN depth-widen on images (B, 3, H, W) in [0, 1], normalised by CIFAR-10's channel statistics."""

    def __init__(self, depth: int = 16, widen: int = 8, num_classes: int = 10):
        super().__init__()
        blocks = check_depth(depth)
        if isinstance(widen, bool) or not isinstance(widen, int) or widen < 1:
            raise ValueError(f"widen factor k must be an integer ≥ 1, got {widen!r}.")
        self.depth, self.widen = depth, widen
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.groups = nn.Sequential(wide_group(16, widths[0], blocks, 1),
                                    wide_group(widths[0], widths[1], blocks, 2),
                                    wide_group(widths[1], widths[2], blocks, 2))
        self.norm = nn.BatchNorm2d(widths[2])
        self.head = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.groups(self.stem((x - self.mean) / self.std))
        return self.head(torch.relu(self.norm(h)).mean(dim=(-2, -1)))


# -- registration -------------------------------------------------------------------------------------
def _check_config(config: dict, dataset: str) -> None:
    from .registry import check_int

    check_depth(config["depth"])
    check_int(config["widen"], "widen factor k", 1)


def widen_field():
    """The Runs page's widen-factor field, one definition for every wide model (a field name means one thing)."""
    from .registry import FormField

    return FormField("widen", "Widen factor k (wrn, scat_wrn)", "int", 8, "--widen", bounds=(1, 16))


def _register() -> None:
    from .registry import CliOption, FormField, ModelSpec, register

    register(ModelSpec(
        name="wrn", constructor=WideResNet, check_config=_check_config,
        describe=lambda config: f"wrn {config.get('depth')}-{config.get('widen')}",
        summary="wide residual network on raw pixels (the WRN 16-8 baseline of science.md §4)",
        description="Train a wide residual network WRN depth-k on images: the baseline that "
        "Scattering + WRN 12-8 is compared with (small-sample protocol).",
        default_schedule="hybrid", trains_on="images", channels_last=True,
        # the authors' reflect-pad-4 crop and flip
        default_augment={"crop_padding": 4, "padding_mode": "reflect", "flip": True},
        cli_options=(
            CliOption("depth", ("--depth",), int, 16, "depth 6n+4 (default 16)"),
            CliOption("widen", ("--widen",), int, 8, "widen factor k (default 8)"),
        ),
        form_fields=(
            FormField("depth", "Depth (wrn)", "int", 16, "--depth", bounds=(10, 40), step=6),
            widen_field(),
        ),
    ))


_register()
