"""Scattering features of a whole dataset, computed once and stored memory-mapped.

Stored under ``<store>/features/<key>/`` with ``features.npy`` (N, C, P, h, w) and
``meta.json`` (the configuration, the path records, the labels' file, timing), keyed by
dataset, split, J, L, max_order and dtype. Written atomically: a folder exists only once it is
complete. Training and analyses read them with `load_features` instead of recomputing.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from explorer.atomic import atomic_directory
from explorer.config import default_device, store_dir
from explorer.npy_writer import NpyChunkWriter
from explorer.scattering import Scattering2D
from explorer.scattering.validation import check_parameters

DATASETS = ("cifar10",)
SPLITS = ("train", "test")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class FeaturesNotFoundError(FileNotFoundError):
    """No stored features for this configuration."""


class FeaturesCorruptError(ValueError):
    """Stored features exist but are damaged."""


@dataclass(frozen=True)
class FeatureConfig:
    dataset: str = "cifar10"
    split: str = "train"
    J: int = 2
    L: int = 8
    max_order: int = 2
    dtype: str = "float32"

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; available: {', '.join(DATASETS)}.")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}.")
        check_parameters(self.J, (32, 32), self.L, self.max_order)

    @property
    def key(self) -> str:
        return (f"{self.dataset}-{self.split}-J{self.J}-L{self.L}-order{self.max_order}"
                f"-{self.dtype}")

    @property
    def folder(self) -> Path:
        return store_dir() / "features" / self.key


def load_features(config: FeatureConfig) -> tuple[np.ndarray, dict]:
    """(features memory-mapped read-only, metadata). Raises a clear error when missing/damaged."""
    folder = config.folder
    if not folder.is_dir():
        raise FeaturesNotFoundError(
            f"no stored scattering features for {config.key}; compute them with "
            f"`explorer scatter --dataset {config.dataset} --J {config.J} --L {config.L} "
            f"--max-order {config.max_order} --dtype {config.dtype}`.")
    try:
        meta = json.loads((folder / "meta.json").read_text())
        features = np.load(folder / "features.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise FeaturesCorruptError(
            f"stored features {folder} are damaged ({exc}); recompute them with "
            f"`explorer scatter ... --overwrite`.") from exc
    if list(features.shape) != meta.get("shape") or str(features.dtype) != config.dtype:
        raise FeaturesCorruptError(
            f"stored features {folder} have shape {features.shape}, expected {meta.get('shape')}; "
            f"recompute them with `explorer scatter ... --overwrite`.")
    return features, meta


def compute_features(config: FeatureConfig, images: np.ndarray | None = None, *,
                     data=None, device=None, batch_size: int = 512, overwrite: bool = False,
                     progress: bool = True,
                     on_progress: Callable[[int, int], None] | None = None):
    """Scatter every image of the split (each RGB channel separately) and store the result.

    `images` (N, 3, H, W) uint8 overrides the dataset (used by tests and small runs; it is then
    not written to the shared key but under `<key>-custom-<N>`). Returns `load_features`'s
    (memmap, meta). Existing features are reused unless `overwrite`.
    """
    folder = config.folder
    if images is not None:
        folder = folder.with_name(f"{config.key}-custom-{len(images)}")
    if folder.is_dir() and not overwrite:
        return _load_from(folder, config)
    if images is None:
        from explorer.data import load_cifar10

        images = load_cifar10(config.split, data).images
    images = _check_images(images)
    device = torch.device(device) if device is not None else default_device()
    dtype = DTYPES[config.dtype]
    transform = Scattering2D(config.J, images.shape[-2:], config.L, config.max_order)
    shape = (len(images), images.shape[1], len(transform.paths), *transform.output_shape)
    started = time.perf_counter()
    with atomic_directory(folder, replace=overwrite) as tmp:
        with NpyChunkWriter(tmp / "features.npy", shape, config.dtype, batch_size) as out:
            bar = tqdm(total=len(images), desc=f"scattering {config.key}", unit="img",
                       disable=not progress)
            on_cpu = device.type == "cpu"
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.asarray(images[start:start + batch_size]))
                x = batch.to(device=device, dtype=dtype, non_blocking=True).div_(255)
                target = torch.from_numpy(out.rows_view(len(batch)))
                if on_cpu:  # straight into the writer's buffer: no copy of the result
                    transform(x, out=target)
                else:
                    target.copy_(transform(x))
                del target  # the buffer is handed to the writer thread next
                out.commit(len(batch))
                bar.update(len(batch))
                if on_progress is not None:
                    on_progress(start + len(batch), len(images))
            bar.close()
        meta = {
            "config": asdict(config), "shape": list(shape), "input": "uint8 pixels / 255",
            "axes": ["image", "colour", "path", "row", "column"],
            "paths": [list(p) for p in transform.paths],
            "seconds": round(time.perf_counter() - started, 3), "device": str(device),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
    return _load_from(folder, config)


def _load_from(folder: Path, config: FeatureConfig):
    if folder == config.folder:
        return load_features(config)
    return np.load(folder / "features.npy", mmap_mode="r"), json.loads(
        (folder / "meta.json").read_text())


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, channels, H, W), got "
                         f"{images.dtype} {images.shape}.")
    return images
