"""Cached computations behind the pages (no Panel here): images by source, scattering results by parameters.

Caches are process-wide and bounded, so every session reuses what another computed (same image, J, L).
"""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from explorer.data import images as img
from explorer.scattering import Path, Scattering2D, split_orders

SIZES = (32, 64, 128)


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square of a (H, W) image resized to (size, size), float32 in [0, 1]."""
    return img._resize(img._centre_square(np.asarray(image, np.float32)), (size, size))


@functools.lru_cache(maxsize=64)
def sample(name: str, size: int) -> np.ndarray:
    return img.sample_image(name, size=size)


@functools.lru_cache(maxsize=64)
def synthetic(kind: str, size: int, angle_deg: float = 0.0, period: float = 8.0) -> np.ndarray:
    params = {}
    if kind in ("grating", "bar"):
        params["angle"] = np.radians(angle_deg)
    if kind == "grating":
        params["period"] = period
    return img.synthetic_image(kind, size=size, **params)


@functools.lru_cache(maxsize=1)
def cifar_test():
    """The CIFAR-10 test split (raises DatasetNotFoundError when no dataset is configured)."""
    from explorer.data import load_cifar10

    return load_cifar10("test")


def cifar_available() -> bool:
    from explorer.data import DatasetNotFoundError, find_cifar10

    try:
        find_cifar10()
        return True
    except DatasetNotFoundError:
        return False


def cifar_image(class_name: str, index: int, size: int) -> np.ndarray:
    """The `index`-th test image of a class, in gray, resized to (size, size)."""
    data = cifar_test()
    if class_name not in data.classes:
        raise ValueError(f"unknown CIFAR-10 class {class_name!r}; classes: {', '.join(data.classes)}")
    members = np.flatnonzero(data.labels == data.classes.index(class_name))
    if not 0 <= index < len(members):
        raise ValueError(f"index {index} is out of range: class {class_name!r} has {len(members)} test images.")
    rgb = data.images[members[index]].astype(np.float32) / 255.0
    gray = np.tensordot(img.LUMA, rgb, axes=(0, 0))
    return _fit(gray, size)


def uploaded(data: bytes, size: int) -> tuple[np.ndarray, str | None]:
    """An uploaded PNG/JPEG as a (size, size) gray image, and a note on what was changed.
    Raises `explorer.data.ImageError` with a readable message for anything that is not a usable image."""
    if not data:
        raise img.ImageError("the uploaded file is empty")
    if len(data) > img.MAX_UPLOAD_BYTES:  # the browser refuses these; a file can still come another way
        raise img.ImageError(f"the file is {len(data) / 1e6:.1f} MB and the limit is {img.MAX_UPLOAD_MB} MB: "
                             "upload a smaller copy (a side of 1000 pixels is plenty)")
    loaded = img.load_image_file(bytes(data), max_side=max(4 * size, 256))
    notes = [loaded.note] if loaded.note else []
    h, w = loaded.image.shape[-2:]
    if min(h, w) < 8:
        raise img.ImageError(f"the uploaded image is only {w}×{h} pixels; use at least 8×8")
    if (h, w) != (size, size):
        notes.append(f"centre square resized to {size}×{size}")
    return _fit(loaded.image, size), "; ".join(notes) or None


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


_results: OrderedDict = OrderedDict()
_lock = threading.Lock()
MAX_RESULTS = 24


def scatter(x: np.ndarray, J: int, L: int) -> ScatteringResult:
    """S_J x (order 2), cached by (image content, J, L). Raises ValueError for a J too large for x."""
    x = np.ascontiguousarray(x, np.float32)
    key = (image_key(x), x.shape, int(J), int(L))
    with _lock:
        if key in _results:
            _results.move_to_end(key)
            return _results[key]
    S = transform(x.shape, int(J), int(L))(x)
    result = ScatteringResult(x, int(J), int(L), S)
    with _lock:
        _results[key] = result
        while len(_results) > MAX_RESULTS:
            _results.popitem(last=False)
    return result


# -- invariance and stability (explorer.analysis.invariance), cached by image name and parameters ---------
ROTATION_GRID = tuple(range(0, 361, 5))  # the rotation slider's steps: a move only reads the curve


def named_image(name: str, size: int) -> np.ndarray:
    """'synthetic: grating' or a sample name, as a (size, size) gray image."""
    if name.startswith("synthetic: "):
        return synthetic(name.split(": ", 1)[1], size, 30.0, 8.0)
    return sample(name, size)


def image_names() -> list[str]:
    names = list_images_cached()
    return names["sample"] + [f"synthetic: {k}" for k in names["synthetic"]]


@functools.lru_cache(maxsize=1)
def list_images_cached():
    return img.list_images()


@functools.lru_cache(maxsize=32)
def rotation_curve(name: str, size: int, J: int, L: int) -> dict:
    from explorer.analysis.invariance import rotation_errors

    return rotation_errors(named_image(name, size), J, L, degrees=ROTATION_GRID)


@functools.lru_cache(maxsize=256)
def rotation_point(name: str, size: int, J: int, L: int, degrees: float) -> dict:
    """The error at one angle (read from the cached curve when the angle is on its grid) and the rotated image."""
    from explorer.analysis.invariance import rotate, rotation_errors

    x = named_image(name, size)
    curve = rotation_curve(name, size, J, L)
    hit = np.flatnonzero(np.isclose(curve["degrees"], degrees))
    if hit.size:
        error, shift = float(curve["error"][hit[0]]), int(curve["shift"][hit[0]])
    else:
        out = rotation_errors(x, J, L, degrees=[degrees])
        error, shift = float(out["error"][0]), int(out["shift"][0])
    return {"error": error, "shift": shift, "image": rotate(x, degrees)}


@functools.lru_cache(maxsize=32)
def translation_curve(name: str, size: int, J: int, L: int) -> dict:
    from explorer.analysis.invariance import translation_errors

    return translation_errors(named_image(name, size), J, L, shifts=range(2 ** (J + 1) + 1), window=True)


@functools.lru_cache(maxsize=32)
def deformation_curve(name: str, size: int, J: int, L: int) -> dict:
    from explorer.analysis.invariance import deformation_distances

    return deformation_distances(named_image(name, size), J, L, s_values=np.round(np.linspace(0, 0.3, 13), 3),
                                 interpolation_order=3)


@functools.lru_cache(maxsize=64)
def deformed(name: str, size: int, s: float) -> np.ndarray:
    from explorer.analysis.invariance import displacement_field, warp

    x = named_image(name, size)
    return np.clip(warp(x, s * displacement_field(x.shape, 0), 3), 0, 1)


@functools.lru_cache(maxsize=16)
def lipschitz(size: int, J: int, L: int, n_pairs: int = 48) -> dict:
    """Ratios ‖Sx − Sy‖/‖x − y‖ over pairs of the bundled images (or CIFAR-10 test images when configured)."""
    from explorer.analysis.invariance import lipschitz_ratios

    if cifar_available():
        data = cifar_test()
        rgb = data.images[:200].astype(np.float32) / 255.0
        gray = np.tensordot(rgb, img.LUMA, axes=(1, 0))
        images = np.stack([_fit(g, size) for g in gray])
        source = "200 CIFAR-10 test images"
    else:
        names = image_names()
        images = np.stack([named_image(n, size) for n in names])
        source = f"{len(names)} bundled and synthetic images"
    out = lipschitz_ratios(images, J, L, n_pairs=n_pairs)
    out["source"] = source
    return out
