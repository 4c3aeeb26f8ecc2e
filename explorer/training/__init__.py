"""Training: schedules, on-device augmentation, data on the device, the resumable trainer.

    >>> from explorer.training import make_config, train
    >>> run = train(make_config("cnn13", width=32, rho="relu", epochs=30))   # → explorer.runs.Run
    >>> run.metrics[-1]["test_acc"]
"""
from .config import MODELS, make_config, normalise_config
from .schedules import SCHEDULES, get_schedule, lr_at
from .trainer import evaluate, evaluate_run, load_data, train

__all__ = ["MODELS", "SCHEDULES", "evaluate", "evaluate_run", "get_schedule", "load_data", "lr_at",
           "make_config", "normalise_config", "train"]
