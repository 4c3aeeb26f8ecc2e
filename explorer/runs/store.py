"""The run store: one folder per training run, named by a hash of its full configuration.

    <store>/runs/<model>-<sha256 of the canonical config, 12 hex>/
        config.json              the full configuration (model, schedule, seed, epochs, data...)
        metrics.json             one record per finished epoch
        provenance.json          package versions, git commit, device, host, wall time, sessions
        weights.safetensors      the model's weights after the last finished epoch
        checkpoint.safetensors   everything a resume needs (weights, optimizer, scheduler, RNG),
                                 in one file so that it is always self-consistent
        analysis.<name>.<params hash>.safetensors
                                 an analysis derived from the weights (`analyses`), with the
                                 checksum of the weights it was computed from
        lock                     present while a job writes the run (pid, host)

Shipped runs (``explorer/shipped_runs/<id>/``, made by ``explorer runs export``) are listed and
loaded like the user's, read-only, with weights and analyses but no checkpoint. A user run of the
same configuration takes precedence over a shipped one. Analyses computed for a shipped run are
written to ``<store>/runs/.shipped-analyses/<id>/`` (the package folder is never written).

Every file is replaced atomically (`files.replace_files`): a reader never sees half a file, and
a failure mid-write (full disk, kill) leaves the previous checkpoint as it was; the hidden
temporaries a killed writer leaves are deleted by the run's next writer. No pickle anywhere:
tensors in safetensors, everything else in JSON. Run ids are checked before the disk is touched
(`check_id_prefix`: no path ever reaches it), and a run's weights are checked against its
configuration from the safetensors header and the model built on the meta device (`check`), so a
hand-made config.json or foreign weights are listed as corrupt with the reason, never allocated.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from explorer.atomic import atomic_directory, atomic_write
from explorer.config import store_dir

from . import analyses as stored_analyses
from . import files
from . import lock as locks
from .analyses import Analysis, AnalysisCorruptError, AnalysisInfo
from .errors import (
    DISK_FULL,
    RunCorruptError,
    RunLockedError,
    RunNotFoundError,
    RunReadOnlyError,
    StoreWriteError,
)
from .provenance import now
from .serialize import flatten, unflatten

CONFIG, METRICS, PROVENANCE = "config.json", "metrics.json", "provenance.json"
WEIGHTS, CHECKPOINT = "weights.safetensors", "checkpoint.safetensors"
FORMAT = "1"  # of the safetensors files' metadata
CONFIG_FORMAT = 1  # the newest config.json format this version reads (explorer.training.config.FORMAT)
RUN_FILES = (CONFIG, METRICS, PROVENANCE, WEIGHTS, CHECKPOINT)
STATUSES = ("complete", "partial", "running", "corrupt")
_ID = re.compile(r"[a-z0-9_]+-[0-9a-f]{12}")  # used with fullmatch ($ would accept a final newline)
_ID_PREFIX = re.compile(r"[a-z0-9_][a-z0-9_-]{0,200}")
SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "shipped_runs"
SHIPPED_ANALYSES = ".shipped-analyses"  # under the user's runs folder: analyses of shipped runs


def check_id_prefix(text) -> str:
    """``text`` when it can be a run id or the start of one (lower-case letters, digits, ``_``,
    ``-``), else RunNotFoundError: a path (``../x``, ``a/b``, ``/etc/passwd``), an empty string
    (which would match every run) or anything else never reaches the file system."""
    if not isinstance(text, str) or not _ID_PREFIX.fullmatch(text):
        raise RunNotFoundError(f"{text!r} is not a run id (they look like cnn13-0123456789ab: "
                               f"lower-case letters, digits, '_' and '-', no path); "
                               f"`explorer runs list` shows them.")
    return text


def canonical_json(config: dict) -> str:
    """The configuration as sorted, compact JSON: equal configurations give equal text."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a run configuration must be plain JSON data ({exc})") from None


def run_id(config: dict) -> str:
    """``<model>-<first 12 hex of sha256(canonical JSON)>``: the same full configuration (schedule,
    seed, epochs, dataset, subset included) always maps to the same run."""
    if not isinstance(config, dict):
        raise ValueError(f"a run configuration must be a dict, got {type(config).__name__}")  # noqa: TRY004
    model = str(config.get("model", "run")).lower()
    model = re.sub(r"[^a-z0-9_]", "_", model) or "run"
    digest = hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]
    return f"{model}-{digest}"


class Checkpoint(NamedTuple):
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict
    epoch: int  # number of finished epochs
    metrics: list[dict]
    training_state: dict  # scheduler step, grad scaler, RNG states


@dataclass
class RunInfo:
    """What a listing knows of a run, read without loading any tensor. Read-only: listings made
    before the run's files change share its config, metrics and provenance."""
    id: str
    path: Path
    status: str  # one of STATUSES
    config: dict | None = None
    metrics: list[dict] | None = None
    error: str | None = None  # why a run is corrupt (or a note on a partial one)
    epochs_done: int = 0
    epochs: int | None = None
    accuracy: float | None = None  # test accuracy of the last finished epoch
    provenance: dict = field(default_factory=dict)
    shipped: bool = False  # ships with the package (read-only)
    changed_at: float = 0.0  # when a file other than an analysis last changed (seconds since the epoch)
    analyses: list[AnalysisInfo] = field(default_factory=list)  # stored analyses, damaged ones included
    legacy: bool = False  # an older run format (no provenance.json): see `error` for what it lacks


class Run:
    """One run folder. Reads are lazy; writes take the run's lock (re-entrant within this object)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name
        self._lock = locks.RunLock(self.path, self.id)
        self._lock_depth = 0
        self._session_started: float | None = None  # time.monotonic() when this session began
        self._session_base = 0.0  # wall seconds of the earlier sessions

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    # -- reading ----------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        return self._read_json(CONFIG)

    @property
    def metrics(self) -> list[dict]:
        if not (self.path / METRICS).exists():
            return []
        metrics = self._read_json(METRICS)
        if not isinstance(metrics, list):
            raise self._corrupt(f"{METRICS} is not a list")
        return metrics

    @property
    def provenance(self) -> dict:
        if not (self.path / PROVENANCE).exists():
            return {}
        return self._read_json(PROVENANCE)

    @property
    def status(self) -> str:
        return inspect_run(self.path).status

    def _read_json(self, name: str):
        try:
            return files.read_json(self.path / name)
        except FileNotFoundError:
            if not self.path.is_dir():
                raise RunNotFoundError(f"run {self.id} does not exist in {self.path.parent}") from None
            raise self._corrupt(f"{name} is missing") from None
        except (OSError, ValueError) as exc:
            raise self._corrupt(f"{name} is damaged ({exc})") from None

    def _corrupt(self, what: str) -> RunCorruptError:
        return RunCorruptError(
            f"run {self.id} is damaged: {what}. Delete it with `explorer runs delete {self.id}` "
            f"and train it again (its folder: {self.path}).")

    def load_weights(self) -> dict[str, torch.Tensor]:
        """The model's state dict after the last finished epoch (CPU tensors)."""
        from safetensors.torch import load_file

        path = self.path / WEIGHTS
        if not path.exists():
            _ = self.config  # a missing or damaged run says so first
            raise RunNotFoundError(
                f"run {self.id} has no weights yet: no epoch has finished. Resume it with "
                f"`explorer train ... --resume`, or delete it with `explorer runs delete {self.id}`.")
        try:
            files.safetensors_metadata(path)
            return load_file(path)
        except Exception as exc:  # noqa: BLE001 (safetensors raises its own type on damage)
            raise self._corrupt(f"{WEIGHTS} is unreadable ({exc})") from None

    def check_weights(self) -> None:
        """RunCorruptError naming the run, the tensor and the fix when the weights file does not fit
        the model its configuration describes (shape, missing or extra tensor, dtype) or the
        configuration cannot describe a model (unknown model, wrong types). Reads headers only and
        allocates no network (see `explorer.runs.check`)."""
        from .check import weights_problem

        path = self.path / WEIGHTS
        config = self.config
        if not path.exists():
            self.load_weights()  # its own message: no epoch finished yet
        try:
            tensors, _ = files.safetensors_header(path)
        except (OSError, ValueError) as exc:
            raise self._corrupt(f"{WEIGHTS} is unreadable ({exc})") from None
        problem = weights_problem(config, tensors)
        if problem:
            raise self._corrupt(f"{problem}; {WEIGHTS} was not written by this run's training "
                                f"(copied from another run, edited?)")

    def load_checkpoint(self) -> Checkpoint | None:
        """The state saved at the end of the last finished epoch, None when there is none."""
        from safetensors.torch import load_file

        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        try:
            meta = files.safetensors_metadata(path)
            tensors = load_file(path)
            state = unflatten(json.loads(meta["state"]), tensors)
            return Checkpoint(state["model"], state["optimizer"], int(meta["epoch"]),
                              json.loads(meta["metrics"]), state.get("training") or {})
        except Exception as exc:  # noqa: BLE001 (safetensors, JSON, missing keys)
            raise RunCorruptError(
                f"run {self.id} cannot be resumed: {CHECKPOINT} is damaged ({exc}). Delete it with "
                f"`explorer runs delete {self.id}` and train it again (its folder: {self.path}).") from None

    def build_model(self, device=None) -> torch.nn.Module:
        """The network rebuilt from the configuration, with the saved weights, in eval mode. The
        configuration and the weights file are checked against each other first (`check_weights`),
        so a mismatch is a RunCorruptError naming the tensor, never a network allocated in vain."""
        from .check import model_of

        self.check_weights()
        spec, model_config = model_of(self.config)
        model = spec.build(**model_config)
        try:
            model.load_state_dict(self.load_weights())
        except RuntimeError as exc:  # keys or shapes that do not match the configuration
            raise self._corrupt(f"{WEIGHTS} does not match the configuration ({exc})") from None
        return model.to(device or "cpu").eval()

    # -- writing ----------------------------------------------------------------------------
    def __enter__(self) -> Run:  # noqa: PYI034 (typing.Self needs Python 3.11)
        if self._lock_depth == 0:
            self._lock.acquire()
            try:  # a writer killed outright (SIGKILL) may have left its temporaries: we are the writer now
                files.remove_temporaries(self.path, (*RUN_FILES, locks.LOCK_NAME))
            except OSError:
                pass
        self._lock_depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._lock_depth -= 1
        if self._lock_depth == 0:
            self._lock.release()

    def begin_session(self, session: dict) -> None:
        """Record a training session (device, versions, commit) in the provenance."""
        with self:
            provenance = self.provenance
            provenance.setdefault("sessions", []).append(session)
            self._session_started = time.monotonic()
            self._session_base = float(provenance.get("wall_seconds", 0.0))
            self._write({PROVENANCE: files.json_bytes(provenance)}, "the provenance")

    def save_checkpoint(self, model_state: dict, optimizer_state: dict, epoch: int,
                        metrics: list[dict], *, training_state: dict | None = None) -> None:
        """Save the end of epoch ``epoch`` (1-based count of finished epochs): weights, resume
        state, metrics and provenance, all replaced together or not at all."""
        from safetensors.torch import save

        if len(metrics) != epoch:
            raise ValueError(f"metrics hold {len(metrics)} epochs, the checkpoint is at epoch {epoch}")
        tensors: dict[str, torch.Tensor] = {}
        tree = flatten({"model": dict(model_state), "optimizer": optimizer_state,
                        "training": training_state or {}}, tensors, "s")
        header = {"format": FORMAT, "run_id": self.id, "epoch": str(epoch),
                  "state": json.dumps(tree), "metrics": json.dumps(metrics)}
        weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in model_state.items()}
        with self:
            provenance = self.provenance
            provenance.update(epochs_done=epoch, updated_at=now(), complete=False)
            if self._session_started is not None:
                provenance["wall_seconds"] = round(
                    self._session_base + time.monotonic() - self._session_started, 3)
            self._write({
                CHECKPOINT: save(tensors, metadata=header),
                WEIGHTS: save(weights, metadata={"format": FORMAT, "run_id": self.id,
                                                 "epoch": str(epoch)}),
                METRICS: files.json_bytes(metrics),
                PROVENANCE: files.json_bytes(provenance),
            }, f"the checkpoint of epoch {epoch}")

    def mark_complete(self) -> None:
        with self:
            provenance = self.provenance
            provenance.update(complete=True, finished_at=now())
            self._write({PROVENANCE: files.json_bytes(provenance)}, "the provenance")

    def _write(self, contents: dict[str, bytes], what: str) -> None:
        try:
            files.replace_files({self.path / name: data for name, data in contents.items()})
        except OSError as exc:
            try:
                epoch = len(self.metrics)
            except (OSError, ValueError):
                epoch = 0
            kept = (f"the previous checkpoint (epoch {epoch}) is intact" if epoch
                    else "nothing in the store changed")
            cause, fix = write_failure(exc)
            raise StoreWriteError(exc.errno, f"could not write {what} of run {self.id} in "
                                  f"{self.path} ({cause}); {kept}. {fix}, then run again with "
                                  f"--resume.") from exc


def write_failure(exc: OSError) -> tuple[str, str]:
    """(what went wrong, what to do) for a failed write to the store, in words."""
    if exc.errno in DISK_FULL:
        return "no space left on device", "Free some space on that disk (or point EXPLORER_STORE elsewhere)"
    if exc.errno == errno.EFBIG:
        return ("file too large: a file-size limit (ulimit -f) or the file system's maximum file size "
                "was reached"), "Raise the limit (ulimit -f unlimited) or use another file system"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{exc.strerror or exc}: the store cannot be written",
                "Make the folder writable or point EXPLORER_STORE at a writable one")
    return f"{exc.strerror or exc}", "Fix the folder"


def inspect_run(path: Path) -> RunInfo:
    """A run's status and summary from its files; never raises (damage becomes "corrupt").

    The files are read again only when one of them changed (name, inode, size, mtime, ctime): the Runs
    page lists the store every second in every session. Whether a lock is live is checked every time."""
    path = Path(path)
    signature = _folder_signature(path)
    info = RunInfo(id=path.name, path=path, status="partial")
    try:
        with _INSPECTED_LOCK:
            cached = _INSPECTED.get(path)
        if signature is not None and cached is not None and cached[0] == signature:
            info = dataclasses.replace(cached[1])
        else:
            _inspect(path, info)
            # Computing an analysis does not make a run "recently changed" in the listing.
            info.changed_at = max((stamp[3] for stamp in signature or ()
                                   if not stored_analyses.is_analysis_file(stamp[0])), default=0) / 1e9
            if signature is not None:
                with _INSPECTED_LOCK:
                    _INSPECTED[path] = (signature, dataclasses.replace(info))
                    while len(_INSPECTED) > _INSPECTED_MAX:
                        _INSPECTED.pop(next(iter(_INSPECTED)))
        if info.status != "corrupt":
            info.status = _status(path, info)
    except Exception as exc:  # noqa: BLE001 (a listing must survive any damage)
        info.status, info.error = "corrupt", f"{type(exc).__name__}: {exc}"
    return info


_INSPECTED: dict[Path, tuple[tuple, RunInfo]] = {}
_INSPECTED_LOCK = threading.Lock()
_INSPECTED_MAX = 4096


def _folder_signature(path: Path) -> tuple | None:
    """(name, inode, size, mtime ns, ctime ns) of every entry: any write of the run changes it (files are
    replaced, so even a same-size rewrite gets a new inode); None when the folder cannot be read."""
    try:
        with os.scandir(path) as entries:
            return tuple(sorted((e.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                                for e in entries for st in [e.stat(follow_symlinks=False)]))
    except OSError:
        return None


def _status(path: Path, info: RunInfo) -> str:
    if locks.lock_is_live(path / locks.LOCK_NAME):
        return "running"
    if (info.provenance.get("complete") or info.legacy) and info.epochs_done == info.epochs:
        return "complete"
    return "partial"


def _inspect(path: Path, info: RunInfo) -> RunInfo:
    def corrupt(why: str) -> RunInfo:
        info.status, info.error = "corrupt", why
        return info

    try:
        config = files.read_json(path / CONFIG)
    except FileNotFoundError:
        if not any(path.iterdir()):
            return corrupt(f"an empty folder, not a run ({CONFIG} is missing); delete it")
        return corrupt(f"{CONFIG} is missing")
    except (OSError, ValueError) as exc:
        return corrupt(f"{CONFIG} is damaged ({exc})")
    if not isinstance(config, dict):
        return corrupt(f"{CONFIG} is not a JSON object")
    info.config = config
    epochs = config.get("epochs")
    info.epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
    if run_id(config) != path.name:
        return corrupt(f"{CONFIG} does not match the run id (edited by hand?)")
    version = config.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version > CONFIG_FORMAT:
        return corrupt(f"{CONFIG} has format {version!r}, newer than this version of Structures "
                       f"Explorer reads ({CONFIG_FORMAT}): upgrade the package to use this run")
    if info.epochs is None or info.epochs < 1:
        return corrupt(f"{CONFIG} says epochs={_short(epochs)}, not a number of epochs ≥ 1")
    try:
        metrics = files.read_json(path / METRICS) if (path / METRICS).exists() else []
    except (OSError, ValueError) as exc:
        return corrupt(f"{METRICS} is damaged ({exc})")
    if not isinstance(metrics, list):
        return corrupt(f"{METRICS} is not a list")
    for number, record in enumerate(metrics, 1):
        if not isinstance(record, dict):
            return corrupt(f"{METRICS}: epoch {number} is not a JSON object")
        accuracy = record.get("test_acc")
        if accuracy is not None and (isinstance(accuracy, bool) or not isinstance(accuracy, (int, float))
                                     or not 0 <= accuracy <= 1):
            return corrupt(f"{METRICS}: the test accuracy of epoch {number} is {_short(accuracy)}, "
                           f"not a fraction in [0, 1]")
    info.metrics, info.epochs_done = metrics, len(metrics)
    if metrics:
        info.accuracy = metrics[-1].get("test_acc")
    legacy = not (path / PROVENANCE).exists()  # an older run: provenance.json came later
    try:
        provenance = files.read_json(path / PROVENANCE) if not legacy else {}
    except (OSError, ValueError) as exc:
        return corrupt(f"{PROVENANCE} is damaged ({exc})")
    info.provenance = provenance if isinstance(provenance, dict) else {}
    info.shipped = bool(info.provenance.get("shipped"))
    info.analyses = stored_analyses.describe_all(stored_analyses.analysis_files(path), path / WEIGHTS)
    notes = []
    from explorer.nets import registry

    if config.get("model") not in registry.names():
        notes.append(f"model {_short(config.get('model'))} is not registered in this version "
                     f"({', '.join(registry.names())}): it is listed but cannot be loaded")
    if metrics:
        needed = (WEIGHTS,) if info.shipped or legacy else (WEIGHTS, CHECKPOINT)
        for name in needed:
            if not (path / name).exists():
                return corrupt(f"{name} is missing")
        if not (path / CHECKPOINT).exists() and legacy:
            if info.epochs_done < info.epochs:
                return corrupt(f"{CHECKPOINT} is missing: this older run stopped after epoch "
                               f"{info.epochs_done} of {info.epochs} and cannot be resumed")
            notes.append("no checkpoint: it cannot be resumed")
        if (path / CHECKPOINT).exists() and not info.shipped:
            try:
                files.safetensors_metadata(path / CHECKPOINT)
            except (OSError, ValueError) as exc:
                return corrupt(str(exc))
        try:
            tensors, _ = files.safetensors_header(path / WEIGHTS)
        except (OSError, ValueError) as exc:
            return corrupt(str(exc))
        problem = _weights_problem(config, tensors)
        if problem:
            return corrupt(problem + f"; {WEIGHTS} was not written by this run's training")
    if legacy:
        notes.insert(0, f"an older run format (no {PROVENANCE}"
                        + (", no format field in its configuration" if "format" not in config else "")
                        + "): made by an earlier version")
        info.legacy = True  # complete when all its epochs are there: it predates the "complete" flag
    if notes:
        info.error = "; ".join(notes)
    info.status = "partial"  # inspect_run decides between partial, running and complete
    return info


def _weights_problem(config: dict, tensors: dict) -> str | None:
    """What the weights' tensors lack for the configuration's model, when that model is registered
    (a run of a model registered elsewhere, e.g. by a test or a plugin, is listed unchecked)."""
    from explorer.nets import registry

    from .check import weights_problem

    if config.get("model") not in registry.names():
        return None
    return weights_problem(config, tensors)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class RunStore:
    """The runs under ``root`` (default ``<store>/runs``, the store from EXPLORER_STORE), and the
    runs shipped with the package (read-only) unless ``shipped=False``."""

    def __init__(self, root: str | os.PathLike | None = None, shipped: bool = True,
                 shipped_root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else store_dir() / "runs"
        self.shipped_root = (Path(shipped_root) if shipped_root is not None else SHIPPED_ROOT
                             ) if shipped else None

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    run_id = staticmethod(run_id)

    def path(self, run_id: str) -> Path:
        """Where the run of this id lives (or would be created) in the user's store."""
        if not isinstance(run_id, str) or not _ID.fullmatch(run_id):
            raise RunNotFoundError(f"{run_id!r} is not a run id (they look like cnn13-0123456789ab); "
                                   f"`explorer runs list` shows them.")
        return self.root / run_id

    def locate(self, run_id: str) -> Path:
        """The folder of an existing run: the user's, else the shipped one."""
        folder = self.path(run_id)
        if not folder.is_dir() and self.shipped_root is not None:
            shipped = self.shipped_root / run_id
            if shipped.is_dir():
                return shipped
        return folder

    def create_or_open(self, config: dict) -> Run:
        """The run of this configuration, created (config.json, empty metrics) if new."""
        identifier = run_id(config)
        folder = self.root / identifier
        if not folder.is_dir():
            _sweep_leftovers(self.root)
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                with atomic_directory(folder) as tmp:
                    (tmp / CONFIG).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
                    (tmp / METRICS).write_text("[]\n")
                    (tmp / PROVENANCE).write_text(json.dumps({"created_at": now()}) + "\n")
            except OSError as exc:
                cause, fix = write_failure(exc)
                raise StoreWriteError(exc.errno, f"could not create run {identifier} in "
                                      f"{self.root} ({cause}); nothing in the store changed. "
                                      f"{fix}.") from exc
        run = Run(folder)
        if run.config != json.loads(canonical_json(config)):
            raise run._corrupt(f"{CONFIG} does not match the run id")
        return run

    def resolve(self, run_id_or_prefix: str) -> str:
        """The full id of a run from its id or a unique prefix of it. Anything that is not a run id or
        the start of one (an empty string, a path such as ``../x`` or ``/etc``) is refused before the
        disk is touched."""
        check_id_prefix(run_id_or_prefix)
        if _ID.fullmatch(run_id_or_prefix) and self.locate(run_id_or_prefix).is_dir():
            return run_id_or_prefix
        names = {p.name for p in self._folders() + self._shipped_folders()}
        matches = [n for n in names if n.startswith(run_id_or_prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunNotFoundError(f"no run {run_id_or_prefix!r} in {self.root}; "
                                   f"`explorer runs list` shows the runs.")
        raise RunNotFoundError(f"{run_id_or_prefix!r} matches {len(matches)} runs "
                               f"({', '.join(sorted(matches)[:4])}…); give more of the id.")

    def load(self, run_id: str) -> Run:
        run = Run(self.locate(self.resolve(run_id)))
        _ = run.config  # raises RunCorruptError now rather than later
        return run

    def load_trained(self, run_id: str, model: str, model_words: str, needed_by: str) -> Run:
        """The run ``run_id`` (or a unique prefix), checked to be a ``model`` run with readable weights:
        ValueError naming what needs it (``needed_by``, the model as ``model_words``) and the command that
        trains one; the run's own error for missing or damaged weights."""
        run = self.load(run_id)
        found = run.config.get("model")
        if found != model:
            raise ValueError(f"run {run.id} is a {found} run: {needed_by} needs a {model_words} run (train one "
                             f"with `explorer train {model}`).")
        run.load_weights()
        return run

    def info(self, run_id: str) -> RunInfo:
        return self._with_shipped_analyses(inspect_run(self.locate(self.resolve(run_id))))

    def list(self) -> list[RunInfo]:
        """Every run, the user's most recently changed first, then the shipped ones that no user
        run shadows; damaged ones with status "corrupt"."""
        mine = sorted((inspect_run(p) for p in self._folders()), key=lambda i: i.changed_at, reverse=True)
        ids = {info.id for info in mine}
        shipped = [self._with_shipped_analyses(inspect_run(p))
                   for p in sorted(self._shipped_folders()) if p.name not in ids]
        return mine + shipped

    # -- analyses -----------------------------------------------------------------------------
    def analysis(self, run_id: str, name: str, params: dict | None = None, compute=None) -> Analysis:
        """The analysis ``name`` of these ``params`` (plain JSON) for the run's current weights.

        A stored one is returned when it was computed from the weights the run has now (same
        sha256); otherwise, or when the stored file is damaged, ``compute()`` is called, its result
        (a dict of numpy arrays, tensors and JSON values) stored atomically beside the run and
        returned (``.computed`` is then True). Without ``compute`` a missing or stale analysis
        raises RunNotFoundError and a damaged one AnalysisCorruptError."""
        params = {} if params is None else params
        file_name = stored_analyses.file_name(name, params)
        identifier = self.resolve(run_id)
        folder = self.locate(identifier)
        run = Run(folder)
        if not (folder / WEIGHTS).exists():
            run.load_weights()  # raises the run's own message (missing, damaged, no epoch yet)
        checksum = stored_analyses.weights_sha256(folder / WEIGHTS)  # before compute(): see below
        damage = None
        for candidate in self._analysis_folders(identifier, folder):
            if not (candidate / file_name).exists():
                continue
            try:
                stored = stored_analyses.read(candidate / file_name)
            except AnalysisCorruptError as exc:
                damage = exc
                continue
            if stored.weights_sha256 == checksum and stored.params == json.loads(canonical_json(params)):
                return stored
        if compute is None:
            if damage is not None:
                raise damage
            raise RunNotFoundError(f"run {identifier} has no analysis {name!r} with parameters "
                                   f"{canonical_json(params)} for its current weights.")
        # The checksum was taken before compute() read the weights: if they change meanwhile, the
        # stored analysis names the older weights and is recomputed next time, never trusted.
        values = compute()
        target = self._analysis_folders(identifier, folder)[-1] / file_name
        data = stored_analyses.encode(name, params, values, checksum, now(), identifier)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        except OSError as exc:
            cause, fix = write_failure(exc)
            kept = ("the analysis stored before is kept" if (target.exists()) else
                    "nothing was stored")
            raise StoreWriteError(exc.errno, f"could not store analysis {name!r} of run {identifier} "
                                  f"in {target.parent} ({cause}); the run itself is unchanged and "
                                  f"{kept}. {fix}.") from exc
        return dataclasses.replace(stored_analyses.read(target), computed=True)

    def analyses(self, run_id: str) -> list[AnalysisInfo]:
        """The stored analyses of a run (damaged ones with ``error`` set), stale ones included."""
        return self.info(run_id).analyses

    def _is_shipped(self, folder: Path) -> bool:
        return self.shipped_root is not None and folder.parent == self.shipped_root

    def _analysis_folders(self, run_id: str, folder: Path) -> list[Path]:
        """Where the run's analyses are read, in order; the last is where new ones are written."""
        if self._is_shipped(folder):
            return [folder, self.root / SHIPPED_ANALYSES / run_id]
        return [folder]

    def _with_shipped_analyses(self, info: RunInfo) -> RunInfo:
        if not self._is_shipped(info.path):
            return info
        extra = stored_analyses.analysis_files(self.root / SHIPPED_ANALYSES / info.id)
        if not extra:
            return info
        extra_infos = stored_analyses.describe_all(extra, info.path / WEIGHTS)
        return dataclasses.replace(info, analyses=info.analyses + extra_infos)

    def delete(self, run_id: str, force: bool = False) -> None:
        """Delete a run (refused while a live job writes it, unless ``force``). The folder is first
        renamed to a hidden name, so a listing never shows a half-deleted run."""
        identifier = self.resolve(run_id)
        folder = self.path(identifier)
        if not folder.is_dir():
            raise RunReadOnlyError(f"run {identifier} ships with the package and cannot be deleted; "
                                   f"only runs under {self.root} can.")
        lock_path = folder / locks.LOCK_NAME
        if not force and locks.lock_is_live(lock_path):
            raise RunLockedError(f"run {folder.name} is being written by "
                                 f"{locks.describe(locks.read_lock(lock_path) or {})}; stop that "
                                 f"job first.")
        trash = self.root / f".deleting-{folder.name}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def export(self, run_id: str, destination: str | os.PathLike, note: str = "") -> Path:
        """Copy a complete run to ``destination/<id>/`` for shipping: config, metrics, weights,
        the analyses of these weights (stale or damaged ones are left out) and provenance marked
        ``shipped`` (with ``note``, e.g. the command that made it); no checkpoint. Written
        atomically; an existing copy is replaced."""
        info = self.info(run_id)
        if info.status != "complete":
            raise RunCorruptError(f"run {info.id} is {info.status}; only complete runs can be exported.")
        source = info.path
        provenance = dict(info.provenance)
        provenance["shipped"] = {"note": note, "exported_at": now()}
        target = Path(destination) / info.id
        current = [a.path for a in info.analyses if a.current]
        with atomic_directory(target, replace=True) as tmp:
            for name in (CONFIG, METRICS, WEIGHTS):
                shutil.copyfile(source / name, tmp / name)
            for path in current:
                shutil.copyfile(path, tmp / path.name)
            (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
        return target

    def _folders(self) -> list[Path]:
        return _run_folders(self.root)

    def _shipped_folders(self) -> list[Path]:
        return _run_folders(self.shipped_root) if self.shipped_root is not None else []


LEFTOVER_AGE_S = 600.0  # a creation or deletion takes well under a second; older leftovers are a killed one's


def _sweep_leftovers(root: Path) -> None:
    """Delete what killed processes left in the runs folder: the hidden folder of a run being created
    (``.<id>.*.tmp``) and of a run being deleted (``.deleting-*``), once older than LEFTOVER_AGE_S
    (younger ones may belong to a live process). Hidden names are never listed as runs anyway."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    limit = time.time() - LEFTOVER_AGE_S
    for entry in entries:
        name = entry.name
        if not (name.startswith(".deleting-") or (name.startswith(".") and name.endswith(".tmp"))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


def _run_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]

