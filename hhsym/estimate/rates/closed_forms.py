"""The rate-function families of the channel-modelling literature.

Each family is a parametric shape with a numpy evaluator (on an internal,
well-conditioned parameter vector ``theta``), a sympy builder, and the guards
that reject degenerate fits. Units: V, B, k in mV; A, c in 1/ms.

=============  ==========================================================  ======================
family         rate (1/ms)                                                 NeuroML
=============  ==========================================================  ======================
constant       :math:`c`                                                   --
exponential    :math:`A\\,e^{V/k}`                                          HHExpRate
linoid         :math:`A\\,\\frac{(V-B)/k}{1 - e^{-(V-B)/k}}`                  HHExpLinearRate
sigmoid        :math:`\\frac{A}{1 + e^{-(V-B)/k}}`                           HHSigmoidRate
=============  ==========================================================  ======================

The exponential :math:`A e^{(V-B)/k}` identifies only :math:`A e^{-B/k}`, so it
is fitted and reported as :math:`A e^{V/k}`. The linoid's ``A`` is its value
at the removable singularity ``V = B``, evaluated there by its series.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
from scipy.special import expit
from sympy.core.parameters import distribute

from hhsym.symbolic import V as V_SYM


def round_sig(x, digits=6):
    """Round a float to ``digits`` significant digits."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")

__all__ = ["Fixed", "Family", "FAMILIES", "linoid_shape", "SLOPE_RANGE", "midpoint_margin"]

#: Accepted slopes |k| (mV) of sigmoid and linoid fits.
SLOPE_RANGE = (0.5, 200.0)
#: Smallest accepted |k| (mV) of an exponential.
MIN_EXP_SLOPE = 0.5


def midpoint_margin(k):
    """How far (mV) a midpoint B may lie outside the data: ``max(3|k|, 20 mV)``."""
    return max(3.0 * abs(k), 20.0)


def linoid_shape(x):
    """:math:`x / (1 - e^{-x})`, exact near its removable singularity at x = 0."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-5
    with np.errstate(all="ignore"):
        big = x / -np.expm1(-x)
    series = 1.0 + x / 2.0 + x * x / 12.0
    return np.where(small, series, big)


def _over(num, k, negate=False):
    """The unevaluated sympy product ``(-1 if negate) * num / k`` written with |k|.

    Keeps the literature's look, e.g. ``-(V + 40.0)/10.0``, instead of sympy's
    ``-0.1*V - 4.0``; the value is the same.
    """
    sign = (-1 if negate else 1) * (-1 if k < 0 else 1)
    inv = sympy.Pow(sympy.Float(abs(k)), -1, evaluate=False)
    factors = ([sympy.Integer(-1)] if sign < 0 else []) + [num, inv]
    return sympy.Mul(*factors, evaluate=False)


def linoid_dshape(x):
    """Derivative of :func:`linoid_shape`, stable for all x."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-5
    with np.errstate(all="ignore"):
        g = x / -np.expm1(-x)
        h = x / np.expm1(x)  # = g * exp(-x), finite for x << 0
        big = g / x * (1.0 - h)
    return np.where(small, 0.5 + x / 6.0, big)


class Family:
    """A parametric rate family (see the module docstring).

    Attributes
    ----------
    name : str
    names : tuple of str
        Public parameter names.
    n_params : int
    """

    name = ""
    names: tuple = ()

    @property
    def n_params(self):
        return len(self.names)

    #: Index in ``theta`` of a signed slope k that the optimiser handles as
    #: ``k = sign * exp(u)`` (keeps the sign and |k| > 0), or ``None``.
    slope_index = None

    def evaluate(self, theta, V):
        """Rate (1/ms) at ``V`` (mV) for internal parameters ``theta``."""
        raise NotImplementedError

    def gradient(self, theta, V):
        """Derivatives of the rate with respect to ``theta``, shape (n, p)."""
        raise NotImplementedError

    def public(self, theta):
        """Public parameters ``{name: value}`` from internal ``theta``."""
        raise NotImplementedError

    def internal(self, params):
        """Internal ``theta`` (list of float) from public ``params``: the inverse of :meth:`public`."""
        raise NotImplementedError

    def expr(self, params):
        """Sympy expression in V for public ``params`` (rounded to 6 digits)."""
        raise NotImplementedError

    def rejection(self, params, V_min, V_max):
        """Why the fitted ``params`` are degenerate, or ``None`` if acceptable."""
        return None

    def starts(self, V, r, sign, n_best=3):
        """Deterministic starting ``theta`` values derived from the data."""
        raise NotImplementedError

    signs = (1,)


class Constant(Family):
    name = "constant"
    names = ("c",)

    def evaluate(self, theta, V):
        return np.full_like(np.asarray(V, dtype=float), float(np.exp(theta[0])))

    def public(self, theta):
        return {"c": float(np.exp(theta[0]))}

    def internal(self, params):
        return [math.log(params["c"])]

    def expr(self, params):
        return sympy.Float(round_sig(params["c"]))

    def gradient(self, theta, V):
        return self.evaluate(theta, V)[:, None]

    def starts(self, V, r, sign, n_best=3):
        # minimiser of sum((c/r - 1)^2)
        c = np.sum(1.0 / r) / np.sum(1.0 / r**2)
        return [np.array([math.log(c)])]


class Exponential(Family):
    name = "exponential"
    names = ("A", "k")

    def evaluate(self, theta, V):
        with np.errstate(all="ignore"):
            return np.exp(theta[0] + theta[1] * np.asarray(V, dtype=float))

    def public(self, theta):
        s = theta[1]
        return {"A": float(np.exp(theta[0])), "k": (1.0 / s) if s != 0 else math.inf}

    def internal(self, params):
        return [math.log(params["A"]), 1.0 / params["k"]]

    def expr(self, params):
        A, k = round_sig(params["A"]), round_sig(params["k"])
        with distribute(False):
            return sympy.Mul(sympy.Float(A), sympy.exp(_over(V_SYM, k)), evaluate=False)

    def rejection(self, params, V_min, V_max):
        k = params["k"]
        if not math.isfinite(k) or abs(k) < MIN_EXP_SLOPE:
            return f"slope k={k:.4g} mV outside |k| >= {MIN_EXP_SLOPE}"
        return None

    def gradient(self, theta, V):
        V = np.asarray(V, dtype=float)
        f = self.evaluate(theta, V)
        return np.stack([f, V * f], axis=1)

    def starts(self, V, r, sign, n_best=3):
        slope, intercept = np.polyfit(V, np.log(r), 1)
        return [np.array([intercept, slope])]


class _Midpoint(Family):
    """Shared machinery of the three-parameter families (A, B, k)."""

    names = ("A", "B", "k")
    signs = (1, -1)

    slope_index = 2

    def shape(self, x):
        raise NotImplementedError

    def dshape(self, x):
        """Derivative of :meth:`shape`."""
        raise NotImplementedError

    def gradient(self, theta, V):
        A, B, k = float(np.exp(theta[0])), theta[1], theta[2]
        x = (np.asarray(V, dtype=float) - B) / k
        with np.errstate(all="ignore"):
            f = A * self.shape(x)
            d = A * self.dshape(x)
            return np.stack([f, -d / k, -d * x / k], axis=1)

    def log_shape(self, x):
        with np.errstate(all="ignore"):
            return np.log(self.shape(x))

    def evaluate(self, theta, V):
        x = (np.asarray(V, dtype=float) - theta[1]) / theta[2]
        with np.errstate(all="ignore"):
            return float(np.exp(theta[0])) * self.shape(x)

    def public(self, theta):
        return {"A": float(np.exp(theta[0])), "B": float(theta[1]), "k": float(theta[2])}

    def internal(self, params):
        return [math.log(params["A"]), params["B"], params["k"]]

    def rejection(self, params, V_min, V_max):
        B, k = params["B"], params["k"]
        lo, hi = SLOPE_RANGE
        if not lo <= abs(k) <= hi:
            return f"slope k={k:.4g} mV outside {lo} <= |k| <= {hi}"
        margin = midpoint_margin(k)
        if B < V_min - margin or B > V_max + margin:
            return (
                f"midpoint B={B:.4g} mV more than {margin:.4g} mV outside the data "
                f"[{V_min:.4g}, {V_max:.4g}] mV (a simpler form in disguise)"
            )
        return None

    def starts(self, V, r, sign, n_best=3):
        """Grid over (B, k); ``log A`` in closed form; keep the best few."""
        V_min, V_max = float(V.min()), float(V.max())
        span = V_max - V_min
        Bs = np.linspace(V_min - 0.5 * span, V_max + 0.5 * span, 25)
        ks = sign * np.geomspace(1.0, 100.0, 13)
        logr = np.log(r)
        B_grid, k_grid = np.meshgrid(Bs, ks, indexing="ij")
        x = (V[None, None, :] - B_grid[..., None]) / k_grid[..., None]
        lg = self.log_shape(x)
        ok = np.all(np.isfinite(lg), axis=-1)
        d = logr - lg
        logA = np.mean(d, axis=-1)
        cost = np.sum((d - logA[..., None]) ** 2, axis=-1)
        cost = np.where(ok, cost, np.inf)
        order = np.argsort(cost, axis=None)
        out = []
        for idx in order[: 4 * n_best]:
            i, j = np.unravel_index(idx, cost.shape)
            if not np.isfinite(cost[i, j]):
                break
            theta = np.array([logA[i, j], Bs[i], ks[j]])
            if all(np.max(np.abs(theta[1:] - t[1:])) > 1e-9 for t in out):
                out.append(theta)
            if len(out) == n_best:
                break
        return out


class Sigmoid(_Midpoint):
    name = "sigmoid"

    def shape(self, x):
        return expit(x)

    def dshape(self, x):
        s = expit(x)
        return s * (1.0 - s)

    def log_shape(self, x):
        # log(expit(x)) = -log1p(exp(-x)), stable for both signs
        return -np.logaddexp(0.0, -x)

    def expr(self, params):
        A, B, k = (round_sig(params[n]) for n in ("A", "B", "k"))
        with distribute(False):
            return sympy.Float(A) / (1 + sympy.exp(_over(V_SYM - sympy.Float(B), k, True)))


class Linoid(_Midpoint):
    name = "linoid"

    def shape(self, x):
        return linoid_shape(x)

    def dshape(self, x):
        return linoid_dshape(x)

    def log_shape(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            # log(x / (1 - e^-x)); for x << 0 use log(-x) + x to avoid overflow
            return np.where(x < -30.0, np.log(np.abs(x)) + x, np.log(linoid_shape(x)))

    def expr(self, params):
        A, B, k = (round_sig(params[n]) for n in ("A", "B", "k"))
        scale = sympy.Float(round_sig(A / abs(k)))
        with distribute(False):
            d = V_SYM - sympy.Float(B)
            if k > 0:  # A/k (V-B) / (1 - exp(-(V-B)/k))
                return scale * d / (1 - sympy.exp(_over(d, k, True)))
            # k < 0: the same function written A/|k| (V-B) / (exp((V-B)/|k|) - 1)
            return scale * d / (sympy.exp(_over(d, -k)) - 1)


#: The families by name, simplest first.
FAMILIES = {f.name: f for f in (Constant(), Exponential(), Sigmoid(), Linoid())}


class Fixed(Family):
    """A rate kept as given: no parameter, the template's expression (a gate the fit does not move).

    Parameters
    ----------
    expr : sympy.Expr
        The rate (1/ms) as a numeric expression in :data:`hhsym.symbolic.V` (mV), e.g. a
        literature rate that is no :data:`FAMILIES` form.
    function : callable
        Its numpy evaluator ``function(V) -> ndarray`` (1/ms), e.g. an entry of
        :meth:`hhsym.model.ConductanceModel.rate_functions` (exact at removable singularities).
    """

    name = "fixed"
    names = ()

    def __init__(self, expr, function):
        self.expression = sympy.sympify(expr)
        self._fn = function

    def evaluate(self, theta, V):
        return self._fn(np.asarray(V, dtype=float))

    def gradient(self, theta, V):
        return np.zeros((np.size(V), 0))

    def public(self, theta):
        return {}

    def internal(self, params):
        return []

    def expr(self, params):
        return self.expression

    def starts(self, V, r, sign, n_best=3):
        return [[]]
