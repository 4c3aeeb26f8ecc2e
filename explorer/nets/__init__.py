"""Networks: the regular-boundary CNN13, Scattering + Shared Local Encoder, the Scattering + linear /
MLP / WRN hybrids, the WRN baseline and the multiscale hierarchical CNN, each registered in `explorer.nets.registry` by its own module
(importing this package registers them all)."""
from . import registry
from .cnn13 import CNN13, N_INNER
from .hcnn import HierarchicalCNN  # registers hcnn
from .hybrids import ScatLinear, ScatMLP, ScatWRN  # registers scat_linear, scat_mlp, scat_wrn
from .nonlinearities import RHOS, ReLUk, SignSqrt, make_rho
from .registry import MODELS
from .sle import COLOURS, InputChannel, ScatteringSLE
from .sle_fourier import FourierSLE  # registers sle_fourier (after sle: it reuses its registration)
from .wrn import WideResNet  # registers wrn


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
    "HierarchicalCNN",
    "InputChannel",
    "ReLUk",
    "ScatLinear",
    "ScatMLP",
    "ScatWRN",
    "ScatteringSLE",
    "SignSqrt",
    "WideResNet",
    "build_model",
    "make_rho",
    "registry",
]
