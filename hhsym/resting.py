"""Resting states and initial states of conductance models (mV, gate fractions).

:func:`resting_state` solves for the steady state under a constant current
(cached per model); :func:`initial_states` completes a user's ``y0`` with
steady-state gates.  :func:`hhsym.simulate` starts every run here.
"""

from __future__ import annotations

import sys

import numpy as np
import sympy

from hhsym.diskcache import read_entry, source_digest, write_entry
from hhsym.errors import ArgumentTypeError, SimulationError, UnknownNameError, invalid
from hhsym.lambdified import from_entry, to_entry
from hhsym.model.pools import pool_current, pool_symbols
from hhsym.symbolic import V

__all__ = ["resting_state", "initial_states", "param_matrix"]


def param_matrix(model, params, n):
    """(n_params, n) array of parameter values, with per-neuron overrides."""
    names = list(model.params)
    P = np.empty((len(names), n))
    for k, name in enumerate(names):
        P[k] = model.params[name]
    for name, values in (params or {}).items():
        if name not in model.params:
            raise UnknownNameError(
                f"unknown parameter {name!r} in params: accepted names are {', '.join(names)}"
            )
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.size not in (1, n) or not np.all(np.isfinite(arr)):
            raise invalid(f"params[{name!r}]", values, f"a finite number or {n} finite numbers (one per trace)")
        P[names.index(name)] = arr
    check_c = P[names.index("C_m")]
    if np.any(check_c <= 0):
        raise invalid("params['C_m']", check_c[check_c <= 0][0], "C_m > 0 (µF/cm²)")
    for k, name in enumerate(names):
        if name.startswith("g_") and np.any(P[k] < 0):
            raise invalid(f"params[{name!r}]", P[k][P[k] < 0][0], "a conductance >= 0 (mS/cm²)")
    for pool in model.pools:
        tau, depth, inf = (names.index(k) for k in pool.param_names())
        for k, what in ((tau, "a time constant > 0 (ms)"), (depth, "a shell depth > 0 (µm)")):
            if np.any(P[k] <= 0):
                raise invalid(f"params[{names[k]!r}]", P[k][P[k] <= 0][0], what)
        if np.any(P[inf] < 0):
            raise invalid(f"params[{names[inf]!r}]", P[inf][P[inf] < 0][0], "a concentration >= 0 (mM)")
    return P


def _steady_functions(model):
    """Vectorised steady states of a model's gates and calcium pools (cached).

    Returns ``(gates, pools)``: gate name -> ``x_inf(V, *pool values, *params)`` and pool name ->
    ``c_inf(V, *params)`` (the concentration the driving channels' steady current holds; their
    gates depend on V only), params in the order of ``model.params``.  The functions depend on
    the model's structure only (parameter values are arguments): they are kept on the model, in
    memory by structure key, and on disk as source (:mod:`hhsym.lambdified`), so a new process
    evaluates them without building them again with sympy.
    """
    cached = getattr(model, "_hhsym_steady", None)
    if cached is not None:
        return cached
    key = _steady_key(model)
    found = _STEADY.get(key[1])
    if found is None:
        found = _read_steady(key)
    if found is None:
        found, entry = _build_steady(model)
        if entry is not None:
            write_entry("steady", key, entry)
    _STEADY[key[1]] = found
    model._hhsym_steady = found
    return found


#: Steady-state functions by structure key (this process).
_STEADY: dict = {}
_STEADY_CODE: list = []


def _steady_key(model):
    """Disk-cache key of ``model``'s steady-state functions: structure, code and library versions."""
    if not _STEADY_CODE:
        import hhsym.lambdified
        import hhsym.symbolic
        from hhsym.model import conductance, gating, pools

        code = source_digest([sys.modules[__name__], conductance, gating, pools, hhsym.symbolic,
                              hhsym.lambdified])
        _STEADY_CODE.append(f"{code}|sympy {sympy.__version__}|numpy {np.__version__}")
    return ["steady/1", model.structure_key(), _STEADY_CODE[0]]


def _read_steady(key):
    """The stored steady-state functions of ``key`` (interpreted, :mod:`hhsym.lambdified`), or None."""
    entry = read_entry("steady", key)
    try:
        return tuple({name: from_entry(e) for name, e in entry[part].items()} for part in ("gates", "pools"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _build_steady(model):
    """The steady-state functions of ``model`` from sympy, and their JSON entry (None if not storable)."""
    psym = model.param_symbols()
    params = list(psym.values())
    pools = list(pool_symbols(model).values())
    rates = model.safe_rates()
    xinf = {}
    gates = {}
    for g in model.gates:
        a, b = rates[f"alpha_{g.name}"], rates[f"beta_{g.name}"]
        xinf[g.name] = a / (a + b)
        gates[g.name] = sympy.lambdify([V, *pools, *params], xinf[g.name], modules="numpy")
    levels = {}
    for pool in model.pools:
        target = pool.relaxation(pool_current(model, pool, psym, xinf), psym)[1]
        levels[pool.name] = sympy.lambdify([V, *params], target, modules="numpy")
    entry = {part: {name: to_entry(f) for name, f in funcs.items()}
             for part, funcs in (("gates", gates), ("pools", levels))}
    if any(e is None for part in entry.values() for e in part.values()):
        entry = None
    return (gates, levels), entry


def _steady_states(model, Vg, P, given=None):
    """Steady states (state name -> array) at potentials ``Vg`` for parameter rows ``P``.

    ``P`` is a list of arrays (one per parameter, broadcasting with ``Vg``); ``given`` maps
    calcium pools to fixed concentrations (mM), else they are at their steady level.
    """
    gates, levels = _steady_functions(model)
    out = {"V": Vg}
    with np.errstate(all="ignore"):
        given = given or {}
        pools = {name: np.asarray(given[name] if name in given else fn(Vg, *P), dtype=float)
                 for name, fn in levels.items()}
        for name, fn in gates.items():
            out[name] = np.asarray(fn(Vg, *pools.values(), *P), dtype=float)
    out.update(pools)
    return out


#: Resting states kept per model (entries of ``model._hhsym_rest``); the dict is
#: emptied when it would grow beyond this.
REST_CACHE_SIZE = 4096


def resting_state(model, I0=0.0, params=None, n=1):
    """Steady state(s) of ``model`` under a constant current.

    The membrane potential solves ``I0 = sum_k g_k prod_j x_inf,j(V)^p_j (V - E_k)``;
    of several solutions the most hyperpolarised one with a stable slope is
    taken; gates are at their steady states.  Each distinct (I0, parameters)
    pair is solved once, and its solution is kept on the model for later calls
    (up to ``REST_CACHE_SIZE`` pairs).

    Parameters
    ----------
    model : ConductanceModel
    I0 : float or array_like
        Constant injected current (µA/cm²), scalar or one per neuron.
    params : dict, optional
        Per-neuron parameter overrides, as in :func:`simulate`.
    n : int
        Number of neurons.

    Returns
    -------
    dict
        State name -> array of shape ``(n,)`` (V in mV, gates dimensionless).
    """
    P = param_matrix(model, params, n)
    I0 = np.broadcast_to(np.asarray(I0, dtype=float), (n,))
    # solve once per distinct (I0, parameters) pair: large batches usually share a few
    rows = np.column_stack([I0, P.T])
    first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)[1:]
    inverse = inverse.reshape(-1)
    keys = [rows[i].tobytes() for i in first]
    cache = getattr(model, "_hhsym_rest", None)
    if cache is None:
        cache = model._hhsym_rest = {}
    found = {key: cache[key] for key in keys if key in cache}
    todo = [u for u, key in enumerate(keys) if key not in found]
    if todo:
        solved = _solve_rest(model, I0[first[todo]], P[:, first[todo]], first[todo])
        new = {keys[u]: tuple(float(v[m]) for v in solved.values()) for m, u in enumerate(todo)}
        if len(cache) + len(new) > REST_CACHE_SIZE:
            cache.clear()
        cache.update(new)
        found.update(new)
    names = list(model.states)
    values = np.array([found[key] for key in keys]).reshape(len(keys), len(names))[inverse]
    return {name: values[:, k].copy() for k, name in enumerate(names)}


def _solve_rest(model, I0, P, traces):
    """Resting states for ``I0`` (µA/cm², shape (m,)) and parameters ``P`` (n_params, m).

    ``traces`` (m,) are the trace indices named in the error when a column
    has no resting potential.  Returns state name -> array (m,), V first.
    """
    n = I0.size
    I0 = I0[:, None]
    names = list(model.params)
    prow = [row[:, None] for row in P]
    grid = np.arange(-150.0, 100.0 + 1e-9, 0.25)[None, :]

    def ionic(Vg, rows):
        total = np.zeros(np.broadcast_shapes(Vg.shape, (rows.size, 1)))
        with np.errstate(all="ignore"):
            gates = _steady_states(model, Vg, [e[rows] for e in prow])
            for ch in model.channels:
                cond = P[names.index(f"g_{ch.name}")][rows][:, None]
                for gate in ch.gates:
                    cond = cond * gates[gate.name] ** gate.power
                total = total + cond * (Vg - P[names.index(f"E_{ch.name}")][rows][:, None])
        return total

    def net_current(Vg, rows):
        return I0[rows] - ionic(Vg, rows)

    rows = np.arange(n)
    # on the grid the ionic current depends on the parameters only (not on I0): evaluated once
    # per distinct parameter column (a batch under many currents usually has one), elementwise
    # the same operations as per column
    first, inverse = np.unique(P.T, axis=0, return_index=True, return_inverse=True)[1:]
    f = I0 - ionic(grid, first)[inverse.reshape(-1)]
    # first + to - crossing (dV/dt decreasing through zero: stable for V alone)
    cross = (f[:, :-1] > 0) & (f[:, 1:] <= 0)
    if not np.all(cross.any(axis=1)):
        bad = int(np.flatnonzero(~cross.any(axis=1))[0])
        raise SimulationError(
            f"no resting potential in [-150, 100] mV for trace {int(traces[bad])} "
            f"(I0={float(I0[bad, 0]):g} µA/cm²): pass y0 explicitly"
        )
    k = cross.argmax(axis=1)
    lo = grid[0, k].copy()
    hi = grid[0, k + 1].copy()
    for _ in range(60):  # bisection to ~1e-14 mV
        mid = 0.5 * (lo + hi)
        fm = net_current(mid[:, None], rows)[:, 0] if n else mid
        pos = fm > 0
        new_lo = np.where(pos, mid, lo)
        new_hi = np.where(pos, hi, mid)
        # once no bracket changes (every one is down to adjacent floats, after ~46 halvings of
        # 0.25 mV), every later iteration repeats this one: stopping changes no bit
        if _same_bits(new_lo, lo) and _same_bits(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    Vrest = 0.5 * (lo + hi)
    steady = _steady_states(model, Vrest, [e[:, 0] for e in prow])
    return {name: steady[name] * np.ones(n) for name in model.states}


def _same_bits(a, b):
    """Whether the float64 arrays ``a`` and ``b`` hold the same bits (signed zeros differ)."""
    return a.tobytes() == b.tobytes()


def initial_states(model, y0, I0, params, n):
    """(n_states, n) initial states; I0 (n,) is the current at t = 0 (µA/cm²)."""
    states = model.states
    if y0 is None:
        rest = resting_state(model, I0, params, n)
        return np.array([rest[s] for s in states])
    if not isinstance(y0, dict):
        raise invalid("y0", y0, f"a dict by state name ({', '.join(states)}) or None", cls=ArgumentTypeError)
    unknown = [k for k in y0 if k not in states]
    if unknown:
        raise UnknownNameError(f"unknown state(s) {unknown} in y0: accepted names are {', '.join(states)}")
    Y0 = np.empty((len(states), n))
    pools = {pool.name for pool in model.pools}
    values = {}
    for name, value in y0.items():
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.size not in (1, n) or not np.all(np.isfinite(arr)):
            raise invalid(f"y0[{name!r}]", value, f"a finite number or {n} finite numbers")
        if name in pools and np.any(arr < 0):
            raise invalid(f"y0[{name!r}]", value, "calcium concentrations >= 0 (mM)")
        if name != "V" and name not in pools and np.any((arr < 0) | (arr > 1)):
            raise invalid(f"y0[{name!r}]", value, "gate values in [0, 1]")
        values[name] = np.broadcast_to(arr, (n,))
    # states not given: steady state at the given V (or at rest)
    if len(values) < len(states):
        if "V" in values:
            P = param_matrix(model, params, n)
            given = {k: v for k, v in values.items() if k in pools}
            rest = {k: v * np.ones(n) for k, v in _steady_states(model, values["V"], list(P), given).items()}
        else:
            rest = resting_state(model, I0, params, n)
        for name in states:
            values.setdefault(name, rest[name])
    for k, name in enumerate(states):
        Y0[k] = values[name]
    return Y0
