"""Dataset features: computed once, stored memory-mapped and atomically, reused (issue #2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from explorer.features import (FeatureConfig, FeaturesCorruptError, FeaturesNotFoundError,
                               compute_features, load_features)
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
    (dict(dataset="mnist"), "unknown dataset 'mnist'"),
    (dict(split="val"), "split must be one of"),
    (dict(dtype="float16"), "dtype must be one of"),
    (dict(J=6), "smaller than 2\\^J"),
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
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "EXPLORER_DATA" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.dataset
def test_cli_scatters_the_real_test_split(cifar_dir, tmp_path, monkeypatch):
    """The real command on the real data (J=3 keeps it to a few seconds here)."""
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    env = dict(os.environ, EXPLORER_STORE=str(tmp_path), EXPLORER_DATA=str(cifar_dir))
    result = subprocess.run([sys.executable, "-m", "explorer", "scatter", "--split", "test",
                             "--J", "3", "--L", "4", "--max-order", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    features, meta = load_features(FeatureConfig(split="test", J=3, L=4, max_order=1))
    assert features.shape == (10000, 3, 13, 4, 4)
    from explorer.data import load_cifar10

    first = load_cifar10("test", cifar_dir).images[:2]
    expected = Scattering2D(3, (32, 32), 4, max_order=1)(torch.from_numpy(first).float() / 255)
    np.testing.assert_allclose(features[:2], expected.numpy(), rtol=1e-5, atol=1e-6)
