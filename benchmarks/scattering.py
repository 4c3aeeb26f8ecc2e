"""Scattering throughput and memory, ours against Kymatio 0.3 measured in the same run.

    python benchmarks/scattering.py            # all configurations, CPU (and CUDA if present)
    python benchmarks/scattering.py --quick    # fewer repeats, no CIFAR-10 pass
    python benchmarks/scattering.py --device cuda   # the GPU alone (batches 8× larger there)
    python benchmarks/scattering.py --profile --device cuda   # where our transform's time goes, per op

Prints, per configuration: images/s for ours and Kymatio's and their ratio (target ≥ 2× on CPU,
≥ 5× on a GPU), peak memory of each (peak resident-memory growth of a fresh process on CPU, sampled every ms,
torch.cuda.max_memory_allocated on GPU), and the "FFT floor": the time of exactly the FFTs our
algorithm performs, replayed alone. Then the filter-bank build time against Kymatio's
(target ≤ 1/20 of it) and, when EXPLORER_DATA points at CIFAR-10, the time of
`explorer scatter` on all 60,000 images at J=2 (target ≤ 60 s on the 2-core CPU).
Images are RGB, each channel scattered separately, as in the hybrid networks.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch

CONFIGS = [  # (J, (H, W), RGB images per batch)
    (2, (32, 32), 256),
    (3, (32, 32), 256),
    (4, (64, 64), 64),
    (3, (224, 224), 16),
]
CUDA_BATCH_SCALE = 8  # the CPU's batches leave a GPU idle between kernel launches


def _make(impl: str, J: int, shape, device):
    if impl == "ours":
        from explorer.scattering import Scattering2D

        return Scattering2D(J, shape).to(device)
    warnings.filterwarnings("ignore")
    from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

    return ScatteringTorch2D(J, shape).to(device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _current_rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class _PeakRSS:
    """Samples this process's resident memory every millisecond in a thread: ru_maxrss is a
    lifetime peak, which the imports (torch, scipy) already set higher than a small transform."""

    def __init__(self):
        import threading

        self.base = self.peak = _current_rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _current_rss_kib())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_kib())


def _measure(impl, J, shape, batch, device_name, repeats, queue):
    """Runs in a fresh process so that peak memory belongs to this measurement alone."""
    device = torch.device(device_name)
    x = torch.rand(batch, 3, *shape, device=device)
    scattering = _make(impl, J, shape, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_gpu = torch.cuda.memory_allocated(device)
    with _PeakRSS() as rss:  # filters (built on the first call) + one full batch
        scattering(x[:1])
        scattering(x)
        _sync(device)
    times = []  # timed without the memory sampler, whose thread would steal CPU
    for _ in range(repeats):
        start = time.perf_counter()
        scattering(x)
        _sync(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base_gpu
    else:
        peak = (rss.peak - rss.base) * 1024
    queue.put((batch / min(times), peak))


def measure(impl, J, shape, batch, device, repeats):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(impl, J, shape, batch, device, repeats, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def fft_floor(J, shape, batch, device, repeats):
    """Time of the FFT calls our transform makes, recorded on one run and replayed alone."""
    from explorer.scattering import Scattering2D

    device = torch.device(device)
    scattering = Scattering2D(J, shape).to(device)
    x = torch.rand(batch, 3, *shape, device=device)
    calls, real_fft2, real_ifft2 = [], torch.fft.fft2, torch.fft.ifft2

    def recording(fn):
        def wrapper(t, *args, **kwargs):
            calls.append((fn, t.shape, t.dtype))
            return fn(t, *args, **kwargs)
        return wrapper

    torch.fft.fft2, torch.fft.ifft2 = recording(real_fft2), recording(real_ifft2)
    try:
        scattering(x)
    finally:
        torch.fft.fft2, torch.fft.ifft2 = real_fft2, real_ifft2
    inputs = [(fn, torch.randn(s, dtype=d, device=device)) for fn, s, d in calls]
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for fn, t in inputs:
            fn(t)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return batch / best


def profile_table(J, shape, batch, device, rows: int = 15) -> str:
    """torch.profiler's operators of one warm call of our transform, by self time on the device."""
    from torch.profiler import ProfilerActivity, profile

    from explorer.scattering import Scattering2D

    device = torch.device(device)
    scattering = Scattering2D(J, shape).to(device)
    x = torch.rand(batch, 3, *shape, device=device)
    scattering(x)
    _sync(device)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        scattering(x)
        _sync(device)
    return prof.key_averages().table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total",
                                     row_limit=rows)


def filter_bank_times():
    from explorer.scattering import filters, padded_shape

    warnings.filterwarnings("ignore")
    from kymatio.scattering2d.filter_bank import filter_bank as kymatio_bank

    rows = []
    for shape, J in [((224, 224), 3), ((256, 256), 4)]:
        M, N = padded_shape(shape, J)
        ours = []
        for _ in range(3):
            filters.clear_filter_cache()
            start = time.perf_counter()
            filters.filter_bank(M, N, J, 8)
            ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        kymatio_bank(M, N, J, 8)
        theirs = time.perf_counter() - start
        rows.append((shape, J, statistics.median(ours), theirs))
    return rows


def cifar_time(device: str = "cpu"):
    from explorer.data import DatasetNotFoundError, find_cifar10, load_cifar10
    from explorer.features import FeatureConfig, compute_features

    try:
        find_cifar10()
    except DatasetNotFoundError:
        return None
    with tempfile.TemporaryDirectory() as store:
        os.environ["EXPLORER_STORE"] = store
        for split in ("train", "test"):
            load_cifar10(split)  # decode into this store's cache: we time scattering, not unpickling
        start = time.perf_counter()
        for split in ("train", "test"):
            compute_features(FeatureConfig(split=split, J=2), device=device, progress=False)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, skip the CIFAR-10 pass")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler's table of our transform per configuration, then stop")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="only this device (default: the CPU, and CUDA when present)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no usable GPU")
    devices = [args.device] if args.device else \
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.profile:
        for device in devices:
            for J, shape, batch in CONFIGS:
                batch *= CUDA_BATCH_SCALE if device == "cuda" else 1
                print(f"\n{device}, J={J}, {shape[0]}x{shape[1]}, batch {batch} RGB:")
                print(profile_table(J, shape, batch, device))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, devices: {devices}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
    header = (f"{'device':6} {'J':>2} {'size':>9} {'batch':>5} | {'ours img/s':>10} "
              f"{'kymatio':>9} {'ratio':>6} | {'ours MiB':>8} {'kym MiB':>8} | "
              f"{'FFT floor img/s':>15}")
    print(header)
    print("-" * len(header))
    for device in devices:
        target = 5.0 if device == "cuda" else 2.0
        repeats = (2 if args.quick else 4) * (5 if device == "cuda" else 1)
        for J, shape, batch in CONFIGS:
            batch *= CUDA_BATCH_SCALE if device == "cuda" else 1
            ours, ours_mem = measure("ours", J, shape, batch, device, repeats)
            theirs, theirs_mem = measure("kymatio", J, shape, batch, device, repeats)
            floor = fft_floor(J, shape, batch, device, repeats)
            ratio = ours / theirs
            flag = "ok" if ratio >= target else f"below {target:g}x"
            print(f"{device:6} {J:>2} {shape[0]:>4}x{shape[1]:<4} {batch:>5} | {ours:>10.1f} "
                  f"{theirs:>9.1f} {ratio:>5.2f}x | {ours_mem / 2**20:>8.0f} "
                  f"{theirs_mem / 2**20:>8.0f} | {floor:>15.1f}  {flag}", flush=True)
    print("\nFilter bank build (L=8), cold cache:")
    for shape, J, ours, theirs in filter_bank_times():
        flag = "ok" if ours <= theirs / 20 else "above 1/20"
        print(f"  {shape[0]}x{shape[1]} J={J}: ours {ours * 1e3:.0f} ms, Kymatio {theirs:.2f} s, "
              f"ratio {theirs / ours:.0f}x  {flag}")
    for device in devices if not args.quick else []:
        seconds = cifar_time(device)
        if seconds is None:
            print("\nCIFAR-10 pass skipped: set EXPLORER_DATA to time all 60,000 images.")
            break
        flag = "" if device == "cuda" else "ok" if seconds <= 60 else "above 60 s"
        print(f"\nCIFAR-10 on {device}, all 60,000 RGB images at J=2 (explorer scatter, to disk): "
              f"{seconds:.1f} s ({60000 / seconds:.0f} img/s)  {flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
