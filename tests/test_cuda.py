"""The CUDA path against the CPU path and Kymatio (skipped where PyTorch sees no GPU).

CI has no GPU; these run on a lent GPU machine with `python -m pytest tests/test_cuda.py`.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.features import FeatureConfig, compute_features
from explorer.runs import RunStore
from explorer.scattering import Scattering2D
from explorer.training import evaluate_run, make_config, train
from explorer.training.trainer import amp_dtype

from kymatio_reference import kymatio_paths, kymatio_scattering

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = torch.device("cuda")


@pytest.mark.parametrize("J,shape", [(2, (32, 32)), (3, (64, 48)), (4, (128, 128))])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_scattering_on_cuda_equals_the_cpu_transform(J, shape, dtype, tolerance):
    x = torch.rand(5, 3, *shape, generator=torch.Generator().manual_seed(J), dtype=dtype)
    scattering = Scattering2D(J, shape)
    on_cpu = scattering(x)
    on_gpu = scattering.to(CUDA)(x.to(CUDA))
    assert on_gpu.is_cuda and on_gpu.dtype == dtype and on_gpu.shape == on_cpu.shape
    error = (on_gpu.cpu() - on_cpu).norm() / on_cpu.norm()
    assert error < tolerance, f"relative error {error:.2e}"


@pytest.mark.parametrize("J,L,shape", [(2, 8, (32, 32)), (3, 6, (64, 64))])
def test_scattering_on_cuda_matches_kymatio_on_cuda(J, L, shape):
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(7)).to(CUDA)
    ours = Scattering2D(J, shape, L).to(CUDA)
    coefficients = kymatio_scattering(J, shape, L).to(CUDA)(x)
    index = {p: i for i, p in enumerate(ours.paths)}
    S = ours(x)
    errors = [float((S[:, index[p]] - c["coef"]).norm() / c["coef"].norm())
              for p, c in zip(kymatio_paths(coefficients, L), coefficients)]
    assert len(errors) == len(ours.paths) and max(errors) < 1e-5, f"worst path {max(errors):.2e}"


def test_features_computed_on_cuda_equal_the_cpu_ones(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "cpu"))
    on_cpu, _ = compute_features(FeatureConfig(J=2), images, device="cpu", progress=False)
    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path / "gpu"))
    on_gpu, _meta = compute_features(FeatureConfig(J=2), images, device="cuda", batch_size=16,
                                    progress=False)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model,kwargs", [
    ("cnn13", {"width": 4, "dropout": 0.0, "dataset": "synthetic", "epochs": 4, "limit_train": 96,
                   "limit_test": 64, "batch_size": 8, "lr": 0.05}),
    ("sle", {"widths": [8], "L": 4, "dataset": "synthetic", "epochs": 3, "limit_train": 64, "limit_test": 64,
                 "batch_size": 16}),
])
def test_training_on_cuda_with_mixed_precision_learns_and_reloads_on_the_cpu(tmp_path, model,
                                                                          kwargs):
    store = RunStore(tmp_path, shipped=False)
    run = train(make_config(model, **kwargs), store=store, progress=False, device="cuda")
    session = run.provenance["sessions"][0]
    assert session["device"].startswith("cuda") and amp_dtype(CUDA) in (torch.bfloat16, torch.float16)
    assert run.status == "complete" and run.metrics[-1]["test_acc"] >= 0.9  # chance is 0.5
    # The stored weights are float32 CPU tensors (BN counters int64) that the CPU evaluates to the GPU's accuracy
    # (mixed precision on the GPU, float32 here: a handful of borderline images may differ).
    weights = run.load_weights().values()
    assert all(not t.is_cuda and t.dtype in (torch.float32, torch.int64) for t in weights)
    _, cpu_accuracy = evaluate_run(store.load(run.id), device="cpu")
    assert abs(cpu_accuracy - run.metrics[-1]["test_acc"]) <= 2 / 64


def test_the_neighbour_search_on_cuda_finds_the_cpus_neighbours():
    from explorer.analysis.neighbours import nearest_neighbours

    rng = np.random.default_rng(0)
    reference, queries = rng.normal(size=(3000, 32)), rng.normal(size=(500, 32))
    on_cpu = nearest_neighbours(queries, reference, 32, device="cpu")
    on_gpu = nearest_neighbours(queries, reference, 32, device=CUDA)
    np.testing.assert_array_equal(on_gpu[0], on_cpu[0])
    np.testing.assert_allclose(on_gpu[1], on_cpu[1], rtol=1e-12)
