"""The chunked .npy writer behind stored features: byte-exact files that numpy reads back, whatever the
chunk sizes and block alignment, with or without O_DIRECT, and errors that reach the caller."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from explorer import npy_writer
from explorer.features import FeatureConfig, compute_features
from explorer.npy_writer import BLOCK, NpyChunkWriter, npy_header


def write(path: Path, array: np.ndarray, chunks: list[int], rows: int) -> NpyChunkWriter:
    with NpyChunkWriter(path, array.shape, array.dtype, rows) as writer:
        start = 0
        for n in chunks:
            writer.rows_view(n)[...] = array[start:start + n]
            writer.commit(n)
            start += n
    return writer


@pytest.mark.parametrize("shape,dtype,chunks,rows", [
    ((37, 3, 5, 7), np.float32, [5, 5, 5, 5, 5, 5, 5, 2], 5),  # rows of 420 bytes: never block-aligned
    ((64, 3, 81, 8, 8), np.float32, [16, 16, 16, 16], 16),      # 62,208-byte rows: aligned every 16
    ((9, 1000), np.float64, [1, 2, 3, 3], 3),                   # chunks both under and over a block
    ((3, 2), np.int16, [1, 1, 1], 1),                           # the whole array inside one block
])
def test_the_file_is_the_array_numpy_reads(tmp_path, shape, dtype, chunks, rows):
    array = np.random.default_rng(0).normal(size=shape).astype(dtype) if np.dtype(dtype).kind == "f" \
        else np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    path = tmp_path / "a.npy"
    write(path, array, chunks, rows)
    assert path.stat().st_size == BLOCK + array.nbytes
    np.testing.assert_array_equal(np.load(path), array)
    mapped = np.load(path, mmap_mode="r")
    assert mapped.offset == BLOCK and mapped.dtype == array.dtype  # data on a block boundary
    # The header is what numpy itself would parse: its own reader agrees on shape and dtype.
    with open(path, "rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
        assert np.lib.format.read_array_header_1_0(f) == (shape, False, np.dtype(dtype))
    assert len(npy_header(shape, dtype)) == BLOCK


def test_without_o_direct_the_same_bytes_go_through_the_page_cache(tmp_path, monkeypatch):
    array = np.random.default_rng(1).normal(size=(50, 3, 9, 4, 4)).astype(np.float32)
    write(tmp_path / "direct.npy", array, [16, 16, 16, 2], 16)
    monkeypatch.delattr(os, "O_DIRECT", raising=False)  # as on macOS
    without = write(tmp_path / "buffered.npy", array, [16, 16, 16, 2], 16)
    assert not without.direct
    assert (tmp_path / "direct.npy").read_bytes() == (tmp_path / "buffered.npy").read_bytes()
    if Path("/dev/shm").is_dir():  # tmpfs: O_DIRECT refused at open on older kernels, accepted on newer
        shm = Path("/dev/shm") / f"explorer-test-{os.getpid()}.npy"
        try:
            monkeypatch.undo()
            write(shm, array, [16, 16, 16, 2], 16)
            np.testing.assert_array_equal(np.load(shm), array)
        finally:
            shm.unlink(missing_ok=True)


def test_o_direct_refused_at_the_first_write_falls_back(tmp_path, monkeypatch):
    real = os.pwrite
    refused = []

    def picky(fd, data, offset):
        if not refused:
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", picky)
    array = np.arange(40 * 300, dtype=np.float32).reshape(40, 300)
    writer = write(tmp_path / "a.npy", array, [10, 10, 10, 10], 10)
    if refused and getattr(os, "O_DIRECT", 0):
        assert not writer.direct
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)


def test_a_failed_write_reaches_the_caller_and_leaves_no_features(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    real, calls = os.pwrite, []

    def full_disk(fd, data, offset):
        calls.append(offset)
        if len(calls) > 2:  # the header and one chunk fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(npy_writer.os, "pwrite", full_disk)
    images = np.random.default_rng(2).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    with pytest.raises(OSError, match="No space left"):
        compute_features(FeatureConfig(J=2, L=4), images, batch_size=8, progress=False)
    assert not [p for p in (tmp_path / "features").iterdir()]  # neither the folder nor a temporary


def test_row_counts_are_checked(tmp_path):
    with pytest.raises(ValueError, match="chunks of at most 4"), \
            NpyChunkWriter(tmp_path / "a.npy", (10, 3), np.float32, 4) as writer:
        writer.rows_view(5)
    with pytest.raises(ValueError, match="6 of 10 rows were written"), \
            NpyChunkWriter(tmp_path / "b.npy", (10, 3), np.float32, 4) as writer:
        for n in (4, 2):
            writer.rows_view(n)[...] = 1
            writer.commit(n)
