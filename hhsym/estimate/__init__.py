"""Everything fitted to recordings.

* :class:`RateEstimator` — gate curves as small networks inside the known
  equations, fitted by adjoint-free shooting (clean recordings);
* :class:`FormEstimator` — closed-form (literature) rates fitted directly by
  output error, with error bars (noisy recordings); ``start="model"`` starts
  it from a literature model's own rates;
* :class:`CellEstimator` — a template fitted to whole sweeps of a real cell:
  whole-cell scalars and each channel's rate scale and shift, scored on spike
  features and the subthreshold potential (:mod:`~hhsym.estimate.spiking`);
* :func:`load` reads any of them back from ``save(path)``; every fit carries a
  :class:`FitQuality` verdict.

Subpackages: :mod:`~hhsym.estimate.rates` (parametrisations of gate curves),
:mod:`~hhsym.estimate.losses` (charge balance, output error), :mod:`~hhsym.estimate.optimise`
(Levenberg–Marquardt), :mod:`~hhsym.estimate.search` (gate-role hypotheses, multistart).
"""

from hhsym.estimate.cell_estimator import CellEstimator
from hhsym.estimate.form_estimator import FormEstimator
from hhsym.estimate.losses.output_error import fit_output_error
from hhsym.estimate.quality import FitQuality
from hhsym.estimate.fitfile import load
from hhsym.estimate.rate_estimator import RateEstimator
from hhsym.estimate.rates.network import GateNetworks, GateRate, RateNetwork
from hhsym.estimate.search.form_search import search_forms
from hhsym.estimate.uncertainty import standard_errors

__all__ = ["CellEstimator", "FitQuality", "FormEstimator", "GateNetworks", "GateRate", "RateEstimator", "RateNetwork",
           "fit_output_error", "load", "search_forms", "standard_errors"]
