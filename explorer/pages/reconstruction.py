"""Reconstruction page: recover an image from its scattering coefficients by gradient descent, live."""
from __future__ import annotations

import time

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.analysis.reconstruction import initial_image
from explorer.data import sources
from explorer.views import reconstruction as rv

from .base import Page, figure, in_worker, labelled


class ReconstructionPage(Page):
    title = "Reconstruction"

    image_name = param.Selector(default="camera", objects=sources.image_names(), label="Image")
    size = param.Selector(default=32, objects=[32, 64], label="Image size (pixels)")
    # J = 4 on 32×32: order 1 keeps 132 numbers for 1024 pixels and returns a blur (pixel error 0.26), order 2
    # the cameraman (0.06); at J = 3 order 1 still looked like the image (0.10 against 0.03).
    J = param.Integer(4, bounds=(1, 4), label="J (scales)")
    max_order = param.Selector(default=2, objects=[1, 2], label="Orders used")
    steps = param.Integer(150, bounds=(20, 500), step=10, label="Evaluations (L-BFGS)")

    current = param.Array(default=None, precedence=-1)
    losses = param.List(default=[], precedence=-1)
    status = param.String(default="", precedence=-1)
    running = param.Boolean(default=False, precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self._cancel = False
        self.current = self.start_image()
        dm = lambda callback, **kw: hv.DynamicMap(pn.bind(callback, **kw))
        self.original_pane = pn.pane.HoloViews(dm(self._original, name=self.param.image_name, size=self.param.size),
                                               linked_axes=False)
        self.current_pane = pn.pane.HoloViews(dm(self._current, x=self.param.current, status=self.param.status),
                                              linked_axes=False)
        self.loss_pane = pn.pane.HoloViews(dm(self._loss, losses=self.param.losses), linked_axes=False)
        self.run_button = pn.widgets.Button(label="Reconstruct", color="primary", sizing_mode="stretch_width")
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", sizing_mode="stretch_width",
                                             disabled=True)
        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(self._on_stop)
        self.param.watch(self._on_image, ["image_name", "size"])
        w = pn.widgets
        self.controls = pn.Column(
            w.Select.from_param(self.param.image_name),
            labelled(w.RadioButtonGroup.from_param(self.param.size)),
            w.IntSlider.from_param(self.param.J),
            labelled(w.RadioButtonGroup.from_param(self.param.max_order)),
            w.IntSlider.from_param(self.param.steps),
            pn.Row(self.run_button, self.stop_button, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def start_image(self) -> np.ndarray:
        """The noise the optimisation starts from (the same seed as `reconstruct`'s), shown before a run."""
        return initial_image(sources.named_image(self.image_name, int(self.size))).astype(np.float32)

    def _on_image(self, *_):
        self.current = self.start_image()
        self.losses = []
        self.status = ""

    def _original(self, name, size):
        return self.guarded(lambda: rv.current_view(sources.named_image(name, size), f"Target x ({size}×{size})"))

    def _current(self, x, status):
        return rv.current_view(x, status or "Start x̂₀: noise (press Reconstruct)")

    def _loss(self, losses):
        return rv.loss_figure(losses, f"Loss: {losses[-1][1]:.2e}" if losses else "Loss")

    def _on_stop(self, *_):
        self._cancel = True

    def busy(self) -> bool:
        return self.running or super().busy()

    def cancel_work(self) -> None:
        self._cancel = True  # the optimisation stops at its next evaluation
        super().cancel_work()

    async def _on_run(self, *_):
        """Run `reconstruct` in a worker thread; poll its progress on the event loop and show it live."""
        from explorer.analysis.reconstruction import reconstruct

        if self.running:
            return
        self.show_error(None)
        x = sources.named_image(self.image_name, int(self.size))
        J, order, steps = int(self.J), int(self.max_order), int(self.steps)
        progress: dict = {"losses": [], "image": None, "step": 0}
        self._cancel = False

        def callback(step, loss, image):
            progress["losses"].append((int(step), float(loss)))
            progress["image"], progress["step"] = image, step
            return not self._cancel

        self.running = True
        self.run_button.disabled, self.stop_button.disabled = True, False
        started = time.perf_counter()

        def show():
            if progress["image"] is not None:
                self.current = np.asarray(progress["image"], np.float32)
                self.losses = list(progress["losses"])
                self.status = (f"order ≤ {order}, J={J}: {progress['step']} / {steps} evaluations, "
                               f"{time.perf_counter() - started:.1f} s")

        try:
            result = await in_worker(reconstruct, x, J, 8, order, steps, callback=callback, callback_every=5,
                                     poll=show)
        except (ValueError, RuntimeError, MemoryError) as exc:
            self.show_error(f"Reconstruction failed: {exc}")
            return
        finally:
            self.running = False
            self.run_button.disabled, self.stop_button.disabled = False, True
        self.current = np.asarray(result.image, np.float32)
        self.losses = list(progress["losses"]) or [(result.evaluations, float(result.scattering_error) ** 2)]
        verb = "stopped" if result.cancelled else "done"
        self.status = (f"order ≤ {order}, J={J}, {verb}: pixel error {result.relative_error:.2f}, "
                       f"{result.seconds:.1f} s")

    def __panel__(self):
        C = rv.CAPTIONS
        intro = pn.pane.Markdown(
            "## Reconstruction from scattering\nHow much of an image do its scattering coefficients keep? Start "
            "from noise with the image's mean and standard deviation and descend the gradient of "
            "$$\\Vert S_J \\hat x - S_J x \\Vert^2$$ until the coefficients match. Compare **Orders used = 1** "
            "with **2** at the default $$J = 4$$ on 32×32 (a few seconds each): order 1 keeps 33 paths × 2×2 = "
            "132 numbers for 1024 pixels and gives back a blur with the right brightness, order 2 "
            "(417 × 2×2 = 1668 numbers) gives back the cameraman.", sizing_mode="stretch_width")
        return pn.Column(intro, self.alert,
                         pn.FlexBox(figure(self.original_pane, C["original"]), figure(self.current_pane, C["current"]),
                                    figure(self.loss_pane, C["loss"])),
                         sizing_mode="stretch_width")
