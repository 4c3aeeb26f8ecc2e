"""The cached computations behind the pages (data.sources, analysis.cache): uploads of every kind of bad
or unusual image, images by name, caching."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from explorer.analysis import cache
from explorer.data import ImageError, sources


def encode(array, mode=None, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "gray16", "jpeg"])
def test_unusual_images_are_converted(kind):
    rng = np.random.default_rng(0)
    if kind == "gray":
        data = encode((rng.random((40, 60)) * 255).astype(np.uint8))
    elif kind == "rgb":
        data = encode((rng.random((40, 60, 3)) * 255).astype(np.uint8))
    elif kind == "rgba":
        data = encode((rng.random((40, 60, 4)) * 255).astype(np.uint8))
    elif kind == "gray16":
        data = encode((rng.random((40, 60)) * 65535).astype(np.uint16))
    else:
        data = encode((rng.random((40, 60, 3)) * 255).astype(np.uint8), fmt="JPEG")
    x, note = sources.uploaded(data, 32)
    assert x.shape == (32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert "resized to 32×32" in note
    if kind == "rgba":
        assert "transparency" in note


@pytest.mark.parametrize("data, message", [(b"", "empty"), (b"hello, not an image", "not an image"),
                                           (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "not an image")])
def test_bad_uploads_raise_readable_errors(data, message):
    with pytest.raises(ImageError, match=message):
        sources.uploaded(data, 32)


def test_truncated_upload():
    data = encode((np.random.default_rng(1).random((64, 64)) * 255).astype(np.uint8))
    with pytest.raises(ImageError, match="corrupt or truncated"):
        sources.uploaded(data[: len(data) // 2], 32)


def test_tiny_upload():
    with pytest.raises(ImageError, match="at least 8×8"):
        sources.uploaded(encode(np.zeros((4, 4), np.uint8)), 32)


@pytest.mark.slow
def test_huge_upload_is_downscaled_with_a_note():
    data = encode(np.zeros((10_000, 10_000), np.uint8))  # compresses to ~100 kB, decodes to 100 Mpixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, note = sources.uploaded(data, 64)
    assert x.shape == (64, 64)
    assert "downscaled from 10000x10000" in note


def test_scatter_is_cached_and_checks_J():
    x = sources.synthetic("disk", 32)
    a = cache.scatter(x, 2, 8)
    assert cache.scatter(x.copy(), 2, 8) is a
    assert a.S.shape == (81, 8, 8)
    with pytest.raises(ValueError, match="2\\^J = 64"):
        cache.scatter(x, 6, 8)


def test_named_images():
    names = sources.image_names()
    assert "camera" in names and "synthetic: grating" in names
    assert sources.named_image("synthetic: grating", 32).shape == (32, 32)
