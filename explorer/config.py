"""Where things live: the dataset folder, the run/feature store, the compute device.

Environment variables (read on every call, so a CLI option can override them by setting the variable):
- ``EXPLORER_DATA``: folder holding CIFAR-10 (archive or extracted folder). Unset means "no dataset".
- ``EXPLORER_STORE``: folder for runs, cached features and decoded datasets.
  Default: ``$XDG_CACHE_HOME/structures-explorer`` (``~/.cache/structures-explorer``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "EXPLORER_DATA"
STORE_ENV = "EXPLORER_STORE"


def data_dir() -> Path | None:
    """The dataset folder from ``EXPLORER_DATA``, or None when it is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value).expanduser() if value else None


def store_dir(create: bool = True) -> Path:
    """The run/feature store folder, created on demand."""
    value = os.environ.get(STORE_ENV, "").strip()
    if value:
        path = Path(value).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
        path = Path(cache) / "structures-explorer"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def default_device():
    """``torch.device("cuda")`` when a GPU is usable, else the CPU."""
    import torch  # imported here so that reading the configuration stays cheap

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
