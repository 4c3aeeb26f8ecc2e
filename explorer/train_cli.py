"""``explorer train MODEL`` (each model of `explorer.nets.registry`): train a network into the run
store, with a progress bar, one line per epoch and a checkpoint each epoch (``--resume``
continues a killed run)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from explorer.cli import add_data_option

SCHEDULE_HELP = ("paper (SGD lr 0.25 halved every 10k steps, wd 2e-4, 310 epochs), quick (one-cycle "
                 "lr 0.15, wd 5e-4, 30 epochs), sle (one-cycle lr 0.05, 30 epochs), hybrid (one-cycle lr "
                 "0.1, 30 epochs), hybrid-linear (the same at lr 0.01), small-paper (200 epochs of 20 passes, lr 0.1 × 0.2 at 60/120/160) or "
                 "small-quick (10 epochs of 5 passes), hcnn-paper (the hierarchical CNN's recipe: batch 50, lr 0.35 "
                 "stepped down, 320 epochs) or hcnn-quick (one-cycle lr 0.1, batch 64, 40 epochs); default: {default}")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="run and feature store (overrides EXPLORER_STORE)")


def apply_store_option(args) -> None:
    if getattr(args, "store", None):
        from explorer.config import STORE_ENV

        os.environ[STORE_ENV] = str(args.store)


def add_parser(subparsers) -> None:
    from explorer.nets import registry

    parser = subparsers.add_parser(
        "train", help=f"train {' or '.join(registry.names())} into the run store",
        description="Train a network on CIFAR-10 (or the tiny synthetic set) into the run store. "
        "The run's folder is named by a hash of its full configuration; an identical "
        "configuration reuses it (a complete run is not trained again).")
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True)
    for name in registry.names():  # each model's own options, from its registry entry
        spec = registry.get(name)
        model_parser = models.add_parser(name, help=spec.summary, description=spec.description)
        for option in spec.cli_options:
            option.add_to(model_parser)
        _add_common(model_parser, spec.default_schedule)


def _add_common(parser: argparse.ArgumentParser, default_schedule: str) -> None:
    add_data_option(parser)
    add_store_option(parser)
    parser.add_argument("--dataset", default="cifar10",
                        help="cifar10 (default) or synthetic (noisy stripes, 2 classes, 2048 training and "
                        "512 test images: a smoke test)")
    parser.add_argument("--schedule", default=None, help=SCHEDULE_HELP.format(default=default_schedule))
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the schedule's)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the schedule's (128)")
    parser.add_argument("--lr", type=float, default=None, help="override the schedule's peak lr")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="train on a balanced subset of N images (N/classes per class)")
    parser.add_argument("--subset-seed", type=int, default=1, help="seed of --subset (default 1)")
    parser.add_argument("--limit-train", type=int, default=None, metavar="N",
                        help="train on N images only, balanced over the classes (quick runs)")
    parser.add_argument("--limit-test", type=int, default=None, metavar="N",
                        help="evaluate on N test images only, balanced over the classes (quick runs)")
    parser.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    parser.add_argument("--crop-padding", type=int, default=None, metavar="P",
                        help="random crop of the image padded by P pixels; for models on scattering "
                        "features, a shift of the maps by up to P positions (2^J pixels each); "
                        "default: the model's")
    parser.add_argument("--padding-mode", default=None, choices=["zeros", "reflect"],
                        help="padding of the crop (default: the model's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run that stopped before its last epoch")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (epoch lines are still printed)")
    parser.set_defaults(func=_train)


def config_from_args(args) -> dict:
    from explorer.nets import registry
    from explorer.training import make_config

    model_config = registry.get(args.model).config_from_cli(args)
    subset = {"n": args.subset, "seed": args.subset_seed} if args.subset is not None else None
    augment = {key: value for key, value in (("flip", False if args.no_flip else None),
                                             ("crop_padding", getattr(args, "crop_padding", None)),
                                             ("padding_mode", getattr(args, "padding_mode", None)))
               if value is not None} or None
    return make_config(args.model, schedule=args.schedule, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       dataset=args.dataset, subset=subset, limit_train=args.limit_train,
                       limit_test=args.limit_test, augment=augment, **model_config)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def _train(args) -> None:
    apply_store_option(args)
    config = config_from_args(args)  # validates before torch sees any data

    from explorer.runs import RunStore
    from explorer.training import train
    from explorer.training.distributed import is_main

    store = RunStore()
    on_epoch = None
    if args.no_progress:  # no bar, but still one line per epoch (for logs)
        from explorer.training.trainer import format_epoch

        def on_epoch(record):
            print(format_epoch(record, config["epochs"]), flush=True)

    # SIGTERM (a cancelled job) unwinds like an exception, so the run's lock is released on the way out
    # and the next job does not have to judge the lock stale; finished epochs stay checkpointed.
    in_main_thread = threading.current_thread() is threading.main_thread()  # where handlers may be set
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if in_main_thread else None
    try:
        run = train(config, store=store, resume=args.resume, progress=not args.no_progress,
                    on_epoch=on_epoch, device=args.device)
    except SystemExit:
        print("explorer train: stopped by SIGTERM; the run keeps its finished epochs "
              "(continue it with --resume).", file=sys.stderr, flush=True)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    if not is_main():  # under torchrun, rank 0 reports (the other ranks may not see the store)
        return
    last = run.metrics[-1]
    print(f"{run.id}: test accuracy {last['test_acc']:.2%} after {last['epoch']} epochs ({run.path})")
