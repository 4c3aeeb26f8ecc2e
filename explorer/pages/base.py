"""What every page shares: an alert for errors (greying the plots it concerns), figures with captions."""
from __future__ import annotations

import traceback
import weakref

import panel as pn
from holoviews.core.options import SkipRendering

# pane → the Columns that `figure` drew it in: a stale plot is greyed through its frame, because a change of
# styles on a HoloViews pane itself fails in a served session (Panel 1.9 copies the plot's stylesheets back).
_FRAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def figure(obj, caption: str, width: int = 400, **kwargs) -> pn.Column:
    """A HoloViews object (or pane) with its one-line caption underneath, `width` pixels wide (fixed, so that
    figures sit side by side in a FlexBox)."""
    pane = obj if isinstance(obj, pn.viewable.Viewable) else pn.pane.HoloViews(obj, linked_axes=False, **kwargs)
    frame = pn.Column(pane, pn.pane.Markdown(f"*{caption}*", styles={"font-size": "12px"}, width=width,
                                            margin=(0, 10, 10, 10)))
    _FRAMES.setdefault(pane, weakref.WeakSet()).add(frame)
    return frame


def labelled(widget, label: str | None = None) -> pn.Column:
    """A widget that shows no title of its own (a radio group) under `label` (default: its name), in the
    sliders' style."""
    return pn.Column(pn.pane.Markdown(label or widget.name, margin=(5, 10, -12, 10), styles={"font-size": "13px"}),
                     widget, sizing_mode="stretch_width")


def theta_format(L: int):
    """How a θ-index slider shows its value: the index and its angle, "2 (45°)" for L = 8, computed in the
    browser so that a drag shows it at once."""
    from bokeh.models import CustomJSTickFormatter

    return CustomJSTickFormatter(args={"L": int(L)},
                                 code="return tick.toFixed(0) + ' (' + +(tick * 180 / L).toFixed(2) + '°)';")


def theta_label(name: str, L: int) -> str:
    # Changes with L on purpose: Bokeh redraws a slider's "title: value" on a new title, not on a new format.
    return f"{name} index (0–{int(L) - 1})"


def _is_stale(frame) -> bool:
    return all(frame.styles.get(k) == v for k, v in STALE_STYLES.items())


# How a plot that still shows the previous parameters looks while the alert explains why (greyed, faded).
STALE_STYLES = {"opacity": "0.35", "filter": "grayscale(100%)"}
CURRENT_STYLES = {"opacity": "1", "filter": "none"}  # explicit: a removed key would stay in the browser
STALE_NOTE = " The plots below still show the previous parameters (greyed out) until this is fixed."


class Page(pn.viewable.Viewer):
    """A page: its param parameters are its state, `self.alert` shows what went wrong."""

    title = "Page"
    # An error on most pages means the plots keep the previous parameters' frame; a page whose errors
    # never concern its plots (a training job that failed to start) sets this False.
    errors_leave_plots_stale = True

    def __init__(self, **params):
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")

    def show_error(self, message: str | None) -> None:
        """Show `message` in the alert and grey out every plot, which keeps its last good frame; None
        clears both."""
        stale = bool(message) and self.errors_leave_plots_stale
        self.alert.object = (message + STALE_NOTE if stale else message) or ""
        self.alert.visible = bool(message)
        for pane in self.plot_panes():
            self.mark_stale(pane, stale)

    def plot_panes(self) -> list[pn.pane.HoloViews]:
        """The page's plots (its HoloViews panes, wherever they are attributes)."""
        return [v for v in vars(self).values() if isinstance(v, pn.pane.HoloViews)]

    @staticmethod
    def mark_stale(pane, stale: bool) -> None:
        """Grey out (or restore) the figure that shows `pane`; a pane shown without `figure` stays as is."""
        for frame in _FRAMES.get(pane, ()):
            if _is_stale(frame) != stale:
                frame.styles = {**frame.styles, **(STALE_STYLES if stale else CURRENT_STYLES)}

    @staticmethod
    def is_stale(pane) -> bool:
        frames = list(_FRAMES.get(pane, ()))
        return bool(frames) and all(_is_stale(frame) for frame in frames)

    def warm_caches(self) -> None:
        """Compute what this page computes only once it is served (the server warms every page's defaults
        at start, `explorer.pages.warmup`). Rendering the page already covers its plots."""

    def show_note(self, message: str | None) -> None:
        self.note.object = message or ""
        self.note.visible = bool(message)

    def guarded(self, fn, *args, **kwargs):
        """Call a view function for a DynamicMap; on an error show it in the alert and keep the figure as it
        was (HoloViews' SkipRendering: a DynamicMap must keep returning the same type of element)."""
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, MemoryError, RuntimeError) as exc:
            self.show_error(str(exc))
            raise SkipRendering(str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (a bug: keep the session alive and say so)
            traceback.print_exc()
            self.show_error(f"Unexpected error: {exc!r}")
            raise SkipRendering(repr(exc)) from None


def run_choices(accept, first: str | None = None, detail=None) -> dict[str, str]:
    """The store's runs (shipped ones included) that `accept(info)` keeps, as selector choices: label → run
    id, "id (detail, shipped|status, accuracy %)", with the run `first` first. `detail(info)` adds a word
    on the model (None: nothing). Reads only the runs' listing (`RunStore.list`), never their weights."""
    from explorer.runs import RunStore

    found = {}
    for info in RunStore().list():
        if not accept(info):
            continue
        accuracy = f", {100 * info.accuracy:.2f} %" if info.accuracy is not None else ""
        words = [detail(info)] if detail is not None else []
        words.append(("shipped" if info.shipped else info.status) + accuracy)
        found[f"{info.id} ({', '.join(words)})"] = info.id
    return dict(sorted(found.items(), key=lambda item: item[1] != first))
