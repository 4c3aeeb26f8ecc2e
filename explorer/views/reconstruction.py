"""Figures of a reconstruction from scattering coefficients: the current image and the loss against steps."""
from __future__ import annotations

import holoviews as hv
import numpy as np

from .scattering import image_view

CAPTIONS = {
    "original": r"The target $$x$$: only its coefficients $$S_J x$$ are given to the optimiser, never its pixels.",
    "current": r"The estimate $$\hat x$$: before a run, the noise it starts from (mean and standard deviation of "
               r"$$x$$); then updated live while gradient descent (L-BFGS) runs. Look: with order 1 only, edges and "
               r"shapes smear into a blur; with order 2 the geometry comes back.",
    "loss": r"Loss $$\Vert S_J \hat x - S_J x \Vert^2 / \Vert S_J x \Vert^2$$ against the evaluation count (log "
            r"scale). Look: it drops by orders of magnitude, yet a low loss with order 1 can still mean a very "
            r"different image.",
}


def current_view(x: np.ndarray, title: str, size: int = 260) -> hv.Image:
    return image_view(np.clip(np.asarray(x, np.float32), 0, 1), title=title, size=size)


def loss_figure(history, title: str = "Loss") -> hv.Curve:
    """`history`: (evaluation, loss) pairs."""
    history = np.asarray(history, np.float64).reshape(-1, 2)
    steps = history[:, 0] if len(history) else np.array([0.0])
    values = np.maximum(history[:, 1], 1e-16) if len(history) else np.array([1.0])
    return hv.Curve((steps, values), hv.Dimension("rec_step", label="evaluation"),
                    hv.Dimension("rec_loss", label="relative loss ‖S x̂ − S x‖² / ‖S x‖²")).opts(
        logy=True, title=title, frame_width=380, frame_height=240, tools=["hover"], toolbar="below",
        framewise=True, show_grid=True)
