"""Heavy computations run piece by piece in one background thread that every session shares.

A heavy computation (an invariance curve that takes half a minute on a 2-core machine) is written as a
generator that yields a progress fraction after each bounded piece of work (a few hundred milliseconds)
and returns its result; `finish` runs one to the end in the caller's thread (notebooks, the CLI, tests).
In the app, `RUNNER.submit` hands it to `PieceRunner`, which runs one piece at a time:

- **interactive work first**: while a page draws a plot (`RUNNER.interactive()`, entered by every page's
  view callbacks) and for `quiet_s` after, no piece starts, so a visitor's plot waits at most for the one
  piece already running, never for a whole curve;
- **round robin**: the pending jobs take turns, piece by piece, so no job waits for another to finish
  (a low-priority job, the server's warm-up, only when no other job waits);
- **shared, cancellable**: requests for the same key share one job; each request can be cancelled (its
  session closed, its parameters moved on: the latest value wins), and a job that no request wants any
  more stops at its next piece boundary.

Computation side only: no UI import.
"""
from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass, field

Pieces = Generator[float, None, object]  # yields progress in [0, 1], returns the result


def finish(pieces: Pieces, cancelled: Callable[[], bool] | None = None):
    """Run a piecewise computation to its end in this thread and return its result; `Cancelled` when
    `cancelled()` turns true between two pieces."""
    while True:
        try:
            next(pieces)
        except StopIteration as stop:
            return stop.value
        if cancelled is not None and cancelled():
            pieces.close()
            raise Cancelled("the computation was cancelled")


class Cancelled(Exception):
    """Nobody wants this computation's result any more."""


@dataclass(eq=False)
class Request:
    """One caller's interest in a job: `cancel()` withdraws it; `on_done(result, error)` and
    `on_progress(fraction)` are called in the runner's thread (hand them to your event loop)."""

    key: Hashable
    on_done: Callable | None = None
    on_progress: Callable | None = None
    cancelled: bool = False
    _runner: PieceRunner | None = field(default=None, repr=False)

    def cancel(self) -> None:
        if self._runner is not None:
            self._runner.cancel(self)
        else:
            self.cancelled = True


@dataclass(eq=False)
class _Job:
    key: Hashable
    pieces: Pieces
    requests: list = field(default_factory=list)
    done_pieces: int = 0
    progress: float = 0.0
    low_priority: bool = False


class PieceRunner:
    """Runs submitted piecewise jobs in one daemon thread (started on the first submit): one piece at a time,
    jobs in turn, after interactive work. `events` keeps the last lines of what happened, for tests and logs."""

    def __init__(self, quiet_s: float = 0.3, max_wait_s: float = 2.0, name: str = "piecework"):
        self.quiet_s = quiet_s  # after a plot is drawn: the next plot of the same page is usually on its way
        self.max_wait_s = max_wait_s  # never starve the background work under constant interaction
        self.name = name
        self._cond = threading.Condition()
        self._jobs: OrderedDict[Hashable, _Job] = OrderedDict()
        self._interactive = 0
        self._last_interactive = 0.0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.current: Hashable | None = None  # the key of the job whose piece is running
        self.events: deque = deque(maxlen=200)

    # -- callers ------------------------------------------------------------------------------------------
    def submit(self, key: Hashable, make_pieces: Callable[[], Pieces], on_done=None, on_progress=None,
               low_priority: bool = False) -> Request:
        """Ask for the result of the job `key`; `make_pieces()` builds its generator unless the job already
        runs for another request, which this one then shares. A `low_priority` job (the server's warm-up)
        gets a piece only when no other job is waiting."""
        request = Request(key, on_done, on_progress, _runner=self)
        with self._cond:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = _Job(key, make_pieces(), low_priority=low_priority)
                self._log("started", key)
                print(f"[piecework] started {key!r}", file=sys.stderr, flush=True)
            job.requests.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return request

    def cancel(self, request: Request) -> None:
        """Withdraw `request`; when no request is left its job is dropped at once, or, if one of its pieces
        is running, at the end of that piece."""
        with self._cond:
            request.cancelled = True
            job = self._jobs.get(request.key)
            if job is not None and request in job.requests:
                job.requests.remove(request)
                if not job.requests and job.key != self.current:
                    self._drop(job)
            self._cond.notify_all()

    def _drop(self, job: _Job) -> None:
        """Forget a job nobody wants (holding the condition; never the job whose piece is running)."""
        self._jobs.pop(job.key, None)
        self._log("cancelled", job.key, f"after {job.done_pieces} pieces")
        # In the server's log: what a closed session or a superseded parameter stopped.
        print(f"[piecework] cancelled {job.key!r} after {job.done_pieces} pieces: nobody waits for it",
              file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            job.pieces.close()

    @contextlib.contextmanager
    def interactive(self):
        """Around work a visitor is waiting for (drawing a plot): no piece starts meanwhile."""
        with self._cond:
            self._interactive += 1
        try:
            yield
        finally:
            with self._cond:
                self._interactive -= 1
                self._last_interactive = time.monotonic()
                self._cond.notify_all()

    def pending(self) -> list:
        """The keys of the jobs not yet finished."""
        with self._cond:
            return list(self._jobs)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait for the running piece (at exit: a thread inside torch at interpreter
        shutdown aborts the process)."""
        with self._cond:
            self._stopping = True
            for job in self._jobs.values():
                for request in job.requests:
                    request.cancelled = True
                job.requests.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the worker ---------------------------------------------------------------------------------------
    def _log(self, event: str, key, detail: str = "") -> None:
        self.events.append((time.monotonic(), event, key, detail))

    def _next_job(self) -> _Job | None:
        """Wait (holding the condition) until a job is wanted and interactive work has been quiet; drop the
        jobs nobody wants. None when stopping."""
        while True:
            if self._stopping:
                return None
            for job in [job for job in self._jobs.values() if not job.requests]:
                self._drop(job)
            if not self._jobs:
                self._cond.wait()
                continue
            waited_since = time.monotonic()
            while not self._stopping:
                now = time.monotonic()
                busy = self._interactive > 0 or now - self._last_interactive < self.quiet_s
                if not busy or now - waited_since >= self.max_wait_s:
                    break
                self._cond.wait(self.quiet_s)
            if self._stopping:
                return None
            wanted = [job for job in self._jobs.values() if job.requests]
            if not wanted:
                continue
            job = next((job for job in wanted if not job.low_priority), wanted[0])
            self._jobs.move_to_end(job.key)  # round robin: the next job goes first next time
            return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    return
                self.current = job.key
            result, error, finished = None, None, False
            try:
                job.progress = float(next(job.pieces))
                job.done_pieces += 1
            except StopIteration as stop:
                result, finished = stop.value, True
            except Exception as exc:  # noqa: BLE001  (handed to the requests: the page says what went wrong)
                if not isinstance(exc, (ValueError, RuntimeError, MemoryError, OSError)):
                    traceback.print_exc()
                error, finished = exc, True
            with self._cond:
                self.current = None
                if finished:
                    self._jobs.pop(job.key, None)
                    self._log("failed" if error else "finished", job.key, f"after {job.done_pieces} pieces")
                requests = list(job.requests)
            for request in requests:
                callback = request.on_done if finished else request.on_progress
                if callback is None or request.cancelled:
                    continue
                try:
                    callback(result, error) if finished else callback(job.progress)
                except Exception:  # noqa: BLE001  (a caller's callback never stops the runner)
                    traceback.print_exc()


RUNNER = PieceRunner()
atexit.register(RUNNER.stop)
