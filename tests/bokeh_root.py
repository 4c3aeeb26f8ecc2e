"""What a page would send to a browser, read without one: its Bokeh root, its plots' titles, one plot by title."""
from __future__ import annotations

import bokeh.document
import panel as pn
from bokeh.model import Model
from bokeh.models import Plot


def render(viewable) -> Model:
    return pn.panel(viewable).get_root(bokeh.document.Document())


def titles(root: Model) -> list[str]:
    # Sorted: Bokeh collects a root's models in a set, so their order follows memory addresses.
    return sorted(p.title.text for p in root.select({"type": Plot}) if p.title is not None and p.title.text)


def plot(root: Model, start: str) -> Plot:
    """The one plot whose title starts with `start`."""
    found = [p for p in root.select({"type": Plot}) if p.title is not None and p.title.text.startswith(start)]
    assert len(found) == 1, (start, titles(root))
    return found[0]
