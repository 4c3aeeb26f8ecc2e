"""What a classification is: the representation, the method and their parameters (`ClassifySettings`),
and the configuration stored with its result (`result_config`), whose hash names the result."""
from __future__ import annotations

from dataclasses import dataclass

REPRESENTATIONS = ("roto", "translation")  # roto-translation scattering, translation scattering
METHODS = ("exact", "nystroem")
PRODUCER = {"roto": "roto", "translation": "scattering"}  # the feature store's producer of each
COLOUR = "yuv"  # the paper's colour space: Y, U and V scattered separately
LOG_EPSILON = 1e-6  # log(|S| + 1e-6), as the paper
DEFAULT_C = 50.0
SIGMA_RULE = "mean norm of the standardised training vectors"
KERNEL = "exp(-|x - y|^2 / (2 sigma^2))"
STANDARDISATION = "per feature: training mean and standard deviation (population); constant features set to 0"
CONFIG_FORMAT = 1
# The linear SVM on Nyström features (explorer.classify.svm.fit_linear says why this one).
LINEAR_SVM = "LinearSVC(loss='squared_hinge', dual=False, C=C, tol=1e-4, max_iter=1000), one-vs-rest"
# What the paper's pipeline reached on CIFAR-10 (roto-translation scattering at 64×64 with J = 4,
# features selected by orthogonal least squares, Gaussian SVM on all 50,000 images): recalled from
# the paper's text, not checked against it (science.md §2, tagged [mem]).
PAPER_REFERENCE = {"accuracy": 0.823, "verified": False,
                   "source": "Oyallon & Mallat, CVPR 2015: roto-translation scattering + Gaussian SVM "
                             "on CIFAR-10, about 82 % (reported, unverified)"}


@dataclass(frozen=True)
class ClassifySettings:
    """One classification. ``representation`` is ``"roto"`` or ``"translation"`` (the scattering
    of Scattering2D at the same J, order 2), ``method`` ``"exact"`` (the kernel SVM on
    ``subset_per_class`` training images of every class) or ``"nystroem"`` (``components``
    Nyström features and a linear SVM on the whole training split, its gap to the exact SVM
    measured on that same subset). ``seed`` draws the subset and the Nyström landmarks.
    ``wavelets_per_octave`` and ``angular_scales`` are the roto-translation scattering's only.
    ``test_limit``: evaluate on that many test images, class-balanced (None: the whole split)."""
    representation: str = "roto"
    method: str = "exact"
    J: int = 3
    image_size: int = 32
    L: int = 8
    wavelets_per_octave: int = 1
    angular_scales: int = 2
    subset_per_class: int = 1000
    components: int = 2048
    seed: int = 0
    C: float = DEFAULT_C
    test_limit: int | None = None
    dataset: str = "cifar10"
    dtype: str = "float32"

    def __post_init__(self):
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {self.representation!r}; use "
                             f"{' or '.join(REPRESENTATIONS)} (--scattering).")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use {' or '.join(METHODS)} (--methods).")
        for name in ("J", "image_size", "L", "subset_per_class", "components"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if self.test_limit is not None:
            _check_int("test_limit", self.test_limit, minimum=1)
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"C must be a positive number (the paper's is 50), got {self.C!r}.")
        object.__setattr__(self, "C", float(self.C))
        if self.representation == "translation" and (self.wavelets_per_octave,
                                                     self.angular_scales) != (1, 2):
            raise ValueError("wavelets per octave and angular scales are parameters of the "
                             "roto-translation scattering; leave them out for the translation one.")
        self.feature_config("train")  # J, L, image size, Q and K checked where the features are

    def feature_config(self, split: str):
        """The feature store's configuration of this representation's features of ``split``."""
        from explorer.features import FeatureConfig

        roto = {"wavelets_per_octave": self.wavelets_per_octave,
                "angular_scales": self.angular_scales} if self.representation == "roto" else {}
        return FeatureConfig(dataset=self.dataset, split=split, J=self.J, L=self.L, max_order=2,
                             dtype=self.dtype, producer=PRODUCER[self.representation],
                             image_size=self.image_size, colour=COLOUR, **roto)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")


def result_config(settings: ClassifySettings, *, train_key: str, test_key: str, train_split_size: int,
                  train_size: int, test_size: int, classes: int) -> dict:
    """The configuration stored in a result's config.json (its sha256 names the result): everything
    that makes the result what it is, the sizes actually used included. For ``exact``, the training
    set is the subset (``train_size`` = classes × ``subset_per_class``); for ``nystroem`` it is the
    whole split, and ``subset_per_class`` / ``subset_seed`` name the subset of its gap."""
    s = settings
    roto = s.representation == "roto"
    nystroem = s.method == "nystroem"
    return {
        "format": CONFIG_FORMAT,
        "representation": s.representation, "method": s.method, "dataset": s.dataset,
        "J": s.J, "L": s.L, "Q": s.wavelets_per_octave if roto else None,
        "K": s.angular_scales if roto else None, "max_order": 2,
        "image_size": s.image_size, "colour": COLOUR, "dtype": s.dtype,
        "feature_keys": {"train": train_key, "test": test_key},
        "classes": classes,
        "train_split_size": train_split_size, "train_size": train_size,
        "subset_per_class": s.subset_per_class, "subset_seed": s.seed,
        "test_size": test_size, "test_limit": s.test_limit,
        "components": s.components if nystroem else None,
        "nystroem_seed": s.seed if nystroem else None,
        "linear_svm": LINEAR_SVM if nystroem else None,
        "C": s.C, "kernel": KERNEL, "sigma_rule": SIGMA_RULE, "log_epsilon": LOG_EPSILON,
        "standardisation": STANDARDISATION, "one_vs_all": True,
    }
