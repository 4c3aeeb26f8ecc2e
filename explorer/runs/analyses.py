"""Analyses derived from a run's weights, stored beside them in the run's folder.

    <run>/analysis.<name>.<12 hex of sha256(canonical JSON of params)>.safetensors

One file per analysis: its arrays as tensors, and in the safetensors header the name, the
parameters, the sha256 of the weights file it was computed from, when, and its JSON values. One
file is replaced atomically, so a reader sees the old analysis or the new one, never half.
The files sit at the top of the run's folder so that they are deleted, exported and shipped
(package data ``shipped_runs/*/*``) with the run.

An analysis is trusted only while the run's weights are the ones it was computed from: when the
weights' checksum differs, `RunStore.analysis` computes it again. A damaged file is recomputed
too (and replaced); reading one without a ``compute`` raises `AnalysisCorruptError`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files
from .errors import RunCorruptError

PREFIX, SUFFIX = "analysis.", ".safetensors"
ANALYSIS_FORMAT = "1"
_NAME = re.compile(r"^[a-z0-9_]+$")
_FILE = re.compile(r"^analysis\.([a-z0-9_]+)\.([0-9a-f]{12})\.safetensors$")


class AnalysisCorruptError(RunCorruptError):
    """A stored analysis exists but cannot be read."""


@dataclass(frozen=True)
class Analysis:
    """A stored analysis: ``values`` holds its numpy arrays and its JSON values by name."""
    name: str
    params: dict
    values: dict
    weights_sha256: str
    created_at: str = ""
    path: Path | None = None
    computed: bool = False  # computed by this call rather than read from the store

    def __getitem__(self, key: str):
        return self.values[key]


@dataclass(frozen=True)
class AnalysisInfo:
    """What a listing knows of a stored analysis, from its file name and header only."""
    name: str
    key: str  # the parameters' hash
    path: Path
    params: dict | None = None
    weights_sha256: str | None = None
    error: str | None = None  # why the file cannot be read
    current: bool | None = None  # computed from the run's present weights (None: unknown)


def params_key(params: dict) -> str:
    """12 hex of sha256 of the parameters as sorted, compact JSON."""
    try:
        text = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"analysis parameters must be plain JSON data ({exc})") from None
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"an analysis name is lower-case letters, digits and '_', got {name!r}")
    return name


def file_name(name: str, params: dict) -> str:
    return f"{PREFIX}{check_name(name)}.{params_key(params)}{SUFFIX}"


def is_analysis_file(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


def analysis_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in Path(folder).iterdir() if _FILE.match(p.name))
    except OSError:
        return []


_CHECKSUMS: dict[tuple, str] = {}
_CHECKSUMS_LOCK = threading.Lock()


def weights_sha256(path: Path) -> str:
    """sha256 of a weights file, remembered while its inode, size and mtime stay the same (weights
    are always replaced by a rename, so a change gives a new inode)."""
    st = os.stat(path)
    stamp = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _CHECKSUMS_LOCK:
        known = _CHECKSUMS.get(stamp)
    if known is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        known = digest.hexdigest()
        with _CHECKSUMS_LOCK:
            if len(_CHECKSUMS) > 1024:
                _CHECKSUMS.clear()
            _CHECKSUMS[stamp] = known
    return known


def encode(name: str, params: dict, values: dict, weights_checksum: str, created_at: str,
           run_id: str) -> bytes:
    """The safetensors bytes of an analysis: arrays as tensors, the rest as JSON in the header."""
    from safetensors.numpy import save

    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise TypeError("an analysis is a dict of named values (arrays or JSON data)")
    arrays, plain = {}, {}
    for key, value in values.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            arrays[key] = np.ascontiguousarray(value)
        elif isinstance(value, np.generic):
            plain[key] = value.item()
        else:
            plain[key] = value
    try:
        plain_json = json.dumps(plain, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"analysis {name!r}: a value is neither an array nor JSON data ({exc})") from None
    header = {"format": ANALYSIS_FORMAT, "name": name, "params": json.dumps(params, sort_keys=True),
              "weights_sha256": weights_checksum, "created_at": created_at, "run_id": run_id,
              "values": plain_json}
    return save(arrays, metadata=header)


def read_header(path: Path) -> dict:
    """The header of an analysis file, checked; raises AnalysisCorruptError when damaged."""
    try:
        meta = files.safetensors_metadata(path)
        header = {"name": meta["name"], "params": json.loads(meta["params"]),
                  "weights_sha256": meta["weights_sha256"], "created_at": meta.get("created_at", ""),
                  "values": json.loads(meta["values"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnalysisCorruptError(f"analysis {Path(path).name} is damaged ({exc}); it is "
                                   f"recomputed when asked for with a compute function, or "
                                   f"delete the file ({path}).") from None
    if not isinstance(header["values"], dict) or not isinstance(header["params"], dict):
        raise AnalysisCorruptError(f"analysis {Path(path).name} is damaged (bad header)")
    return header


def read(path: Path) -> Analysis:
    from safetensors.numpy import load_file

    header = read_header(path)
    try:
        arrays = load_file(path)
    except Exception as exc:  # noqa: BLE001 (safetensors raises its own type on damage)
        raise AnalysisCorruptError(f"analysis {Path(path).name} is damaged ({exc}); delete the "
                                   f"file ({path}) or recompute it.") from None
    return Analysis(header["name"], header["params"], {**header["values"], **arrays},
                    header["weights_sha256"], header["created_at"], Path(path))


def describe(path: Path, weights_checksum: str | None = None) -> AnalysisInfo:
    """A listing entry from the file's header; never raises (a damaged file has ``error`` set).
    With the checksum of the run's weights, ``current`` says whether it was computed from them."""
    path = Path(path)
    match = _FILE.match(path.name)
    name, key = (match.group(1), match.group(2)) if match else (path.name, "")
    try:
        header = read_header(path)
    except AnalysisCorruptError as exc:
        return AnalysisInfo(name, key, path, error=str(exc))
    current = None if weights_checksum is None else header["weights_sha256"] == weights_checksum
    return AnalysisInfo(name, key, path, header["params"], header["weights_sha256"], current=current)


def describe_all(paths: list[Path], weights: Path) -> list[AnalysisInfo]:
    """Listing entries of ``paths``, each marked current or not against the ``weights`` file."""
    if not paths:
        return []
    try:
        checksum = weights_sha256(weights)
    except OSError:  # no weights (yet): nothing is current
        checksum = ""
    return [describe(p, checksum) for p in paths]
