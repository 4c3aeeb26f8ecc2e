"""Placeholder page, served by ``panel serve explorer/app.py``; the app issue replaces it."""

import panel as pn

pn.extension()

pn.Column(
    pn.pane.Markdown(
        """
# Structures Explorer

An interactive explorer of scattering transforms and CNNs, after E. Oyallon's work. Coming here:

- **Scattering**: filters, paths and coefficients of the 2D scattering transform of an image;
- **Properties**: energy per order, stability to translations, rotations and deformations;
- **Networks**: hybrid scattering + CNN models trained on CIFAR-10, and their layer-wise analysis.
"""
    ),
    sizing_mode="stretch_width",
).servable(title="Structures Explorer")
