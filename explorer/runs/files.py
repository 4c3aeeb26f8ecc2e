"""File primitives of the run store: several files replaced together, JSON, safetensors checks.

A checkpoint is several files. Each is first written in full to a temporary file beside its
target and flushed to disk; only once every one is written are they renamed into place. So a
failure while writing (a full disk, a kill) leaves every previous file untouched and no
temporary behind, and a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"


def _write_temp(path: Path, content: bytes) -> Path:
    """Write ``content`` to a new temporary file beside ``path``, flushed to disk."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def replace_files(files: dict[Path, bytes]) -> None:
    """Replace every file of ``files`` (path → content), all written before any is renamed."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            staged.append((_write_temp(Path(path), content), Path(path)))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:  # renames need no space: this part does not fail on a full disk
        os.replace(tmp, path)


def json_bytes(value) -> bytes:
    return (json.dumps(value, indent=1, allow_nan=True) + "\n").encode()


def read_json(path: Path):
    """Parsed JSON; OSError when missing/unreadable, ValueError when not valid JSON."""
    return json.loads(Path(path).read_text())


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, after checking that its header parses and that
    the file holds every byte the header announces (a truncated file fails). Reads the header
    only: cheap enough to check every run of a listing. Raises ValueError when damaged."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is truncated ({size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError(f"{path.name} is truncated (header of {n} bytes, file of {size})")
        try:
            header = json.loads(f.read(n))
        except ValueError as exc:
            raise ValueError(f"{path.name} has a damaged header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a damaged header")  # noqa: TRY004
    metadata = header.pop("__metadata__", None) or {}
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError(f"{path.name} has a damaged header") from None
    if 8 + n + end != size:
        raise ValueError(f"{path.name} is truncated or padded ({size} bytes, expected {8 + n + end})")
    return dict(metadata)


def leftover_temporaries(folder: Path) -> list[Path]:
    return [p for p in Path(folder).iterdir() if p.name.endswith(TMP_SUFFIX)]
