"""Re-evaluation of an SLE whose first layer W₁ is thresholded (science.md §4), and the sweep over the
kept fraction stored beside the run.

Thresholding always applies to the learned W₁ (the layer acting on BN-normalised coefficients, not the
effective weights W₁·diag(1/σ)); `explorer.analysis.spectra` does the arithmetic:

- domain ``"fourier"``: keep the largest-magnitude fraction ``keep`` of W₁'s angular-Fourier coefficients,
  over the whole layer (mode ``"global"``) or within each output unit (``"per_unit"``), invert the DFT and
  keep the real part; mode ``"band"`` keeps the angular frequencies {0, ±1, …, ±band} only;
- domain ``"theta"``: the same sparsity applied to the raw weights (``"global"`` or ``"per_unit"``).

The network is re-evaluated on the run's test features (stored by ``explorer scatter`` for CIFAR-10,
computed in memory for the synthetic set) without retraining, with ``model.replaced_first_layer(W)``: the
stored run never changes. ``limit`` takes a class-balanced subset (the fast 2,000-image estimate)::

    >>> from explorer.analysis.threshold import threshold_accuracy, sweep
    >>> threshold_accuracy("sle-695ad4593697", 0.2, "global", "fourier")       # doctest: +SKIP
    {'run': 'sle-695ad4593697', 'keep': 0.2, 'mode': 'global', 'domain': 'fourier',
     'accuracy_before': 0.7849, 'accuracy_after': ..., 'kept': ..., 'total': ..., 'images': 10000}
    >>> sweep("sle-695ad4593697", limit=2000)["accuracy"]["fourier"]["global"]  # doctest: +SKIP

Computation side only: no UI import.
"""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence

import numpy as np
import torch

from explorer.runs import Run, RunStore

MODES = ("global", "per_unit", "band")
DOMAINS = ("fourier", "theta")
SWEEP_NAME = "threshold_sweep"
SWEEP_FORMAT = 1  # part of the stored sweep's parameters: a new format is computed afresh
DEFAULT_FRACTIONS = tuple(round(float(f), 4) for f in np.linspace(0.05, 1.0, 20))  # 20 points in (0, 1]
EVAL_BATCH = 500


# -- checks -----------------------------------------------------------------------------------------------

def _load_run(run: Run | str, store: RunStore | None = None) -> Run:
    if isinstance(run, Run):
        return run
    return (store if store is not None else RunStore()).load(run)


def check_sle(run: Run) -> None:
    """ValueError unless the run is an SLE (spectra and thresholding read an SLE's first layer)."""
    from explorer.nets import ScatteringSLE, registry

    model = (run.config or {}).get("model")
    sle_like = model in registry.names() and issubclass(registry.get(model).constructor, ScatteringSLE)
    if not sle_like:  # the SLE and its variants (sle_fourier) have a first layer W₁ to read and swap
        raise ValueError(f"run {run.id} is a {model}, not an SLE: spectra and thresholding read an "
                         f"SLE's first layer.")


def load_sle(run: Run | str, device=None, store: RunStore | None = None):
    """(run, model) of a stored SLE run, the model rebuilt with its weights on ``device`` (default: CUDA
    when present, else the CPU), in eval mode."""
    from explorer.training.trainer import resolve_device

    run = _load_run(run, store)
    check_sle(run)
    return run, run.build_model(resolve_device(device))


def check_mode(mode: str, domain: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {domain!r}.")
    if mode == "band" and domain != "fourier":
        raise ValueError("a band limit keeps angular frequencies: it applies in the fourier domain only "
                         "(domain='fourier'); in the theta domain keep a fraction of the raw weights "
                         "(mode 'global' or 'per_unit').")


# -- the thresholded layer ----------------------------------------------------------------------------------

def _threshold(layer, keep, mode: str, domain: str, band: int = 1):
    """The FirstLayer ``layer`` thresholded (spectra's functions; they check keep and band)."""
    from . import spectra

    check_mode(mode, domain)
    if mode == "band":
        return spectra.band_limit(layer, band)
    if domain == "fourier":
        return spectra.threshold_fourier(layer, keep, per_unit=mode == "per_unit")
    return spectra.threshold_theta(layer, keep, per_unit=mode == "per_unit")


def _learned_layer(model):
    from . import spectra

    return spectra.first_layer(model, effective=False)  # always the learned W₁


def _as_weight(layer, model) -> torch.Tensor:
    w1 = model.first_layer_weight
    matrix = torch.as_tensor(np.asarray(layer.to_matrix(model.input_channels)))
    return matrix.to(dtype=w1.dtype, device=w1.device)


def thresholded_weights(model, keep: float | None, mode: str = "global", domain: str = "fourier",
                        band: int = 1) -> torch.Tensor:
    """The new W₁ (outputs, input channels) of an SLE model: its learned W₁ thresholded (``keep`` is the
    kept fraction in [0, 1]; ignored by mode "band", which keeps |ω| ≤ ``band``). The model is unchanged."""
    return _as_weight(_threshold(_learned_layer(model), keep, mode, domain, band), model)


def _counts(model_layer, keep, mode: str, band: int = 1) -> tuple[int, int]:
    """(kept, total) angular coefficients (orders 1 and 2, all units; order 0 is always kept and not
    counted) of a threshold of this layer, by spectra's own counting rule."""
    from . import spectra

    total = spectra.n_angular_coefficients(model_layer)
    if mode == "band":
        return spectra.band_coefficients(model_layer, band), total
    return spectra.kept_coefficients(model_layer, keep, per_unit=mode == "per_unit"), total


# -- evaluation on stored features ------------------------------------------------------------------------

def _device(model, device):
    if device is not None:
        from explorer.training.trainer import resolve_device

        return resolve_device(device)
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _device_data(features, labels, device):
    from explorer.training.data import DeviceData, Split

    if isinstance(features, DeviceData):
        return features
    if labels is None:
        raise ValueError("features need their labels (one integer class per sample).")
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature samples but {len(labels)} labels.")
    return DeviceData(Split(features, labels), device)


def _accuracy(model, data, batch_size: int = EVAL_BATCH) -> float:
    """The trainer's own evaluation (full float32), in inference mode."""
    from explorer.nets.extract import inference
    from explorer.training.trainer import evaluate

    with inference(model):
        return float(evaluate(model, data, batch_size)[1])


def evaluate_features(model, features, labels=None, batch_size: int = EVAL_BATCH, device=None) -> float:
    """Accuracy (a fraction) of an SLE on scattering features (N, 3, P, h, w) with their labels (N,),
    evaluated as the trainer evaluates (inference mode, full float32). ``features`` may also be a
    `DeviceData` (labels included). The model is moved to ``device`` when one is given."""
    device = _device(model, device)
    model.to(device)
    return _accuracy(model, _device_data(features, labels, device), batch_size)


def evaluation_features(run: Run | str, limit: int | None = None):
    """The run's test split as scattering features (a `Split` of features (N, 3, P, h, w), labels (N,)):
    CIFAR-10's stored features (read, never computed here) or the synthetic set's (computed in memory);
    the run's own ``limit_test``, then ``limit`` samples balanced over the classes."""
    from explorer.config import DATA_ENV, data_dir
    from explorer.training.data import Split, select

    run = _load_run(run)
    check_sle(run)
    config = run.config
    J, L = config["model_config"]["J"], config["model_config"]["L"]
    if config["dataset"] == "cifar10":
        from explorer.data import DatasetNotFoundError, load_cifar10
        from explorer.features import FeatureConfig, FeaturesNotFoundError, load_features

        feature_config = FeatureConfig("cifar10", "test", J=J, L=L)
        try:
            features, _ = load_features(feature_config)
        except FeaturesNotFoundError:
            needs = (f"; it needs CIFAR-10, and {DATA_ENV} is not configured" if data_dir() is None
                     else "")
            raise FeaturesNotFoundError(
                f"re-evaluating run {run.id} reads the stored CIFAR-10 test scattering features "
                f"({feature_config.key}), and there are none: compute them once with `explorer scatter "
                f"--split test --J {J} --L {L}`{needs}.") from None
        try:
            labels = load_cifar10("test").labels
        except DatasetNotFoundError as exc:
            raise DatasetNotFoundError(f"re-evaluating run {run.id} needs the CIFAR-10 test labels: "
                                       f"{exc}") from None
        split = Split(features, labels)
    else:
        split = _computed_test_features(config["dataset"], J, L)
    split = select(split, None, config.get("limit_test"))
    if limit is not None:
        split = select(split, None, _check_limit(limit, len(split.y)))
    return split


def sample_features(run: Run | str, limit: int | None = None, prefer_full: bool = False):
    """(Split of scattering features (N, 3, P, h, w) and labels, source text) of CIFAR-10 test *images*
    scattered on the fly with the run's own (J, L): the 300 shipped test images (`explorer.data.samples`),
    or with ``prefer_full`` the configured test split; ``limit`` images balanced over the classes. What a
    page evaluates on when the stored test features are absent (say so beside the figure: 300 images are
    an estimate, not the 10,000-image accuracy)."""
    from explorer.data.samples import test_images
    from explorer.training.data import Split

    run = _load_run(run)
    check_sle(run)
    config = run.config["model_config"]
    chosen = test_images(limit, prefer_full=prefer_full)
    key = (int(config["J"]), int(config["L"]), chosen.source, len(chosen.labels), chosen.indices.tobytes())
    return Split(_scattered(key, chosen.images), chosen.labels), chosen.source


_SCATTERED: dict = {}
_SCATTERED_LOCK = threading.Lock()  # pages call this from Panel's worker threads


def _scattered(key, images) -> np.ndarray:
    """Features of these uint8 images at (J, L), remembered for the last few image sets (read-only).
    Two threads asking for the same new set may both compute it (seconds); the cache stays consistent."""
    with _SCATTERED_LOCK:
        if key in _SCATTERED:
            return _SCATTERED[key]
    from explorer.scattering import Scattering2D

    J, L = key[0], key[1]
    scattering = Scattering2D(J, images.shape[-2:], L)
    with torch.no_grad():
        parts = [scattering(torch.from_numpy(np.ascontiguousarray(images[i:i + EVAL_BATCH])).float().div_(255))
                 for i in range(0, len(images), EVAL_BATCH)]
    features = torch.cat(parts).numpy()
    features.flags.writeable = False
    with _SCATTERED_LOCK:
        while len(_SCATTERED) >= 4:
            _SCATTERED.pop(next(iter(_SCATTERED)))
        _SCATTERED[key] = features
    return features


@functools.lru_cache(maxsize=2)
def _computed_test_features(dataset: str, J: int, L: int):
    """The test features of a small generated set (the synthetic stripes), computed in memory once per
    process (deterministic; read-only, so no caller can change the cached copy)."""
    from explorer.training.data import Split, load_scattering

    split = load_scattering(dataset, "test", J, L, device=torch.device("cpu"), progress=False)
    x, y = np.asarray(split.x), np.asarray(split.y)
    x.flags.writeable = False
    y.flags.writeable = False
    return Split(x, y)


def _check_limit(limit, available: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive number of test images, got {limit!r}.")
    if limit > available:
        raise ValueError(f"limit of {limit} test images, but the run's test split has only {available}.")
    return int(limit)


def _prepared(run: Run, features, labels, limit, device):
    """DeviceData of the evaluation set: the given features, else the run's test features."""
    from explorer.training.data import Split, select

    if features is None:
        split = evaluation_features(run, limit)
    else:
        if labels is None:
            raise ValueError("features need their labels (one integer class per sample).")
        if hasattr(features, "detach"):
            features = features.detach().cpu().numpy()
        labels = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
        split = Split(features, labels)
        if limit is not None:
            split = select(split, None, _check_limit(limit, len(labels)))
    return _device_data(split.x, split.y, device)


# -- one threshold ------------------------------------------------------------------------------------------

def threshold_accuracy(run: Run | str, keep: float | None, mode: str = "global", domain: str = "fourier",
                       band: int = 1, features=None, labels=None, limit: int | None = None,
                       device=None, store: RunStore | None = None) -> dict:
    """Test accuracy of a stored SLE run before and after thresholding W₁ (see the module's docstring).

    Returns {"run", "keep", "mode", "domain", "accuracy_before", "accuracy_after", "kept", "total",
    "images", "seconds"} (+ "band" for mode "band", whose "keep" is the kept share kept/total);
    accuracies are fractions. ``features``/``labels`` replace the run's test set; ``limit`` takes that
    many samples balanced over the classes. The stored weights are never changed."""
    run, model = load_sle(run, device, store)
    device = _device(model, device)
    check_mode(mode, domain)
    layer = _learned_layer(model)
    new_weight = _as_weight(_threshold(layer, keep, mode, domain, band), model)  # bad keep/band fail here
    kept, total = _counts(layer, keep, mode, band)
    data = _prepared(run, features, labels, limit, device)
    started = time.perf_counter()
    before = _accuracy(model, data)
    with model.replaced_first_layer(new_weight):
        after = _accuracy(model, data)
    result = {"run": run.id, "keep": float(keep) if mode != "band" else round(kept / max(total, 1), 6),
              "mode": mode, "domain": domain, "accuracy_before": before, "accuracy_after": after,
              "kept": kept, "total": total, "images": len(data), "weights": "W1",
              "seconds": round(time.perf_counter() - started, 3)}
    if mode == "band":
        result["band"] = int(band)
    return result


# -- the sweep ------------------------------------------------------------------------------------------------

def _check_fractions(fractions) -> list[float]:
    values = [float(f) for f in fractions]
    if not values or any(not (0.0 < f <= 1.0) for f in values):
        raise ValueError(f"sweep fractions must be a non-empty list of numbers in (0, 1], got {fractions!r}.")
    return values


def sweep_params(fractions: Sequence[float] | None = None, limit: int | None = None, band: int = 1) -> dict:
    """The stored sweep's parameters (its file name hashes them)."""
    fractions = DEFAULT_FRACTIONS if fractions is None else fractions
    return {"fractions": _check_fractions(fractions), "limit": limit, "band": int(band),
            "domains": list(DOMAINS), "modes": ["global", "per_unit"], "weights": "W1",
            "format": SWEEP_FORMAT}


def _compute_sweep(run: Run, params: dict, device, progress: bool) -> dict:
    from tqdm.auto import tqdm

    run, model = load_sle(run, device)
    device = _device(model, device)
    data = _prepared(run, None, None, params["limit"], device)
    fractions, domains, modes = params["fractions"], params["domains"], params["modes"]
    accuracy = np.zeros((len(domains), len(modes), len(fractions)))
    kept = np.zeros(accuracy.shape, dtype=np.int64)
    layer = _learned_layer(model)
    total = 0
    bar = tqdm(total=accuracy.size + 2, desc=f"threshold sweep {run.id}", unit="eval",
               disable=not progress)
    started = time.perf_counter()
    before = _accuracy(model, data)
    bar.update()
    for d, domain in enumerate(domains):
        for m, mode in enumerate(modes):
            for i, keep in enumerate(fractions):
                kept[d, m, i], total = _counts(layer, keep, mode)
                with model.replaced_first_layer(_as_weight(_threshold(layer, keep, mode, domain), model)):
                    accuracy[d, m, i] = _accuracy(model, data)
                bar.update()
    band_kept, _ = _counts(layer, None, "band", params["band"])
    with model.replaced_first_layer(_as_weight(_threshold(layer, None, "band", "fourier", params["band"]),
                                               model)):
        band_accuracy = _accuracy(model, data)
    bar.update()
    bar.close()
    return {"fractions": np.asarray(fractions, dtype=np.float64), "accuracy": accuracy, "kept": kept,
            "total": int(total), "accuracy_before": before, "band_accuracy": band_accuracy,
            "band_kept": int(band_kept), "images": len(data), "domains": list(domains),
            "modes": list(modes), "seconds": round(time.perf_counter() - started, 3)}


def sweep(run_id: str, fractions: Sequence[float] | None = None, store: RunStore | None = None,
          progress: bool = True, limit: int | None = None, band: int = 1, device=None) -> dict:
    """Test accuracy against the kept fraction f for both domains (fourier, theta) and both modes
    (global, per_unit), plus the band limit |ω| ≤ ``band``; stored beside the run (analysis
    "threshold_sweep"), so a second call reads it back. ``limit``: a class-balanced test subset.

    Returns {"run", "fractions", "accuracy": {domain: {mode: [accuracy per f]}}, "kept": {…},
    "total", "accuracy_before", "band", "band_accuracy", "band_kept", "images", "limit",
    "computed" (False when read from the store), "path"}."""
    store = store if store is not None else RunStore()
    run = store.load(run_id)
    check_sle(run)
    from . import spectra

    spectra.check_band(_learned_layer(run.build_model()), band)  # before any evaluation
    params = sweep_params(fractions, limit, band)
    analysis = store.analysis(run.id, SWEEP_NAME, params,
                              compute=lambda: _compute_sweep(run, params, device, progress))
    return sweep_result(run.id, analysis)


def sweep_result(run_id: str, analysis) -> dict:
    """A stored sweep (an `Analysis`) as plain lists, keyed by domain and mode."""
    values = analysis.values
    domains, modes = list(values["domains"]), list(values["modes"])
    accuracy, kept = np.asarray(values["accuracy"]), np.asarray(values["kept"])
    return {
        "run": run_id, "fractions": [float(f) for f in values["fractions"]],
        "accuracy": {d: {m: [float(a) for a in accuracy[i, j]] for j, m in enumerate(modes)}
                     for i, d in enumerate(domains)},
        "kept": {d: {m: [int(k) for k in kept[i, j]] for j, m in enumerate(modes)}
                 for i, d in enumerate(domains)},
        "total": int(values["total"]), "accuracy_before": float(values["accuracy_before"]),
        "band": int(analysis.params["band"]), "band_accuracy": float(values["band_accuracy"]),
        "band_kept": int(values["band_kept"]), "images": int(values["images"]),
        "limit": analysis.params.get("limit"), "seconds": values.get("seconds"),
        "computed": bool(analysis.computed), "path": str(analysis.path) if analysis.path else None,
    }
