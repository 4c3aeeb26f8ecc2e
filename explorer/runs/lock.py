"""One writer per run: a lock file created exclusively (O_EXCL), holding the writer's pid and host.

A lock whose process is gone (same host, pid not alive, a zombie, or the pid now another process's: the
start time recorded in the lock differs) is stale: the next writer takes it over.
A lock from another host cannot be checked from here; the message says how to clear it by hand.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

from .errors import RunLockedError

LOCK_NAME = "lock"
# A lock file still empty after this long belongs to a writer that died while creating it.
_EMPTY_LOCK_GRACE_S = 30.0


def _host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not), and, when its start
    time ``started`` is known (Linux), whether it is still the same process: a pid reused by another
    process after a kill does not keep the lock alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    except (OverflowError, ValueError):
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc here: trust the signal
    state, start = stat
    return state not in ("Z", "X") and (started is None or start == started)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process from /proc, None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def read_lock(path: Path) -> dict | None:
    """The holder {pid, host, since} of a lock file, {} if it is empty or unreadable (being
    written), None if there is no lock."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_is_live(path: Path) -> bool:
    """Whether a lock file exists and its holder may still be running."""
    holder = read_lock(path)
    if holder is None:
        return False
    return not _is_stale(Path(path), holder)


def _is_stale(path: Path, holder: dict) -> bool:
    if not holder:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        return age > _EMPTY_LOCK_GRACE_S
    if holder.get("host") != _host():
        return False  # cannot tell: assume it is alive
    pid, started = holder.get("pid"), holder.get("started")
    if isinstance(pid, bool) or not isinstance(pid, int):
        return True
    return not _pid_alive(pid, started if isinstance(started, int) and not isinstance(started, bool) else None)


def describe(holder: dict) -> str:
    if not holder:
        return "a job that is starting"
    return (f"pid {holder.get('pid')} on host {holder.get('host')} since "
            f"{holder.get('since', '?')}")


def _locked_error(run_id: str, path: Path, holder: dict) -> RunLockedError:
    return RunLockedError(
        f"run {run_id} is being written by {describe(holder)}; wait for that job to finish. "
        f"If it is gone (another host, a crashed machine), delete {path} and run again.")


def remove_if_stale(folder: Path) -> bool:
    """Delete the run's lock when its holder is gone (a job killed outright: SIGKILL, the OOM
    killer); True if one was deleted. A live or foreign lock is left alone."""
    path = Path(folder) / LOCK_NAME
    holder = read_lock(path)
    if holder is None or not holder or not _is_stale(path, holder):
        return False
    RunLock(Path(folder), Path(folder).name)._break_stale(holder)
    return not path.exists()


def raise_if_locked(folder: Path) -> None:
    """RunLockedError if a live job holds the run in ``folder`` (a quick check before a long
    start-up; the lock itself is what settles a race)."""
    path = Path(folder) / LOCK_NAME
    holder = read_lock(path)
    if holder is not None and not _is_stale(path, holder):
        raise _locked_error(Path(folder).name, path, holder)


class RunLock:
    """Context manager holding ``<run>/lock`` while a job writes the run."""

    def __init__(self, folder: Path, run_id: str):
        self.path = Path(folder) / LOCK_NAME
        self.run_id = run_id
        self.token = uuid.uuid4().hex
        self.held = False

    def acquire(self) -> None:
        for _ in range(3):
            if self._try_create():
                self.held = True
                return
            holder = read_lock(self.path)
            if holder is None:
                continue  # released meanwhile: try again
            if not _is_stale(self.path, holder):
                raise _locked_error(self.run_id, self.path, holder)
            self._break_stale(holder)
        raise RunLockedError(f"could not lock run {self.run_id}: {self.path} keeps changing; "
                             f"another job is starting on it.")

    def _try_create(self) -> bool:
        """Create the lock with its content in one step: the holder is written to a temporary file,
        which is then hard-linked to the lock's name (fails if the lock exists). A writer killed at
        any moment thus leaves either no lock or a complete one, never an empty lock that would
        look like "a job that is starting" for 30 s. File systems without hard links fall back to
        an exclusive create followed by the write."""
        holder = {"pid": os.getpid(), "host": _host(), "token": self.token,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        stat = _proc_stat(os.getpid())
        if stat is not None:
            holder["started"] = stat[1]  # tells this process from a later one given the same pid
        tmp = self.path.with_name(f".{LOCK_NAME}.{self.token}.tmp")
        try:
            with open(tmp, "w") as f:
                json.dump(holder, f)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some network or FUSE file systems)
                return self._create_exclusive(holder)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _create_exclusive(self, holder: dict) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(holder, f)
        return True

    def _break_stale(self, holder: dict) -> None:
        """Remove a stale lock, unless another job replaced it since we read it: the lock is
        first renamed aside (atomic), and put back if what was moved is not what we judged."""
        aside = self.path.with_name(f".{LOCK_NAME}.stale-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if read_lock(aside) == holder:
            aside.unlink(missing_ok=True)
            return
        try:  # we moved a fresh lock: give it back (fails only if a third job locked meanwhile)
            os.link(aside, self.path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        if not self.held:
            return
        holder = read_lock(self.path)
        if holder and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:  # noqa: PYI034  (typing.Self needs Python 3.11)
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
