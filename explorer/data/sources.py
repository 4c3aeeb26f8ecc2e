"""Gray images by source, as the app and the notebooks pick them: bundled samples, synthetic patterns,
CIFAR-10 test images and uploaded files, each a (size, size) float32 array in [0, 1].

Caches are process-wide and bounded, so every session reuses an image another one loaded. No UI import.
"""
from __future__ import annotations

import functools

import numpy as np

from .images import (
    LUMA,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MB,
    UPLOAD_FORMATS,
    ImageError,
    fit_square,
    list_images,
    load_image_file,
    sample_image,
    synthetic_image,
)

SIZES = (32, 64, 128)  # the image sizes the pages offer
SYNTHETIC_PREFIX = "synthetic: "


@functools.lru_cache(maxsize=64)
def sample(name: str, size: int) -> np.ndarray:
    return sample_image(name, size=size)


@functools.lru_cache(maxsize=64)
def synthetic(kind: str, size: int, angle_deg: float = 0.0, period: float = 8.0) -> np.ndarray:
    params = {}
    if kind in ("grating", "bar"):
        params["angle"] = np.radians(angle_deg)
    if kind == "grating":
        params["period"] = period
    return synthetic_image(kind, size=size, **params)


def cifar_test():
    """The CIFAR-10 test split of the configured location (raises DatasetNotFoundError when none is), read
    once per location: a notebook that points EXPLORER_DATA elsewhere gets the other copy."""
    from .cifar10 import find_cifar10

    return _cifar_test_at(str(find_cifar10()))


@functools.lru_cache(maxsize=1)
def _cifar_test_at(location: str):
    from .cifar10 import load_cifar10

    return load_cifar10("test", location)


def cifar_available() -> bool:
    from .cifar10 import DatasetNotFoundError, find_cifar10

    try:
        find_cifar10()
        return True
    except DatasetNotFoundError:
        return False


def _to_gray(rgb_uint8: np.ndarray) -> np.ndarray:
    """(..., 3, H, W) uint8 → (..., H, W) float32 luma in [0, 1]."""
    return np.tensordot(rgb_uint8.astype(np.float32) / 255.0, LUMA, axes=(-3, 0))


def cifar_image(class_name: str, index: int, size: int) -> np.ndarray:
    """The `index`-th test image of a class, in gray, resized to (size, size)."""
    data = cifar_test()
    if class_name not in data.classes:
        raise ValueError(f"unknown CIFAR-10 class {class_name!r}; classes: {', '.join(data.classes)}")
    members = np.flatnonzero(data.labels == data.classes.index(class_name))
    if not 0 <= index < len(members):
        raise ValueError(f"index {index} is out of range: class {class_name!r} has {len(members)} test images.")
    return fit_square(_to_gray(data.images[members[index]]), size)


def cifar_gray_images(count: int, size: int) -> np.ndarray:
    """The first `count` CIFAR-10 test images in gray, resized: (count, size, size)."""
    return np.stack([fit_square(g, size) for g in _to_gray(cifar_test().images[:count])])


def uploaded(data: bytes | str, size: int) -> tuple[np.ndarray, str | None]:
    """An uploaded PNG/JPEG as a (size, size) gray image, and a note on what was changed.
    Raises `explorer.data.ImageError` with a readable message for anything that is not a usable image.
    Only the content counts: the file's name and declared type are never used (nor written anywhere), and
    only Pillow's PNG and JPEG decoders are tried."""
    if isinstance(data, str):  # Panel's FileDropper decodes a file declared text/* as UTF-8
        data = data.encode("utf-8", "surrogateescape")
    if not data:
        raise ImageError("the uploaded file is empty")
    if len(data) > MAX_UPLOAD_BYTES:  # the browser refuses these; a file can still come another way
        raise ImageError(f"the file is {len(data) / 1e6:.1f} MB and the limit is {MAX_UPLOAD_MB} MB: "
                         "upload a smaller copy (a side of 1000 pixels is plenty)")
    loaded = load_image_file(bytes(data), max_side=max(4 * size, 256), formats=UPLOAD_FORMATS)
    notes = [loaded.note] if loaded.note else []
    h, w = loaded.image.shape[-2:]
    if min(h, w) < 8:
        shrunk = loaded.note and loaded.note.startswith("downscaled from ")
        if shrunk:  # "downscaled from WxH to ...": a long thin strip
            raise ImageError(f"the uploaded image is {loaded.note.split()[2].replace('x', '×')} pixels, too thin: "
                             f"it would be {w}×{h} once reduced; crop it closer to a square (at least 8×8)")
        raise ImageError(f"the uploaded image is only {w}×{h} pixels; use at least 8×8")
    if (h, w) != (size, size):
        notes.append(f"centre square resized to {size}×{size}")
    return fit_square(loaded.image, size), "; ".join(notes) or None


@functools.lru_cache(maxsize=1)
def _listed() -> dict[str, list[str]]:
    return list_images()


def image_names() -> list[str]:
    """Every sample name, then every synthetic pattern as 'synthetic: <kind>'."""
    names = _listed()
    return names["sample"] + [SYNTHETIC_PREFIX + k for k in names["synthetic"]]


def named_image(name: str, size: int) -> np.ndarray:
    """'synthetic: grating' or a sample name, as a (size, size) gray image."""
    if name.startswith(SYNTHETIC_PREFIX):
        return synthetic(name[len(SYNTHETIC_PREFIX):], size, 30.0, 8.0)
    return sample(name, size)
