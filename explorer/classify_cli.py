"""``explorer classify svm|list|predict``: the Gaussian-SVM classification of scattering features of
Oyallon & Mallat (CVPR 2015), roto-translation against translation scattering (`explorer.classify`)."""
from __future__ import annotations

import json

from explorer.cli import add_data_option
from explorer.train_cli import add_store_option, apply_store_option

REPRESENTATION_CHOICES = ("roto", "translation", "both")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "classify", help="Gaussian-SVM classification of scattering features (CVPR 2015)",
        description="Classify CIFAR-10 with scattering features (YUV, each channel scattered), "
        "log(|S| + 1e-6), standardisation and a Gaussian-kernel SVM (C = 50, σ = mean norm of the "
        "standardised training vectors, one-vs-all), as Oyallon & Mallat's roto-translation "
        "scattering paper; results go to EXPLORER_STORE/classify.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    run = actions.add_parser(
        "svm", help="fit, evaluate and store the SVMs, then compare the representations",
        description="For each representation (roto-translation and translation scattering at the "
        "same J and image size) and each method: 'exact' fits the kernel SVM on a class-balanced "
        "subset of the training split (--subset-per-class images of every class, drawn with "
        "--seed); 'nystroem' fits Nyström features (--components landmarks) and a linear SVM on "
        "the whole training split, and measures its gap to the exact SVM on that same subset. "
        "Missing features are computed first (with a progress bar); results of the same "
        "configuration are reused unless --overwrite. Prints a table comparing the results.")
    add_data_option(run)
    add_store_option(run)
    run.add_argument("--scattering", default="both", choices=REPRESENTATION_CHOICES,
                     help="roto (roto-translation scattering), translation (Scattering2D, order 2) "
                     "or both (default)")
    run.add_argument("--J", type=int, default=3, help="scale 2^J of the averaging (default 3; the "
                     "paper's CIFAR setting is 4 at 64 pixels)")
    run.add_argument("--image-size", type=int, default=32, metavar="PIXELS",
                     help="images resized to PIXELS×PIXELS before scattering (default 32)")
    run.add_argument("--L", type=int, default=8, help="number of angles (default 8)")
    run.add_argument("--wavelets-per-octave", type=int, default=1, metavar="Q",
                     help="roto-translation scattering: spatial wavelets per octave (default 1)")
    run.add_argument("--angular-scales", type=int, default=2, metavar="K",
                     help="roto-translation scattering: angular wavelet scales (default 2)")
    run.add_argument("--methods", default="exact,nystroem", metavar="LIST",
                     help="comma-separated, among exact and nystroem (default both; nystroem also "
                     "needs the exact result of its subset for its gap, and computes it if missing)")
    run.add_argument("--subset-per-class", type=int, default=1000, metavar="N",
                     help="training images per class of the exact SVM and of the gap (default 1000)")
    run.add_argument("--components", type=int, default=2048, metavar="M",
                     help="Nyström landmarks (default 2048)")
    run.add_argument("--seed", type=int, default=0,
                     help="draws the subset and the Nyström landmarks (default 0)")
    run.add_argument("--C", type=float, default=50.0, help="SVM regularisation (default 50, the paper's)")
    run.add_argument("--test-limit", type=int, default=None, metavar="N",
                     help="evaluate on N test images spread evenly over the classes (default: all "
                     "10,000)")
    run.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    run.add_argument("--batch-size", type=int, default=512, help="images per batch of the "
                     "feature computation (default 512)")
    run.add_argument("--overwrite", action="store_true", help="recompute stored results")
    run.add_argument("--json", action="store_true", help="print the comparison as JSON")
    run.set_defaults(func=_svm)

    listing = actions.add_parser("list", help="the stored results, newest first",
                                 description="One line per stored result, newest first; damaged "
                                 "folders are listed with the reason.")
    add_store_option(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)

    again = actions.add_parser(
        "predict", help="reproduce a stored result's test predictions from its stored model",
        description="Reload a result's model (no refit) and the stored features, recompute its "
        "test predictions and compare them with the stored ones.")
    again.add_argument("id", help="result id (explorer classify list)")
    add_data_option(again)
    add_store_option(again)
    again.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    again.set_defaults(func=_predict)


def _methods(text: str) -> list[str]:
    from explorer.classify.settings import METHODS

    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METHODS]
    if unknown or not wanted:
        raise ValueError(f"--methods takes a comma-separated list of {' and '.join(METHODS)}, got "
                         f"{text!r}.")
    return [m for m in METHODS if m in wanted]  # exact first: the Nyström gap reuses its result


def _svm(args) -> int:
    from explorer.classify.pipeline import check_inputs, classify, load_split
    from explorer.classify.results import comparison_table
    from explorer.classify.settings import ClassifySettings

    apply_store_option(args)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {args.batch_size}.")
    representations = (["roto", "translation"] if args.scattering == "both" else [args.scattering])
    methods = _methods(args.methods)
    runs = []
    for representation in representations:
        roto = ({"wavelets_per_octave": args.wavelets_per_octave,
                 "angular_scales": args.angular_scales} if representation == "roto" else {})
        for method in methods:
            runs.append(ClassifySettings(
                representation=representation, method=method, J=args.J, image_size=args.image_size,
                L=args.L, subset_per_class=args.subset_per_class, components=args.components,
                seed=args.seed, C=args.C, test_limit=args.test_limit, **roto))
    _check_sizes(runs, args)  # before any feature is computed: a bad size says so at once
    results = []
    for representation in representations:
        mine = [s for s in runs if s.representation == representation]
        options = {"data": getattr(args, "data", None), "compute": True, "device": args.device,
                   "batch_size": args.batch_size}
        train = load_split(mine[0], "train", **options)
        test = load_split(mine[0], "test", **options)
        for settings in mine:
            check_inputs(settings, train, test)
            results.append(classify(settings, train=train, test=test, device=args.device,
                                    overwrite=args.overwrite))
    order = [(s.representation, s.method) for s in runs]  # as asked: roto first, exact first
    rows = sorted(comparison_table(results), key=lambda r: order.index((r["representation"], r["method"])))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows))
    return 0


def _check_sizes(runs, args) -> None:
    """The size checks of `check_inputs` on the dataset's labels alone (no features needed)."""
    import numpy as np

    from explorer.classify.pipeline import LabelledFeatures, check_inputs
    from explorer.data import load_cifar10

    splits = {}
    for split in ("train", "test"):
        data = load_cifar10(split, getattr(args, "data", None))
        # Stand-in features of the right length: only the sizes are checked here.
        stand_in = np.broadcast_to(np.zeros(1, np.float32), (len(data.labels), 1))
        splits[split] = LabelledFeatures(stand_in, data.labels, split, tuple(data.classes))
    for settings in runs:
        check_inputs(settings, splits["train"], splits["test"])


def format_table(rows: list[dict]) -> str:
    """The comparison as text: one line per representation and method, and the paper's figure."""
    from explorer.classify.results import results_dir
    from explorer.classify.settings import PAPER_REFERENCE

    def percent(value):
        return "-" if value is None else f"{100 * value:.2f} %"

    header = (f"{'representation':<15}{'method':<10}{'test acc':>10}{'train acc':>11}  "
              f"{'fitted on':<26}{'gap':>11}{'σ':>9}{'seconds':>9}  id")
    lines = [header]
    for row in rows:
        if row["method"] == "exact":
            fitted = f"{row['train_size']} ({row['subset_per_class']}/class, seed {row['subset_seed']})"
        else:
            fitted = f"{row['train_size']}, {row['components']} landmarks"
        gap = "-" if row["gap"] is None else f"{100 * row['gap']:+.2f} pts"
        sigma = "-" if row["sigma"] is None else f"{row['sigma']:.1f}"
        lines.append(f"{row['representation']:<15}{row['method']:<10}{percent(row['test_accuracy']):>10}"
                     f"{percent(row['train_accuracy']):>11}  {fitted:<26}{gap:>11}{sigma:>9}"
                     f"{row['seconds']:>9.1f}  {row['id']}{' (shipped)' if row.get('shipped') else ''}")
    if rows:
        tested = {row["test_size"] for row in rows}
        lines.append(f"test images: {', '.join(str(t) for t in sorted(tested))}; gap: exact SVM minus "
                     f"Nyström + linear SVM, both fitted on the subset.")
    lines.append(f"reference: {PAPER_REFERENCE['source']}.")
    lines.append(f"results in {results_dir()}"
                 + ("; (shipped): computed on the project's machine, shipped without the model"
                    if any(row.get("shipped") for row in rows) else ""))
    return "\n".join(lines)


def _list(args) -> None:
    from explorer.classify.results import comparison_table, damaged_results, list_results

    apply_store_option(args)
    results = list_results()
    damaged = damaged_results()
    rows = comparison_table(results, by=("id",))
    if args.json:
        print(json.dumps({"results": rows, "damaged": [{"id": d.id, "reason": d.reason}
                                                       for d in damaged]}, indent=1))
        return
    print(format_table(rows))
    for d in damaged:
        print(f"damaged: {d.id}: {d.reason}")


def _predict(args) -> int:
    from explorer.classify.pipeline import predict

    apply_store_option(args)
    found = predict(args.id, data=getattr(args, "data", None), device=args.device)
    same = "all equal to the stored ones" if found.matches_stored else "NOT equal to the stored ones"
    print(f"{args.id}: test accuracy {100 * found.accuracy:.2f} % on {len(found.predictions)} images "
          f"(stored: {100 * found.stored_accuracy:.2f} %); predictions {same}.")
    return 0 if found.matches_stored else 1
