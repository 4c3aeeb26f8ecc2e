"""Home page: one line per page saying what it teaches, with a link to it."""
from __future__ import annotations

import panel as pn

from .base import Page


class HomePage(Page):
    title = "Home"

    def __init__(self, **params):
        super().__init__(**params)
        self.controls = None

    def __panel__(self):
        from . import PAGES

        items = "\n".join(f"- **[{spec.title}](?page={spec.slug})**: {spec.blurb}"
                          for spec in PAGES if spec.slug != "home")
        return pn.pane.Markdown(
            "## Structures Explorer\n"
            "An interactive tour of the scattering transform (Mallat; Bruna & Mallat; Oyallon): a cascade of "
            "wavelet convolutions and moduli, averaged by a low-pass filter, which gives image descriptors "
            "invariant to translations and stable to deformations, without any learning.\n\n"
            f"{items}\n\n"
            "Conventions used on every page: x points right, y points **up**, an angle θ is measured "
            "counter-clockwise from +x in degrees, and frequencies ω are in radians per pixel.",
            sizing_mode="stretch_width", css_classes=["home-text"])
