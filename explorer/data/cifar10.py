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
import contextlib
import errno
import hashlib
import io
import json
import os
import pickle
import stat
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
# Bounds on what a hostile or wrong file can make the loader read: an official batch file is 31 MB and the
# whole archive 178 MB uncompressed, in 8 members. A member past these bounds is refused before it is read
# (a tar.gz of zeros declaring a 10 GB batch would otherwise be decompressed into memory).
MAX_MEMBER_BYTES = 64 * 2**20
MAX_ARCHIVE_BYTES = 2**30
MAX_MEMBERS = 1000

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

    ``data`` overrides ``EXPLORER_DATA``. Raises DatasetNotFoundError with a how-to-fix message, also for a
    symbolic link loop, a dangling link, a path that cannot be read and a pipe or device (never a bare
    OSError). A file is returned as is: whether it really is the archive is checked when it is read.
    """
    root = Path(data).expanduser() if data is not None else data_dir()
    if root is None:
        raise DatasetNotFoundError(f"No CIFAR-10 location configured. {HOW_TO_FIX}")
    kind = _kind(root)
    if kind != "file" and kind != "folder":
        raise DatasetNotFoundError(f"CIFAR-10 location {_shown(root)} {_NOT_USABLE[kind]}. {HOW_TO_FIX}")
    if kind == "file" or _kind(root / META) == "file" or _kind(root / "data_batch_1") == "file":
        return root
    for candidate, wanted in ((root / FOLDER_NAME, "folder"), (root / ARCHIVE_NAME, "file")):
        kind = _kind(candidate)
        if kind == wanted:
            return candidate
        if kind != "missing":
            what = _NOT_USABLE.get(kind, f"is a {kind}, not a {wanted}")
            raise DatasetNotFoundError(f"CIFAR-10 location {_shown(candidate)} {what}. {HOW_TO_FIX}")
    raise DatasetNotFoundError(
        f"No CIFAR-10 in {_shown(root)}: expected {ARCHIVE_NAME} or a {FOLDER_NAME}/ folder there. {HOW_TO_FIX}"
    )


_NOT_USABLE = {
    "missing": "does not exist",
    "loop": "is a symbolic link loop (its links lead back to themselves)",
    "dangling": "is a symbolic link to nothing (its target does not exist)",
    "special": "is neither a file nor a folder (a pipe, socket or device)",
}


def _kind(path: Path) -> str:
    """'file', 'folder', 'missing', 'loop', 'dangling' or 'special'; DatasetNotFoundError when unreadable."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "dangling" if path.is_symlink() else "missing"
        raise DatasetNotFoundError(
            f"CIFAR-10 location {_shown(path)} cannot be read ({exc.strerror or exc}). {HOW_TO_FIX}"
        ) from None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "special"


def _shown(path: os.PathLike | str, limit: int = 160) -> str:
    """A path for a message: printable, and cut in the middle when very long."""
    text = os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2:]}"


def load_cifar10(split: str = "train", data: str | os.PathLike | None = None, cache: bool = True) -> Cifar10:
    """Load a split ("train": data_batch_1..5, "test": test_batch) as uint8 images and int64 labels."""
    if split not in BATCHES:
        raise ValueError(f"split must be one of {sorted(BATCHES)}, got {split!r}")
    source = find_cifar10(data)
    cache_dir = _cache_dir(source) if cache else None
    if cache_dir is not None:
        cached = _load_cache(cache_dir, split)
        if cached is not None:
            _remember_copy(source)
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
    _remember_copy(source)
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
    shown = _shown(source)
    if source.is_dir():
        missing = [n for n in names if _kind(source / n) != "file"]
        if missing:
            raise DatasetFormatError(
                f"{shown} lacks {', '.join(missing)}: expected the official {FOLDER_NAME}/ layout "
                f"({META}, data_batch_1..5, test_batch)."
            )
        for n in names:
            _check_member_size(shown, n, (source / n).stat().st_size)
        return {n: (source / n).read_bytes() for n in names}

    wanted, found = set(names), {}
    try:
        with tarfile.open(source, "r:*") as archive:
            for count, member in enumerate(archive):  # sequential: a .tar.gz is decompressed once
                if count >= MAX_MEMBERS or member.offset_data > MAX_ARCHIVE_BYTES:
                    raise DatasetFormatError(
                        f"{shown} is not the CIFAR-10 python archive: more than {MAX_MEMBERS} members or "
                        f"{MAX_ARCHIVE_BYTES // 2**20} MiB before its batch files were found (the official one "
                        f"holds 8 files, 178 MB). {HOW_TO_FIX}"
                    )
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    _check_member_size(shown, member.name, member.size)
                    found[base] = archive.extractfile(member).read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        detail = str(exc)
        if isinstance(exc, tarfile.ReadError) and "could not be opened" in detail:
            detail = "neither tar nor tar.gz, tar.bz2 or tar.xz"  # tarfile lists every method it tried
        raise DatasetFormatError(
            f"{shown} is not a readable tar archive ({detail}): expected the CIFAR-10 python archive "
            f"{ARCHIVE_NAME} or its extracted {FOLDER_NAME}/ folder. Is it the right file, and complete (not truncated)?"
        ) from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetFormatError(
            f"{shown} lacks {', '.join(missing)}: expected the CIFAR-10 python archive "
            f"({FOLDER_NAME}/{META}, data_batch_1..5, test_batch). Is it truncated?"
        )
    return found


def _check_member_size(source: str, name: str, size: int) -> None:
    if size > MAX_MEMBER_BYTES:
        raise DatasetFormatError(
            f"{source}: {_shown(name)} holds {size / 2**20:,.0f} MiB, more than any CIFAR-10 batch file "
            f"(31 MB; the limit is {MAX_MEMBER_BYTES // 2**20} MiB): it was not read. Is this the CIFAR-10 "
            "python archive?"
        )


# A batch pickle holds only numpy arrays, lists, ints and strings: refuse anything else, so that pointing
# the loader at a hostile file cannot run code. numpy's array constructor is wrapped so that a pickle cannot
# ask for an array larger than itself either (156 bytes could otherwise allocate 9 GB, filled later).
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]


class _NdarrayClass:
    """Stands for numpy.ndarray in a batch pickle: passed to _reconstruct, never called."""

    def __init__(self, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray called directly, not through _reconstruct")


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, blob: bytes):
        super().__init__(io.BytesIO(blob), encoding="latin1")  # Python-2 pickles
        self._limit = len(blob)
        self._globals = {
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy", "ndarray"): _NdarrayClass,
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,  # protocol 5
            ("numpy._core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles store bytes this way
        }

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not _NdarrayClass:
            raise pickle.UnpicklingError(f"unexpected array type {subtype!r}")
        shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        size = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        if size > self._limit:
            raise pickle.UnpicklingError(f"an array of {size:,} bytes declared in a {self._limit:,}-byte file")
        return _RECONSTRUCT(np.ndarray, shape, dtype)

    @staticmethod
    def _frombuffer(buffer, dtype, shape, order):
        if not isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)):
            raise pickle.UnpicklingError(f"unexpected array buffer {type(buffer).__name__}")
        array = np.frombuffer(buffer, dtype=np.dtype(dtype))  # the pickle's own bytes: no larger than it
        return array.reshape(tuple(int(n) for n in shape), order="F" if order == "F" else "C").copy()

    def find_class(self, module, name):
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}") from None


def _unpickle(blob: bytes, where: str) -> dict[str, object]:
    try:
        obj = _BatchUnpickler(blob).load()
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


# --- which copy ----------------------------------------------------------------------------------------
# A result measured on CIFAR-10 says which copy it ran on: the official release, or the JPEG-derived copy
# that machines without internet access have (re-assembled from one JPEG file per image, so its pixels are
# not the release's; its README gives the archive's md5). Known by the archive's md5, or, for an extracted
# folder, by the md5 of each batch file (the official ones as torchvision lists them).
BATCH_FILES = (*BATCHES["train"], *BATCHES["test"])
KNOWN_COPIES = {
    "official": {
        "archive": MD5,
        "batches": {"data_batch_1": "c99cafc152244af753f735de768cd75f",
                    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                    "data_batch_4": "634d18415352ddfa80567beed471001a",
                    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                    "test_batch": "40351d587109b95175f43aff81a1287e"}},
    "jpeg-derived": {
        "archive": "9723ecdb668c9de9d8e24c5caa87e53a",
        "batches": {"data_batch_1": "5fd0730736b32f7fe46032bf8f3bfd9f",
                    "data_batch_2": "a272bf3314b2a2ab66a5c663a45acdf6",
                    "data_batch_3": "8907e83c3c9246b90dcf821004c4e47f",
                    "data_batch_4": "69a2cf7bfad86500f4ce2235b9248704",
                    "data_batch_5": "39bfe3bdfba97e8dcb535c4f8368892b",
                    "test_batch": "4c4177cc03269413b9a94e52c6ce4a21"}},
}
COPIES = (*KNOWN_COPIES, "unknown")
FINGERPRINT = "fingerprint.json"
_FINGERPRINTS: dict[str, dict] = {}  # cache key of the source → its fingerprint
_LOADED: dict[str, dict] = {}  # source path → fingerprint, for every copy this process loaded


def copy_fingerprint(data: str | os.PathLike | None = None) -> dict:
    """Which copy of CIFAR-10 is at ``data`` (default ``EXPLORER_DATA``; DatasetNotFoundError when none):
    ``{"dataset": "cifar10", "source": path, "md5": the archive's md5 (None for a folder), "batches_md5":
    {batch file: md5} (a folder's; {} for an archive), "copy": "official" | "jpeg-derived" | "unknown"}``.

    The files are read once per (path, sizes, modification times): about 0.4 s for the 174 MB archive;
    the result is kept in memory and beside the decoded arrays in the store."""
    source = find_cifar10(data)
    folder = _cache_dir(source)
    key = str(folder) if folder is not None else str(source.resolve())
    known = _FINGERPRINTS.get(key)
    if known is None and folder is not None:
        with contextlib.suppress(OSError, ValueError):
            known = json.loads((folder / FINGERPRINT).read_text())
            if not isinstance(known, dict) or known.get("copy") not in COPIES:
                known = None
    if known is None:
        known = _fingerprint(source)
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _atomic_write(folder / FINGERPRINT, json.dumps(known).encode())
            except OSError:
                pass  # a read-only store: computed again next time
    _FINGERPRINTS[key] = known
    return dict(known)


def _md5(path: Path, limit: int) -> str | None:
    if path.stat().st_size > limit:
        return None  # not a CIFAR-10 file: not worth reading whole
    digest = hashlib.md5()  # a checksum compared with published ones
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(source: Path) -> dict:
    if source.is_dir():
        md5 = None
        batches = {name: _md5(source / name, MAX_MEMBER_BYTES) for name in BATCH_FILES if (source / name).is_file()}
    else:
        md5, batches = _md5(source, MAX_ARCHIVE_BYTES), {}
    copy = next((name for name, known in KNOWN_COPIES.items()
                 if (md5 is not None and md5 == known["archive"]) or (batches and batches == known["batches"])),
                "unknown")
    return {"dataset": "cifar10", "source": str(source), "md5": md5, "batches_md5": batches, "copy": copy}


def _remember_copy(source: Path) -> None:
    """Note the copy just loaded, for the provenance of what this process trains (`loaded_copies`)."""
    try:
        _LOADED[str(source)] = copy_fingerprint(source)
    except (OSError, ValueError):  # unreadable now: the run then says nothing about its copy
        pass


def loaded_copies() -> list[dict]:
    """The fingerprints (`copy_fingerprint`) of every CIFAR-10 copy this process has loaded."""
    return [dict(f) for f in _LOADED.values()]
