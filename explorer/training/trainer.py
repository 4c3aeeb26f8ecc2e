"""The training loop: seeded, resumable, on CUDA when present (mixed precision), else the CPU.

`train(config)` → the finished `Run` in the run store. Each epoch trains on shuffled, augmented
batches, evaluates on the test split and saves a checkpoint (weights, optimizer, step count, RNG
states), so a killed run continues with ``resume=True`` exactly where it stopped: on the CPU a
resumed run reproduces the uninterrupted one bit for bit.

Under ``torchrun`` every rank runs `train` (see `explorer.training.distributed`): the model in
DistributedDataParallel, each rank on its contiguous share of every global batch, rank 0 alone
writing the run store and printing.
"""
from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from explorer.config import default_device
from explorer.nets import build_model, registry
from explorer.runs import Run, RunExistsError, RunStore, inspect_run
from explorer.runs.lock import raise_if_locked
from explorer.runs.provenance import session

from . import augment as aug
from . import distributed
from .config import normalise_config
from .data import DeviceData, load_images, load_scattering, select
from .schedules import lr_at, repeats

EVAL_BATCH = 1000


def resolve_device(device=None) -> torch.device:
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but PyTorch sees no usable GPU; use --device cpu.")
    return device


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA only: bfloat16 where supported (same range as float32, so no loss
    scaling; ρ = sign·√|x| stays finite), float16 with a GradScaler on older GPUs."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


_FLOAT32_LOCK = threading.Lock()
_float32_users = 0
_tf32_before: tuple[bool, bool] | None = None


@contextlib.contextmanager
def _full_float32(device: torch.device):
    """Evaluate in true float32 on CUDA (TF32 off). The flags are process-wide: while several threads
    evaluate at once, the first turns TF32 off and the last one out restores what was there before."""
    global _float32_users, _tf32_before
    if device.type != "cuda":
        yield
        return
    with _FLOAT32_LOCK:
        if _float32_users == 0:
            _tf32_before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        _float32_users += 1
    try:
        yield
    finally:
        with _FLOAT32_LOCK:
            _float32_users -= 1
            if _float32_users == 0:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = _tf32_before


def load_data(config: dict, split: str, device: torch.device, progress: bool = False) -> DeviceData:
    """The split a run trains or evaluates on, on ``device`` when it fits (subset and limits
    applied): the images, or the stored scattering features for a model that trains on features."""
    config = normalise_config(config)
    dataset = config["dataset"]
    spec = registry.get(config["model"])
    if spec.trains_on == "features":
        source = load_scattering(dataset, split, **spec.feature_params(config["model_config"]),
                                 device=device, progress=progress)
    else:
        source = load_images(dataset, split)
    if split == "train":
        source = select(source, config["subset"], config["limit_train"])
    else:
        source = select(source, None, config["limit_test"])
    return DeviceData(source, device)


def model_augmenter(config: dict, model) -> Callable:
    """The model's own augmentation (its registry entry's), else the random crop and flip of images."""
    a = config["augment"]
    spec = registry.get(config["model"])
    if spec.augmenter is not None:
        return spec.augmenter(a, model)
    if not a["flip"] and not a["crop_padding"]:
        return lambda x, g: x
    return lambda x, g: aug.random_crop_flip(x, a["crop_padding"], a["flip"], g, a["padding_mode"])


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DeviceData, batch_size: int = EVAL_BATCH
             ) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in [0, 1]) of ``model`` in inference mode on ``data``.

    Always in full float32 (no autocast, no TF32 on CUDA), so that a stored accuracy is what a
    fresh evaluation on any device gives, the CPU included."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    try:
        with _full_float32(data.device):
            for x, y in data.batches(batch_size):
                logits = model(device_layout(x, model)).float()
                loss += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    return loss.item() / len(data), correct.item() / len(data)


def evaluate_run(run: Run, model: torch.nn.Module | None = None, split: str = "test",
                 device=None) -> tuple[float, float]:
    """Evaluate a stored run's network, or a modified copy of it (``model``, e.g. W₁ thresholded),
    on the run's own data: (loss, accuracy)."""
    device = resolve_device(device)
    model = (model if model is not None else run.build_model()).to(device)
    return evaluate(model, load_data(run.config, split, device))


def device_layout(x: torch.Tensor, model) -> torch.Tensor:
    # channels_last images: the layout tensor-core convolutions want (CUDA only, see prepare_model)
    if x.is_cuda and x.ndim == 4 and getattr(model, "_channels_last", False):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # CPU and every CUDA device


def _rng_state(device: torch.device, generators: dict[str, torch.Generator]) -> dict:
    state = {name: g.get_state() for name, g in generators.items()}
    state["torch"] = torch.get_rng_state()  # dropout on the CPU
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)  # dropout on the GPU
    state["device_type"] = device.type
    return state


def _restore_rng(state: dict, device: torch.device, generators: dict[str, torch.Generator],
                 log: Callable[[str], None]) -> None:
    torch.set_rng_state(state["torch"])
    generators["shuffle"].set_state(state["shuffle"])  # a CPU generator on every device
    if state.get("device_type") == device.type:
        generators["augment"].set_state(state["augment"])
        if device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
    else:
        log(f"note: resumed on {device.type} a run checkpointed on {state.get('device_type')}: "
            f"its random augmentations continue from a fresh seed.")


def _restore_rank_rng(training_state: dict, world: distributed.World, seed: int, step: int,
                      device: torch.device, generators: dict[str, torch.Generator],
                      log: Callable[[str], None]) -> None:
    """Rank 0 takes the checkpoint's streams (a single process's). Rank r > 0 takes its own when the
    checkpoint was written by a world of this size, else rank 0's shuffle order (shared by every rank)
    with fresh streams of its own for augmentation and dropout."""
    if world.main:
        _restore_rng(training_state["rng"], device, generators, log)
        return
    saved = training_state.get("rank_rng") or []
    if training_state.get("world_size") == world.size and len(saved) == world.size - 1:
        _restore_rng(saved[world.rank - 1], device, generators, log)
        return
    generators["shuffle"].set_state(training_state["rng"]["shuffle"])
    fresh = distributed.rank_seed(seed + step, world.rank)
    generators["augment"].manual_seed(fresh + 2)
    torch.manual_seed(fresh)


def train(config: dict, store: RunStore | None = None, resume: bool = False,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
          device=None, deterministic: bool = False) -> Run:
    """Train the network of ``config`` (see `explorer.training.config`; a partial config gets
    defaults) and return its run. A complete run is returned as is; a partial one is continued
    only with ``resume=True`` (otherwise RunExistsError, so no run is ever overwritten).
    ``on_epoch`` receives each epoch's metrics record. ``deterministic`` asks PyTorch for
    deterministic kernels (CUDA; the CPU is deterministic already).

    Under torchrun (WORLD_SIZE > 1) every rank calls this with the same arguments (checked: a rank
    given another configuration stops every rank with a message naming the fields). Each rank
    trains on ``cuda:LOCAL_RANK`` (or the CPU, with gloo) on its contiguous share of each batch of
    the schedule's batch size: the same global batches, learning rates and steps as one process.
    Plain BatchNorm layers normalise with the statistics of the whole global batch (SyncBatchNorm
    on CUDA, `distributed.GlobalBatchNorm` on the CPU), so the optimisation is the single process's
    up to the order of floating-point sums. Random augmentation and dropout draw from each rank's
    own stream (rank 0's is the single process's), so with them a run of N ranks follows another
    path than one process. Only rank 0 writes the run store, prints and calls ``on_epoch``; the
    other ranks return the same run."""
    config = normalise_config(config)
    device = distributed.rank_device(resolve_device(device))
    store = store if store is not None else RunStore()
    world = distributed.world(device)
    world.check_same("training configuration", config=config, resume=resume,
                     deterministic=deterministic, device=device.type)
    if not world.main:
        progress, on_epoch = False, None
    log = tqdm.write if progress else (lambda message: None)
    build_model(config["model"], **config["model_config"])  # bad options fail before reading data

    identifier = store.run_id(config)
    folder = store.root / identifier
    if world.on_main(lambda: _finished_already(folder, identifier, config, resume, log)):
        return store.load(identifier) if world.main else Run(folder)

    # a missing dataset fails here, before any run folder exists
    train_data, test_data = world.everywhere(
        lambda: (load_data(config, "train", device, progress),
                 load_data(config, "test", device, progress)), "reading the training data")
    world.check_same("data", train=len(train_data), test=len(test_data))
    with contextlib.ExitStack() as held, _determinism(device, deterministic):
        opened: list[Run] = []

        def open_run():
            run = store.create_or_open(config)
            held.enter_context(run)  # the run's lock, held by rank 0 until training ends
            opened.append(run)
            checkpoint = run.load_checkpoint()
            if checkpoint is not None and not resume:
                raise RunExistsError(_exists_message(identifier, checkpoint.epoch, config["epochs"]))
            return checkpoint

        checkpoint = world.on_main(open_run)  # every rank resumes from rank 0's checkpoint
        run = opened[0] if opened else Run(folder)
        _fit(run, config, train_data, test_data, device, checkpoint, progress, on_epoch, log,
             world)
    world.barrier()  # the other ranks return once rank 0 has finished writing
    return run


def _finished_already(folder, identifier: str, config: dict, resume: bool, log) -> bool:
    """Whether the run of ``config`` is complete; raises when a live job writes it, or when it has
    epochs and ``resume`` was not asked for."""
    if folder.is_dir():
        info = inspect_run(folder)
        if info.status == "running":
            raise_if_locked(folder)
        if info.status == "complete":
            log(f"run {identifier} is already complete (test accuracy {info.accuracy or 0:.2%}).")
            return True
        if info.epochs_done and not resume:
            raise RunExistsError(_exists_message(identifier, info.epochs_done, config["epochs"]))
    return False


def _exists_message(identifier: str, done: int, epochs: int) -> str:
    return (f"run {identifier} already has {done} of {epochs} epochs; continue it with --resume "
            f"(resume=True), or delete it with `explorer runs delete {identifier}` to start over.")


@contextlib.contextmanager
def _determinism(device: torch.device, deterministic: bool):
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    # cuDNN autotuning: faster, but may pick non-deterministic kernels
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=True)
        torch.backends.cudnn.benchmark = previous[1]


def prepare_model(config: dict, device: torch.device) -> torch.nn.Module:
    model = build_model(config["model"], **config["model_config"]).to(device)
    if device.type == "cuda" and registry.get(config["model"]).channels_last:
        model = model.to(memory_format=torch.channels_last)
        model._channels_last = True
    return model


def _fit(run: Run, config: dict, train_data: DeviceData, test_data: DeviceData,
         device: torch.device, checkpoint, progress: bool, on_epoch, log,
         world: distributed.World = distributed.SINGLE) -> None:
    schedule, epochs, seed = config["schedule"], config["epochs"], config["seed"]
    _seed(seed)  # the same initial weights on every rank
    model = prepare_model(config, device)
    if checkpoint is None:
        log(f"{registry.get(config['model']).describe(config['model_config'])}: "
            f"{sum(p.numel() for p in model.parameters()):,} parameters")
    if world.active:
        kept = distributed.synchronise_batchnorm(model, device)  # before the optimizer sees the parameters
        if kept:
            log(f"note: {', '.join(kept)} keep per-rank statistics (a model's own BatchNorm): "
                f"this run differs slightly from a single process's.")
        torch.manual_seed(distributed.rank_seed(seed, world.rank))  # dropout: each rank its own
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule["lr"],
                                momentum=schedule["momentum"], nesterov=schedule["nesterov"],
                                weight_decay=schedule["weight_decay"])
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    generators = {"shuffle": torch.Generator().manual_seed(seed + 1),  # one order for every rank
                  "augment": torch.Generator(device=device).manual_seed(
                      distributed.rank_seed(seed, world.rank) + 2)}
    augment = model_augmenter(config, model)
    batch_size, passes = schedule["batch_size"], repeats(schedule)
    steps_per_epoch = train_data.steps(batch_size, passes)
    total_steps = steps_per_epoch * epochs
    seen = len(train_data) * passes
    metrics: list[dict] = []
    step = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint.model_state)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        if scaler.is_enabled() and checkpoint.training_state.get("scaler"):
            scaler.load_state_dict(checkpoint.training_state["scaler"])
        step = checkpoint.training_state["step"]
        metrics = list(checkpoint.metrics)
        _restore_rank_rng(checkpoint.training_state, world, seed, step, device, generators, log)
        log(f"resuming run {run.id} after epoch {checkpoint.epoch} of {epochs}")
    net = distributed.parallel(model, device) if world.active else model
    this_session = session(device, str(dtype).replace("torch.", "") if dtype else None,
                           dataset=config["dataset"])
    if world.active:
        this_session["world_size"] = world.size
        this_session["ranks"] = world.gather({"host": this_session["host"],
                                              "device": this_session["device"]})
    world.on_main(functools.partial(run.begin_session, this_session))
    if len(metrics) >= epochs:
        world.on_main(run.mark_complete)
        return

    for epoch in range(len(metrics) + 1, epochs + 1):
        started = time.perf_counter()
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", unit="step",
                   leave=False, disable=not progress)
        batches = train_data.batches(batch_size, generators["shuffle"], passes, shard=world.shard)
        for i, (x, y) in enumerate(batches):
            lr = lr_at(schedule, step, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = device_layout(augment(x, generators["augment"]), model)
            # a rank's share of the global batch's mean loss (see train_step)
            weight = world.size / min(batch_size, seen - i * batch_size) if world.active else None
            loss, logits = train_step(net, optimizer, scaler, x, y, dtype, weight)
            step += 1
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            bar.update()
            if progress and i % 25 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.3g}")
        bar.close()
        world.sum_(loss_sum)
        world.sum_(correct)
        if not torch.isfinite(loss_sum):  # the same sums on every rank: every rank stops
            raise ValueError(
                f"run {run.id}: the training loss became {loss_sum.item()} in epoch {epoch} "
                f"(learning rate {lr:.3g} too high?); the run keeps its last good checkpoint.")
        test_loss, test_acc = _evaluate_world(model, test_data, world)
        record = {"epoch": epoch, "train_loss": loss_sum.item() / seen,
                  "train_acc": correct.item() / seen, "test_loss": test_loss,
                  "test_acc": test_acc, "seconds": round(time.perf_counter() - started, 3),
                  "lr": lr, "steps": step}
        metrics.append(record)
        training_state = {"step": step, "scaler": scaler.state_dict(),
                          "rng": _rng_state(device, generators)}
        if world.active:  # each rank's streams, so that a resumed run of this size continues them
            states = world.gather(training_state["rng"])
            training_state.update(world_size=world.size, rank_rng=states[1:], rng=states[0])
        world.on_main(functools.partial(run.save_checkpoint, model.state_dict(), optimizer.state_dict(),
                                        epoch, metrics, training_state=training_state))
        log(format_epoch(record, epochs))
        if on_epoch is not None:
            on_epoch(record)
    world.on_main(run.mark_complete)
    log(f"run {run.id} complete: test accuracy {metrics[-1]['test_acc']:.2%} ({run.path})")


def _evaluate_world(model: torch.nn.Module, data: DeviceData, world: distributed.World
                    ) -> tuple[float, float]:
    """`evaluate` on every rank's contiguous share of ``data``, the sums added over the ranks."""
    if not world.active:
        return evaluate(model, data)
    world.broadcast_buffers(model)  # a model's own (unsynchronised) BatchNorm: rank 0's statistics
    start, stop = distributed.shard_bounds(len(data), world.rank, world.size)
    was_training = model.training
    model.eval()
    sums = torch.zeros(2, device=data.device, dtype=torch.float64)
    try:
        with torch.no_grad(), _full_float32(data.device):
            for first in range(start, stop, EVAL_BATCH):
                x, y = data.batch(torch.arange(first, min(first + EVAL_BATCH, stop)))
                logits = model(device_layout(x, model)).float()
                sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
                sums[1] += (logits.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    loss, correct = world.sum_(sums).tolist()
    return loss / len(data), correct / len(data)


def train_step(model, optimizer, scaler, x: torch.Tensor, y: torch.Tensor,
               dtype: torch.dtype | None, weight: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step (autocast to ``dtype`` when given); returns the loss and the logits.

    ``weight`` (distributed training): the loss minimised is the sum over this rank's share times
    ``weight`` = world size / global batch size. DistributedDataParallel averages the ranks'
    gradients, so the step is that of the global batch's mean loss even when the shares are unequal
    (a last batch not divisible by the world size, maybe empty on some ranks). The loss returned is
    then the mean over this rank's share."""
    with _autocast(x.device, dtype):
        logits = model(x).float()
    if weight is None:
        loss = minimised = F.cross_entropy(logits, y)
    else:
        total = F.cross_entropy(logits, y, reduction="sum")
        minimised = total * weight
        loss = total.detach() / max(len(y), 1)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(minimised).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss, logits


def format_epoch(record: dict, epochs: int) -> str:
    return (f"epoch {record['epoch']:>3}/{epochs}  train loss {record['train_loss']:.4f} "
            f"acc {record['train_acc']:6.2%}  |  test loss {record['test_loss']:.4f} "
            f"acc {record['test_acc']:6.2%}  |  lr {record['lr']:.4g}  {record['seconds']:.1f} s")
