"""Live re-evaluation behind the SLE Thresholding page: the thresholded W₁ cached per (run, f, mode, band),
the stored sweep looked up, and a cancellable evaluation that a newer request supersedes.

The arithmetic is `explorer.training.trainer.evaluate`'s (inference mode, batches of `EVAL_BATCH` in
dataset order, correct / N); this loop only adds a check between batches so that a superseded job stops
early (`Superseded`). `evaluation_plan` says what a run is evaluated on, in order:

- the run's stored test features: a class-balanced 2,000-image estimate first, then the full test set;
- else the 300 CIFAR-10 test images shipped with the package, scattered on the fly, with a note saying
  what is missing and how to fix it (a 300-image accuracy is an estimate, never the 10,000-image figure).

Computation side only: no UI import.
"""
from __future__ import annotations

import atexit
import copy
import functools
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import threshold as th

ESTIMATE_IMAGES = 2000
BATCH = th.EVAL_BATCH  # images per evaluation batch; a superseded job stops at the next one
# Each mode as the page offers it: (domain, mode of `threshold.threshold_accuracy`).
MODES = {
    "fourier_global": ("fourier", "global"),
    "fourier_per_unit": ("fourier", "per_unit"),
    "band": ("fourier", "band"),
    "theta_global": ("theta", "global"),
    "theta_per_unit": ("theta", "per_unit"),
}
MODE_LABELS = {
    "fourier_global": "Fourier, global",
    "fourier_per_unit": "Fourier, per unit",
    "band": "Band limit |ω| ≤ B",
    "theta_global": "θ domain, global",
    "theta_per_unit": "θ domain, per unit",
}


class Superseded(Exception):
    """A newer request replaced this evaluation before it finished."""


class Generation:
    """A counter of requests: each new request takes the next number, and a job whose number is no longer
    the latest stops (checked between evaluation batches) and never publishes its result."""

    def __init__(self):
        self._value = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    @property
    def current(self) -> int:
        return self._value

    def is_current(self, number: int) -> bool:
        return number == self._value


class Jobs:
    """Worker threads of live evaluations under one `Generation`: `start` supersedes the running job and
    starts the next; `stop` supersedes every job (a closed session, the end of the process)."""

    def __init__(self):
        self.generation = Generation()
        self.threads: list[threading.Thread] = []
        _ALL_JOBS.add(self)

    def start(self, target, *args, name: str = "threshold-live") -> threading.Thread:
        self.threads = [t for t in self.threads if t.is_alive()]
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def stop(self) -> None:
        self.generation.next()

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self.threads):
            thread.join(timeout)


_ALL_JOBS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all_jobs(timeout: float = 60.0) -> None:
    """Stop every live job and wait for it before the interpreter goes: a daemon thread still inside torch
    at exit aborts the process ("terminate called without an active exception")."""
    jobs = list(_ALL_JOBS)
    for job in jobs:
        job.stop()
    for job in jobs:
        job.join(timeout)


def check_page_mode(mode: str) -> tuple[str, str]:
    """(domain, mode) of a page mode ("fourier_global", …, "band"); ValueError otherwise."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    return MODES[mode]


# -- the thresholded layer, cached --------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def base_model(run_id: str):
    """The stored SLE run rebuilt on the CPU in eval mode (shared: never modified; jobs copy it)."""
    _, model = th.load_sle(run_id, "cpu")
    return model


@functools.lru_cache(maxsize=64)
def thresholded_layer(run_id: str, keep: float | None, mode: str, band: int):
    """(original W₁, thresholded W₁) of the run as `spectra.FirstLayer`s (learned W₁, never the effective
    weights), cached by (run, f, mode, band); ``keep`` is ignored (None) in mode "band". Bad f or B raise
    ValueError with the analysis' message."""
    from .cache import cached_first_layer

    domain, threshold_mode = check_page_mode(mode)
    layer = cached_first_layer(run_id, False)
    return layer, th._threshold(layer, keep, threshold_mode, domain, band)


def kept_counts(run_id: str, keep, mode: str, band: int) -> tuple[int, int]:
    """(kept, total) angular coefficients of this threshold, by the analysis' counting rule."""
    from .cache import cached_first_layer

    _, threshold_mode = check_page_mode(mode)
    return th._counts(cached_first_layer(run_id, False), keep, threshold_mode, band)


# -- the stored sweep ------------------------------------------------------------------------------------------

_SWEEPS: dict = {}
_NO_SWEEP: dict = {}  # run id → when it was last found absent (a look hashes the weights: not per move)
SWEEP_RECHECK_S = 30.0


def stored_sweep(run_id: str) -> dict | None:
    """The run's stored sweep as `threshold.sweep_result` gives it: the default parameters (full test set)
    first, else a class-balanced 2,000-image one; None when neither is stored (never computed here)."""
    from explorer.runs import RunStore
    from explorer.runs.store import RunNotFoundError

    if run_id in _SWEEPS:
        return _SWEEPS[run_id]
    if time.monotonic() - _NO_SWEEP.get(run_id, -SWEEP_RECHECK_S) < SWEEP_RECHECK_S:
        return None
    store = RunStore()
    for params in (th.sweep_params(), th.sweep_params(limit=ESTIMATE_IMAGES)):
        try:
            analysis = store.analysis(run_id, th.SWEEP_NAME, params)
        except (RunNotFoundError, OSError, ValueError):
            continue
        result = th.sweep_result(run_id, analysis)
        _SWEEPS[run_id] = result
        return result
    _NO_SWEEP[run_id] = time.monotonic()  # a sweep stored later is seen within SWEEP_RECHECK_S
    return None


def curve_of(sweep: dict, mode: str, band: int) -> tuple[list[float], list[float]] | None:
    """(fractions, accuracies) of the sweep's curve for this page mode; for mode "band", the one point
    (kept share, accuracy) when the sweep's band is B, else None."""
    domain, threshold_mode = check_page_mode(mode)
    if threshold_mode == "band":
        if int(band) != sweep["band"]:
            return None
        return [sweep["band_kept"] / max(sweep["total"], 1)], [sweep["band_accuracy"]]
    return sweep["fractions"], sweep["accuracy"][domain][threshold_mode]


def interpolated(fractions, accuracies, keep: float) -> float | None:
    """The sweep's accuracy at f, linearly interpolated between its points; None outside its range (the
    sweep does not say what happens below its smallest fraction)."""
    fractions, accuracies = np.asarray(fractions, float), np.asarray(accuracies, float)
    if fractions.size == 0 or not fractions.min() - 1e-9 <= keep <= fractions.max() + 1e-9:
        return None
    order = np.argsort(fractions)
    return float(np.interp(keep, fractions[order], accuracies[order]))


# -- what a run is evaluated on -------------------------------------------------------------------------------

@dataclass
class Step:
    """One evaluation set: `images` test samples from `source`; `final`: the last (most precise) one."""
    name: str  # "estimate", "full" or "samples"
    source: str
    load: Callable[[], object] = field(repr=False)  # → a Split (features, labels)
    images: int = 0
    final: bool = False


@dataclass
class Plan:
    steps: list[Step]
    note: str | None  # what is missing and the fix, when the shipped samples stand in


@functools.lru_cache(maxsize=2)
def _test_split(run_id: str):
    return th.evaluation_features(run_id)


@functools.lru_cache(maxsize=2)
def _estimate_split(run_id: str):
    from explorer.training.data import select

    split = _test_split(run_id)
    return select(split, None, ESTIMATE_IMAGES)


def evaluation_plan(run_id: str) -> Plan:
    """The evaluation sets of a run, in the order they are shown (see the module docstring)."""
    from explorer.data import DatasetNotFoundError
    from explorer.features import FeaturesNotFoundError

    try:
        split = _test_split(run_id)
    except (FeaturesNotFoundError, DatasetNotFoundError) as exc:
        samples = 300

        def load_samples():
            return th.sample_features(run_id)[0]

        step = Step("samples", "the 300 CIFAR-10 test images shipped with the package (an estimate: ±2.5 "
                    "points)", load_samples, samples, final=True)
        return Plan([step], f"Live re-evaluation needs the run's stored test features: {exc} Until then the "
                            "live accuracies are estimates on the 300 CIFAR-10 test images shipped with the "
                            "package.")
    n = len(split.y)
    steps = []
    if n > ESTIMATE_IMAGES:
        steps.append(Step("estimate", f"a class-balanced {ESTIMATE_IMAGES:,}-image estimate",
                          lambda: _estimate_split(run_id), ESTIMATE_IMAGES))
    steps.append(Step("full", f"the full test set ({n:,} images)", lambda: _test_split(run_id), n, final=True))
    return Plan(steps, None)


# -- the cancellable evaluation ---------------------------------------------------------------------------------

def cancellable_accuracy(model, split, batch_size: int | None = None,
                         should_stop: Callable[[], bool] | None = None,
                         on_batch: Callable[[int, int], None] | None = None) -> float:
    """Accuracy of ``model`` on ``split`` (features, labels) as `trainer.evaluate` computes it on the CPU
    (batches in dataset order, inference mode); raises `Superseded` as soon as ``should_stop()`` is true
    (checked before every batch). ``on_batch(done, total)`` reports progress in images."""
    from explorer.nets.extract import inference

    x, y = split.x, np.asarray(split.y)
    n, batch_size = len(y), batch_size or BATCH
    correct = 0
    with inference(model):
        for start in range(0, n, batch_size):
            if should_stop is not None and should_stop():
                raise Superseded
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).float()
            logits = model(batch).float()
            correct += int((logits.argmax(1) == torch.from_numpy(y[start:start + batch_size])).sum())
            if on_batch is not None:
                on_batch(min(start + batch_size, n), n)
    return correct / n


_BEFORE: dict = {}
_BEFORE_LOCK = threading.Lock()


def accuracy_before(run_id: str, step: Step, split, should_stop=None, on_batch=None) -> float:
    """The unthresholded accuracy on this step's set, computed once per process."""
    key = (run_id, step.name, step.images)
    with _BEFORE_LOCK:
        if key in _BEFORE:
            return _BEFORE[key]
    value = cancellable_accuracy(base_model_copy(run_id), split, should_stop=should_stop, on_batch=on_batch)
    with _BEFORE_LOCK:
        _BEFORE[key] = value
    return value


def base_model_copy(run_id: str):
    """A private copy of the run's model (a job swaps W₁ in place: jobs never share a model)."""
    return copy.deepcopy(base_model(run_id))


def evaluate_request(run_id: str, keep, mode: str, band: int, plan: Plan | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     on_result: Callable[[dict], None] | None = None,
                     on_batch: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Re-evaluate the run with W₁ thresholded on each step of ``plan`` (default `evaluation_plan`), calling
    ``on_result`` after each; raises `Superseded` when ``should_stop()`` becomes true. Each result:
    {"run", "keep", "mode", "band", "step", "source", "images", "final", "accuracy_before",
    "accuracy_after", "kept", "total"}."""
    plan = plan if plan is not None else evaluation_plan(run_id)
    _, layer = thresholded_layer(run_id, *_layer_args(keep, mode, band))
    kept, total = kept_counts(run_id, keep, mode, band)
    model = base_model_copy(run_id)
    weight = th._as_weight(layer, model)
    results = []
    for step in plan.steps:
        if should_stop is not None and should_stop():
            raise Superseded
        split = step.load()
        progress = None if on_batch is None else functools.partial(on_batch, step.name)
        before = accuracy_before(run_id, step, split, should_stop, progress)
        with model.replaced_first_layer(weight):
            after = cancellable_accuracy(model, split, should_stop=should_stop, on_batch=progress)
        result = {"run": run_id, "keep": keep, "mode": mode, "band": int(band), "step": step.name,
                  "source": step.source, "images": len(np.asarray(split.y)), "final": step.final,
                  "accuracy_before": before, "accuracy_after": after, "kept": kept, "total": total}
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _layer_args(keep, mode, band):
    return (None if mode == "band" else keep), mode, int(band)
