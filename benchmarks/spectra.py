"""Speed of the SLE spectra and thresholding analysis (issue 12's targets), each against its reference
measured in the same run.

    python benchmarks/spectra.py                 # all three parts
    python benchmarks/spectra.py --skip-browser  # no Chromium
    python benchmarks/spectra.py --points 20 --images 10000

1. Live re-evaluation: one thresholded W₁ (keep 0.2, global, fourier; the DFT, the mask, the inverse and
   the swap included) evaluated on the run's test features, against a plain inference pass of the same
   model on the same features. Target: within 10 % of it (ratio ≤ 1.10). Also the class-balanced
   2,000-image estimate the page shows first (target ≤ 2 s).
2. A 20-point sweep (one curve: fourier, global, f = 0.05 … 1) on the same features. Target: ≤ 3 min on the
   2-core CPU; printed as a ratio to 20 plain inference passes too.
3. Slider latency in headless Chromium on the Spectra (rank slider) and Thresholding (kept-fraction slider)
   pages, as `benchmarks/app_latency.py` measures it (key press → every plot the slider drives shows its
   new title). Target: median ≤ 300 ms.

Parts 1 and 2 read the stored CIFAR-10 test features of the run's (J, L) (`explorer scatter --split test`;
computed here once, with a progress bar, when EXPLORER_DATA is set and they are missing); without a
dataset they fall back to the 300 shipped test images (and say so). Times are wall-clock medians of
--repeats runs on whatever device `resolve_device` picks (CUDA when present).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = "sle-695ad4593697"


def _features(run_id: str, images: int | None):
    """DeviceData of the run's test features (stored CIFAR-10 ones when possible) and a description."""
    from explorer.analysis import threshold as th
    from explorer.features import FeatureConfig, compute_features
    from explorer.training.data import DeviceData, Split, select
    from explorer.training.trainer import resolve_device

    run = th._load_run(run_id)
    J, L = run.config["model_config"]["J"], run.config["model_config"]["L"]
    device = resolve_device(None)
    try:
        from explorer.data import DatasetNotFoundError, load_cifar10

        labels = load_cifar10("test").labels
        features, _ = compute_features(FeatureConfig("cifar10", "test", J, L), progress=True)
        split, source = Split(features, labels), "stored CIFAR-10 test features"
    except DatasetNotFoundError:
        split, source = th.sample_features(run)
    if images is not None and images < len(split.y):
        split = select(split, None, images)
    return DeviceData(split, device), f"{len(split.y):,} images ({source}) on {device}"


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reevaluation(run_id: str, images: int | None, repeats: int) -> None:
    from explorer.analysis import threshold as th

    data, what = _features(run_id, images)
    _, model = th.load_sle(run_id, data.device)
    th._accuracy(model, data)  # warm-up: allocations, kernels

    def thresholded():
        weight = th.thresholded_weights(model, 0.2, "global", "fourier")
        with model.replaced_first_layer(weight):
            return th._accuracy(model, data)

    plain = _median_time(lambda: th._accuracy(model, data), repeats)
    live = _median_time(thresholded, repeats)
    print(f"1. re-evaluation on {what}")
    print(f"   plain inference {plain:.2f} s | thresholded (keep 0.2) {live:.2f} s | ratio {live / plain:.3f} "
          f"(target ≤ 1.10)")
    small, small_what = _features(run_id, 2000)
    th._accuracy(model, small)
    estimate = _median_time(lambda: th._accuracy(model, small), repeats)
    print(f"   2,000-image estimate ({small_what}): {estimate:.2f} s (target ≤ 2 s)")


def sweep_time(run_id: str, images: int | None, points: int) -> None:
    import numpy as np

    from explorer.analysis import threshold as th

    data, what = _features(run_id, images)
    _, model = th.load_sle(run_id, data.device)
    th._accuracy(model, data)
    plain = _median_time(lambda: th._accuracy(model, data), 1)
    fractions = np.linspace(1.0 / points, 1.0, points)
    t = time.perf_counter()
    accuracies = []
    for keep in fractions:
        with model.replaced_first_layer(th.thresholded_weights(model, float(keep), "global", "fourier")):
            accuracies.append(th._accuracy(model, data))
    seconds = time.perf_counter() - t
    print(f"2. {points}-point sweep (fourier, global) on {what}: {seconds:.1f} s (target ≤ 180 s); "
          f"{seconds / (points * plain):.3f} × {points} plain passes; accuracy {accuracies[0]:.2%} at "
          f"f = {fractions[0]:.2f} … {accuracies[-1]:.2%} at f = 1")


# name, slug, slider label, title prefixes of the plots the slider drives (app_latency's conventions)
SLIDER_PAGES = [
    ("spectra", "spectra", "Rank", ["Invariance of", "Unit "], ["tab:Units by invariance"]),
    ("thresholding", "thresholding", "Kept fraction", ["Ω₁/ΣΩ₁ thresholded"], []),
]


def slider_latency(presses: int) -> None:
    from playwright.sync_api import sync_playwright

    from benchmarks.app_latency import latency_row, measure_page
    from tests.browser.conftest import CHROMIUM_ARGS, free_port, start_server, stop_server

    proc = start_server(port := free_port())
    url = f"http://127.0.0.1:{port}/app"
    print("3. slider latency in headless Chromium (ms; key press → every driven plot re-titled)")
    print(f"   {'page':<13} {'first render':>12} {'n':>3} {'median':>8} {'p90':>8} {'max':>8}")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.set_default_timeout(90_000)
            for name, slug, label, prefixes, setup in SLIDER_PAGES:
                first, lat = measure_page(page, url, slug, label, prefixes, setup, presses, 0)
                print("   " + latency_row(name, first, lat, width=13) + "   (target: median ≤ 300)")
            browser.close()
    finally:
        stop_server(proc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=RUN, help=f"an SLE-like run (default: the shipped {RUN})")
    parser.add_argument("--images", type=int, default=None, help="test images (default: all of them)")
    parser.add_argument("--points", type=int, default=20, help="points of the timed sweep (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each evaluation")
    parser.add_argument("--presses", type=int, default=15, help="slider key presses per page")
    parser.add_argument("--skip-browser", action="store_true", help="skip the Chromium slider latencies")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the timed sweep")
    args = parser.parse_args(argv)

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    reevaluation(args.run, args.images, args.repeats)
    if not args.skip_sweep:
        sweep_time(args.run, args.images, args.points)
    if not args.skip_browser:
        slider_latency(args.presses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
