"""Scattering page: choose an image, see S0, the S1 grid, the S2 children of a path, energies and the disk."""
from __future__ import annotations

import threading
import traceback

import holoviews as hv
import panel as pn
import param
from holoviews.core.options import SkipRendering

from explorer.analysis import cache
from explorer.data import DatasetNotFoundError, ImageError, list_images, sources
from explorer.data.images import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from explorer.views import scattering as sv

from .base import Page, figure, labelled, theta_format, theta_label

SOURCES = ["sample image", "synthetic pattern", "CIFAR-10 test image", "uploaded file"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", "image/png", "image/jpeg"]


class ScatteringPage(Page):
    title = "Scattering"

    source = param.Selector(default="sample image", objects=SOURCES, label="Image source")
    sample_name = param.Selector(default="camera", objects=list_images()["sample"], label="Sample image")
    pattern = param.Selector(default="grating", objects=list_images()["synthetic"], label="Pattern")
    angle = param.Number(30.0, bounds=(0.0, 180.0), step=7.5, label="Pattern angle (degrees, wave vector)")
    period = param.Number(8.0, bounds=(3.0, 32.0), step=1.0, label="Grating period (pixels)")
    cifar_class = param.Selector(default="cat", objects=CIFAR_CLASSES, label="CIFAR-10 class")
    cifar_index = param.Integer(0, bounds=(0, 999), label="Index within the class (test split)")
    size = param.Selector(default=64, objects=list(sources.SIZES), label="Image size (pixels)")
    J = param.Integer(3, bounds=(1, 6), label="J (scales; averaging over 2ᴶ pixels)")
    L = param.Selector(default=8, objects=[4, 6, 8, 12], label="L (angles θ = index·180°/L)")
    j1 = param.Integer(0, bounds=(0, 2), label="j1 (scale of the selected path)")
    theta1 = param.Integer(0, bounds=(0, 7), label="θ1 index")

    image = param.Array(default=None, precedence=-1)
    result = param.Parameter(default=None, precedence=-1)

    def __init__(self, **params):
        super().__init__(**params)
        self._generation = 0
        self._upload_bytes: bytes | None = None
        self._lock = threading.Lock()
        if not sources.cifar_available():
            self.param.source.objects = [s for s in SOURCES if not s.startswith("CIFAR")]
        self._sync_bounds()
        # Not a FileInput: it sends the whole file in one websocket message, and one over Bokeh's 20 MB limit
        # closes the session. FileDropper refuses a file over max_file_size in the browser (its message names
        # the limit) and sends the others in one chunk each (several chunks could be handled out of order
        # by the worker threads). previews=["pdf"], not []: an empty list is not sent, and the browser's
        # default previews images, which throws an uncaught error on a file that is not one.
        self.upload = pn.widgets.FileDropper(
            accepted_filetypes=UPLOAD_TYPES, multiple=False, max_file_size=f"{MAX_UPLOAD_MB}MB",
            chunk_size=MAX_UPLOAD_BYTES + 1_000_000, previews=["pdf"], layout="compact",
            sizing_mode="stretch_width")
        self.upload.param.watch(self._on_upload, "value")
        # precedence=1: after the source's own widgets are shown, so the file picker appears even if
        # loading an image fails
        self.param.watch(self._update_image, ["source", "sample_name", "pattern", "angle", "period",
                                              "cifar_class", "cifar_index", "size"], precedence=1)
        self.param.watch(self._update_result, ["image", "J", "L"])
        self.param.watch(self._on_shape, ["J", "L"])
        self._update_image()

        sel = {"result": self.param.result, "j1": self.param.j1, "theta1": self.param.theta1}
        res = {"result": self.param.result}
        dm = lambda callback, **kw: hv.DynamicMap(pn.bind(callback, **kw))
        self.image_pane = pn.pane.HoloViews(dm(self._image_view, image=self.param.image), linked_axes=False)
        self.s0_pane = pn.pane.HoloViews(dm(self._view, fn=sv.s0_view, **res), linked_axes=False)
        # The S1 grid depends on the result only. Boxing the selected tile in an overlay made every θ1 move
        # redraw the whole grid (+50 ms in the browser); the selected (j1, θ1) is named in the titles at right.
        self.s1_pane = pn.pane.HoloViews(dm(self._view, fn=sv.s1_grid, **res), linked_axes=False)
        self.s2_pane = pn.pane.HoloViews(dm(self._view, fn=sv.s2_children, **sel), linked_axes=False)
        self.modulus_pane = pn.pane.HoloViews(dm(self._view, fn=sv.modulus_view, **sel), linked_axes=False)
        self.order_pane = pn.pane.HoloViews(dm(self._view, fn=sv.energy_per_order_figure, **res), linked_axes=False)
        self.path_pane = pn.pane.HoloViews(dm(self._view, fn=sv.energy_per_path_figure, **res), linked_axes=False)
        # The S1 disk depends on the result only, too: a θ1 move does
        # not redraw its polygons, which would cost ~45 ms (HoloViews recomputes polygon data in an overlay).
        self.disk1_pane = pn.pane.HoloViews(dm(self._view, fn=sv.disk_order1, **res), linked_axes=False)
        self.disk2_pane = pn.pane.HoloViews(dm(self._view, fn=sv.disk_order2, **sel), linked_axes=False)
        self._result_panes = [self.s0_pane, self.s1_pane, self.s2_pane, self.modulus_pane, self.order_pane,
                              self.path_pane, self.disk1_pane, self.disk2_pane]

        w = pn.widgets
        self._source_widgets = {
            "sample image": [w.Select.from_param(self.param.sample_name)],
            "synthetic pattern": [w.Select.from_param(self.param.pattern), w.FloatSlider.from_param(self.param.angle),
                                  w.FloatSlider.from_param(self.param.period)],
            "CIFAR-10 test image": [w.Select.from_param(self.param.cifar_class),
                                    w.IntInput.from_param(self.param.cifar_index)],
            "uploaded file": [pn.pane.Markdown(f"**PNG or JPEG up to {MAX_UPLOAD_MB} MB**; colour is converted "
                                               "to gray, the centre square is resized to the image size.",
                                               margin=(0, 10)), self.upload],
        }
        self.theta1_slider = w.IntSlider.from_param(self.param.theta1, format=theta_format(self.L),
                                                    label=theta_label("θ1", self.L))
        self.controls = pn.Column(
            w.Select.from_param(self.param.source),
            *[x for ws in self._source_widgets.values() for x in ws],
            labelled(w.RadioButtonGroup.from_param(self.param.size), self.param.size.label),
            w.IntSlider.from_param(self.param.J),
            labelled(w.RadioButtonGroup.from_param(self.param.L), self.param.L.label),
            pn.pane.Markdown("**Selected path** (drives S2, |x ⋆ ψ| and the order-2 disk)", margin=(10, 10, 0, 10)),
            w.IntSlider.from_param(self.param.j1),
            self.theta1_slider,
            sizing_mode="stretch_width",
        )
        self._show_source_widgets()
        self.param.watch(lambda *_: self._show_source_widgets(), "source")

    # -- state ------------------------------------------------------------------------------------
    def _sync_bounds(self):
        self.param.j1.bounds = (0, self.J - 1)
        self.param.theta1.bounds = (0, self.L - 1)

    def _on_shape(self, *_):
        with param.parameterized.batch_call_watchers(self):
            self._sync_bounds()
            self.j1 = min(self.j1, self.J - 1)
            self.theta1 = min(self.theta1, self.L - 1)
        slider = getattr(self, "theta1_slider", None)
        if slider is not None and slider.format.args["L"] != self.L:
            slider.format = theta_format(self.L)
            slider.label = theta_label("θ1", self.L)  # after the format: the new title redraws the value with it

    def _show_source_widgets(self):
        for name, widgets in self._source_widgets.items():
            for widget in widgets:
                widget.visible = name == self.source

    def _on_upload(self, event):
        if not event.new:  # the file was removed from the dropper: keep showing the last image
            return
        self._upload_bytes = list(event.new.values())[-1]  # one file at a time (multiple=False)
        if self.source != "uploaded file":
            self.source = "uploaded file"  # triggers _update_image
        else:
            self._update_image()

    def load_image(self):
        """The current source's image as (size, size) gray, and a note (or None)."""
        size = int(self.size)
        if self.source == "sample image":
            return sources.sample(self.sample_name, size), None
        if self.source == "synthetic pattern":
            return sources.synthetic(self.pattern, size, float(self.angle), float(self.period)), None
        if self.source == "CIFAR-10 test image":
            return sources.cifar_image(self.cifar_class, int(self.cifar_index), size), (
                f"CIFAR-10 test image {self.cifar_index} of class {self.cifar_class} (32×32, gray, resized to {size})")
        if self._upload_bytes is None:
            raise ImageError("no file uploaded yet: choose a PNG or JPEG with the file picker")
        return sources.uploaded(self._upload_bytes, size)

    def _update_image(self, *_):
        if self.source == "uploaded file" and self._upload_bytes is None:  # not an error: the next step
            self.show_error(None)
            self.show_note(f"Choose a PNG or JPEG (up to {MAX_UPLOAD_MB} MB) with the file picker on the left; "
                           "the plots show the previous image until then.")
            return
        self.image_pane_loading(True)
        try:
            image, note = self.load_image()
        except DatasetNotFoundError as exc:
            self.show_error(f"CIFAR-10 is not available: {exc}")
            return
        except (ImageError, ValueError, OSError) as exc:
            reason = str(exc).rstrip()
            self.show_error(f"Cannot use this image: {reason}{'' if reason.endswith(('.', ')')) else '.'}")
            return
        except MemoryError:
            self.show_error("Cannot use this image: it does not fit in memory.")
            return
        except Exception as exc:  # noqa: BLE001  (keep the session alive)
            traceback.print_exc()
            self.show_error(f"Unexpected error while loading the image: {exc!r}")
            return
        finally:
            self.image_pane_loading(False)
        self.show_error(None)
        self.show_note(note)
        self.image = image

    def image_pane_loading(self, on: bool):
        pane = getattr(self, "image_pane", None)
        if pane is not None:
            pane.loading = on

    def _update_result(self, *_):
        if self.image is None:
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        panes = getattr(self, "_result_panes", [])
        for p in panes:
            p.loading = True
        try:
            result = cache.scatter(self.image, int(self.J), int(self.L))
        except (ValueError, MemoryError, RuntimeError) as exc:
            self.show_error(f"Cannot compute the scattering transform: {exc}")
            return
        finally:
            for p in panes:
                p.loading = False
        if generation == self._generation:
            self.show_error(None)
            self.result = result

    # -- views ------------------------------------------------------------------------------------
    def _image_view(self, image):
        if image is None:
            return sv.image_view(sources.synthetic("disk", 32), "no image")
        return self.guarded(sv.image_view, image, f"Input image ({image.shape[1]}×{image.shape[0]})")

    def _view(self, fn, result, j1=None, theta1=None):
        if result is None:  # the first image failed to load: the alert says why
            raise SkipRendering("no scattering result yet")
        if j1 is None:
            return self.guarded(fn, result)
        return self.guarded(fn, result, min(j1, result.J - 1), min(theta1, result.L - 1))

    def __panel__(self):
        intro = pn.pane.Markdown(
            "## Scattering\n"
            r"$$S_J x$$ keeps, for every path of wavelets, the average of a modulus: $$S_0 x = x \star \phi_J$$, "
            r"$$S_1 x = |x \star \psi_{j_1,\theta_1}| \star \phi_J$$, "
            r"$$S_2 x = \big||x \star \psi_{j_1,\theta_1}| \star \psi_{j_2,\theta_2}\big| \star \phi_J$$ "
            r"($$j_2 \gt j_1$$). Choose an image and $$(J, L)$$ on the left, then a path $$(j_1, \theta_1)$$ to "
            r"follow it to order 2. The tabs show the same result as paths, as a disk (angle = $$\theta$$, "
            "radius = scale) and as energies.", sizing_mode="stretch_width")
        C = sv.CAPTIONS
        # Three tabs, rendered only when opened (dynamic): the browser's redraw time on a slider move grows
        # with every plot on the page, not only the redrawn ones (9 plots at once put a θ1 move over 200 ms).
        paths = pn.Column(
            pn.FlexBox(figure(self.image_pane, C["image"], width=310), figure(self.s0_pane, C["s0"], width=310),
                       figure(self.modulus_pane, C["modulus"], width=310)),
            pn.FlexBox(figure(self.s1_pane, C["s1"], width=600), figure(self.s2_pane, C["s2"], width=600)),
            sizing_mode="stretch_width")
        disks = pn.FlexBox(figure(self.disk1_pane, C["disk1"]), figure(self.disk2_pane, C["disk2"]))
        energy = pn.FlexBox(figure(self.order_pane, C["energy_order"]),
                            figure(self.path_pane, C["energy_path"], width=600))
        self.tabs = pn.Tabs(("Paths: S0, S1, S2", paths), ("Scattering disk", disks), ("Energy", energy),
                            dynamic=True, sizing_mode="stretch_width")
        return pn.Column(intro, self.alert, self.note, self.tabs, sizing_mode="stretch_width")
