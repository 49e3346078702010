"""Common types of the symbolic-regression backends.

A backend turns samples :math:`(V_k, r_k)` of one positive rate function
(1/ms) on a voltage range (mV) into a Pareto front of closed-form sympy
expressions in the symbol ``V`` and picks one of them.

Every backend reports its candidates with the same measures so fronts from
different backends can be compared:

* ``loss`` -- mean squared *relative* error on the samples,
  :math:`\\frac{1}{n}\\sum_k \\left(\\frac{\\hat r(V_k) - r_k}{r_k}\\right)^2`;
* ``max_rel_error`` -- :math:`\\max_k |\\hat r(V_k) - r_k| / r_k`;
* ``complexity`` -- the number of nodes of the sympy expression tree
  (symbols, numbers and operators; see :func:`expression_complexity`);
* ``bic`` -- the Bayesian information criterion on relative residuals,
  see :func:`bic`.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field

import numpy as np
import sympy

from hhsym.errors import ArgumentTypeError, ModelError, invalid
from hhsym.estimate.rates.closed_forms import round_sig

__all__ = [
    "V",
    "MIN_SAMPLES",
    "REL_ERROR_FLOOR",
    "Candidate",
    "RateFit",
    "Backend",
    "check_samples",
    "evaluate_expr",
    "relative_errors",
    "bic",
    "expression_complexity",
    "count_constants",
    "pareto_front",
    "round_sig",
    "candidate_from_expr",
]

#: The voltage symbol (mV) every distilled expression is written in.
V = sympy.Symbol("V", real=True)

#: Fewest samples a backend accepts.
MIN_SAMPLES = 10

#: Relative-error floor of the BIC: residuals below this (0.01 %) are treated
#: as exact, so that fitting round-off never rewards a needlessly complex form.
REL_ERROR_FLOOR = 1e-4


@dataclass(frozen=True)
class Candidate:
    """One closed-form expression for a rate function.

    Attributes
    ----------
    expr : sympy.Expr
        The rate (1/ms) as an expression in :data:`V` (mV).
    complexity : int
        Number of nodes of the expression tree (:func:`expression_complexity`).
    loss : float
        Mean squared relative error on the samples (dimensionless).
    max_rel_error : float or None
        Largest relative error on the samples (dimensionless); ``None`` only
        when the candidate was read from a table without samples to check it on.
    form : str
        The family: ``"constant"``, ``"exponential"``, ``"linoid"``,
        ``"sigmoid"``, ``"sum(a,b)"`` for a sum of two families, or
        ``"operon"`` / ``"pysr"`` for an open-form expression.
    params : dict of str to float
        Fitted constants by name (units: A in 1/ms, B and k in mV, c in 1/ms;
        open forms number their constants ``c0, c1, ...``).
    backend : str
        Name of the backend that produced the candidate.
    bic : float
        Bayesian information criterion on the samples (lower is better;
        ``inf`` when not evaluated).
    """

    expr: sympy.Expr
    complexity: int
    loss: float
    max_rel_error: float | None
    form: str
    params: dict = field(default_factory=dict)
    backend: str = ""
    bic: float = math.inf

    def __call__(self, V_values):
        """Evaluate the expression at voltages ``V_values`` (mV); returns 1/ms."""
        return evaluate_expr(self.expr, V_values)


@dataclass(frozen=True)
class RateFit:
    """Result of distilling one rate function.

    Attributes
    ----------
    name : str
        Name of the rate (e.g. ``"alpha_m"``).
    front : list of Candidate
        Candidates non-dominated in (complexity, loss), sorted by complexity.
    best : Candidate
        The chosen candidate (lowest BIC among the accepted ones).
    backend : str
        Name of the backend.
    seconds : float
        Wall-clock time of the fit (s).
    notes : tuple of str
        Human-readable remarks (e.g. that the open-form fallback was used).
    """

    name: str
    front: list
    best: Candidate
    backend: str
    seconds: float
    notes: tuple = ()


class Backend(abc.ABC):
    """A symbolic-regression backend.

    Contract: :meth:`fit_rate` takes samples of one positive rate function and
    returns a :class:`RateFit` whose ``front`` is non-dominated in
    (complexity, loss) and sorted by complexity, and whose ``best`` is one
    of the front's candidates. Inputs are checked with :func:`check_samples`.
    A backend that cannot run on this machine raises
    :class:`~hhsym.errors.BackendUnavailableError` from :meth:`fit_rate`
    (constructing it never fails for that reason).
    """

    #: Registry name of the backend.
    name: str = "abstract"

    def fit_rate(self, V, r, name="rate"):
        """Distil samples of one rate function into closed forms.

        Parameters
        ----------
        V : array_like, shape (n,)
            Voltages (mV), finite, ``n >= 10``.
        r : array_like, shape (n,)
            Rate values (1/ms) at ``V``, finite and strictly positive.
        name : str, optional
            Name of the rate, used in messages and in the result.

        Returns
        -------
        RateFit
        """
        V_arr, r_arr = check_samples(V, r)
        if not isinstance(name, str):
            raise invalid("name", name, "a str", cls=ArgumentTypeError)
        t0 = time.perf_counter()
        candidates, notes = self._fit(V_arr, r_arr, name)
        if not candidates:
            raise ModelError(
                f"backend {self.name!r} found no acceptable expression for rate {name!r}"
            )
        best = min(candidates, key=lambda c: (c.bic, c.complexity))
        front = pareto_front(candidates)
        if best not in front:  # the BIC pick is always shown on the front
            front = sorted(front + [best], key=lambda c: (c.complexity, c.loss))
        return RateFit(
            name=name,
            front=front,
            best=best,
            backend=self.name,
            seconds=time.perf_counter() - t0,
            notes=tuple(notes),
        )

    @abc.abstractmethod
    def _fit(self, V, r, name):
        """Return ``(candidates, notes)`` for checked float64 arrays."""

    def __repr__(self):
        return f"{type(self).__name__}()"


def check_samples(V, r):
    """Check and convert samples of a rate function.

    Parameters
    ----------
    V : array_like, shape (n,)
        Voltages (mV).
    r : array_like, shape (n,)
        Rates (1/ms).

    Returns
    -------
    V, r : ndarray of float64, shape (n,)

    Raises
    ------
    InvalidArgumentError
        If the arrays are not 1-D, differ in length, hold fewer than
        :data:`MIN_SAMPLES` values, hold NaN/inf, if ``r`` is not strictly
        positive or ``V`` has fewer than 3 distinct values.
    ArgumentTypeError
        If an argument is not numeric.
    """
    arrays = []
    for arg, value in (("V", V), ("r", r)):
        try:
            a = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise invalid(arg, value, "a 1-D array of floats", cls=ArgumentTypeError) from None
        if a.ndim != 1:
            raise invalid(arg, value, f"a 1-D array (got shape {a.shape})")
        if a.size < MIN_SAMPLES:
            raise invalid(arg, value, f"at least {MIN_SAMPLES} samples (got {a.size})")
        if not np.all(np.isfinite(a)):
            raise invalid(arg, value, "finite values only (no NaN or inf)")
        arrays.append(a)
    V_arr, r_arr = arrays
    if V_arr.size != r_arr.size:
        raise invalid("r", r, f"as many samples as V ({V_arr.size}); got {r_arr.size}")
    if np.any(r_arr <= 0):
        k = int(np.argmin(r_arr))
        raise invalid(
            "r", r, f"strictly positive rates (1/ms); r[{k}]={r_arr[k]!r} at V={V_arr[k]!r} mV"
        )
    if np.unique(V_arr).size < 3:
        raise invalid("V", V, "at least 3 distinct voltages (mV)")
    order = np.argsort(V_arr, kind="stable")
    return V_arr[order], r_arr[order]


def evaluate_expr(expr, V_values):
    """Evaluate a sympy expression in :data:`V` at voltages ``V_values`` (mV).

    Removable singularities (e.g. a linoid's 0/0 at V = B) are evaluated at
    their limit: where the direct evaluation is NaN, the mean of the values at
    ``V -/+ h`` with ``h = 1e-6 * max(1, |V|)`` mV is used (relative error of
    order ``h^2`` for a smooth limit). Points that stay non-finite are
    returned as NaN for the caller to reject.

    Parameters
    ----------
    expr : sympy.Expr
        Expression in :data:`V`.
    V_values : array_like
        Voltages (mV).

    Returns
    -------
    ndarray of float64
        Same shape as ``V_values``.
    """
    v = np.asarray(V_values, dtype=float)
    f = sympy.lambdify(V, expr, "numpy")

    def call(x):
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape).astype(float)

    out = call(v).copy()
    bad = np.isnan(out)
    if np.any(bad):
        vb = v[bad]
        h = 1e-6 * np.maximum(1.0, np.abs(vb))
        out[bad] = 0.5 * (call(vb - h) + call(vb + h))
    return out


def relative_errors(pred, r):
    """Relative errors ``(pred - r) / r``; non-finite predictions give ``inf``."""
    pred = np.asarray(pred, dtype=float)
    with np.errstate(all="ignore"):
        e = (pred - r) / r
    return np.where(np.isfinite(e), e, np.inf)


def bic(rel_residuals, n_params):
    """Bayesian information criterion on relative residuals.

    .. math::

        \\mathrm{BIC} = n \\ln\\!\\left(\\max\\!\\left(\\frac{1}{n}\\sum_k e_k^2,\\;
        \\varepsilon^2\\right)\\right) + p \\ln n,
        \\qquad e_k = \\frac{\\hat r(V_k) - r_k}{r_k},

    with ``n`` samples, ``p`` fitted constants and the floor
    :math:`\\varepsilon` = :data:`REL_ERROR_FLOOR`. This is the Gaussian
    log-likelihood BIC for multiplicative noise; the floor keeps round-off of
    exact fits from deciding between forms.

    Parameters
    ----------
    rel_residuals : ndarray
        Relative residuals :math:`e_k` (dimensionless).
    n_params : int
        Number of fitted constants ``p``.

    Returns
    -------
    float
        ``inf`` if any residual is not finite.
    """
    e = np.asarray(rel_residuals, dtype=float)
    if not np.all(np.isfinite(e)):
        return math.inf
    n = e.size
    mse = max(float(np.mean(e * e)), REL_ERROR_FLOOR**2)
    return n * math.log(mse) + n_params * math.log(n)


def expression_complexity(expr):
    """Number of nodes (atoms and operators) of the expression tree.

    Counted on sympy's default, evaluated form of ``expr`` (which is how
    sympy would hold it after any manipulation), so that the same function
    written differently by different backends gets comparable complexities.
    """
    return sum(1 for _ in sympy.preorder_traversal(_evaluated(expr)))


def _evaluated(expr):
    if not expr.args:
        return expr
    return expr.func(*[_evaluated(a) for a in expr.args])


def count_constants(expr):
    """Number of floating-point constants in ``expr`` (its fitted parameters)."""
    return len([a for a in sympy.preorder_traversal(expr) if isinstance(a, sympy.Float)])


def pareto_front(candidates):
    """Candidates non-dominated in (complexity, loss), sorted by complexity.

    A candidate is kept when no other has both lower-or-equal complexity and
    strictly lower loss (ties in complexity keep the lowest loss only).
    """
    front = []
    best_loss = math.inf
    for c in sorted(candidates, key=lambda c: (c.complexity, c.loss)):
        if c.loss < best_loss:
            if front and front[-1].complexity == c.complexity:
                continue
            front.append(c)
            best_loss = c.loss
    return front


def candidate_from_expr(expr, V_values, r, *, form, params, backend, n_params=None):
    """Evaluate ``expr`` on the samples and build a :class:`Candidate`.

    Returns ``None`` if the expression is not finite on every sample or does
    not depend only on :data:`V`.
    """
    if isinstance(expr, str):  # text is read by the whitelist parser, never sympified
        from hhsym.expressions import parse

        expr = parse(expr, {"V": V}, where=f"{form} candidate")
    elif not isinstance(expr, sympy.Basic):
        expr = sympy.Float(float(expr))
    if expr.free_symbols - {V}:
        return None
    e = relative_errors(evaluate_expr(expr, V_values), r)
    if not np.all(np.isfinite(e)):
        return None
    p = count_constants(expr) if n_params is None else n_params
    return Candidate(
        expr=expr,
        complexity=expression_complexity(expr),
        loss=float(np.mean(e * e)),
        max_rel_error=float(np.max(np.abs(e))),
        form=form,
        params=dict(params),
        backend=backend,
        bic=bic(e, p),
    )

