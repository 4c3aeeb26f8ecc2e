"""Features of a trained network: the spatial mean of one inner map of a stored run, stored in the
feature cache like a scattering's (`FeatureConfig(producer="network", run_id=…, depth=…)`).

Apart from `explorer.features` because it reads the run store, which itself builds networks: the
feature cache stays below both.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from explorer.features import FeatureConfig, compute_features
from explorer.nets.extract import inner_means
from explorer.runs import RunStore


def network_transform(run_id: str, depth: int, device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch of images (B, 3, H, W) → the spatial mean (B, K) of the inner map at ``depth`` of the
    stored run ``run_id`` (CNN13: depths 2..13, its 12 inner non-linearities), in inference mode."""
    model = RunStore().load(run_id).build_model(device)

    def transform(x: torch.Tensor) -> torch.Tensor:
        means = next(inner_means(model, [x]))
        if not 2 <= depth < 2 + len(means):
            raise ValueError(f"depth must be 2..{1 + len(means)} (the inner maps of {run_id}), got {depth}.")
        return means[depth - 2]
    return transform



def compute_network_features(config: FeatureConfig, images: np.ndarray | None = None, *, device=None,
                             **kwargs) -> tuple[np.ndarray, dict]:
    """`compute_features` for a network producer: loads ``config.run_id`` and stores the spatial mean of
    its inner map at ``config.depth`` (keyword arguments as for `compute_features`)."""
    if config.producer != "network":
        raise ValueError(f"compute_network_features needs a network producer, got {config.producer!r}.")
    transform = network_transform(config.run_id, config.depth, device)
    return compute_features(config, images, device=device, transform=transform, **kwargs)
