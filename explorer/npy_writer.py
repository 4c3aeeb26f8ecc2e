"""A large .npy file written chunk by chunk from two reused buffers, by a background thread, with
O_DIRECT where the file system allows it.

Why not a memory map: every page of a fresh map (or of the page cache behind a plain write) is faulted
in once, and on this project's virtual machines that costs microseconds per 4 KiB page. Scattering
CIFAR-10 at J = 2 writes 3.7 GB: through a memory map 53 s, through this writer 41 s (2-core VM).
The two buffers are faulted in once and reused; O_DIRECT sends them to the disk without copying them
into the page cache. Where O_DIRECT is refused (tmpfs, macOS) the same writes go through the page cache.

The header is padded to 4096 bytes (the format allows it) so that the data, too, starts on a block
boundary; a chunk's bytes that end mid-block are carried over to the start of the next write.
"""
from __future__ import annotations

import mmap
import os
import queue
import struct
import threading
from pathlib import Path

import numpy as np

BLOCK = 4096  # O_DIRECT alignment of file offsets, sizes and buffer addresses (mmap buffers are page-aligned)


def npy_header(shape: tuple[int, ...], dtype) -> bytes:
    """A version 1.0 .npy header padded with spaces to exactly BLOCK bytes."""
    fields = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)}
    text = repr(fields)
    magic = b"\x93NUMPY\x01\x00"
    length = BLOCK - len(magic) - 2
    if len(text) + 1 > length:
        raise ValueError(f"array header too long for one block: shape {shape}")
    return magic + struct.pack("<H", length) + (text + " " * (length - len(text) - 1) + "\n").encode("latin1")


class NpyChunkWriter:
    """``with NpyChunkWriter(path, shape, dtype, rows) as w: w.rows_view(n)[...] = ...; w.commit(n)``.

    Rows (along the first axis) are filled in order, at most `rows` at a time, into `rows_view(n)` and
    handed over with `commit(n)`; the file holds the whole array once the block exits without error.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype, rows: int):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.rows = max(1, int(rows))
        self.total_rows = self.shape[0]
        self.direct = False
        self._written_rows = 0
        self._offset = BLOCK  # file offset of the next aligned write (the header fills block 0)
        self._carry = 0  # bytes at the start of the current buffer not yet written
        capacity = self.rows * self.row_bytes + BLOCK
        capacity = -(-capacity // BLOCK) * BLOCK
        self._buffers = [mmap.mmap(-1, capacity) for _ in range(2)]
        self._free: queue.Queue[int] = queue.Queue()
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._fd = -1
        self._current = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> NpyChunkWriter:  # noqa: PYI034  (typing.Self needs Python 3.11)
        self._fd = self._open()
        self._buffers[0][:BLOCK] = npy_header(self.shape, self.dtype)
        self._pwrite(memoryview(self._buffers[0])[:BLOCK], 0)
        self._free.put(1)
        self._thread = threading.Thread(target=self._write_loop, name="npy-writer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            self._stop()

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        direct = getattr(os, "O_DIRECT", 0)
        if direct:
            try:
                fd = os.open(self.path, flags | direct, 0o644)
            except OSError:  # tmpfs and some other file systems refuse O_DIRECT
                pass
            else:
                self.direct = True
                return fd
        return os.open(self.path, flags, 0o644)

    def _pwrite(self, view: memoryview, offset: int) -> None:
        try:
            done = os.pwrite(self._fd, view, offset)
        except OSError as exc:
            if not (self.direct and exc.errno == 22):  # EINVAL: O_DIRECT accepted at open, refused now
                raise
            os.close(self._fd)
            self.direct = False
            self._fd = os.open(self.path, os.O_WRONLY, 0o644)
            done = os.pwrite(self._fd, view, offset)
        while done < len(view):  # a short write (signal, quota): finish it
            done += os.pwrite(self._fd, view[done:], offset + done)

    # -- filling --------------------------------------------------------------------------------
    def rows_view(self, n: int) -> np.ndarray:
        """A writable (n, *row_shape) array in the current buffer for the next n rows."""
        if not 0 < n <= self.rows or self._written_rows + n > self.total_rows:
            raise ValueError(f"{n} rows do not fit: chunks of at most {self.rows}, "
                             f"{self.total_rows - self._written_rows} rows left")
        self._raise_writer_error()
        count = n * self.row_bytes // self.dtype.itemsize
        flat = np.frombuffer(self._buffers[self._current], self.dtype, count=count, offset=self._carry)
        return flat.reshape(n, *self.row_shape)

    def commit(self, n: int) -> None:
        """Hand the n rows just filled in `rows_view(n)` to the writer thread."""
        current = self._buffers[self._current]
        filled = self._carry + n * self.row_bytes
        aligned = filled // BLOCK * BLOCK
        following = self._next_buffer()
        tail = filled - aligned
        self._buffers[following][:tail] = current[aligned:filled]
        if aligned:
            self._jobs.put((self._current, aligned, self._offset))
        else:
            self._free.put(self._current)
        self._offset += aligned
        self._carry = tail
        self._current = following
        self._written_rows += n

    def _next_buffer(self) -> int:
        index = self._free.get()
        self._raise_writer_error()
        return index

    def _finish(self) -> None:
        if self._written_rows != self.total_rows:
            raise ValueError(f"{self._written_rows} of {self.total_rows} rows were written")
        if self._carry:
            padded = -(-self._carry // BLOCK) * BLOCK
            self._buffers[self._current][self._carry:padded] = bytes(padded - self._carry)
            self._jobs.put((self._current, padded, self._offset))
        self._jobs.put(None)  # the thread writes the queued jobs in order, then stops
        self._thread.join()
        self._thread = None
        self._raise_writer_error()
        os.ftruncate(self._fd, BLOCK + self.total_rows * self.row_bytes)
        os.fsync(self._fd)

    # -- the writer thread ------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            index, size, offset = job
            try:
                if self._error is None:
                    self._pwrite(memoryview(self._buffers[index])[:size], offset)
            except BaseException as exc:  # noqa: BLE001  (reported to the filling thread at its next step)
                self._error = exc
            finally:
                self._free.put(index)

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for buffer in self._buffers:
            try:
                buffer.close()
            except BufferError:  # a caller still holds a view of it: freed with that view
                pass
