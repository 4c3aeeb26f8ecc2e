"""The app's pages. Adding a page: write one module with a `pn.viewable.Viewer` subclass, add one line to PAGES.

Each entry is (slug, title, "module:Class", blurb). Classes are imported only when their page is opened,
so the app starts fast; the home page lists every entry with its blurb.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple


class PageSpec(NamedTuple):
    slug: str
    title: str
    target: str  # "package.module:ClassName"
    blurb: str

    def load(self):
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


PAGES: list[PageSpec] = [
    PageSpec("home", "Home", "explorer.pages.home:HomePage", "What each page teaches."),
    PageSpec("wavelets", "Wavelets", "explorer.pages.wavelets:WaveletsPage",
             r"The Morlet wavelets $$\psi_{j,\theta}$$ and the low-pass $$\phi_J$$ in space and in Fourier, how they tile the "
             "frequency plane, and the Littlewood–Paley sum that bounds how much the transform can expand."),
    PageSpec("scattering", "Scattering", "explorer.pages.scattering:ScatteringPage",
             r"The scattering coefficients $$S_0, S_1, S_2$$ of an image you choose: maps per path, energy per "
             "order, and the scattering disk where angle is orientation and radius is scale."),
    PageSpec("invariance", "Invariance & stability", "explorer.pages.invariance:InvariancePage",
             r"What $$S_J$$ forgets and what it keeps: rotations, translations smaller than $$2^J$$, smooth "
             r"deformations, and the Lipschitz bound $$\Vert S x - S y \Vert \le \Vert x - y \Vert$$."),
    PageSpec("roto", "Roto-translation", "explorer.pages.roto:RotoPage",
             r"The roto-translation scattering's second layer: the angular wavelets along $$\theta_1$$, the angular "
             r"spectrum of $$z = |x \star \psi_{j_1,\theta_1}| \star \psi_{j_2,\theta_2}$$ for an image you choose, "
             "what a rotation moves and what it leaves, and stored SVM accuracies beside the translation scattering."),
    PageSpec("layers", "Layers", "explorer.pages.layers:LayersPage",
             "Contraction and separation layer by layer in a trained CNN13: 1-NN and SVM accuracy, intra-class "
             "distances, per-class PCA and k-local support vectors against depth, for ReLU, sign·√ and ReLU_k "
             "networks overlaid, and the accuracy against the fraction α of ReLU channels."),
    PageSpec("spectra", "SLE spectra", "explorer.pages.spectra:SpectraPage",
             r"Rotation invariance learned by a trained Scattering + SLE: the angular Fourier spectra "
             r"$$\Omega_1, \Omega_2$$ of its first layer $$W_1$$ (energy at low angular frequency) and its units "
             "ranked by invariance score, one unit's weights along the angle beside their DFT."),
    PageSpec("thresholding", "SLE thresholding", "explorer.pages.thresholding:ThresholdingPage",
             r"What rotation invariance is worth: keep a fraction of $$W_1$$'s angular-Fourier coefficients (or of "
             "its raw weights) and re-evaluate the trained SLE without retraining: the accuracy against the kept "
             "fraction in both domains, and the talk's 80 % thresholded for about 2 % accuracy."),
    PageSpec("rotation", "Rotation in learned weights", "explorer.pages.rotation:RotationPage",
             "Rotate test images by multiples of π/L and watch one SLE unit's response before and after, "
             "across a batch: which units are invariant, which are tuned, and the structured SLE built "
             "invariant."),
    PageSpec("hybrids", "Hybrids & small data", "explorer.pages.hybrids:HybridsPage",
             "Scattering + linear / MLP / WRN against CNNs trained on the same 100, 500, 1000 or all CIFAR-10 "
             "images: accuracy against training-set size with its spread over seeds, and where the scattering "
             "prior pays off."),
    PageSpec("hierarchical", "Hierarchical CNN", "explorer.pages.hierarchical:HierarchicalPage",
             "The multiscale hierarchical CNN's attribute axes: one layer's map over the older and newest "
             "attribute for an image you choose, and the translation test layer by layer: do the last layers' "
             "maps move along the older attribute from image to image, unlike the earlier layers' and an "
             "untrained network's?"),
    PageSpec("scoreboard", "Scoreboard", "explorer.pages.scoreboard:ScoreboardPage",
             "Every reference figure of the papers and the talk beside the project's own measured result: "
             "its configuration, the command that reproduces it and the machine it ran on, or \"not yet run\"."),
    PageSpec("reconstruction", "Reconstruction", "explorer.pages.reconstruction:ReconstructionPage",
             "Recover an image from its scattering coefficients by gradient descent: order 1 alone loses "
             "structure that order 2 restores."),
    PageSpec("runs", "Runs", "explorer.pages.runs:RunsPage",
             "Trained networks (CNN13, Scattering + SLE): the shipped demo runs and yours, their accuracy "
             "curves, and training jobs started here and followed live."),
]


def page_spec(slug: str) -> PageSpec:
    for spec in PAGES:
        if spec.slug == slug:
            return spec
    raise KeyError(slug)
