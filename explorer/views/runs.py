"""Figures of training runs: accuracy and loss per epoch (from a run's metrics records)."""
from __future__ import annotations

import holoviews as hv

CAPTIONS = {
    "curves": "Train (dashed) and test (solid) accuracy after each epoch. Look: the gap between them is "
              "over-fitting; a curve still rising means more epochs would help.",
    "loss": "Train (dashed) and test (solid) cross-entropy per epoch (log scale).",
}

# The legend sits above the frame: inside, it covered the curves of some runs.
_OPTS = {"frame_width": 420, "frame_height": 240, "tools": ["hover"], "toolbar": "below", "show_grid": True,
         "framewise": True, "legend_position": "top"}
# framewise on the overlay alone does not refit it (HoloViews 1.23 reads each element's own option): the
# curves of a newly selected run left the previous run's ranges. Never axiswise=True (it freezes them).
_ELEMENT = {"framewise": True}


def accuracy_curves(metrics: list[dict], title: str = "Accuracy per epoch") -> hv.Overlay:
    """Train and test accuracy (%) against the epoch, from `Run.metrics` / `RunInfo.metrics`."""
    epoch = hv.Dimension("epoch", label="epoch")
    acc = hv.Dimension("accuracy", label="accuracy (%)", range=(0, 100))
    curves = []
    for key, label, dash in (("train_acc", "train", "dashed"), ("test_acc", "test", "solid")):
        points = [(m["epoch"], 100 * m[key]) for m in metrics if m.get(key) is not None]
        curves.append(hv.Curve(points, kdims=[epoch], vdims=[acc], label=label).opts(line_dash=dash, **_ELEMENT))
        curves.append(hv.Scatter(points, kdims=[epoch], vdims=[acc], label=label).opts(size=5, **_ELEMENT))
    last = [m for m in metrics if m.get("test_acc") is not None]
    if last:
        title += f" (test {100 * last[-1]['test_acc']:.2f}% after {last[-1]['epoch']})"
    return hv.Overlay(curves).opts(title=title, **_OPTS)


def loss_curves(metrics: list[dict], title: str = "Loss per epoch") -> hv.Overlay:
    epoch = hv.Dimension("epoch", label="epoch")
    loss = hv.Dimension("loss", label="cross-entropy")
    curves = []
    for key, label, dash in (("train_loss", "train", "dashed"), ("test_loss", "test", "solid")):
        points = [(m["epoch"], m[key]) for m in metrics if m.get(key) is not None]
        curves.append(hv.Curve(points, kdims=[epoch], vdims=[loss], label=label).opts(line_dash=dash, **_ELEMENT))
        curves.append(hv.Scatter(points, kdims=[epoch], vdims=[loss], label=label).opts(size=5, **_ELEMENT))
    return hv.Overlay(curves).opts(title=title, logy=True, **_OPTS)
