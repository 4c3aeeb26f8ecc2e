"""Where a run comes from: package versions, git commit, device, host, times."""
from __future__ import annotations

import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

_PACKAGES = ("torch", "numpy", "safetensors", "structures-explorer")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path | None = None) -> dict:
    """{"commit", "dirty"} of the repository holding the explorer package, None fields when it is
    not a git checkout (an installed wheel) or git is missing."""
    folder = folder or Path(__file__).resolve().parents[2]

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def device_description(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"{device.type} ({platform.processor() or platform.machine()})"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def dataset_copies(dataset: str | None = None) -> list[dict]:
    """Which copies of CIFAR-10 this process loaded (`explorer.data.cifar10.copy_fingerprint`: the
    official release, the JPEG-derived copy, or an unknown one), for ``dataset`` "cifar10" or None
    (whatever was loaded); [] for another dataset."""
    if dataset not in (None, "cifar10"):
        return []
    from explorer.data.cifar10 import loaded_copies

    return loaded_copies()


def session(device, amp: str | None = None, dataset: str | None = None) -> dict:
    """The record of one training session (a run resumed twice has three). ``datasets`` lists the
    CIFAR-10 copies loaded by this process (`dataset_copies`), when there are any."""
    import torch

    record = {
        "started_at": now(), "host": socket.gethostname(), "device": device_description(device),
        "amp": amp, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "git": git_commit(),
    }
    copies = dataset_copies(dataset)
    if copies:
        record["datasets"] = copies
    return record
