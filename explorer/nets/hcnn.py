"""The multiscale hierarchical CNN of Jacobsen, Oyallon, Mallat & Smeulders (2017), science.md §5.

A layer's output is x_j(v_old, v_new, u): besides the position u it has two attribute axes, the older
one (the previous layer's filter index, subsampled by 2) and the newest (this layer's filter index).
Each layer convolves jointly along space and the attributes, makes its filter index the newest
attribute and averages the oldest one out, so the tensor keeps the shape (B, A, F, H, W) with
F = ``filters`` and A = ⌈F/2⌉. The released CIFAR-10 model, reproduced here:

1. a 2-D layer: 3×3 conv 3 → F, BN, ELU → (B, F, H, W), the first attribute v1;
2. a 3-D layer over (v1, u): one (11, 3, 3) filter bank sliding along v1 with stride 2 → (B, A, F, H, W);
3. nine 4-D layers over (v_old, v_new, u), factored: a 3×3 spatial conv 1 → 2F applied to every attribute
   slice, BN, ELU, then a (7 × 11) conv 2F → F over the two attribute axes, stride 2 along both, BN, ELU;
   the oldest attribute is then averaged out. Spatial stride 2 at layers 4 and 8 (32 → 16 → 8).

The representation is averaged over space and both attributes, then one dense layer. No bias in the
convolutions (BN follows); zero padding everywhere. 360 522 parameters for F = 16: the paper's 0.36 M.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F_
from torch import nn

from .cnn13 import CIFAR10_MEAN, CIFAR10_STD

N_LAYERS = 11
BN_EPS = 1e-3  # the released (Keras) epsilon, safer than torch's 1e-5 for near-constant channels
SPATIAL_STRIDES = {4: 2, 8: 2}  # 1-based layer number → spatial stride (32 → 16 → 8)


def attribute_size(filters: int) -> int:
    """The older attribute's length: the previous filter index, subsampled by 2."""
    return (filters + 1) // 2


def hierarchical_conv(x: torch.Tensor, spatial_weight: torch.Tensor, attribute_weight: torch.Tensor,
                      spatial_stride: int = 1, attribute_stride: int = 2, between=None) -> torch.Tensor:
    """The factored multi-dimensional convolution of one 4-D layer, before its final normalisation.

    x (B, V1, V2, H, W); ``spatial_weight`` (C, 1, k, k) slides along space the same way at every
    attribute position; ``between`` (a pointwise map of the (B, C, V1·V2, H', W') result, e.g. BN + ELU;
    None: the identity) is applied; then ``attribute_weight`` (F, C, k1, k2) slides along (V1, V2) the
    same way at every position. Zero padding of half the kernel on every axis. Returns
    (B, F, V1', V2', H', W'). With ``between=None`` this is the 4-D convolution
    Σ_v x(u − v_u, a − v_a) K(v_u, v_a) with the rank-C kernel K_f = Σ_c spatial_c ⊗ attribute_{f,c}.

    Both steps are 3-D convolutions whose kernels are flat along the other step's axes, so the channels
    stay next to the batch throughout and no step copies the tensor into another layout (a permute to
    2-D convolutions cost a third more time on the CPU).
    """
    batch, v1, v2, height, width = x.shape
    k = spatial_weight.shape[-1]
    h = F_.conv3d(x.reshape(batch, 1, v1 * v2, height, width), spatial_weight.unsqueeze(2),
                  stride=(1, spatial_stride, spatial_stride), padding=(0, k // 2, k // 2))
    if between is not None:
        h = between(h)
    channels, _, height, width = h.shape[1:]
    k1, k2 = attribute_weight.shape[-2:]
    h = F_.conv3d(h.reshape(batch, channels, v1, v2, height * width), attribute_weight.unsqueeze(-1),
                  stride=(attribute_stride, attribute_stride, 1), padding=(k1 // 2, k2 // 2, 0))
    filters, out1, out2 = h.shape[1:4]
    return h.reshape(batch, filters, out1, out2, height, width)


class PlanarLayer(nn.Module):
    """Layer 1: 3×3 conv 3 → F, BN, ELU. (B, 3, H, W) → (B, F, H, W)."""

    def __init__(self, filters: int):
        super().__init__()
        self.conv = nn.Conv2d(3, filters, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, x):
        return F_.elu(self.norm(self.conv(x)))


class VolumeLayer(nn.Module):
    """Layer 2: F filters (k_new, 3, 3) sliding along (v1, u), stride 2 along v1.
    (B, V1, H, W) → (B, ⌈V1/2⌉, F, H, W).

    Computed as a 2-D convolution whose input channels are the k_new taps along v1 (each output position's
    window): on this project's CPU, torch 2.13's float32 `conv3d` gives a wrong weight gradient for this
    shape (off by half its size against float64), and the training diverged within a few steps."""

    def __init__(self, filters: int, kernel_new: int):
        super().__init__()
        self.kernel_new = kernel_new
        self.conv = nn.Conv3d(1, filters, (kernel_new, 3, 3), bias=False)  # weights only, (F, 1, k, 3, 3)
        self.norm = nn.BatchNorm3d(filters, eps=BN_EPS)

    def forward(self, x):
        batch, _, height, width = x.shape
        k = self.kernel_new
        windows = F_.pad(x, (0, 0, 0, 0, k // 2, k // 2)).unfold(1, k, 2)  # (B, V1', H, W, k)
        positions = windows.shape[1]
        windows = windows.permute(0, 1, 4, 2, 3).reshape(batch * positions, k, height, width)
        h = F_.conv2d(windows, self.conv.weight.squeeze(1), padding=1)  # (B·V1', F, H, W)
        h = h.reshape(batch, positions, -1, height, width).transpose(1, 2)  # (B, F, V1', H, W) for the BN
        return F_.elu(self.norm(h)).transpose(1, 2)


class HierarchicalLayer(nn.Module):
    """A factored 4-D layer (layers 3–11): (B, V1, V2, H, W) → (B, ⌈V2/2⌉, F, H', W'); the oldest
    attribute V1 (after its stride) is averaged out and the filter index becomes the newest."""

    def __init__(self, filters: int, kernel_old: int, kernel_new: int, spatial_stride: int = 1):
        super().__init__()
        self.spatial_stride = spatial_stride
        self.spatial = nn.Conv2d(1, 2 * filters, 3, bias=False)  # weights only: applied by hierarchical_conv
        self.spatial_norm = nn.BatchNorm2d(2 * filters, eps=BN_EPS)
        self.attribute = nn.Conv2d(2 * filters, filters, (kernel_old, kernel_new), bias=False)
        self.attribute_norm = nn.BatchNorm2d(filters, eps=BN_EPS)

    def joint(self, x: torch.Tensor) -> torch.Tensor:
        """Before the average: (B, F, V1', V2', H', W'), three attributes (V1', V2', F)."""
        h = hierarchical_conv(x, self.spatial.weight, self.attribute.weight, self.spatial_stride, 2,
                              between=lambda t: F_.elu(self.spatial_norm(t.flatten(3))).view_as(t))
        batch, filters, v1, v2, height, width = h.shape
        # the BN of F channels, each over the batch, both attributes and space
        h = self.attribute_norm(h.reshape(batch, filters, v1 * v2, height * width))
        return F_.elu(h).reshape(batch, filters, v1, v2, height, width)

    def forward(self, x):
        return self.joint(x).mean(dim=2).transpose(1, 2)  # average out V1'; (B, V2', F, H', W')


class HierarchicalCNN(nn.Module):
    """The released hierarchical CNN on images (B, 3, H, W) in [0, 1], normalised by CIFAR-10's statistics."""

    def __init__(self, filters: int = 16, kernel_old: int = 7, kernel_new: int = 11, num_classes: int = 10):
        super().__init__()
        for value, name in ((filters, "filters"), (kernel_old, "kernel_old"), (kernel_new, "kernel_new")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}.")
        for value, name in ((kernel_old, "kernel_old"), (kernel_new, "kernel_new")):
            if value % 2 == 0:
                raise ValueError(f"{name} must be odd (a centred attribute filter), got {value}.")
        self.filters, self.kernel_old, self.kernel_new = filters, kernel_old, kernel_new
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
        self.layers = nn.ModuleList([PlanarLayer(filters), VolumeLayer(filters, kernel_new)])
        for number in range(3, N_LAYERS + 1):
            self.layers.append(HierarchicalLayer(filters, kernel_old, kernel_new, SPATIAL_STRIDES.get(number, 1)))
        self.head = nn.Linear(filters, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 32, 32) in [0, 1]. Returns the logits (B, classes)."""
        h = self._trunk(x)
        return self.head(h.mean(dim=(1, 3, 4)))  # over the older attribute and space

    def inner_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 11 layers' outputs: (B, F, H, W) for layer 1 (one attribute), then (B, A, F, H, W)
        (older attribute, newest attribute, space). In inference mode: `explorer.nets.extract`."""
        inner: list[torch.Tensor] = []
        self._trunk(x, inner)
        return inner

    def _trunk(self, x, inner: list | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(x.shape)}.")
        h = (x - self.mean) / self.std
        for layer in self.layers:
            h = layer(h)
            if inner is not None:
                inner.append(h)
        return h


# -- registration ---------------------------------------------------------------------------------------
def _check_config(config: dict, dataset: str) -> None:
    from .registry import check_int

    check_int(config["filters"], "filters", 1)
    for key in ("kernel_old", "kernel_new"):
        check_int(config[key], key, 1)
        if config[key] % 2 == 0:
            raise ValueError(f"{key} must be odd (a centred attribute filter), got {config[key]}.")


def _describe(config: dict) -> str:
    return f"hcnn F={config.get('filters')} k={config.get('kernel_old')}×{config.get('kernel_new')}"


def _register() -> None:
    from .registry import CliOption, FormField, ModelSpec, register

    register(ModelSpec(
        name="hcnn", constructor=HierarchicalCNN, describe=_describe, check_config=_check_config,
        summary="the multiscale hierarchical CNN (science.md §5)",
        description="Train the multiscale hierarchical CNN of Jacobsen, Oyallon, Mallat & Smeulders: 11 layers "
        "convolving along space and two attribute axes (0.36 M parameters for F = 16).",
        default_schedule="hcnn-quick", trains_on="images",
        # the released model's ±12.5 % shifts (4 pixels) and flips
        default_augment={"crop_padding": 4, "padding_mode": "zeros", "flip": True},
        cli_options=(
            CliOption("filters", ("--filters",), int, 16, "filters per layer F (default 16)"),
            CliOption("kernel_old", ("--kernel-old",), int, 7,
                      "attribute filter length along the older attribute (default 7)"),
            CliOption("kernel_new", ("--kernel-new",), int, 11,
                      "attribute filter length along the newest attribute (default 11)"),
        ),
        form_fields=(FormField("filters", "Filters F (hcnn)", "int", 16, "--filters", bounds=(2, 64)),),
    ))


_register()
