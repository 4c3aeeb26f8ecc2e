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

import torch
from torch import nn

from explorer.scattering import Path, Scattering2D, scattering_paths
from explorer.scattering.channels import Channel as InputChannel  # what column c of W₁ reads
from explorer.scattering.channels import colour_channels

COLOURS = ("red", "green", "blue")


def replacement_first_layer(current: torch.Tensor, new_weight, input_channels) -> torch.Tensor:
    """A copy of W₁ ``current`` (outputs, input channels) with ``new_weight`` put in: a full W₁ (also as a
    1×1 convolution's weight) or a mapping {(colour, Path): column} that replaces those columns only."""
    replacement = current.detach().clone()
    if isinstance(new_weight, Mapping):
        index = {(c.colour, c.path): i for i, c in enumerate(input_channels)}
        unknown = [key for key in new_weight if key not in index]
        if unknown:
            raise KeyError(f"not input channels of this model: {unknown[:3]}; keys are "
                           "(colour, Path) as in input_channels.")
        for key, column in new_weight.items():
            replacement[:, index[key]] = torch.as_tensor(column)
        return replacement
    new_weight = torch.as_tensor(new_weight)
    if tuple(new_weight.shape) not in (tuple(replacement.shape), (*replacement.shape, 1, 1)):
        raise ValueError(f"W₁ must have shape {tuple(replacement.shape)} (outputs, input channels), "
                         f"got {tuple(new_weight.shape)}.")
    return replacement.copy_(new_weight.reshape(replacement.shape))


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
        return colour_channels(self.paths, COLOURS)

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
        with torch.no_grad():
            replacement = replacement_first_layer(self.first_layer_weight, new_weight, self.input_channels)
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


# -- registration: what the CLI, the configuration, the trainer and the Runs page know of the SLE -------
def _check_config(config: dict, dataset: str) -> None:
    """The checks a user hits first, with messages naming the parameter (the constructor checks the rest)."""
    from explorer.scattering.validation import check_J_L

    from .registry import check_int

    widths = config["widths"]
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ValueError(f"widths must be a non-empty list of integers ≥ 1, got {widths!r}.")
    for width in widths:
        check_int(width, "every SLE width", 1)
    check_J_L(config["J"], config["L"])  # the scattering's own check: one error type for a bad J or L
    if list(config["image_shape"]) != [32, 32]:
        raise ValueError(f"{dataset} images are 32×32, got image_shape={config['image_shape']!r}")


def _check_augment(augment: dict) -> None:
    from .hybrids import check_feature_augment

    check_feature_augment(augment)  # crop_padding: a shift of the maps in positions (2^J pixels each)


def _augmenter(augment: dict, model: ScatteringSLE):
    """The flip of stored features (a permutation of the paths' angles and a mirrored grid), and the
    shift of the maps by ``crop_padding`` positions when asked (the hybrids' crop)."""
    from .hybrids import feature_augmenter

    return feature_augmenter(augment, model)


FORM_FEATURES = {"J": 2, "L": 8}  # what `explorer train sle` uses when the Runs page form gives no J or L


def _form_note(values: dict, dataset: str) -> str:
    """Whether the job must compute CIFAR-10 scattering features first (said before the click)."""
    if dataset != "cifar10":
        return ""  # the synthetic set's features are computed in memory
    from explorer.features import FeatureConfig

    J, L = FORM_FEATURES["J"], FORM_FEATURES["L"]
    missing = [split for split in ("train", "test")
               if not FeatureConfig("cifar10", split, J=J, L=L).folder.is_dir()]
    if not missing:
        return f"The SLE reuses the stored CIFAR-10 scattering features (J={J}, L={L})."
    return (f"The SLE trains on stored scattering features (J={J}, L={L}). None are stored yet for "
            f"the CIFAR-10 {' and '.join(missing)} split{'s' if len(missing) > 1 else ''}: this job "
            f"computes them first (about a minute on a CPU for both splits, 3.7 GB in the store), "
            f"or run `explorer scatter --J {J}` beforehand.")


def _register() -> None:
    from .registry import CliOption, FormField, ModelSpec, register

    register(ModelSpec(
        name="sle", constructor=ScatteringSLE, check_config=_check_config, check_augment=_check_augment,
        describe=lambda config: f"sle J={config.get('J')} L={config.get('L')} widths={config.get('widths')}",
        summary="scattering + Shared Local Encoder (science.md §4)",
        description="Train Scattering (J, L) + Shared Local Encoder on stored scattering features "
        "(computed once with a progress bar if missing, then reused).",
        default_schedule="sle", trains_on="features",
        feature_params=lambda config: {"J": config["J"], "L": config["L"]},
        # a flip only (the shipped runs); `augment={"crop_padding": 1, "padding_mode": "reflect"}` adds
        # the authors' 4-pixel crop as a one-position shift of the maps
        default_augment={"crop_padding": 0, "padding_mode": "zeros", "flip": True}, augmenter=_augmenter,
        cli_options=(
            CliOption("J", ("--J",), int, 2, "scattering scale J (default 2)"),
            CliOption("L", ("--L",), int, 8, "number of angles L (default 8)"),
            CliOption("widths", ("--widths",), int, [512, 512], "widths of the 1×1 encoder layers "
                      "(default 512 512)", nargs="+", metavar="W"),
        ),
        form_fields=(
            FormField("widths", "Encoder widths (sle)", "text", "512 512",
                      arguments=lambda text: ["--widths", *text.replace(",", " ").split()]),
        ),
        form_note=_form_note,
    ))


_register()
