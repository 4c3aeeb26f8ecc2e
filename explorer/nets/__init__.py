"""Networks: the regular-boundary CNN13 and Scattering + Shared Local Encoder."""
from .cnn13 import CNN13, N_INNER
from .nonlinearities import RHOS, ReLUk, SignSqrt, make_rho
from .sle import COLOURS, InputChannel, ScatteringSLE

MODELS = ("cnn13", "sle")


def build_model(name: str, **config):
    """A model by name with its configuration (the run store keeps exactly these)."""
    if name == "cnn13":
        return CNN13(**config)
    if name == "sle":
        return ScatteringSLE(**config)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")


__all__ = ["CNN13", "COLOURS", "InputChannel", "MODELS", "N_INNER", "RHOS", "ReLUk",
           "ScatteringSLE", "SignSqrt", "build_model", "make_rho"]
