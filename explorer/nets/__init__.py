"""Networks: the regular-boundary CNN13 and Scattering + Shared Local Encoder, each registered in
`explorer.nets.registry` by its own module (importing this package registers both)."""
from . import registry
from .cnn13 import CNN13, N_INNER
from .nonlinearities import RHOS, ReLUk, SignSqrt, make_rho
from .registry import MODELS
from .sle import COLOURS, InputChannel, ScatteringSLE
from .sle_fourier import FourierSLE  # registers sle_fourier (after sle: it reuses its registration)


def build_model(name: str, **config):
    """A model by name with its configuration (the run store keeps exactly these)."""
    return registry.get(name).build(**config)


__all__ = [
    "CNN13",
    "COLOURS",
    "MODELS",
    "N_INNER",
    "RHOS",
    "FourierSLE",
    "InputChannel",
    "ReLUk",
    "ScatteringSLE",
    "SignSqrt",
    "build_model",
    "make_rho",
    "registry",
]
