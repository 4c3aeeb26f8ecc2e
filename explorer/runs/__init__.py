"""The run store: trained networks with their configuration, metrics and provenance.

    >>> from explorer.runs import RunStore
    >>> store = RunStore()                      # <store>/runs, the store from EXPLORER_STORE
    >>> [(r.id, r.status, r.accuracy) for r in store.list()]
    >>> model = store.load("cnn13-0123456789ab").build_model()
"""
from .errors import RunCorruptError, RunExistsError, RunLockedError, RunNotFoundError, StoreWriteError
from .store import STATUSES, Checkpoint, Run, RunInfo, RunStore, canonical_json, inspect_run, run_id

__all__ = ["STATUSES", "Checkpoint", "Run", "RunCorruptError", "RunExistsError", "RunInfo",
           "RunLockedError", "RunNotFoundError", "RunStore", "StoreWriteError", "canonical_json",
           "inspect_run", "run_id"]
