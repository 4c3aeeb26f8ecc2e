"""Training throughput (images/s) of CNN13 K=32, of the Scattering + SLE and of the Scattering + linear /
MLP / WRN 12-8 hybrids on stored features.

    python benchmarks/training.py            # throughput on the CPU, and on CUDA when present
    python benchmarks/training.py --full     # also trains the real runs and checks accuracies
    python benchmarks/training.py --full --paper   # ... including the paper's 310-epoch schedule

Throughput is the whole training step as `explorer.training` runs it: batch taken from the data
held on the device, augmentation on the device (pad-crop + flip for images, the path-permuting
flip for scattering features), forward, backward, SGD, mixed precision on CUDA. Random data of
CIFAR-10's shape; batch 128. `--full` needs EXPLORER_DATA (CIFAR-10) and trains into the run
store (a finished run is reused, a killed one continues with --resume semantics).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from explorer.nets import build_model, registry
from explorer.training import make_config
from explorer.training.data import DeviceData, Split
from explorer.training.trainer import amp_dtype, device_layout, model_augmenter, prepare_model, train_step

TARGETS = {  # (configuration, accuracy aimed at, where the figure comes from)
    "cnn13 K=32 quick": ({"model": "cnn13", "width": 32, "rho": "relu"}, 0.85,
                         "issue target: ~85 % in a few dozen epochs"),
    "sle J=2 512-512": ({"model": "sle", "J": 2, "widths": [512, 512]}, 0.78,
                        "issue target; between Scat + linear ≈ 70 % and Scat + MLP ≈ 85 % (science.md §4)"),
    "scat_linear": ({"model": "scat_linear"}, 0.68, "issue target; Kymatio's example: about 70 %"),
    "scat_mlp": ({"model": "scat_mlp"}, 0.85, "the talk: 85 % (science.md §4)"),
    "scat_wrn 12-8": ({"model": "scat_wrn"}, 0.90, "reported 93.1 % (unverified, science.md §4)"),
}
PAPER = ("cnn13 K=32 paper", {"model": "cnn13", "width": 32, "rho": "relu", "schedule": "paper"}, 0.88,
         "P2, K=32: 88.0 % (authors' code)")


def _random_split(config: dict, n: int) -> Split:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    if registry.get(config["model"]).trains_on == "features":
        mc = config["model_config"]
        P = 1 + mc["J"] * mc["L"] + mc["L"] ** 2 * mc["J"] * (mc["J"] - 1) // 2
        side = 32 // 2 ** mc["J"]
        return Split(rng.random((n, 3, P, side, side), dtype=np.float32), y)
    return Split(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), y)


def throughput(config: dict, device: torch.device, steps: int, warmup: int,
               batch_size: int = 128) -> float:
    """Images per second of the training step, after ``warmup`` steps."""
    torch.manual_seed(0)
    model = prepare_model(config, device)
    model.train()
    s = config["schedule"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=s["momentum"],
                                nesterov=s["nesterov"], weight_decay=s["weight_decay"])
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    data = DeviceData(_random_split(config, batch_size * 8), device)
    augment = model_augmenter(config, model)
    shuffle, gen = torch.Generator().manual_seed(0), torch.Generator(device=device).manual_seed(0)

    def batches():
        while True:
            yield from data.batches(batch_size, shuffle)

    stream = batches()
    for _ in range(warmup):
        x, y = next(stream)
        train_step(model, optimizer, scaler, device_layout(augment(x, gen), model), y, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        x, y = next(stream)
        loss, _ = train_step(model, optimizer, scaler, device_layout(augment(x, gen), model), y, dtype)
    loss.item()  # waits for the device
    return steps * batch_size / (time.perf_counter() - started)


def run_benchmark(devices: list[torch.device]) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for name, (kwargs, _, _) in TARGETS.items():
        config = make_config(**kwargs)
        params = sum(p.numel() for p in build_model(config["model"], **config["model_config"])
                     .parameters())
        for device in devices:
            cuda = device.type == "cuda"
            heavy = params > 5e6  # the MLP and the WRN: about 10 s per CPU step of 128
            rate = throughput(config, device, steps=200 if cuda else (3 if heavy else 10),
                              warmup=20 if cuda else (1 if heavy else 2))
            what = (f"{torch.cuda.get_device_name(device)}, {amp_dtype(device)}".replace("torch.", "")
                    if cuda else "cpu, float32")
            print(f"{name:<18} {params / 1e3:8.0f} k params  {what:<32} {rate:9.0f} images/s  "
                  f"({50_000 / rate:7.1f} s per CIFAR-10 epoch)")


def run_full(paper: bool) -> None:
    from explorer.training import train

    runs = [(name, *spec) for name, spec in TARGETS.items()] + ([PAPER] if paper else [])
    for name, kwargs, target, source in runs:
        started = time.perf_counter()
        run = train(make_config(**kwargs), resume=True)
        accuracy = run.metrics[-1]["test_acc"]
        verdict = "ok" if accuracy >= target else "BELOW TARGET"
        print(f"{name}: test accuracy {accuracy:.2%} (target {target:.0%}: {source}) {verdict}; "
              f"run {run.id}, {time.perf_counter() - started:.0f} s this session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="train the real runs on CIFAR-10")
    parser.add_argument("--paper", action="store_true", help="with --full: also the paper schedule")
    parser.add_argument("--device", default=None, help="only this device (cpu or cuda)")
    args = parser.parse_args()
    devices = [torch.device(args.device)] if args.device else \
        [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    run_benchmark(devices)
    if args.full:
        run_full(args.paper)


if __name__ == "__main__":
    main()
