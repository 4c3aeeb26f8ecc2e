"""Shared fixtures: an isolated store for every test session, and the real CIFAR-10 when configured."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from explorer.config import STORE_ENV
from explorer.data import DatasetNotFoundError, find_cifar10


@pytest.fixture(scope="session", autouse=True)
def _isolated_store(tmp_path_factory):
    """Point EXPLORER_STORE at a fresh folder so tests never read or write the user's store."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(tmp_path_factory.mktemp("store")))
        mp.delenv("EXPLORER_DEBUG", raising=False)  # the CLI tests expect one-line errors
        yield


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
