"""The two methods' fits and decisions, as plain arrays that a result stores without pickle.

- Exact: scikit-learn's ``OneVsRestClassifier(SVC(kernel="precomputed", C))`` (one-vs-all, as the
  paper) on a Gram matrix. Its binary SVMs are kept as one matrix of dual coefficients over the union
  of their support vectors (zero where a vector supports another class only), so that the decision of
  every class is ``K(x, support) @ dual_coef.T + intercept`` and the prediction its argmax, as
  ``OneVsRestClassifier.predict`` does.
- Nyström: scikit-learn's ``Nystroem`` (same Gaussian kernel, γ = 1/(2σ²)) fitted on its landmarks,
  its feature map ``K(x, landmarks) @ normalization.T``, then a linear SVM (`fit_linear`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.classify import kernel as kern


@dataclass
class ExactModel:
    """One-vs-all kernel SVM: decision_c(x) = Σ_i dual_coef[c, i] K(x, support_i) + intercept[c].
    ``support`` are positions in the rows the SVM was fitted on; ``support_per_class`` how many
    support vectors each binary SVM has. Two classes: one binary SVM (one row), positive = class 1."""
    classes: np.ndarray
    support: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    support_per_class: np.ndarray


def fit_exact(gram: np.ndarray, labels: np.ndarray, C: float) -> ExactModel:
    """scikit-learn's one-vs-all SVC on the precomputed Gram matrix of the training rows."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    labels = np.asarray(labels)
    ovr = OneVsRestClassifier(SVC(kernel="precomputed", C=C)).fit(gram, labels)
    binary = ovr.estimators_
    for estimator in binary:
        if not isinstance(estimator, SVC):  # a class with no training sample (or all of them)
            raise ValueError(  # noqa: TRY004 (bad training labels, not a bad type)"every class needs training samples and so does its complement, "
                             "for a one-vs-all SVM; use a class-balanced training set.")
    support = np.unique(np.concatenate([e.support_ for e in binary]))
    dual = np.zeros((len(binary), len(support)), dtype=np.float64)
    for c, estimator in enumerate(binary):
        # dual_coef_ and intercept_ of a binary SVC give decision_function = K @ dual.T + b.
        dual[c, np.searchsorted(support, estimator.support_)] = estimator.dual_coef_[0]
    return ExactModel(classes=np.asarray(ovr.classes_), support=support.astype(np.int64),
                      dual_coef=dual,
                      intercept=np.array([e.intercept_[0] for e in binary], dtype=np.float64),
                      support_per_class=np.array([len(e.support_) for e in binary], dtype=np.int64))


def exact_decision(kernel_rows: torch.Tensor | np.ndarray, dual_coef: np.ndarray,
                   intercept: np.ndarray) -> np.ndarray:
    """Decision values (n, classes) from the kernel (n, support) to the union of support vectors."""
    k = torch.as_tensor(kernel_rows, dtype=torch.float64)
    dual = torch.from_numpy(np.asarray(dual_coef, dtype=np.float64)).to(k.device)
    bias = torch.from_numpy(np.asarray(intercept, dtype=np.float64)).to(k.device)
    return (k @ dual.T + bias).cpu().numpy()


def labels_from_decision(decision: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One-vs-all prediction: the class of the largest decision (first on a tie, as numpy's argmax
    and scikit-learn); with two classes, one column whose sign picks class 1 or class 0."""
    classes = np.asarray(classes)
    if decision.shape[1] == 1:
        return classes[(decision[:, 0] > 0).astype(np.int64)]
    return classes[np.argmax(decision, axis=1)]


@dataclass
class NystroemMap:
    """Nyström feature map x ↦ K(x, landmarks) @ normalization.T. ``landmarks`` are positions in the
    rows it was fitted on, in the order of ``normalization``'s columns."""
    landmarks: np.ndarray
    normalization: np.ndarray


def landmark_candidates(n_train: int, components: int, seed: int) -> np.ndarray:
    """The training rows scikit-learn's ``Nystroem(random_state=seed)`` would take as landmarks from
    all ``n_train`` rows (the first ``components`` of its permutation): gathering only these lets the
    fit see ``components`` rows instead of the whole (memory-mapped, multi-GB) training set."""
    return np.random.RandomState(seed).permutation(n_train)[:components].astype(np.int64)


def fit_nystroem(candidates: np.ndarray, rows: torch.Tensor, sigma: float, seed: int) -> NystroemMap:
    """scikit-learn's Nystroem on the landmark ``rows`` (standardised, float32, of the training rows
    ``candidates``), computed in float64 with γ = 1/(2σ²). The map's landmarks are ``candidates`` in
    the order of its components (Nystroem permutes the rows it is given)."""
    from sklearn.kernel_approximation import Nystroem

    nystroem = Nystroem(kernel="rbf", gamma=1.0 / (2.0 * sigma * sigma), n_components=len(candidates),
                        random_state=seed)
    nystroem.fit(rows.double().cpu().numpy())
    order = np.asarray(nystroem.component_indices_, dtype=np.int64)
    return NystroemMap(landmarks=np.asarray(candidates, dtype=np.int64)[order],
                       normalization=np.asarray(nystroem.normalization_, dtype=np.float64))


def nystroem_features(x: torch.Tensor, landmarks: torch.Tensor, landmark_norms: torch.Tensor,
                      normalization: torch.Tensor, sigma: float) -> np.ndarray:
    """The Nyström features (float64) of a standardised block ``x``: the Gaussian kernel to the
    landmark rows (in the map's order) times normalization.T."""
    return (kern.kernel_to(x, landmarks, landmark_norms, sigma) @ normalization.T).cpu().numpy()


def fit_linear(features: np.ndarray, labels: np.ndarray, C: float):
    """The linear SVM on Nyström features: scikit-learn's ``LinearSVC`` with the same C, one-vs-all,
    solved in the primal (``dual=False``, liblinear's trust-region Newton method), which needs the
    squared hinge loss.

    Why not the kernel SVM's own hinge loss: liblinear solves it only in the dual, by coordinate
    descent, which at C = 50 crawls. Measured here on CIFAR-10 translation-scattering features
    (J = 2, 5,000 images, 512 landmarks): the hinge dual had not converged after 5,000 passes
    (238 s), the squared-hinge primal converged in 23 s (20,000 images × 1,024 landmarks: 208 s on
    a loaded 2-core machine). The primal is also deterministic (the dual shuffles) and is what
    scikit-learn recommends when there are more samples than features (50,000 against 2,048).
    The price is a different loss: the gap measured on the subset (`pipeline`) is that of the whole
    method, Nyström kernel and squared hinge together, against the exact hinge-loss kernel SVM.
    A fit stopped at ``max_iter`` is reported (``converged`` False), not hidden.
    Returns (coef (classes or 1, m), intercept, classes, converged)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    linear = LinearSVC(loss="squared_hinge", dual=False, C=C, tol=1e-4, max_iter=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        linear.fit(features, labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return (np.asarray(linear.coef_, dtype=np.float64), np.asarray(linear.intercept_, dtype=np.float64),
            np.asarray(linear.classes_), converged)


def linear_decision(features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Decision values (n, classes or 1) of the linear SVM."""
    return features @ coef.T + intercept
