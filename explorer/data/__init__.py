"""Data sources: CIFAR-10, balanced subsets, single images (`images`; picked by source and cached for the app
and the notebooks in `sources`). Computation side: never imports the UI."""

from explorer.data.cifar10 import (
    Cifar10,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    download_cifar10,
    find_cifar10,
    load_cifar10,
)
from explorer.data.images import (
    ImageError,
    LoadedImage,
    list_images,
    load_image_file,
    sample_image,
    synthetic_image,
)
from explorer.data.subsets import balanced_subset_indices

__all__ = [
    "Cifar10",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DownloadError",
    "ImageError",
    "LoadedImage",
    "balanced_subset_indices",
    "download_cifar10",
    "find_cifar10",
    "list_images",
    "load_cifar10",
    "load_image_file",
    "sample_image",
    "synthetic_image",
]
