"""`classify` (fit, evaluate and store one classification) and `predict` (reproduce a stored one).

Stages, each timed (metrics ``seconds``) and shown with a progress bar:

- exact: ``subset`` (the class-balanced training subset read from the feature store, log(|S| + ε)),
  ``statistics`` (its per-feature mean and std, then σ), ``gram`` (its Gaussian Gram matrix, in
  blocks), ``fit`` (scikit-learn's one-vs-all SVC on it), ``test`` (the kernel from every test image
  to the support vectors, the decisions and predictions);
- nystroem: ``statistics`` (over the whole training split, streamed), ``landmarks`` (the Nyström
  landmark rows), ``distances`` (a second pass: every training vector's norm, for σ, and its
  squared distances to the landmarks), ``features`` (the Nyström features, once σ is known),
  ``fit`` (the linear SVM), ``test``, then ``gap``: Nyström + the linear SVM fitted on the exact
  SVM's subset, with its standardisation and σ, and evaluated on the same test images; the gap is
  the exact SVM's test accuracy minus that one (positive: what the approximation loses). The exact
  result of that subset is read from the store, or computed and stored first.

Standardisation and σ always come from the images the classifier is fitted on (the subset for the
exact SVM and for the gap, the whole split for the Nyström run), as if nothing else existed.
The test predictions of a stored result are computed by the same code that `predict` runs, from
the stored features and the stored model, so that `predict` reproduces them exactly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from explorer.classify import kernel as kern
from explorer.classify import results as store
from explorer.classify import svm
from explorer.classify.settings import ClassifySettings, result_config


@dataclass(frozen=True)
class LabelledFeatures:
    """The features of one split with their labels: ``features`` (N, ...) as stored (a memmap),
    ``labels`` (N,), ``key`` (the feature store's key, recorded in the result's configuration),
    ``classes`` (class names, indexed by label) when known."""
    features: np.ndarray
    labels: np.ndarray
    key: str
    classes: tuple[str, ...] | None = None

    def __post_init__(self):
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D integer array, got {labels.dtype} "
                             f"{labels.shape}.")
        if labels.min() < 0:
            raise ValueError("labels must be ≥ 0.")
        if len(self.features) != len(labels):
            raise ValueError(f"the features of {self.key} have {len(self.features)} rows but there are "
                             f"{len(labels)} labels; recompute them with `explorer scatter ... "
                             f"--overwrite`.")
        object.__setattr__(self, "labels", labels.astype(np.int64))


@dataclass(frozen=True)
class Prediction:
    """What `predict` found: the predicted labels of the stored test images (``test_indices``
    into the test split), their ``labels``, the ``accuracy``, the stored one, and whether every
    prediction equals the stored one (``matches_stored``)."""
    predictions: np.ndarray
    labels: np.ndarray
    test_indices: np.ndarray
    accuracy: float
    stored_accuracy: float
    matches_stored: bool


def load_split(settings: ClassifySettings, split: str, *, data=None, compute: bool = False,
               device=None, progress: bool = True, batch_size: int = 512) -> LabelledFeatures:
    """The stored features of ``split`` for ``settings`` with the dataset's labels. Missing features
    raise FeaturesNotFoundError naming the `explorer scatter` command that computes them, or are
    computed (and stored) first when ``compute``."""
    from explorer.data import load_cifar10
    from explorer.features import compute_features, load_features

    config = settings.feature_config(split)
    if compute:
        features, _ = compute_features(config, data=data, device=device, batch_size=batch_size,
                                       progress=progress)
    else:
        features, _ = load_features(config)
    dataset = load_cifar10(split, data)
    return LabelledFeatures(features, dataset.labels, config.key, tuple(dataset.classes))


def check_inputs(settings: ClassifySettings, train: LabelledFeatures, test: LabelledFeatures) -> None:
    """Refuse what cannot be run, before any heavy work, naming the problem and the fix."""
    n_train = len(train.labels)
    classes = int(train.labels.max()) + 1
    if classes < 2:
        raise ValueError("classification needs at least two classes in the training labels.")
    counts = np.bincount(train.labels, minlength=classes)
    if settings.subset_per_class > counts.min():
        poorest = int(np.argmin(counts))
        name = f" ({train.classes[poorest]})" if train.classes and poorest < len(train.classes) else ""
        raise ValueError(
            f"a subset of {settings.subset_per_class} images per class (--subset-per-class) is larger "
            f"than the training split allows: class {poorest}{name} has only {counts.min()} of its "
            f"{n_train} images; use --subset-per-class {counts.min()} or less.")
    subset = settings.subset_per_class * classes
    if settings.method == "nystroem":
        if settings.components > n_train:
            raise ValueError(
                f"{settings.components} Nyström components (--components) are more than the "
                f"{n_train} training images its landmarks are drawn from; use --components "
                f"{n_train} or less.")
        if settings.components > subset:
            raise ValueError(
                f"{settings.components} Nyström components (--components) are more than the {subset} "
                f"images of the subset on which the gap to the exact SVM is measured ({classes} "
                f"classes × {settings.subset_per_class}); use --components {subset} or less, or a "
                f"larger --subset-per-class.")
    if settings.test_limit is not None and settings.test_limit > len(test.labels):
        raise ValueError(f"--test-limit {settings.test_limit} is more than the {len(test.labels)} "
                         f"images of the test split; use {len(test.labels)} or less (or leave it out).")
    if train.features.shape[1:] != test.features.shape[1:]:
        raise ValueError(f"training features {train.features.shape[1:]} and test features "
                         f"{test.features.shape[1:]} differ in shape: they were not computed alike.")


def subset_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """The class-balanced training subset: ``per_class`` images of every class, chosen within each
    class by ``np.random.RandomState(seed).permutation`` (`explorer.data.balanced_subset_indices`,
    the authors' rule of P3), sorted in dataset order."""
    from explorer.data import balanced_subset_indices

    classes = int(np.asarray(labels).max()) + 1
    return balanced_subset_indices(labels, per_class * classes, seed)


def evaluation_indices(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """All test images, or ``limit`` of them spread evenly over the classes (deterministic)."""
    if limit is None:
        return np.arange(len(labels), dtype=np.int64)
    from explorer.data.subsets import balanced_limit_indices

    return balanced_limit_indices(labels, limit)


class _Stages:
    """Times the stages of one classification; says each one's end when ``progress``."""

    def __init__(self, label: str, progress: bool):
        self.label, self.progress, self.seconds = label, progress, {}

    @contextlib.contextmanager
    def __call__(self, name: str, what: str = ""):
        started = time.perf_counter()
        bar = None
        if self.progress and what:  # a stage without a bar of its own still says what runs
            bar = tqdm(total=1, desc=f"{self.label}: {what}", leave=False, bar_format="{desc} {elapsed}")
        try:
            yield
        finally:
            if bar is not None:
                bar.close()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        if self.progress:
            tqdm.write(f"{self.label}: {name} done in {self.seconds[name]:.1f} s")

    def desc(self, what: str) -> str:
        return f"{self.label}: {what}"


def classify(settings: ClassifySettings, *, train: LabelledFeatures | None = None,
             test: LabelledFeatures | None = None, data=None, device=None,
             compute_features: bool = False, overwrite: bool = False, progress: bool = True,
             batch_size: int = 512) -> store.ClassifyResult:
    """Fit, evaluate and store one classification; a stored result of the same configuration is
    returned as it is unless ``overwrite``. ``train``/``test`` give the features directly (tests,
    small runs); by default they are read from the feature store (computed first when
    ``compute_features``; else a missing one raises with the `explorer scatter` command)."""
    if train is None:
        train = load_split(settings, "train", data=data, compute=compute_features, device=device,
                           progress=progress, batch_size=batch_size)
    if test is None:
        test = load_split(settings, "test", data=data, compute=compute_features, device=device,
                          progress=progress, batch_size=batch_size)
    check_inputs(settings, train, test)
    classes = int(train.labels.max()) + 1
    train_size = (settings.subset_per_class * classes if settings.method == "exact"
                  else len(train.labels))
    tests = evaluation_indices(test.labels, settings.test_limit)
    config = result_config(settings, train_key=train.key, test_key=test.key,
                           train_split_size=len(train.labels), train_size=train_size,
                           test_size=len(tests), classes=classes)
    if not overwrite and (stored := store.find_result(config)) is not None:
        if progress:
            tqdm.write(f"{stored.id}: stored result reused (--overwrite recomputes it)")
        return stored
    from explorer.config import default_device
    from explorer.runs.provenance import now, session

    device = torch.device(device) if device is not None else default_device()
    provenance = session(device)
    provenance.pop("amp", None)
    provenance["packages"]["scikit-learn"] = _sklearn_version()
    started = time.perf_counter()
    stages = _Stages(f"{settings.representation} {settings.method}", progress)
    if settings.method == "exact":
        metrics, model = _exact(settings, train, test, tests, device, stages, progress)
    else:
        exact = classify(dataclasses.replace(settings, method="exact"), train=train, test=test,
                         device=device, overwrite=False, progress=progress)
        metrics, model = _nystroem(settings, train, test, tests, device, stages, progress, exact)
    metrics["seconds"] = {name: round(value, 3) for name, value in stages.seconds.items()}
    metrics["class_names"] = list(train.classes) if train.classes else None
    metrics["feature_count"] = kern.feature_count(train.features)
    provenance.update(finished_at=now(), finished_unix=time.time(),
                      seconds=round(time.perf_counter() - started, 3),
                      features={"train": {"key": train.key, "shape": list(train.features.shape)},
                                "test": {"key": test.key, "shape": list(test.features.shape)}})
    return store.write_result(config, metrics, provenance, model, overwrite=overwrite)


def _sklearn_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None


def _exact(settings, train, test, tests, device, stages, progress):
    subset = subset_indices(train.labels, settings.subset_per_class, settings.seed)
    n, width = len(subset), kern.feature_count(train.features)
    with stages("subset"):
        x = torch.empty((n, width), dtype=torch.float32, device=device)
        for rows, block in kern.blocks(train.features, subset, device=device,
                                       desc=stages.desc("reading the subset"), progress=progress):
            x[rows] = block
    with stages("statistics"):
        moments = kern.Moments()
        step = kern.block_rows(train.features)
        for start in range(0, n, step):
            moments.add(x[start:start + step])
        standardiser = moments.standardiser()
        for start in range(0, n, step):
            kern.standardise_(x[start:start + step], standardiser)
        sigma = kern.mean_norm(x)
    with stages("gram"):
        gram = kern.gram(x, sigma, desc=stages.desc(f"Gram matrix {n}×{n}"), progress=progress)
    del x
    labels = train.labels[subset]
    with stages("fit", f"{len(np.unique(labels))} one-vs-all SVMs on {n} images (libsvm, no progress "
                       f"inside)"):
        fitted = svm.fit_exact(gram, labels, settings.C)
    train_pred = svm.labels_from_decision(
        svm.exact_decision(gram[:, fitted.support], fitted.dual_coef, fitted.intercept), fitted.classes)
    del gram
    support = subset[fitted.support]
    model = {"support_indices": support, "dual_coef": fitted.dual_coef, "intercept": fitted.intercept,
             "subset_indices": subset, "mean": standardiser.mean, "std": standardiser.std,
             "sigma": np.array([sigma]), "classes": fitted.classes.astype(np.int64),
             "test_indices": tests}
    with stages("test"):
        predictions = _predict_exact(model, train, test, device, stages.desc("test"), progress)
    model["test_predictions"] = predictions
    metrics = _accuracies(predictions, test.labels[tests], train_pred, labels, fitted.classes)
    metrics.update(sigma=sigma, support_vectors=len(support),
                   support_vectors_per_class=fitted.support_per_class.tolist())
    return metrics, model


def _nystroem(settings, train, test, tests, device, stages, progress, exact):
    m, seed = settings.components, settings.seed
    with stages("statistics"):
        standardiser = kern.statistics(train.features, device=device,
                                       desc=stages.desc("statistics"), progress=progress)
    candidates = svm.landmark_candidates(len(train.labels), m, seed)
    with stages("landmarks"):
        rows = _rows(train, candidates, standardiser, device)
    with stages("distances"):  # norms for σ and squared distances to the landmarks, in one pass
        distances = np.empty((len(train.labels), m), dtype=np.float32)
        rows_norms = kern.squared_norms(rows)
        norm_sum = 0.0
        for where, block in kern.blocks(train.features, standardiser=standardiser, device=device,
                                        desc=stages.desc("distances to the landmarks"),
                                        progress=progress):
            norms = kern.squared_norms(block)
            norm_sum += float(norms.sqrt().sum())
            distances[where] = kern.squared_distances(block, rows, norms, rows_norms).cpu().numpy()
        sigma = norm_sum / len(train.labels)
    with stages("features", f"Nyström map of {m} landmarks"):
        mapping = svm.fit_nystroem(candidates, rows, sigma, seed)
        order = _positions(candidates, mapping.landmarks)
        features = _nystroem_from_distances(distances, order, mapping.normalization, sigma)
    del distances, rows
    with stages("fit", f"linear SVM on {features.shape[0]} × {m} Nyström features"):
        coef, intercept, classes, converged = svm.fit_linear(features, train.labels, settings.C)
    train_pred = svm.labels_from_decision(svm.linear_decision(features, coef, intercept), classes)
    del features
    model = {"landmark_indices": mapping.landmarks, "normalization": mapping.normalization,
             "coef": coef, "intercept": intercept, "mean": standardiser.mean, "std": standardiser.std,
             "sigma": np.array([sigma]), "classes": classes.astype(np.int64), "test_indices": tests}
    with stages("test"):
        predictions = _predict_nystroem(model, train, test, device, stages.desc("test"), progress)
    model["test_predictions"] = predictions
    metrics = _accuracies(predictions, test.labels[tests], train_pred, train.labels, classes)
    metrics.update(sigma=sigma, converged=converged)
    with stages("gap"):
        metrics["gap"] = _gap(settings, train, test, tests, device, exact, stages, progress)
    return metrics, model


def _gap(settings, train, test, tests, device, exact, stages, progress) -> dict:
    """Nyström + linear SVM on the exact SVM's subset, with its standardisation and σ."""
    model = store.load_model(exact)
    subset = model["subset_indices"]
    standardiser = kern.Standardiser(model["mean"], model["std"])
    sigma = float(model["sigma"][0])
    x = _rows(train, subset, standardiser, device, desc=stages.desc("gap: reading the subset"),
              progress=progress)
    candidates = svm.landmark_candidates(len(subset), settings.components, settings.seed)
    mapping = svm.fit_nystroem(candidates, x[torch.from_numpy(candidates).to(device)], sigma,
                               settings.seed)
    landmarks = x[torch.from_numpy(mapping.landmarks).to(device)]
    normalization = torch.from_numpy(mapping.normalization).to(device)
    landmark_norms = kern.squared_norms(landmarks)
    features = np.concatenate([
        svm.nystroem_features(x[start:start + kern.KERNEL_BLOCK], landmarks, landmark_norms,
                              normalization, sigma)
        for start in range(0, len(subset), kern.KERNEL_BLOCK)])
    del x
    coef, intercept, classes, converged = svm.fit_linear(features, train.labels[subset], settings.C)
    predictions = np.empty(len(tests), dtype=np.int64)
    for where, block in kern.blocks(test.features, tests, standardiser=standardiser, device=device,
                                    desc=stages.desc("gap: test"), progress=progress):
        mapped = svm.nystroem_features(block, landmarks, landmark_norms, normalization, sigma)
        predictions[where] = svm.labels_from_decision(svm.linear_decision(mapped, coef, intercept),
                                                      classes)
    accuracy = float(np.mean(predictions == test.labels[tests]))
    exact_accuracy = float(exact.metrics["test_accuracy"])
    return {"subset_per_class": settings.subset_per_class, "subset_seed": settings.seed,
            "train_size": len(subset), "components": settings.components,
            "exact_result": exact.id, "exact_test_accuracy": exact_accuracy,
            "nystroem_test_accuracy": accuracy, "difference": exact_accuracy - accuracy,
            "converged": converged}


def _positions(candidates: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Where each landmark (a training index) sits among the candidates."""
    where = {int(index): position for position, index in enumerate(candidates)}
    return np.array([where[int(index)] for index in landmarks], dtype=np.int64)


def _nystroem_from_distances(distances: np.ndarray, order: np.ndarray, normalization: np.ndarray,
                             sigma: float) -> np.ndarray:
    """Nyström features exp(−d²/(2σ²)) @ normalization.T from stored squared distances."""
    transposed = torch.from_numpy(normalization.T.copy())
    out = np.empty((len(distances), len(order)), dtype=np.float64)
    index = torch.from_numpy(order)
    for start in range(0, len(distances), kern.KERNEL_BLOCK):
        block = torch.from_numpy(distances[start:start + kern.KERNEL_BLOCK]).double()[:, index]
        out[start:start + len(block)] = (kern.gaussian(block, sigma) @ transposed).numpy()
    return out


def _rows(source: LabelledFeatures, indices: np.ndarray, standardiser, device, *,
          desc: str | None = None, progress: bool = False) -> torch.Tensor:
    """The standardised rows ``indices`` of stored features, in that order (float32, device)."""
    out = torch.empty((len(indices), kern.feature_count(source.features)), dtype=torch.float32,
                      device=device)
    for where, block in kern.blocks(source.features, indices, standardiser=standardiser,
                                    device=device, desc=desc, progress=progress):
        out[where] = block
    return out


def _predict_exact(model: dict, train: LabelledFeatures, test: LabelledFeatures, device, desc,
                   progress) -> np.ndarray:
    standardiser = kern.Standardiser(model["mean"], model["std"])
    sigma = float(model["sigma"][0])
    support = _rows(train, model["support_indices"], standardiser, device)
    support_norms = kern.squared_norms(support)
    tests = model["test_indices"]
    predictions = np.empty(len(tests), dtype=np.int64)
    for where, block in kern.blocks(test.features, tests, standardiser=standardiser, device=device,
                                    desc=desc, progress=progress):
        k = kern.kernel_to(block, support, support_norms, sigma)
        decision = svm.exact_decision(k, model["dual_coef"], model["intercept"])
        predictions[where] = svm.labels_from_decision(decision, model["classes"])
    return predictions


def _predict_nystroem(model: dict, train: LabelledFeatures, test: LabelledFeatures, device, desc,
                      progress) -> np.ndarray:
    standardiser = kern.Standardiser(model["mean"], model["std"])
    sigma = float(model["sigma"][0])
    landmarks = _rows(train, model["landmark_indices"], standardiser, device)
    landmark_norms = kern.squared_norms(landmarks)
    normalization = torch.from_numpy(np.asarray(model["normalization"], dtype=np.float64)).to(device)
    tests = model["test_indices"]
    predictions = np.empty(len(tests), dtype=np.int64)
    for where, block in kern.blocks(test.features, tests, standardiser=standardiser, device=device,
                                    desc=desc, progress=progress):
        mapped = svm.nystroem_features(block, landmarks, landmark_norms, normalization, sigma)
        decision = svm.linear_decision(mapped, model["coef"], model["intercept"])
        predictions[where] = svm.labels_from_decision(decision, model["classes"])
    return predictions


def _accuracies(predictions, labels, train_predictions, train_labels, classes) -> dict:
    classes = np.asarray(classes)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    position = {int(c): i for i, c in enumerate(classes)}
    for truth, guess in zip(labels, predictions, strict=True):
        confusion[position[int(truth)], position[int(guess)]] += 1
    per_class = [float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None
                 for i in range(len(classes))]
    return {"test_accuracy": float(np.mean(predictions == labels)),
            "train_accuracy": float(np.mean(train_predictions == train_labels)),
            "per_class_accuracy": per_class, "classes": classes.tolist(),
            "confusion": confusion.tolist(), "test_size": len(labels),
            "train_size": len(train_labels)}


def predict(result: store.ClassifyResult | str, *, train: LabelledFeatures | None = None,
            test: LabelledFeatures | None = None, data=None, device=None,
            progress: bool = True) -> Prediction:
    """The stored model's predictions on its stored test images, refitting nothing: the model is
    reloaded, the rows it needs (support vectors or landmarks) and the test features are read from
    the feature store (or ``train``/``test``), and the decisions recomputed. Features whose key or
    shape differ from those the result was computed with are refused."""
    if isinstance(result, str):
        result = store.load_result(result)
    config = result.config
    model = store.load_model(result)  # first: a shipped result has none, and says so before any reading
    settings = _settings_of(config)
    if train is None:
        train = load_split(settings, "train", data=data, progress=progress)
    if test is None:
        test = load_split(settings, "test", data=data, progress=progress)
    for split, source in (("train", train), ("test", test)):
        if source.key != config["feature_keys"][split]:
            raise ValueError(f"result {result.id} was computed with the {split} features "
                             f"{config['feature_keys'][split]}, not {source.key}.")
        stored_shape = result.provenance.get("features", {}).get(split, {}).get("shape")
        if stored_shape is not None and list(source.features.shape) != stored_shape:
            raise ValueError(f"the {split} features {source.key} now have shape "
                             f"{list(source.features.shape)}, not {stored_shape} as when result "
                             f"{result.id} was computed; they were recomputed differently.")
    from explorer.config import default_device

    device = torch.device(device) if device is not None else default_device()
    run = _predict_exact if config["method"] == "exact" else _predict_nystroem
    predictions = run(model, train, test, device, f"{result.id}: test", progress)
    tests = model["test_indices"]
    labels = test.labels[tests]
    return Prediction(predictions, labels, tests, float(np.mean(predictions == labels)),
                      float(result.metrics["test_accuracy"]),
                      bool(np.array_equal(predictions, model["test_predictions"])))


def _settings_of(config: dict) -> ClassifySettings:
    roto = config["representation"] == "roto"
    return ClassifySettings(
        representation=config["representation"], method=config["method"], J=config["J"],
        image_size=config["image_size"], L=config["L"],
        wavelets_per_octave=config["Q"] if roto else 1, angular_scales=config["K"] if roto else 2,
        subset_per_class=config["subset_per_class"], seed=config["subset_seed"],
        components=config["components"] or ClassifySettings.components, C=config["C"],
        test_limit=config["test_limit"], dataset=config["dataset"], dtype=config["dtype"])
