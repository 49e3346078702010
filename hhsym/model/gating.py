"""Rates as numbers: numpy evaluators, the non-negativity check, steady states and time constants."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import sympy
from sympy.core.parameters import distribute

from hhsym.diskcache import read_entry, source_digest, write_entry
from hhsym.errors import ModelError, UnknownNameError
from hhsym.symbolic import V

__all__ = ["rate_functions", "check_rates", "gating_from_rates", "partner_rate", "RATE_CHECK_RANGE"]

#: Voltage range (mV) on which :meth:`ConductanceModel.check_rates` requires non-negative rates.
RATE_CHECK_RANGE = (-150.0, 100.0)

#: Calcium concentrations (mM) at which rates that use a calcium pool are checked (besides its rest).
POOL_CHECK_LEVELS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


def rate_functions(model):
    """Numpy evaluators of ``model``'s rates (see :meth:`ConductanceModel.rate_functions`)."""
    subs = {sympy.Symbol(k, real=True): v for k, v in model.rate_params.items()}
    pools = {pool.name: pool.Ca_inf for pool in model.pools}
    args = [V, *(sympy.Symbol(name, real=True) for name in pools)]
    out = {}
    for key, expr in model.safe_rates().items():
        func = sympy.lambdify(args, expr.xreplace(subs), modules="numpy")
        out[key] = _vectorised(func, pools)
    return out


def check_rates(model, v_range=None):
    """Raise unless every rate of ``model`` is finite and >= 0 over ``v_range`` (see :meth:`ConductanceModel.check_rates`)."""
    lo, hi = RATE_CHECK_RANGE if v_range is None else v_range
    key = ("_rates_checked", float(lo), float(hi))
    if model.__dict__.get(key[0]) == key[1:]:
        return model
    # a model of the same rates and parameter values passed before (this process or, on disk, another)
    entry = _check_key(model, float(lo), float(hi))
    if entry[-1] in _PASSED or read_entry("rates_ok", entry) is True:
        _PASSED.add(entry[-1])
        model.__dict__[key[0]] = key[1:]
        return model
    grid = np.linspace(lo, hi, int(round((hi - lo) / 0.25)) + 1)
    # rates that use calcium pools are checked at these concentrations (mM) too
    levels = [{}] + [{pool.name: c for pool in model.pools} for c in POOL_CHECK_LEVELS] * bool(model.pools)
    for conc in levels:
        for name, values in model.evaluate_rates(grid, **conc).items():
            bad = np.isnan(values) | (values < 0)
            if bad.any():
                i = int(np.argmax(bad))
                at = "".join(f", {k} = {v:g} mM" for k, v in conc.items())
                raise ModelError(
                    f"rate {name} = {_for_display(model.rates[name])} is {values[i]:.4g} 1/ms at V = "
                    f"{grid[i]:g} mV{at}: rates must be finite and >= 0 over [{lo:g}, {hi:g}] mV "
                    "(check its sign and parameters)"
                )
    model.__dict__[key[0]] = key[1:]
    write_entry("rates_ok", entry, True)
    _PASSED.add(entry[-1])
    return model


#: Digests of the check keys that passed in this process.
_PASSED: set = set()
_CHECK_CODE: list = []


def _check_key(model, lo, hi):
    """Disk-cache key of a passed rate check: what the check's outcome depends on.

    The rates (exactly, through the structure key), every parameter value (rate
    constants and resting calcium levels among them), the range and pool levels
    checked, the code that turns rates into numbers and the sympy and numpy
    versions.  The last item is a digest of the others.
    """
    if not _CHECK_CODE:
        from hhsym import symbolic
        from hhsym.model import conductance

        code = source_digest([sys.modules[__name__], conductance, symbolic])
        _CHECK_CODE.append(f"{code}|sympy {sympy.__version__}|numpy {np.__version__}")
    parts = ["rates_ok/1", model.structure_key(), sorted((k, float(v)) for k, v in model.params.items()),
             lo, hi, list(POOL_CHECK_LEVELS), _CHECK_CODE[0]]
    return parts + [hashlib.sha256(repr(parts).encode()).hexdigest()]


def _for_display(expr, digits=6):
    """``expr`` with its floating-point constants shown to ``digits`` significant digits."""
    floats = {f: sympy.Float(float(f"{float(f):.{digits}g}")) for f in expr.atoms(sympy.Float)}
    with distribute(False):
        return expr.xreplace(floats)


def partner_rate(name):
    """The other rate of the same gate: ``"beta_x"`` for ``"alpha_x"`` and vice versa.

    Parameters
    ----------
    name : str
        A rate name, ``alpha_<gate>`` or ``beta_<gate>``.

    Returns
    -------
    str
    """
    kind, _, gate = name.partition("_")
    return f"{'beta' if kind == 'alpha' else 'alpha'}_{gate}"


def gating_from_rates(rates):
    """Steady states and time constants of every gate from its rates.

    Parameters
    ----------
    rates : dict
        ``alpha_x``/``beta_x`` -> array (1/ms), same shapes.

    Returns
    -------
    dict
        Gate name -> ``(x_inf, tau)``: dimensionless and ms arrays.
    """
    gates = [k[len("alpha_"):] for k in rates if k.startswith("alpha_")]
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for g in gates:
            a, b = np.asarray(rates[f"alpha_{g}"], dtype=float), np.asarray(rates[f"beta_{g}"], dtype=float)
            out[g] = (a / (a + b), 1.0 / (a + b))
    return out


def _vectorised(func, pools=None):
    pools = dict(pools or {})

    def evaluate(V_values, **concentrations):
        unknown = sorted(set(concentrations) - set(pools))
        if unknown:
            raise UnknownNameError(f"unknown calcium pool(s) {unknown}: accepted names are "
                                   f"{', '.join(pools) or 'none (the model has no pools)'}")
        values = np.asarray(V_values, dtype=float)
        extra = [np.asarray(concentrations.get(k, v), dtype=float) for k, v in pools.items()]
        with np.errstate(all="ignore"):
            out = np.asarray(func(values, *extra), dtype=float)
        shape = np.broadcast_shapes(values.shape, *(e.shape for e in extra))
        return np.broadcast_to(out, shape).copy() if out.shape != shape else out

    return evaluate
