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
    SimulationError,
    TraceFileError,
    UnknownNameError,
)
from hhsym.model import Channel, ConductanceModel, Gate, V
from hhsym.simulate import resting_state, simulate
from hhsym.traces import Trace, TraceSet, read_trace, read_traces

__all__ = [
    "ArgumentTypeError",
    "BackendUnavailableError",
    "Channel",
    "ConductanceModel",
    "Gate",
    "HHSymError",
    "IdentifiabilityWarning",
    "InvalidArgumentError",
    "ModelError",
    "NotFittedError",
    "SimulationError",
    "Trace",
    "TraceFileError",
    "TraceSet",
    "UnknownNameError",
    "V",
    "library",
    "read_trace",
    "read_traces",
    "resting_state",
    "simulate",
    "stimuli",
]
__version__ = "0.1.0"
