"""Scattering + CNN hybrids of Oyallon, Belilovsky & Zagoruyko (ICCV 2017), science.md §4.

Each hybrid reads the J = 2 scattering of each RGB channel (3 × 81 = 243 channels at 8×8 on
CIFAR), normalises it by a BatchNorm without affine, and learns the rest:

- `ScatLinear`: a linear classifier on the flattened 15 552 coefficients (Kymatio's example: about 70 %);
- `ScatMLP`: flatten → 2048 → ReLU → 2048 → BN → ReLU → classes (the talk: 85 %);
- `ScatWRN`: a 3×3 conv 243 → 16k, BN, ReLU, then 2 residual blocks of 32k and 2 of 64k, all at 8×8,
  BN → ReLU → average pool → linear. k = 8 is the authors' WRN 12-8: about 10.8 M parameters.

Like the SLE they train on stored scattering features (B, 3, P, h, w) (`forward`), and take images
through their own transform with `forward_images`. Their augmentation acts on the features: the flip
(a permutation of the paths' angles) and a shift of the maps by ``crop_padding`` positions, each
2^J pixels: at J = 2 a shift of one position is the authors' reflect-pad-4 image crop, up to the
transform's own error under a 4-pixel translation (`explorer.training.augment.random_shift_features`).
"""
from __future__ import annotations

import torch
from torch import nn

from explorer.scattering import Scattering2D, scattering_paths

from .wrn import wide_group

COLOURS = 3


class ScatteringHybrid(nn.Module):
    """What every hybrid shares: the transform, the input BN without affine, and the two entry points."""

    def __init__(self, J: int, L: int, image_shape, num_classes: int):
        super().__init__()
        self.J, self.L, self.num_classes = J, L, num_classes
        self.scattering = Scattering2D(J, tuple(image_shape), L)  # filters: non-persistent buffers
        self.paths = scattering_paths(J, L)
        self.channels = COLOURS * len(self.paths)
        self.map_shape = tuple(self.scattering.output_shape)
        # momentum=None: the running statistics are the plain average over every batch seen. The input's
        # distribution does not drift while training, and with the default momentum the running variance
        # (starting at 1, while coefficients are ~1e-3) needs hundreds of steps to forget its start: the
        # few steps of a 100-image run evaluated on a wrongly scaled input.
        self.input_norm = nn.BatchNorm2d(self.channels, affine=False, momentum=None)

    def forward_images(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of images (B, 3, H, W) in [0, 1]: scattered, then classified."""
        if images.ndim != 4 or images.shape[1] != COLOURS:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}.")
        return self.forward(self.scattering(images))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of stored scattering features, (B, 3, P, h, w) or flattened (B, 3·P, h, w)."""
        if features.ndim == 5 and features.shape[1] * features.shape[2] == self.channels:
            features = features.flatten(1, 2)
        elif features.ndim != 4 or features.shape[1] != self.channels:
            raise ValueError(
                f"features must be (B, 3, {self.channels // COLOURS}, h, w) or (B, {self.channels}, h, w), "
                f"got {tuple(features.shape)}; for images (B, 3, H, W) call forward_images.")
        return self.classify(self.input_norm(features))

    def classify(self, normalised: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ScatLinear(ScatteringHybrid):
    """Scattering + a linear classifier on the flattened normalised coefficients."""

    def __init__(self, J: int = 2, L: int = 8, image_shape: tuple[int, int] = (32, 32), num_classes: int = 10):
        super().__init__(J, L, image_shape, num_classes)
        self.head = nn.Linear(self.channels * self.map_shape[0] * self.map_shape[1], num_classes)

    def classify(self, normalised):
        return self.head(normalised.flatten(1))


class ScatMLP(ScatteringHybrid):
    """Scattering + flatten → hidden → ReLU → hidden → BN → ReLU → classes."""

    def __init__(self, J: int = 2, L: int = 8, hidden: int = 2048, image_shape: tuple[int, int] = (32, 32),
                 num_classes: int = 10):
        super().__init__(J, L, image_shape, num_classes)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden width must be an integer ≥ 1, got {hidden!r}.")
        self.hidden = hidden
        inputs = self.channels * self.map_shape[0] * self.map_shape[1]
        self.mlp = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def classify(self, normalised):
        return self.mlp(normalised.flatten(1))


class ScatWRN(ScatteringHybrid):
    """Scattering + the authors' WRN 12-8 at the scattering's resolution (science.md §4)."""

    def __init__(self, J: int = 2, L: int = 8, widen: int = 8, image_shape: tuple[int, int] = (32, 32),
                 num_classes: int = 10):
        super().__init__(J, L, image_shape, num_classes)
        if isinstance(widen, bool) or not isinstance(widen, int) or widen < 1:
            raise ValueError(f"widen factor k must be an integer ≥ 1, got {widen!r}.")
        self.widen = widen
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Sequential(nn.Conv2d(self.channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.groups = nn.Sequential(wide_group(widths[0], widths[1], 2, 1), wide_group(widths[1], widths[2], 2, 1))
        self.norm = nn.BatchNorm2d(widths[2])
        self.head = nn.Linear(widths[2], num_classes)

    def classify(self, normalised):
        h = self.groups(self.stem(normalised))
        return self.head(torch.relu(self.norm(h)).mean(dim=(-2, -1)))


# -- registration: one entry per hybrid, sharing the checks, the features and the augmentation ----------
MAX_SHIFT = 2  # positions: beyond that a shift is no longer a small translation of an 8×8 map


def _check_config(config: dict, dataset: str) -> None:
    from explorer.scattering.validation import check_J_L

    from .registry import check_int

    check_J_L(config["J"], config["L"])
    if list(config["image_shape"]) != [32, 32]:
        raise ValueError(f"{dataset} images are 32×32, got image_shape={config['image_shape']!r}")
    for key, name in (("hidden", "hidden width"), ("widen", "widen factor k")):
        if key in config:
            check_int(config[key], name, 1)


def check_feature_augment(augment: dict) -> None:
    """On features, crop_padding is a shift in map positions (2^J pixels each)."""
    if augment["crop_padding"] > MAX_SHIFT:
        raise ValueError(f"on scattering features augment crop_padding is a shift in map positions (4 pixels "
                         f"each at J=2): at most {MAX_SHIFT}, got {augment['crop_padding']}; the authors' "
                         f"4-pixel crop is 1.")
    if augment["padding_mode"] not in ("zeros", "reflect"):
        raise ValueError(f"augment padding_mode must be zeros or reflect, got {augment['padding_mode']!r}")


def feature_augmenter(augment: dict, model):
    from explorer.training.augment import feature_augmenter as make

    return make(augment, model.paths, model.L, next(model.parameters()).device)


# the authors' augmentation: a flip and the reflect-pad-4 crop, here a one-position shift of the maps
HYBRID_AUGMENT = {"crop_padding": 1, "padding_mode": "reflect", "flip": True}
# A linear classifier cannot use the shift: on 10 k CIFAR-10 images (8 epochs, lr 0.01) it reached
# 61.9 % with flip + shift against 64.9 % with the flip alone, fitting its training set less (65 % / 78 %).
LINEAR_AUGMENT = {"crop_padding": 0, "padding_mode": "reflect", "flip": True}


def _register() -> None:
    from .registry import CliOption, FormField, ModelSpec, register
    from .wrn import widen_field

    scattering_options = (CliOption("J", ("--J",), int, 2, "scattering scale J (default 2)"),
                          CliOption("L", ("--L",), int, 8, "number of angles L (default 8)"))
    common = {"check_config": _check_config, "check_augment": check_feature_augment,
              "default_schedule": "hybrid", "trains_on": "features", "default_augment": HYBRID_AUGMENT,
              "feature_params": lambda config: {"J": config["J"], "L": config["L"]},
              "augmenter": feature_augmenter}
    register(ModelSpec(
        name="scat_linear", constructor=ScatLinear,
        **{**common, "default_augment": LINEAR_AUGMENT, "default_schedule": "hybrid-linear"},
        describe=lambda c: f"scat_linear J={c.get('J')} L={c.get('L')}",
        summary="scattering + linear classifier (science.md §4)",
        description="Train a linear classifier on stored J=2 scattering features, normalised by a BN "
        "without affine (Kymatio's CIFAR-10 example: about 70 %).",
        cli_options=scattering_options))
    register(ModelSpec(
        name="scat_mlp", constructor=ScatMLP, **common,
        describe=lambda c: f"scat_mlp J={c.get('J')} L={c.get('L')} hidden={c.get('hidden')}",
        summary="scattering + MLP 2048-2048 (science.md §4)",
        description="Train flatten → 2048 → ReLU → 2048 → BN → ReLU → 10 on stored scattering features "
        "(the talk: 85 % on CIFAR-10).",
        cli_options=(*scattering_options,
                     CliOption("hidden", ("--hidden",), int, 2048, "hidden width (default 2048)")),
        form_fields=(FormField("hidden", "Hidden width (scat_mlp)", "int", 2048, "--hidden", bounds=(1, 8192)),)))
    register(ModelSpec(
        name="scat_wrn", constructor=ScatWRN, **common,
        describe=lambda c: f"scat_wrn J={c.get('J')} L={c.get('L')} 12-{c.get('widen')}",
        summary="scattering + wide ResNet 12-8 (science.md §4)",
        description="Train the authors' Scattering + WRN 12-8 on stored scattering features: a 3×3 conv "
        "243 → 16k, 2 residual blocks of 32k and 2 of 64k at 8×8, pooled, linear (10.8 M parameters for k=8).",
        cli_options=(*scattering_options,
                     CliOption("widen", ("--widen",), int, 8, "widen factor k (default 8)")),
        form_fields=(widen_field(),)))


_register()
