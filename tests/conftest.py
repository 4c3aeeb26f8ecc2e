"""Shared fixtures: an isolated store for every test session, and the real CIFAR-10 when configured; one
share of the cores per pytest-xdist worker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from explorer.config import STORE_ENV
from explorer.data import DatasetNotFoundError, find_cifar10


@pytest.fixture(scope="session", autouse=True)
def _isolated_store(tmp_path_factory):
    """Point EXPLORER_STORE at a fresh folder so tests never read or write the user's store."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(tmp_path_factory.mktemp("store")))
        mp.delenv("EXPLORER_DEBUG", raising=False)  # the CLI tests expect one-line errors
        yield


def _share_the_cores() -> None:
    """Give each xdist worker (and the notebooks, servers and commands it starts, through OMP_NUM_THREADS)
    its share of the cores. Two workers of two torch threads each on two cores spin against each other in
    OpenMP: a small grid of trainings took 3.1× as long as with one thread each (237 s against 75 s)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:  # one process, or the user chose
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


_share_the_cores()


def _cifar_location() -> tuple[Path | None, str]:
    try:
        return find_cifar10(), ""
    except DatasetNotFoundError as exc:
        return None, f"CIFAR-10 not configured: {exc}"


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The real CIFAR-10 (archive or folder) from EXPLORER_DATA; skips the test when there is none."""
    location, reason = _cifar_location()
    if location is None:
        pytest.skip(reason)
    return location


def pytest_runtest_setup(item):
    if item.get_closest_marker("dataset"):
        location, reason = _cifar_location()
        if location is None:
            pytest.skip(reason)
    if item.get_closest_marker("browser") and shutil.which("chromium", path="/usr/bin") is None:
        pytest.skip("browser test: /usr/bin/chromium is missing (apt-get install chromium)")
