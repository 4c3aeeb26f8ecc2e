"""The attribute maps of a hierarchical CNN and the translation test (explorer.analysis.attributes):
against direct computations, on maps built with and without translations, stored beside the run, and
through the CLI."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from explorer.analysis import attributes
from explorer.cli import main
from explorer.nets import build_model
from explorer.runs import RunStore


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A hierarchical CNN with F = 6 (older attribute of 3 positions) trained briefly on the stripes."""
    from explorer.training import make_config, train

    store = RunStore(tmp_path_factory.mktemp("hcnn-store") / "runs")
    run = train(make_config("hcnn", filters=6, kernel_old=3, kernel_new=5, epochs=1, dataset="synthetic",
                            limit_train=64, limit_test=32), store=store, progress=False, device="cpu")
    return store, run


def test_attribute_maps_are_the_spatial_means_of_each_layer_in_eval_mode():
    torch.manual_seed(0)
    model = build_model("hcnn", filters=6, kernel_old=3, kernel_new=5)
    model.train()
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    maps = attributes.attribute_maps(model, images, batch_size=2)
    assert model.training  # given back in its mode
    model.eval()
    with torch.no_grad():
        direct = model.inner_maps(torch.from_numpy(images).float() / 255)
    assert maps[0].shape == (5, 1, 6) and maps[1].shape == (5, 3, 6) and len(maps) == 11
    np.testing.assert_allclose(maps[0][:, 0], direct[0].mean(dim=(-2, -1)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps[-1], direct[-1].mean(dim=(-2, -1)).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, H, W\)"):
        attributes.attribute_maps(model, np.zeros((2, 32, 32, 3), np.uint8))


def brute_force(maps: np.ndarray, queries: int, margin: int = 1):
    """between[τ] and self[τ] from np.corrcoef, pair by pair, on the maps centred over the images."""
    maps = maps - maps.mean(axis=0)
    rows = maps.shape[1]
    between, itself = [], []
    for shift in (-1, 0, 1):
        best, own = [], []
        for q in range(queries):
            window = maps[q, margin:rows - margin].ravel()
            scores = [np.corrcoef(window, maps[r, margin + shift:rows - margin + shift].ravel())[0, 1]
                      for r in range(len(maps))]
            own.append(scores[q])
            best.append(max(score for r, score in enumerate(scores) if r != q))
        between.append(np.mean(best))
        itself.append(np.mean(own))
    return np.array(between), np.array(itself)


def test_similarities_equal_pairwise_pearson_correlations():
    maps = np.random.default_rng(1).normal(size=(12, 5, 3))
    result = attributes.shift_similarity(maps, queries=4)
    between, itself = brute_force(maps, 4)
    np.testing.assert_allclose(result["between"], between, rtol=1e-10)
    np.testing.assert_allclose(result["self"], itself, rtol=1e-10)
    assert result["self"][1] == pytest.approx(1.0)
    assert (result["partner"] != np.arange(4)[:, None]).all()  # never the query itself


def translated_families(families: int, offsets: int, rows: int, columns: int, seed: int) -> np.ndarray:
    """Each family: one random pattern seen through a window of ``rows`` rows at successive offsets; the
    middle offsets first (their windows have a neighbour on both sides: the queries)."""
    generator = np.random.default_rng(seed)
    patterns = generator.normal(size=(families, rows + offsets, columns))
    middle_first = sorted(range(offsets), key=lambda o: abs(o - offsets // 2))
    return np.stack([patterns[f, o:o + rows] for o in middle_first for f in range(families)])


def test_a_set_made_of_translations_scores_near_one():
    maps = translated_families(families=40, offsets=5, rows=8, columns=6, seed=2)
    result = attributes.layer_translations([maps], queries=60)
    assert result["translation"][0] > 1.5  # shifted partners match far better than unshifted ones
    assert result["between"][0, 2] > 0.95 and result["unshifted"][0] < 0.6  # no two windows alike unshifted
    # the best partner at shift +1 of a query in the middle offsets is its own family's next window
    assert np.median(result["partner_similarity"][:, 2]) > 0.95


def test_near_duplicates_without_translations_score_near_zero():
    generator = np.random.default_rng(3)
    originals = generator.normal(size=(100, 8, 6))
    maps = np.concatenate([originals, originals + 0.3 * generator.normal(size=originals.shape)])
    result = attributes.layer_translations([maps], queries=60)
    assert result["translation"][0] < 0.75 and result["unshifted"][0] > 0.9


def test_a_layer_without_an_older_attribute_is_not_measured():
    result = attributes.layer_translations([np.ones((6, 1, 4)), translated_families(5, 2, 4, 3, 4)], queries=3)
    assert np.isnan(result["translation"][0]) and np.isnan(result["between"][0]).all()
    with pytest.raises(ValueError, match="too few for shifts"):
        attributes.shift_similarity(np.ones((6, 2, 4)), queries=3)
    with pytest.raises(ValueError, match="queries must be between 1"):
        attributes.shift_similarity(np.ones((6, 4, 4)), queries=6)


def test_the_untrained_control_normalises_with_statistics_measured_on_the_images():
    torch.manual_seed(1)
    model = build_model("hcnn", filters=6, kernel_old=3, kernel_new=5)
    images = np.random.default_rng(5).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)  # two equal batches
    attributes.calibrate_batchnorm(model, images, batch_size=3)
    x = torch.from_numpy(images).float() / 255
    with torch.no_grad():
        first = model.layers[0].conv((x - model.mean) / model.std)
    np.testing.assert_allclose(model.layers[0].norm.running_mean.numpy(), first.mean(dim=(0, 2, 3)).numpy(),
                               rtol=1e-4, atol=1e-5)
    assert model.training  # given back in the mode it had


def test_the_analysis_is_stored_beside_the_run_and_read_back(tiny_run, monkeypatch):
    store, run = tiny_run
    first = attributes.analyse_attributes(run.id, images=40, queries=10, store=store, progress=False)
    assert first["computed"] and first["images"] == 40 and first["queries"] == 10
    assert first["translation"].shape == (11,) and np.isnan(first["translation"][0])
    assert first["partner"].shape == (10, 3) and len(first["image_indices"]) == 40

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(attributes, "_compute", refuse)
    again = attributes.analyse_attributes(run.id, images=40, queries=10, store=store, progress=False)
    assert not again["computed"]
    np.testing.assert_array_equal(again["control_translation"], first["control_translation"])


def test_bad_runs_and_counts_get_clear_messages(tiny_run, tmp_path):
    from explorer.training import make_config, train

    store, _ = tiny_run
    other = train(make_config("cnn13", width=2, epochs=1, dataset="synthetic", limit_train=32, limit_test=16),
                  store=store, progress=False, device="cpu")
    with pytest.raises(ValueError, match="needs a hierarchical CNN run"):
        attributes.analyse_attributes(other.id, store=store, progress=False)
    with pytest.raises(ValueError, match="queries must be fewer than the images"):
        attributes.translations_params(10, 10)


def test_the_cli_prints_a_table_and_json(tiny_run, monkeypatch, capsys):
    store, run = tiny_run
    monkeypatch.setenv("EXPLORER_STORE", str(store.root.parent))
    assert main(["analyse", "attributes", run.id, "--images", "40", "--queries", "10"]) in (0, None)
    table = capsys.readouterr().out
    assert "translations along the older attribute" in table
    assert re.search(r"^\s+1\s+—\s+—\s+—\s+—$", table, re.MULTILINE)  # layer 1: no older attribute
    assert re.search(r"^\s+\d+(\s+-?\d+\.\d{3}){4}$", table, re.MULTILINE)  # a measured layer
    assert main(["analyse", "attributes", run.id, "--images", "40", "--queries", "10", "--json"]) in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["run"] == run.id and len(summary["layers"]) == 11 and summary["layers"][0]["translation"] is None
    assert main(["analyse", "attributes", run.id, "--images", "5", "--queries", "9"]) not in (0, None)
    assert "queries must be fewer" in capsys.readouterr().err


def test_maps_that_do_not_differ_between_images_are_not_scored():
    base = np.random.default_rng(6).normal(size=(1, 6, 4))
    maps = base + 1e-9 * np.random.default_rng(7).normal(size=(30, 6, 4))  # a collapsed layer: rounding noise
    result = attributes.layer_translations([maps, translated_families(10, 3, 6, 4, 8)], queries=10)
    assert np.isnan(result["translation"][0]) and np.isnan(result["between"][0]).all()
    assert np.isfinite(result["translation"][1])
    assert np.isnan(attributes.translation_ratio(np.array([0.5, 0.0, 0.5]), np.array([-1, 0, 1])))


def test_the_stored_test_on_the_most_images_is_the_one_read(tiny_run):
    store, run = tiny_run
    attributes.analyse_attributes(run.id, images=40, queries=10, store=store, progress=False)
    attributes.analyse_attributes(run.id, images=50, queries=10, store=store, progress=False)
    attributes.analyse_attributes(run.id, images=45, queries=10, store=store, progress=False)
    assert attributes.stored_translations(run.id, store)["images"] == 50
