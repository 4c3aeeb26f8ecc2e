"""Several processes, one job: training and dataset scattering under ``torchrun``.

``torchrun --nproc_per_node N -m explorer train ...`` starts N copies of the command with WORLD_SIZE,
RANK and LOCAL_RANK in their environment. `world` turns that environment into a process group (NCCL
for CUDA tensors with gloo beside it for small CPU objects, gloo alone on the CPU; each rank on
``cuda:LOCAL_RANK``) and a `World`: the rank, the world size and the few collectives the trainer and
`explorer.features` need. Outside torchrun (no WORLD_SIZE, or 1) `world` returns `SINGLE`, whose
collectives do nothing and whose `on_main` and `everywhere` just call their function, so the
single-process code runs unchanged.

Rules the callers follow: rank 0 alone writes to the store; a step that may fail on one rank only
(reading data, the run store) goes through `World.on_main` or `World.everywhere`, which raise the same
error on every rank instead of leaving the others waiting in a collective; every collective has the
group's timeout (EXPLORER_DIST_TIMEOUT_S, default 10 minutes), after which a rank left waiting fails.
torchrun itself stops every rank once one has failed.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

TIMEOUT_ENV = "EXPLORER_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0
# Rank r > 0 seeds its own random streams (augmentation, dropout) at seed + r·RANK_SEED_STRIDE, far from
# the seed + 1 and seed + 2 that rank 0 (and a single process) uses.
RANK_SEED_STRIDE = 1_000_003
_ENV_NEEDED = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class RankError(ValueError):
    """Another rank failed a step every rank had to pass (the message says which and why)."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer; torchrun sets "
                         f"it, so start the command through torchrun (or unset it).") from None


def launched() -> bool:
    """Whether this process is one of several started by torchrun (WORLD_SIZE > 1), or belongs to a
    process group of more than one rank that the caller initialised itself."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return _env_int("WORLD_SIZE", 1) > 1


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0) if launched() else 0


def is_main() -> bool:
    """Whether this process is rank 0, the one that writes the store and prints (always outside torchrun)."""
    return rank() == 0


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda`` (no index) means ``cuda:LOCAL_RANK`` under torchrun."""
    device = torch.device(device)
    if not launched() or device.type != "cuda" or device.index is not None:
        return device
    local = _env_int("LOCAL_RANK", 0)
    count = torch.cuda.device_count()
    if local >= count:
        raise ValueError(f"rank with LOCAL_RANK {local} but this node has {count} GPU(s): give "
                         f"torchrun --nproc_per_node {count} (one process per GPU) or at most that.")
    return torch.device("cuda", local)


def timeout() -> timedelta:
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        seconds = float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV}={value!r} must be a number of seconds > 0.")
    return timedelta(seconds=seconds)


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [start, stop) of rank ``rank`` among ``size`` in ``n`` rows: contiguous shares, the first
    ``n % size`` ranks one row more (so rank 0 never has fewer rows than another)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class World:
    """The ranks of a job. A world of one (`SINGLE`) does nothing in its collectives."""

    def __init__(self, rank: int = 0, size: int = 1):
        self.rank, self.size = rank, size

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size})"

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, size) to slice batches with, None in a world of one."""
        return (self.rank, self.size) if self.active else None

    # -- collectives ------------------------------------------------------------------------------
    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (pickled: small objects, a checkpoint's CPU tensors)."""
        if not self.active:
            return value
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.active:
            return [value]
        values: list = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place (every rank gets the same bits)."""
        if self.active:
            dist.all_reduce(tensor)
        return tensor

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank, in place."""
        if self.active:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    # -- steps that may fail on one rank ----------------------------------------------------------
    def on_main(self, step: Callable[[], Any]) -> Any:
        """Run ``step`` on rank 0 and return its result on every rank; if it raises, every rank raises
        the same error (the store's own messages: run exists, locked, damaged...)."""
        if not self.active:
            return step()
        result, error = None, None
        if self.main:
            try:
                result = step()
            except Exception as exc:  # noqa: BLE001 (handed to every rank, then raised here too)
                error = exc
        result, shared_error = self.broadcast((result, _portable(error) if error else None))
        if error is not None:
            raise error
        if shared_error is not None:
            raise shared_error
        return result

    def everywhere(self, step: Callable[[], Any], what: str) -> Any:
        """Run ``step`` on every rank; if it fails on any rank, every rank raises (the failed ones
        their own error, the others a RankError naming the failed ranks and their messages)."""
        if not self.active:
            return step()
        result, error = None, None
        try:
            result = step()
        except Exception as exc:  # noqa: BLE001 (reported to every rank below)
            error = exc
        problems = self.gather(None if error is None else _describe(error))
        if error is not None:
            raise error
        failed = [(r, p) for r, p in enumerate(problems) if p is not None]
        if failed:
            details = "; ".join(f"rank {r} ({p})" for r, p in failed)
            raise RankError(f"{what} failed on {details}. Every rank stops: fix the cause on "
                            f"{_ranks(r for r, _ in failed)} (its node) and start the job again.")
        return result

    def check_same(self, what: str, **values) -> None:
        """ValueError on every rank unless every rank was given the same ``values`` (plain JSON data,
        nested dicts compared field by field), naming the ranks and fields that differ and the fix."""
        if not self.active:
            return
        mine = {name: _digest(value) for name, value in _leaves(values).items()}
        every = self.gather(mine)
        reference = every[0]
        differences = []
        for r, theirs in enumerate(every):
            fields = sorted(k for k in set(theirs) | set(reference) if theirs.get(k) != reference.get(k))
            if fields:
                differences.append(f"rank {r} differs from rank 0 in {', '.join(fields)}")
        if differences:
            raise ValueError(
                f"the torchrun ranks disagree on the {what}: {'; '.join(differences)}. Every rank must "
                f"run the same command with the same options (torchrun starts one command on each "
                f"rank; on several nodes, start the same command line on every node, with the same "
                f"environment: EXPLORER_STORE, dataset, device).")


SINGLE = World()


def world(device: torch.device) -> World:
    """The world of this process: under torchrun, joins the process group (set up by the first call,
    kept until the process exits: torchrun's rendezvous cannot be repeated, so a second group in the
    same process would wait forever; a loop of `train` calls shares the one group); outside torchrun
    `SINGLE`."""
    if not launched():
        return SINGLE
    device = torch.device(device)
    if not dist.is_initialized():
        _initialise(device)
    elif device.type == "cuda" and "cuda" not in _backend_config():
        raise ValueError(f"this process's group was set up for the CPU ({_backend_config()}); a CUDA "
                         f"job in the same process needs a process of its own (or --device cpu).")
    return World(dist.get_rank(), dist.get_world_size())


def _initialise(device: torch.device) -> None:
    missing = [name for name in _ENV_NEEDED if not os.environ.get(name)]
    if missing:
        raise ValueError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set: start several processes "
                         f"with torchrun (it sets them all), or unset WORLD_SIZE for one process.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "cpu:gloo,cuda:nccl"  # NCCL for the training tensors, gloo for objects on the CPU
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=timeout())
    atexit.register(_leave)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _backend_config() -> str:
    try:
        return str(dist.get_backend_config())
    except (AttributeError, RuntimeError, ValueError):
        return str(dist.get_backend())


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random streams: ``seed`` itself on rank 0."""
    return seed + rank * RANK_SEED_STRIDE


# --- BatchNorm over the global batch -----------------------------------------------------------

class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with its gradient: the sum is used by every rank, so each rank's input
    receives the sum of every rank's upstream gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (any number of dimensions) whose training statistics are those of the whole global
    batch, all ranks together: the CPU's stand-in for `torch.nn.SyncBatchNorm`, which needs a GPU.
    Same parameters and buffers as the BatchNorm it replaces (same state dict); inference (eval mode)
    and a single process are plain BatchNorm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        values = x.to(torch.promote_types(x.dtype, torch.float32))  # half precision: sums in float32
        count = torch.full((1,), x.numel() // max(x.shape[1], 1), dtype=values.dtype, device=x.device)
        total = _SumOverRanks.apply(torch.cat([values.sum(dims), count]))
        n = total[-1]
        if n.item() <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(x.shape)} on this rank and {int(n.item())} value(s) in all.")
        mean = total[:-1] / n
        centred = values - mean.view(shape)  # two passes (mean, then squares): no cancellation
        var = _SumOverRanks.apply(centred.square().sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (self.momentum if self.momentum is not None
                            else 1.0 / float(self.num_batches_tracked))
                self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype), alpha=momentum)
                unbiased = (var * n / (n - 1)).to(self.running_var.dtype)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


_PLAIN_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> list[str]:
    """Replace, in place, each plain BatchNorm of ``model`` by one that normalises with the statistics
    of the global batch: `torch.nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` on the CPU. Training on
    N ranks then computes what one process computes on the whole batch. Subclasses of BatchNorm (a
    model's own normalisation, e.g. sle_fourier's orbit-shared one) are left as they are, since
    SyncBatchNorm would drop what they change: their names are returned (their statistics stay
    per-rank; rank 0's running statistics are the ones kept)."""
    kept: list[str] = []
    replacement = nn.SyncBatchNorm if torch.device(device).type == "cuda" else GlobalBatchNorm

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if type(child) in _PLAIN_BATCHNORMS:
                new = replacement(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
                floats = [t for t in child.state_dict().values() if t.is_floating_point()]
                new.to(device=device, dtype=floats[0].dtype if floats else None)
                new.load_state_dict(child.state_dict())
                if child.affine:
                    new.weight.requires_grad_(child.weight.requires_grad)
                    new.bias.requires_grad_(child.bias.requires_grad)
                new.train(child.training)
                setattr(module, name, new)
            elif isinstance(child, nn.modules.batchnorm._BatchNorm):
                kept.append(path)
            else:
                visit(child, f"{path}.")

    visit(model, "")
    return kept


def parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel: gradients averaged over the ranks after each backward."""
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(device)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)


# --- helpers -----------------------------------------------------------------------------------

def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling (to be raised on the other ranks), else a RankError saying it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 (any error that cannot travel is described instead)
        return RankError(f"rank 0 failed: {_describe(error)}")
    return error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _ranks(ranks) -> str:
    ranks = list(ranks)
    return f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"


def _leaves(values: dict, prefix: str = "") -> dict:
    """Nested dicts as {dotted name: leaf}, so that a difference is named down to its field."""
    leaves = {}
    for name, value in values.items():
        if isinstance(value, dict) and value:
            leaves.update(_leaves(value, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = value
    return leaves


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
