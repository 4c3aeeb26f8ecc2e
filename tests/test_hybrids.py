"""Scattering + CNN hybrids, the WRN baseline, the feature shift, and the small-data protocol (science.md §4)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.data import sample_image
from explorer.jobs import train_arguments
from explorer.nets import ScatLinear, ScatMLP, ScatWRN, WideResNet, registry
from explorer.protocols import SmallDataGrid, grid_cells, list_summaries, run_grid, summarise
from explorer.protocols.small_data import summary_path
from explorer.runs import RunStore, run_id
from explorer.scattering import Scattering2D
from explorer.training import make_config, train
from explorer.training.augment import feature_augmenter, random_shift_features
from explorer.training.data import synthetic_images


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def relative(a, b) -> float:
    return float((a - b).norm() / b.norm())


# --- models ------------------------------------------------------------------------------------------

def test_sizes_match_the_published_architectures():
    """Scat + WRN 12-8 ≈ 10.8 M parameters (science.md §4); WRN 16-8 has 11.0 M (Zagoruyko & Komodakis,
    table 1); Scat + MLP: 15 552 → 2048 → 2048 → 10; Scat + linear: 15 552 × 10 + 10."""
    assert parameters(ScatWRN()) / 1e6 == pytest.approx(10.8, abs=0.05)
    assert parameters(WideResNet(16, 8)) / 1e6 == pytest.approx(11.0, abs=0.05)
    mlp = ScatMLP()
    assert [m.in_features for m in mlp.mlp if isinstance(m, torch.nn.Linear)] == [15552, 2048, 2048]
    assert parameters(ScatLinear()) == 15552 * 10 + 10
    for model in (ScatLinear(), ScatMLP(hidden=8), ScatWRN(widen=1)):  # BN without affine at the input
        assert model.input_norm.affine is False and model.channels == 243


@pytest.mark.parametrize("model", [ScatLinear(), ScatMLP(hidden=16), ScatWRN(widen=1)])
def test_hybrids_take_stored_features_or_images(model):
    model.eval()
    images = torch.rand(3, 3, 32, 32)
    features = Scattering2D(2, (32, 32), 8)(images)  # (3, 3, 81, 8, 8): what explorer.features stores
    assert features.shape == (3, 3, 81, 8, 8)
    with torch.no_grad():
        direct = model(features)
        assert torch.allclose(model(features.flatten(1, 2)), direct)
        assert torch.allclose(model.forward_images(images), direct, atol=1e-5)
    with pytest.raises(ValueError, match="forward_images"):
        model(images)


def test_wrn_downsamples_twice_and_rejects_a_bad_depth():
    model = WideResNet(10, 1).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert [g[0].conv1.stride for g in model.groups] == [(1, 1), (2, 2), (2, 2)]
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(depth=15)


@pytest.mark.parametrize("name, kwargs, message", [
    ("scat_mlp", {"hidden": 0}, "hidden width"),
    ("scat_wrn", {"widen": 0}, "widen factor"),
    ("wrn", {"depth": 12}, "6n \\+ 4"),
    ("scat_linear", {"augment": {"crop_padding": 5}}, "at most 2"),
    ("scat_linear", {"augment": {"padding_mode": "circular"}}, "padding_mode"),
])
def test_bad_model_options_name_the_parameter(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_config(name, **kwargs)


# --- the crop on stored features -----------------------------------------------------------------------

def test_shift_moves_every_map_by_the_drawn_offset():
    features = torch.arange(2 * 3 * 5 * 8 * 8, dtype=torch.float32).reshape(2, 3, 5, 8, 8)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        shifted = random_shift_features(features, 1, generator, mode="zeros")
        for b in range(2):
            # find the offset: the shifted map is the original moved by (dr, dc) ∈ {-1, 0, 1}², zeros outside
            matches = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                       if torch.equal(shifted[b], _moved(features[b], dr, dc))]
            assert len(matches) == 1
            seen.add(matches[0])
    assert len(seen) == 9  # every offset drawn


def _moved(x, dr, dc):
    """x (…, h, w) moved by (dr, dc) positions, zeros coming in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)] = \
        x[..., max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)]
    return out


def test_a_one_position_shift_is_a_four_pixel_translation_of_the_image():
    """At J = 2 a map position is 4 pixels: the features of the image translated by 4 pixels are the features
    shifted by one position, up to the transform's own error (measured about 0.1 here, against 0.45 for the
    unshifted features). Circular translation and a circular shift, so that borders do not enter."""
    S = Scattering2D(2, (32, 32), 8)
    x = torch.stack([torch.from_numpy(sample_image(name, size=32, color=True)) for name in ("astronaut", "coffee")])
    target = S(torch.roll(x, shifts=(4, -4), dims=(-2, -1)))
    shifted = torch.roll(S(x), shifts=(1, -1), dims=(-2, -1))
    assert relative(shifted, target) < 0.5 * relative(S(x), target)


def test_feature_augmenter_flips_and_shifts():
    S = Scattering2D(2, (32, 32), 4)
    features = S(torch.rand(64, 3, 32, 32))
    generator = torch.Generator().manual_seed(1)
    off = feature_augmenter({"flip": False, "crop_padding": 0, "padding_mode": "zeros"}, S.paths, 4, "cpu")
    assert torch.equal(off(features, generator), features)
    both = feature_augmenter({"flip": True, "crop_padding": 1, "padding_mode": "reflect"}, S.paths, 4, "cpu")
    changed = (both(features, generator) != features).flatten(1).any(1)
    assert 0.8 < changed.float().mean() <= 1  # most samples are flipped or shifted (1/18 are neither)


# --- training and commands -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, extra", [("scat_linear", {}), ("scat_mlp", {"hidden": 32}),
                                         ("scat_wrn", {"widen": 1}), ("wrn", {"depth": 10, "widen": 1})])
def test_each_model_learns_the_synthetic_stripes_and_its_command_rebuilds_it(tmp_path, name, extra):
    # 24 steps: fewer leave BatchNorm's running statistics behind the weights (see synthetic_images)
    config = make_config(name, dataset="synthetic", epochs=3, limit_train=512, limit_test=128, batch_size=64,
                         lr=0.05, **extra)
    run = train(config, store=RunStore(tmp_path), progress=False)
    assert run.metrics[-1]["test_acc"] >= 0.85
    argv = train_arguments(config)
    assert argv[0] == name
    from explorer.jobs import _parse_train_args
    from explorer.train_cli import config_from_args
    assert run_id(config_from_args(_parse_train_args(argv))) == run.id


def test_the_sle_takes_the_crop_from_the_command_line(tmp_path):
    from explorer.jobs import _parse_train_args
    from explorer.train_cli import config_from_args

    config = config_from_args(_parse_train_args(["sle", "--crop-padding", "1", "--padding-mode", "reflect"]))
    assert config["augment"] == {"crop_padding": 1, "padding_mode": "reflect", "flip": True}
    assert registry.get("sle").default_augment["crop_padding"] == 0  # the shipped runs keep their ids


# --- the small-data protocol ---------------------------------------------------------------------------

def test_cells_take_the_authors_per_class_permutation():
    """n/10 per class, ``RandomState(seed).permutation(5000)[:n/10]`` within each class (science.md §4)."""
    grid = SmallDataGrid(models=("scat_linear", "cnn13"), sizes=(20, 40), seeds=(1, 3), dataset="synthetic")
    cells = grid_cells(grid)
    assert [(m, n, s) for m, n, s, _ in cells] == [(m, n, s) for m in ("scat_linear", "cnn13")
                                                   for n in (20, 40) for s in (1, 3)]
    for _model, n, seed, config in cells:
        assert config["subset"] == {"n": n, "seed": seed} and config["seed"] == seed
        assert config["schedule"]["name"] == "small-quick" and config["limit_test"] is None
    labels = synthetic_images("train").y
    from explorer.data.subsets import balanced_subset_indices
    chosen = balanced_subset_indices(labels, 20, 3)
    for c in (0, 1):
        members = np.flatnonzero(labels == c)
        expected = members[np.random.RandomState(3).permutation(len(members))[:10]]
        assert sorted(chosen[labels[chosen] == c]) == sorted(expected)


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": ()}, "seed list is empty"),
    ({"sizes": (6000 * 10,)}, "only 5000 training images"),
    ({"sizes": (105,)}, "multiple of the 10 classes"),
    ({"sizes": ()}, "size list is empty"),
    ({"models": ()}, "no model"),
    ({"models": ("resnet",)}, "unknown model"),
    ({"schedule": "slow"}, "quick, paper"),
    ({"seeds": (1, 1)}, "must not repeat"),
    ({"seeds": 3}, "must be a list"),
])
def test_bad_grids_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SmallDataGrid(**{"models": ("scat_linear",), **kwargs})


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("grid") / "runs")
    grid = SmallDataGrid(models=("scat_linear",), sizes=(20, 40), seeds=(1, 2, 3), dataset="synthetic",
                         limit_test=64)
    return grid, store


def test_a_stopped_grid_continues_and_is_summarised_over_seeds(tiny_grid):
    grid, store = tiny_grid
    first = SmallDataGrid(models=grid.models, sizes=(20,), seeds=(1,), dataset="synthetic", limit_test=64)
    run_grid(first, store=store, progress=False)  # the first cell of the big grid, as if it had stopped
    done = store.path(run_id(grid_cells(first)[0][3]))
    stamp = (done / "weights.safetensors").stat().st_mtime_ns
    half = summarise(grid, store)
    assert half["rows"][0]["accuracies"][1:] == [None, None] and half["rows"][0]["finished"] == 1
    assert not half["complete"]

    trained = []
    summary = run_grid(grid, store=store, progress=False, on_cell=lambda i, total, m, n, s: trained.append((n, s)))
    assert len(trained) == 6 and summary["complete"]
    assert (done / "weights.safetensors").stat().st_mtime_ns == stamp  # reused, not trained again
    for row in summary["rows"]:
        accuracies = np.array(row["accuracies"])
        assert row["finished"] == 3 and len(row["run_ids"]) == 3
        assert row["mean"] == pytest.approx(accuracies.mean())
        assert row["std"] == pytest.approx(accuracies.std(ddof=1))
        assert all(t is not None and t > 0 for t in row["seconds"])
        assert all(d.startswith("cpu") for d in row["devices"])
    stored = json.loads(summary_path(grid, store).read_text())
    assert stored["rows"] == summary["rows"] and stored["id"] == grid.id


def test_damaged_summaries_are_skipped_with_a_warning(tiny_grid):
    grid, store = tiny_grid
    path = summary_path(grid, store)
    broken = path.with_name("quick-synthetic-000000000000.json")
    broken.write_text("{not json")
    try:
        with pytest.warns(UserWarning, match="damaged protocol summary"):
            found = list_summaries(store)
        assert grid.id in [s["id"] for s in found]
    finally:
        broken.unlink()


def test_cli_runs_a_grid_and_rejects_bad_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))
    assert main(["protocol", "small-data", "--models", "scat_linear", "--dataset", "synthetic", "--sizes", "20",
                 "--seeds", "1", "2", "--limit-test", "32", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "scat_linear J=2 L=8" in out and "over 2/2 seeds" in out
    assert main(["protocol", "show"]) == 0
    assert "n=20" in capsys.readouterr().out
    assert main(["protocol", "small-data", "--seeds"]) == 2
    assert "seed list is empty" in capsys.readouterr().err
    assert main(["protocol", "small-data", "--sizes", "100000"]) == 2
    assert "only 5000 training images" in capsys.readouterr().err
