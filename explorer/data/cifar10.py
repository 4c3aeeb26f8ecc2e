"""CIFAR-10 from the official "python version" layout.

Accepted locations (explicit argument first, then ``EXPLORER_DATA``):
- the archive ``cifar-10-python.tar.gz`` itself (read in place with ``tarfile``, never extracted),
- the extracted folder ``cifar-10-batches-py/``,
- a folder containing either of those.

Decoded arrays are cached as ``.npy`` files in the store (``explorer.config.store_dir()``), keyed by the
source's path, size and modification time, so the second load skips decompression and unpickling.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import pickle
import tarfile
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from explorer.atomic import atomic_write as _atomic_write
from explorer.config import data_dir, store_dir

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # official archive; checked on download only
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
META = "batches.meta"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
IMAGE_SHAPE = (3, 32, 32)

HOW_TO_FIX = (
    f"Set EXPLORER_DATA to the folder holding {ARCHIVE_NAME} (or {FOLDER_NAME}/), pass --data DIR, "
    "or run `explorer data download --data DIR`."
)


class DatasetNotFoundError(FileNotFoundError):
    """No CIFAR-10 at the configured place (or no place configured)."""


class DatasetFormatError(ValueError):
    """Something is there, but it is not the CIFAR-10 python layout (or it is corrupt)."""


class DownloadError(OSError):
    """The download failed (no network, server error)."""


class Cifar10(NamedTuple):
    images: np.ndarray  # (N, 3, 32, 32) uint8, RGB planes
    labels: np.ndarray  # (N,) int64 in [0, 10)
    classes: tuple[str, ...]  # class names, indexed by label


def find_cifar10(data: str | os.PathLike | None = None) -> Path:
    """Locate CIFAR-10: returns the archive file or the folder holding the batch files.

    ``data`` overrides ``EXPLORER_DATA``. Raises DatasetNotFoundError with a how-to-fix message.
    A file is returned as is: whether it really is the archive is checked when it is read.
    """
    root = Path(data).expanduser() if data is not None else data_dir()
    if root is None:
        raise DatasetNotFoundError(f"No CIFAR-10 location configured. {HOW_TO_FIX}")
    if not root.exists():
        raise DatasetNotFoundError(f"CIFAR-10 location {root} does not exist. {HOW_TO_FIX}")
    if root.is_file() or (root / META).is_file() or (root / "data_batch_1").is_file():
        return root
    for candidate in (root / FOLDER_NAME, root / ARCHIVE_NAME):
        if candidate.exists():
            return candidate
    raise DatasetNotFoundError(
        f"No CIFAR-10 in {root}: expected {ARCHIVE_NAME} or a {FOLDER_NAME}/ folder there. {HOW_TO_FIX}"
    )


def load_cifar10(split: str = "train", data: str | os.PathLike | None = None, cache: bool = True) -> Cifar10:
    """Load a split ("train": data_batch_1..5, "test": test_batch) as uint8 images and int64 labels."""
    if split not in BATCHES:
        raise ValueError(f"split must be one of {sorted(BATCHES)}, got {split!r}")
    source = find_cifar10(data)
    cache_dir = _cache_dir(source) if cache else None
    if cache_dir is not None:
        cached = _load_cache(cache_dir, split)
        if cached is not None:
            return cached

    blobs = _read_members(source, [META, *BATCHES[split]])
    classes = _decode_meta(blobs[META], f"{source}: {META}")
    images, labels = [], []
    for name in BATCHES[split]:
        x, y = _decode_batch(blobs.pop(name), f"{source}: {name}", len(classes))
        images.append(x)
        labels.append(y)
    result = Cifar10(np.concatenate(images), np.concatenate(labels), classes)
    if cache_dir is not None:
        _save_cache(cache_dir, split, result)
    return result


def download_cifar10(dest: str | os.PathLike | None = None) -> Path:
    """Download the official archive into ``dest`` (default ``EXPLORER_DATA``) and return its path.

    The md5 is checked on the downloaded file only: a CIFAR-10 already at ``dest`` (archive or folder,
    whatever its checksum) is kept and returned as is.
    """
    folder = Path(dest).expanduser() if dest is not None else data_dir()
    if folder is None:
        raise DatasetNotFoundError("No download destination: pass --data DIR or set EXPLORER_DATA.")
    try:
        return find_cifar10(folder)
    except DatasetNotFoundError:
        pass
    import pooch  # imported here: only downloads need it

    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(URL, known_hash=f"md5:{MD5}", fname=ARCHIVE_NAME, path=folder, progressbar=True)
    except ValueError:  # checksum mismatch: pooch's message says which hashes differ
        raise
    except Exception as exc:  # no network, HTTP error, unwritable folder
        raise DownloadError(
            f"Download of {URL} failed ({exc}). Fetch it by hand and pass --data DIR."
        ) from exc
    return Path(path)


# --- reading -------------------------------------------------------------------------------------------


def _read_members(source: Path, names: list[str]) -> dict[str, bytes]:
    """Raw bytes of the named batch files, from the folder or in one pass over the archive."""
    if source.is_dir():
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise DatasetFormatError(
                f"{source} lacks {', '.join(missing)}: expected the official {FOLDER_NAME}/ layout "
                f"({META}, data_batch_1..5, test_batch)."
            )
        return {n: (source / n).read_bytes() for n in names}

    wanted, found = set(names), {}
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:  # sequential: a .tar.gz is decompressed once
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    found[base] = archive.extractfile(member).read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetFormatError(
            f"{source} is not a readable tar archive ({exc}): expected the CIFAR-10 python archive "
            f"{ARCHIVE_NAME} or its extracted {FOLDER_NAME}/ folder. Is the file truncated?"
        ) from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetFormatError(
            f"{source} lacks {', '.join(missing)}: expected the CIFAR-10 python archive "
            f"({FOLDER_NAME}/{META}, data_batch_1..5, test_batch). Is it truncated?"
        )
    return found


# A batch pickle holds only numpy arrays, lists, ints and strings: refuse anything else, so that pointing
# the loader at a hostile file cannot run code.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray(0).__reduce__()[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray(0).__reduce__()[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles store bytes this way
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}") from None


def _unpickle(blob: bytes, where: str) -> dict[str, object]:
    try:
        obj = _BatchUnpickler(io.BytesIO(blob), encoding="latin1").load()  # Python-2 pickles
    except Exception as exc:  # pickle raises many types on garbage input
        raise DatasetFormatError(
            f"{where} is not a valid CIFAR-10 pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetFormatError(f"{where} holds a {type(obj).__name__}, expected a dict of a CIFAR-10 batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _decode_meta(blob: bytes, where: str) -> tuple[str, ...]:
    names = _unpickle(blob, where).get("label_names")
    if not isinstance(names, list) or not names:
        raise DatasetFormatError(f"{where} has no 'label_names' list")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _decode_batch(blob: bytes, where: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(blob, where)
    data, labels = batch.get("data"), batch.get("labels")
    size = int(np.prod(IMAGE_SHAPE))
    if not (
        isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == size
    ):
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DatasetFormatError(f"{where}: 'data' must be a uint8 array of shape (N, {size}), got {got}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (len(data),):
        raise DatasetFormatError(f"{where}: {len(data)} images but 'labels' has shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(f"{where}: labels outside [0, {num_classes})")
    # Each row is the 1024 red, then green, then blue values, rows first: exactly (3, 32, 32) in C order.
    return data.reshape(-1, *IMAGE_SHAPE), labels


# --- cache ---------------------------------------------------------------------------------------------


def _cache_dir(source: Path) -> Path | None:
    """Cache folder keyed by the source's resolved path, sizes and mtimes; None if the store is unusable."""
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    stamp = [str(source.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    key = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    try:
        return store_dir() / "datasets" / "cifar10" / key
    except OSError as exc:
        warnings.warn(f"no dataset cache: cannot create the store ({exc})", stacklevel=3)
        return None


def _load_cache(folder: Path, split: str) -> Cifar10 | None:
    try:
        images = np.load(folder / f"{split}_images.npy")
        labels = np.load(folder / f"{split}_labels.npy")
        classes = tuple(json.loads((folder / "classes.json").read_text()))
    except (OSError, ValueError):  # missing or damaged: rebuild from the source
        return None
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or labels.shape != (len(images),):
        return None
    return Cifar10(images, labels, classes)


def _save_cache(folder: Path, split: str, data: Cifar10) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / "classes.json", json.dumps(list(data.classes)).encode())
        _atomic_write(folder / f"{split}_labels.npy", data.labels)
        _atomic_write(folder / f"{split}_images.npy", data.images)
    except OSError as exc:  # a full or read-only store must not break loading
        warnings.warn(f"could not cache CIFAR-10 in {folder}: {exc}", stacklevel=3)
