"""The 2D scattering transform S_J (orders 0–2), batched, on CPU or CUDA (science.md §1).

Algorithm: reflect-pad, one FFT of the input, products with all L wavelets of a scale at once,
subsampling by periodising the spectrum (mean of its aliased blocks) before each inverse FFT,
so |x ⋆ ψ_{j1}| is kept at resolution 2^-j1 and every later product happens there. Filters
come from `filters.filter_bank`, prepared once (blocked for subsampling, float64) and held as
non-persistent buffers: `.to(device)` moves them like any module's, and the state_dict of a
module that holds a transform does not change (checkpoints stay small and loadable). An input
on another device or dtype gets a converted copy, made once per (device, dtype). Nothing in the
loop reads a tensor back to the host, so CUDA work is queued without synchronisation.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .filters import FilterBank, filter_bank, padded_shape
from .padding import pad_widths, reflect_pad
from .paths import Path, n_paths, scale_pairs, scattering_paths
from .validation import check_input, check_parameters


def _modulus(z: torch.Tensor) -> torch.Tensor:
    # re² + im² then an in-place sqrt is ~3× faster than complex abs on CPU (2× hypot);
    # abs keeps its safe gradient at 0 when autograd is on.
    if z.requires_grad:
        return z.abs()
    re, im = z.real, z.imag
    return torch.addcmul(re * re, im, im).sqrt_()


# Up to this subsampling factor, products are summed block by block (no full-resolution
# temporary); beyond it, one full product and a reshape-sum issue far fewer operations.
_MAX_BLOCK_LOOP = 4


def _filter_blocks(f: np.ndarray, k: int) -> torch.Tensor:
    """A real spectrum (..., M, N) prepared for subsampling by k: divided by k² and, for
    k ≤ _MAX_BLOCK_LOOP, split into its k×k aliased blocks, (k, k, ..., M/k, N/k)."""
    *lead, M, N = f.shape
    f = f / (k * k)
    if 1 < k <= _MAX_BLOCK_LOOP:
        f = np.moveaxis(f.reshape(*lead, k, M // k, k, N // k), (-4, -2), (0, 1))
    return torch.from_numpy(np.ascontiguousarray(f))


def _interleaved(f: torch.Tensor) -> torch.Tensor:
    """f duplicated along a new last axis of 2, contiguous: what `_product_subsampled` takes
    (multiplying a complex tensor's real view by a contiguous (…, 2) filter vectorises; a
    broadcast stride-0 axis is 6× slower)."""
    return f.unsqueeze(-1).expand(*f.shape, 2).contiguous()


def _product_subsampled(z: torch.Tensor, f: torch.Tensor, k: int) -> torch.Tensor:
    """Spectrum of ((ifft z) ⋆ filter) subsampled by k, with f = _interleaved(_filter_blocks(
    filter, k)): the mean of the k×k aliased blocks of z·filter."""
    zr = torch.view_as_real(z)
    if k == 1:
        return torch.view_as_complex(zr * f)
    if k > _MAX_BLOCK_LOOP:
        *lead, M, N, _ = torch.broadcast_shapes(zr.shape, f.shape)
        m, n = M // k, N // k
        prod = (zr * f).reshape(*lead, k, m, N, 2).sum(-4)
        return torch.view_as_complex(prod.reshape(*lead, m, k, n, 2).sum(-3))
    m, n = f.shape[-3:-1]
    acc = None
    for p in range(k):
        for q in range(k):
            block = zr[..., p * m:(p + 1) * m, q * n:(q + 1) * n, :]
            acc = block * f[p, q] if acc is None else acc.addcmul_(block, f[p, q])
    return torch.view_as_complex(acc)


def _pack_pairs(u: torch.Tensor) -> torch.Tensor:
    """Two real maps per complex one along axis 1 (a + ib): one FFT then serves two maps.
    (Writing the modulus straight into this layout is slower: strided writes.)"""
    return torch.complex(u[:, 0::2], u[:, 1::2])


def scatter_in_chunks(transform, x, out: torch.Tensor | None = None):
    """The forward pass shared by the transforms: checks x (..., H, W), makes or checks `out`
    (..., paths, H', W'), and calls `transform._scatter(images, out)` on chunks of
    `transform.chunk_size` images. A numpy array in gives a numpy array out."""
    as_numpy = isinstance(x, np.ndarray)
    x = check_input(x, transform.shape, transform.J)
    lead = x.shape[:-2]
    shape = (*lead, len(transform.paths), *transform.output_shape)
    if out is None:
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
    elif tuple(out.shape) != shape or out.dtype != x.dtype or out.device != x.device:
        raise ValueError(f"out must be a {x.dtype} tensor of shape {shape} on {x.device}, got "
                         f"{out.dtype} {tuple(out.shape)} on {out.device}.")
    flat, flat_out = x.reshape(-1, *transform.shape), out.view(-1, *shape[-3:])
    step = transform.chunk_size(x.dtype, x.device)
    for start in range(0, flat.shape[0], step):
        transform._scatter(flat[start:start + step], flat_out[start:start + step])
    return out.detach().cpu().numpy() if as_numpy else out


class Scattering2D(torch.nn.Module):
    """S_J with Morlet wavelets, for images of a fixed `shape` (H, W).

    Called on a real tensor (..., H, W) (float32 or float64, any device) it returns
    (..., P, H', W') with H' = H_padded/2^J − 2 ≈ H/2^J, one channel per record of `paths`
    (see `explorer.scattering.paths` for the order and the angle convention). A numpy array in
    gives a numpy array out. Large batches are processed in chunks of bounded memory.
    """

    def __init__(self, J: int, shape: tuple[int, int], L: int = 8, max_order: int = 2, *,
                 normalize: bool = False, max_chunk_bytes: int | None = None):
        super().__init__()
        check_parameters(J, shape, L, max_order)
        self.J, self.L, self.max_order = int(J), int(L), int(max_order)
        self.shape = (int(shape[0]), int(shape[1]))
        self.normalize = bool(normalize)
        self.max_chunk_bytes = max_chunk_bytes
        self.padded = padded_shape(self.shape, self.J)
        M, N = self.padded
        self.bank: FilterBank = filter_bank(M, N, self.J, self.L, normalize=normalize)
        self.paths: list[Path] = scattering_paths(self.J, self.L, self.max_order)
        self.output_shape = (M // 2**self.J - 2, N // 2**self.J - 2)
        self._pad = pad_widths(self.shape, self.J)
        b, J = self.bank, self.J

        def buffer(name: str, tensor: torch.Tensor) -> None:
            # Non-persistent: a function of (J, shape, L, normalize), not a learned state.
            self.register_buffer(name, tensor, persistent=False)

        for r in range(J):  # φ at resolution 2^-r, blocked for subsampling down to 2^-J
            buffer(f"phi_{r}", _filter_blocks(b.phi_at(r), 2 ** (J - r)))
        for j in range(J):
            buffer(f"psi_{j}", _filter_blocks(b.psi_hat[j], 2**j))
        if self.max_order >= 2:
            for j1, j2 in scale_pairs(J):
                buffer(f"psi2_{j1}_{j2}", _filter_blocks(b.psi_at(j2, j1), 2 ** (j2 - j1)))
        with warnings.catch_warnings():  # the cached bank is read-only: shared, never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            buffer("psi_full", torch.from_numpy(b.psi_hat))
        self._on_device: dict = {}

    def _apply(self, fn, *args, **kwargs):
        # `.to()`, `.cuda()`, `.double()`… replace the buffers: the converted copies are stale.
        self._on_device = {}
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"J={self.J}, shape={self.shape}, L={self.L}, max_order={self.max_order}, "
                f"normalize={self.normalize}, paths={len(self.paths)}")

    # -- filters on a device ------------------------------------------------------------
    def _filters(self, device: torch.device, dtype: torch.dtype) -> dict:
        """The buffers in the layout the loops use, on `device` in `dtype` (made once)."""
        key = (device, dtype)
        if key not in self._on_device:
            def to(t):
                return _interleaved(t.to(device=device, dtype=dtype))

            J, order_2 = self.J, self.max_order >= 2
            self._on_device[key] = {
                "phi": [to(getattr(self, f"phi_{r}")) for r in range(J)],
                "psi": [to(getattr(self, f"psi_{j}")) for j in range(J)],
                "psi2": {(j1, j2): to(getattr(self, f"psi2_{j1}_{j2}"))
                         for j1, j2 in scale_pairs(J) if order_2},
                "psi_full": self.psi_full.to(device=device, dtype=dtype),
            }
        return self._on_device[key]

    # -- the transform -------------------------------------------------------------------
    def forward(self, x, out: torch.Tensor | None = None):
        """S_J x for x of shape (..., H, W). `out`, if given, is a tensor of the output's shape,
        dtype and device to write into (e.g. a memory-mapped store: no extra copy)."""
        return scatter_in_chunks(self, x, out)

    def chunk_size(self, dtype: torch.dtype = torch.float32, device=None) -> int:
        """Images per chunk, so that the largest intermediate (the order-2 products at
        resolution 1/2, or the order-1 products at full resolution) stays under the budget.
        On CPU the default budget is small on purpose: cache-sized chunks run fastest."""
        M, N = self.padded
        complex_bytes = 2 * torch.finfo(dtype).bits // 8
        per_image = complex_bytes * M * N * self.L
        if self.max_order >= 2 and self.J > 1:
            per_image = max(per_image, complex_bytes * M * N * self.L * self.L // 4)
        budget = self.max_chunk_bytes
        if budget is None:
            is_cuda = device is not None and torch.device(device).type == "cuda"
            budget = 1 << 29 if is_cuda else 1 << 23
        return max(1, budget // per_image)

    def _unpad(self, s: torch.Tensor) -> torch.Tensor:
        return s[..., 1:-1, 1:-1]

    def _write_averaged(self, spectra: torch.Tensor, phi_blocks: torch.Tensor,
                        out: torch.Tensor) -> None:
        """out (b, C, h, w) ← unpad(ifft(spectra · φ̂, subsampled)).real, for spectra (b, C, m, n)
        of real maps. Pairs of channels share one inverse FFT: φ̂ is real and even, so the
        inverse of Â + iB̂ is a + ib."""
        C = spectra.shape[1]
        k = spectra.shape[-1] // (self.output_shape[-1] + 2)
        if C % 2 == 0 and not spectra.requires_grad:
            self._write_packed(spectra[:, 0::2] + 1j * spectra[:, 1::2], phi_blocks, out)
        else:
            out.copy_(self._unpad(torch.fft.ifft2(_product_subsampled(spectra, phi_blocks, k)).real))

    def _write_packed(self, packed: torch.Tensor, phi_blocks: torch.Tensor,
                      out: torch.Tensor) -> None:
        """out (b, C, h, w) ← the averages of C real maps given as the spectra of C/2 packed
        pairs (a + ib): φ̂ is real and even, so the averaged pair comes back as a + ib."""
        k = packed.shape[-1] // (self.output_shape[-1] + 2)
        s = torch.fft.ifft2(_product_subsampled(packed, phi_blocks, k))
        out.unflatten(1, (packed.shape[1], 2)).copy_(
            torch.view_as_real(self._unpad(s)).movedim(-1, 2))

    def _scatter(self, x: torch.Tensor, out: torch.Tensor) -> None:
        f = self._filters(x.device, x.dtype)
        J, L = self.J, self.L
        X = torch.fft.fft2(reflect_pad(x, J)).unsqueeze(1)  # (b, 1, M, N)
        self._write_averaged(X, f["phi"][0], out[:, 0:1])
        s2_start = n_paths(J, L, max_order=1)  # the first order-2 channel
        for j1 in range(J):
            U1 = torch.fft.ifft2(_product_subsampled(X, f["psi"][j1], 2**j1))  # (b, L, m, n)
            target = out[:, 1 + j1 * L:1 + (j1 + 1) * L]
            has_children = self.max_order >= 2 and j1 < J - 1
            if not has_children and L % 2 == 0 and not U1.requires_grad:
                # Only averaged: one FFT for two real maps (see _write_averaged).
                self._write_packed(torch.fft.fft2(_pack_pairs(_modulus(U1))), f["phi"][j1], target)
                continue
            U1_hat = torch.fft.fft2(_modulus(U1))
            self._write_averaged(U1_hat, f["phi"][j1], target)
            if not has_children:
                continue
            for pair_index, (a, j2) in enumerate(scale_pairs(J)):
                if a != j1:
                    continue
                U2 = _product_subsampled(U1_hat.unsqueeze(2), f["psi2"][(j1, j2)], 2 ** (j2 - j1))
                U2 = torch.fft.ifft2(U2).flatten(1, 2)  # (b, L·L, m2, n2)
                first = s2_start + pair_index * L * L
                target = out[:, first:first + L * L]
                if (L * L) % 2 == 0 and not U2.requires_grad:
                    self._write_packed(torch.fft.fft2(_pack_pairs(_modulus(U2))), f["phi"][j2], target)
                else:
                    self._write_averaged(torch.fft.fft2(_modulus(U2)), f["phi"][j2], target)

    # -- unaveraged maps for the dashboards ----------------------------------------------
    def modulus_maps(self, x, paths) -> torch.Tensor:
        """|x ⋆ ψ_{j1,θ1}| (order 1) and ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| (order 2) at the input's
        resolution (no averaging, no subsampling), cropped to the image: (..., len(paths), H, W).
        `paths` are `Path` records (or tuples in the same field order) of order 1 or 2."""
        as_numpy = isinstance(x, np.ndarray)
        x = check_input(x, self.shape, self.J)
        paths = [Path(*p) for p in paths]
        bad = [p for p in paths if p.order not in (1, 2) or p not in self.paths]
        if bad:
            raise ValueError(f"not order-1/2 paths of this transform (J={self.J}, L={self.L}, "
                             f"max_order={self.max_order}): {bad[:3]}")
        f = self._filters(x.device, x.dtype)
        X = torch.fft.fft2(reflect_pad(x, self.J))
        top, left = self._pad[0], self._pad[2]
        H, W = self.shape
        maps, first_layer = [], {}
        for p in paths:
            key = (p.j1, p.theta1)
            if key not in first_layer:
                first_layer[key] = torch.fft.ifft2(X * f["psi_full"][p.j1, p.theta1]).abs()
            u = first_layer[key]
            if p.order == 2:
                u = torch.fft.ifft2(torch.fft.fft2(u) * f["psi_full"][p.j2, p.theta2]).abs()
            maps.append(u[..., top:top + H, left:left + W])
        result = torch.stack(maps, dim=-3)
        return result.detach().cpu().numpy() if as_numpy else result
