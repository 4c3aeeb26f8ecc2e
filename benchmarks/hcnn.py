"""The multiscale hierarchical CNN (explorer.nets.hcnn): its training throughput against CNN13 K=32 measured
in the same run, its size and cost per image, and its factored 4-D layer against an unfactored reference.

    python benchmarks/hcnn.py                      # default device (CUDA if present, else the CPU)
    python benchmarks/hcnn.py --batch-size 32 --steps 5 --warmup 2
    python benchmarks/hcnn.py --device cpu --filters 16 8 4

Throughput is the whole training step as `explorer.training` runs it (the same pieces as
benchmarks/training.py): a batch taken from random CIFAR-10-shaped images held on the device, the model's
augmentation (pad-crop + flip), forward, backward, the SGD step of the model's default schedule, mixed
precision on CUDA. For each model: images/s after ``--warmup`` steps, timed over ``--steps`` steps, and the
ratio against CNN13 K=32 (the reference, measured first), with parameters and multiply-accumulates per image
(forward, counted by `torch.utils.flop_counter`: convolutions and the dense layer).

Then the factored layer: `hierarchical_conv` at the released sizes (input (B, 8, 16, 32, 32), 32 spatial
maps, a 7×11 attribute filter, stride 2 along both attributes; forward, no BN between) against an
unfactored reference computing the same linear operator with its rank-32 4-D kernel assembled, as 7 3-D
convolutions (one per position of the kernel along the older attribute); the outputs are compared.
Defaults take about a minute and a half on a 2-core CPU (one thread).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F_
from torch.utils.flop_counter import FlopCounterMode
from training import throughput  # benchmarks/training.py: the same training step, one definition

from explorer.config import default_device
from explorer.nets import build_model
from explorer.nets.hcnn import hierarchical_conv
from explorer.training import make_config
from explorer.training.trainer import amp_dtype

REFERENCE = ("cnn13 K=32", {"model": "cnn13", "width": 32, "rho": "relu"})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def size_and_cost(config: dict) -> tuple[int, float]:
    """Parameters, and multiply-accumulates per image of one forward pass (CPU, batch 1)."""
    model = build_model(config["model"], **config["model_config"]).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.rand(1, 3, 32, 32))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2


def unfactored(x: torch.Tensor, spatial_weight: torch.Tensor, attribute_weight: torch.Tensor,
               attribute_stride: int = 2) -> torch.Tensor:
    """The operator of ``hierarchical_conv(x, s, α, 1, stride)`` (no ``between``) with its 4-D kernel
    K_f(p, q, ·) = Σ_c α_{f,c}(p, q) s_c assembled: for each offset p along the older attribute, a 3-D
    convolution over (newest attribute, space) of the input rows 2a + p; summed over p. (B, F, V1', V2', H, W)."""
    batch, v1, v2, height, width = x.shape
    k = spatial_weight.shape[-1]
    filters, _, k1, k2 = attribute_weight.shape
    kernel = torch.einsum("fcpq,cij->fpqij", attribute_weight, spatial_weight[:, 0])  # (F, k1, k2, k, k)
    padded = F_.pad(x, (0, 0, 0, 0, 0, 0, k1 // 2, k1 // 2))  # zeros along the older attribute only
    out1 = (v1 - 1) // attribute_stride + 1
    total = None
    for p in range(k1):
        rows = padded[:, p:p + attribute_stride * (out1 - 1) + 1:attribute_stride]  # (B, V1', V2, H, W)
        term = F_.conv3d(rows.reshape(batch * out1, 1, v2, height, width), kernel[:, p].unsqueeze(1),
                         stride=(attribute_stride, 1, 1), padding=(k2 // 2, k // 2, k // 2))
        total = term if total is None else total + term
    out2, height, width = total.shape[-3:]
    return total.reshape(batch, out1, filters, out2, height, width).transpose(1, 2)


def _timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def layer_benchmark(device: torch.device, batch: int, repeats: int) -> None:
    torch.manual_seed(0)
    filters, channels, k1, k2 = 16, 32, 7, 11
    x = torch.randn(batch, 8, 16, 32, 32, device=device)
    spatial = torch.randn(channels, 1, 3, 3, device=device) / 3
    attribute = torch.randn(filters, channels, k1, k2, device=device) / (channels * k1 * k2) ** 0.5
    with torch.no_grad():
        fast = hierarchical_conv(x, spatial, attribute)
        slow = unfactored(x, spatial, attribute)
        error = float((fast - slow).abs().max() / slow.abs().max())
        t_fast = _timed(lambda: hierarchical_conv(x, spatial, attribute), device, repeats)
        t_slow = _timed(lambda: unfactored(x, spatial, attribute), device, repeats)
    positions = fast.shape[2] * fast.shape[3] * fast.shape[4] * fast.shape[5]
    macs_fast = 8 * 16 * 32 * 32 * channels * 9 + positions * filters * channels * k1 * k2
    macs_slow = positions * filters * k1 * k2 * 9
    print(f"\nfactored 4-D layer, input {tuple(x.shape)} float32 on {device.type}, forward, median of {repeats}:")
    print(f"  hierarchical_conv (3×3 spatial → {channels} maps, then {k1}×{k2} attribute conv)  "
          f"{t_fast * 1e3:8.1f} ms  {batch / t_fast:8.1f} images/s  {macs_fast / 1e6:7.0f} M MACs per image")
    print(f"  unfactored: rank-{channels} 4-D kernel assembled, {k1} conv3d               "
          f"{t_slow * 1e3:8.1f} ms  {batch / t_slow:8.1f} images/s  {macs_slow / 1e6:7.0f} M MACs per image")
    print(f"  unfactored / factored time: {t_slow / t_fast:.2f}×; largest difference {error:.1e} (relative)")
    print("  (the network puts BN + ELU between the two steps, which only the factored form can do; without it "
          "both compute the same linear map)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--filters", type=int, nargs="+", default=[16, 8],
                        help="hcnn widths F to measure (default: 16, the released model, and 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: 16 CPU, 128 CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model (default: 3 CPU, 30 CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--layer-batch", type=int, default=None, help="batch of the layer timing (default: 4 CPU, 64 CUDA)")
    parser.add_argument("--no-layer", action="store_true", help="skip the factored-layer timing")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else default_device()
    cuda = device.type == "cuda"
    batch = args.batch_size or (128 if cuda else 16)
    steps = args.steps or (30 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    what = (f"{torch.cuda.get_device_name(device)}, {amp_dtype(device)}".replace("torch.", "") if cuda
            else f"cpu, float32, {torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}; {what}; batch {batch}, {warmup} warm-up + {steps} timed steps")

    models = [REFERENCE] + [(f"hcnn F={f}" + (" (released)" if f == 16 else ""), {"model": "hcnn", "filters": f})
                            for f in args.filters]
    reference_rate = reference_macs = None
    for name, kwargs in models:
        config = make_config(**kwargs)
        params, macs = size_and_cost(config)
        rate = throughput(config, device, steps, warmup, batch)
        if reference_rate is None:
            reference_rate, reference_macs = rate, macs
        print(f"{name:<20} {params:>9,} params {macs / 1e6:8.1f} M MACs/image ({macs / reference_macs:5.1f}× ref)  "
              f"{rate:9.1f} images/s  ({50_000 / rate / 60:8.1f} min per CIFAR-10 epoch)  "
              f"{rate / reference_rate:6.3f}× {REFERENCE[0]}")
    if not args.no_layer:
        layer_benchmark(device, args.layer_batch or (64 if cuda else 4), 10 if cuda else 3)


if __name__ == "__main__":
    main()
