"""A few hundred CIFAR-10 test images shipped with the package, so the pages that show a trained network's
responses (SLE thresholding, rotation invariance) work on a fresh machine without the dataset.

``explorer/data/cifar10_test_samples.npz`` holds 300 test images (30 per class, uint8, 3 KB each), their
labels, their index in the test split and the class names; `write_samples` made it from the configured
CIFAR-10 (the copy in the project's shared datasets, a JPEG re-assembly of CIFAR-10: see its README).
Scattering features of these images are computed on the fly; they are never a substitute for the full test
set when a figure claims the 10,000-image accuracy.

`test_images` is what a page asks for: the configured CIFAR-10 test split when there is one, else these.
Computation side: no UI import.
"""
from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

SAMPLES_PATH = Path(__file__).resolve().parent / "cifar10_test_samples.npz"
SAMPLES_PER_CLASS = 30


class TestImages(NamedTuple):
    images: np.ndarray  # (N, 3, 32, 32) uint8, RGB planes
    labels: np.ndarray  # (N,) int64
    indices: np.ndarray  # (N,) int64: each image's index in the CIFAR-10 test split
    classes: tuple[str, ...]
    source: str  # said on every figure: "CIFAR-10 test set (10,000 images)" or the shipped samples


class SamplesError(OSError):
    """The shipped sample file is missing or damaged (a broken installation)."""


def _read(path: Path) -> TestImages:
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = np.asarray(data["images"]), np.asarray(data["labels"])
            indices, classes = np.asarray(data["indices"]), tuple(str(c) for c in data["classes"])
    except (OSError, KeyError, ValueError) as exc:
        raise SamplesError(f"the shipped CIFAR-10 test samples {path} cannot be read ({exc}); reinstall the "
                           "package (`pip install -e .`) or configure the dataset (EXPLORER_DATA).") from None
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32)
            or labels.shape != (len(images),) or indices.shape != (len(images),) or len(classes) != 10):
        raise SamplesError(f"the shipped CIFAR-10 test samples {path} have an unexpected layout "
                           f"(images {images.shape} {images.dtype}); reinstall the package.")
    images.flags.writeable = False
    labels = labels.astype(np.int64)
    labels.flags.writeable = False
    return TestImages(images, labels, indices.astype(np.int64), classes,
                      f"{len(images)} CIFAR-10 test images shipped with the package")


@functools.lru_cache(maxsize=1)
def shipped_test_images() -> TestImages:
    """The shipped 300 test images (read once per process; read-only arrays)."""
    return _read(SAMPLES_PATH)


def test_images(limit: int | None = None, prefer_full: bool = True) -> TestImages:
    """Test images for a figure: the configured CIFAR-10 test split (when ``prefer_full`` and a dataset is
    configured), else the shipped samples; ``limit`` keeps that many, balanced over the classes."""
    from .subsets import balanced_limit_indices

    chosen = _full_test_images() if prefer_full else None
    chosen = chosen if chosen is not None else shipped_test_images()
    if limit is not None and limit < len(chosen.labels):
        keep = balanced_limit_indices(chosen.labels, int(limit))
        chosen = chosen._replace(images=chosen.images[keep], labels=chosen.labels[keep],
                                 indices=chosen.indices[keep])
    return chosen


def _full_test_images() -> TestImages | None:
    from .cifar10 import DatasetFormatError, DatasetNotFoundError
    from .sources import cifar_test

    try:
        data = cifar_test()
    except (DatasetNotFoundError, DatasetFormatError):
        return None
    return TestImages(data.images, data.labels, np.arange(len(data.labels), dtype=np.int64), data.classes,
                      f"CIFAR-10 test set ({len(data.labels):,} images)")


def write_samples(path: str | os.PathLike = SAMPLES_PATH, per_class: int = SAMPLES_PER_CLASS,
                  data: str | os.PathLike | None = None) -> Path:
    """Write the sample file from the configured CIFAR-10 (``data`` overrides EXPLORER_DATA): the first
    ``per_class`` test images of each class in dataset order (`balanced_limit_indices`), compressed."""
    from explorer.atomic import atomic_write

    from .cifar10 import load_cifar10
    from .subsets import balanced_limit_indices

    test = load_cifar10("test", data)
    keep = balanced_limit_indices(test.labels, per_class * len(test.classes))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=test.images[keep], labels=test.labels[keep].astype(np.int64),
                        indices=keep.astype(np.int64), classes=np.array(test.classes))
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)
