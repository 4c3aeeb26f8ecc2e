"""Numerical demonstrations of the scattering transform's invariances and stabilities (science.md §1).

Every function takes one grayscale image (H, W) (a numpy array or a torch tensor; computed in float64)
and returns a dict of 1-D numpy arrays, one entry per point of the sweep, ready to plot:

- `rotation_errors`: rotation covariance (the angles of the paths turn with the image);
- `translation_errors`: local translation invariance (a shift c ≪ 2^J barely changes S_J);
- `deformation_distances`: stability to small deformations, against pixels and the Fourier modulus;
- `lipschitz_ratios`: non-expansiveness ‖S_J x − S_J y‖ ≤ ‖pad(x − y)‖ with the normalised filter bank;
- `energy_per_order`, `energy_per_path`: where the energy of an output lies.

Angles follow `explorer.scattering.filters`: index ℓ ↦ θ = ℓπ/L, counter-clockwise from the horizontal axis,
vertical axis pointing up; rotations here are counter-clockwise as displayed, like `np.rot90`.
Nothing here imports a UI library.
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy import ndimage

from explorer.scattering import Path, Scattering2D, filter_bank, split_orders
from explorer.scattering.channels import rotation_permutation
from explorer.scattering.padding import reflect_pad
from explorer.scattering.paths import scattering_paths
from explorer.scattering.validation import check_size_fits_J

from ._checks import as_float64, check_image, check_images, check_int, check_output, check_real, check_reals
from .piecework import Pieces, finish

AVERAGES = ("full", "output")
# A piece of a piecewise curve: long enough to amortise the checks, short enough that a visitor whose plot
# waits for it does not notice (`explorer.analysis.piecework`).
PIECE_S = 0.25


# -- helpers ---------------------------------------------------------------------------------------
def smooth_window(shape: tuple[int, int], flat: float = 0.5) -> np.ndarray:
    """A radial window (H, W) in [0, 1]: 1 up to `flat`·R from the image centre, a raised-cosine taper
    to 0 at R = min(H, W)/2 − 1, and 0 beyond. Centred at ((H−1)/2, (W−1)/2), so `np.rot90` maps it onto
    itself for square images. Multiplying an image by it puts its content away from the borders, where
    rotations and circular shifts act cleanly."""
    H, W = (check_int("shape[0]", shape[0], 2), check_int("shape[1]", shape[1], 2))
    flat = check_real("flat", flat, 0.0, 1.0)
    rows, cols = np.indices((H, W), dtype=np.float64)
    r = np.hypot(rows - (H - 1) / 2, cols - (W - 1) / 2)
    outer = max(min(H, W) / 2 - 1, 1.0)
    inner = flat * outer
    t = np.clip((r - inner) / max(outer - inner, 1e-12), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * t))


def rotate(image, degrees: float, order: int = 1) -> np.ndarray:
    """`image` (H, W) rotated counter-clockwise (as displayed: vertical axis up) by `degrees` about its
    centre; (H, W) float64 out.

    Multiples of 90° are exact (`np.rot90`; for a non-square image only multiples of 180° keep the shape,
    so ±90° falls back to interpolation there). Other angles use bilinear interpolation
    (`scipy.ndimage.rotate`, reshape=False, spline `order` 1; 3 for cubic); the corners that come from
    outside the image are filled by mirror reflection (mode='reflect')."""
    x = check_image(image)
    degrees = check_real("degrees", degrees)
    order = check_int("order", order, 0, 5)
    quarter = degrees / 90.0
    k = round(quarter)
    if abs(quarter - k) < 1e-9 and (k % 2 == 0 or x.shape[0] == x.shape[1]):
        return np.ascontiguousarray(np.rot90(x, k % 4))
    return ndimage.rotate(x, degrees, reshape=False, order=order, mode="reflect")


def roll_angles(s, k: int, J: int, L: int, max_order: int = 2):
    """Roll the angle axes θ1 (order 1) and θ1, θ2 (order 2) of a path vector `s` (..., P) by `k` (mod L):
    the prediction of S̄(rotated image) from S̄(image) for a rotation by kπ/L. Order 0 is unchanged.
    (`explorer.scattering.rotation_permutation` on the last axis.)"""
    permutation = rotation_permutation(scattering_paths(J, L, max_order), L, k)
    return np.take(np.asarray(s), permutation, axis=-1)


def spatial_average(S: Scattering2D, image, average: str = "full", weights=None) -> np.ndarray:
    """The spatial average S̄x of S_J x over the image, one value per path: (P,) float64.

    average="full" averages the full-resolution maps over the image: S̄x(p) = mean_u U_p x(u) with
    U_p x = |x ⋆ ψ_{j1,θ1}| (order 1), ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| (order 2), and mean_u x (order 0)
    — the spatial mean of S_J x computed before subsampling (φ_J has unit mass). `weights` (H, W) ≥ 0
    turn it into the weighted mean Σ_u w U_p / Σ_u w. Rotations by multiples of 90° act on it exactly
    (up to rounding) when the weights are symmetric under them.
    average="output" averages S's subsampled output (..., h, w) instead (no weights); its 2^J sampling
    grid is not mapped onto itself by a rotation about the image centre, which alone costs about 1–10 %
    of error."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}.")
    x = np.ascontiguousarray(check_image(image))
    if average == "output":
        if weights is not None:
            raise ValueError("weights apply to average='full' only (the output is subsampled).")
        return S(x).mean(axis=(-2, -1))
    if weights is None:
        w = np.full(x.shape, 1.0 / x.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != x.shape or not np.isfinite(w).all() or w.min() < 0 or w.sum() <= 0:
            raise ValueError(f"weights must be finite, ≥ 0, not all 0, of shape {x.shape}; "
                             f"got shape {w.shape}.")
        w = w / w.sum()
    maps = S.modulus_maps(x, S.paths[1:])  # (P − 1, H, W)
    return np.concatenate([[(x * w).sum()], (maps * w).sum(axis=(-2, -1))])


def _relative(a, b) -> float:
    """‖a − b‖ / ‖b‖ (0 when both vanish)."""
    den = float(np.linalg.norm(b))
    num = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


# -- rotation --------------------------------------------------------------------------------------
def rotation_errors(image, J: int, L: int = 8, degrees=tuple(range(0, 361, 15)), *,
                    max_order: int = 2, window: bool = False, average: str = "full",
                    interpolation_order: int = 1) -> dict:
    """Rotation covariance: compare S̄(rotate(x, α)) with S̄x whose angles are rolled by k.

    For each α (degrees), k = round(α / (180/L)) mod L angle steps, and
        error(α) = ‖S̄(rotate(x, α)) − roll_k S̄x‖ / ‖S̄x‖,
    with S̄ the spatial average of `spatial_average` (all orders; order 0 is not rolled), weighted by
    `smooth_window` for average="full": the inscribed disk is the part of the image that a rotation
    keeps (a plain mean over the square would itself break the symmetry, most at 45°). The same ratio
    without the roll (error_unrolled) shows what the roll buys; error_order1 and error_order2 restrict
    both norms to one order. At multiples of 90° on a square image the error is rounding only (≲1e-12
    with average="full"); between them it comes from the interpolation of `rotate` (spline order
    `interpolation_order`; bilinear damps the finest scale j = 0 most), from the L discrete angles (a
    rotation by α ≠ kπ/L is compared with the nearest roll) and, unless `window`, from the corners that
    `rotate` fills by reflection. `window` multiplies the image by `smooth_window` first.

    Returns {"degrees", "shift", "error", "error_unrolled", "error_order1"[, "error_order2"]}, each (A,).
    """
    return finish(rotation_error_pieces(image, J, L, degrees, max_order=max_order, window=window,
                                        average=average, interpolation_order=interpolation_order))


def rotation_error_pieces(image, J: int, L: int = 8, degrees=tuple(range(0, 361, 15)), *,
                          max_order: int = 2, window: bool = False, average: str = "full",
                          interpolation_order: int = 1, piece_s: float = PIECE_S) -> Pieces:
    """`rotation_errors` in pieces (`explorer.analysis.piecework`): yields the fraction of angles done
    about every `piece_s` seconds (at least one angle per piece) and returns the same dict."""
    x = check_image(image)
    check_size_fits_J(x.shape, J)
    angles = check_reals("degrees", degrees)
    if window:
        x = x * smooth_window(x.shape)
    S = Scattering2D(J, x.shape, L, max_order)
    weights = smooth_window(x.shape) if average == "full" else None
    reference = spatial_average(S, x, average, weights)
    step = 180.0 / S.L
    shifts = np.array([round(a / step) % S.L for a in angles], dtype=np.int64)
    orders = np.array([p.order for p in S.paths])
    out = {"degrees": angles, "shift": shifts}
    keys = ["error", "error_unrolled", "error_order1"] + (["error_order2"] if S.max_order >= 2 else [])
    for key in keys:
        out[key] = np.empty(len(angles))
    piece_started = time.perf_counter()
    for i, (alpha, k) in enumerate(zip(angles, shifts)):
        rotated = spatial_average(S, rotate(x, float(alpha), interpolation_order), average, weights)
        predicted = roll_angles(reference, int(k), S.J, S.L, S.max_order)
        out["error"][i] = _relative(rotated, predicted)
        out["error_unrolled"][i] = _relative(rotated, reference)
        for order in range(1, S.max_order + 1):
            sel = orders == order
            out[f"error_order{order}"][i] = _relative(rotated[sel], predicted[sel])
        if time.perf_counter() - piece_started >= piece_s and i + 1 < len(angles):
            yield (i + 1) / len(angles)
            piece_started = time.perf_counter()
    return out


# -- translation -----------------------------------------------------------------------------------
def translate(image, shift: int) -> np.ndarray:
    """`image` (H, W) shifted right by `shift` columns (negative: left), circularly (`np.roll` along
    axis 1: the columns that leave on one side come back on the other)."""
    x = check_image(image)
    return np.roll(x, check_int("shift", shift), axis=1)


def translation_errors(image, J: int, L: int = 8, shifts=None, *, max_order: int = 2,
                       window: bool = False) -> dict:
    """Local translation invariance: relative change of S_J under a horizontal shift of c pixels.

    x_c = translate(x, c) (circular shift right by c columns, see `translate`), and
        error(c) = ‖S_J x_c − S_J x‖ / ‖S_J x‖
    on the full output (all paths and positions), next to the pixel distance ‖x_c − x‖/‖x‖. For
    |c| ≪ 2^J the scattering error is small and grows about linearly, of order |c|/2^J; the pixel
    distance jumps at once. A circular shift also moves the seam between the image's left and right
    edges; `window` multiplies the image by `smooth_window` first, so that the shift is a pure
    translation of the content. `shifts` defaults to 0, 1, …, 2^J (integers, |c| < W).

    Returns {"shift", "shift_over_scale" (c/2^J), "error", "pixel_error"}, each (C,).
    """
    x = check_image(image)
    check_size_fits_J(x.shape, J)
    if shifts is None:
        shifts = range(2**J + 1)
    shifts = [check_int("shifts", c, -(x.shape[1] - 1), x.shape[1] - 1) for c in np.atleast_1d(shifts)]
    if not shifts:
        raise ValueError("shifts must contain at least one integer shift.")
    if window:
        x = x * smooth_window(x.shape)
    S = Scattering2D(J, x.shape, L, max_order)
    batch = np.stack([translate(x, c) for c in shifts])
    out = S(np.concatenate([x[None], batch]))
    reference, shifted = out[0], out[1:]
    c = np.array(shifts, dtype=np.int64)
    return {
        "shift": c,
        "shift_over_scale": c / 2**S.J,
        "error": np.array([_relative(s, reference) for s in shifted]),
        "pixel_error": np.array([_relative(b, x) for b in batch]),
    }


# -- deformations ----------------------------------------------------------------------------------
def max_jacobian_norm(tau: np.ndarray) -> float:
    """‖∇τ‖_∞ of a displacement field τ (2, H, W) (row and column components, in pixels): the largest,
    over pixels, operator 2-norm of the 2×2 Jacobian (central differences, `np.gradient`)."""
    a, b = np.gradient(tau[0])  # ∂τ_r/∂row, ∂τ_r/∂col
    c, d = np.gradient(tau[1])
    frob = a * a + b * b + c * c + d * d
    det = a * d - b * c
    largest = np.sqrt(0.5 * (frob + np.sqrt(np.maximum(frob * frob - 4 * det * det, 0.0))))
    return float(largest.max())


def displacement_field(shape: tuple[int, int], seed: int = 0, smoothness: float | None = None) -> np.ndarray:
    """τ0: a smooth random displacement field (2, H, W) (row and column components, in pixels) with
    ‖∇τ0‖_∞ = 1 (see `max_jacobian_norm`): white Gaussian noise smoothed by a periodic Gaussian of
    width `smoothness` pixels (default min(H, W)/8), then rescaled."""
    H, W = check_int("shape[0]", shape[0], 4), check_int("shape[1]", shape[1], 4)
    seed = check_int("seed", seed, 0)
    sigma = min(H, W) / 8 if smoothness is None else check_real("smoothness", smoothness, 0.0, strict_minimum=True)
    noise = np.random.default_rng(seed).standard_normal((2, H, W))
    tau = np.stack([ndimage.gaussian_filter(n, sigma, mode="wrap") for n in noise])
    return tau / max_jacobian_norm(tau)


def warp(image, tau: np.ndarray, order: int = 1) -> np.ndarray:
    """L_τ x(u) = x(u − τ(u)) by interpolation (mirror reflection outside the image): `image` (H, W),
    `tau` (2, H, W) (row and column displacements in pixels) → (H, W) float64. `order` 1 is bilinear,
    3 cubic spline (`scipy.ndimage.map_coordinates`)."""
    x = check_image(image)
    order = check_int("order", order, 0, 5)
    tau = np.asarray(tau, dtype=np.float64)
    if tau.shape != (2,) + x.shape:
        raise ValueError(f"tau must have shape (2, H, W) = {(2,) + x.shape}, got {tau.shape}.")
    grid = np.indices(x.shape, dtype=np.float64)
    return ndimage.map_coordinates(x, grid - tau, order=order, mode="mirror")


def deformation_distances(image, J: int, L: int = 8, s_values=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
                          seed: int = 0, *, max_order: int = 2, smoothness: float | None = None,
                          interpolation_order: int = 1) -> dict:
    """Stability to deformations (science.md §1): distances between x and L_{τ_s} x, τ_s = s·τ0.

    τ0 = `displacement_field(x.shape, seed, smoothness)` (‖∇τ0‖_∞ = 1), x_s = `warp(x, s·τ0)` (bilinear,
    or the spline order `interpolation_order`), and with
    x centred (its mean removed: no deformation changes a constant, which would only inflate the norms),
        pixel(s)      = ‖x_s − x‖ / ‖x‖,
        fourier(s)    = ‖|x̂_s| − |x̂|‖ / ‖x̂‖   (|x̂| the modulus of the 2-D DFT: translation invariant),
        scattering(s) = ‖S_J x_s − S_J x‖ / ‖S_J x‖   (full output),
    each minus its value at s = 0 (the interpolation error of the warp with no displacement, 0 up to
    rounding for this warp on the pixel grid). The scattering distance grows slowly and about linearly
    in s; the pixel distance much faster, and fourier ≤ pixel always (||a| − |b|| ≤ |a − b|).
    Caveat: bilinear interpolation at fractional positions also low-passes the image, which the finest
    wavelets (j = 0) see: on fine textures the scattering distance then jumps at the first s > 0 and
    flattens. That part is interpolation, not deformation; interpolation_order=3 (cubic spline) removes
    most of it.
    `s_values` must lie in [0, 1] and contain 0 (it is added when missing).

    Returns {"s", "max_displacement" (s·max|τ0| in pixels), "pixel", "fourier", "scattering"}, each (n,).
    """
    x = check_image(image, min_side=4)
    check_size_fits_J(x.shape, J)
    s = check_reals("s_values", s_values, 0.0, 1.0)
    if not np.any(s == 0):
        s = np.concatenate([[0.0], s])
    x = x - x.mean()
    tau0 = displacement_field(x.shape, seed, smoothness)
    warped = np.stack([warp(x, v * tau0, interpolation_order) for v in s])
    S = Scattering2D(J, x.shape, L, max_order)
    out = S(np.concatenate([x[None], warped]))
    Sx, Sw = out[0], out[1:]
    fx = np.abs(np.fft.fft2(x))
    pixel = np.array([_relative(w, x) for w in warped])
    fourier = np.array([_relative(np.abs(np.fft.fft2(w)), fx) for w in warped])
    scattering = np.array([_relative(sw, Sx) for sw in Sw])
    zero = int(np.flatnonzero(s == 0)[0])
    order = np.argsort(s, kind="stable")
    displacement = float(np.hypot(tau0[0], tau0[1]).max())
    return {
        "s": s[order],
        "max_displacement": s[order] * displacement,
        "pixel": (pixel - pixel[zero])[order],
        "fourier": (fourier - fourier[zero])[order],
        "scattering": (scattering - scattering[zero])[order],
    }


# -- non-expansiveness -----------------------------------------------------------------------------
def littlewood_paley_bound(shape: tuple[int, int], J: int, L: int = 8, normalize: bool = True) -> float:
    """max_ω A(ω) of the bank used by `Scattering2D(J, shape, L, normalize=normalize)`, with
    A = |φ̂_J|² + ½ Σ_{j,θ} (|ψ̂_{j,θ}(ω)|² + |ψ̂_{j,θ}(−ω)|²): 1 for the normalised bank (so S_J is
    non-expansive), slightly above 1 for the raw Morlet bank."""
    S = Scattering2D(J, shape, L, max_order=1)  # validates J, shape, L
    return filter_bank(*S.padded, S.J, S.L, normalize=bool(normalize)).lp_max


def lipschitz_ratios(images, J: int, L: int = 8, n_pairs: int = 32, seed: int = 0, *,
                     noise: float = 0.05, max_order: int = 2) -> dict:
    """Non-expansiveness: ratios r = ‖S_J x − S_J y‖·2^J / ‖x − y‖ with the normalised filter bank
    (`Scattering2D(..., normalize=True)`, Littlewood–Paley bound max A = 1). The factor 2^J accounts for
    the output being sampled every 2^J pixels (squared norms scale by 4^J).

    The contraction theorem applies to the signal the transform filters, the reflect-padded image
    (`explorer.scattering.padding.reflect_pad`): ratio_padded = ‖S_J x − S_J y‖·2^J / ‖pad(x − y)‖ ≤ 1
    (up to the tiny aliasing of the 2^J subsampling). Since ‖pad(x − y)‖ ≥ ‖x − y‖, r itself is usually ≤ 1 too, but a difference
    concentrated next to the border (which padding mirrors) can push r slightly above 1.

    `images` (N, H, W), N ≥ 2. Pairs: `n_pairs` pairs (x_i, x_j) of distinct images drawn at random, and
    `n_pairs` pairs (x_i, x_i + ε) with ε Gaussian noise of standard deviation `noise`·std(images).

    Returns {"ratio", "ratio_padded" (2·n_pairs,), "kind" (2·n_pairs,) of "distinct" / "noise", "first", "second"
    (image indices; second = −1 for the noisy copy), "bound" (= littlewood_paley_bound, 1.0 up to
    rounding), "raw_lp_max" (max A of the raw, unnormalised Morlet bank)}.
    """
    return finish(lipschitz_ratio_pieces(images, J, L, n_pairs, seed, noise=noise, max_order=max_order))


def lipschitz_ratio_pieces(images, J: int, L: int = 8, n_pairs: int = 32, seed: int = 0, *,
                           noise: float = 0.05, max_order: int = 2, chunk: int = 16) -> Pieces:
    """`lipschitz_ratios` in pieces (`explorer.analysis.piecework`): the pairs are scattered `chunk` images
    at a time, with the fraction done yielded after each; returns the same dict."""
    xs = check_images(images)
    check_size_fits_J(xs.shape[1:], J)
    n_pairs = check_int("n_pairs", n_pairs, 1)
    seed = check_int("seed", seed, 0)
    noise = check_real("noise", noise, 0.0, strict_minimum=True)
    rng = np.random.default_rng(seed)
    N = len(xs)
    first = rng.integers(0, N, n_pairs)
    second = (first + rng.integers(1, N, n_pairs)) % N  # never equal to first
    noisy_of = rng.integers(0, N, n_pairs)
    eps = rng.standard_normal((n_pairs,) + xs.shape[1:]) * noise * xs.std()
    a = np.concatenate([xs[first], xs[noisy_of]])
    b = np.concatenate([xs[second], xs[noisy_of] + eps])
    S = Scattering2D(J, xs.shape[1:], L, max_order, normalize=True)
    both = np.concatenate([a, b])
    chunk = check_int("chunk", chunk, 1)
    parts = []
    for start in range(0, len(both), chunk):
        parts.append(S(both[start:start + chunk]))
        if start + chunk < len(both):
            yield (start + chunk) / len(both)
    Sa, Sb = np.split(np.concatenate(parts), 2)
    num = np.sqrt(((Sa - Sb) ** 2).sum(axis=(-3, -2, -1))) * 2**S.J
    den = np.sqrt(((a - b) ** 2).sum(axis=(-2, -1)))
    ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    den_padded = np.sqrt((reflect_pad(a - b, S.J) ** 2).sum(axis=(-2, -1)))
    ratio_padded = np.where(den_padded > 0, num / np.where(den_padded > 0, den_padded, 1.0), 0.0)
    return {
        "ratio": ratio,
        "ratio_padded": ratio_padded,
        "kind": np.array(["distinct"] * n_pairs + ["noise"] * n_pairs),
        "first": np.concatenate([first, noisy_of]),
        "second": np.concatenate([second, -np.ones(n_pairs, dtype=np.int64)]),
        "bound": littlewood_paley_bound(xs.shape[1:], J, L, normalize=True),
        "raw_lp_max": littlewood_paley_bound(xs.shape[1:], J, L, normalize=False),
    }


# -- energy ----------------------------------------------------------------------------------------
def energy_per_order(S, J: int, L: int = 8, relative: bool = True) -> np.ndarray:
    """Energies ‖S0‖², ‖S1‖², ‖S2‖² of a scattering output `S` (..., P, h, w) (orders inferred from P):
    (..., max_order + 1); with `relative`, divided by their sum (the total energy of the output).
    Multiply absolute energies by 4^J to compare them with ‖x‖² (output sampled every 2^J pixels)."""
    S, J, L, max_order = check_output(S, J, L)
    parts = split_orders(S, J, L, max_order)
    # S0 (..., h, w), S1 (..., J, L, h, w), S2 (..., pairs, L, L, h, w): sum all but the leading axes.
    energies = np.stack([(p ** 2).sum(axis=tuple(range(S.ndim - 3, p.ndim))) for p in parts], axis=-1)
    if relative:
        total = energies.sum(axis=-1, keepdims=True)
        energies = energies / np.where(total > 0, total, 1.0)
    return energies


def energy_per_path(S, paths: list[Path], relative: bool = True) -> np.ndarray:
    """Energy ‖S_p‖² of every path of an output `S` (..., P, h, w) with P = len(paths): (..., P);
    with `relative`, divided by the total. Select entries by meaning with `explorer.scattering.select`."""
    S = as_float64(S)
    if S.ndim < 3 or S.shape[-3] != len(paths):
        raise ValueError(f"S must have shape (..., P, h, w) with P = len(paths) = {len(paths)}, "
                         f"got shape {S.shape}.")
    energies = (S ** 2).sum(axis=(-2, -1))
    if relative:
        total = energies.sum(axis=-1, keepdims=True)
        energies = energies / np.where(total > 0, total, 1.0)
    return energies
