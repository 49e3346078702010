"""The symbolic system of a :class:`~hhsym.model.ConductanceModel`: its ODEs as sympy equations, its structure key."""

from __future__ import annotations

import hashlib

import sympy

from hhsym.model.pools import pool_current
from hhsym.symbolic import V

__all__ = ["model_equations", "structure_key"]


def model_equations(model, numeric=False):
    """The ODE system of ``model`` as sympy equations (:meth:`ConductanceModel.equations`).

    Parameters
    ----------
    model : ConductanceModel
    numeric : bool
        Substitute parameter values (True) or keep ``C_m, g_x, E_x`` as symbols.

    Returns
    -------
    list of sympy.Eq
        ``C_m dV/dt = I - sum(...)`` (µF/cm² mV/ms = µA/cm²), one ``dx/dt`` (1/ms) per gate, one
        per calcium pool (mM/ms).
    """
    rates = model.rates
    p = model.param_symbols()
    I = sympy.Symbol("I", real=True)
    gate_sym = {g.name: sympy.Symbol(g.name, real=True) for g in model.gates}
    current = 0
    for ch in model.channels:
        conductance = p[f"g_{ch.name}"]
        for g in ch.gates:
            conductance = conductance * gate_sym[g.name] ** g.power
        current += conductance * (V - p[f"E_{ch.name}"])
    eqs = [sympy.Eq(p["C_m"] * sympy.Symbol("dV/dt"), I - current, evaluate=False)]
    for g in model.gates:
        x = gate_sym[g.name]
        rhs = rates[f"alpha_{g.name}"] * (1 - x) - rates[f"beta_{g.name}"] * x
        eqs.append(sympy.Eq(sympy.Symbol(f"d{g.name}/dt"), rhs, evaluate=False))
    for pool in model.pools:
        rhs = pool.rhs(pool_current(model, pool, p, gate_sym), p)
        eqs.append(sympy.Eq(sympy.Symbol(f"d{pool.name}/dt"), rhs, evaluate=False))
    if numeric:
        values = {p[k]: sympy.Float(v) for k, v in model.params.items()}
        eqs = [sympy.Eq(e.lhs.xreplace(values), e.rhs.xreplace(values), evaluate=False) for e in eqs]
    return eqs


def structure_key(model):
    """str: hash of everything code generation depends on (not parameter values)."""
    parts = [repr(model.states), repr(tuple(model.params))]
    for ch in model.channels:
        parts.append(f"{ch.name}:{[(g.name, g.power) for g in ch.gates]}")
    for pool in model.pools:
        parts.append(f"pool {pool.name}:{pool.channels}")
    for key, expr in model.rates.items():
        parts.append(f"{key}={sympy.srepr(expr)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
