"""The small-sample protocol of Oyallon et al. (ICCV 2017), science.md §4.

For each model, training-set size n and seed s: train on n CIFAR-10 images, n/10 per class, chosen
within each class by ``RandomState(s).permutation(5000)[:n/10]`` (`explorer.data.subsets`), with the
network's initialisation seeded by s too; evaluate on the full 10 k test set. The paper's sizes are
100, 500 and 1000, its seeds 1–5, and its schedule ``small-paper`` (SGD lr 0.1, momentum 0.9, weight
decay 5e-4, batch 128, 200 epochs of 20 passes, lr × 0.2 at 60, 120, 160); ``small-quick`` has the same
shape in 1.25 % of the steps, for a CPU.

Every cell is an ordinary run of the run store (its id hashes its configuration), so a grid stopped
half-way continues where it was with the same command: finished runs are reused, a partial one is
resumed. After each cell the grid's summary (accuracy per seed, mean ± standard deviation over the
finished seeds, time per run, the device) is written atomically to
``<store>/protocols/small-data/<grid id>.json``, where the app reads it.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from explorer.atomic import atomic_write
from explorer.nets import registry
from explorer.runs.store import canonical_json

SIZES = (100, 500, 1000)
SEEDS = (1, 2, 3, 4, 5)
GRID_SCHEDULES = {"quick": "small-quick", "paper": "small-paper"}
CLASS_SIZES = {"cifar10": (10, 5000), "synthetic": (2, 1024)}  # (classes, training images per class)
FORMAT = 1
FOLDER = ("protocols", "small-data")


@dataclass(frozen=True)
class SmallDataGrid:
    """Which runs make the grid. ``model_configs`` overrides a model's defaults ({"cnn13": {"width": 16}});
    ``limit_test`` is for tests only (the protocol evaluates on the full test set)."""
    models: tuple[str, ...]
    sizes: tuple[int, ...] = SIZES
    seeds: tuple[int, ...] = SEEDS
    schedule: str = "quick"
    dataset: str = "cifar10"
    model_configs: dict = field(default_factory=dict)
    limit_test: int | None = None

    def __post_init__(self):
        for name in ("models", "sizes", "seeds"):
            value = getattr(self, name)
            if isinstance(value, (str, int)) or not isinstance(value, Sequence):
                raise ValueError(f"{name} must be a list, got {value!r}.")  # noqa: TRY004 (the CLI reports ValueError)
            object.__setattr__(self, name, tuple(value))
        check_grid(self)

    @property
    def id(self) -> str:
        """``<schedule>-<dataset>-<12 hex of the grid's canonical JSON>``."""
        digest = hashlib.sha256(canonical_json(self.as_dict()).encode()).hexdigest()[:12]
        return f"{self.schedule}-{self.dataset}-{digest}"

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def check_grid(grid: SmallDataGrid) -> None:
    """Messages that name the parameter and the fix."""
    if not grid.models:
        raise ValueError(f"the grid has no model; name at least one of {', '.join(registry.names())}.")
    for model in grid.models:
        registry.get(model)  # an unknown model: its message lists the known ones
    unknown = set(grid.model_configs) - set(grid.models)
    if unknown:
        raise ValueError(f"model_configs names {sorted(unknown)}, which the grid does not train.")
    if not grid.seeds:
        raise ValueError("the seed list is empty: give at least one seed (the paper uses 1 2 3 4 5).")
    for seed in grid.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be integers ≥ 0, got {seed!r}.")
    if len(set(grid.seeds)) != len(grid.seeds) or len(set(grid.sizes)) != len(grid.sizes):
        raise ValueError(f"sizes and seeds must not repeat, got sizes {list(grid.sizes)} and seeds {list(grid.seeds)}.")
    if grid.schedule not in GRID_SCHEDULES:
        raise ValueError(f"unknown protocol schedule {grid.schedule!r}; choose one of {', '.join(GRID_SCHEDULES)}.")
    if grid.dataset not in CLASS_SIZES:
        raise ValueError(f"unknown dataset {grid.dataset!r}; choose one of {', '.join(CLASS_SIZES)}.")
    classes, per_class = CLASS_SIZES[grid.dataset]
    if not grid.sizes:
        raise ValueError(f"the size list is empty: give training-set sizes (the paper uses {' '.join(map(str, SIZES))}).")
    for n in grid.sizes:
        if isinstance(n, bool) or not isinstance(n, int) or n < classes or n % classes:
            raise ValueError(f"each training-set size must be a positive multiple of the {classes} classes "
                             f"(the protocol takes n/{classes} images per class), got {n!r}.")
        if n // classes > per_class:
            raise ValueError(f"size {n} asks for {n // classes} images per class, but a {grid.dataset} class has "
                             f"only {per_class} training images: use at most {classes * per_class}.")


def grid_cells(grid: SmallDataGrid) -> list[tuple[str, int, int, dict]]:
    """(model, n, seed, full training configuration) of every run of the grid, models first."""
    from explorer.training import make_config

    cells = []
    for model in grid.models:
        for n in grid.sizes:
            for seed in grid.seeds:
                config = make_config(model, schedule=GRID_SCHEDULES[grid.schedule], seed=seed,
                                     dataset=grid.dataset, subset={"n": n, "seed": seed},
                                     limit_test=grid.limit_test, **grid.model_configs.get(model, {}))
                cells.append((model, n, seed, config))
    return cells


def summary_path(grid: SmallDataGrid, store=None) -> Path:
    from explorer.runs import RunStore

    store = store if store is not None else RunStore()
    return Path(store.root).parent.joinpath(*FOLDER, f"{grid.id}.json")


def summarise(grid: SmallDataGrid, store=None) -> dict:
    """The grid's summary from the run store: per (model, n) the final test accuracy of each finished
    seed, their mean and standard deviation (ddof = 1, as the paper's ±; 0 for a single seed), the
    training time of each run and the devices; cells not run yet are None."""
    from explorer.runs import RunStore

    store = store if store is not None else RunStore()
    rows = []
    for model in grid.models:
        for n in grid.sizes:
            rows.append({"model": model, "describe": None, "n": n, "seeds": list(grid.seeds),
                         "accuracies": [], "seconds": [], "run_ids": [], "devices": []})
    index = {(row["model"], row["n"]): row for row in rows}
    for model, n, _seed, config in grid_cells(grid):
        row = index[(model, n)]
        row["describe"] = registry.get(model).describe(config["model_config"])
        run_id = store.run_id(config)
        info = _complete_info(store, run_id)
        row["run_ids"].append(run_id)
        if info is None:
            row["accuracies"].append(None)
            row["seconds"].append(None)
            row["devices"].append(None)
            continue
        row["accuracies"].append(info.accuracy)
        row["seconds"].append(round(sum(m.get("seconds", 0.0) for m in info.metrics), 2))
        sessions = info.provenance.get("sessions") or [{}]
        row["devices"].append(sessions[-1].get("device"))
    for row in rows:
        done = np.array([a for a in row["accuracies"] if a is not None], dtype=float)
        row["finished"] = int(done.size)
        row["mean"] = float(done.mean()) if done.size else None
        row["std"] = float(done.std(ddof=1)) if done.size > 1 else (0.0 if done.size else None)
    return {"format": FORMAT, "protocol": "small-data", "id": grid.id, "grid": grid.as_dict(),
            "schedule": GRID_SCHEDULES[grid.schedule], "rows": rows,
            "complete": all(row["finished"] == len(grid.seeds) for row in rows)}


def _complete_info(store, run_id: str):
    from explorer.runs import inspect_run

    folder = store.locate(run_id)  # the user's run, else a shipped one
    if not folder.is_dir():
        return None
    info = inspect_run(folder)
    return info if info.status == "complete" else None


def write_summary(grid: SmallDataGrid, store=None) -> dict:
    summary = summarise(grid, store)
    path = summary_path(grid, store)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(summary, indent=1).encode())
    return summary


def run_grid(grid: SmallDataGrid, store=None, device=None, progress: bool = True,
             on_cell: Callable[[int, int, str, int, int], None] | None = None) -> dict:
    """Train every cell not finished yet (resuming a partial one), writing the summary after each;
    returns the final summary. ``on_cell(index, total, model, n, seed)`` is called before each cell."""
    from tqdm.auto import tqdm

    from explorer.runs import RunStore
    from explorer.training import train

    store = store if store is not None else RunStore()
    cells = grid_cells(grid)  # every configuration is validated before the first run starts
    write_summary(grid, store)
    bar = tqdm(total=len(cells), desc=f"small-data {grid.schedule}", unit="run", disable=not progress)
    for index, (model, n, seed, config) in enumerate(cells):
        if on_cell is not None:
            on_cell(index, len(cells), model, n, seed)
        bar.set_postfix_str(f"{model} n={n} seed={seed}")
        train(config, store=store, resume=True, progress=progress, device=device)
        write_summary(grid, store)
        bar.update()
    bar.close()
    return write_summary(grid, store)


def list_summaries(store=None) -> list[dict]:
    """Every stored grid summary, newest first; an unreadable file is skipped with a warning."""
    from explorer.runs import RunStore

    store = store if store is not None else RunStore()
    folder = Path(store.root).parent.joinpath(*FOLDER)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            summary = json.loads(path.read_text())
            if summary.get("protocol") != "small-data" or not isinstance(summary.get("rows"), list):
                raise ValueError("not a small-data summary")
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping the damaged protocol summary {path}: {exc}", stacklevel=2)
            continue
        summary["mtime"] = path.stat().st_mtime
        found.append(summary)
    return sorted(found, key=lambda s: -s["mtime"])
