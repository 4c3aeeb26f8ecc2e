"""File primitives of the run store: several files replaced together, JSON, safetensors checks.

A checkpoint is several files. Each is first written in full to a temporary file beside its
target and flushed to disk; only once every one is written are they renamed into place. So a
failure while writing (a full disk, a kill) leaves every previous file untouched, and a reader
never sees half a file. A failure that Python sees removes its temporaries; a process killed
outright (SIGKILL) may leave a hidden ``.<name>.*.tmp``, which the run's next writer deletes
(`remove_temporaries`) and which no reader ever takes for a run file.
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
    """Replace every file of ``files`` (path → content), all written before any is renamed.

    Once the renames have begun they are all done, even if an exception (SIGTERM turned into
    SystemExit, KeyboardInterrupt) arrives between two of them: no temporary is left behind and
    the files are not left from two different writes."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            staged.append((_write_temp(Path(path), content), Path(path)))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    pending = list(staged)
    try:
        while pending:  # renames need no space: this part does not fail on a full disk
            os.replace(*pending[0])
            pending.pop(0)
    except BaseException:
        for tmp, path in pending:
            try:
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
        raise


def remove_temporaries(folder: Path, names) -> list[Path]:
    """Delete the temporaries that `replace_files` left beside the files ``names`` of ``folder``
    when its process was killed (SIGKILL, power loss) before it could clean up. Call it only while
    holding the folder's lock: the lock's holder is the only writer of these files."""
    removed = []
    for path in leftover_temporaries(folder):
        if any(path.name.startswith(f".{name}.") for name in names):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def json_bytes(value) -> bytes:
    return (json.dumps(value, indent=1, allow_nan=True) + "\n").encode()


def read_json(path: Path):
    """Parsed JSON; OSError when missing/unreadable, ValueError when not valid JSON."""
    return json.loads(Path(path).read_text())


def safetensors_header(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The tensors ({name: {"dtype", "shape", "data_offsets"}}) and the ``__metadata__`` of a
    safetensors file, after checking that its header parses and that the file holds every byte the
    header announces (a truncated file fails). Reads the header only: cheap enough to check every
    run of a listing. Raises ValueError when damaged (or not a safetensors file at all)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is truncated ({size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError(f"{path.name} is truncated or not a safetensors file "
                             f"(header of {n} bytes, file of {size})")
        try:
            header = json.loads(f.read(n))
        except ValueError as exc:
            raise ValueError(f"{path.name} has a damaged header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a damaged header")  # noqa: TRY004
    metadata = header.pop("__metadata__", None) or {}
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
        for t in header.values():
            if not isinstance(t["dtype"], str) or not all(
                    isinstance(d, int) and d >= 0 for d in t["shape"]):
                raise ValueError
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError(f"{path.name} has a damaged header") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path.name} has a damaged header")  # noqa: TRY004
    if 8 + n + end != size:
        raise ValueError(f"{path.name} is truncated or padded ({size} bytes, expected {8 + n + end})")
    return header, dict(metadata)


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, checked as by `safetensors_header`."""
    return safetensors_header(path)[1]


def leftover_temporaries(folder: Path) -> list[Path]:
    return [p for p in Path(folder).iterdir() if p.name.endswith(TMP_SUFFIX)]
