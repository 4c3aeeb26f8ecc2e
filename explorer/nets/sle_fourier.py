"""An SLE built with the structure (issue 12): the Scattering + SLE of `sle.py` whose first layer W₁ is
parametrised in angular Fourier, with only the angular frequencies |ω| ≤ B ("band") kept.

W₁ is the real inverse DFT, along the angle axes, of learnable coefficients at the kept frequencies,
written in its real form (for 1 ≤ ω < L/2 the complex c_ω and c_−ω = conj(c_ω) are the two real numbers of
a cosine and a sine; ω = 0 and ω = L/2 are real), with an orthonormal basis, so that the coefficients'
squared norm is W₁'s energy (weight decay acts on W₁ as in the free SLE):

- order 0 (one per colour): free;
- order 1, for each (output k, colour, j1): w(θ1) = Σ_{|ω|≤B} c_ω e^{2iπωθ1/L}, 2B + 1 real numbers (L at
  B = L/2);
- order 2, for each (k, colour, j1 < j2): a rotation of the image by π/L moves θ1 and θ2 together, so the
  weights are parametrised on the re-indexed axes (θ1, δ = θ2 − θ1 mod L): frequencies |ω_θ1| ≤ B along θ1
  and a free function of δ, then mapped back to (θ1, θ2). On the raw axes their spectrum lies within
  |ω_θ1 + ω_θ2| ≤ B (mod L), the band around the line where science.md §4 says learned invariance shows.

The per-order parts are joined into the (outputs, 3·P) matrix by `explorer.scattering.merge_orders` with
`input_channels` (the free SLE's column order), built at each forward and used by a 1×1 convolution.

At B = 0, W₁ is invariant under every `rotation_permutation(input_channels, L, k)`: W₁[:, perm] == W₁.
For the whole encoder to be invariant, the input normalisation must not undo it: the free SLE's input
BatchNorm (no affine) has one mean and variance per channel, which differ along θ after training on
CIFAR-10 (horizontal and vertical edges are more common than oblique ones). Here the statistics are shared
by each rotation orbit of channels (order 1: all θ1 of a (colour, j1); order 2: all θ1 of a (colour, j1,
j2, δ); order 0 alone), so the normalisation commutes with rotations by multiples of π/L for every B. At
B = 0 the encoder's map of an image turned by 90° is then that of the image, turned (the local encoder is
exactly rotation-invariant, up to the engine's rounding); the logits are not, as in the free SLE, because
the classifier reads the flattened 8×8 map position by position. The mirror flip augmentation of the SLE
applies unchanged (a mirror maps orbits onto orbits). A consequence worth knowing: the synthetic set's two
classes (vertical and horizontal stripes) are one 90° turn apart, so at B = 0 each window's code is the same
for both and only the classifier's spatial reading is left (measured once, widths [8], L = 4, 64 images,
3 epochs: 0.59 test accuracy at B = 0, 0.81 at B = 1, 1.0 for the free SLE).

W₁'s parameter count, K · 3 · (1 + J·n + J(J−1)/2 · n · L) with n = min(2B + 1, L) (`first_layer_parameters`),
for J = 2, L = 8, widths (512, 512):

| W₁ | parameters |
| --- | --- |
| sle_fourier B = 0 | 16,896 (11 per output and colour) |
| sle_fourier B = 1 | 47,616 (31) |
| free SLE | 124,416 (81) |

The rest of the network is the free SLE's (second layer 262,144, head 327,690, BN 2,048 for widths
(512, 512)). `replaced_first_layer` works as in the free SLE: the replacement (any matrix, in the band or
not) is used instead of the parametrised W₁ until the block exits; the coefficients are never touched.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from explorer.scattering import merge_orders

from .sle import COLOURS, ScatteringSLE, replacement_first_layer


def kept_frequencies(L: int, band: int) -> int:
    """n = min(2B + 1, L): how many real numbers a real function of θ with |ω| ≤ B takes."""
    return min(2 * band + 1, L)


def first_layer_parameters(J: int, L: int, outputs: int, band: int | None = None, colours: int = 3) -> int:
    """W₁'s parameter count: free (band None, the SLE) or with angular frequencies |ω| ≤ band."""
    pairs = J * (J - 1) // 2
    if band is None:
        return outputs * colours * (1 + J * L + pairs * L * L)
    n = kept_frequencies(L, band)
    return outputs * colours * (1 + J * n + pairs * n * L)


def real_fourier_basis(L: int, band: int) -> torch.Tensor:
    """(n, L) orthonormal rows spanning the real functions of θ ∈ {0..L−1} with frequencies |ω| ≤ band:
    1/√L, then √(2/L)·cos and √(2/L)·sin of 2πωθ/L for 1 ≤ ω < L/2, and (−1)^θ/√L for ω = L/2."""
    theta = torch.arange(L, dtype=torch.float64)
    rows = [torch.full((L,), 1 / math.sqrt(L), dtype=torch.float64)]
    for omega in range(1, band + 1):
        angle = 2 * math.pi * omega * theta / L
        if 2 * omega == L:
            rows.append(torch.cos(angle) / math.sqrt(L))
        else:
            rows += [torch.cos(angle) * math.sqrt(2 / L), torch.sin(angle) * math.sqrt(2 / L)]
    return torch.stack(rows).float()


class FourierFirstLayer(nn.Module):
    """W₁ (outputs, 3·P) from its angular-Fourier coefficients, as a 1×1 convolution. `weight` is W₁ as
    a (outputs, 3·P, 1, 1) tensor, built from the coefficients (with their gradients) at each call."""

    def __init__(self, input_channels: list, J: int, L: int, outputs: int, band: int):
        super().__init__()
        self.input_channels, self.J, self.L, self.band = list(input_channels), J, L, band
        pairs, n, colours = J * (J - 1) // 2, kept_frequencies(L, band), len(COLOURS)
        self.order0 = nn.Parameter(torch.empty(outputs, colours))
        self.order1 = nn.Parameter(torch.empty(outputs, colours, J, n))  # (k, c, j1, frequency of θ1)
        self.order2 = nn.Parameter(torch.empty(outputs, colours, pairs, n, L))  # (…, pair, freq of θ1, δ)
        # Not in the state_dict: they follow from (L, band), which the run's configuration holds.
        self.register_buffer("basis", real_fourier_basis(L, band), persistent=False)
        theta = torch.arange(L)
        self.register_buffer("delta", (theta[None, :] - theta[:, None]) % L, persistent=False)  # [θ1, θ2]
        # The free SLE's initialisation (a Conv2d's): uniform within ±1/√fan-in, here the parametrisation's.
        bound = 1 / math.sqrt(max(1, self.parameter_count() // outputs))
        for p in (self.order0, self.order1, self.order2):
            nn.init.uniform_(p, -bound, bound)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in (self.order0, self.order1, self.order2))

    def parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W₁ per order, as `split_orders(W1, input_channels, axis=-1)` gives it: (k, 3), (k, 3, J, L),
        (k, 3, J(J−1)/2, L, L)."""
        s1 = torch.einsum("kcjm,mt->kcjt", self.order1, self.basis)
        by_delta = torch.einsum("kcpmd,mt->kcptd", self.order2, self.basis)  # (…, θ1, δ)
        rows = torch.arange(self.L, device=self.delta.device)[:, None]
        s2 = by_delta[..., rows, self.delta]  # [θ1, θ2] = [θ1, (θ2 − θ1) mod L]
        return self.order0, s1, s2

    @property
    def matrix(self) -> torch.Tensor:
        return merge_orders(self.parts(), self.input_channels, axis=-1)

    @property
    def weight(self) -> torch.Tensor:
        return self.matrix[:, :, None, None]

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        weight = self.matrix if weight is None else weight
        return F.conv2d(x, weight[:, :, None, None].to(x.dtype))


class OrbitBatchNorm(nn.BatchNorm2d):
    """BatchNorm without affine whose mean and variance are shared by each orbit of channels under
    rotations by multiples of π/L (`orbit[c]`: the orbit of channel c). Same buffers as the free SLE's
    input norm (one running mean and variance per channel, equal along an orbit)."""

    def __init__(self, orbit: torch.Tensor, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(len(orbit), eps=eps, momentum=momentum, affine=False)
        orbit = torch.as_tensor(orbit, dtype=torch.long)
        self.register_buffer("orbit", orbit, persistent=False)
        self.register_buffer("orbit_size", torch.bincount(orbit).float(), persistent=False)

    def _orbit_mean(self, per_channel: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(len(self.orbit_size), dtype=per_channel.dtype, device=per_channel.device)
        return (total.index_add(0, self.orbit, per_channel) / self.orbit_size.to(per_channel.dtype))[self.orbit]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (B, {self.num_features}, h, w), got {tuple(x.shape)}.")
        if self.training:
            dims = (0, 2, 3)
            mean = self._orbit_mean(x.mean(dims))
            var = self._orbit_mean((x - mean[:, None, None]).square().mean(dims))
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                count = (x.numel() // x.shape[1]) * self.orbit_size[self.orbit]
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps)


def rotation_orbits(input_channels: list, L: int) -> torch.Tensor:
    """orbit[c]: the index of channel c's orbit under θ ↦ θ + k (θ1 and θ2 together)."""
    keys: dict[tuple, int] = {}
    orbit = []
    for c in input_channels:
        delta = (c.theta2 - c.theta1) % L if c.order == 2 else None
        orbit.append(keys.setdefault((c.colour, c.order, c.j1, c.j2, delta), len(keys)))
    return torch.tensor(orbit, dtype=torch.long)


class FourierSLE(ScatteringSLE):
    """Scattering + SLE with W₁ band-limited in angular Fourier (|ω| ≤ band) and the input normalisation
    shared by rotation orbits (module docstring). Inputs, outputs and W₁'s accessors as in `ScatteringSLE`."""

    def __init__(self, J: int = 2, L: int = 8, widths: tuple[int, ...] = (512, 512), band: int = 0,
                 image_shape: tuple[int, int] = (32, 32), num_classes: int = 10):
        super().__init__(J, L, widths, image_shape, num_classes)
        if isinstance(band, bool) or not isinstance(band, int) or not 0 <= band <= L // 2:
            raise ValueError(f"band B must be between 0 and L/2 = {L // 2} (an integer), got {band!r}.")
        self.band = band
        channels = self.input_channels
        self.input_norm = OrbitBatchNorm(rotation_orbits(channels, L))
        self.encoder[0] = FourierFirstLayer(channels, J, L, self.widths[0], band)
        self._replacement: torch.Tensor | None = None

    @property
    def first_layer_weight(self) -> torch.Tensor:
        """W₁ as (outputs, input channels), built from the coefficients (a new tensor with their
        gradients, or the replacement inside `replaced_first_layer`)."""
        if self._replacement is not None:
            return self._replacement
        return self.encoder[0].matrix

    def first_layer_parameter_count(self) -> int:
        """The number of learnable numbers W₁ is made of."""
        return self.encoder[0].parameter_count()

    def weights_by_path(self):
        """W₁'s columns (outputs,) keyed by (colour, Path), in the order of `input_channels`. Built from
        the coefficients: changing them does not change the model (use `replaced_first_layer`)."""
        return super().weights_by_path()

    @contextmanager
    def replaced_first_layer(self, new_weight: torch.Tensor | Mapping) -> Iterator[FourierSLE]:
        """``with model.replaced_first_layer(w):`` the model with W₁ replaced by ``w`` (a full W₁
        (outputs, input channels), or {(colour, Path): column} for some columns), which need not be in the
        band; the coefficients are untouched, and the parametrised W₁ is back on exit."""
        with torch.no_grad():
            replacement = replacement_first_layer(self.encoder[0].matrix, new_weight, self.input_channels)
        previous, self._replacement = self._replacement, replacement
        try:
            yield self
        finally:
            self._replacement = previous

    def encode_features(self, features: torch.Tensor) -> torch.Tensor:
        """The encoder's map (B, widths[-1], h, w) of stored features: the local encoding the classifier
        reads, rotation-invariant position by position at band 0."""
        return self._encode(self._flat_features(features))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_features(self.features(images))

    def _flat_features(self, features: torch.Tensor) -> torch.Tensor:
        channels = self.input_norm.num_features
        if features.ndim == 5 and features.shape[1] * features.shape[2] == channels:
            return features.flatten(1, 2)
        if features.ndim != 4 or features.shape[1] != channels:
            raise ValueError(
                f"features must be (B, 3, {channels // 3}, h, w) or (B, {channels}, h, w), got "
                f"{tuple(features.shape)}; for images (B, 3, H, W) call forward_images.")
        return features

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder[0](self.input_norm(x), self._replacement)
        return self.encoder[1:](x)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of stored scattering features, (B, 3, P, h, w) or flattened (B, 3·P, h, w)."""
        return self.head(self.encode_features(features).flatten(1))


# -- registration: the SLE's pieces (features, checks, flip augmentation, form), plus the band ---------------
def _check_config(config: dict, dataset: str) -> None:
    from . import sle

    sle._check_config(config, dataset)
    band, L = config["band"], config["L"]
    if isinstance(band, bool) or not isinstance(band, int) or not 0 <= band <= L // 2:
        raise ValueError(f"band B must be between 0 and L/2 = {L // 2} (an integer), got {band!r}.")


def _describe(config: dict) -> str:
    return (f"sle_fourier B={config.get('band')} J={config.get('J')} L={config.get('L')} "
            f"widths={config.get('widths')}")


def _register() -> None:
    from . import sle
    from .registry import CliOption, FormField, ModelSpec, get, register

    base = get("sle")
    register(ModelSpec(
        name="sle_fourier", constructor=FourierSLE, check_config=_check_config,
        check_augment=base.check_augment, describe=_describe,
        summary="scattering + SLE with W₁ band-limited in angular Fourier (|ω| ≤ B)",
        description="Train Scattering (J, L) + Shared Local Encoder whose first layer keeps only the angular "
        "frequencies |ω| ≤ B (exactly rotation-invariant at B = 0), on the SLE's stored scattering features.",
        default_schedule=base.default_schedule, trains_on=base.trains_on, feature_params=base.feature_params,
        default_augment=dict(base.default_augment), augmenter=base.augmenter,
        cli_options=(*base.cli_options,
                     CliOption("band", ("--band",), int, 0, "angular frequencies kept in W₁: |ω| ≤ B, "
                               "0 ≤ B ≤ L/2 (default 0: rotation-invariant)")),
        form_fields=(*base.form_fields,
                     FormField("band", "Angular band B (sle_fourier)", "int", 0, "--band",
                               bounds=(0, sle.FORM_FEATURES["L"] // 2))),
        form_note=sle._form_note,
    ))


_register()
