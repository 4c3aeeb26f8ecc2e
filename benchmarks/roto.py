"""Roto-translation scattering: its speed against the translation transform and a direct float64 reference,
measured in the same run, and the time of CIFAR-10's features at J=3.

    python benchmarks/roto.py            # every configuration, CPU (and CUDA if present), then CIFAR-10
    python benchmarks/roto.py --quick    # fewer repeats, no CIFAR-10 pass
    python benchmarks/roto.py --device cuda

Prints, per configuration (RGB images, each channel scattered separately): images/s of
`RotoScattering2D` and of `Scattering2D` (max_order 2, same J, L, image) on the same batch, and their ratio
(the roto-translation transform computes (1 + 2K) times the translation's second-layer channels: about
5× for K = 2); then the direct float64 reference of tests/roto_direct.py (every path on its own) on one grey image,
and how many times faster the engine is on that image alone and per image within a batch of 64. When EXPLORER_DATA points at CIFAR-10, the time of
`explorer scatter --producer roto --J 3 --colour yuv` on all 60,000 images into a temporary store
(target ≤ 3 minutes on the 2-core CPU).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the direct reference

CONFIGS = [  # (J, (H, W), Q wavelets per octave, K angular scales, RGB images per batch)
    (3, (32, 32), 1, 2, 256),
    (4, (64, 64), 1, 2, 64),
    (3, (32, 32), 2, 2, 64),
    (3, (32, 32), 1, 3, 256),
]
CUDA_BATCH_SCALE = 8
CIFAR_TARGET_S = 180.0


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(transform, x: torch.Tensor, repeats: int) -> float:
    transform(x[:1])  # filters onto the device
    _sync(x.device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        transform(x)
        _sync(x.device)
        times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def compare(J, shape, Q, K, batch, device, repeats):
    from explorer.scattering import RotoScattering2D, Scattering2D

    x = torch.rand(batch, 3, *shape, device=device)
    roto = RotoScattering2D(J, shape, 8, Q, K).to(device)
    translation = Scattering2D(J, shape, 8).to(device)
    ours = images_per_second(roto, x, repeats)
    theirs = images_per_second(translation, x, repeats)  # for Q = 2 too: the translation transform has Q = 1 only
    return ours, theirs, len(roto.paths), len(translation.paths)


def direct_reference(J, shape, Q, K, batch=64):
    """Seconds per grey image in float64: the direct reference on one image, the engine on one image
    alone and within a batch of `batch` (where its chunked, batched products pay off)."""
    from roto_direct import roto_scattering_direct

    from explorer.scattering import RotoScattering2D

    x = np.random.default_rng(0).random((batch, *shape))
    start = time.perf_counter()
    roto_scattering_direct(x[0], J, 8, Q, K)
    slow = time.perf_counter() - start
    engine = RotoScattering2D(J, shape, 8, Q, K)
    images = torch.from_numpy(x)
    engine(images[:1])
    start = time.perf_counter()
    for _ in range(5):
        engine(images[:1])
    alone = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    engine(images)
    return slow, alone, (time.perf_counter() - start) / batch


def cifar_time(device: str) -> tuple[float, tuple] | None:
    from explorer.data import DatasetNotFoundError, find_cifar10, load_cifar10
    from explorer.features import FeatureConfig, compute_features

    try:
        find_cifar10()
    except DatasetNotFoundError:
        return None
    with tempfile.TemporaryDirectory() as store:
        os.environ["EXPLORER_STORE"] = store
        for split in ("train", "test"):
            load_cifar10(split)  # decoded into this store's cache first: we time the transform
        start = time.perf_counter()
        for split in ("train", "test"):
            features, _ = compute_features(FeatureConfig(split=split, J=3, producer="roto", colour="yuv"),
                                           device=device, progress=True)
            shape = features.shape
        return time.perf_counter() - start, shape


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, no CIFAR-10 pass")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no usable GPU")
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, devices: {devices}")
    header = (f"{'device':6} {'J':>2} {'size':>7} {'Q':>2} {'K':>2} {'batch':>5} | {'roto img/s':>10} "
              f"{'transl.':>8} {'ratio':>6} | {'roto paths':>10} {'transl.':>7}")
    print(header)
    print("-" * len(header))
    for device_name in devices:
        device = torch.device(device_name)
        repeats = (2 if args.quick else 4) * (5 if device.type == "cuda" else 1)
        for J, shape, Q, K, batch in CONFIGS:
            batch *= CUDA_BATCH_SCALE if device.type == "cuda" else 1
            ours, theirs, paths, translation_paths = compare(J, shape, Q, K, batch, device, repeats)
            print(f"{device_name:6} {J:>2} {shape[0]:>3}x{shape[1]:<3} {Q:>2} {K:>2} {batch:>5} | {ours:>10.1f} "
                  f"{theirs:>8.1f} {theirs / ours:>5.2f}x | {paths:>10} {translation_paths:>7}", flush=True)
    print("\nDirect float64 reference (tests/roto_direct.py), one grey image:")
    for J, shape, Q, K in [(2, (16, 16), 1, 2), (3, (32, 32), 1, 2)]:
        slow, alone, batched = direct_reference(J, shape, Q, K)
        print(f"  J={J} {shape[0]}x{shape[1]} Q={Q} K={K}: direct {slow * 1e3:.0f} ms; engine (float64) "
              f"{alone * 1e3:.1f} ms alone ({slow / alone:.0f}x faster), {batched * 1e3:.2f} ms per image in a "
              f"batch of 64 ({slow / batched:.0f}x)", flush=True)
    for device_name in devices if not args.quick else []:
        result = cifar_time(device_name)
        if result is None:
            print("\nCIFAR-10 pass skipped: set EXPLORER_DATA to time all 60,000 images.")
            break
        seconds, shape = result
        flag = "ok" if seconds <= CIFAR_TARGET_S or device_name != "cpu" else f"above {CIFAR_TARGET_S:.0f} s"
        print(f"\nCIFAR-10 roto-translation features, J=3, YUV, 60,000 images on {device_name}: "
              f"{seconds:.0f} s ({60000 / seconds:.0f} img/s; test split {shape})  {flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
