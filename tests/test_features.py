"""Dataset features: computed once, stored memory-mapped and atomically, reused (issue #2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from explorer.features import (
    FeatureConfig,
    FeaturesCorruptError,
    FeaturesNotFoundError,
    compute_features,
    load_features,
)
from explorer.network_features import compute_network_features
from explorer.runs import RunNotFoundError
from explorer.scattering import Scattering2D


def small_images(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def test_features_equal_the_transform_and_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    images = small_images()
    config = FeatureConfig(J=2, L=4)
    features, meta = compute_features(config, images, batch_size=4, progress=False)
    assert isinstance(features, np.memmap) and features.shape == (6, 3, 1 + 8 + 16, 8, 8)
    expected = Scattering2D(2, (32, 32), 4)(torch.from_numpy(images).float() / 255)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-6, atol=1e-7)
    assert meta["paths"][1] == [1, 0, 0, None, None] and meta["config"]["L"] == 4
    # A second call reads the store instead of recomputing (its timing stays the first one's).
    again, meta_again = compute_features(config, images, progress=False)
    assert meta_again["seconds"] == meta["seconds"]
    np.testing.assert_array_equal(again, features)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_progress_callback_reaches_the_total(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    seen = []
    compute_features(FeatureConfig(J=1, L=2), small_images(5), batch_size=2, progress=False,
                     on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_overwrite_replaces_and_a_failed_run_leaves_the_old_features(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    config = FeatureConfig(J=1, L=2)
    first, _ = compute_features(config, small_images(4, seed=1), progress=False)
    kept = np.array(first)

    def boom(done, total):
        raise RuntimeError("killed mid-run")

    with pytest.raises(RuntimeError, match="killed"):
        compute_features(config, small_images(4, seed=2), batch_size=2, overwrite=True,
                         progress=False, on_progress=boom)
    survivor, _ = compute_features(config, small_images(4, seed=2), progress=False)
    np.testing.assert_array_equal(survivor, kept)  # the interrupted run lost nothing
    replaced, _ = compute_features(config, small_images(4, seed=2), overwrite=True,
                                   progress=False)
    assert not np.array_equal(replaced, kept)


def test_missing_and_damaged_features_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    config = FeatureConfig(split="test", J=3)
    with pytest.raises(FeaturesNotFoundError, match="explorer scatter --dataset cifar10 --J 3"):
        load_features(config)
    config.folder.mkdir(parents=True)
    (config.folder / "meta.json").write_text("{not json")
    with pytest.raises(FeaturesCorruptError, match="--overwrite"):
        load_features(config)
    (config.folder / "meta.json").write_text(json.dumps({"shape": [1, 2]}))
    np.save(config.folder / "features.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(FeaturesCorruptError, match="shape"):
        load_features(config)


@pytest.mark.parametrize("kwargs,message", [
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"split": "val"}, "split must be one of"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"J": 6}, "smaller than 2\\^J"),
])
def test_bad_configuration_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**kwargs)


def test_wrong_images_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    with pytest.raises(ValueError, match="expected uint8 images"):
        compute_features(FeatureConfig(), np.zeros((2, 32, 32), np.float32), progress=False)


def test_cli_without_a_dataset_says_how_to_get_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EXPLORER_DATA"}
    env["EXPLORER_STORE"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "explorer", "scatter", "--J", "2"],
                            check=False, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "EXPLORER_DATA" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.dataset
def test_cli_scatters_the_real_test_split(cifar_dir, tmp_path, monkeypatch):
    """The real command on the real data (J=3 keeps it to a few seconds here)."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    env = dict(os.environ, EXPLORER_STORE=str(tmp_path), EXPLORER_DATA=str(cifar_dir))
    result = subprocess.run([sys.executable, "-m", "explorer", "scatter", "--split", "test",
                             "--J", "3", "--L", "4", "--max-order", "1"],
                            check=False, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    features, _meta = load_features(FeatureConfig(split="test", J=3, L=4, max_order=1))
    assert features.shape == (10000, 3, 13, 4, 4)
    from explorer.data import load_cifar10

    first = load_cifar10("test", cifar_dir).images[:2]
    expected = Scattering2D(3, (32, 32), 4, max_order=1)(torch.from_numpy(first).float() / 255)
    np.testing.assert_allclose(features[:2], expected.numpy(), rtol=1e-5, atol=1e-6)


# --- what the key names (issue 11: the feature cache covers every representation) ----------------------


@pytest.mark.parametrize("kwargs,old_key", [
    ({}, "cifar10-train-J2-L8-order2-float32"),
    ({"split": "test", "J": 3, "L": 4, "max_order": 1, "dtype": "float64"},
     "cifar10-test-J3-L4-order1-float64"),
    ({"image_size": 32, "colour": "rgb"}, "cifar10-train-J2-L8-order2-float32"),
])
def test_todays_scattering_folders_keep_their_names(kwargs, old_key):
    """Keys as the code before producers, sizes and colour spaces wrote them, by hand."""
    assert FeatureConfig(**kwargs).key == old_key


def test_a_folder_written_before_producers_is_found(tmp_path, monkeypatch):
    """A folder as today's CIFAR-10 scattering caches are: the old key, meta.json without producer."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    folder = tmp_path / "features" / "cifar10-test-J2-L8-order2-float32"
    folder.mkdir(parents=True)
    stored = np.random.default_rng(0).random((2, 3, 81, 8, 8)).astype(np.float32)
    np.save(folder / "features.npy", stored)
    old_meta = {"config": {"dataset": "cifar10", "split": "test", "J": 2, "L": 8, "max_order": 2,
                           "dtype": "float32"}, "shape": [2, 3, 81, 8, 8], "seconds": 1.0}
    (folder / "meta.json").write_text(json.dumps(old_meta))
    features, _meta = load_features(FeatureConfig("cifar10", "test", 2, 8))
    np.testing.assert_array_equal(features, stored)
    features, _ = compute_features(FeatureConfig(split="test"), progress=False)  # reused, not recomputed
    np.testing.assert_array_equal(features, stored)


def test_the_key_names_producer_size_and_colour():
    keys = {FeatureConfig().key, FeatureConfig(image_size=64).key, FeatureConfig(colour="yuv").key,
            FeatureConfig(colour="gray", image_size=16, J=1).key,
            FeatureConfig(producer="network", run_id="cnn13-0123456789ab", depth=4).key,
            FeatureConfig(producer="network", run_id="cnn13-0123456789ab", depth=5).key,
            FeatureConfig(producer="network", run_id="cnn13-0123456789ac", depth=4).key}
    assert len(keys) == 7
    network = FeatureConfig(split="test", producer="network", run_id="cnn13-0123456789ab", depth=4)
    assert network.key == "cifar10-test-net-cnn13-0123456789ab-depth4-float32"
    assert network.producer_params == {"producer": "network", "run_id": "cnn13-0123456789ab", "depth": 4}
    assert FeatureConfig(J=3).producer_params == {"producer": "scattering", "J": 3, "L": 8, "max_order": 2}
    assert FeatureConfig(image_size=64, colour="yuv").key == "cifar10-train-J2-L8-order2-float32-64px-yuv"


@pytest.mark.parametrize("kwargs,message", [
    ({"producer": "kymatio"}, "unknown producer 'kymatio'"),
    ({"producer": "network", "depth": 2}, "run id of a trained network"),
    ({"producer": "network", "run_id": "cnn13-0123456789ab"}, "depth must be"),
    ({"run_id": "cnn13-0123456789ab"}, "describe a network producer"),
    ({"colour": "hsv"}, "colour must be one of"),
    ({"image_size": 0}, "image_size must be"),
    ({"image_size": 8, "J": 4}, "smaller than 2\\^J"),
])
def test_bad_producers_sizes_and_colours_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**kwargs)


def test_colour_space_and_size_are_applied_before_the_scattering(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    from explorer.features import resize, to_colour_space

    images = small_images(3)
    x = torch.from_numpy(images).float() / 255
    gray, meta = compute_features(FeatureConfig(J=1, L=2, colour="gray", image_size=16), images,
                                  progress=False)
    expected = Scattering2D(1, (16, 16), 2)(to_colour_space(resize(x, 16), "gray"))
    assert gray.shape == (3, 1, 1 + 2 + 0, 8, 8) and meta["producer"]["producer"] == "scattering"
    np.testing.assert_allclose(gray, expected.numpy(), rtol=1e-5, atol=1e-6)
    y = to_colour_space(x, "yuv")
    np.testing.assert_allclose(y[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-6)
    assert float(to_colour_space(torch.ones(1, 3, 2, 2), "yuv")[:, 1:].abs().max()) < 1e-4  # white: no chroma


def test_a_network_producer_stores_what_its_transform_gives(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    config = FeatureConfig(producer="network", run_id="cnn13-0123456789ab", depth=3)
    images = small_images(5)
    with pytest.raises(ValueError, match="need a transform"):
        compute_features(config, images, progress=False)
    with pytest.raises(RunNotFoundError, match="no run 'cnn13-0123456789ab'"):
        compute_network_features(config, images, progress=False)
    features, meta = compute_features(config, images, batch_size=2, progress=False,
                                      transform=lambda x: x.mean(dim=(-2, -1)))
    assert features.shape == (5, 3) and meta["producer"]["depth"] == 3 and "paths" not in meta
    np.testing.assert_allclose(features, images.mean(axis=(-2, -1)) / 255, rtol=1e-5)
    with pytest.raises(FeaturesNotFoundError, match="compute_features"):
        load_features(config)


def test_a_network_producer_reads_the_runs_inner_map_at_its_depth(tmp_path, monkeypatch):
    """Without a transform, a network producer loads the run and stores the spatial mean of its inner map
    at `depth` (CNN13: 2..13), as the model computes it in eval mode."""
    from explorer.training import make_config, train

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    run = train(make_config("cnn13", width=4, epochs=1, dataset="synthetic", limit_train=64, limit_test=32),
                progress=False)
    images = small_images(5)
    features, meta = compute_network_features(
        FeatureConfig(split="test", producer="network", run_id=run.id, depth=5), images, batch_size=2,
        progress=False, device="cpu")
    model = run.build_model("cpu").eval()
    with torch.no_grad():
        expected = model.inner_maps(torch.from_numpy(images).float() / 255)[3].mean(dim=(-2, -1))
    assert features.shape == (5, 4) and meta["producer"] == {"producer": "network", "run_id": run.id, "depth": 5}
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="depth must be 2..13"):
        compute_network_features(FeatureConfig(split="test", producer="network", run_id=run.id, depth=14),
                                 images, progress=False, device="cpu")
