"""The 2D scattering transform: Morlet filter bank, fast batched transform, path metadata.

    >>> from explorer.scattering import Scattering2D, split_orders
    >>> S = Scattering2D(J=2, shape=(32, 32))          # 81 paths for L = 8
    >>> s0, s1, s2 = split_orders(S(x), S.J, S.L)       # (…,h,w), (…,J,L,h,w), (…,1,L,L,h,w)

See `filters` for the orientation convention and `paths` for the channel order.
"""
from .filters import FilterBank, filter_bank, littlewood_paley, padded_shape
from .paths import Path, n_paths, scale_pairs, scattering_paths, select, split_orders
from .transform import Scattering2D

__all__ = ["FilterBank", "Path", "Scattering2D", "filter_bank", "littlewood_paley", "n_paths",
           "padded_shape", "scale_pairs", "scattering_paths", "select", "split_orders"]
