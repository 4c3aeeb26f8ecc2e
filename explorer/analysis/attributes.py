"""The attribute axes of a multiscale hierarchical CNN and the translations along them (science.md §5).

Layer j's output, averaged over space, is a small array z_j(x)(v_old, v_new) per image x: rows along the
older attribute (the one layer j's filters slid along), columns along the newest (its filter index).
Layer 1 has one attribute only; it is returned as a single row.

The talk's test — translations along attributes are present in the last layer and not in the earlier
ones — is measured here as follows, per layer, on N images of which the first Q are queries:

- the maps are centred by their mean over the N images (a pattern every image shares would otherwise
  match at every shift alike);
- s(x, y, τ): the Pearson correlation between the rows T … A−T−1 of z(x) and the rows T+τ … A−T−1+τ of
  z(y) (T = ``max_shift``; every τ compares the same number of values, so no shift is favoured);
- ``between[τ]``: over the queries, the mean of the best s(q, r, τ) over every other image r;
- the **translation ratio** ½(between[−1] + between[+1]) / between[0]: near 1 (or above) when an image's best
  partner shifted by one attribute position matches as well as its best unshifted partner, well below 1 when
  shifted partners match worse. It is compared across layers (every layer 2–11 has the same A × F shape) and
  with the control below; ``unshifted`` is between[0] itself;
- ``self[τ]``: the mean s(q, q, τ): how smooth the maps are along the axis. A ratio near 1 with a
  self-similarity near 1 says the maps hardly change along the attribute (invariance), not that images
  are translates of one another;
- the **control**: the same network untrained (seeded initial weights, its BatchNorm statistics measured
  on the same images): what the architecture gives before any learning.

Computation only: no UI import. The result is stored beside the run (`analyse_attributes`).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from explorer.config import default_device
from explorer.runs import Run, RunStore

ATTRIBUTES_NAME = "attribute_translations"
ATTRIBUTES_FORMAT = 3  # 3: the translation ratio (a row-shuffled chance level was contaminated at A = 4)
DEFAULT_IMAGES = 1000
DEFAULT_QUERIES = 200
MAX_SHIFT = 1
VARIATION_FLOOR = 1e-4  # maps varying less than this fraction of their size between images are not compared
CONTROL_SEED = 0
BATCH = {"cpu": 50, "cuda": 500}

Report = Callable[[str, float], None]  # (what is being done, fraction done)


# -- the run ------------------------------------------------------------------------------------------------

def load_hcnn(run_id: str, store: RunStore | None = None) -> Run:
    """The stored hierarchical-CNN run ``run_id`` (or a unique prefix), checked: a hcnn with weights."""
    store = store if store is not None else RunStore()
    return store.load_trained(run_id, "hcnn", "hierarchical CNN", "the attribute analysis")


# -- attribute maps -----------------------------------------------------------------------------------------

def _as_images(images) -> torch.Tensor:
    x = torch.from_numpy(np.array(images))  # a copy: shipped images are read-only
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W) (uint8 in 0..255 or floats in [0, 1]), got "
                         f"{tuple(x.shape)}.")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def attribute_maps(model: torch.nn.Module, images, device=None, batch_size: int | None = None,
                   progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Per layer, the spatial mean of its output for each image, in inference mode: a list of 11 arrays
    (N, A, F) (older attribute × newest; layer 1: (N, 1, F)). ``images``: (N, 3, H, W) uint8 or [0, 1]."""
    from explorer.nets.extract import inner_representations

    x = _as_images(images)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch_size = batch_size or BATCH.get(device.type, 50)

    def batches():
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size]

    def reduce(maps: torch.Tensor) -> torch.Tensor:
        means = maps.float().mean(dim=(-2, -1))
        return means.unsqueeze(1) if means.ndim == 2 else means  # layer 1: one attribute, one row

    per_layer: list[list[np.ndarray]] = []
    for result in inner_representations(model, batches(), reduce, device):
        for layer, maps in enumerate(result):
            if layer == len(per_layer):
                per_layer.append([])
            per_layer[layer].append(maps.cpu().numpy())
        if progress is not None:
            progress(int(result[0].shape[0]))
    return [np.concatenate(parts) for parts in per_layer]


# -- translations along the older attribute ----------------------------------------------------------------

def _windows(maps: np.ndarray, shift: int, margin: int) -> np.ndarray:
    """Rows margin+shift … A−margin−1+shift of each map, flattened and standardised (zero mean, unit
    norm) so that a dot product is a Pearson correlation. A constant window stays zero."""
    rows = maps.shape[1]
    window = maps[:, margin + shift:rows - margin + shift].reshape(len(maps), -1).astype(np.float64)
    window = window - window.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(window, axis=1, keepdims=True)
    return np.divide(window, norms, out=np.zeros_like(window), where=norms > 1e-12)


def measurable(maps: np.ndarray, max_shift: int = MAX_SHIFT) -> bool:
    """Whether a layer's older attribute is long enough to compare windows shifted by ±max_shift."""
    return maps.shape[1] > 2 * max_shift


def _best_other(correlation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best other image (the query i is image i) and its correlation."""
    rows = np.arange(len(correlation))
    correlation = correlation.copy()
    correlation[rows, rows] = -np.inf
    best = correlation.argmax(axis=1)
    return best, correlation[rows, best]


def shift_similarity(maps: np.ndarray, queries: int, max_shift: int = MAX_SHIFT) -> dict:
    """For maps (N, A, F) whose first ``queries`` are the queries, centred by their mean over the N images:
    ``shifts`` (−T … T), ``between`` and ``self`` (one value per shift), ``partner`` (queries × shifts: the
    index of each query's best other image at each shift) and ``partner_similarity`` (its correlation). All NaN when
    the maps hardly differ between images (less than ``VARIATION_FLOOR`` of their size)."""
    count = len(maps)
    if not 1 <= queries <= count - 1:
        raise ValueError(f"queries must be between 1 and the number of images − 1 ({count - 1}), got {queries}.")
    if not measurable(maps, max_shift):
        raise ValueError(f"the older attribute has {maps.shape[1]} positions: too few for shifts of "
                         f"±{max_shift} (it needs more than {2 * max_shift}).")
    shifts = np.arange(-max_shift, max_shift + 1)
    centred = maps - maps.mean(axis=0, keepdims=True)
    if np.abs(centred).max() <= VARIATION_FLOOR * max(np.abs(maps).max(), 1e-30):
        nan = np.full(len(shifts), np.nan)  # every image gives the same map: correlations of rounding noise
        return {"shifts": shifts, "between": nan, "self": nan.copy(),
                "partner": np.zeros((queries, len(shifts)), dtype=np.int64),
                "partner_similarity": np.full((queries, len(shifts)), np.nan)}
    maps = centred
    query_windows = _windows(maps[:queries], 0, max_shift)
    between, itself = np.empty(len(shifts)), np.empty(len(shifts))
    partner = np.empty((queries, len(shifts)), dtype=np.int64)
    partner_similarity = np.empty((queries, len(shifts)))
    rows = np.arange(queries)
    for i, shift in enumerate(shifts):
        correlation = query_windows @ _windows(maps, int(shift), max_shift).T  # (Q, N)
        itself[i] = correlation[rows, rows].mean()
        partner[:, i], partner_similarity[:, i] = _best_other(correlation)
        between[i] = partner_similarity[:, i].mean()
    return {"shifts": shifts, "between": between, "self": itself, "partner": partner,
            "partner_similarity": partner_similarity}


def translation_ratio(between: np.ndarray, shifts: np.ndarray) -> float:
    """½(between[−1] + between[+1]) / between[0]; NaN when unshifted partners do not correlate at all."""
    shifts, between = np.asarray(shifts), np.asarray(between)
    centre = float(between[shifts == 0][0])
    shifted = float(np.mean([between[shifts == -1][0], between[shifts == 1][0]]))
    return shifted / centre if centre > 1e-9 else float("nan")


def calibrate_batchnorm(model: torch.nn.Module, images, batch_size: int = 50) -> torch.nn.Module:
    """Replace every BatchNorm's running statistics by their average over ``images`` (no gradient, weights
    unchanged): an untrained network then normalises as it would while training."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # the cumulative average over every batch
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    x = _as_images(images)
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size].to(device))
    model.train(was_training)
    return model


def untrained_like(run: Run, images, device) -> torch.nn.Module:
    """The run's architecture with seeded initial weights, its BatchNorm calibrated on ``images``."""
    from explorer.nets import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CONTROL_SEED)
        model = build_model(run.config["model"], **run.config["model_config"])
    return calibrate_batchnorm(model.to(device), images)


def layer_translations(maps: list[np.ndarray], queries: int, max_shift: int = MAX_SHIFT) -> dict:
    """Per layer: ``translation`` (the ratio), ``unshifted`` (between[0]), ``between`` and ``self``
    (layers × shifts), NaN where a layer's older attribute is too short (layer 1);
    ``partner``/``partner_similarity`` of the last layer."""
    shifts = np.arange(-max_shift, max_shift + 1)
    layers = len(maps)
    between = np.full((layers, len(shifts)), np.nan)
    itself = np.full((layers, len(shifts)), np.nan)
    translation, unshifted = np.full(layers, np.nan), np.full(layers, np.nan)
    last = None
    for layer, layer_maps in enumerate(maps):
        if not measurable(layer_maps, max_shift):
            continue
        result = shift_similarity(layer_maps, queries, max_shift)
        between[layer], itself[layer] = result["between"], result["self"]
        translation[layer] = translation_ratio(result["between"], shifts)
        unshifted[layer] = result["between"][shifts == 0][0]
        last = result
    return {"shifts": shifts, "translation": translation, "unshifted": unshifted, "between": between, "self": itself,
            "partner": last["partner"], "partner_similarity": last["partner_similarity"]}


# -- the stored analysis -----------------------------------------------------------------------------------

def translations_params(images: int = DEFAULT_IMAGES, queries: int = DEFAULT_QUERIES,
                        source: str = "cifar10-test") -> dict:
    from ._checks import check_int

    check_int("images", images, 3)
    check_int("queries", queries, 1)
    if queries >= images:
        raise ValueError(f"queries must be fewer than the images ({images}), got {queries}.")
    return {"format": ATTRIBUTES_FORMAT, "images": int(images), "queries": int(queries), "source": source,
            "max_shift": MAX_SHIFT, "control_seed": CONTROL_SEED}


def _compute(run: Run, chosen, queries: int, device, report: Report | None, bar: bool) -> dict:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    count = len(chosen.labels)
    total = 3 * count  # trained maps, the control's calibration and its maps
    done = [0]
    with tqdm(total=total, desc=f"attribute translations {run.id}", unit="img", disable=not bar) as progress:
        def advance(amount: int, label: str):
            done[0] += amount
            progress.update(amount)
            if report is not None:
                report(label, min(1.0, done[0] / total))

        model = run.build_model(device)
        trained = attribute_maps(model, chosen.images, device, progress=lambda n: advance(n, "trained network"))
        if report is not None:
            report("calibrating the untrained control", done[0] / total)
        control_model = untrained_like(run, chosen.images, device)
        advance(count, "untrained control")
        control = attribute_maps(control_model, chosen.images, device,
                                 progress=lambda n: advance(n, "untrained control"))
    measured, baseline = layer_translations(trained, queries), layer_translations(control, queries)
    return {"layers": np.arange(1, len(trained) + 1), "shifts": measured["shifts"],
            "translation": measured["translation"], "unshifted": measured["unshifted"],
            "between": measured["between"], "self": measured["self"],
            "control_translation": baseline["translation"], "control_unshifted": baseline["unshifted"],
            "control_between": baseline["between"],
            "control_self": baseline["self"], "partner": measured["partner"],
            "partner_similarity": measured["partner_similarity"], "image_indices": chosen.indices,
            "labels": chosen.labels, "source_text": chosen.source,
            "seconds": round(time.perf_counter() - started, 3)}


def _stored(store: RunStore, run_id: str, params: dict):
    from explorer.runs import RunNotFoundError

    try:
        return store.analysis(run_id, ATTRIBUTES_NAME, params)
    except (RunNotFoundError, OSError, ValueError):
        return None


def analyse_attributes(run_id: str, images: int = DEFAULT_IMAGES, queries: int = DEFAULT_QUERIES,
                       store: RunStore | None = None, device=None, progress: bool = True,
                       report: Report | None = None) -> dict:
    """The translation test of a hierarchical-CNN run on ``images`` CIFAR-10 test images (balanced over
    the classes; the shipped 300 when no dataset is configured), read from the store or computed and
    stored there. ``report(label, fraction)`` is told the progress. Returns `translations_result`'s dict."""
    from explorer.data.samples import test_images

    store = store if store is not None else RunStore()
    run = load_hcnn(run_id, store)
    chosen = test_images(limit=images)
    source = "cifar10-test" if "test set" in chosen.source else "shipped-samples"
    count = len(chosen.labels)
    params = translations_params(count, min(queries, count - 1), source)
    device = torch.device(device) if device is not None else default_device()
    analysis = store.analysis(run.id, ATTRIBUTES_NAME, params,
                              compute=lambda: _compute(run, chosen, params["queries"], device, report, progress))
    return translations_result(run, analysis)


def stored_translations(run_id: str, store: RunStore | None = None) -> dict | None:
    """The stored translation test of the run's current weights on the most images (the default 1,000
    CIFAR-10 test images, the 300 shipped samples, or what `explorer analyse attributes --images N`
    stored), or None when there is none. Never computes."""
    store = store if store is not None else RunStore()
    run = load_hcnn(run_id, store)
    candidates = [entry.params for entry in store.info(run.id).analyses
                  if entry.name == ATTRIBUTES_NAME and entry.current and not entry.error
                  and isinstance(entry.params, dict) and entry.params.get("format") == ATTRIBUTES_FORMAT]
    for params in sorted(candidates, key=lambda p: (p.get("images", 0), p.get("queries", 0)), reverse=True):
        analysis = _stored(store, run.id, params)
        if analysis is not None:
            return translations_result(run, analysis)
    return None


def translations_result(run: Run, analysis) -> dict:
    """{"run", "model_config", "test_accuracy", "layers", "shifts", "translation", "unshifted",
    "between", "self", "control_translation", "control_unshifted", "control_between", "control_self", "partner", "partner_similarity",
    "image_indices", "labels", "images", "queries", "source", "seconds", "computed", "path"}."""
    values = analysis.values
    metrics = run.metrics
    result = {key: np.asarray(values[key]) for key in (
        "layers", "shifts", "translation", "unshifted", "between", "self", "control_translation",
        "control_unshifted",
        "control_between", "control_self",
        "partner", "partner_similarity", "image_indices", "labels")}
    result.update({
        "run": run.id, "model_config": dict(run.config.get("model_config", {})),
        "test_accuracy": float(metrics[-1]["test_acc"]) if metrics else None,
        "images": int(analysis.params["images"]), "queries": int(analysis.params["queries"]),
        "source": str(values["source_text"]), "seconds": float(values["seconds"]),
        "computed": bool(analysis.computed), "path": str(analysis.path) if analysis.path else None,
    })
    return result
