"""Angular Fourier analysis of the first layer W₁ of a Scattering + SLE network (science.md §4).

Numpy in, numpy out (torch only to read a model); no UI import. Computed in float64.

- `first_layer(model, effective=False)` / `first_layer_from_matrix(W1, channels, J, L)`: W₁ (outputs K,
  input channels colour × path) arranged by order as a `FirstLayer`: order0 (K, C), order1 (K, C, J, L),
  order2 (K, C, P, L, L) with the P = J(J−1)/2 scale pairs j1 < j2 in `scale_pairs(J)` order; `to_matrix`
  puts (thresholded) blocks back into a W₁ matrix. `effective=True` gives W₁·diag(1/σ), the map on raw
  scattering coefficients (σ = sqrt(running_var + eps) of the SLE's input BatchNorm, which has no affine);
  `FirstLayer.label` says which one a figure shows; `as_learned` / `as_effective` convert between them
  (threshold the effective weights, then `as_learned(...).to_matrix()` is what goes back into the model).
- `angular_dft` / `inverse_angular_dft`: the orthonormal DFT (norm="ortho") along the angle axes, so that
  Σ_ω |ŵ|² equals Σ_θ |w|² (Parseval).
- `omega1` / `omega2` (fractions Ω/ΣΩ) and `omega1_energy` / `omega2_energy` (unnormalised):
  Ω₁(ω_θ1) = Σ_{k,c,j1} |ŵ(ω_θ1)|², Ω₂(ω_θ1, ω_θ2) = Σ_{k,c,(j1,j2)} |ŵ(ω_θ1, ω_θ2)|², index ω = 0..L−1
  (ω and L − ω are the signed frequencies ±ω). `reindexed=True` shows order 2 on the axes
  (θ1, θ2 − θ1 mod L) (`relative_angles`): a rotation by π/L shifts θ1 and θ2 together, so an exactly
  rotation-invariant block w(θ1, θ2) = g(θ2 − θ1) is constant along θ1 there and has all its energy at
  ω_θ1 = 0, while on the raw axes its energy lies on the line ω_θ1 + ω_θ2 ≡ 0 (mod L).
- `breakdown_by(layer, "colour" | "j1" | "pair")`: the spectra per colour, per j1, per scale pair.
- `invariance_scores(layer)`: per output unit, the share of its angular energy at rotation frequency 0.
- Thresholding, pure functions returning a new `FirstLayer` (order 0 untouched, the input never modified):
  `threshold_fourier` (the largest fraction `keep` of the angular-Fourier coefficients, globally or per
  unit), `band_limit` (angular frequencies |ω| ≤ band), `threshold_theta` (the same sparsity on the raw
  weights); `kept_coefficients`, `band_coefficients`, `n_angular_coefficients` and
  `nonzero_coefficients` count what is kept.

Re-indexing order 2 is a shear of the (θ1, θ2) grid, and the DFT of a sheared grid is the sheared DFT:
the re-indexed coefficient at (a, b) is the raw one at (a − b, b). The magnitudes are therefore the same
set on both axes, and magnitude thresholding (`threshold_fourier`) does not depend on the choice of axes.
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.scattering import merge_orders, scale_pairs, scattering_paths, split_orders
from explorer.scattering.channels import colour_channels, layout

WHATS = ("colour", "j1", "pair")
ORDER2_AXES = ("relative", "raw")


# -- W₁ by order ------------------------------------------------------------------------------------
@dataclass(eq=False)
class FirstLayer:
    """W₁ arranged by order; every block's leading axes are (output unit k, colour c).

    order0: (K, C); order1: (K, C, J, L) over (j1, θ1); order2: (K, C, P, L, L) over (scale pair, θ1, θ2)
    with `pairs` = scale_pairs(J) (j1 < j2). `effective`: False for W₁ as learned (acting on BN-normalised
    coefficients), True for W₁·diag(1/σ) (the weights on raw coefficients)."""
    order0: np.ndarray
    order1: np.ndarray
    order2: np.ndarray
    colours: tuple[str, ...]
    J: int
    L: int
    pairs: list[tuple[int, int]]
    effective: bool = False

    def __post_init__(self):
        self.colours = tuple(self.colours)
        self.pairs = [tuple(int(j) for j in pair) for pair in self.pairs]
        K, C = np.shape(self.order0)[:2] if np.ndim(self.order0) == 2 else (None, None)
        J, L, P = self.J, self.L, len(self.pairs)
        expected = {"order0": (K, C), "order1": (K, C, J, L), "order2": (K, C, P, L, L)}
        for name, shape in expected.items():
            actual = tuple(np.shape(getattr(self, name)))
            if K is None or actual != shape or C != len(self.colours):
                raise ValueError(
                    f"FirstLayer blocks do not match J={J}, L={L}, {P} scale pairs and colours "
                    f"{self.colours}: order0 {tuple(np.shape(self.order0))}, order1 "
                    f"{tuple(np.shape(self.order1))}, order2 {tuple(np.shape(self.order2))} (expected "
                    f"(K, C), (K, C, J, L), (K, C, P, L, L) with C = {len(self.colours)}).")

    @property
    def label(self) -> str:
        """What a figure shows: "W₁" or "effective W₁·diag(1/σ)"."""
        return "effective W₁·diag(1/σ)" if self.effective else "W₁"

    @property
    def K(self) -> int:
        """The number of output units."""
        return int(self.order0.shape[0])

    def energy(self) -> float:
        """The total squared norm of the three blocks."""
        return float(sum(np.sum(np.abs(block) ** 2) for block in (self.order0, self.order1, self.order2)))

    def angular_energy(self) -> float:
        """The squared norm of orders 1 and 2 (the blocks with angles)."""
        return float(np.sum(self.order1 ** 2) + np.sum(self.order2 ** 2))

    def replace(self, **changes) -> FirstLayer:
        """A new FirstLayer with some fields replaced (the others shared)."""
        return dataclasses.replace(self, **changes)

    def copy(self) -> FirstLayer:
        return self.replace(order0=self.order0.copy(), order1=self.order1.copy(), order2=self.order2.copy())

    def channels(self) -> list:
        """The input-channel records of the full colour-major layout these blocks come from."""
        return colour_channels(scattering_paths(self.J, self.L, 2 if self.pairs else 1), self.colours)

    def to_matrix(self, channels: Sequence | None = None) -> np.ndarray:
        """The blocks back as one matrix (K, C·P_total) whose columns follow `channels` (a model's
        `input_channels`; by default the full colour-major layout of J, L and the colours), the inverse
        of `first_layer_from_matrix` (through `merge_orders`)."""
        channels = self.channels() if channels is None else list(channels)
        lay = layout(channels)
        if (lay.J, lay.L) != (self.J, self.L) or len(lay.colours or (None,)) != len(self.colours):
            raise ValueError(f"the channels (J={lay.J}, L={lay.L}, colours={lay.colours}) are not those of "
                             f"this layer (J={self.J}, L={self.L}, colours={self.colours}).")
        parts = [self.order0, self.order1, self.order2][:lay.max_order + 1]
        if lay.colours is None:  # grey: no colour axis in the channel layout
            parts = [part[:, 0] for part in parts]
        return np.ascontiguousarray(merge_orders(parts, channels, axis=-1))


def _not_sle(model) -> ValueError:
    name = type(model).__name__
    return ValueError(f"{name} is not an SLE-like model: the spectra need a first layer W₁ read by input "
                      f"channel (a model exposing `input_channels` and `first_layer_weight`, such as "
                      f"ScatteringSLE); {name} has none.")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.array(x, dtype=np.float64, copy=True)


def input_sigma(model) -> np.ndarray:
    """σ = sqrt(running_var + eps) of the model's input BatchNorm (`model.input_norm`), one per column
    of W₁: the effective weights on raw coefficients are W₁·diag(1/σ)."""
    norm = getattr(model, "input_norm", None)
    if norm is None or getattr(norm, "running_var", None) is None:
        raise ValueError(f"{type(model).__name__} has no input BatchNorm with running statistics "
                         "(`input_norm`): the effective weights W₁·diag(1/σ) are undefined for it.")
    return np.sqrt(_to_numpy(norm.running_var) + float(norm.eps))


def first_layer(model, effective: bool = False) -> FirstLayer:
    """W₁ of an SLE-like model (exposing `input_channels` and `first_layer_weight`) by order, as learned
    or (`effective=True`) as the map on raw coefficients W₁·diag(1/σ). A float64 copy: changing it never
    changes the model."""
    if not (hasattr(type(model), "input_channels") or hasattr(model, "input_channels")) \
            or not hasattr(model, "first_layer_weight"):
        raise _not_sle(model)
    try:
        channels = list(model.input_channels)
        weight = model.first_layer_weight
    except AttributeError:
        raise _not_sle(model) from None
    W1 = _to_numpy(weight)
    if effective:
        sigma = input_sigma(model)
        if W1.ndim != 2 or sigma.shape != (W1.shape[1],):
            raise ValueError(f"the input BatchNorm has {sigma.shape[0]} channels but W₁ has shape "
                             f"{W1.shape}: cannot form W₁·diag(1/σ).")
        W1 = W1 / sigma[None, :]
    lay = _layout_of(channels)
    return first_layer_from_matrix(W1, channels, lay.J, lay.L, effective=effective)


def as_learned(layer: FirstLayer, model) -> FirstLayer:
    """`layer` as W₁ acting on BN-normalised coefficients (what `replaced_first_layer` takes): an effective
    layer W₁·diag(1/σ) (e.g. thresholded) times diag(σ) of `model`'s input BatchNorm; a copy otherwise."""
    if not layer.effective:
        return layer.copy()
    channels = list(model.input_channels)
    matrix = layer.to_matrix(channels) * input_sigma(model)[None, :]
    return first_layer_from_matrix(matrix, channels, layer.J, layer.L, effective=False)


def as_effective(layer: FirstLayer, model) -> FirstLayer:
    """`layer` as the weights on raw coefficients, W₁·diag(1/σ) with σ of `model`'s input BatchNorm
    (a copy when it already is)."""
    if layer.effective:
        return layer.copy()
    channels = list(model.input_channels)
    matrix = layer.to_matrix(channels) / input_sigma(model)[None, :]
    return first_layer_from_matrix(matrix, channels, layer.J, layer.L, effective=True)


def _layout_of(channels):
    try:
        return layout(channels)
    except ValueError as error:
        raise ValueError(f"the path metadata of W₁'s columns is not a full scattering layout: {error}") from None


def first_layer_from_matrix(W1, channels: Sequence, J: int, L: int, effective: bool = False) -> FirstLayer:
    """A W₁ matrix (K, C·P_total) whose columns are `channels` (colour-major `Channel` records, e.g. a
    model's `input_channels`), arranged by order through `split_orders`. A float64 copy."""
    W1 = _to_numpy(W1)
    channels = list(channels)
    if W1.ndim != 2 or W1.shape[1] != len(channels):
        raise ValueError(f"weights of shape {W1.shape} do not match the {len(channels)} channels of the "
                         f"stored path metadata (expected (outputs, {len(channels)})).")
    lay = _layout_of(channels)
    if (lay.J, lay.L) != (int(J), int(L)):
        raise ValueError(f"the stored path metadata is for J={lay.J}, L={lay.L}, not J={J}, L={L}.")
    parts = list(split_orders(W1, channels, axis=-1))
    colours = lay.colours
    if colours is None:  # grey: give the blocks a colour axis of length 1
        parts = [part[:, None] for part in parts]
        colours = ("grey",)
    K, C = W1.shape[0], len(colours)
    pairs = scale_pairs(lay.J) if lay.max_order >= 2 else []
    order2 = parts[2] if lay.max_order >= 2 else np.zeros((K, C, 0, lay.L, lay.L))
    return FirstLayer(order0=np.array(parts[0]), order1=np.array(parts[1]), order2=np.array(order2),
                      colours=tuple(colours), J=lay.J, L=lay.L, pairs=pairs, effective=bool(effective))


# -- angular DFT -------------------------------------------------------------------------------------
def angular_dft(x, axes) -> np.ndarray:
    """The orthonormal DFT (norm="ortho") of `x` along the angle axes `axes` (an int or a tuple)."""
    axes = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    return np.fft.fftn(np.asarray(x), axes=axes, norm="ortho")


def inverse_angular_dft(X, axes) -> np.ndarray:
    """The inverse of `angular_dft` along the same axes (complex; take `.real` for real weights)."""
    axes = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    return np.fft.ifftn(np.asarray(X), axes=axes, norm="ortho")


def _shear_index(L: int, sign: int) -> np.ndarray:
    """(L, L) column indices: (θ1 + δ) mod L for sign +1 (to relative axes), (θ2 − θ1) mod L for −1 (back)."""
    row, column = np.arange(L)[:, None], np.arange(L)[None, :]
    return (column + row) % L if sign > 0 else (column - row) % L


def relative_angles(order2) -> np.ndarray:
    """Order-2 weights (…, L, L) over (θ1, θ2) re-indexed over (θ1, δ = θ2 − θ1 mod L):
    out[…, θ1, δ] = order2[…, θ1, (θ1 + δ) mod L]. A rotation shifts θ1 and θ2 together, so a
    rotation-invariant block g(θ2 − θ1) is constant along θ1 here."""
    order2 = np.asarray(order2)
    L = order2.shape[-1]
    if order2.ndim < 2 or order2.shape[-2] != L:
        raise ValueError(f"order-2 weights must end with (L, L) axes (θ1, θ2), got shape {order2.shape}.")
    index = np.broadcast_to(_shear_index(L, 1), order2.shape)
    return np.take_along_axis(order2, index, axis=-1)


def absolute_angles(relative) -> np.ndarray:
    """The inverse of `relative_angles`: (…, θ1, δ) back to (…, θ1, θ2)."""
    relative = np.asarray(relative)
    L = relative.shape[-1]
    if relative.ndim < 2 or relative.shape[-2] != L:
        raise ValueError(f"order-2 weights must end with (L, L) axes, got shape {relative.shape}.")
    index = np.broadcast_to(_shear_index(L, -1), relative.shape)
    return np.take_along_axis(relative, index, axis=-1)


# -- selections --------------------------------------------------------------------------------------
def _colour_index(layer: FirstLayer, colour) -> slice | list[int]:
    if colour is None:
        return slice(None)
    if isinstance(colour, str):
        if colour not in layer.colours:
            raise ValueError(f"colour must be one of {layer.colours} or None, got {colour!r}.")
        return [layer.colours.index(colour)]
    if isinstance(colour, numbers.Integral) and not isinstance(colour, bool) \
            and 0 <= int(colour) < len(layer.colours):
        return [int(colour)]
    raise ValueError(f"colour must be one of {layer.colours} (or its index) or None, got {colour!r}.")


def _check_scale(value, name: str, J: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < J:
        raise ValueError(f"{name} must be a scale in 0..{J - 1} or None, got {value!r}.")


def _order1_block(layer: FirstLayer, colour=None, j1=None) -> np.ndarray:
    _check_scale(j1, "j1", layer.J)
    block = layer.order1[:, _colour_index(layer, colour)]
    return block if j1 is None else block[:, :, [int(j1)]]


def _order2_block(layer: FirstLayer, colour=None, j1=None, j2=None) -> np.ndarray:
    _check_scale(j1, "j1", layer.J)
    _check_scale(j2, "j2", layer.J)
    chosen = [p for p, (a, b) in enumerate(layer.pairs)
              if (j1 is None or a == j1) and (j2 is None or b == j2)]
    if not chosen and (j1 is not None or j2 is not None):
        raise ValueError(f"no order-2 scale pair (j1, j2) with j1 < j2 matches j1={j1}, j2={j2}; "
                         f"pairs are {layer.pairs}.")
    return layer.order2[:, _colour_index(layer, colour)][:, :, chosen]


def _fractions(energy: np.ndarray) -> np.ndarray:
    total = float(energy.sum())
    return energy / total if total > 0 else np.zeros_like(energy)


# -- spectra -----------------------------------------------------------------------------------------
def omega1_energy(layer: FirstLayer, colour=None, j1=None) -> np.ndarray:
    """Ω₁(ω_θ1) = Σ_{k,c,j1} |ŵ(ω_θ1)|² over the selection (colour: a name, its index or None for all;
    j1: a scale or None), unnormalised: its sum is the selection's order-1 energy. Shape (L,)."""
    block = _order1_block(layer, colour, j1)
    spectrum = np.abs(angular_dft(block, -1)) ** 2
    return spectrum.reshape(-1, layer.L).sum(axis=0)


def omega1(layer: FirstLayer, colour=None, j1=None) -> np.ndarray:
    """Ω₁ / ΣΩ₁ (L,), index = ω_θ1 = 0..L−1, summing to 1 (all zeros when the selection has no energy)."""
    return _fractions(omega1_energy(layer, colour, j1))


def omega2_energy(layer: FirstLayer, colour=None, j1=None, j2=None, reindexed: bool = False) -> np.ndarray:
    """Ω₂(ω_θ1, ω_θ2) = Σ_{k,c,(j1,j2)} |ŵ(ω_θ1, ω_θ2)|² over the selection, unnormalised (L, L).
    `reindexed=True`: on the axes (θ1, θ2 − θ1), so the second index is the frequency of θ2 − θ1."""
    block = _order2_block(layer, colour, j1, j2)
    if reindexed:
        block = relative_angles(block)
    spectrum = np.abs(angular_dft(block, (-2, -1))) ** 2
    return spectrum.reshape(-1, layer.L, layer.L).sum(axis=0)


def omega2(layer: FirstLayer, colour=None, j1=None, j2=None, reindexed: bool = False) -> np.ndarray:
    """Ω₂ / ΣΩ₂ (L, L), indices (ω_θ1, ω_θ2) — or (ω_θ1, ω of θ2 − θ1) when `reindexed` — summing to 1
    (all zeros when the selection has no energy)."""
    return _fractions(omega2_energy(layer, colour, j1, j2, reindexed))


def breakdown_by(layer: FirstLayer, what: str, reindexed: bool = False,
                 order: int | None = None) -> dict:
    """The spectra per colour (keys: colour names), per j1 (keys: ints) or per scale pair (keys: (j1, j2)),
    each as fractions of its own total. "colour" and "j1" give Ω₁ (L,) — or Ω₂ (L, L) with order=2 —;
    "pair" gives Ω₂ (L, L) (raw or `reindexed` axes)."""
    if what not in WHATS:
        raise ValueError(f"what must be one of {WHATS}, got {what!r}.")
    if order is None:
        order = 2 if what == "pair" else 1
    if order not in (1, 2) or (what == "pair" and order != 2):
        raise ValueError(f"order must be 1 or 2 (2 only for what='pair'), got {order!r}.")
    if what == "colour":
        keys, select = layer.colours, (lambda c: {"colour": c})
    elif what == "j1":
        keys = range(layer.J - 1) if order == 2 else range(layer.J)
        select = (lambda j: {"j1": j})
    else:
        keys, select = layer.pairs, (lambda p: {"j1": p[0], "j2": p[1]})
    if order == 1:
        return {key: omega1(layer, **select(key)) for key in keys}
    return {key: omega2(layer, reindexed=reindexed, **select(key)) for key in keys}


def invariance_scores(layer: FirstLayer) -> np.ndarray:
    """Per output unit k (K,): the share of its angular W₁ energy (orders 1 and 2) at rotation frequency 0.

    Order 1: the energy at ω_θ1 = 0 of the DFT over θ1. Order 2: the energy at ω_θ1 = 0 of the 2-D DFT
    on the re-indexed axes (θ1, θ2 − θ1), all frequencies of θ2 − θ1 included: a rotation by π/L shifts
    θ1 and θ2 together, so a block invariant to it, w(θ1, θ2) = g(θ2 − θ1), has all its energy there
    (on raw axes: the line ω_θ1 + ω_θ2 ≡ 0). Order 0 has no angle and is excluded from both the numerator
    and the denominator. A unit whose orders 1 and 2 are all zero scores 0. Values in [0, 1]; 1 means the
    unit's response does not change when the input turns by a multiple of π/L."""
    K = layer.K
    zero1 = np.abs(angular_dft(layer.order1, -1)[..., 0]) ** 2
    zero2 = np.abs(angular_dft(relative_angles(layer.order2), (-2, -1))[..., 0, :]) ** 2
    at_zero = zero1.reshape(K, -1).sum(axis=1) + zero2.reshape(K, -1).sum(axis=1)
    total = (layer.order1 ** 2).reshape(K, -1).sum(axis=1) + (layer.order2 ** 2).reshape(K, -1).sum(axis=1)
    scores = np.zeros(K)
    np.divide(at_zero, total, out=scores, where=total > 0)
    return np.clip(scores, 0.0, 1.0)


# -- thresholding --------------------------------------------------------------------------------------
def check_keep(keep) -> float:
    """`keep` as a float in [0, 1] (ValueError otherwise)."""
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real) or not np.isfinite(keep) \
            or not 0.0 <= float(keep) <= 1.0:
        raise ValueError(f"keep must be a fraction in [0, 1], got {keep!r}.")
    return float(keep)


def check_band(layer: FirstLayer, band) -> int:
    """`band` as an int in [0, L/2] (ValueError otherwise)."""
    if isinstance(band, bool) or not isinstance(band, numbers.Integral) or band < 0:
        raise ValueError(f"the band B must be an integer ≥ 0, got {band!r}.")
    if 2 * int(band) > layer.L:
        raise ValueError(f"the band B={band} is larger than L/2 = {layer.L / 2:g} (L={layer.L} angles): "
                         f"angular frequencies run over |ω| ≤ L/2.")
    return int(band)


def n_angular_coefficients(layer: FirstLayer, per_unit: bool = False) -> int:
    """How many coefficients orders 1 and 2 hold (the same count in θ and in angular Fourier): in all, or
    per output unit."""
    per = int(np.prod(layer.order1.shape[1:])) + int(np.prod(layer.order2.shape[1:]))
    return per if per_unit else per * layer.K


def kept_count(n: int, keep: float) -> int:
    """How many of `n` coefficients a fraction `keep` keeps: round(keep·n), the rule of every threshold."""
    return round(check_keep(keep) * int(n))


def kept_coefficients(layer: FirstLayer, keep: float, per_unit: bool = False) -> int:
    """How many angular coefficients (orders 1 and 2, all units together) `threshold_fourier` or
    `threshold_theta` keeps at this fraction and mode (order 0, always kept, not counted)."""
    if per_unit:
        return kept_count(n_angular_coefficients(layer, per_unit=True), keep) * layer.K
    return kept_count(n_angular_coefficients(layer), keep)


def keep_masks(block1: np.ndarray, block2: np.ndarray, keep: float, per_unit: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the largest-magnitude fraction `keep` of the entries of two blocks pooled (axis 0:
    output units), globally or per unit; exactly `kept_count` entries (per unit) are True, ties broken by
    position."""
    keep = check_keep(keep)
    K = block1.shape[0]
    mag = np.concatenate([np.abs(block1).reshape(K, -1), np.abs(block2).reshape(K, -1)], axis=1)
    rows = mag if per_unit else mag.reshape(1, -1)
    count = kept_count(rows.shape[1], keep)
    mask = np.zeros(rows.shape, dtype=bool)
    if count:
        order = np.argsort(-rows, axis=1, kind="stable")[:, :count]
        np.put_along_axis(mask, order, True, axis=1)
    mask = mask.reshape(K, -1)
    n1 = int(np.prod(block1.shape[1:]))
    return mask[:, :n1].reshape(block1.shape), mask[:, n1:].reshape(block2.shape)


def threshold_fourier(layer: FirstLayer, keep: float, per_unit: bool = False) -> FirstLayer:
    """Keep the largest-magnitude fraction `keep` of the angular-Fourier coefficients of orders 1 and 2
    pooled (order 1: the DFT over θ1; order 2: the 2-D DFT over (θ1, θ2) — the same magnitudes as on the
    re-indexed axes, so the choice does not matter), globally or per output unit; zero the others, invert,
    keep the real part. Order 0 is untouched; `keep=1` returns an exact copy. A new FirstLayer."""
    keep = check_keep(keep)
    if keep == 1.0:
        return layer.copy()
    F1, F2 = angular_dft(layer.order1, -1), angular_dft(layer.order2, (-2, -1))
    m1, m2 = keep_masks(F1, F2, keep, per_unit)
    return layer.replace(order0=layer.order0.copy(),
                         order1=inverse_angular_dft(np.where(m1, F1, 0), -1).real,
                         order2=inverse_angular_dft(np.where(m2, F2, 0), (-2, -1)).real)


def threshold_theta(layer: FirstLayer, keep: float, per_unit: bool = False) -> FirstLayer:
    """The same sparsity in the θ domain: keep the largest-magnitude fraction `keep` of the raw weights of
    orders 1 and 2 pooled, globally or per output unit, zero the others. Order 0 untouched. A new layer."""
    keep = check_keep(keep)
    m1, m2 = keep_masks(layer.order1, layer.order2, keep, per_unit)
    return layer.replace(order0=layer.order0.copy(), order1=np.where(m1, layer.order1, 0.0),
                         order2=np.where(m2, layer.order2, 0.0))


def _band_mask(L: int, band: int) -> np.ndarray:
    """(L,) True at the frequencies ω with signed |ω| ≤ band (ω and L − ω)."""
    omega = np.arange(L)
    return np.minimum(omega, L - omega) <= band


def _order2_band_mask(L: int, band: int, order2_axes: str) -> np.ndarray:
    """(L, L) mask over the raw frequencies (ω_θ1, ω_θ2) of the order-2 coefficients band_limit keeps."""
    keep = _band_mask(L, band)
    if order2_axes == "raw":
        return keep[:, None] & keep[None, :]
    # relative: the rotation frequency ω_θ1 on (θ1, θ2 − θ1) is ω_θ1 + ω_θ2 on the raw axes
    return keep[(np.arange(L)[:, None] + np.arange(L)[None, :]) % L]


def _check_order2_axes(order2_axes: str) -> None:
    if order2_axes not in ORDER2_AXES:
        raise ValueError(f"order2_axes must be one of {ORDER2_AXES}, got {order2_axes!r}.")


def band_limit(layer: FirstLayer, band: int = 1, order2_axes: str = "relative") -> FirstLayer:
    """Keep only the angular frequencies |ω| ≤ band (signed: ω and L − ω), invert, keep the real part
    (real anyway: the kept set is symmetric). Order 1: along θ1. Order 2, by default (`"relative"`) along
    the rotation axis: the frequency ω_θ1 on the re-indexed axes (θ1, θ2 − θ1), every frequency of
    θ2 − θ1 kept — band 0 is then exactly the projection on rotation-invariant weights (orders 1 and 2),
    band 1 adds the first harmonic of the rotation. `order2_axes="raw"` limits both raw axes θ1 and θ2
    instead (|ω_θ1| ≤ band and |ω_θ2| ≤ band; band 0 keeps only constant blocks). Order 0 untouched.
    ValueError when band > L/2."""
    band = check_band(layer, band)
    _check_order2_axes(order2_axes)
    L = layer.L
    m1 = _band_mask(L, band)
    m2 = _order2_band_mask(L, band, order2_axes)
    F1, F2 = angular_dft(layer.order1, -1), angular_dft(layer.order2, (-2, -1))
    return layer.replace(order0=layer.order0.copy(),
                         order1=inverse_angular_dft(F1 * m1, -1).real,
                         order2=inverse_angular_dft(F2 * m2, (-2, -1)).real)


def band_coefficients(layer: FirstLayer, band: int = 1, order2_axes: str = "relative") -> int:
    """How many angular-Fourier coefficients (orders 1 and 2, all units) `band_limit` keeps."""
    band = check_band(layer, band)
    _check_order2_axes(order2_axes)
    K, C, P, J, L = layer.K, len(layer.colours), len(layer.pairs), layer.J, layer.L
    per1 = int(_band_mask(L, band).sum())
    per2 = int(_order2_band_mask(L, band, order2_axes).sum())
    return K * C * (J * per1 + P * per2)


def nonzero_coefficients(layer: FirstLayer, domain: str = "theta", atol: float = 1e-12) -> int:
    """How many coefficients of orders 1 and 2 exceed `atol` in magnitude, in the θ domain (`"theta"`) or
    in angular Fourier (`"fourier"`; a real layer's coefficients come in conjugate pairs ω, −ω)."""
    if domain == "theta":
        blocks = (layer.order1, layer.order2)
    elif domain == "fourier":
        blocks = (angular_dft(layer.order1, -1), angular_dft(layer.order2, (-2, -1)))
    else:
        raise ValueError(f"domain must be 'theta' or 'fourier', got {domain!r}.")
    return int(sum(np.count_nonzero(np.abs(block) > atol) for block in blocks))


__all__ = [
    "FirstLayer", "absolute_angles", "angular_dft", "as_effective", "as_learned", "band_coefficients", "band_limit", "breakdown_by",
    "check_band", "check_keep", "first_layer", "first_layer_from_matrix", "input_sigma",
    "invariance_scores", "inverse_angular_dft", "keep_masks", "kept_coefficients", "kept_count",
    "n_angular_coefficients", "nonzero_coefficients", "omega1", "omega1_energy", "omega2",
    "omega2_energy", "relative_angles", "threshold_fourier", "threshold_theta",
]
