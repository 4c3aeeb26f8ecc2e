"""Hybrids against CNNs on small training sets (science.md §4, the small-sample protocol of P3).

The protocol (`explorer.protocols.small_data`) trains each model on n images of the training set, n/classes
per class, chosen within each class by ``RandomState(seed).permutation(...)[:n/classes]``, with the network's
initialisation seeded by the same seed, and evaluates it on the test set. Its stored grid summaries are the
input here, with the run store's listing for the "all" point. Everything below is plain computation on plain
data (summary dicts as `list_summaries` returns them, `explorer.runs.RunInfo`s), so that tests build it by hand:

- **collections**: the stored grids that share a schedule, a dataset and a test-set limit are one
  collection. Their runs are comparable (same protocol, same test images), and a grid run later with more
  models or seeds adds to the ones before it (`explorer protocol small-data --models cnn13` after a grid of
  hybrids). A (model, n, seed) cell is the same run in every grid that lists it (the run id hashes the full
  configuration); where grids disagree (one finished it, one not yet), the newest finished value is kept.
- **series**: a model with its configuration (`describe`, "cnn13 K=32 relu"): two CNN13 widths are two series.
  At each size n: the accuracy of every finished seed, their mean and their standard deviation with
  ddof = 1 (the paper's ± over seeds 1–5; None with a single finished seed, whose spread is unknown).
- **the "all" point**: the model trained on the whole training set (CIFAR-10: 50 000 images) is not part of
  the protocol; it is taken from the run store: complete runs of the same model and configuration
  (`describe`) on the same dataset with no subset and no limit on the training or test set. All of them are
  kept, best first; the figures draw the best.
- **gains**: for each other series, the accuracy minus the baseline's (CNN13 by default) **per seed**, at each
  size both were run at: with the same dataset, n and seed the protocol draws the same training images for
  every model, so the difference isolates the architecture (the scattering prior for a hybrid) from the luck
  of the draw. Mean and standard deviation (ddof = 1) over the seeds finished by both.

Accuracies are fractions in [0, 1] here; the views show percentages. Computation only: no UI import.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BASELINE_MODEL = "cnn13"
# Training-set size of "all" (classes × training images per class; `explorer.protocols.small_data.CLASS_SIZES`).
FULL_SIZES = {"cifar10": 50_000, "synthetic": 2 * 1024}
# The talk's small-sample table (science.md §4 and §6, "talk"): CIFAR-10 test accuracy (fraction) trained on
# 100 / 500 / 1000 images, the authors' protocol (seeds 1–5, full test set, the paper's schedule).
REPORTED_SIZES = (100, 500, 1000)
REPORTED = {
    "Scat+ResNet": (0.38, 0.55, 0.62),
    "WRN 16-8": (0.35, 0.47, 0.60),
    "VGG 16": (0.26, 0.47, 0.56),
}
REPORTED_DATASET = "cifar10"
HYBRID_MODELS = ("scat_linear", "scat_mlp", "scat_wrn", "sle", "sle_fourier")  # fallback of `is_hybrid`


def is_hybrid(model: str) -> bool:
    """Whether `model` learns on scattering coefficients (a hybrid, science.md §4) rather than on pixels: the
    registry's ``trains_on == "features"``; for a model the registry does not know, `HYBRID_MODELS`."""
    try:
        from explorer.nets import registry

        return registry.get(model).trains_on == "features"
    except (ValueError, ImportError):
        return model in HYBRID_MODELS


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    """(mean, standard deviation with ddof = 1) of `values`; (None, None) for none, (value, None) for one."""
    v = [float(x) for x in values]
    if not v:
        return None, None
    mean = math.fsum(v) / len(v)
    if len(v) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1))


# -- what the summaries hold ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One series at one training-set size: per seed (in `seeds` order) the test accuracy (None: not finished),
    the training seconds, the device and the run id."""
    model: str
    describe: str
    n: int
    seeds: tuple[int, ...]
    accuracies: tuple[float | None, ...]
    seconds: tuple[float | None, ...]
    devices: tuple[str | None, ...]
    run_ids: tuple[str | None, ...]

    @property
    def finished(self) -> int:
        return sum(a is not None for a in self.accuracies)

    @property
    def done(self) -> dict[int, float]:
        """seed → accuracy of the finished seeds."""
        return {s: a for s, a in zip(self.seeds, self.accuracies) if a is not None}

    @property
    def mean(self) -> float | None:
        return mean_std(self.done.values())[0]

    @property
    def std(self) -> float | None:
        """Over the finished seeds, ddof = 1; None with fewer than two."""
        return mean_std(self.done.values())[1]

    @property
    def mean_seconds(self) -> float | None:
        times = [t for t, a in zip(self.seconds, self.accuracies) if a is not None and t is not None]
        return math.fsum(times) / len(times) if times else None

    @property
    def device_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for d, a in zip(self.devices, self.accuracies) if a is not None and d))


@dataclass(frozen=True)
class FullRun:
    """A complete run on the whole training set (the "all" point)."""
    run_id: str
    accuracy: float
    seconds: float | None
    device: str | None
    shipped: bool
    schedule: str | None


@dataclass(frozen=True)
class Series:
    """A model with its configuration: its cells by increasing n, its full-training-set runs (best first)."""
    model: str
    describe: str
    cells: tuple[Cell, ...]
    full: tuple[FullRun, ...] = ()

    @property
    def label(self) -> str:
        return self.describe

    @property
    def hybrid(self) -> bool:
        return is_hybrid(self.model)

    @property
    def best_full(self) -> FullRun | None:
        return self.full[0] if self.full else None

    def cell(self, n: int) -> Cell | None:
        return next((c for c in self.cells if c.n == n), None)


@dataclass(frozen=True)
class Gain:
    """`label` minus `baseline` at size n, per seed finished by both (accuracy fractions)."""
    label: str
    model: str
    baseline: str
    n: int
    seeds: tuple[int, ...]
    gains: tuple[float, ...]

    @property
    def mean(self) -> float | None:
        return mean_std(self.gains)[0]

    @property
    def std(self) -> float | None:
        return mean_std(self.gains)[1]


@dataclass(frozen=True)
class Collection:
    """The stored grids of one (schedule, dataset, test-set limit), merged into series."""
    key: str
    schedule: str
    dataset: str
    limit_test: int | None
    grid_ids: tuple[str, ...]
    series: tuple[Series, ...]
    problems: tuple[str, ...] = field(default=())  # rows left out, and why

    @property
    def label(self) -> str:
        """"small-quick · cifar10 (2 grids)", with the test limit when there is one."""
        words = [self.schedule, self.dataset]
        if self.limit_test is not None:
            words.append(f"{self.limit_test} test images")
        count = len(self.grid_ids)
        return " · ".join(words) + f" ({count} grid{'s' if count != 1 else ''})"

    @property
    def complete(self) -> bool:
        return all(c.finished == len(c.seeds) for s in self.series for c in s.cells)

    @property
    def full_size(self) -> int | None:
        return FULL_SIZES.get(self.dataset)

    def get(self, label: str) -> Series | None:
        return next((s for s in self.series if s.label == label), None)


def collection_key(schedule: str, dataset: str, limit_test: int | None) -> str:
    return f"{schedule}|{dataset}|{'all' if limit_test is None else limit_test}"


def _number(value, name: str, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} {value!r} is not a finite number")
    return float(value)


def _row_cells(row: dict) -> list[tuple[int, float | None, float | None, str | None, str | None]]:
    """(seed, accuracy, seconds, device, run id) of a summary row, checked (ValueError or TypeError naming
    the field)."""
    seeds = row.get("seeds")
    accuracies = row.get("accuracies")
    if not isinstance(seeds, list) or not isinstance(accuracies, list) or len(seeds) != len(accuracies):
        raise ValueError("its seeds and accuracies are not two lists of one length")
    extra = {}
    for name in ("seconds", "devices", "run_ids"):
        value = row.get(name)
        extra[name] = value if isinstance(value, list) and len(value) == len(seeds) else [None] * len(seeds)
    out = []
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed {seed!r} is not an integer")
        accuracy = _number(accuracies[i], "accuracy")
        if accuracy is not None and not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy {accuracy!r} is not in [0, 1]")
        try:
            seconds = _number(extra["seconds"][i], "seconds")
        except ValueError:
            seconds = None  # a time is shown, never computed with: an odd one is left blank
        device, run = extra["devices"][i], extra["run_ids"][i]
        out.append((seed, accuracy, seconds, device if isinstance(device, str) else None,
                    run if isinstance(run, str) else None))
    return out


def _summary_key(summary: dict) -> tuple[str, str, int | None]:
    grid = summary.get("grid") if isinstance(summary.get("grid"), dict) else {}
    schedule = summary.get("schedule") or grid.get("schedule") or "?"
    limit = grid.get("limit_test")
    return str(schedule), str(grid.get("dataset", "cifar10")), limit if isinstance(limit, int) else None


def collect(summaries: Sequence[dict], runs: Sequence = ()) -> list[Collection]:
    """The stored grid summaries (newest first, as `list_summaries` returns them) merged into collections,
    newest first, each with its series (in the order their models first appear) and their "all" points from
    `runs` (`RunStore().list()`; see `full_runs`). A malformed row is left out and named in `problems`."""
    groups: dict[tuple, list[dict]] = {}
    for summary in summaries:
        groups.setdefault(_summary_key(summary), []).append(summary)
    out = []
    for (schedule, dataset, limit), members in groups.items():
        # (model, describe) → n → seed → (accuracy, seconds, device, run id); the newest finished value wins.
        merged: dict[tuple[str, str], dict[int, dict[int, tuple]]] = {}
        problems = []
        for summary in members:
            for index, row in enumerate(summary.get("rows") or []):
                try:
                    if not isinstance(row, dict):
                        raise TypeError("it is not a record")
                    model, n = row.get("model"), row.get("n")
                    if not isinstance(model, str) or isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                        raise ValueError(f"model {model!r} or size {n!r} is not valid")
                    cells = _row_cells(row)
                except (ValueError, TypeError) as exc:
                    problems.append(f"grid {summary.get('id', '?')}, row {index + 1}: {exc}")
                    continue
                describe = row.get("describe") if isinstance(row.get("describe"), str) else model
                by_seed = merged.setdefault((model, describe), {}).setdefault(n, {})
                for seed, accuracy, seconds, device, run in cells:
                    known = by_seed.get(seed)
                    if known is None or (known[0] is None and accuracy is not None):
                        by_seed[seed] = (accuracy, seconds, device, run)
        series = []
        for (model, describe), sizes in merged.items():
            cells = []
            for n in sorted(sizes):
                seeds = tuple(sorted(sizes[n]))
                values = [sizes[n][s] for s in seeds]
                cells.append(Cell(model, describe, n, seeds, *(tuple(v[i] for v in values) for i in range(4))))
            series.append(Series(model, describe, tuple(cells), tuple(full_runs(runs, dataset, model, describe))))
        out.append(Collection(collection_key(schedule, dataset, limit), schedule, dataset, limit,
                              tuple(str(s.get("id", "?")) for s in members), tuple(series), tuple(problems)))
    return out


# -- the "all" point ----------------------------------------------------------------------------------------

def describe_config(config: dict) -> str | None:
    """The registry's description of a run's model ("cnn13 K=32 relu"), None when it cannot be made."""
    try:
        from explorer.nets import registry

        return registry.get(config["model"]).describe(config["model_config"])
    except Exception:  # noqa: BLE001  (a damaged or foreign configuration: not comparable)
        return None


def is_full_training(config: dict, dataset: str) -> bool:
    """A run on the whole training set of `dataset`, evaluated on the whole test set."""
    return (config.get("dataset") == dataset and config.get("subset") is None
            and config.get("limit_train") is None and config.get("limit_test") is None)


def full_runs(runs: Sequence, dataset: str, model: str, describe: str) -> list[FullRun]:
    """The complete runs of `model` described as `describe` trained on all of `dataset` (`is_full_training`),
    best accuracy first. `runs`: objects with the fields of `explorer.runs.RunInfo` (id, status, config,
    accuracy, metrics, provenance, shipped)."""
    found = []
    for info in runs:
        config = getattr(info, "config", None)
        accuracy = getattr(info, "accuracy", None)
        if (getattr(info, "status", None) != "complete" or not isinstance(config, dict)
                or config.get("model") != model or accuracy is None or not is_full_training(config, dataset)):
            continue
        if describe_config(config) != describe:
            continue
        metrics = getattr(info, "metrics", None) or []
        seconds = [m.get("seconds") for m in metrics if isinstance(m, dict)]
        seconds = [s for s in seconds if isinstance(s, (int, float)) and not isinstance(s, bool)]
        sessions = (getattr(info, "provenance", None) or {}).get("sessions") or [{}]
        device = sessions[-1].get("device") if isinstance(sessions[-1], dict) else None
        schedule = config.get("schedule")
        found.append(FullRun(str(info.id), float(accuracy), float(sum(seconds)) if seconds else None,
                             device if isinstance(device, str) else None, bool(getattr(info, "shipped", False)),
                             schedule.get("name") if isinstance(schedule, dict) else None))
    return sorted(found, key=lambda r: -r.accuracy)


# -- gains over the baseline ------------------------------------------------------------------------------

def default_baseline(collection: Collection) -> str | None:
    """The label of the first CNN13 series of the collection, None when it has none."""
    return next((s.label for s in collection.series if s.model == BASELINE_MODEL), None)


def gains(collection: Collection, baseline: str | None) -> list[Gain]:
    """For each series other than `baseline` (a series label) and each size both were run at, the accuracy
    differences per seed finished by both (the same training images: same dataset, n and seed). Sizes with no
    seed in common are left out; an unknown or None baseline gives none."""
    base = collection.get(baseline) if baseline is not None else None
    if base is None:
        return []
    out = []
    for series in collection.series:
        if series.label == base.label:
            continue
        for cell in series.cells:
            ref = base.cell(cell.n)
            if ref is None:
                continue
            mine, theirs = cell.done, ref.done
            seeds = tuple(s for s in cell.seeds if s in mine and s in theirs)
            if seeds:
                out.append(Gain(series.label, series.model, base.label, cell.n, seeds,
                                tuple(mine[s] - theirs[s] for s in seeds)))
    return out


def verdict(collection_gains: Sequence[Gain]) -> dict[str, tuple[list[int], list[int]]]:
    """label → (sizes where the mean gain is above zero by more than its standard deviation, sizes where it is
    below zero by more than it): where the prior pays off and where it costs, beyond the seeds' spread. A gain
    from one seed has no spread: it counts on its sign alone."""
    out: dict[str, tuple[list[int], list[int]]] = {}
    for g in collection_gains:
        ahead, behind = out.setdefault(g.label, ([], []))
        margin = g.std or 0.0
        if g.mean > margin:
            ahead.append(g.n)
        elif g.mean < -margin:
            behind.append(g.n)
    return out
