"""Errors of the run store. Each subclasses OSError or ValueError, so the CLI prints its one-line
message (exit code 2) instead of a traceback; each message names the run and what to do."""
from __future__ import annotations

import errno


class RunNotFoundError(FileNotFoundError):
    """No run with this id in the store."""


class RunCorruptError(ValueError):
    """A run's files are damaged (truncated weights, bad JSON, config not matching its id)."""


class RunExistsError(FileExistsError):
    """The run already holds epochs and the caller did not ask to resume it."""


class RunLockedError(OSError):
    """Another live job is writing this run."""

    def __init__(self, message: str):
        super().__init__(errno.EBUSY, message)

    def __str__(self) -> str:  # the message alone, without "[Errno 16]"
        return self.strerror


class RunReadOnlyError(PermissionError):
    """The run ships with the package: it can be read, not changed or deleted."""


class StoreWriteError(OSError):
    """Writing to the store failed (full disk, read-only folder); nothing already there changed."""

    def __init__(self, code: int | None, message: str):
        super().__init__(code, message)

    def __str__(self) -> str:
        return self.strerror


DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
