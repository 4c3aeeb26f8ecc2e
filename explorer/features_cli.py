"""``explorer scatter``: scatter a whole dataset once and store the features for reuse."""
from __future__ import annotations

from explorer.cli import add_data_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "scatter", help="compute and store scattering features of a dataset",
        description="Scatter every image of a dataset (each colour channel separately) with a "
        "progress bar and store the features memory-mapped in the store, keyed by the producer "
        "(translation scattering: J, L, order; roto-translation scattering: J, L, wavelets per "
        "octave, angular scales), dataset, split, dtype, image size and colour space. Stored "
        "features are reused unless --overwrite. Under torchrun (torchrun --nproc_per_node N -m "
        "explorer scatter ...) the ranks share the chunks of images and rank 0 writes the features, "
        "identical to one process's.")
    add_data_option(parser)
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10"])
    parser.add_argument("--split", default="all", choices=["train", "test", "all"])
    parser.add_argument("--J", type=int, default=2, help="scale 2^J of the averaging (default 2)")
    parser.add_argument("--L", type=int, default=8, help="number of angles (default 8)")
    parser.add_argument("--max-order", type=int, default=2, choices=[1, 2],
                        help="highest order of the translation scattering (default 2; the roto "
                        "producer always has orders 0 to 2)")
    parser.add_argument("--producer", default="scattering", choices=["scattering", "roto"],
                        help="scattering: the translation scattering (default); roto: the separable "
                        "roto-translation scattering of Oyallon & Mallat (CVPR 2015)")
    parser.add_argument("--wavelets-per-octave", type=int, default=None, metavar="Q",
                        help="roto producer only: spatial wavelets per octave (default 1; the "
                        "paper uses 2)")
    parser.add_argument("--angular-scales", type=int, default=None, metavar="K",
                        help="roto producer only: angular wavelet scales along θ1 (default 2)")
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
    from explorer.training.distributed import is_main

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {args.batch_size}.")
    roto_options = {"wavelets_per_octave": args.wavelets_per_octave,
                    "angular_scales": args.angular_scales}
    given = [f"--{name.replace('_', '-')}" for name, value in roto_options.items() if value is not None]
    if args.producer != "roto" and given:
        raise ValueError(f"{' and '.join(given)} only apply to the roto-translation scattering; "
                         f"add --producer roto, or leave them out.")
    if args.producer == "roto" and args.max_order != 2:
        raise ValueError("the roto-translation scattering always has orders 0 to 2; leave out "
                         "--max-order with --producer roto.")
    roto_options = {name: value for name, value in roto_options.items() if value is not None}
    splits = ("train", "test") if args.split == "all" else (args.split,)
    for split in splits:
        config = FeatureConfig(args.dataset, split, args.J, args.L, args.max_order, args.dtype,
                               producer=args.producer, image_size=args.image_size,
                               colour=args.colour, **roto_options)
        features, meta = compute_features(config, device=args.device,
                                          batch_size=args.batch_size, overwrite=args.overwrite)
        if is_main():  # under torchrun, rank 0 speaks for every rank
            others = f" and {meta['world_size'] - 1} more rank(s)" if "world_size" in meta else ""
            print(f"{config.key}: {features.shape} {features.dtype} in {config.folder} "
                  f"(computed in {meta['seconds']:.1f} s on {meta['device']}{others})")
