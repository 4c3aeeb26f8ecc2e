"""Features of a whole dataset (scattering, or a trained network's inner maps), computed once and
stored memory-mapped.

Stored under ``<store>/features/<key>/`` with ``features.npy`` (N, ...) and ``meta.json`` (the
configuration, the producer, the path records of a scattering, timing). The key names all that
makes the features what they are: the producer (``scattering`` with J, L and order; ``roto``, the
separable roto-translation scattering of Oyallon & Mallat (CVPR 2015), with J, L, wavelets per
octave Q and angular scales K; ``network`` with a run id and a depth), the dataset, split, image
size, colour space and dtype. Written
atomically: a folder exists only once it is complete. Training and analyses read them with
`load_features` instead of recomputing.

Keys of scattering features at CIFAR-10's own size in RGB are those of the folders made before
producers, sizes and colour spaces were named (``cifar10-train-J2-L8-order2-float32``): the
defaults are left out of the key, so stored features keep being found.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

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
# What computes the features: the translation scattering, the roto-translation scattering, a network.
PRODUCERS = ("scattering", "network", "roto")
SCATTERING_PRODUCERS = ("scattering", "roto")  # transforms built here (a network brings its own)
COLOUR_SPACES = ("rgb", "yuv", "gray")  # of the images given to the producer
NATIVE_SIZE = {"cifar10": 32}  # left out of the key (folders made before sizes were named)
_RUN_ID = re.compile(r"^[a-z0-9_]+-[0-9a-f]{12}$")  # as the run store names runs


class FeaturesNotFoundError(FileNotFoundError):
    """No stored features for this configuration."""


class FeaturesCorruptError(ValueError):
    """Stored features exist but are damaged."""


@dataclass(frozen=True)
class FeatureConfig:
    """What a stored set of features is. ``producer`` says what computed it: ``"scattering"``
    (uses J, L, max_order), ``"roto"`` (the roto-translation scattering: uses J, L,
    wavelets_per_octave and angular_scales; its orders are always 0 to 2, so max_order stays 2) or
    ``"network"`` (uses run_id, the run store's id of the trained network, and depth, which inner
    map; J, L and max_order are then ignored and not in the key).

    ``wavelets_per_octave`` and ``angular_scales`` are the roto producer's only: another producer
    refuses values other than their defaults rather than ignore them, so that two configurations
    with one key never mean two different things; they are left out of the other producers' keys
    and parameters, whose stored features keep their names."""
    dataset: str = "cifar10"
    split: str = "train"
    J: int = 2
    L: int = 8
    max_order: int = 2
    dtype: str = "float32"
    producer: str = "scattering"
    run_id: str | None = None
    depth: int | None = None
    image_size: int | None = None  # side in pixels of the (square) images; None: the dataset's own
    colour: str = "rgb"
    wavelets_per_octave: int = 1  # roto producer only: spatial wavelets per octave (Q)
    angular_scales: int = 2  # roto producer only: angular wavelet scales along θ1 (K)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; available: {', '.join(DATASETS)}.")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}.")
        if self.producer not in PRODUCERS:
            raise ValueError(f"unknown producer {self.producer!r}; available: {', '.join(PRODUCERS)}.")
        if self.colour not in COLOUR_SPACES:
            raise ValueError(f"colour must be one of {COLOUR_SPACES}, got {self.colour!r}.")
        if self.image_size is None:
            object.__setattr__(self, "image_size", NATIVE_SIZE[self.dataset])
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive number of pixels, got {self.image_size!r}.")
        if self.producer != "roto" and (self.wavelets_per_octave, self.angular_scales) != (1, 2):
            raise ValueError(
                f"wavelets_per_octave and angular_scales are parameters of the roto-translation "
                f"scattering, not of a {self.producer} producer (got {self.wavelets_per_octave} and "
                f"{self.angular_scales}); use producer='roto' or leave them at 1 and 2.")
        if self.producer in SCATTERING_PRODUCERS:
            if self.run_id is not None or self.depth is not None:
                raise ValueError("run_id and depth describe a network producer, not a scattering.")
            check_parameters(self.J, (self.image_size, self.image_size), self.L, self.max_order)
            if self.producer == "roto":
                self._check_roto()
        else:
            if not isinstance(self.run_id, str) or not _RUN_ID.match(self.run_id):
                raise ValueError(f"a network producer needs the run id of a trained network "
                                 f"(like cnn13-0123456789ab), got {self.run_id!r}.")
            if not isinstance(self.depth, int) or self.depth < 0:
                raise ValueError(f"depth must be a non-negative layer number, got {self.depth!r}.")

    def _check_roto(self) -> None:
        if self.max_order != 2:
            raise ValueError(f"the roto-translation scattering always has orders 0 to 2; leave "
                             f"max_order at 2 (got {self.max_order!r}).")
        from explorer.scattering.roto import check_roto_parameters

        check_roto_parameters(self.J, (self.image_size, self.image_size), self.L,
                              self.wavelets_per_octave, self.angular_scales)

    @property
    def producer_params(self) -> dict:
        """The producer and exactly the parameters that matter to it."""
        if self.producer == "scattering":
            return {"producer": "scattering", "J": self.J, "L": self.L, "max_order": self.max_order}
        if self.producer == "roto":
            return {"producer": "roto", "J": self.J, "L": self.L,
                    "wavelets_per_octave": self.wavelets_per_octave,
                    "angular_scales": self.angular_scales}
        return {"producer": "network", "run_id": self.run_id, "depth": self.depth}

    @property
    def key(self) -> str:
        if self.producer == "scattering":
            made_by = f"J{self.J}-L{self.L}-order{self.max_order}"
        elif self.producer == "roto":
            made_by = f"roto-J{self.J}-L{self.L}-Q{self.wavelets_per_octave}-K{self.angular_scales}"
        else:
            made_by = f"net-{self.run_id}-depth{self.depth}"
        key = f"{self.dataset}-{self.split}-{made_by}-{self.dtype}"
        # Defaults stay out of the key: the folders of today's scattering configs keep their names.
        if self.image_size != NATIVE_SIZE[self.dataset]:
            key += f"-{self.image_size}px"
        if self.colour != "rgb":
            key += f"-{self.colour}"
        return key

    @property
    def folder(self) -> Path:
        return store_dir() / "features" / self.key


def load_features(config: FeatureConfig) -> tuple[np.ndarray, dict]:
    """(features memory-mapped read-only, metadata). Raises a clear error when missing/damaged."""
    folder = config.folder
    if not folder.is_dir():
        if config.producer not in SCATTERING_PRODUCERS:
            raise FeaturesNotFoundError(f"no stored features for {config.key}; compute them with "
                                        f"`explorer.features.compute_features`.")
        raise FeaturesNotFoundError(
            f"no stored {config.producer} features for {config.key}; compute them with "
            f"`{scatter_command(config)}`.")
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


def scatter_command(config: FeatureConfig) -> str:
    """The ``explorer scatter`` command line that computes the features of ``config``."""
    if config.producer not in SCATTERING_PRODUCERS:
        raise ValueError(f"`explorer scatter` computes scattering features, not those of a "
                         f"{config.producer} producer.")
    made_by = (f" --producer roto --wavelets-per-octave {config.wavelets_per_octave} "
               f"--angular-scales {config.angular_scales}" if config.producer == "roto"
               else f" --max-order {config.max_order}")
    options = "".join([f" --image-size {config.image_size}"
                       if config.image_size != NATIVE_SIZE[config.dataset] else "",
                       f" --colour {config.colour}" if config.colour != "rgb" else ""])
    # Both splits (the default): whoever needs the features of one split needs the other's too.
    return (f"explorer scatter --dataset {config.dataset} --J {config.J} --L {config.L}{made_by} "
            f"--dtype {config.dtype}{options}")


def compute_features(config: FeatureConfig, images: np.ndarray | None = None, *,
                     data=None, device=None, batch_size: int = 512, overwrite: bool = False,
                     progress: bool = True,
                     on_progress: Callable[[int, int], None] | None = None,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """Compute the features of every image of the split and store them.

    The images are scaled to [0, 1], resized to ``config.image_size`` and converted to
    ``config.colour``; then ``transform`` maps a batch (B, C, S, S) to its features (B, ...).
    For the scattering and roto producers the default transform scatters each colour channel
    separately; a network producer needs ``transform`` (e.g. the run's inner map at ``config.depth``).

    `images` (N, 3, H, W) uint8 overrides the dataset (used by tests and small runs; it is then
    not written to the shared key but under `<key>-custom-<N>`). Returns `load_features`'s
    (memmap, meta). Existing features are reused unless `overwrite`.

    Under torchrun (see `explorer.training.distributed`) every rank calls this with the same
    arguments (checked, the images included). The images are cut into the chunks of ``batch_size``
    a single process scatters; rank r scatters chunks r, r + N, r + 2N... on its own device and
    sends them to rank 0, which writes them in order into the folder and commits it: the stored
    features are those of one process, bit for bit. Every rank then returns them (ranks on other
    nodes need the store on a shared file system). ``progress`` and ``on_progress`` are rank 0's.
    """
    from explorer.training.distributed import rank_device
    from explorer.training.distributed import world as join_world

    folder = config.folder
    if images is not None:
        folder = folder.with_name(f"{config.key}-custom-{len(images)}")
    device = rank_device(torch.device(device) if device is not None else default_device())
    world = join_world(device)
    if world.on_main(folder.is_dir) and not overwrite:
        return _load_everywhere(world, folder, config)
    if images is None:
        from explorer.data import load_cifar10

        images = world.everywhere(lambda: load_cifar10(config.split, data).images, "reading the images")
    images = _check_images(images)
    if world.active:
        world.check_same("features to compute", config=asdict(config), batch_size=batch_size,
                         overwrite=overwrite, device=device.type, images=_fingerprint(images))
    dtype = DTYPES[config.dtype]
    size = config.image_size
    scattering = None
    if transform is None:
        if config.producer not in SCATTERING_PRODUCERS:
            raise ValueError(f"features of a {config.producer} producer need a transform; for a trained "
                             f"network, explorer.network_features.compute_network_features builds it.")
        scattering = transform = scattering_transform(config)

    def prepare(start: int) -> torch.Tensor:
        batch = torch.from_numpy(np.asarray(images[start:start + batch_size]))
        x = batch.to(device=device, dtype=dtype, non_blocking=True).div_(255)
        return to_colour_space(resize(x, size), config.colour)

    straight = device.type == "cpu" and scattering is not None

    def scatter_chunk(start: int, target: torch.Tensor) -> None:
        x = prepare(start)
        if straight:  # straight into the target (the writer's buffer): no copy of the result
            transform(x, out=target)
        else:
            with torch.inference_mode():
                target.copy_(transform(x))

    with torch.inference_mode():
        sample = transform(prepare(0)[:1])
    shape = (len(images), *sample.shape[1:])
    starts = range(0, len(images), batch_size)  # chunk k is scattered by rank k % world size
    started = time.perf_counter()
    if not world.main:
        _send_chunks(world, starts, shape, dtype, batch_size, device, scatter_chunk)
    else:
        with atomic_directory(folder, replace=overwrite) as tmp:
            with NpyChunkWriter(tmp / "features.npy", shape, config.dtype, batch_size) as out:
                bar = tqdm(total=len(images), desc=f"{config.producer} {config.key}", unit="img",
                           disable=not progress)
                for k, start in enumerate(starts):
                    rows = min(batch_size, len(images) - start)
                    target = torch.from_numpy(out.rows_view(rows))
                    if k % world.size == 0:
                        scatter_chunk(start, target)
                    else:
                        _receive_chunk(target, k % world.size, device)
                    del target  # the buffer is handed to the writer thread next
                    out.commit(rows)
                    bar.update(rows)
                    if on_progress is not None:
                        on_progress(start + rows, len(images))
                bar.close()
            meta = {
                "config": asdict(config), "producer": config.producer_params, "shape": list(shape),
                "input": f"uint8 pixels / 255, {size}×{size}, {config.colour}",
                "seconds": round(time.perf_counter() - started, 3), "device": str(device),
            }
            if world.active:
                meta["world_size"] = world.size
            if scattering is not None:
                meta["axes"] = ["image", "colour", "path", "row", "column"]
                meta["paths"] = [list(p) for p in scattering.paths]
            (tmp / "meta.json").write_text(json.dumps(meta))
    # A rank that fails midway ends the job: torchrun stops the others (or the group's timeout does).
    world.barrier()
    return _load_everywhere(world, folder, config)


def _send_chunks(world, starts: range, shape: tuple, dtype: torch.dtype, batch_size: int,
                 device: torch.device, scatter_chunk: Callable) -> None:
    """A rank > 0's share: its chunks, scattered in order and sent to rank 0 (on the GPU through
    NCCL, else through gloo)."""
    import torch.distributed as dist

    for k in range(world.rank, len(starts), world.size):
        rows = min(batch_size, shape[0] - starts[k])
        chunk = torch.empty((rows, *shape[1:]), dtype=dtype, device=device)
        scatter_chunk(starts[k], chunk)
        dist.send(chunk, dst=0)


def _receive_chunk(target: torch.Tensor, source: int, device: torch.device) -> None:
    import torch.distributed as dist

    if device.type == "cpu":
        dist.recv(target, src=source)
    else:  # NCCL receives into device memory
        chunk = torch.empty(target.shape, dtype=target.dtype, device=device)
        dist.recv(chunk, src=source)
        target.copy_(chunk)


def _load_everywhere(world, folder: Path, config: FeatureConfig):
    def load():
        if not world.main and not folder.is_dir():
            raise FeaturesNotFoundError(
                f"rank {world.rank} does not see {folder}, which rank 0 has stored: under torchrun "
                f"on several nodes, EXPLORER_STORE must be a folder every node shares.")
        return _load_from(folder, config)

    return world.everywhere(load, "reading the stored features")


def _fingerprint(images: np.ndarray) -> list:
    """Shape and checksum of the images, to check that every rank scatters the same ones."""
    digest = hashlib.sha256(memoryview(np.ascontiguousarray(images)).cast("B")).hexdigest()[:16]
    return [list(images.shape), digest]


def scattering_transform(config: FeatureConfig) -> torch.nn.Module:
    """The transform of a scattering or roto producer, at ``config.image_size``: a module mapping
    (..., S, S) to (..., paths, h, w), with ``.paths`` and ``forward(x, out=...)``."""
    size = (config.image_size, config.image_size)
    if config.producer == "roto":
        # Imported here: the roto-translation transform is heavier and only this producer needs it.
        from explorer.scattering.roto import RotoScattering2D

        return RotoScattering2D(config.J, size, config.L,
                                wavelets_per_octave=config.wavelets_per_octave,
                                angular_scales=config.angular_scales)
    if config.producer == "scattering":
        return Scattering2D(config.J, size, config.L, config.max_order)
    raise ValueError(f"a {config.producer} producer is not a scattering transform.")


def _load_from(folder: Path, config: FeatureConfig):
    if folder == config.folder:
        return load_features(config)
    return np.load(folder / "features.npy", mmap_mode="r"), json.loads(
        (folder / "meta.json").read_text())


# ITU-R BT.601 luma and chroma of RGB in [0, 1]: Y in [0, 1], U and V in [-0.5, 0.5].
_YUV = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])


def to_colour_space(x: torch.Tensor, colour: str) -> torch.Tensor:
    """RGB batches (B, 3, H, W) in [0, 1] in ``colour``: unchanged, YUV (3 channels) or gray (1)."""
    if colour == "rgb":
        return x
    if x.shape[-3] != 3:
        raise ValueError(f"colour conversion needs RGB images (3 channels), got {x.shape[-3]}.")
    matrix = _YUV.to(device=x.device, dtype=x.dtype)
    if colour == "gray":
        matrix = matrix[:1]
    elif colour != "yuv":
        raise ValueError(f"colour must be one of {COLOUR_SPACES}, got {colour!r}.")
    return torch.einsum("kc,bchw->bkhw", matrix, x)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Batches (B, C, H, W) resized to (size, size), antialiased when shrinking; unchanged at size."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                           align_corners=False, antialias=True)


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, channels, H, W), got "
                         f"{images.dtype} {images.shape}.")
    return images
