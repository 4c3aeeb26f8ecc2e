"""What a channel is and how channels move: one implementation for views, analyses and augmentation.

A channel is a colour (None for a grey image) plus a scattering `Path`. Everything here works on a list
of `Channel` records and on a plain list of `Path`s alike (a plain path is a channel without colour):

- `colour_channels(paths, colours)`: the records of a colour-major layout (the columns of the SLE's W₁);
- `select(channels, colour="red", order=2, j1=0)`: indices of the channels that match, by meaning;
- `split_orders` / `merge_orders`: the channel axis of a map (N, C, H, W), a feature (…, P, h, w) or a
  weight matrix (out, C) as per-order views with colours and angles as axes, and back;
- `rotation_permutation` / `mirror_permutation`: how a rotation of the image by a multiple of π/L and its
  left-right mirror move the channels, as index permutations.

Angle convention (`explorer.scattering.filters`, README): index ℓ ↦ θ = ℓπ/L, the wave vector's angle,
counter-clockwise from the horizontal axis with the vertical axis up. A rotation counter-clockwise (as
displayed, like `np.rot90`) by kπ/L moves θ to θ + kπ/L; a left-right mirror maps θ to π − θ. Both are
taken mod π (index mod L) because |x ⋆ ψ_{θ+π}| = |x ⋆ ψ_θ| for a real x. The permutations act on the
channel axis only; the spatial part (turning or mirroring each map about its sampling grid) is the
caller's (`explorer.training.augment.grid_mirror`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .paths import Path, n_paths, scattering_paths


class Channel(NamedTuple):
    """One input channel: a colour (None for grey) and a scattering path, flat so that it reads like a
    row of a table: Channel("red", 2, 0, 3, 1, 5) is red, order 2, j1 = 0, θ1 = 3, j2 = 1, θ2 = 5."""
    colour: str | None
    order: int
    j1: int | None = None
    theta1: int | None = None
    j2: int | None = None
    theta2: int | None = None

    @property
    def path(self) -> Path:
        return Path(*self[1:])

    @classmethod
    def of(cls, colour: str | None, path: Sequence) -> Channel:
        return cls(colour, *path)


Record = Channel | Path
FIELDS = Channel._fields


def colour_channels(paths: Sequence[Path], colours: Sequence[str] | None = None) -> list[Channel]:
    """The records of a colour-major layout: every path of the first colour, then of the next…
    (the order of `Scattering2D` on a (…, colours, H, W) input flattened to one channel axis).
    Without colours: one grey channel (colour None) per path."""
    return [Channel(colour, *path) for colour in (colours or (None,)) for path in paths]


def _as_channel(record) -> Channel:
    return record if isinstance(record, Channel) else Channel(None, *record)


def _has_colour(records: Sequence) -> bool:
    return any(isinstance(r, Channel) for r in records)


def _matches(value, wanted) -> bool:
    if isinstance(wanted, (set, frozenset, list, tuple, range)):
        return value in wanted
    return value == wanted


def _record_fields(records: Sequence) -> tuple[str, ...]:
    """The fields of plain records: Path's, or those of another path type (`roto.RotoPath`) when every
    record is one."""
    kinds = {type(r) for r in records}
    if len(kinds) == 1 and hasattr(next(iter(kinds)), "_fields"):
        return next(iter(kinds))._fields
    return Path._fields


def select(records: Sequence[Record], **fields) -> np.ndarray:
    """Indices (int64, in channel order) of the channels or paths whose fields equal the given values:
    select(paths, order=1, j1=0), select(channels, colour="red", order=2, j1=0). A set, list, tuple or
    range matches any of its values (order=(1, 2)). Take the records with [records[i] for i in …]."""
    allowed = FIELDS if _has_colour(records) else _record_fields(records)
    unknown = set(fields) - set(allowed)
    if unknown:
        hint = " (plain paths carry no colour)" if "colour" in unknown and allowed is Path._fields else ""
        raise ValueError(f"unknown path field(s) {sorted(unknown)}; fields are {allowed}{hint}.")
    return np.array([i for i, r in enumerate(records)
                     if all(_matches(getattr(r, k), v) for k, v in fields.items())], dtype=np.int64)


# -- structured views ---------------------------------------------------------------------------
class Layout(NamedTuple):
    """A colour-major channel axis: `colours` (None: grey, no colour axis) × the full path set of
    `scattering_paths(J, L, max_order)`."""
    colours: tuple | None
    J: int
    L: int
    max_order: int

    @property
    def n_paths(self) -> int:
        return n_paths(self.J, self.L, self.max_order)

    @property
    def n_channels(self) -> int:
        return self.n_paths * (len(self.colours) if self.colours else 1)


def layout(records: Sequence[Record] | int, L: int | None = None, max_order: int = 2) -> Layout:
    """The `Layout` of a list of channels or paths (which must be a full colour-major layout, so that
    the per-order views need no copy), or of (J, L, max_order) given as numbers."""
    if isinstance(records, (int, np.integer)):
        if L is None:
            raise ValueError("give L with J (or a list of channels or paths).")
        return Layout(None, int(records), int(L), int(max_order))
    records = list(records)
    first_order = [r for r in records if r.order == 1]
    if not records or not first_order:
        raise ValueError("the channels must contain every path of orders 0 and 1 (and 2 if any).")
    J = 1 + max(r.j1 for r in first_order)
    L = 1 + max(r.theta1 for r in first_order)
    order = max(r.order for r in records)
    colours = None
    if _has_colour(records):
        colours = tuple(dict.fromkeys(_as_channel(r).colour for r in records))
        if colours == (None,):
            colours = None
    expected = colour_channels(scattering_paths(J, L, order), colours)
    if [tuple(_as_channel(r)) for r in records] != [tuple(c) for c in expected]:
        raise ValueError(f"the channels are not the full colour-major layout of J={J}, L={L}, "
                         f"max_order={order}, colours={colours}: select the ones you need instead.")
    return Layout(colours, J, L, order)


def _path_sizes(lay: Layout) -> list[tuple[int, ...]]:
    J, L = lay.J, lay.L
    return [(), (J, L), (J * (J - 1) // 2, L, L)][:lay.max_order + 1]


def split_orders(x, records: Sequence[Record] | int, L: int | None = None, max_order: int = 2,
                 *, axis: int = -3):
    """Views of the channel axis `axis` of `x` per order: (S0, S1, S2) where the channel axis becomes
    [colours,] nothing (order 0), [colours,] (J, L) (order 1) and [colours,] (J(J−1)/2, L, L) (order 2;
    pairs as in `scale_pairs(J)`); a tuple of max_order + 1 views (numpy or torch), no copies.

    `records` is the list of channels or paths along the axis, or J (with L, max_order) for paths only:
    split_orders(S, J, L) on an output (…, P, h, w); split_orders(W1, model.input_channels, axis=-1) on
    a weight matrix (out, 3·P) gives S1 (out, 3, J, L)."""
    lay = layout(records, L, max_order)
    if x.ndim == 0 or x.shape[axis % x.ndim] != lay.n_channels:
        colours = f", colours={lay.colours}" if lay.colours else ""
        raise ValueError(f"expected {lay.n_channels} paths on axis {axis} for J={lay.J}, L={lay.L}, "
                         f"max_order={lay.max_order}{colours}, got shape {tuple(x.shape)}.")
    axis = axis % x.ndim
    before, after = tuple(x.shape[:axis]), tuple(x.shape[axis + 1:])
    n_colours = (len(lay.colours),) if lay.colours else ()
    by_colour = x.reshape(before + n_colours + (lay.n_paths,) + after)
    where = axis + len(n_colours)
    parts, start = [], 0
    for sizes in _path_sizes(lay):
        count = int(np.prod(sizes, dtype=np.int64))
        index = (slice(None),) * where + (slice(start, start + count),)
        parts.append(by_colour[index].reshape(before + n_colours + sizes + after))
        start += count
    return tuple(parts)


def merge_orders(parts: Sequence, records: Sequence[Record] | int, L: int | None = None,
                 max_order: int = 2, *, axis: int = -3):
    """The inverse of `split_orders` with the same `records` and `axis`: the per-order parts joined
    back into one channel axis (a new array or tensor)."""
    lay = layout(records, L, max_order)
    if len(parts) != lay.max_order + 1:
        raise ValueError(f"expected {lay.max_order + 1} parts (orders 0..{lay.max_order}), got {len(parts)}.")
    n_colours = (len(lay.colours),) if lay.colours else ()
    s0 = parts[0]
    ndim = s0.ndim + 1 - len(n_colours)  # that of the merged array
    axis = axis % ndim
    where = axis + len(n_colours)
    flat = []
    for part, sizes in zip(parts, _path_sizes(lay)):
        shape = tuple(part.shape)
        before, after = shape[:where], shape[where + len(sizes):]
        flat.append(part.reshape(before + (-1,) + after) if sizes else part.reshape(before + (1,) + after))
    if isinstance(s0, torch.Tensor):
        joined = torch.cat(flat, dim=where)
    else:
        joined = np.concatenate(flat, axis=where)
    shape = tuple(joined.shape)
    return joined.reshape(shape[:axis] + (lay.n_channels,) + shape[where + 1:])


# -- rotations and mirrors -------------------------------------------------------------------------
def _turn(theta: int | None, L: int, steps: int, mirror: bool) -> int | None:
    if theta is None:
        return None
    return ((-theta if mirror else theta) + steps) % L


def rotated(record: Record, L: int, steps: int) -> Record:
    """The channel that `record` becomes when the image turns counter-clockwise by steps·π/L:
    θ ↦ θ + steps (mod L); colour, order and scales stay."""
    return record._replace(theta1=_turn(record.theta1, L, steps, False),
                           theta2=_turn(record.theta2, L, steps, False))


def mirrored(record: Record, L: int) -> Record:
    """The channel that `record` becomes when the image is mirrored left-right: θ ↦ (L − θ) mod L
    (θ = 0, vertical edges, and θ = L/2, horizontal ones, stay)."""
    return record._replace(theta1=_turn(record.theta1, L, 0, True),
                           theta2=_turn(record.theta2, L, 0, True))


def _permutation(records: Sequence[Record], source) -> np.ndarray:
    position = {tuple(r): i for i, r in enumerate(records)}
    try:
        return np.array([position[tuple(source(r))] for r in records], dtype=np.int64)
    except KeyError as missing:
        raise ValueError(f"the channels are not closed under this move: {missing} is missing.") from None


def rotation_permutation(records: Sequence[Record], L: int, steps: int) -> np.ndarray:
    """Indices `perm` such that x[..., perm] (along the channel axis) holds the channels of the image
    turned counter-clockwise by steps·π/L: channel i of the turned image is channel perm[i] of the
    original, whose angles are those of i minus `steps`. Exact on the channels; L/2 steps is 90°."""
    return _permutation(records, lambda r: rotated(r, L, -int(steps)))


def mirror_permutation(records: Sequence[Record], L: int) -> np.ndarray:
    """Indices `perm` such that x[..., perm] (along the channel axis) holds the channels of the image
    mirrored left-right (an involution: perm[perm] is the identity)."""
    return _permutation(records, lambda r: mirrored(r, L))


def permute_channels(x, permutation, axis: int = -3):
    """x with its channel axis `axis` reordered by `permutation` (numpy array or torch tensor)."""
    if isinstance(x, torch.Tensor):
        index = torch.as_tensor(permutation if isinstance(permutation, torch.Tensor) else np.asarray(permutation))
        return x.index_select(axis % x.ndim, index.to(x.device))
    if isinstance(permutation, torch.Tensor):
        permutation = permutation.cpu().numpy()
    return np.take(x, np.asarray(permutation), axis=axis)
