"""Training data, held on the device when it fits, served in shuffled batches.

Images stay uint8 until a batch is taken (4× less memory; CIFAR-10's training set is 150 MB).
The SLE reads scattering features stored once by `explorer.features` (memory-mapped,
3.1 GB for CIFAR-10's training set at J=2); they are copied to the device when they fit, and
otherwise read batch by batch from the memory map.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from explorer.data.subsets import balanced_limit_indices, balanced_subset_indices

from .distributed import shard_bounds

DATASETS = ("cifar10", "synthetic")
NUM_CLASSES = {"cifar10": 10, "synthetic": 2}
SYNTHETIC_SIZES = {"train": 2048, "test": 512}
# Fraction of the free memory (device or RAM) a dataset may take to be held there whole.
_FIT_FRACTION = 0.5


class Split(NamedTuple):
    x: np.ndarray  # uint8 images (N, 3, H, W) or float features (N, 3, P, h, w), maybe memory-mapped
    y: np.ndarray  # int64 labels (N,)


# --- sources ---------------------------------------------------------------------------------

def synthetic_images(split: str, n: int | None = None) -> Split:
    """A small two-class set for smoke tests and quick demos: noisy stripes, vertical (class 0) or
    horizontal (class 1), random period (4-8 px), phase and colour; 2048 training and 512 test
    images. Flips and pad-crops keep the class. Why 2048: at batch 128 an epoch is then 16 steps.
    With 512 images (4 steps), a few epochs left BatchNorm's running statistics (momentum 0.1)
    far behind the weights, so the network, evaluated with them, answered one class (50 %) while
    it fitted the training batches."""
    size = SYNTHETIC_SIZES[split] if n is None else n
    rng = np.random.default_rng({"train": 0, "test": 1}[split])
    labels = np.arange(size) % 2
    rng.shuffle(labels)
    coords = np.arange(32, dtype=np.float32)
    period = rng.uniform(4, 8, size)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size)[:, None]
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * coords[None] / period + phase)  # (N, 32)
    stripes = np.where(labels[:, None, None] == 0, wave[:, None, :], wave[:, :, None])
    colour = rng.uniform(0.3, 1.0, (size, 3, 1, 1))
    images = colour * stripes[:, None] * 255 + rng.normal(0, 40, (size, 3, 32, 32))
    return Split(np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64))


def load_images(dataset: str, split: str) -> Split:
    if dataset == "synthetic":
        return synthetic_images(split)
    if dataset == "cifar10":
        from explorer.data import load_cifar10

        data = load_cifar10(split)
        return Split(data.images, data.labels)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")


def load_scattering(dataset: str, split: str, J: int, L: int, device, progress: bool) -> Split:
    """Scattering features: stored ones for CIFAR-10 (computed once if missing), computed in
    memory for the synthetic set (too small to be worth storing)."""
    if dataset == "cifar10":
        from explorer.data import load_cifar10
        from explorer.features import FeatureConfig, compute_features

        features, _ = compute_features(FeatureConfig(dataset, split, J, L), device=device,
                                       progress=progress)
        return Split(features, load_cifar10(split).labels)
    return _synthetic_scattering(dataset, split, J, L)


@functools.lru_cache(maxsize=4)
def _synthetic_scattering(dataset: str, split: str, J: int, L: int) -> Split:
    """Kept once computed (127 MB for the training split at J=2, L=8): a small-data grid trains many
    runs on the same set, each of which would otherwise scatter it again. Read-only, since shared."""
    from explorer.scattering import Scattering2D

    images = load_images(dataset, split)
    scattering = Scattering2D(J, images.x.shape[-2:], L)
    with torch.no_grad():
        features = scattering(torch.from_numpy(images.x).float().div_(255)).numpy()
    features.flags.writeable = False
    return Split(features, images.y)


def select(split: Split, subset: dict | None, limit: int | None) -> Split:
    """The balanced subset (science.md §4: n/classes per class, authors' permutation), then
    ``limit`` samples balanced over the classes (`balanced_limit_indices`: not a prefix, which is
    one class in copies of CIFAR-10 sorted by class). Only the chosen rows of a memory map are read."""
    x, y = split
    if subset is not None:
        index = balanced_subset_indices(y, subset["n"], subset["seed"])
        x, y = x[index], y[index]
    if limit is not None and limit != len(y):
        index = balanced_limit_indices(np.asarray(y), limit)
        if index[-1] == limit - 1:  # the balanced choice is a prefix: keep a memory map's view
            x, y = x[:limit], y[:limit]
        else:  # reads the chosen rows (limits are for quick runs: few of them)
            x, y = x[index], y[index]
    return Split(x, y)


# --- on the device ---------------------------------------------------------------------------

def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class DeviceData:
    """A split ready for training: on ``device`` when it fits, else in host memory (or its memory
    map) with each batch copied over. ``batch`` returns float inputs (images scaled to [0, 1])."""

    def __init__(self, split: Split, device: torch.device):
        self.device = torch.device(device)
        self.images = split.x.dtype == np.uint8
        self.y = torch.from_numpy(np.asarray(split.y, dtype=np.int64)).to(self.device)
        nbytes = split.x.size * split.x.itemsize
        if nbytes <= _FIT_FRACTION * _free_bytes(self.device):
            x = np.ascontiguousarray(split.x)
            if not x.flags.writeable:  # a read-only memory map: torch wants memory of its own
                x = x.copy()
            self.x = torch.from_numpy(x).to(self.device)
        else:
            self.x = split.x  # numpy (memory map): read batch by batch
        self.nbytes = nbytes

    @property
    def on_device(self) -> bool:
        """Whether the whole split is held on the training device."""
        return isinstance(self.x, torch.Tensor)

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the samples ``index`` (int64, on any device)."""
        if isinstance(self.x, torch.Tensor):
            index = index.to(self.device)
            x = self.x.index_select(0, index)
        else:
            index = index.cpu().sort().values  # reading a memory map in order is faster
            x = torch.from_numpy(self.x[index.numpy()]).to(self.device)
            index = index.to(self.device)
        y = self.y.index_select(0, index)
        return (x.float().div_(255) if self.images else x.float()), y

    def batches(self, batch_size: int, generator: torch.Generator | None = None, repeats: int = 1,
                shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in the order of a permutation drawn from ``generator`` (a CPU generator, so
        the order is the same on every device), or in dataset order without one. ``repeats``:
        passes over the data in one epoch, each a fresh permutation (a tiny training set's epoch).
        ``shard=(rank, size)``: this rank's contiguous share of each batch (`shard_bounds`; maybe
        empty in a last batch smaller than ``size``), every rank drawing the same permutation."""
        n = len(self)
        if generator is not None:
            order = torch.cat([torch.randperm(n, generator=generator) for _ in range(repeats)])
        else:
            order = torch.arange(n).repeat(repeats)
        n = len(order)
        if isinstance(self.x, torch.Tensor):
            # One copy per epoch: a copy from pageable host memory per batch would make the host
            # wait for the GPU at every step.
            order = order.to(self.device)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if shard is not None:
                first, stop = shard_bounds(len(index), *shard)
                index = index[first:stop]
            yield self.batch(index)

    def steps(self, batch_size: int, repeats: int = 1) -> int:
        return -(-len(self) * repeats // batch_size)
