"""Neural rate estimation by adjoint-free shooting (see :class:`RateEstimator`)."""

from hhsym.estimate.estimator import RateEstimator, load
from hhsym.estimate.network import GateNetworks, GateRate, RateNetwork

__all__ = ["GateNetworks", "GateRate", "RateEstimator", "RateNetwork", "load"]
