"""Data augmentation on the device, batched, drawn from a seeded torch.Generator.

Images: random crop of a padded image (pad 2 px, as in the paper) and horizontal flip, done as one
gather per batch, so every output pixel is exactly one pixel of the padded input.

Scattering features: a horizontal flip without recomputing the scattering. A left-right mirror maps
a wave vector at angle θ to π − θ, so with the explorer's convention (index ℓ ↦ θ = ℓπ/L,
counter-clockwise from the horizontal axis, y up) and |x ⋆ ψ_{θ+π}| = |x ⋆ ψ_θ| for real x, path
(j1, θ1, j2, θ2) becomes (j1, (L−θ1) mod L, j2, (L−θ2) mod L): `explorer.scattering.channels`
owns that permutation (and the rotations'). The maps themselves are mirrored
about the sampling grid: samples sit at pixels 2^J·k, and the image flip c ↦ W−1−c does not map
them onto each other, but c ↦ W−c (the flip followed by a one-pixel shift) does: k ↦ w−k. The
column k = 0, whose mirror lies just outside the image, takes its nearest sample (w−1). So the
flipped features are those of the image flipped and shifted by one pixel, up to its border column;
against the scattering of the plainly flipped image they differ like a one-pixel translation:
on CIFAR-10 test images about 5 % overall and 16 % on orders 1 and 2 (without the angle map, 49 %
and 58 %; with the plain flip of the 8×8 maps, 35 %). tests/test_training.py checks both.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from explorer.scattering import Path, channels

PADDING_MODES = ("zeros", "reflect")


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
              padding: int, mode: str = "zeros") -> torch.Tensor:
    """Crop each image of (B, C, H, W) at ``offsets`` (B, 2) = (row, column) in [0, 2·padding] of
    its padded copy, and mirror it left-right where ``flips`` (B,) is True. Exact: no
    interpolation, each output pixel is one pixel of the padded input."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}")
    B, C, H, W = images.shape
    if padding:
        images = F.pad(images, (padding,) * 4, mode="constant" if mode == "zeros" else "reflect")
    Hp, Wp = images.shape[-2:]
    rows = offsets[:, 0, None] + torch.arange(H, device=images.device)            # (B, H)
    cols = torch.arange(W, device=images.device).expand(B, W)
    cols = offsets[:, 1, None] + torch.where(flips[:, None], W - 1 - cols, cols)  # (B, W)
    index = (rows[:, :, None] * Wp + cols[:, None, :]).reshape(B, 1, H * W).expand(B, C, H * W)
    return images.reshape(B, C, Hp * Wp).gather(2, index).reshape(B, C, H, W)


def random_crop_flip(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator,
                     mode: str = "zeros") -> torch.Tensor:
    """Random pad-crop (uniform offsets) and flip (probability ½) of a batch, on its device."""
    B, device = images.shape[0], images.device
    offsets = torch.randint(0, 2 * padding + 1, (B, 2), generator=generator, device=device)
    flips = (torch.rand(B, generator=generator, device=device) < 0.5) if flip else \
        torch.zeros(B, dtype=torch.bool, device=device)
    return crop_flip(images, offsets, flips, padding, mode)


def mirrored_path(path: Path, L: int) -> Path:
    """The path that a left-right mirror of the image maps ``path`` to: θ ↦ (L − θ) mod L."""
    return channels.mirrored(Path(*path), L)


def flip_permutation(paths: list[Path], L: int) -> torch.Tensor:
    """Index p ↦ index of the mirrored path: features[..., perm, :, :] reads the mirrored paths."""
    return torch.from_numpy(channels.mirror_permutation([Path(*p) for p in paths], L))


def grid_mirror(width: int) -> torch.Tensor:
    """Column k ↦ w − k (k ≥ 1), 0 ↦ w − 1: the mirror about the sampling grid (module doc)."""
    index = width - torch.arange(width)
    index[0] = width - 1
    return index


def flip_features(features: torch.Tensor, permutation: torch.Tensor,
                  flips: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror scattering features (B, C, P, h, w) left-right, all of them or where ``flips`` (B,)."""
    device = features.device
    mirrored = channels.permute_channels(features, permutation, axis=-3)
    mirrored = mirrored.index_select(-1, grid_mirror(features.shape[-1]).to(device))
    if flips is None:
        return mirrored
    return torch.where(flips.view(-1, *([1] * (features.ndim - 1))), mirrored, features)


def random_flip_features(features: torch.Tensor, permutation: torch.Tensor,
                         generator: torch.Generator) -> torch.Tensor:
    flips = torch.rand(features.shape[0], generator=generator, device=features.device) < 0.5
    return flip_features(features, permutation, flips)


def random_shift_features(features: torch.Tensor, padding: int, generator: torch.Generator,
                          mode: str = "reflect") -> torch.Tensor:
    """The authors' image crop on stored features (B, C, P, h, w): pad the h×w maps by ``padding``
    positions and crop at a uniform offset. One position is 2^J pixels, so at J = 2 ``padding=1`` is
    the reflect-pad-4 crop of the images, up to the transform's own error under a 4-pixel translation."""
    B, device = features.shape[0], features.device
    offsets = torch.randint(0, 2 * padding + 1, (B, 2), generator=generator, device=device)
    flat = features.reshape(B, -1, *features.shape[-2:])
    shifted = crop_flip(flat, offsets, torch.zeros(B, dtype=torch.bool, device=device), padding, mode)
    return shifted.reshape(features.shape)


def feature_augmenter(augment: dict, paths, L: int, device) -> Callable:
    """A model's augmentation of stored scattering features: the flip (a permutation of the paths'
    angles and a mirrored grid), then the shift of ``augment["crop_padding"]`` positions."""
    steps = []
    if augment["flip"]:
        permutation = flip_permutation(paths, L).to(device)
        steps.append(lambda x, g: random_flip_features(x, permutation, g))
    if augment["crop_padding"]:
        padding, mode = augment["crop_padding"], augment["padding_mode"]
        steps.append(lambda x, g: random_shift_features(x, padding, g, mode))

    def apply(x, generator):
        for step in steps:
            x = step(x, generator)
        return x
    return apply
