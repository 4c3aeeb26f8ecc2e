"""``explorer data info|download``: where CIFAR-10 is, what it holds, and fetching it."""

from __future__ import annotations

from explorer.cli import add_data_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="find, describe or download CIFAR-10", description="Find, describe or download CIFAR-10."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="where CIFAR-10 is found, its sizes and class counts",
        description="Print where CIFAR-10 is found, the number of images per split and per class.",
    )
    add_data_option(info)
    info.set_defaults(func=_info)
    download = actions.add_parser(
        "download",
        help="download the official archive into --data DIR",
        description="Download the official CIFAR-10 python archive (md5-checked) into --data DIR. "
        "A CIFAR-10 already there is kept as is.",
    )
    add_data_option(download)
    download.set_defaults(func=_download)


def _info(args) -> None:
    import numpy as np

    from explorer.data import find_cifar10, load_cifar10

    source = find_cifar10()
    if source.is_file():
        print(f"CIFAR-10 archive: {source} ({source.stat().st_size / 2**20:.1f} MiB)")
    else:
        print(f"CIFAR-10 folder: {source}")
    for split in ("train", "test"):
        data = load_cifar10(split)
        counts = np.bincount(data.labels, minlength=len(data.classes))
        shape = "x".join(map(str, data.images.shape[1:]))
        print(f"{split}: {len(data.labels)} images ({shape} uint8)")
        print("  " + ", ".join(f"{name} {count}" for name, count in zip(data.classes, counts)))


def _download(args) -> None:
    from explorer.data import download_cifar10

    print(f"CIFAR-10 ready: {download_cifar10()}")
