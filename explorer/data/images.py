"""Single images for the dashboards that need no dataset: bundled samples, synthetic patterns, user files.

Every function returns float32 arrays in [0, 1]: grayscale (H, W) by default, or (3, H, W) with
``color=True`` for colour sources (grayscale sources stay (H, W)). Colour is reduced to gray with the
Rec. 601 luma weights (0.299, 0.587, 0.114), the same as Pillow's "L" conversion.

Orientation convention (synthetic images): x points right along columns, y points UP (rows decreasing),
the origin is the image centre ((size - 1) / 2, so that ``np.rot90`` maps the grid onto itself), and an
``angle`` is measured counterclockwise from +x, in radians.
"""

from __future__ import annotations

import inspect
import io
import os
import re
from typing import NamedTuple

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MAX_SIDE = 512  # uploaded images larger than this are downscaled (scattering cost grows with the area)
# Uploads larger than this are refused: a browser sends a file over the app's websocket, whose messages are
# limited to 20 MB (Bokeh's default), and a photo this large gains nothing at 128×128 pixels anyway.
MAX_UPLOAD_MB = 10
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000  # decimal megabytes, as the browser's file picker counts them
# Images whose decoded pixels would take more memory than this are refused before they are decoded (after a
# JPEG's decode-time reduction): a 236 kB PNG of 9000×9000 black RGB pixels took 3.5 s and 324 MB to decode,
# and Pillow's own guard (MAX_IMAGE_PIXELS, 89 megapixels) only warns up to twice its limit (179 megapixels,
# 716 MB in RGB). 256 MiB keeps a 10000×10000 grayscale scan (100 MB) and a 60-megapixel RGB PNG; photos are
# JPEGs, decoded at a reduced size anyway; the pages use at most 512 pixels a side.
MAX_DECODED_BYTES = 256 * 2**20
UPLOAD_FORMATS = ("PNG", "JPEG")  # what an upload may be (Pillow opens a phone's MPO photos as JPEG first)


class ImageError(ValueError):
    """Not a readable image (wrong format, truncated, too large to decode)."""


class LoadedImage(NamedTuple):
    image: np.ndarray  # float32 in [0, 1], (H, W) or (3, H, W)
    note: str | None  # what was changed on the way (downscaled, alpha flattened), None if nothing


# --- bundled samples -----------------------------------------------------------------------------------

# Only images shipped inside the packages: skimage's other samples need a download.
_SKIMAGE_SAMPLES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "moon",
    "page",
    "rocket",
    "text",
    "clock",
)
_SKLEARN_SAMPLES = {"china": "china.jpg", "flower": "flower.jpg"}


def _load_sample(name: str) -> np.ndarray:
    if name in _SKLEARN_SAMPLES:
        from sklearn.datasets import load_sample_image

        return load_sample_image(_SKLEARN_SAMPLES[name])
    import skimage.data

    return getattr(skimage.data, name)()


def sample_image(name: str, size: int | None = None, color: bool = False) -> np.ndarray:
    """A bundled sample image; ``size`` crops the centre square and resizes it to (size, size)."""
    if name not in _SKIMAGE_SAMPLES and name not in _SKLEARN_SAMPLES:
        raise ValueError(f"unknown sample image {name!r}; available: {', '.join(list_images()['sample'])}")
    image = _channels_first(_load_sample(name).astype(np.float32) / 255.0, color)
    if size is not None:
        image = _resize(_centre_square(image), (_check_size(size), _check_size(size)))
    return image


# --- synthetic patterns --------------------------------------------------------------------------------


def _grating(x, y, size, angle=0.0, period=8.0, phase=0.0):
    """Cosine grating whose wave vector points along ``angle``, with ``period`` pixels per cycle."""
    _positive(period=period)
    k = 2 * np.pi / period
    return 0.5 + 0.5 * np.cos(k * (x * np.cos(angle) + y * np.sin(angle)) + phase)


def _bar(x, y, size, angle=0.0, width=3.0, length=None):
    """Bright bar on black; ``angle`` is its normal, so it shares its dominant wave vector with a grating."""
    length = size / 2 if length is None else length
    _positive(width=width, length=length)
    across = x * np.cos(angle) + y * np.sin(angle)
    along = -x * np.sin(angle) + y * np.cos(angle)
    # Soft edges (pixel coverage approximated linearly) limit aliasing at oblique angles.
    return _coverage(width / 2 - np.abs(across)) * _coverage(length / 2 - np.abs(along))


def _disk(x, y, size, radius=None):
    radius = size / 4 if radius is None else radius
    _positive(radius=radius)
    return _coverage(radius - np.hypot(x, y))


def _checkerboard(x, y, size, cell=8):
    _positive(cell=cell)
    rows, cols = np.indices((size, size))
    return ((rows // cell + cols // cell) % 2).astype(np.float64)


def _noise(x, y, size, seed=0, sigma=0.0):
    """Uniform white noise; ``sigma`` > 0 smooths it (periodic Gaussian) and stretches it back to [0, 1]."""
    image = np.random.default_rng(seed).random((size, size))
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        image = gaussian_filter(image, sigma, mode="wrap")
        image = (image - image.min()) / max(image.max() - image.min(), 1e-12)
    return image


_SYNTHETIC = {"grating": _grating, "bar": _bar, "disk": _disk, "checkerboard": _checkerboard, "noise": _noise}


def synthetic_image(kind: str, size: int = 64, **params) -> np.ndarray:
    """A (size, size) float32 pattern in [0, 1]: grating, bar, disk, checkerboard or noise.

    Parameters per kind (angles in radians, lengths in pixels; see the module's orientation convention):
    grating(angle=0, period=8, phase=0), bar(angle=0, width=3, length=size/2), disk(radius=size/4),
    checkerboard(cell=8), noise(seed=0, sigma=0).
    """
    if kind not in _SYNTHETIC:
        raise ValueError(f"unknown synthetic image {kind!r}; available: {', '.join(_SYNTHETIC)}")
    make = _SYNTHETIC[kind]
    allowed = [p for p in inspect.signature(make).parameters if p not in ("x", "y", "size")]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"synthetic image {kind!r} has no parameter {', '.join(unknown)}; allowed: {allowed}"
        )
    size = _check_size(size)
    centre = (size - 1) / 2
    rows, cols = np.indices((size, size), dtype=np.float64)
    image = make(cols - centre, centre - rows, size, **params)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def list_images() -> dict[str, list[str]]:
    """Names accepted by ``sample_image`` ("sample") and ``synthetic_image`` ("synthetic")."""
    return {"sample": sorted([*_SKIMAGE_SAMPLES, *_SKLEARN_SAMPLES]), "synthetic": list(_SYNTHETIC)}


# --- user files ----------------------------------------------------------------------------------------


def load_image_file(
    source: str | os.PathLike | bytes,
    max_side: int = MAX_SIDE,
    color: bool = False,
    formats: tuple[str, ...] | None = None,
    max_bytes: int = MAX_DECODED_BYTES,
) -> LoadedImage:
    """Decode a PNG/JPEG (path or raw bytes) with Pillow into a float32 image in [0, 1].

    Palette and "1" images are expanded, 16-bit images scaled by 65535, transparency flattened on white,
    and images whose longest side exceeds ``max_side`` downscaled (the returned note says so).
    ``formats`` limits the Pillow formats tried (None: any Pillow reads); an image whose pixels would take
    more than ``max_bytes`` once decoded (as Pillow stores them) is refused before it is decoded.
    Raises ImageError for a missing, non-image, truncated or oversized (decompression bomb) file.
    """
    from PIL import Image, UnidentifiedImageError

    _check_size(max_side, "max_side")
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    name = "the uploaded file" if is_bytes else str(source)
    try:
        with Image.open(io.BytesIO(source) if is_bytes else source, formats=formats) as img:
            original = img.size
            if img.format in ("JPEG", "MPO"):
                img.draft(img.mode, (max_side, max_side))  # cheap decode-time reduction of huge JPEGs
            width, height = img.size  # after the reduction: what will really be decoded
            decoded = width * height * _PIXEL_BYTES.get(img.mode, 4)
            if decoded > max_bytes:
                raise ImageError(_too_large(name, f"{original[0]}×{original[1]} pixels, {decoded / 1e6:,.0f} MB "
                                            "once decoded", max_bytes))
            img.load()
            image, notes = _pil_to_float(img, max_side)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except Image.DecompressionBombError as exc:
        declared = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow refused it when opening it
        what = f"{int(declared[1]):,} pixels" if declared else "too many pixels"
        raise ImageError(_too_large(name, what, max_bytes)) from None
    except UnidentifiedImageError:
        if formats is None:
            raise ImageError(f"{name} is not an image Pillow can read (expected PNG or JPEG)") from None
        raise ImageError(
            f"{name} is not an image in {' or '.join(formats)} format "
            "(its content is checked, not its name)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name} is corrupt or truncated ({exc})") from None
    height, width = image.shape[:2]
    if (width, height) != original:
        notes.insert(
            0,
            f"downscaled from {original[0]}x{original[1]} to {width}x{height} "
            f"(longest side limit {max_side})",
        )
    image = _channels_first(image, color)
    return LoadedImage(image.astype(np.float32), "; ".join(notes) or None)


def _pil_to_float(img, max_side: int) -> tuple[np.ndarray, list[str]]:
    """Pillow image of any mode -> float array (H, W) or (H, W, 3) in [0, 1], downscaled in Pillow first."""
    from PIL import Image

    notes = []  # what changed beyond the plain conversion
    mode = img.mode
    if mode in ("P", "PA"):  # a palette may carry transparency
        img, scale = img.convert("RGBA"), 255.0
    elif mode == "1":
        img, scale = img.convert("L"), 255.0
    elif mode in ("L", "LA", "RGB", "RGBA"):
        scale = 255.0
    elif mode.startswith("I"):  # 16-bit PNGs open as I;16 or I
        img, scale = img.convert("I"), 65535.0
    elif mode == "F":
        scale = 1.0
    else:  # CMYK, YCbCr, LAB, HSV, ...
        img, scale = img.convert("RGB"), 255.0

    width, height = img.size
    if max(width, height) > max_side:
        factor = max_side / max(width, height)
        new = (max(1, round(width * factor)), max(1, round(height * factor)))
        img = img.resize(new, Image.Resampling.LANCZOS)

    array = np.asarray(img, dtype=np.float32) / scale
    if mode in ("I", "F") and (array.min() < 0 or array.max() > 1):  # unknown range: stretch
        array = (array - array.min()) / max(float(array.max() - array.min()), 1e-12)
        notes.append("values stretched to [0, 1]")
    if img.mode in ("LA", "RGBA"):
        alpha = array[..., -1:]
        if alpha.min() < 1:
            notes.append("transparency flattened on white")
        array = array[..., :-1] * alpha + (1 - alpha)
        if img.mode == "LA":
            array = array[..., 0]
    return np.clip(array, 0.0, 1.0), notes


# --- helpers -------------------------------------------------------------------------------------------


# Bytes per pixel as Pillow holds a decoded image (RGB takes 4), palettes and 16-bit counted as converted.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 4, "I;16": 4, "I;16B": 4, "I;16L": 4}


def _too_large(name: str, declared: str, max_bytes: int) -> str:
    return (f"{name} is too large to decode safely: it declares {declared}, over the limit of "
            f"{max_bytes / 2**20:g} MiB, and was refused before decoding (an image this large, or a "
            "decompression bomb, would fill the memory). Upload a smaller copy: a side of 1000 pixels is plenty.")


def _channels_first(image: np.ndarray, color: bool) -> np.ndarray:
    """(H, W, C) -> (3, H, W) if ``color`` else luma (H, W); grayscale stays (H, W)."""
    if image.ndim == 2:
        return image
    image = image[..., :3]
    return np.ascontiguousarray(image.transpose(2, 0, 1)) if color else image @ LUMA


def _centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top : top + side, left : left + side]


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if image.ndim == 3:  # (C, H, W): resize each channel
        return np.stack([_resize(c, shape) for c in image])
    return np.clip(resize(image, shape, anti_aliasing=True, preserve_range=True), 0, 1).astype(np.float32)


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """The centre square of an image (H, W) or (C, H, W), resized to (size, size), float32 in [0, 1]."""
    size = _check_size(size)
    return _resize(_centre_square(np.asarray(image, np.float32)), (size, size))


def _coverage(signed_distance):
    """Fraction of a pixel inside a shape, from the signed distance of its centre to the edge."""
    return np.clip(signed_distance + 0.5, 0.0, 1.0)


def _check_size(value, name: str = "size") -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    return int(value)


def _positive(**values):
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value!r}")
