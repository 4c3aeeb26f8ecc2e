"""Numerical analyses of the scattering transform (pure numpy/torch/scipy: no UI import).

- `invariance`: rotation covariance, translation invariance, stability to deformations,
  non-expansiveness (Lipschitz ratios) and energy per order/path — each returns a dict of arrays.
- `reconstruction`: recover an image from its S_J coefficients by gradient descent.
- `disk`: geometry of the "scattering disk" (angle = orientation, radius = scale).
- `cache`: the above, cached by image and parameters, as the app's pages and the notebooks read them.

    >>> from explorer.analysis import rotation_errors, reconstruct, order1_energy, order1_wedges
"""
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

__all__ = [
    "Reconstruction", "Wedges", "deformation_distances", "displacement_field", "energy_per_order",
    "energy_per_path", "lipschitz_ratios", "littlewood_paley_bound", "max_jacobian_norm",
    "order1_energy", "order1_wedges", "order2_energy", "order2_wedges", "reconstruct",
    "roll_angles", "rotate", "rotation_errors", "smooth_window", "spatial_average", "translate",
    "translation_errors", "warp", "wedge_polygon",
]
