"""Atomic writes: readers of the store never see half a file or half a folder."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def atomic_write(path: Path, content: bytes | np.ndarray) -> None:
    """Write to a temporary file beside ``path``, flushed to disk, then rename over it: a reader
    sees the old content or the new one, and a crash leaves no half-written file under ``path``."""
    path = Path(path)
    # hidden (".name.xxxx.tmp"): a temporary left by a killed process is never taken for the file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, np.ndarray):
                np.save(f, content)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(final: Path, replace: bool = False):
    """Yield a temporary folder beside ``final``; on success it is renamed to ``final``.

    Without ``replace``, if ``final`` appeared meanwhile (another writer finished first) ours
    is discarded and the existing one kept. With ``replace``, the old folder is moved aside,
    the new one renamed in, then the old one deleted. On error nothing is left behind."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private (0700); the finished folder is an ordinary one
    try:
        yield tmp
        if replace and final.is_dir():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
            os.replace(final, old / "x")
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
