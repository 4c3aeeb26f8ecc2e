"""Kymatio 0.3 as the independent reference, matched to our paths by metadata.

`kymatio.torch` fails to import with current SciPy, so the frontend is imported directly.
Kymatio's angle index t builds its wavelet at angle (L/2−1−t)π/L in (row, column)
coordinates; ours index ℓ = (L−1−t) mod L is the same orientation (science.md §1).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from kymatio.scattering2d.filter_bank import periodize_filter_fft
from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

from explorer.scattering.paths import Path


def our_angle(kymatio_theta: int, L: int) -> int:
    return (L - 1 - kymatio_theta) % L


def kymatio_paths(coefficients: list[dict], L: int) -> list[Path]:
    """Our Path record for each entry of Kymatio's out_type='list' output."""
    paths = []
    for c in coefficients:
        js, ts = c["j"], c["theta"]
        if len(js) == 0:
            paths.append(Path(0))
        elif len(js) == 1:
            paths.append(Path(1, js[0], our_angle(ts[0], L)))
        else:
            paths.append(Path(2, js[0], our_angle(ts[0], L), js[1], our_angle(ts[1], L)))
    return paths


def kymatio_scattering(J, shape, L, max_order=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ScatteringTorch2D(J, shape, L=L, max_order=max_order, out_type="list")


def mirror(spectrum: np.ndarray) -> np.ndarray:
    """f̂(ω) ↦ f̂(−ω) on a periodic grid."""
    return np.roll(np.flip(spectrum, axis=(-2, -1)), shift=(1, 1), axis=(-2, -1))


def load_our_filters_into(kymatio: ScatteringTorch2D, bank) -> None:
    """Replace Kymatio's float32-built filters with ours (mirrored into its convention and
    cropped by Kymatio's own `periodize_filter_fft`), so float64 runs compare the algorithm
    alone: Kymatio's bank is computed in complex64 and limits agreement to ~1e-7."""
    J, L = bank.J, bank.L
    n = 0
    for res in range(J):
        kymatio.register_buffer(f"tensor{n}", torch.from_numpy(
            periodize_filter_fft(bank.phi_hat, res)).unsqueeze(-1))
        n += 1
    for psi in kymatio.psi:
        full = mirror(bank.psi_hat[psi["j"], our_angle(psi["theta"], L)])
        for res in range(len(psi["levels"])):
            kymatio.register_buffer(f"tensor{n}", torch.from_numpy(
                periodize_filter_fft(full, res)).unsqueeze(-1))
            n += 1
