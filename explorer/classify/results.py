"""The classification results store, and the reading API of the dashboard.

    <store>/classify/<representation>_<method>-<12 hex of sha256(canonical config)>/
        config.json        what the result is (`settings.result_config`); its hash names the folder
        metrics.json       test and train accuracy, per-class accuracy, confusion matrix, support
                           vectors, σ, seconds per stage, the Nyström gap (`pipeline`)
        provenance.json    package versions, git commit, device, host, start and end times
        model.safetensors  the fitted model as arrays, no pickle: exact: support_indices (into the
                           stored training features), dual_coef, intercept, subset_indices; nystroem:
                           landmark_indices, normalization, coef, intercept; both: mean, std (the
                           standardisation), sigma, classes, test_indices, test_predictions

Results computed on the project's development machine are shipped with the package
(``explorer/shipped_results/<id>/``: config, metrics and provenance, no model, which would be useless
without the gigabytes of training features it indexes): `list_results` lists them beside the
user's (``shipped=True``; a user result of the same id takes precedence), so the dashboard and the
notebook show real figures on a fresh install; `load_model` on one says how to fit it yourself.

A result is written whole into a hidden temporary folder and renamed into place
(`explorer.atomic.atomic_directory`): a folder under its name is complete, and a failure mid-write
leaves nothing. Reading never raises on a damaged folder: `list_results` skips it and
`damaged_results` says why. Ids are checked before they reach the disk.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.atomic import atomic_directory
from explorer.config import store_dir

from .settings import METHODS, REPRESENTATIONS

SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "shipped_results"
CONFIG, METRICS, PROVENANCE, MODEL = "config.json", "metrics.json", "provenance.json", "model.safetensors"
RESULT_FILES = (CONFIG, METRICS, PROVENANCE, MODEL)
MODEL_FORMAT = "1"
_ID = re.compile(rf"({'|'.join(REPRESENTATIONS)})_({'|'.join(METHODS)})-[0-9a-f]{{12}}")
_MAX_JSON_BYTES = 4 * 2**20  # a results file bigger than this was not written by us
MODEL_ARRAYS = {
    "exact": ("support_indices", "dual_coef", "intercept", "subset_indices"),
    "nystroem": ("landmark_indices", "normalization", "coef", "intercept"),
}
COMMON_ARRAYS = ("mean", "std", "sigma", "classes", "test_indices", "test_predictions")


class ResultNotFoundError(FileNotFoundError):
    """No stored result of that id or configuration."""


class ResultCorruptError(ValueError):
    """A stored result exists but is damaged."""


@dataclass(frozen=True)
class ClassifyResult:
    """A stored result: ``id`` (its folder's name), the parsed ``config``, ``metrics`` and
    ``provenance`` (see the module docstring for their fields) and its ``folder``."""
    id: str
    config: dict
    metrics: dict
    provenance: dict
    folder: Path
    shipped: bool = False  # shipped with the package: no model.safetensors


@dataclass(frozen=True)
class DamagedResult:
    """A folder of the results store that is not a readable result, and why."""
    id: str
    folder: Path
    reason: str


def results_dir(create: bool = False) -> Path:
    return store_dir(create=create) / "classify"


def canonical_json(config: dict) -> str:
    """Sorted, compact JSON: equal configurations give equal text (and equal ids)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)


def result_id(config: dict) -> str:
    """``<representation>_<method>-<12 hex of sha256(canonical JSON of config)>``."""
    digest = hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]
    return f"{config['representation']}_{config['method']}-{digest}"


def check_id(text) -> str:
    """``text`` if it has the shape of a result id, else ResultNotFoundError (no path ever reaches
    the disk: ``../x``, ``a/b`` and the like are refused here)."""
    if not isinstance(text, str) or not _ID.fullmatch(text):
        raise ResultNotFoundError(
            f"{text!r} is not a classification result id (they look like roto_exact-0123456789ab); "
            f"`explorer classify list` shows the stored ones.")
    return text


def write_result(config: dict, metrics: dict, provenance: dict, model: dict[str, np.ndarray], *,
                 overwrite: bool = False, root: Path | None = None) -> ClassifyResult:
    """Store a result atomically under its id; an existing one is kept unless ``overwrite``."""
    from safetensors.numpy import save_file

    rid = result_id(config)
    missing = [name for name in MODEL_ARRAYS[config["method"]] + COMMON_ARRAYS if name not in model]
    if missing:
        raise ValueError(f"a {config['method']} model needs the arrays {', '.join(missing)}.")
    folder = (root or results_dir(create=True)) / rid
    texts = {name: (json.dumps(value, indent=1, allow_nan=False) + "\n")
             for name, value in ((CONFIG, config), (METRICS, metrics), (PROVENANCE, provenance))}
    with atomic_directory(folder, replace=overwrite) as tmp:
        for name, text in texts.items():
            (tmp / name).write_text(text)
        arrays = {name: np.ascontiguousarray(value) for name, value in model.items()}
        save_file(arrays, str(tmp / MODEL), metadata={"format": MODEL_FORMAT, "id": rid,
                                                      "method": config["method"]})
    return load_result(folder)


def load_result(which: str | Path) -> ClassifyResult:
    """A stored result by id (or folder). ResultNotFoundError when absent, ResultCorruptError
    (with the reason and the fix) when damaged."""
    if isinstance(which, Path):
        folder = which
        check_id(folder.name)
    else:
        folder = results_dir() / check_id(which)
        if not folder.is_dir() and (SHIPPED_ROOT / which).is_dir():
            folder = SHIPPED_ROOT / which
    shipped = folder.parent == SHIPPED_ROOT
    if not folder.is_dir():
        raise ResultNotFoundError(f"no classification result {folder.name} in {folder.parent}; "
                                  f"`explorer classify list` shows the stored ones.")
    try:
        config, metrics, provenance = (_read_json(folder / name) for name in (CONFIG, METRICS, PROVENANCE))
        _check(folder, config, metrics, needs_model=not shipped)
    except (OSError, ValueError) as exc:
        raise ResultCorruptError(
            f"classification result {folder.name} is damaged: {exc}. Delete its folder {folder} "
            f"and run `explorer classify svm` again.") from None
    return ClassifyResult(folder.name, config, metrics, provenance, folder, shipped)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path.name} is missing")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"{path.name} is larger than {_MAX_JSON_BYTES // 2**20} MB")
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path.name} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")  # noqa: TRY004
    return value


def _check(folder: Path, config: dict, metrics: dict, needs_model: bool = True) -> None:
    if config.get("representation") not in REPRESENTATIONS or config.get("method") not in METHODS:
        raise ValueError("config.json names no known representation and method")
    try:
        expected = result_id(config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config.json is not plain JSON data ({exc})") from None
    if expected != folder.name:
        raise ValueError(f"config.json does not match the folder's name (it would be {expected}): "
                         f"edited or copied by hand")
    accuracy = metrics.get("test_accuracy")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ValueError("metrics.json has no test accuracy between 0 and 1")
    model = folder / MODEL
    if not needs_model:
        return
    if not model.is_file():
        raise ValueError(f"{MODEL} is missing")
    from explorer.runs.files import safetensors_header

    tensors, _ = safetensors_header(model)
    missing = [name for name in MODEL_ARRAYS[config["method"]] + COMMON_ARRAYS if name not in tensors]
    if missing:
        raise ValueError(f"{MODEL} lacks {', '.join(missing)}")


def _folders(root: Path | None) -> list[Path]:
    root = root or results_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))  # hidden: temporaries


def list_results(root: Path | None = None, shipped: bool = True) -> list[ClassifyResult]:
    """Every readable result of the store (``root``, default the user's), newest first (by provenance
    ``finished_unix``), then, for the user's store and unless ``shipped`` is False, the shipped results
    that the user has not recomputed. Damaged folders are left out (`damaged_results` lists them
    with the reason). Never raises on content."""
    results = []
    for folder in _folders(root):
        try:
            results.append(load_result(folder))
        except (OSError, ValueError):
            continue
    own = {r.id for r in results}
    extra = []
    if root is None and shipped:
        for folder in _folders(SHIPPED_ROOT):
            try:
                if folder.name not in own:
                    extra.append(load_result(folder))
            except (OSError, ValueError):
                continue
    return sorted(results, key=_newest_first) + sorted(extra, key=_newest_first)


def ship(result: ClassifyResult, root: Path = SHIPPED_ROOT) -> Path:
    """Copy a result's config, metrics and provenance (not its model) to ``root`` (the package's
    shipped results by default), atomically; returns the folder."""
    with atomic_directory(root / result.id, replace=True) as tmp:
        for name in (CONFIG, METRICS, PROVENANCE):
            (tmp / name).write_bytes((result.folder / name).read_bytes())
    return root / result.id


def damaged_results(root: Path | None = None) -> list[DamagedResult]:
    """The folders of the results store that `list_results` leaves out, each with its reason."""
    damaged = []
    for folder in _folders(root):
        try:
            load_result(folder)
        except (OSError, ValueError) as exc:
            damaged.append(DamagedResult(folder.name, folder, str(exc)))
    return damaged


def _newest_first(result: ClassifyResult):
    finished = result.provenance.get("finished_unix")
    if isinstance(finished, bool) or not isinstance(finished, (int, float)):
        finished = _timestamp(result.provenance.get("finished_at"))  # to the second only
    return (-finished, result.id)


def _timestamp(text) -> float:
    from datetime import datetime

    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return float("-inf")


def find_result(config: dict, root: Path | None = None) -> ClassifyResult | None:
    """The stored result of exactly this configuration, or None (a damaged one raises)."""
    folder = (root or results_dir()) / result_id(config)
    return load_result(folder) if folder.exists() else None


def load_model(result: ClassifyResult) -> dict[str, np.ndarray]:
    """The model's arrays (see the module docstring); ResultCorruptError when unreadable."""
    from safetensors.numpy import load_file

    if result.shipped:
        raise ResultNotFoundError(
            f"{result.id} is a result shipped with the package: its figures only, without the model, "
            f"which indexes the training features of the machine that computed it. Fit it on yours with "
            f"`explorer classify svm --scattering {result.config.get('representation')} --methods "
            f"{result.config.get('method')} --J {result.config.get('J')}`.")
    try:
        arrays = load_file(str(result.folder / MODEL))
    except Exception as exc:  # noqa: BLE001 (safetensors raises its own types on damage)
        raise ResultCorruptError(f"{MODEL} of {result.id} is unreadable ({exc}); delete "
                                 f"{result.folder} and run `explorer classify svm` again.") from None
    missing = [name for name in MODEL_ARRAYS[result.config["method"]] + COMMON_ARRAYS
               if name not in arrays]
    if missing:
        raise ResultCorruptError(f"{MODEL} of {result.id} lacks {', '.join(missing)}; delete "
                                 f"{result.folder} and run `explorer classify svm` again.")
    return arrays


TABLE_FIELDS = ("representation", "method", "test_accuracy", "train_accuracy", "train_size",
                "subset_per_class", "subset_seed", "components", "gap", "test_size", "J", "L", "Q",
                "K", "image_size", "C", "sigma", "support_vectors", "seconds", "finished_at", "id",
                "shipped")


def comparison_table(results: list[ClassifyResult],
                     by: tuple[str, ...] = ("representation", "method")) -> list[dict]:
    """One row per (representation, method) (``by``: config fields, or "id" for one row per result),
    from the newest result of each, newest first.
    Row fields (TABLE_FIELDS): representation, method, test_accuracy, train_accuracy, train_size
    (images the classifier was fitted on), subset_per_class and subset_seed (the exact SVM's subset,
    or the subset of a Nyström gap), components (Nyström only, else None), gap (Nyström only: the
    exact SVM's test accuracy minus Nyström + linear's on that subset, else None), test_size, J, L,
    Q, K (roto only), image_size, C, sigma, support_vectors (exact only), seconds (all stages),
    finished_at, id, shipped (computed on the project's machine and shipped with the package). The
    user's own results come before shipped ones of the same group."""
    rows, seen = [], set()
    for result in sorted(results, key=lambda r: (r.shipped, _newest_first(r))):  # the user's first
        group = tuple(result.id if name == "id" else result.config.get(name) for name in by)
        if group in seen:
            continue
        seen.add(group)
        c, m = result.config, result.metrics
        gap = m.get("gap") if isinstance(m.get("gap"), dict) else {}
        seconds = m.get("seconds") if isinstance(m.get("seconds"), dict) else {}
        rows.append({
            "representation": c.get("representation"), "method": c.get("method"),
            "test_accuracy": m.get("test_accuracy"), "train_accuracy": m.get("train_accuracy"),
            "train_size": c.get("train_size"), "subset_per_class": c.get("subset_per_class"),
            "subset_seed": c.get("subset_seed"), "components": c.get("components"),
            "gap": gap.get("difference"), "test_size": c.get("test_size"),
            "J": c.get("J"), "L": c.get("L"), "Q": c.get("Q"), "K": c.get("K"),
            "image_size": c.get("image_size"), "C": c.get("C"), "sigma": m.get("sigma"),
            "support_vectors": m.get("support_vectors"),
            "seconds": round(sum(v for v in seconds.values() if isinstance(v, (int, float))), 3),
            "finished_at": result.provenance.get("finished_at"), "id": result.id,
            "shipped": result.shipped,
        })
    return rows
