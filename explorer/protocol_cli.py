"""``explorer protocol small-data …``: the small-sample grid (science.md §4), resumable, summarised over
seeds; ``explorer protocol show`` prints the stored summaries."""
from __future__ import annotations

from explorer.cli import add_data_option


def add_parser(subparsers) -> None:
    from explorer.protocols import SEEDS, SIZES
    from explorer.train_cli import add_store_option

    parser = subparsers.add_parser(
        "protocol", help="run an experimental protocol (the small-sample grid) into the run store",
        description="Experimental protocols: grids of training runs, summarised over seeds.")
    protocols = parser.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    grid = protocols.add_parser(
        "small-data", help="train each model on 100 / 500 / 1000 images, seeds 1–5, full test set",
        description="The small-sample protocol of Oyallon et al. (ICCV 2017): each model trained on n images "
        "(n/10 per class, the authors' per-class permutation by seed), evaluated on the full test set; "
        "mean ± std over seeds stored in <store>/protocols/small-data/. Resumable: run the same command "
        "again to continue a stopped grid (finished runs are reused).")
    add_data_option(grid)
    add_store_option(grid)
    grid.add_argument("--models", nargs="+", default=["scat_linear"], metavar="MODEL",
                      help="registered models (default scat_linear), e.g. scat_wrn wrn cnn13")
    grid.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), metavar="N",
                      help=f"training-set sizes (default {' '.join(map(str, SIZES))})")
    grid.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS), metavar="S",
                      help=f"seeds of the subsets and initialisations (default {' '.join(map(str, SEEDS))})")
    grid.add_argument("--schedule", default="quick", choices=["quick", "paper"],
                      help="quick (small-quick: 10 epochs of 5 passes, for a CPU; default) or paper "
                      "(small-paper: 200 epochs of 20 passes, lr × 0.2 at 60/120/160)")
    grid.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    grid.add_argument("--limit-test", type=int, default=None, metavar="N",
                      help="evaluate on N test images only (smoke tests; the protocol uses all)")
    grid.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    grid.add_argument("--no-progress", action="store_true", help="no progress bars")
    grid.set_defaults(func=_small_data)

    show = protocols.add_parser("show", help="print the stored protocol summaries")
    add_store_option(show)
    show.set_defaults(func=_show)


def _small_data(args) -> None:
    from explorer.protocols import SmallDataGrid, run_grid
    from explorer.train_cli import apply_store_option

    apply_store_option(args)
    grid = SmallDataGrid(models=args.models, sizes=args.sizes, seeds=args.seeds, schedule=args.schedule,
                         dataset=args.dataset, limit_test=args.limit_test)
    summary = run_grid(grid, device=args.device, progress=not args.no_progress)
    print(format_summary(summary))


def _show(args) -> None:
    from explorer.protocols import list_summaries
    from explorer.train_cli import apply_store_option

    apply_store_option(args)
    summaries = list_summaries()
    if not summaries:
        print("no protocol summary stored yet; run `explorer protocol small-data`.")
    for summary in summaries:
        print(format_summary(summary))


def format_summary(summary: dict) -> str:
    """The grid as a table: one line per (model, n), mean ± std over the finished seeds."""
    grid = summary["grid"]
    title = (f"small-data grid {summary['id']} ({summary['schedule']}, {grid['dataset']}, "
             f"seeds {' '.join(map(str, grid['seeds']))})")
    lines = [title]
    for row in summary["rows"]:
        if row["mean"] is None:
            result = "not run yet"
        else:
            times = [t for t in row["seconds"] if t is not None]
            result = (f"{row['mean']:.2%} ± {row['std']:.2%} over {row['finished']}/{len(row['seeds'])} seeds, "
                      f"{sum(times) / len(times):.0f} s per run")
        lines.append(f"  {row['describe'] or row['model']:<40} n={row['n']:<6} {result}")
    return "\n".join(lines)
