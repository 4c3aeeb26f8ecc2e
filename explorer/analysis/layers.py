"""Layer-wise contraction and separation of a trained CNN13 (science.md §3, "Layer-wise analysis").

For each depth n = 2..13 (the outputs of the 12 inner non-linearities, in inference mode), the feature
Φₙ(x) is the spatial mean of the map, standardised with the training set's mean and standard deviation
(a constant channel, e.g. a dead ReLU, is only centred). Per depth:

- ``nn1_accuracy``: 1-NN test accuracy (Euclidean; the training features are the reference);
- ``svm_accuracy``: a Gaussian SVM (RBF, γ = 1/(2K), C = 1, scikit-learn) fitted on a class-balanced
  training subset (default 10,000 images: `balanced_subset_indices`, seed 1) or on all of them;
- ``intra_class``: per class, the mean Euclidean distance between two distinct training points of the
  class, Σ_{i≠j} ‖xᵢ − xⱼ‖ / (n(n − 1)). The authors' code sums over ordered pairs and divides by n²:
  this figure × (n − 1)/n; the talk's formula divides the unordered sum by n²: half of that;
- ``pca``: per class, the eigenvalues of the class covariance, largest first (cumulate them to draw the
  paper's curves; the paper shows class "ship");
- ``lsv_talk`` / ``lsv_authors``: |Γᵏ| for k = 1..31 under both rules of `explorer.analysis.lsv`.

One exact search per depth (`explorer.analysis.neighbours`: the 32 nearest training points of every
training and every test point) serves every k and the 1-NN. Two analyses are stored beside the run: ``layers`` (all but the SVM, the fast part) and
``layers_svm`` (keyed by its subset), so that a second call reads them back.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from explorer.config import default_device
from explorer.runs import Run, RunStore

from . import lsv
from .neighbours import nearest_neighbours, without_self

LAYERS_NAME, SVM_NAME = "layers", "layers_svm"
LAYERS_FORMAT = 1
NEIGHBOURS = lsv.K_MAX + 1  # each training point with itself
DEFAULT_SVM_SUBSET = 10_000
SVM_SEED = 1
# Images per forward pass: on a CPU 128 beats 500 by 2.4× (the maps of a small batch stay in cache).
FEATURE_BATCH = {"cpu": 128, "cuda": 1024}

Report = Callable[[str, float], None]  # (what is being done, fraction done of the whole job)


# -- the run ------------------------------------------------------------------------------------------------

def load_cnn13(run_id: str, store: RunStore | None = None) -> Run:
    """The stored CNN13 run ``run_id`` (or a unique prefix), checked: a cnn13 with weights."""
    store = store if store is not None else RunStore()
    return store.load_trained(run_id, "cnn13", "CNN13", "the layer-wise analysis")


# -- features -----------------------------------------------------------------------------------------------

def layer_features(model: torch.nn.Module, images: np.ndarray, device=None, batch_size: int | None = None,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """uint8 images (N, 3, H, W) → float32 (N, depths, K): the spatial mean of every inner map, in
    inference mode, all depths in one pass."""
    from explorer.nets.extract import inner_means

    device = torch.device(device) if device is not None else default_device()
    batch_size = batch_size or FEATURE_BATCH.get(device.type, 256)
    model = model.to(device)
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}.")

    def batches():
        for start in range(0, len(images), batch_size):
            yield torch.from_numpy(np.array(images[start:start + batch_size])).float().div_(255)  # a copy: read-only input is fine

    out = None
    start = 0
    for means in inner_means(model, batches(), device):
        block = torch.stack(means, dim=1).float().cpu().numpy()  # (B, depths, K)
        if out is None:
            out = np.empty((len(images), *block.shape[1:]), dtype=np.float32)
        out[start:start + len(block)] = block
        start += len(block)
        if progress is not None:
            progress(len(block))
    return out


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both standardised per feature with the training set's mean and standard deviation (a constant
    feature is only centred). Works on (N, K) or (N, depths, K)."""
    mean = train.mean(0, dtype=np.float64)
    std = train.std(0, dtype=np.float64)
    std[std == 0] = 1.0
    return (((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32))


# -- per-depth measures -------------------------------------------------------------------------------------

def intra_class_distances(features: np.ndarray, labels: np.ndarray, classes: int, device=None) -> np.ndarray:
    """(classes,) per class, the mean distance between two distinct points of the class (float64).
    A class with fewer than 2 points gives NaN."""
    device = torch.device(device) if device is not None else default_device()
    out = np.full(classes, np.nan)
    for c in range(classes):
        members = torch.as_tensor(features[labels == c], dtype=torch.float64, device=device)
        n = len(members)
        if n < 2:
            continue
        total = 0.0
        for start in range(0, n, 1024):  # rows of the distance matrix, 1024 at a time
            total += torch.cdist(members[start:start + 1024], members).sum().item()
        out[c] = total / (n * (n - 1))
    return out


def class_pca(features: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, K): per class, the eigenvalues of the class covariance, largest first (float64)."""
    out = np.full((classes, features.shape[1]), np.nan)
    for c in range(classes):
        members = features[labels == c].astype(np.float64)
        if len(members) < 2:
            continue
        out[c] = np.linalg.eigvalsh(np.cov(members, rowvar=False))[::-1].clip(min=0)
    return out


def neighbour_measures(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                       device=None, progress: Callable[[int], None] | None = None) -> dict:
    """1-NN test accuracy and |Γᵏ| (k = 1..31, both rules) from one search: the 32 nearest training
    points of every training point (itself first) and of every test point."""
    k = min(NEIGHBOURS, len(train))
    queries = np.concatenate([train, test]).astype(np.result_type(train, test), copy=False)
    indices, _ = nearest_neighbours(queries, train, k, device=device, progress=progress)
    others = train_labels[without_self(indices[:len(train)])]
    nearest = indices[len(train):, 0]
    return {"nn1_accuracy": float((train_labels[nearest] == test_labels).mean()),
            "lsv_talk": lsv.lsv_counts(others, train_labels, "talk"),
            "lsv_authors": lsv.lsv_counts(others, train_labels, "authors")}


def svm_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray) -> float:
    """Test accuracy of scikit-learn's SVC (RBF, γ = 1/(2K), C = 1) fitted on ``train``."""
    from sklearn.svm import SVC

    svm = SVC(kernel="rbf", C=1.0, gamma=1.0 / (2 * train.shape[1]))
    svm.fit(train, train_labels)
    return float((svm.predict(test) == test_labels).mean())


# -- the stored analyses ------------------------------------------------------------------------------------

def layers_params() -> dict:
    return {"format": LAYERS_FORMAT, "neighbours": NEIGHBOURS, "standardise": "train"}


def svm_params(subset: int | None = DEFAULT_SVM_SUBSET) -> dict:
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer))
                               or subset < 2):
        raise ValueError(f"the SVM subset is a number of training images ≥ 2 (a multiple of the number of "
                         f"classes), or None for all of them; got {subset!r}.")
    return {"format": LAYERS_FORMAT, "subset": None if subset is None else int(subset), "seed": SVM_SEED,
            "C": 1.0, "gamma": "1/(2K)", "standardise": "train"}


class _Progress:
    """Turns per-step counts into (label, fraction of the whole job) reports and a tqdm bar."""

    def __init__(self, total: float, report: Report | None, bar: bool, description: str):
        from tqdm.auto import tqdm

        self.total, self.done, self.report, self.label = total, 0.0, report, ""
        self.bar = tqdm(total=round(total), desc=description, unit="step", disable=not bar)

    def stage(self, label: str) -> None:
        self.label = label
        self.bar.set_postfix_str(label)
        self._tell()

    def advance(self, amount: float) -> None:
        self.done += amount
        self.bar.update(amount)
        self._tell()

    def _tell(self) -> None:
        if self.report is not None:
            self.report(self.label, min(1.0, self.done / self.total))

    def close(self) -> None:
        self.bar.close()


def _dataset(run: Run):
    from explorer.training.data import load_images

    dataset = run.config["dataset"]
    train, test = load_images(dataset, "train"), load_images(dataset, "test")
    return train, test


def _features(run: Run, data, device, steps: _Progress | None):
    train, test = data
    model = run.build_model(device)
    if steps is not None:
        steps.stage("features")
    tick = steps.advance if steps is not None else None
    train_x = layer_features(model, train.x, device, progress=tick)
    test_x = layer_features(model, test.x, device, progress=tick)
    train_x, test_x = standardise(train_x, test_x)
    return train_x, np.asarray(train.y), test_x, np.asarray(test.y)


def _compute_layers(run: Run, features, device, steps: _Progress) -> dict:
    train_x, train_y, test_x, test_y = features
    classes = int(max(train_y.max(), test_y.max())) + 1
    depths = train_x.shape[1]
    started = time.perf_counter()
    nn1, talk, authors, intra, pca = [], [], [], [], []
    for d in range(depths):
        steps.stage(f"depth {d + 2}: neighbours")
        measures = neighbour_measures(train_x[:, d], train_y, test_x[:, d], test_y, device,
                                      lambda queries: steps.advance(queries / 10))
        nn1.append(measures["nn1_accuracy"])
        talk.append(measures["lsv_talk"])
        authors.append(measures["lsv_authors"])
        steps.stage(f"depth {d + 2}: distances and PCA")
        intra.append(intra_class_distances(train_x[:, d], train_y, classes, device))
        pca.append(class_pca(train_x[:, d], train_y, classes))
        steps.advance(len(train_y) / 100)
    return {"depths": np.arange(2, 2 + depths), "nn1_accuracy": np.asarray(nn1),
            "lsv_talk": np.stack(talk), "lsv_authors": np.stack(authors), "intra_class": np.stack(intra),
            "pca": np.stack(pca), "train_images": len(train_y), "test_images": len(test_y),
            "seconds": round(time.perf_counter() - started, 3)}


def _compute_svm(features, subset: int | None, steps: _Progress) -> dict:
    from explorer.data.subsets import balanced_subset_indices

    train_x, train_y, test_x, test_y = features
    chosen = (np.arange(len(train_y)) if subset is None or subset >= len(train_y)
              else balanced_subset_indices(train_y, subset, SVM_SEED))
    started = time.perf_counter()
    accuracy = []
    for d in range(train_x.shape[1]):
        steps.stage(f"depth {d + 2}: SVM on {len(chosen)} images")
        accuracy.append(svm_accuracy(train_x[chosen, d], train_y[chosen], test_x[:, d], test_y))
        steps.advance(_svm_cost(len(chosen)))
    return {"depths": np.arange(2, 2 + train_x.shape[1]), "svm_accuracy": np.asarray(accuracy),
            "train_images": len(chosen), "test_images": len(test_y),
            "seconds": round(time.perf_counter() - started, 3)}


def analyse_layers(run_id: str, svm: bool = True, svm_subset: int | None = DEFAULT_SVM_SUBSET,
                   store: RunStore | None = None, device=None, progress: bool = True,
                   report: Report | None = None) -> dict:
    """The layer-wise analysis of a CNN13 run, read from the store or computed and stored there (the
    features are computed once for both parts). ``svm=False`` leaves the SVM out; ``svm_subset=None``
    fits it on every training image (slow on a CPU). ``report(label, fraction)`` is told the progress.

    Returns `layers_result`'s dict."""
    store = store if store is not None else RunStore()
    run = load_cnn13(run_id, store)
    device = torch.device(device) if device is not None else default_device()
    layers_p, svm_p = layers_params(), svm_params(svm_subset)
    wanted = [(LAYERS_NAME, layers_p)] + ([(SVM_NAME, svm_p)] if svm else [])
    missing = [name for name, params in wanted if _stored(store, run.id, name, params) is None]
    features: list = []
    steps = data = None
    if missing:
        data = _dataset(run)  # a missing dataset says so before any bar is drawn
        train_count, test_count = len(data[0].y), len(data[1].y)
        if SVM_NAME in missing:
            _check_subset(svm_subset, data[0].y)
        steps = _Progress(_job_size(train_count, test_count, missing, svm_subset), report, progress,
                          f"layer-wise analysis {run.id}")

    def computed_features():
        if not features:
            features.append(_features(run, data, device, steps))
        return features[0]

    try:
        layers = store.analysis(run.id, LAYERS_NAME, layers_p,
                                compute=lambda: _compute_layers(run, computed_features(), device, steps))
        svm_result = (store.analysis(run.id, SVM_NAME, svm_p,
                                     compute=lambda: _compute_svm(computed_features(), svm_subset, steps))
                      if svm else None)
    finally:
        if steps is not None:
            steps.close()
    return layers_result(run, layers, svm_result)


# Progress is counted in units of about one image's features (~1 ms on a 2-core CPU), so that the bar
# moves evenly: one depth's neighbour searches cost about train/10 of them, its distances and PCA
# train/100, its SVM (subset/10,000)² × 15,000 (libsvm grows about as the square).
def _search_cost(train: int, test: int) -> float:
    return (train + test) / 10


def _svm_cost(subset: int) -> float:
    return 15_000 * (subset / 10_000) ** 2


def _job_size(train: int, test: int, missing: list[str], subset: int | None) -> float:
    per_depth = (_search_cost(train, test) + train / 100 if LAYERS_NAME in missing else 0)
    if SVM_NAME in missing:
        per_depth += _svm_cost(train if subset is None else min(subset, train))
    return train + test + 12 * per_depth


def _check_subset(subset: int | None, labels: np.ndarray) -> None:
    classes = int(labels.max()) + 1
    if subset is not None and subset < len(labels) and subset % classes:
        raise ValueError(f"the SVM subset takes as many images of each class: give a multiple of "
                         f"{classes}, got {subset}.")


def _stored(store: RunStore, run_id: str, name: str, params: dict):
    from explorer.runs import RunNotFoundError

    try:
        return store.analysis(run_id, name, params)
    except (RunNotFoundError, OSError, ValueError):
        return None


def stored_layers(run_id: str, store: RunStore | None = None, svm_subset: int | None = DEFAULT_SVM_SUBSET) -> dict | None:
    """The stored analysis as `layers_result` gives it, or None when the run has none for its current
    weights (the SVM part may be missing: its entries are then None). Never computes."""
    store = store if store is not None else RunStore()
    run = load_cnn13(run_id, store)
    layers = _stored(store, run.id, LAYERS_NAME, layers_params())
    if layers is None:
        return None
    return layers_result(run, layers, _stored(store, run.id, SVM_NAME, svm_params(svm_subset)))


def layers_result(run: Run, layers, svm=None) -> dict:
    """Stored analyses → {"run", "model_config", "test_accuracy" (the network's own, last epoch),
    "depths", "nn1_accuracy", "svm_accuracy" (None without the SVM part), "svm_subset",
    "intra_class" (depths × classes), "pca" (depths × classes × K), "lsv": {"talk", "authors"}
    (depths × 31), "train_images", "test_images", "classes", "seconds", "computed", "path"} as numpy
    arrays and plain values."""
    values = layers.values
    metrics = run.metrics
    classes = _class_names(run, np.asarray(values["intra_class"]).shape[1])
    return {
        "run": run.id, "model_config": dict(run.config.get("model_config", {})),
        "test_accuracy": float(metrics[-1]["test_acc"]) if metrics else None,
        "depths": np.asarray(values["depths"]), "nn1_accuracy": np.asarray(values["nn1_accuracy"]),
        "svm_accuracy": None if svm is None else np.asarray(svm.values["svm_accuracy"]),
        "svm_subset": None if svm is None else svm.params["subset"],
        "svm_train_images": None if svm is None else int(svm.values["train_images"]),
        "intra_class": np.asarray(values["intra_class"]), "pca": np.asarray(values["pca"]),
        "lsv": {"talk": np.asarray(values["lsv_talk"]), "authors": np.asarray(values["lsv_authors"])},
        "train_images": int(values["train_images"]), "test_images": int(values["test_images"]),
        "classes": classes, "seconds": float(values["seconds"]),
        "computed": bool(layers.computed or (svm is not None and svm.computed)),
        "path": str(layers.path) if layers.path else None,
    }


def _class_names(run: Run, count: int) -> list[str]:
    if run.config.get("dataset") == "cifar10" and count == 10:
        from explorer.data.samples import shipped_test_images

        return list(shipped_test_images().classes)
    return [f"class {c}" for c in range(count)]


def summary_json(result: dict, rule: str = lsv.DEFAULT_RULE) -> dict:
    """The ``explorer analyse layers --json`` object (schema in `explorer.analyse_cli`)."""
    lsv.check_rule(rule)
    svm = result["svm_accuracy"]
    return {
        "run": result["run"], "rule": rule, "svm_subset": result["svm_subset"],
        "test_accuracy": result["test_accuracy"], "classes": result["classes"],
        "train_images": result["train_images"], "test_images": result["test_images"],
        "depths": [{"depth": int(depth), "nn1_accuracy": float(result["nn1_accuracy"][i]),
                    "svm_accuracy": None if svm is None else float(svm[i]),
                    "intra_class": [float(v) for v in result["intra_class"][i]],
                    "pca": [[float(v) for v in row] for row in result["pca"][i]],
                    "lsv": [int(v) for v in result["lsv"][rule][i]]}
                   for i, depth in enumerate(result["depths"])],
    }
