"""``explorer scatter``: scatter a whole dataset once and store the features for reuse."""
from __future__ import annotations

from explorer.cli import add_data_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "scatter", help="compute and store scattering features of a dataset",
        description="Scatter every image of a dataset (each RGB channel separately) with a "
        "progress bar and store the features memory-mapped in the store, keyed by dataset, "
        "split, J, L, order, dtype, image size and colour space. Stored features are reused unless --overwrite.")
    add_data_option(parser)
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10"])
    parser.add_argument("--split", default="all", choices=["train", "test", "all"])
    parser.add_argument("--J", type=int, default=2, help="scale 2^J of the averaging (default 2)")
    parser.add_argument("--L", type=int, default=8, help="number of angles (default 8)")
    parser.add_argument("--max-order", type=int, default=2, choices=[1, 2])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                        help="resize the images to PIXELS×PIXELS first (default: the dataset's own, "
                        "32)")
    parser.add_argument("--colour", default="rgb", choices=["rgb", "yuv", "gray"],
                        help="colour space of the scattered channels (default rgb)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--overwrite", action="store_true", help="recompute stored features")
    parser.set_defaults(func=_scatter)


def _scatter(args) -> None:
    from explorer.features import FeatureConfig, compute_features

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {args.batch_size}.")
    splits = ("train", "test") if args.split == "all" else (args.split,)
    for split in splits:
        config = FeatureConfig(args.dataset, split, args.J, args.L, args.max_order, args.dtype,
                               image_size=args.image_size, colour=args.colour)
        features, meta = compute_features(config, device=args.device,
                                          batch_size=args.batch_size, overwrite=args.overwrite)
        print(f"{config.key}: {features.shape} {features.dtype} in {config.folder} "
              f"(computed in {meta['seconds']:.1f} s on {meta['device']})")
