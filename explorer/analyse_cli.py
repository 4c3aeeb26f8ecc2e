"""``explorer analyse spectra|threshold|layers|attributes``: the angular Fourier analysis of an SLE run's
first layer W₁ (science.md §4), its re-evaluation with W₁ thresholded, the layer-wise analysis of a CNN13
(§3) and the translations along the attributes of a hierarchical CNN (§5).

``explorer analyse spectra RUN [--effective] [--json]`` prints Ω₁/ΣΩ₁ per angular frequency and a summary
of Ω₂. With ``--json`` it prints exactly this object (a stable schema for scripts)::

    {"run": "sle-…",                 # the full run id
     "weights": "W1" | "effective",  # W₁ as learned (on BN-normalised coefficients) or W₁·diag(1/σ)
     "omega1": [L fractions],        # Ω₁/ΣΩ₁, index = ω_θ1 = 0..L−1 (ω and L−ω are ±ω); sums to 1
     "omega2": [[L×L fractions]],    # Ω₂/ΣΩ₂ on the raw axes, [ω_θ1][ω_θ2]; sums to 1
     "omega2_reindexed": [[L×L]],    # Ω₂/ΣΩ₂ on the axes (θ1, θ2 − θ1), [ω_θ1][ω of θ2 − θ1]
     "L": L, "J": J}

``explorer analyse threshold RUN --keep F [--per-unit] [--band B] [--domain fourier|theta] [--limit N]
[--json]`` re-evaluates the network with W₁ thresholded (the largest fraction F of its angular-Fourier
coefficients kept, globally or per output unit; ``--band B``: the angular frequencies |ω| ≤ B only;
``--domain theta``: the same sparsity on the raw weights) on the run's full test set (10,000 images for
CIFAR-10; ``--limit N``: N images balanced over the classes), the stored weights unchanged. ``--json``
prints {"run", "keep", "mode" ("global" | "per_unit" | "band"), "domain" ("fourier" | "theta"),
"accuracy_before", "accuracy_after" (fractions), "kept", "total" (angular coefficients of orders 1 and 2),
"images", "weights": "W1", "seconds"} (+ "band" for a band limit).

``explorer analyse threshold RUN --sweep [--limit N]`` computes the accuracy against F (20 fractions) for
both domains and both modes, stores it beside the run (analysis ``threshold_sweep``; a second call reads
it back) and prints it as a table (``--json``: the sweep as `explorer.analysis.threshold.sweep` returns it).

``explorer analyse layers RUN [--svm-subset N | --full | --no-svm] [--rule talk|authors] [--k K …] [--json]``: per
depth n = 2..13 of a CNN13 run, the 1-NN and Gaussian-SVM test accuracies, the intra-class distances, the
per-class PCA spectra and the k-Local Support Vector counts (`explorer.analysis.layers`), computed once
and stored beside the run. With ``--json`` it prints exactly this object::

    {"run": "cnn13-…", "rule": "talk" | "authors",  # the LSV rule of "lsv" (explorer.analysis.lsv)
     "svm_subset": 10000 | null,                   # training images of the SVM (null: all of them)
     "test_accuracy": a,                           # the network's own test accuracy (fraction)
     "classes": [10 names], "train_images": 50000, "test_images": 10000,
     "depths": [{"depth": n,                       # 2..13
                 "nn1_accuracy": a,                # fraction of the test set
                 "svm_accuracy": a | null,         # null with --no-svm
                 "intra_class": [10 distances],    # mean distance of two distinct training points, per class
                 "pca": [[K eigenvalues] × 10],    # per class, largest first
                 "lsv": [|Γ¹|, …, |Γ³¹|]}, …]}

``explorer analyse attributes RUN [--images N] [--queries Q] [--json]``: per layer of a hierarchical-CNN
run, the translation ratio along its older attribute for the trained network and for the same network
untrained (`explorer.analysis.attributes`), on N CIFAR-10 test images (default 1,000; the 300 shipped
samples without a dataset), computed once and stored beside the run. ``--json`` prints
{"run", "test_accuracy", "images", "queries", "source", "layers": [{"layer": j, "translation": r | null,
"unshifted": c | null, "control_translation": r | null, "self": s | null}, …]} (r: the ratio, c: the best
unshifted partner's correlation; null where a layer is not measured: layer 1).
"""
from __future__ import annotations

import json

import numpy as np

from explorer.cli import add_data_option
from explorer.train_cli import add_store_option, apply_store_option

DEFAULT_SVM_SUBSET = 10_000  # explorer.analysis.layers.DEFAULT_SVM_SUBSET, without importing torch here


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyse", help="spectra and thresholding of an SLE's W₁; layer-wise analysis of a CNN13; attributes "
        "of a hierarchical CNN",
        description="Angular Fourier analysis of the first layer W₁ of a Scattering + SLE run "
        "(science.md §4), its re-evaluation with W₁ thresholded, and the layer-wise contraction and "
        "separation of a CNN13 run (§3).")
    actions = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    spectra = actions.add_parser(
        "spectra", help="Ω₁/ΣΩ₁ and Ω₂/ΣΩ₂ of W₁",
        description="Ω₁/ΣΩ₁ per angular frequency ω_θ1 (orthonormal DFT over θ1) and a summary of "
        "Ω₂/ΣΩ₂ (2-D DFT over (θ1, θ2), raw and re-indexed by (θ1, θ2 − θ1)).")
    spectra.add_argument("run", help="run id or a unique prefix of an SLE run")
    spectra.add_argument("--effective", action="store_true",
                         help="the effective weights W₁·diag(1/σ) on raw coefficients (default: W₁ as "
                         "learned, on BN-normalised coefficients)")
    _add_output_options(spectra, device=False, data=False)
    spectra.set_defaults(func=_spectra)

    threshold = actions.add_parser(
        "threshold", help="test accuracy with W₁ thresholded",
        description="Re-evaluate an SLE run on its test set with W₁ thresholded in angular Fourier "
        "(or in θ), without retraining; the stored weights never change.")
    threshold.add_argument("run", help="run id or a unique prefix of an SLE run")
    threshold.add_argument("--keep", type=float, default=None, metavar="F",
                           help="fraction of the coefficients kept, in [0, 1] (e.g. 0.2: 80%% zeroed)")
    threshold.add_argument("--per-unit", action="store_true",
                           help="keep the fraction within each output unit (default: over the whole layer)")
    threshold.add_argument("--band", type=int, default=None, metavar="B",
                           help="band limit: keep the angular frequencies |ω| ≤ B only (fourier domain)")
    threshold.add_argument("--domain", choices=["fourier", "theta"], default=None,
                           help="threshold angular-Fourier coefficients (default) or the raw weights")
    threshold.add_argument("--limit", type=int, default=None, metavar="N",
                           help="N test images balanced over the classes (a fast estimate)")
    threshold.add_argument("--sweep", action="store_true",
                           help="every fraction, both domains and both modes; stored beside the run")
    _add_output_options(threshold, data=False)
    threshold.set_defaults(func=_threshold)

    layers = actions.add_parser(
        "layers", help="contraction and separation of a CNN13, depth by depth",
        description="Per depth n = 2..13 of a CNN13 run: 1-NN and Gaussian-SVM test accuracies, "
        "intra-class distances, per-class PCA and k-Local Support Vectors (science.md §3). Computed "
        "once (features of the whole dataset, one neighbour search per depth) and stored beside the run.")
    layers.add_argument("run", help="run id or a unique prefix of a CNN13 run")
    svm = layers.add_mutually_exclusive_group()
    svm.add_argument("--svm-subset", type=int, default=DEFAULT_SVM_SUBSET, metavar="N",
                     help=f"fit the SVM on N class-balanced training images (default {DEFAULT_SVM_SUBSET:,})")
    svm.add_argument("--full", action="store_true", help="fit the SVM on every training image (slow on a CPU)")
    svm.add_argument("--no-svm", action="store_true", help="leave the SVM out")
    layers.add_argument("--rule", choices=["talk", "authors"], default="talk",
                        help="k-LSV rule: talk (default; more than k/2 of the k nearest others disagree) "
                        "or authors (a k-NN classifier, each point its own first neighbour)")
    layers.add_argument("--k", type=int, nargs="+", default=[1, 5, 31], metavar="K",
                        help="the |Γᵏ| columns of the table, k in 1..31 (default: 1 5 31)")
    _add_output_options(layers)
    layers.set_defaults(func=_layers)

    attributes = actions.add_parser(
        "attributes", help="translations along the attributes of a hierarchical CNN, layer by layer",
        description="Per layer of a hierarchical-CNN run: how well an image's best partner shifted by one "
        "position along the older attribute matches, against the best unshifted partner (the translation "
        "ratio, science.md §5), for the trained network and the same network untrained. Stored beside the run.")
    attributes.add_argument("run", help="run id or a unique prefix of an hcnn run")
    attributes.add_argument("--images", type=int, default=1000, metavar="N",
                            help="CIFAR-10 test images, balanced over the classes (default 1,000)")
    attributes.add_argument("--queries", type=int, default=200, metavar="Q",
                            help="how many of them are matched against all the others (default 200)")
    _add_output_options(attributes)
    attributes.set_defaults(func=_attributes)


def _add_output_options(parser, device: bool = True, data: bool = True) -> None:
    """The options every analysis shares: where it runs, how it prints, where its data and runs are."""
    if device:
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--json", action="store_true", help="machine-readable output (see the schema "
                        "in `python -m pydoc explorer.analyse_cli`)")
    if data:
        add_data_option(parser)
    add_store_option(parser)


# -- spectra ------------------------------------------------------------------------------------------------

def spectra_summary(run_id: str, effective: bool = False) -> dict:
    """The ``--json`` object of ``explorer analyse spectra`` (schema in the module's docstring)."""
    from explorer.analysis import spectra
    from explorer.analysis.threshold import load_sle

    run, model = load_sle(run_id, device="cpu")
    layer = spectra.first_layer(model, effective=effective)
    return {"run": run.id, "weights": "effective" if effective else "W1",
            "omega1": [float(v) for v in spectra.omega1(layer)],
            "omega2": np.asarray(spectra.omega2(layer), dtype=float).tolist(),
            "omega2_reindexed": np.asarray(spectra.omega2(layer, reindexed=True), dtype=float).tolist(),
            "L": int(layer.L), "J": int(layer.J)}


def _signed(omega: int, L: int) -> str:
    return "0" if omega == 0 else f"±{min(omega, L - omega)}" if 2 * omega != L else f"{omega}"


def _spectra(args) -> None:
    apply_store_option(args)
    summary = spectra_summary(args.run, args.effective)
    if args.json:
        print(json.dumps(summary))
        return
    L, J = summary["L"], summary["J"]
    label = ("effective weights W₁·diag(1/σ) (on raw scattering coefficients)" if args.effective
             else "W₁ as learned (on BN-normalised scattering coefficients)")
    print(f"run {summary['run']}: {label}; J={J}, L={L}")
    print("Ω₁/ΣΩ₁ (order 1, orthonormal DFT over θ1):")
    for omega, share in enumerate(summary["omega1"]):
        print(f"  ω_θ1={omega} ({_signed(omega, L):>2})  {share:7.2%}  {'█' * round(40 * share)}")
    raw, rel = np.asarray(summary["omega2"]), np.asarray(summary["omega2_reindexed"])
    line = sum(raw[a, (-a) % L] for a in range(L))
    low = rel[[w for w in range(L) if min(w, L - w) <= 1]].sum()
    print("Ω₂/ΣΩ₂ (order 2, 2-D DFT over (θ1, θ2)):")
    print(f"  re-indexed (θ1, θ2 − θ1): {rel[0].sum():.2%} at ω_θ1 = 0 (rotation invariance), "
          f"{low:.2%} at |ω_θ1| ≤ 1")
    print(f"  raw (θ1, θ2): {line:.2%} on the line ω_θ1 + ω_θ2 ≡ 0 (mod {L})")
    for name, grid in (("re-indexed", rel), ("raw", raw)):
        top = np.argsort(grid, axis=None)[::-1][:5]
        cells = ", ".join(f"({a},{b}) {grid[a, b]:.2%}" for a, b in zip(*np.unravel_index(top, grid.shape)))
        print(f"  top cells {name} (ω_θ1,ω_θ2): {cells}")


# -- threshold ------------------------------------------------------------------------------------------------

def _threshold(args) -> None:
    apply_store_option(args)
    if args.sweep:
        _sweep(args)
        return
    if args.band is not None:
        if args.keep is not None or args.per_unit:
            raise ValueError("--band B keeps the angular frequencies |ω| ≤ B: it takes no --keep or "
                             "--per-unit.")
        mode = "band"
    elif args.keep is None:
        raise ValueError("give --keep F (the fraction of W₁'s coefficients kept, in [0, 1]), --band B "
                         "or --sweep.")
    else:
        mode = "per_unit" if args.per_unit else "global"
    from explorer.analysis.threshold import threshold_accuracy

    domain = args.domain or "fourier"
    result = threshold_accuracy(args.run, args.keep, mode, domain, band=args.band if args.band is not None
                                else 1, limit=args.limit, device=args.device)
    if args.json:
        print(json.dumps(result))
        return
    where = "in angular Fourier" if domain == "fourier" else "in θ (raw weights)"
    what = (f"band limit |ω| ≤ {result['band']}" if mode == "band"
            else f"keep {100 * result['keep']:g}% ({'per output unit' if mode == 'per_unit' else 'globally'})")
    change = 100 * (result["accuracy_after"] - result["accuracy_before"]) + 0.0  # no "-0.00"
    print(f"run {result['run']}: W₁ thresholded {where}, {what}: {result['kept']} of {result['total']} "
          f"angular coefficients kept (orders 1 and 2; order 0 untouched)")
    print(f"test accuracy on {result['images']} images: before {result['accuracy_before']:.2%}, after "
          f"{result['accuracy_after']:.2%} ({change:+.2f} points; {result['seconds']:.1f} s)")


def _sweep(args) -> None:
    if args.keep is not None or args.per_unit or args.band is not None or args.domain is not None:
        raise ValueError("--sweep runs every fraction for both domains and both modes: it takes no "
                         "--keep, --per-unit, --band or --domain (only --limit).")
    from explorer.analysis.threshold import sweep

    result = sweep(args.run, limit=args.limit, progress=not args.json, device=args.device)
    if args.json:
        print(json.dumps(result))
        return
    acc = result["accuracy"]
    state = "computed and stored" if result["computed"] else "read from the store"
    print(f"run {result['run']}: threshold sweep on {result['images']} test images ({state}: "
          f"{result['path']})")
    print(f"accuracy before: {result['accuracy_before']:.2%}; band limit |ω| ≤ {result['band']}: "
          f"{result['band_accuracy']:.2%} ({result['band_kept']} of {result['total']} coefficients)")
    print(f"{'keep':>6}  {'fourier global':>14}  {'fourier per-unit':>16}  {'theta global':>12}  "
          f"{'theta per-unit':>14}")
    for i, keep in enumerate(result["fractions"]):
        print(f"{keep:>6.0%}  {acc['fourier']['global'][i]:>14.2%}  {acc['fourier']['per_unit'][i]:>16.2%}  "
              f"{acc['theta']['global'][i]:>12.2%}  {acc['theta']['per_unit'][i]:>14.2%}")


# -- layers ---------------------------------------------------------------------------------------------------

def _layers(args) -> None:
    apply_store_option(args)
    from explorer.analysis import layers, lsv

    ks = [lsv.check_k(k) for k in args.k]  # before any work
    if layers.DEFAULT_SVM_SUBSET != DEFAULT_SVM_SUBSET:
        raise AssertionError("explorer analyse layers: the CLI's default SVM subset differs from the analysis'")
    subset = None if args.full else args.svm_subset
    if subset is not None:
        layers.svm_params(subset)  # a bad --svm-subset fails before any work
    result = layers.analyse_layers(args.run, svm=not args.no_svm, svm_subset=subset, device=args.device,
                                   progress=not args.json)
    summary = layers.summary_json(result, args.rule)
    if args.json:
        print(json.dumps(summary))
        return
    state = "computed and stored" if result["computed"] else "read from the store"
    network = summary["test_accuracy"]
    print(f"run {summary['run']}: layer-wise analysis on {summary['train_images']} training and "
          f"{summary['test_images']} test images ({state})")
    if network is not None:
        print(f"the network's own test accuracy: {network:.2%}")
    svm_label = ("SVM (all)" if summary["svm_subset"] is None and result["svm_accuracy"] is not None
                 else f"SVM ({result['svm_train_images']})" if result["svm_accuracy"] is not None else "SVM")
    columns = "".join(f"  {f'|Γ^{k}|':>7}" for k in ks)
    print(f"{'depth':>5}  {'1-NN':>7}  {svm_label:>11}  {'intra-class':>11}{columns}   (LSV rule: {args.rule})")
    for row in summary["depths"]:
        svm_text = "—" if row["svm_accuracy"] is None else f"{row['svm_accuracy']:.2%}"
        intra = float(np.mean(row["intra_class"]))
        counts = "".join(f"  {row['lsv'][k - 1]:>7}" for k in ks)
        print(f"{row['depth']:>5}  {row['nn1_accuracy']:>7.2%}  {svm_text:>11}  {intra:>11.3f}{counts}")
    print("intra-class: the mean over the classes of the mean distance between two distinct training points "
          "of a class (standardised features)")


# -- attributes -------------------------------------------------------------------------------------------

def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def _attributes(args) -> None:
    apply_store_option(args)
    from explorer.analysis import attributes

    attributes.translations_params(args.images, args.queries)  # bad counts fail before any work
    result = attributes.analyse_attributes(args.run, images=args.images, queries=args.queries,
                                           device=args.device, progress=not args.json)
    self_shifted = result["self"][:, [0, -1]].mean(axis=1)  # NaN where a layer is not measured
    rows = [{"layer": int(layer), "translation": _number(result["translation"][i]),
             "unshifted": _number(result["unshifted"][i]),
             "control_translation": _number(result["control_translation"][i]),
             "self": _number(self_shifted[i])}
            for i, layer in enumerate(result["layers"])]
    if args.json:
        print(json.dumps({"run": result["run"], "test_accuracy": result["test_accuracy"], "images": result["images"],
                          "queries": result["queries"], "source": result["source"], "layers": rows}))
        return
    state = "computed and stored" if result["computed"] else "read from the store"
    print(f"run {result['run']}: translations along the older attribute, {result['queries']} queries among "
          f"{result['images']} images ({result['source']}; {state})")
    if result["test_accuracy"] is not None:
        print(f"the network's own test accuracy: {result['test_accuracy']:.2%}")
    keys = ("translation", "unshifted", "control_translation", "self")
    print(f"{'layer':>5}  {'ratio':>8}  {'unshifted':>9}  {'untrained':>12}  {'self ±1':>7}")
    for row in rows:
        cells = ["—" if row[key] is None else f"{row[key]:.3f}" for key in keys]
        print(f"{row['layer']:>5}  {cells[0]:>8}  {cells[1]:>9}  {cells[2]:>12}  {cells[3]:>7}")
    print("ratio: how well an image's best partner shifted by ±1 along the older attribute correlates, over how well "
          "its best unshifted partner does (unshifted: that correlation); untrained: the ratio of the same network "
          "untrained; self ±1: an image's map against itself shifted (near 1: maps that hardly change along the "
          "attribute, so a ratio near 1 means invariance rather than translations between images).")
