r"""Some gates learned, others fixed at their literature forms: a wrapper over any rate parametrisation.

A template often knows some of its gates well (a channel from the literature,
e.g. Pospischil's M current) while others are to be learned.
:class:`FixedGates` wraps any :class:`~hhsym.estimate.rates.base.GateParametrisation`
``inner`` of *all* the model's gates and replaces the tables of the fixed
gates by the template's own rates:

.. math::

    x_\infty = \frac{\alpha(V)}{\alpha(V) + \beta(V)}, \qquad \lambda = \alpha(V) + \beta(V),

with zero derivatives.  The parameter layout is ``inner``'s: the fixed gates'
columns stay in the vector but no residual depends on them, so a
Levenberg–Marquardt step leaves them where they are (their Jacobian columns
are zero; :attr:`FixedGates.free_columns` lists the others, for the
optimisers that take ``free=`` and for covariances).  Every loss that takes a
parametrisation (charge balance, output error) therefore fits the learned
gates with the fixed ones exactly as the template writes them.

The fixed gates' tables are computed once per node array (a few kept; the template's
rates evaluated by :meth:`ConductanceModel.evaluate_rates`, clipped as in
:func:`hhsym.estimate.rates.expression_rates.rate_tables`).
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.rates.base import GateParametrisation
from hhsym.estimate.rates.expression_rates import rate_tables

__all__ = ["FixedGates", "fixed_indices"]


def fixed_indices(model, fixed):
    """Indices (model order) of the gates named in ``fixed``; the caller has checked the names."""
    names = [g.name for g in model.gates]
    return tuple(sorted(names.index(g) for g in fixed))


class FixedGates(GateParametrisation):
    """A parametrisation whose fixed gates run on the template's rates (module docstring).

    Parameters
    ----------
    inner : GateParametrisation
        Parametrisation of every gate of ``model`` (its fixed gates' parameters are unused).
    model : ConductanceModel
        Template whose rates (1/ms) the fixed gates keep.
    fixed : sequence of int
        Indices of the fixed gates in the model's gate order.

    Attributes
    ----------
    free_columns : ndarray of int
        Columns of the parameter vector that belong to learned gates.

    Notes
    -----
    Any other attribute (``random_start``, ``curves``, ``thetas``, ``sizes``, ...) is ``inner``'s.
    """

    def __init__(self, inner, model, fixed):
        self.inner = inner
        self.model = model
        self.fixed = tuple(int(j) for j in fixed)
        self.names = [g.name for g in model.gates]
        if inner.n_gates != len(self.names):
            raise ValueError(f"inner describes {inner.n_gates} gates, the model has {len(self.names)}")
        npg = inner.n_per_gate
        self.free_columns = np.array([j * npg + c for j in range(inner.n_gates) if j not in self.fixed
                                      for c in range(npg)], dtype=np.int64)
        self.tau_min = inner.tau_min
        self._cache = {}

    def __getattr__(self, name):  # only called for attributes this class does not define
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    n_gates = property(lambda self: self.inner.n_gates, doc="int: number of gates (fixed ones included).")
    n_per_gate = property(lambda self: self.inner.n_per_gate, doc="int: parameter columns per gate.")

    def fixed_tables(self, nodes):
        """``(x_inf, lambda)`` of the fixed gates on ``nodes`` (mV), each ``(n_fixed, K)``; cached per node array."""
        nodes = np.ascontiguousarray(nodes, dtype=float)
        key = nodes.tobytes()
        if key not in self._cache:
            if len(self._cache) >= 8:  # a loss uses one or two node arrays (tables, roughness grid)
                self._cache.clear()
            r = self.model.evaluate_rates(nodes)
            self._cache[key] = [rate_tables(np.asarray(r[f"alpha_{self.names[j]}"], dtype=float).copy(),
                                            np.asarray(r[f"beta_{self.names[j]}"], dtype=float).copy())[:2]
                                for j in self.fixed]
        return self._cache[key]

    def rates(self, p, V):
        """alpha, beta (1/ms) at ``V`` (mV), each (n_gates, len(V)); the fixed gates' from the template."""
        a, b = self.inner.rates(p, V)
        a, b = np.array(a, dtype=float), np.array(b, dtype=float)
        Vs = np.atleast_1d(np.asarray(V, dtype=float)).ravel()
        r = self.model.evaluate_rates(Vs)
        for j in self.fixed:
            a[j] = r[f"alpha_{self.names[j]}"]
            b[j] = r[f"beta_{self.names[j]}"]
        return a, b

    def tables(self, p, nodes, jac):
        """``inner``'s tables with the fixed gates' rows replaced (values from the template, derivatives 0)."""
        XI, LA, DX, DL = self.inner.tables(p, nodes, jac)
        XI, LA = np.array(XI, dtype=float), np.array(LA, dtype=float)
        for j, (x, lam) in zip(self.fixed, self.fixed_tables(nodes)):
            XI[j], LA[j] = x, lam
            if jac:
                DX[j] = 0.0
                DL[j] = 0.0
        return np.ascontiguousarray(XI), np.ascontiguousarray(LA), DX, DL

    def penalty_rows(self):
        """``inner``'s penalty rows with the fixed gates' columns zeroed."""
        D = np.array(self.inner.penalty_rows(), dtype=float)
        npg = self.n_per_gate
        for j in self.fixed:
            D[:, j * npg:(j + 1) * npg] = 0.0
        return D

    def public(self, p):
        """``inner``'s public constants (the fixed gates' entries are unused)."""
        return self.inner.public(p)

    def to_sympy(self, p):
        """``[(alpha_j, beta_j)]`` per gate: ``inner``'s, the fixed gates' from the template (parameters put in)."""
        out = list(self.inner.to_sympy(p))
        values = {sym: self.model.params[k] for k, sym in self.model.param_symbols().items()}
        rates = self.model.rates
        for j in self.fixed:
            g = self.names[j]
            out[j] = (rates[f"alpha_{g}"].xreplace(values), rates[f"beta_{g}"].xreplace(values))
        return out
