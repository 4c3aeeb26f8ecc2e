"""Gaussian-SVM classification of scattering features (issue 16): the pipeline against independent
references (scikit-learn's RBF SVM and Nystroem, numpy's statistics), the stored model, the results
store and the bad-input messages, on a few hundred synthetic images."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from explorer.classify import kernel as kern
from explorer.classify import results as store
from explorer.classify import svm
from explorer.classify.pipeline import (
    LabelledFeatures,
    classify,
    load_split,
    predict,
    subset_indices,
)
from explorer.classify.settings import ClassifySettings
from explorer.cli import main
from explorer.features import FeatureConfig, FeaturesNotFoundError, compute_features

CLASSES = 10
# Small and quick: J = 2, L = 4 (25 paths per channel, 8×8 positions, 4,800 features per image).
SMALL = {"representation": "translation", "J": 2, "L": 4, "seed": 3}


def gratings(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy coloured gratings, one orientation per class, random period, phase and tint."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    images, labels = [], []
    for c in range(CLASSES):
        angle = np.pi * c / CLASSES
        for _ in range(per_class):
            period, phase = rng.uniform(4, 8), rng.uniform(0, 2 * np.pi)
            wave = np.cos(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)
            tint = rng.uniform(0.2, 0.6, size=(3, 1, 1))
            image = 0.5 + 0.3 * wave[None] * tint + rng.normal(0, 0.2, (3, 32, 32))
            images.append(np.clip(image * 255, 0, 255).astype(np.uint8))
            labels.append(c)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, dtype=np.int64)[order]


def labelled(settings: ClassifySettings, split: str, per_class: int, seed: int) -> LabelledFeatures:
    images, labels = gratings(per_class, seed)
    config = settings.feature_config(split)
    features, _ = compute_features(config, images, progress=False)
    return LabelledFeatures(features, labels, f"{config.key}-custom-{len(images)}")


@pytest.fixture(scope="module")
def data():
    settings = ClassifySettings(**SMALL)
    return labelled(settings, "train", 20, seed=0), labelled(settings, "test", 10, seed=1)


@pytest.fixture
def results_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    monkeypatch.setattr(store, "SHIPPED_ROOT", tmp_path / "shipped")  # the package's own stay out
    return tmp_path / "classify"


def numpy_log(features, rows) -> np.ndarray:
    """log(|S| + 1e-6) of some rows, flattened, in float64 with numpy."""
    return np.log(np.abs(np.asarray(features[rows], dtype=np.float64)) + 1e-6).reshape(len(rows), -1)


def numpy_standardised(features, rows, reference=None):
    """log(|S| + 1e-6) standardised with the statistics of ``reference`` (features, rows; default
    the same rows) in float64 with numpy: the reference of the streamed pipeline."""
    logs = numpy_log(features, rows)
    basis = logs if reference is None else numpy_log(*reference)
    mean, std = basis.mean(0), basis.std(0)
    std[std < 1e-12] = 1
    return (logs - mean) / std


def test_exact_svm_equals_scikit_learns_rbf_svm(data, results_store):
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    train, test = data
    settings = ClassifySettings(**SMALL, method="exact", subset_per_class=15)
    result = classify(settings, train=train, test=test, device="cpu", progress=False)
    model = store.load_model(result)
    subset = model["subset_indices"]
    x = numpy_standardised(train.features, subset)
    sigma = np.linalg.norm(x, axis=1).mean()
    assert result.metrics["sigma"] == pytest.approx(sigma, rel=1e-6)
    logs = numpy_log(train.features, subset)
    # the log is taken in float32 (1e-7 relative), the statistics accumulated in float64
    np.testing.assert_allclose(model["mean"], logs.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model["std"], logs.std(0), rtol=1e-6)
    reference = OneVsRestClassifier(SVC(kernel="rbf", gamma=1 / (2 * sigma**2), C=50.0))
    reference.fit(x, train.labels[subset])
    x_test = numpy_standardised(test.features, np.arange(len(test.labels)), (train.features, subset))
    np.testing.assert_array_equal(model["test_predictions"], reference.predict(x_test))
    assert result.metrics["train_accuracy"] == pytest.approx(
        np.mean(reference.predict(x) == train.labels[subset]))
    assert result.metrics["test_accuracy"] == pytest.approx(
        np.mean(reference.predict(x_test) == test.labels))
    assert 0.3 < result.metrics["test_accuracy"] < 1  # a real problem, neither trivial nor chance
    # the stored decision is scikit-learn's: dual coefficients over the support vectors, intercepts
    decision = np.stack([e.decision_function(x_test) for e in reference.estimators_], axis=1)
    support = np.stack([x[np.searchsorted(subset, i)] for i in model["support_indices"]])
    kernel = np.exp(-((x_test[:, None] - support[None]) ** 2).sum(-1) / (2 * sigma**2))
    # equal up to libsvm's stopping tolerance (1e-3): its two runs saw kernels 1e-7 apart
    np.testing.assert_allclose(svm.exact_decision(kernel, model["dual_coef"], model["intercept"]),
                               decision, atol=1e-3)
    assert result.metrics["support_vectors"] == len(model["support_indices"])
    assert set(result.metrics["seconds"]) == {"subset", "statistics", "gram", "fit", "test"}


def test_stored_model_reproduces_its_predictions_without_refitting(data, results_store, monkeypatch):
    train, test = data
    exact = classify(ClassifySettings(**SMALL, subset_per_class=12), train=train, test=test,
                     device="cpu", progress=False)
    nystroem = classify(ClassifySettings(**SMALL, method="nystroem", subset_per_class=12,
                                         components=60), train=train, test=test, device="cpu",
                        progress=False)
    import sklearn.svm

    def no_fit(*args, **kwargs):
        raise AssertionError("predict must not fit anything")

    monkeypatch.setattr(sklearn.svm.SVC, "fit", no_fit)
    monkeypatch.setattr(sklearn.svm.LinearSVC, "fit", no_fit)
    for result in (exact, nystroem):
        again = predict(result.id, train=train, test=test, device="cpu", progress=False)
        assert again.matches_stored
        assert again.accuracy == result.metrics["test_accuracy"] == again.stored_accuracy
    with pytest.raises(ValueError, match="computed with the train features"):
        predict(exact, train=dataclasses.replace(train, key="other"), test=test, progress=False)


def test_subset_is_class_balanced_reproducible_and_stored(data, results_store):
    train, test = data
    labels = train.labels
    first = subset_indices(labels, 7, seed=5)
    assert np.bincount(labels[first], minlength=CLASSES).tolist() == [7] * CLASSES
    np.testing.assert_array_equal(first, subset_indices(labels, 7, seed=5))
    assert not np.array_equal(first, subset_indices(labels, 7, seed=6))
    result = classify(ClassifySettings(**{**SMALL, "seed": 5}, subset_per_class=7), train=train,
                      test=test, progress=False)
    np.testing.assert_array_equal(store.load_model(result)["subset_indices"], first)
    assert result.config["subset_per_class"] == 7 and result.config["subset_seed"] == 5
    assert result.config["train_size"] == 70 and result.metrics["train_size"] == 70


def test_nystroem_map_is_scikit_learns_and_full_rank_matches_the_exact_svm(data, results_store):
    from sklearn.kernel_approximation import Nystroem

    train, test = data
    # The map itself: our kernel blocks and stored normalisation equal Nystroem.transform.
    x = torch.from_numpy(numpy_standardised(train.features, np.arange(60)).astype(np.float32))
    candidates = svm.landmark_candidates(60, 25, seed=4)
    mapping = svm.fit_nystroem(candidates, x[candidates], sigma=50.0, seed=4)
    reference = Nystroem(gamma=1 / (2 * 50.0**2), n_components=25, random_state=4).fit(x.double().numpy())
    # the landmarks Nystroem takes from all 60 rows, in the order of its fit on those rows alone
    assert sorted(mapping.landmarks) == sorted(reference.component_indices_)
    landmarks = x[mapping.landmarks]
    ours = svm.nystroem_features(x, landmarks, kern.squared_norms(landmarks),
                                 torch.from_numpy(mapping.normalization), 50.0)
    column = [list(reference.component_indices_).index(i) for i in mapping.landmarks]
    np.testing.assert_allclose(ours, reference.transform(x.double().numpy())[:, column], atol=1e-5)
    # With as many landmarks as training images the kernel is exact: the linear SVM on Nyström
    # features then decides almost as the kernel SVM (the losses differ: see svm.fit_linear).
    settings = ClassifySettings(**SMALL, method="nystroem", subset_per_class=20, components=200)
    result = classify(settings, train=train, test=test, progress=False)
    exact = store.load_result(result.metrics["gap"]["exact_result"])
    assert exact.config["method"] == "exact" and exact.config["train_size"] == 200
    agree = np.mean(store.load_model(result)["test_predictions"]
                    == store.load_model(exact)["test_predictions"])
    assert agree >= 0.95
    gap = result.metrics["gap"]
    assert gap["difference"] == pytest.approx(gap["exact_test_accuracy"] - gap["nystroem_test_accuracy"])
    assert abs(gap["difference"]) <= 0.05
    assert result.metrics["sigma"] == pytest.approx(exact.metrics["sigma"], rel=1e-6)  # same 200 images


def test_bad_input_says_what_and_how_to_fix(data, results_store):
    train, test = data
    with pytest.raises(ValueError, match=r"class \d+ has only 20 .*--subset-per-class 20 or less"):
        classify(ClassifySettings(**SMALL, subset_per_class=21), train=train, test=test, progress=False)
    with pytest.raises(ValueError, match="more than the 200 training images.*--components 200 or less"):
        classify(ClassifySettings(**SMALL, method="nystroem", components=201, subset_per_class=20),
                 train=train, test=test, progress=False)
    with pytest.raises(ValueError, match="subset on which the gap .* larger --subset-per-class"):
        classify(ClassifySettings(**SMALL, method="nystroem", components=120, subset_per_class=10),
                 train=train, test=test, progress=False)
    with pytest.raises(ValueError, match="--test-limit 101 is more than the 100"):
        classify(ClassifySettings(**SMALL, test_limit=101, subset_per_class=5), train=train, test=test,
                 progress=False)
    with pytest.raises(ValueError, match="unknown representation 'scattering'; use roto or translation"):
        ClassifySettings(representation="scattering")
    with pytest.raises(ValueError, match="unknown method"):
        ClassifySettings(method="linear")
    with pytest.raises(FeaturesNotFoundError,
                       match=r"explorer scatter --dataset cifar10 --J 3 --L 8 --producer roto "
                             r"--wavelets-per-octave 1 --angular-scales 2 --dtype float32 --colour yuv"):
        load_split(ClassifySettings(), "train")
    assert not results_store.exists() or not any(results_store.iterdir())  # nothing half-done


def test_cli_bad_input_is_one_line_and_exit_2(capsys, results_store):
    assert main(["classify", "svm", "--methods", "exact,linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--methods takes a comma-separated list of exact and nystroem" in err
    assert main(["scatter", "--angular-scales", "3"]) == 2
    assert "add --producer roto" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["classify", "svm", "--scattering", "wavelets"])
    assert exit_.value.code == 2


@pytest.mark.dataset
def test_cli_subset_larger_than_the_split(capsys, results_store):
    assert main(["classify", "svm", "--subset-per-class", "5001", "--scattering", "translation"]) == 2
    err = capsys.readouterr().err
    assert "has only 5000 of its 50000 images; use --subset-per-class 5000 or less" in err
    assert not (results_store.parent / "features").exists()  # refused before computing anything


def test_store_is_atomic_and_keyed_by_configuration(data, results_store, monkeypatch):
    train, test = data
    settings = ClassifySettings(**SMALL, subset_per_class=5)
    import safetensors.numpy

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(safetensors.numpy, "save_file", broken)
        with pytest.raises(OSError, match="disk full"):
            classify(settings, train=train, test=test, progress=False)
    assert list(results_store.iterdir()) == []  # neither the result nor a temporary left
    first = classify(settings, train=train, test=test, progress=False)
    assert first.folder.parent == results_store
    assert first.id == store.result_id(first.config) and first.id.startswith("translation_exact-")
    assert sorted(p.name for p in first.folder.iterdir()) == sorted(store.RESULT_FILES)
    again = classify(settings, train=train, test=test, progress=False)  # reused, not recomputed
    assert again.provenance["finished_at"] == first.provenance["finished_at"] and again.id == first.id
    other = classify(dataclasses.replace(settings, seed=4), train=train, test=test, progress=False)
    assert other.id != first.id
    assert "pickle" not in (first.folder / "model.safetensors").read_bytes()[:2000].decode("latin-1")


def test_results_listing_skips_damaged_folders_and_compares(data, results_store):
    train, test = data
    exact = classify(ClassifySettings(**SMALL, subset_per_class=6), train=train, test=test, progress=False)
    nystroem = classify(ClassifySettings(**SMALL, method="nystroem", subset_per_class=6, components=40),
                        train=train, test=test, progress=False)
    # a copy edited by hand, a truncated model, a stray folder: skipped, each with its reason
    edited = results_store / exact.id.replace(exact.id[-12:], "0" * 12)
    edited.mkdir()
    for name in store.RESULT_FILES:
        (edited / name).write_bytes((exact.folder / name).read_bytes())
    truncated = results_store / nystroem.id.replace(nystroem.id[-12:], "f" * 12)
    truncated.mkdir()
    (truncated / "config.json").write_text("{not json")
    (results_store / "notes").mkdir()
    listed = store.list_results()
    assert {r.id for r in listed} == {exact.id, nystroem.id}
    reasons = {d.id: d.reason for d in store.damaged_results()}
    assert "does not match the folder's name" in reasons[edited.name]
    assert "config.json is not valid JSON" in reasons[truncated.name]
    assert "not a classification result id" in reasons["notes"]
    rows = store.comparison_table(listed)
    assert [(r["representation"], r["method"]) for r in rows] == [("translation", "nystroem"),
                                                                  ("translation", "exact")]
    assert rows[0]["gap"] == nystroem.metrics["gap"]["difference"] and rows[1]["gap"] is None
    assert rows[1]["test_accuracy"] == exact.metrics["test_accuracy"]
    assert set(rows[0]) == set(store.TABLE_FIELDS)
    assert [r["id"] for r in store.comparison_table(listed, by=("id",))] == [nystroem.id, exact.id]
    json.dumps(rows)  # plain data for the dashboard
    with pytest.raises(store.ResultNotFoundError, match="not a classification result id"):
        store.load_result("../../etc")


def test_shipped_results_are_listed_after_the_users_without_a_model(data, results_store):
    train, test = data
    result = classify(ClassifySettings(**SMALL, subset_per_class=6), train=train, test=test, progress=False)
    shipped_folder = store.ship(result, store.SHIPPED_ROOT)
    assert sorted(p.name for p in shipped_folder.iterdir()) == ["config.json", "metrics.json", "provenance.json"]
    # the user's result of the same id takes precedence; without it, the shipped one is listed
    assert [(r.id, r.shipped) for r in store.list_results()] == [(result.id, False)]
    for name in store.RESULT_FILES:
        (result.folder / name).unlink()
    result.folder.rmdir()
    listed = store.list_results()
    assert [(r.id, r.shipped) for r in listed] == [(result.id, True)]
    assert listed[0].metrics == result.metrics and store.list_results(shipped=False) == []
    assert store.comparison_table(listed)[0]["shipped"] is True
    assert store.load_result(result.id).shipped
    with pytest.raises(store.ResultNotFoundError, match="explorer classify svm --scattering translation"):
        store.load_model(listed[0])
    with pytest.raises(store.ResultNotFoundError, match="shipped with the package"):
        predict(result.id, train=train, test=test, progress=False)


def test_the_package_ships_both_representations():
    """The figures of README come with the package: both representations, exact and Nyström, J = 3."""
    shipped = [r for r in store.list_results(store.SHIPPED_ROOT) if r.config["J"] == 3]
    found = {(r.config["representation"], r.config["method"]) for r in shipped}
    assert found == {("roto", "exact"), ("roto", "nystroem"), ("translation", "exact"),
                     ("translation", "nystroem")}
    for r in shipped:
        assert r.config["train_size"] == (50000 if r.config["method"] == "nystroem" else 10000)
        assert r.config["test_size"] == 10000 and 0.3 < r.metrics["test_accuracy"] < 0.95


def test_roto_producer_key_and_parameters():
    roto = FeatureConfig(J=3, producer="roto", colour="yuv")
    assert roto.key == "cifar10-train-roto-J3-L8-Q1-K2-float32-yuv"
    assert roto.producer_params == {"producer": "roto", "J": 3, "L": 8, "wavelets_per_octave": 1,
                                    "angular_scales": 2}
    assert FeatureConfig(J=4, image_size=64, producer="roto", wavelets_per_octave=2,
                         colour="yuv").key == "cifar10-train-roto-J4-L8-Q2-K2-float32-64px-yuv"
    assert FeatureConfig(J=3, colour="yuv").key == "cifar10-train-J3-L8-order2-float32-yuv"
    assert "wavelets_per_octave" not in FeatureConfig().producer_params
    with pytest.raises(ValueError, match="parameters of the roto-translation scattering"):
        FeatureConfig(angular_scales=3)
    with pytest.raises(ValueError, match="wavelets_per_octave must be 1 or 2"):
        FeatureConfig(producer="roto", wavelets_per_octave=0)
    assert ClassifySettings().feature_config("test").key == "cifar10-test-roto-J3-L8-Q1-K2-float32-yuv"
    assert (ClassifySettings(representation="translation").feature_config("train").key
            == "cifar10-train-J3-L8-order2-float32-yuv")


def test_classification_never_loads_a_ui_library():
    code = ("import sys, explorer.classify.pipeline, explorer.classify.results, explorer.classify_cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('panel', 'holoviews', 'bokeh', "
            "'param')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_roto_representation_end_to_end(results_store):
    from explorer.scattering.roto import RotoScattering2D

    settings = ClassifySettings(representation="roto", J=2, L=4, angular_scales=1, subset_per_class=8,
                                method="nystroem", components=40, seed=1)
    train, test = labelled(settings, "train", 8, seed=0), labelled(settings, "test", 4, seed=1)
    assert train.key == "cifar10-train-roto-J2-L4-Q1-K1-float32-yuv-custom-80"
    roto = RotoScattering2D(2, (32, 32), L=4, angular_scales=1)
    assert train.features.shape == (80, 3, len(roto.paths), 8, 8)
    images, _ = gratings(8, seed=0)
    from explorer.features import resize, to_colour_space

    yuv = to_colour_space(resize(torch.from_numpy(images[:3]).float() / 255, 32), "yuv")
    np.testing.assert_allclose(train.features[:3], roto(yuv).numpy(), rtol=1e-5, atol=1e-6)
    result = classify(settings, train=train, test=test, progress=False)
    assert (result.config["representation"], result.config["Q"], result.config["K"]) == ("roto", 1, 1)
    assert result.metrics["gap"]["exact_result"].startswith("roto_exact-")
    assert predict(result, train=train, test=test, progress=False).matches_stored
