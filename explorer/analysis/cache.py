"""Cached results behind the app's pages and the notebooks: scattering results by image content and (J, L),
and the invariance curves by image name and parameters (images come from `explorer.data.sources`).

Caches are process-wide and bounded, so every session reuses what another computed (same image, J, L).
No UI import.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

from explorer.data import sources
from explorer.lru import SharedLRU
from explorer.scattering import Path, Scattering2D, split_orders

from .invariance import (
    deformation_distances,
    displacement_field,
    lipschitz_ratio_pieces,
    rotate,
    rotation_error_pieces,
    rotation_errors,
    smooth_window,
    translate,
    translation_errors,
    warp,
)
from .piecework import RUNNER, Pieces, Request, finish


@functools.lru_cache(maxsize=16)
def transform(shape: tuple[int, int], J: int, L: int, max_order: int = 2) -> Scattering2D:
    return Scattering2D(J, shape, L=L, max_order=max_order)


def image_key(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x, np.float32).tobytes()).hexdigest()


@dataclass
class ScatteringResult:
    """S_J x for one image and (J, L): the full output (P, h, w), its structured views, unaveraged maps."""

    x: np.ndarray
    J: int
    L: int
    S: np.ndarray
    s0: np.ndarray = field(init=False)
    s1: np.ndarray = field(init=False)  # (J, L, h, w)
    s2: np.ndarray = field(init=False)  # (J(J−1)/2, L, L, h, w)
    _maps: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        parts = split_orders(self.S, self.J, self.L)
        self.s0, self.s1 = parts[0], parts[1]
        self.s2 = parts[2] if len(parts) > 2 else np.zeros((0, self.L, self.L) + self.S.shape[-2:], self.S.dtype)

    @property
    def transform(self) -> Scattering2D:
        return transform(self.x.shape, self.J, self.L)

    def modulus_map(self, j1: int, theta1: int) -> np.ndarray:
        """|x ⋆ ψ_{j1,θ1}| at the image's resolution (cached)."""
        key = (j1, theta1)
        if key not in self._maps:
            self._maps[key] = self.transform.modulus_maps(self.x, [Path(1, j1, theta1)])[0]
        return self._maps[key]


MAX_RESULTS = 24
_results = SharedLRU(MAX_RESULTS)


def scatter(x: np.ndarray, J: int, L: int) -> ScatteringResult:
    """S_J x (order 2), cached by (image content, J, L). Raises ValueError for a J too large for x."""
    x = np.ascontiguousarray(x, np.float32)
    key = (image_key(x), x.shape, int(J), int(L))
    return _results.get_or_compute(
        key, lambda: ScatteringResult(x, int(J), int(L), transform(x.shape, int(J), int(L))(x)))


# -- invariance and stability (explorer.analysis.invariance), cached by image name and parameters ---------
ROTATION_GRID = tuple(range(0, 361, 5))  # the rotation slider's steps: a move only reads the curve
CURVES = ("rotation", "translation", "deformation")
MAX_CURVES = 48


def translation_shifts(size: int, J: int) -> range:
    """The shifts c of the translation curve: 0 … 2^(J+1), and never a whole image width (at J = 4 on
    32×32 the last shift would be 32 columns: a circular shift by the width is no shift at all)."""
    return range(min(2 ** (J + 1), int(size) - 1) + 1)


def _curve_pieces(kind: str, name: str, size: int, J: int, L: int) -> Pieces:
    x = sources.named_image(name, size)
    if kind == "rotation":
        return (yield from rotation_error_pieces(x, J, L, degrees=ROTATION_GRID))
    if kind == "translation":
        return translation_errors(x, J, L, shifts=translation_shifts(size, J), window=True)
    if kind == "deformation":
        return deformation_distances(x, J, L, s_values=np.round(np.linspace(0, 0.3, 13), 3),
                                     interpolation_order=3)
    raise ValueError(f"kind must be one of {', '.join(CURVES)}, got {kind!r}.")


_curves = SharedLRU(MAX_CURVES)


def curve_key(kind: str, name: str, size: int, J: int, L: int) -> tuple:
    return ("curve", str(kind), str(name), int(size), int(J), int(L))


def cached_curve(kind: str, name: str, size: int, J: int, L: int) -> dict | None:
    """The curve if some session has computed it already, else None (never computes)."""
    return _curves.get(curve_key(kind, name, size, J, L))


def curve_pieces(kind: str, name: str, size: int, J: int, L: int) -> Pieces:
    """The invariance curve `kind` ("rotation", "translation", "deformation") of the named image, in pieces
    (`explorer.analysis.piecework`); stored in the process-wide cache when it ends."""
    key = curve_key(kind, name, size, J, L)
    out = yield from _curve_pieces(kind, name, int(size), int(J), int(L))
    return _curves.put(key, out)


def clear_curves() -> None:
    _curves.clear()


def curve(kind: str, name: str, size: int, J: int, L: int) -> dict:
    """The curve, computed in this thread when no one has yet (notebooks, the server's warm-up, tests)."""
    found = cached_curve(kind, name, size, J, L)
    return found if found is not None else finish(curve_pieces(kind, name, size, J, L))


def request_curve(kind: str, name: str, size: int, J: int, L: int, on_done, on_progress=None) -> Request:
    """Ask the shared `PieceRunner` for the curve: `on_done(curve, error)` is called from its thread when it
    is ready (`on_progress(fraction)` after each piece); cancel the returned request when its page no
    longer needs it."""
    return RUNNER.submit(curve_key(kind, name, size, J, L), lambda: curve_pieces(kind, name, size, J, L),
                         on_done=on_done, on_progress=on_progress)


def rotation_curve(name: str, size: int, J: int, L: int) -> dict:
    return curve("rotation", name, size, J, L)


def translation_curve(name: str, size: int, J: int, L: int) -> dict:
    return curve("translation", name, size, J, L)


def deformation_curve(name: str, size: int, J: int, L: int) -> dict:
    return curve("deformation", name, size, J, L)


def rotation_error(curve: dict, name: str, size: int, J: int, L: int, degrees: float) -> float:
    """The rotation error at `degrees`: read from `curve` on its grid, else computed for that angle alone."""
    hit = np.flatnonzero(np.isclose(curve["degrees"], degrees))
    if hit.size:
        return float(curve["error"][hit[0]])
    return float(rotation_errors(sources.named_image(name, size), J, L, degrees=[degrees])["error"][0])


@functools.lru_cache(maxsize=256)
def rotated(name: str, size: int, degrees: float) -> np.ndarray:
    """The image rotated by `degrees` (what the rotation curve compares)."""
    return rotate(sources.named_image(name, size), degrees)


@functools.lru_cache(maxsize=64)
def shifted(name: str, size: int, shift: int) -> np.ndarray:
    """The windowed image moved right by `shift` columns: what `translation_curve` compares."""
    x = sources.named_image(name, size)
    return translate(x * smooth_window(x.shape), shift)


@functools.lru_cache(maxsize=64)
def deformed(name: str, size: int, s: float) -> np.ndarray:
    x = sources.named_image(name, size)
    return np.clip(warp(x, s * displacement_field(x.shape, 0), 3), 0, 1)


_lipschitz = SharedLRU(16)


def lipschitz_pieces(size: int, J: int, L: int, n_pairs: int = 48) -> Pieces:
    """Ratios ‖Sx − Sy‖/‖x − y‖ over pairs of the bundled images (or CIFAR-10 test images when configured), in
    pieces (`explorer.analysis.piecework`); kept in the process-wide cache when done."""
    key = (int(size), int(J), int(L), int(n_pairs))
    found = _lipschitz.get(key)
    if found is not None:
        return found
    if sources.cifar_available():
        images = sources.cifar_gray_images(200, size)
        source = "200 CIFAR-10 test images"
    else:
        names = sources.image_names()
        images = np.stack([sources.named_image(n, size) for n in names])
        source = f"{len(names)} bundled and synthetic images"
    out = yield from lipschitz_ratio_pieces(images, J, L, n_pairs=n_pairs)
    out["source"] = source
    return _lipschitz.put(key, out)


def lipschitz(size: int, J: int, L: int, n_pairs: int = 48) -> dict:
    """`lipschitz_pieces` computed in this thread (or read from the cache)."""
    return finish(lipschitz_pieces(size, J, L, n_pairs))


# -- the first layer W₁ of a stored SLE run (explorer.analysis.spectra), cached by run id (weights written later,
# by a run still training, show only after a restart) -----------------------------------------------------
@functools.lru_cache(maxsize=8)
def cached_first_layer(run_id: str, effective: bool = False):
    """`spectra.first_layer` of the stored run `run_id` (rebuilt on the CPU), as learned or effective
    W₁·diag(1/σ); loaded once per process. ValueError when the run is missing, damaged or not SLE-like."""
    from explorer.runs import RunStore

    from .spectra import first_layer
    from .threshold import check_sle

    try:
        run = RunStore().load(run_id)
        check_sle(run)
        model = run.build_model("cpu")
    except OSError as exc:  # a missing run (RunNotFoundError), an unreadable file
        raise ValueError(f"cannot load run {run_id}: {exc}") from None
    return first_layer(model, effective=bool(effective))


@functools.lru_cache(maxsize=8)
def cached_invariance_ranking(run_id: str, effective: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(scores, order) of the run's units: `spectra.invariance_scores` per unit k, and the units sorted by
    decreasing score (order[0] is the most rotation-invariant unit; ties by unit index)."""
    from .spectra import invariance_scores

    scores = invariance_scores(cached_first_layer(run_id, bool(effective)))
    order = np.argsort(-scores, kind="stable")
    return scores, order
