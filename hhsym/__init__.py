"""hhsym: learn Hodgkin-Huxley rate functions from V(t) and I(t), as equations.

The public API is listed explicitly below; submodules are implementation.
``import hhsym`` is light: numba kernels compile on first use, PySR/Julia and
matplotlib load only when asked for.
"""

from hhsym import library, stimuli
from hhsym.errors import (
    ArgumentTypeError,
    BackendUnavailableError,
    HHSymError,
    IdentifiabilityWarning,
    InvalidArgumentError,
    ModelError,
    NotFittedError,
    PoorFitWarning,
    SimulationError,
    TraceFileError,
    UnknownNameError,
    UnsupportedModelError,
)
from hhsym.model import CalciumPool, Channel, ConductanceModel, Gate, V
from hhsym.simulate import resting_state, simulate
from hhsym.io import Trace, TraceSet, read_trace, read_traces

__all__ = [
    "ArgumentTypeError",
    "BackendUnavailableError",
    "Channel",
    "ConductanceModel",
    "Gate",
    "CalciumPool",
    "HHSymError",
    "IdentifiabilityWarning",
    "InvalidArgumentError",
    "ModelError",
    "NotFittedError",
    "PoorFitWarning",
    "SimulationError",
    "Trace",
    "TraceFileError",
    "TraceSet",
    "UnknownNameError",
    "UnsupportedModelError",
    "V",
    "library",
    "RateEstimator",
    "FormEstimator",
    "CellEstimator",
    "distill",
    "fit_many",
    "load",
    "load_model",
    "metrics",
    "read_trace",
    "read_traces",
    "resting_state",
    "simulate",
    "stimuli",
    "validate_fit",
]
__version__ = "0.1.0"

# Heavier parts (scikit-learn for the estimator, the distillation backends)
# load on first use, so that ``import hhsym`` stays fast.
_LAZY = {
    "RateEstimator": ("hhsym.estimate", "RateEstimator"),
    "FormEstimator": ("hhsym.estimate", "FormEstimator"),
    "CellEstimator": ("hhsym.estimate", "CellEstimator"),
    "load": ("hhsym.estimate", "load"),
    "fit_many": ("hhsym.batch", "fit_many"),  # imports Dask only when called
    "metrics": ("hhsym.metrics", None),
    "distill": ("hhsym.distill", None),  # a callable module: hhsym.distill(estimator, ...)
    "load_model": ("hhsym.distill", "load_model"),
    "validate_fit": ("hhsym.analysis.validation", "validate_fit"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'hhsym' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
