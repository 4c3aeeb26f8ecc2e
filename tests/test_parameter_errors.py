"""One mistake, one error type and one message: a bad J or L raises the same ParameterError (a ValueError)
from the engine, the filter bank and the analyses."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis import energy_per_order, order1_energy, rotate, translation_errors
from explorer.scattering import Scattering2D, filter_bank, n_paths
from explorer.scattering.paths import max_order_of
from explorer.scattering.validation import ParameterError

S = np.zeros((n_paths(2, 4), 2, 2))


@pytest.mark.parametrize("call", [
    lambda J, L: Scattering2D(J, (32, 32), L),
    lambda J, L: filter_bank(40, 40, J, L),
    lambda J, L: energy_per_order(S, J, L),
    lambda J, L: order1_energy(S, J, L),
], ids=["Scattering2D", "filter_bank", "energy_per_order", "order1_energy"])
@pytest.mark.parametrize("J,L,bad", [(0, 4, "J"), (2.5, 4, "J"), (2, 0, "L"), (True, 4, "J")])
def test_a_bad_J_or_L_is_the_same_error_everywhere(call, J, L, bad):
    with pytest.raises(ParameterError, match=f"{bad} must be an integer ≥ 1, got "):
        call(J, L)


def test_analysis_parameters_and_too_small_images_raise_parameter_errors():
    with pytest.raises(ParameterError, match="degrees must be a finite"):
        rotate(np.zeros((4, 4)), float("nan"))
    with pytest.raises(ParameterError, match="smaller than 2\\^J"):
        translation_errors(np.ones((8, 8)), 4, 4)
    with pytest.raises(ParameterError, match="smaller than 2\\^J"):
        Scattering2D(6, (32, 32))


def test_the_number_of_paths_names_the_order():
    assert max_order_of(n_paths(3, 8, 1), 3, 8) == 1 and max_order_of(n_paths(3, 8), 3, 8) == 2
    with pytest.raises(ValueError, match="matches neither order 1 \\(25\\) nor order 2 \\(217\\)"):
        max_order_of(5, 3, 8)
