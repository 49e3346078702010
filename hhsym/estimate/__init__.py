"""Neural rate estimation by adjoint-free shooting (see :class:`RateEstimator`)."""

from hhsym.estimate.estimator import RateEstimator, load
from hhsym.estimate.network import RateNetwork

__all__ = ["RateEstimator", "RateNetwork", "load"]
