"""The parts of a model: gates (opening/closing rates, power) and ohmic channels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy

from hhsym.errors import ModelError, invalid
from hhsym.symbolic import check_identifier

__all__ = ["Gate", "Channel", "check_parts"]

_RESERVED = {"V", "I", "t", "C_m"}  # also refused as calcium pool names


@dataclass(frozen=True)
class Gate:
    """One gating variable with opening rate ``alpha`` and closing rate ``beta``.

    Parameters
    ----------
    name : str
        State name, e.g. ``"m"``; unique within a model.
    alpha, beta : str or sympy.Expr
        Rates (1/ms) as expressions in ``V`` (mV).  Strings are parsed when
        the gate joins a model (so they may use the model's parameters and
        the names of its calcium pools, concentrations in mM).
    power : int
        Integer exponent (>= 1) of the gate in its channel's conductance.
    """

    name: str
    alpha: object
    beta: object
    power: int = 1

    def __post_init__(self):
        check_identifier(self.name, "gate")
        for kind in ("alpha", "beta"):
            value = getattr(self, kind)
            if isinstance(value, bool) or not isinstance(value, (str, int, float, sympy.Basic)):
                raise invalid(f"{kind} of gate {self.name!r}", value,
                              "a string, a number or a sympy expression in V (1/ms)", cls=ModelError)
        if self.name in _RESERVED:
            raise ModelError(f"invalid gate name {self.name!r}: {sorted(_RESERVED)} are reserved")
        if isinstance(self.power, bool) or not isinstance(self.power, (int, np.integer)) or self.power < 1:
            raise invalid(f"power of gate {self.name!r}", self.power, "an integer >= 1", cls=ModelError)
        object.__setattr__(self, "power", int(self.power))


@dataclass(frozen=True)
class Channel:
    """An ohmic channel: conductance ``g`` (mS/cm²), reversal ``E`` (mV), gates.

    Parameters
    ----------
    name : str
        Channel name, e.g. ``"Na"``; the model's parameters are then called
        ``g_Na`` and ``E_Na``.
    g : float
        Maximal conductance (mS/cm², >= 0).
    E : float
        Reversal potential (mV).
    gates : sequence of Gate
        The gates; empty for a leak.
    """

    name: str
    g: float
    E: float
    gates: tuple = ()

    def __post_init__(self):
        check_identifier(self.name, "channel")
        object.__setattr__(self, "gates", tuple(self.gates))
        for gate in self.gates:
            if not isinstance(gate, Gate):
                raise ModelError(f"channel {self.name!r}: gates must be Gate objects, got {gate!r}")
        _check_number(f"g_{self.name}", self.g, minimum=0.0)
        _check_number(f"E_{self.name}", self.E)
        object.__setattr__(self, "g", float(self.g))
        object.__setattr__(self, "E", float(self.E))


def _check_number(name, value, minimum=None, strict=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = "" if minimum is None else (f" {'>' if strict else '>='} {minimum:g}")
        raise invalid(name, value, f"a finite number{bound}")


def check_parts(channels, C_m, params):
    """Check a model's channels, capacitance and extra parameters (:class:`~hhsym.model.ConductanceModel`).

    Parameters
    ----------
    channels : sequence of Channel
    C_m : float
        µF/cm² (> 0).
    params : dict or None
        Extra named constants of the rate expressions.

    Returns
    -------
    channels : tuple of Channel
    extra : dict
    names, gate_names : list of str
        Channel and gate names (each unique).

    Raises
    ------
    ModelError
        No channel, a non-Channel, repeated channel or gate names, a bad number.
    """
    channels = tuple(channels)
    if not channels:
        raise ModelError("a model needs at least one channel (a leak, e.g. Channel('L', 0.3, -54.4))")
    for ch in channels:
        if not isinstance(ch, Channel):
            raise ModelError(f"channels must be Channel objects, got {ch!r}")
    _check_number("C_m", C_m, minimum=0.0, strict=True)
    extra = dict(params or {})
    for key, value in extra.items():
        check_identifier(key, "parameter")
        _check_number(key, value)
    names = [ch.name for ch in channels]
    if len(set(names)) != len(names):
        raise ModelError(f"channel names must be unique, got {names}")
    gate_names = [g.name for ch in channels for g in ch.gates]
    if len(set(gate_names)) != len(gate_names):
        raise ModelError(f"gate names must be unique across the model, got {gate_names}")
    return channels, extra, names, gate_names
