"""The 2D scattering transform: Morlet filter bank, fast batched transform, path metadata.

    >>> from explorer.scattering import Scattering2D, split_orders
    >>> S = Scattering2D(J=2, shape=(32, 32))          # 81 paths for L = 8
    >>> s0, s1, s2 = split_orders(S(x), S.J, S.L)       # (…,h,w), (…,J,L,h,w), (…,1,L,L,h,w)

`RotoScattering2D` is the separable roto-translation scattering (`roto`, with the wavelets along θ1 in
`angular`). See `filters` for the orientation convention, `paths` for the channel order and `channels` for
selection by meaning, per-order views and how rotations and mirrors move channels.
"""
from .channels import (
    Channel,
    colour_channels,
    merge_orders,
    mirror_permutation,
    permute_channels,
    rotation_permutation,
    select,
    split_orders,
)
from .filters import FilterBank, filter_bank, littlewood_paley, padded_shape
from .padding import pad_widths, reflect_pad
from .paths import Path, max_order_of, n_paths, scale_pairs, scattering_paths
from .roto import RotoPath, RotoScattering2D, roto_paths
from .transform import Scattering2D
from .validation import ParameterError

__all__ = ["Channel", "FilterBank", "ParameterError", "Path", "RotoPath", "RotoScattering2D", "Scattering2D", "colour_channels",
           "filter_bank", "littlewood_paley", "max_order_of", "merge_orders", "mirror_permutation", "n_paths",
           "pad_widths", "padded_shape", "permute_channels", "reflect_pad", "rotation_permutation",
           "roto_paths", "scale_pairs", "scattering_paths", "select", "split_orders"]
