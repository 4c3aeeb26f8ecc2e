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


# -- registration: what the CLI, the configuration, the trainer and the Runs page know of CNN13 ----------
def _check_config(config: dict, dataset: str) -> None:
    """The checks a user hits first, with messages naming the parameter (the constructor checks the rest)."""
    from .nonlinearities import RHOS
    from .registry import check_int

    check_int(config["width"], "width K", 1)
    alpha = config["alpha"]
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                              or not 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1] (the fraction k/K of channels with a "
                         f"ReLU), got {alpha!r}.")
    if config["rho"] not in RHOS:
        raise ValueError(f"unknown non-linearity rho={config['rho']!r}; choose one of "
                         f"{', '.join(RHOS)}.")
    if config["rho"] == "relu_k" and alpha is None:
        raise ValueError("rho='relu_k' needs alpha, the fraction k/K of channels with a ReLU.")
    if config["rho"] != "relu_k" and alpha is not None:
        raise ValueError(f"alpha only applies to rho='relu_k', not rho={config['rho']!r}.")


def _describe(config: dict) -> str:
    rho = config.get("rho")
    if rho == "relu_k":
        rho = f"relu_k α={config.get('alpha')}"
    return f"cnn13 K={config.get('width')} {rho}"


def _register() -> None:
    from .nonlinearities import RHOS
    from .registry import CliOption, FormField, ModelSpec, register

    register(ModelSpec(
        name="cnn13", constructor=CNN13, describe=_describe, check_config=_check_config,
        summary="the 13-layer regular-boundary CNN (science.md §3)",
        description="Train the 13-layer CNN of Oyallon (CVPR 2017): width K, non-linearity ρ in its 12 "
        "inner layers.",
        default_schedule="quick", trains_on="images", channels_last=True,
        # the paper's pad-2 crop and flip
        default_augment={"crop_padding": 2, "padding_mode": "zeros", "flip": True},
        cli_options=(
            CliOption("width", ("--width", "-K"), int, 32, "width K (default 32)"),
            CliOption("rho", ("--rho",), str, "relu", "inner non-linearity: relu, relu_k (ReLU on ⌊αK⌋ "
                      "channels) or sign_sqrt (sign(x)(√|x|+0.1)); default relu"),
            CliOption("alpha", ("--alpha",), float, None,
                      "for --rho relu_k: fraction k/K of channels with a ReLU, in [0, 1]"),
            CliOption("dropout", ("--dropout",), float, 0.4, "dropout rate (default 0.4)"),
        ),
        form_fields=(
            FormField("width", "Width K (cnn13)", "int", 32, "--width", bounds=(1, 512)),
            FormField("rho", "Non-linearity ρ (cnn13)", "select", "relu", "--rho", options=RHOS),
            FormField("alpha", "α = k/K for relu_k", "float", 0.5, "--alpha", bounds=(0.0, 1.0), step=0.05,
                      visible=lambda values: values.get("rho") == "relu_k"),
        ),
    ))


_register()
