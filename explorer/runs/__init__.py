"""The run store: trained networks with their configuration, metrics and provenance.

    >>> from explorer.runs import RunStore
    >>> store = RunStore()                      # <store>/runs, the store from EXPLORER_STORE
    >>> [(r.id, r.status, r.accuracy) for r in store.list()]
    >>> model = store.load("cnn13-0123456789ab").build_model()
    >>> store.analysis("cnn13-0123456789ab", "spectrum", {"layer": 3}, compute=lambda: {...})

Runs shipped with the package (explorer/shipped_runs) are listed and loaded the same way.
"""
from .analyses import Analysis, AnalysisCorruptError, AnalysisInfo
from .describe import describe_model
from .errors import (
    RunCorruptError,
    RunExistsError,
    RunLockedError,
    RunNotFoundError,
    RunReadOnlyError,
    StoreWriteError,
)
from .store import STATUSES, Checkpoint, Run, RunInfo, RunStore, canonical_json, inspect_run, run_id

__all__ = ["STATUSES", "Analysis", "AnalysisCorruptError", "AnalysisInfo", "Checkpoint", "Run",
           "RunCorruptError", "RunExistsError", "RunInfo", "RunLockedError", "RunNotFoundError",
           "RunReadOnlyError", "RunStore", "StoreWriteError", "canonical_json", "describe_model",
           "inspect_run", "run_id"]
