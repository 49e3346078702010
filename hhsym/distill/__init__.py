"""Distillation: learned rate functions -> closed-form sympy expressions.

:func:`distill` turns a fitted :class:`~hhsym.estimate.RateEstimator` into a
:class:`Distillation` (closed-form rates, Pareto fronts, a simulatable model,
JSON and LaTeX export); :func:`load_model` reads the JSON back.

Backends take samples of one positive rate function (1/ms) on a voltage
range (mV) and return a :class:`RateFit`: a Pareto front of
:class:`Candidate` expressions in ``V`` and the chosen one.

>>> import numpy as np
>>> from hhsym.distill import get_backend
>>> V = np.arange(-75.0, 21.0)
>>> fit = get_backend("forms").fit_rate(V, 4 * np.exp(-(V + 65) / 18), "beta_m")
>>> fit.best.form
'exponential'
"""

import sys
import types

from hhsym.distill.backends import AutoBackend, get_backend
from hhsym.distill.base import V, Backend, Candidate, RateFit
from hhsym.distill.distillation import distill
from hhsym.distill.result import Distillation, RateResult
from hhsym.distill.selection import select_candidate
from hhsym.distill.files import distill_files
from hhsym.export.model_json import load_model
from hhsym.distill.forms import FormsBackend
from hhsym.distill.operon import OperonBackend
from hhsym.distill.pysr_backend import PySRBackend, candidates_from_equations, pysr_status

__all__ = [
    "V",
    "Backend",
    "Candidate",
    "RateFit",
    "get_backend",
    "distill",
    "Distillation",
    "RateResult",
    "select_candidate",
    "load_model",
    "distill_files",
    "AutoBackend",
    "FormsBackend",
    "OperonBackend",
    "PySRBackend",
    "candidates_from_equations",
    "pysr_status",
]


class _CallableModule(types.ModuleType):
    """Lets ``hhsym.distill(estimator, ...)`` call :func:`distill` while ``hhsym.distill.X`` stays the package."""

    def __call__(self, *args, **kwargs):
        return distill(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
