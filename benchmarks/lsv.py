"""The layer-wise analysis of a CNN13 (explorer.analysis.layers): its cost, and its one neighbour
search per depth against the authors' recipe.

    python benchmarks/lsv.py                        # the shipped ReLU K=32 run, 2 depths vs the recipe
    python benchmarks/lsv.py --run cnn13-… --depths 4 13 --device cuda
    python benchmarks/lsv.py --whole                # also: the whole analysis, SVM left out, timed

Needs CIFAR-10 (EXPLORER_DATA or --data). For each depth asked, on the same standardised features
(50,000 training and 10,000 test images):
- ours: one exact search of 32 neighbours of every training point and 1 of every test point, then the
  1-NN accuracy and |Γᵏ| for k = 1..31 under both rules (`neighbour_measures`);
- the authors' recipe: a scikit-learn `KNeighborsClassifier(k)` fitted on all training features and
  applied to them once per k = 2..31 (30 times), plus a 1-NN fitted and scored on the test set.
It prints both times, their ratio (target: ours ≥ 10× faster) and whether the counts are identical
(they must be). ``--whole`` times `analyse_layers(..., svm=False)` end to end, features included, in a
temporary store (target: ≤ 3 minutes on the 2-core CPU).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from explorer.analysis import layers
from explorer.config import default_device
from explorer.runs import RunStore

SHIPPED_RELU = "cnn13-44da76659d19"


def authors_recipe(train, train_y, test, test_y) -> tuple[float, np.ndarray]:
    """1-NN test accuracy and |Γᵏ| (k = 1..31, the authors' rule), one classifier per k."""
    nn1 = KNeighborsClassifier(n_neighbors=1).fit(train, train_y).score(test, test_y)
    member = np.ones(len(train_y), dtype=bool)
    counts = [len(train_y)]
    for k in range(2, 32):
        member &= KNeighborsClassifier(n_neighbors=k).fit(train, train_y).predict(train) != train_y
        counts.append(int(member.sum()))
    return float(nn1), np.asarray(counts)


def features(run_id: str, device) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    from explorer.data import load_cifar10

    run = layers.load_cnn13(run_id)
    train, test = load_cifar10("train"), load_cifar10("test")
    started = time.perf_counter()
    model = run.build_model(device)
    x_train = layers.layer_features(model, train.images, device)
    x_test = layers.layer_features(model, test.images, device)
    seconds = time.perf_counter() - started
    x_train, x_test = layers.standardise(x_train, x_test)
    return x_train, train.labels, x_test, test.labels, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=SHIPPED_RELU, help="a CNN13 run (default: the shipped ReLU K=32)")
    parser.add_argument("--depths", type=int, nargs="+", default=[7, 13], help="depths to compare (2..13)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--data", default=None, help="CIFAR-10 folder or archive (overrides EXPLORER_DATA)")
    parser.add_argument("--whole", action="store_true", help="also time the whole analysis (SVM left out)")
    args = parser.parse_args()
    if args.data:
        os.environ["EXPLORER_DATA"] = args.data
    device = torch.device(args.device) if args.device else default_device()
    print(f"device {device}; torch threads {torch.get_num_threads()}; run {args.run}")

    x_train, y_train, x_test, y_test, seconds = features(args.run, device)
    print(f"features of 60,000 images at 12 depths (one pass): {seconds:.1f} s")
    for depth in args.depths:
        train, test = x_train[:, depth - 2], x_test[:, depth - 2]
        started = time.perf_counter()
        ours = layers.neighbour_measures(train, y_train, test, y_test, device)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        nn1, counts = authors_recipe(train.astype(np.float64), y_train, test.astype(np.float64), y_test)
        recipe_s = time.perf_counter() - started
        same = bool(np.array_equal(counts, ours["lsv_authors"]) and nn1 == ours["nn1_accuracy"])
        print(f"depth {depth:2d}: ours {ours_s:6.1f} s, authors' recipe {recipe_s:6.1f} s, "
              f"ratio {recipe_s / ours_s:5.1f}× (target ≥ 10×); identical counts and 1-NN: {same}; "
              f"1-NN {ours['nn1_accuracy']:.2%}, |Γ¹| talk {ours['lsv_talk'][0]}, "
              f"|Γ³¹| authors {ours['lsv_authors'][-1]}")
    if args.whole:
        with tempfile.TemporaryDirectory() as folder:  # a copy of the run without its stored analyses
            source = RunStore().locate(RunStore().resolve(args.run))
            store = RunStore(folder, shipped=False)
            shutil.copytree(source, store.path(source.name), ignore=shutil.ignore_patterns("analysis.*"))
            started = time.perf_counter()
            layers.analyse_layers(source.name, svm=False, store=store, device=device, progress=True)
            print(f"whole analysis, SVM left out, features included: {time.perf_counter() - started:.1f} s "
                  "(target ≤ 180 s on the 2-core CPU)")


if __name__ == "__main__":
    main()
