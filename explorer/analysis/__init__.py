"""Numerical analyses of the scattering transform (pure numpy/torch/scipy: no UI import).

- `invariance`: rotation covariance, translation invariance, stability to deformations,
  non-expansiveness (Lipschitz ratios) and energy per order/path — each returns a dict of arrays.
- `reconstruction`: recover an image from its S_J coefficients by gradient descent.
- `disk`: geometry of the "scattering disk" (angle = orientation, radius = scale).
- `spectra`: W₁ of a Scattering + SLE network by order, its angular spectra Ω₁/Ω₂ (science.md §4),
  per-unit rotation-invariance scores, and thresholding in angular Fourier or in θ.
- `cache`: the above, cached by image and parameters, as the app's pages and the notebooks read them.

    >>> from explorer.analysis import rotation_errors, reconstruct, order1_energy, order1_wedges
"""
from . import spectra  # W₁ of an SLE by order, Ω₁/Ω₂ angular spectra, thresholding
from .disk import Wedges, order1_energy, order1_wedges, order2_energy, order2_wedges, wedge_polygon
from .invariance import (
                         deformation_distances,
                         displacement_field,
                         energy_per_order,
                         energy_per_path,
                         lipschitz_ratios,
                         littlewood_paley_bound,
                         max_jacobian_norm,
                         roll_angles,
                         rotate,
                         rotation_errors,
                         smooth_window,
                         spatial_average,
                         translate,
                         translation_errors,
                         warp,
)
from .reconstruction import Reconstruction, reconstruct
from .spectra import FirstLayer, first_layer

__all__ = [
    "FirstLayer", "Reconstruction", "Wedges", "deformation_distances", "displacement_field",
    "energy_per_order", "energy_per_path", "first_layer", "lipschitz_ratios", "littlewood_paley_bound",
    "max_jacobian_norm", "order1_energy", "order1_wedges", "order2_energy", "order2_wedges", "reconstruct",
    "roll_angles", "rotate", "rotation_errors", "smooth_window", "spatial_average", "spectra", "translate",
    "translation_errors", "warp", "wedge_polygon",
]
