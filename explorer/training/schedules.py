"""Optimisation schedules, as plain data stored in each run's configuration.

A schedule is a dict: SGD hyper-parameters, a batch size, a default number of epochs and a
learning-rate ``decay`` rule, evaluated per step by `lr_at` (so the scheduler's whole state is the
step count, saved with each checkpoint).

- ``paper``: the regular-boundary CNN of science.md §3 — SGD momentum 0.9, batch 128, weight decay
  2e-4, lr 0.25 halved every 10 k steps, 121 k steps (310 epochs of CIFAR-10 at 391 steps each).
- ``quick``: CNN13 in a few dozen epochs — SGD Nesterov momentum 0.9, batch 128, weight decay
  5e-4, one-cycle lr: linear warm-up from 0.015 to 0.15 over the first 15 % of the steps, then a
  cosine to 0. Aims at about 85 % on CIFAR-10 for K = 32 in 30 epochs (a few minutes on a GPU).
- ``sle``: Scattering + SLE on stored features — SGD Nesterov momentum 0.9, batch 128, weight
  decay 5e-4, one-cycle lr peaking at 0.05, 30 epochs.
- ``hybrid``: Scattering + linear / MLP / WRN on stored features (science.md §4) — SGD Nesterov
  momentum 0.9, batch 128, weight decay 5e-4, one-cycle lr peaking at 0.1, 30 epochs.
- ``hybrid-linear``: the same for Scattering + linear, peaking at 0.01: at 0.1 the 15 552 correlated
  inputs make SGD noisy (test loss rising to 13, 54 % at mid-run on CIFAR-10).
- ``small-paper``: the small-sample protocol of science.md §4 — SGD lr 0.1, momentum 0.9, weight
  decay 5e-4, batch 128, 200 epochs of 20 passes each (``repeats``), lr × 0.2 at epochs 60, 120
  and 160.
- ``small-quick``: the same shape in 10 epochs of 5 passes, lr × 0.2 at epochs 3, 6 and 8: 1.25 %
  of the paper's steps, for a CPU.
- ``hcnn-paper``: the multiscale hierarchical CNN's released recipe (science.md §5) — SGD Nesterov
  momentum 0.9, batch 50, lr 0.35 × (1, ½, ¼, 0.12, 0.06, 0.03, 0.015, 0.007, 0.00035, 0.00017) from
  epochs 0, 40, 80, …, 300, 320 epochs; its Keras L2 of 3e-4 on the weights is a weight decay of 6e-4
  (here on every parameter, BN included).
- ``hcnn-quick``: the hierarchical CNN in 40 epochs — SGD Nesterov momentum 0.9, batch 64, weight
  decay 5e-4, one-cycle lr peaking at 0.1. Not yet measured on a GPU.

An optional ``repeats`` (default 1) makes one epoch that many passes over the training set, each in a
fresh order: the paper's "200·20 epochs" on 100 images, and fewer evaluations and checkpoints.

Each model names its default schedule in its registry entry (`explorer.nets.registry`).
"""
from __future__ import annotations

import copy
import math

DECAYS = ("step", "multistep", "piecewise", "onecycle", "cosine", "constant")

SCHEDULES: dict[str, dict] = {
    "paper": {
        "name": "paper", "epochs": 310, "batch_size": 128, "lr": 0.25, "momentum": 0.9,
        "nesterov": False, "weight_decay": 2e-4,
        "decay": {"kind": "step", "every_steps": 10_000, "factor": 0.5},
    },
    "quick": {
        "name": "quick", "epochs": 30, "batch_size": 128, "lr": 0.15, "momentum": 0.9,
        "nesterov": True, "weight_decay": 5e-4,
        "decay": {"kind": "onecycle", "warmup": 0.15, "start_factor": 0.1},
    },
    "sle": {
        "name": "sle", "epochs": 30, "batch_size": 128, "lr": 0.05, "momentum": 0.9,
        "nesterov": True, "weight_decay": 5e-4,
        "decay": {"kind": "onecycle", "warmup": 0.15, "start_factor": 0.1},
    },
    "hybrid": {
        "name": "hybrid", "epochs": 30, "batch_size": 128, "lr": 0.1, "momentum": 0.9,
        "nesterov": True, "weight_decay": 5e-4,
        "decay": {"kind": "onecycle", "warmup": 0.15, "start_factor": 0.1},
    },
    "hybrid-linear": {
        "name": "hybrid-linear", "epochs": 30, "batch_size": 128, "lr": 0.01, "momentum": 0.9,
        "nesterov": True, "weight_decay": 5e-4,
        "decay": {"kind": "onecycle", "warmup": 0.15, "start_factor": 0.1},
    },
    "small-paper": {
        "name": "small-paper", "epochs": 200, "repeats": 20, "batch_size": 128, "lr": 0.1,
        "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
        "decay": {"kind": "multistep", "milestones": [60, 120, 160], "factor": 0.2},
    },
    "small-quick": {
        "name": "small-quick", "epochs": 10, "repeats": 5, "batch_size": 128, "lr": 0.1,
        "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
        "decay": {"kind": "multistep", "milestones": [3, 6, 8], "factor": 0.2},
    },
    "hcnn-paper": {
        "name": "hcnn-paper", "epochs": 320, "batch_size": 50, "lr": 0.35, "momentum": 0.9,
        "nesterov": True, "weight_decay": 6e-4,
        "decay": {"kind": "piecewise", "milestones": [40, 80, 120, 160, 200, 240, 260, 280, 300],
                  "factors": [1.0, 0.5, 0.25, 0.12, 0.06, 0.03, 0.015, 0.007, 0.00035, 0.00017]},
    },
    "hcnn-quick": {
        "name": "hcnn-quick", "epochs": 40, "batch_size": 64, "lr": 0.1, "momentum": 0.9,
        "nesterov": True, "weight_decay": 5e-4,
        "decay": {"kind": "onecycle", "warmup": 0.15, "start_factor": 0.1},
    },
}


def get_schedule(name: str) -> dict:
    """A copy of a named schedule."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    return copy.deepcopy(SCHEDULES[name])


def check_schedule(schedule: dict) -> None:
    """Raise ValueError naming the first invalid field."""
    def positive(key, integer=False):
        value = schedule.get(key)
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not value > 0:
            kind = "an integer" if integer else "a number"
            raise ValueError(f"schedule {key} must be {kind} > 0, got {value!r}")

    positive("batch_size", integer=True)
    positive("lr")
    for key in ("momentum", "weight_decay"):
        value = schedule.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"schedule {key} must be a number ≥ 0, got {value!r}")
    if "repeats" in schedule:
        positive("repeats", integer=True)
    decay = schedule.get("decay")
    if not isinstance(decay, dict) or decay.get("kind") not in DECAYS:
        raise ValueError(f"schedule decay must be a dict whose kind is one of {DECAYS}, got {decay!r}")
    if decay["kind"] == "piecewise" and len(decay.get("factors", ())) != len(decay.get("milestones", ())) + 1:
        raise ValueError(f"a piecewise decay needs one factor more than milestones (one per interval), got "
                         f"{len(decay.get('factors', ()))} factors for {len(decay.get('milestones', ()))} milestones")


def repeats(schedule: dict) -> int:
    """Passes over the training set in one epoch (absent: 1, so older runs keep their ids)."""
    return schedule.get("repeats", 1)


def lr_at(schedule: dict, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Learning rate of optimisation step ``step`` (0-based) out of ``total_steps``."""
    lr, decay = schedule["lr"], schedule["decay"]
    kind = decay["kind"]
    if kind == "constant":
        return lr
    if kind == "step":  # × factor every `every_steps` steps
        return lr * decay["factor"] ** (step // decay["every_steps"])
    if kind == "multistep":  # × factor at each of the epochs in `milestones`
        passed = sum(step >= m * steps_per_epoch for m in decay["milestones"])
        return lr * decay["factor"] ** passed
    if kind == "piecewise":  # × factors[i] in the i-th interval between the epochs in `milestones`
        passed = sum(step >= m * steps_per_epoch for m in decay["milestones"])
        return lr * decay["factors"][passed]
    progress = step / max(total_steps, 1)
    if kind == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    # onecycle: linear warm-up from lr·start_factor to lr, then a cosine down to 0
    warmup = decay["warmup"]
    if progress < warmup:
        start = lr * decay["start_factor"]
        return start + (lr - start) * progress / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))
