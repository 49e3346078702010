"""Least-squares fitting of the rate families and of sums of two families.

Internal to :mod:`hhsym.distill.forms`; see there for the method.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import sympy
from scipy.optimize import least_squares

from hhsym.estimate.rates.closed_forms import FAMILIES
from hhsym.errors import UnknownNameError, invalid

__all__ = ["SUMS", "FormFit", "SideFits", "fit_family", "fit_pair", "fit_sum", "sse"]

#: The sums of two families that are tried, as (first, second) family names.
SUMS = tuple(
    list(itertools.combinations_with_replacement(("exponential", "sigmoid", "linoid"), 2))
    + [("constant", f) for f in ("exponential", "sigmoid", "linoid")]
)

#: Smallest share of the rate a term of a sum must reach somewhere.
MIN_TERM_SHARE = 0.01
#: Smallest factor by which the ratio of the two terms of a sum must vary over
#: the data; below it the terms act as one and the sum is not identifiable.
MIN_RATIO_SPREAD = 1.2


class FormFit:
    """One fitted parametric form (internal; see :class:`FormsBackend`).

    Attributes
    ----------
    families : tuple of Family
    theta : ndarray
        Internal parameters, concatenated over the terms.
    """

    def __init__(self, families, theta):
        self.families = tuple(families)
        self.theta = np.asarray(theta, dtype=float)

    @property
    def form(self):
        names = [f.name for f in self.families]
        return names[0] if len(names) == 1 else f"sum({','.join(names)})"

    def split(self, theta=None):
        theta = self.theta if theta is None else theta
        out, i = [], 0
        for f in self.families:
            out.append(theta[i : i + f.n_params])
            i += f.n_params
        return out

    def terms(self, V, theta=None):
        return [f.evaluate(t, V) for f, t in zip(self.families, self.split(theta))]

    def evaluate(self, V, theta=None):
        return np.sum(self.terms(V, theta), axis=0)

    def params(self):
        if len(self.families) == 1:
            return self.families[0].public(self.theta)
        out = {}
        for i, (f, t) in enumerate(zip(self.families, self.split()), start=1):
            out.update({f"{k}{i}": v for k, v in f.public(t).items()})
        return out

    def rejection(self, V, V_min, V_max):
        for f, t in zip(self.families, self.split()):
            why = f.rejection(f.public(t), V_min, V_max)
            if why:
                return f"{f.name}: {why}"
        if len(self.families) > 1:
            terms = self.terms(V)
            total = np.sum(terms, axis=0)
            for f, term in zip(self.families, terms):
                with np.errstate(all="ignore"):
                    share = np.max(term / total)
                if not share >= MIN_TERM_SHARE:
                    return f"{f.name} term contributes at most {share:.2%} of the rate"
            with np.errstate(all="ignore"):
                ratio = terms[0] / terms[1]
            spread = np.max(ratio) / np.min(ratio)
            if not spread >= MIN_RATIO_SPREAD:
                return (
                    f"terms are indistinguishable (their ratio varies by a factor "
                    f"{spread:.3g} < {MIN_RATIO_SPREAD} over the data)"
                )
        return None

    def expr(self):
        """The sympy expression in V, constants rounded to six significant digits."""
        exprs = [f.expr(f.public(t)) for f, t in zip(self.families, self.split())]
        return exprs[0] if len(exprs) == 1 else sympy.Add(*exprs, evaluate=False)


def _slopes(families, theta0):
    """Slopes ``k`` optimised as ``k = sign * exp(u)`` so each keeps the sign it started with.

    Returns ``(z0, to_theta, chain)``: the free coordinates of ``theta0``, the map back to ``theta``, and
    ``chain(J, theta)`` turning a Jacobian with respect to ``theta`` (columns) into one with respect to ``z``.
    """
    theta0 = np.asarray(theta0, dtype=float)
    slopes, i = [], 0
    for f in families:
        if f.slope_index is not None:
            slopes.append(i + f.slope_index)
        i += f.n_params
    slopes = np.array(slopes, dtype=int)
    signs = np.sign(theta0[slopes])

    def to_theta(z):
        theta = z.copy()
        theta[slopes] = signs * np.exp(np.clip(z[slopes], -50.0, 50.0))
        return theta

    def chain(J, theta):
        J[:, slopes] *= theta[slopes]  # d/du = k d/dk
        return J

    z0 = theta0.copy()
    z0[slopes] = np.log(np.abs(theta0[slopes]))
    return z0, to_theta, chain


def _least_squares(residuals, jacobian, z0):
    """scipy's Levenberg–Marquardt from ``z0`` with the forms' tolerances; the solution or None."""
    try:
        sol = least_squares(
            residuals, z0, jac=jacobian, method="lm",
            xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=50 * len(z0),
        )
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return None
    return sol.x


def _solve(families, theta0, V, r, weights=None):
    """Levenberg-Marquardt on relative residuals (times ``sqrt(weights)`` if given) from ``theta0``.

    Slopes keep the sign they started with (:func:`_slopes`); everything else
    is unconstrained (degenerate optima are caught afterwards by the guards).
    Returns a :class:`FormFit` or ``None``.
    """
    fit = FormFit(families, theta0)
    z0, to_theta, chain = _slopes(families, theta0)
    w = np.ones_like(r) if weights is None else np.sqrt(np.asarray(weights, dtype=float))

    def residuals(z):
        with np.errstate(all="ignore"):
            res = w * (fit.evaluate(V, to_theta(z)) / r - 1.0)
        return np.where(np.isfinite(res), res, 1e6)

    def jacobian(z):
        theta = to_theta(z)
        parts = [f.gradient(t, V) for f, t in zip(families, fit.split(theta))]
        J = chain(np.concatenate(parts, axis=1) * (w / r)[:, None], theta)
        return np.where(np.isfinite(J), J, 0.0)

    z = _least_squares(residuals, jacobian, z0)
    if z is None:
        return None
    theta = to_theta(z)
    if not np.all(np.isfinite(theta)):
        return None
    return FormFit(families, theta)


def fit_pair(fa, fb, V, alpha, beta, whiten, theta_a, theta_b):
    r"""A gate's two rates fitted jointly by generalised least squares on their logarithms.

    Minimises :math:`\lVert W\,(\log f_a(V) - \log\alpha,\ \log f_b(V) - \log\beta)\rVert^2`
    from the internal parameters ``theta_a``, ``theta_b`` (slopes keep their signs).

    Parameters
    ----------
    fa, fb : Family
        Families of alpha and beta.
    V : ndarray (K,)
        Voltages (mV).
    alpha, beta : ndarray (K,)
        Target rates (1/ms), positive.
    whiten : ndarray (M, 2K)
        :math:`W` with :math:`W^T W` the inverse covariance of the stacked log-rate errors.
    theta_a, theta_b : ndarray
        Starting internal parameters.

    Returns
    -------
    tuple or None
        ``(chi2, FormFit of alpha, FormFit of beta)``, or None if the fit fails.
    """
    families = (fa, fb)
    both = FormFit(families, np.concatenate([theta_a, theta_b]))
    z0, to_theta, chain = _slopes(families, both.theta)
    target = np.concatenate([np.log(alpha), np.log(beta)])
    K = len(V)

    def residuals(z):
        with np.errstate(all="ignore"):
            res = whiten @ (np.log(np.concatenate(both.terms(V, to_theta(z)))) - target)
        return np.where(np.isfinite(res), res, 1e6)

    def jacobian(z):
        theta = to_theta(z)
        J = np.zeros((2 * K, len(theta)))
        with np.errstate(all="ignore"):
            for row, (f, t, value, col) in enumerate(zip(families, both.split(theta), both.terms(V, theta),
                                                         (0, fa.n_params))):
                J[row * K:(row + 1) * K, col:col + f.n_params] = f.gradient(t, V) / value[:, None]
        J = whiten @ chain(np.where(np.isfinite(J), J, 0.0), theta)
        return J

    z = _least_squares(residuals, jacobian, z0)
    if z is None:
        return None
    theta = to_theta(z)
    chi2 = float(np.sum(residuals(z) ** 2))
    if not (np.all(np.isfinite(theta)) and math.isfinite(chi2)):
        return None
    ta, tb = FormFit(families, theta).split()
    return chi2, FormFit((fa,), ta), FormFit((fb,), tb)


def fit_family(family, V, r, n_starts=3, weights=None):
    """Fit one family (both slope signs where it has them).

    Parameters
    ----------
    family : Family or str
        The family or its name (``"constant"``, ``"exponential"``,
        ``"sigmoid"``, ``"linoid"``).
    V, r : ndarray
        Voltages (mV) and rates (1/ms).
    n_starts : int, optional
        Starts per slope sign kept from the data-derived grid.
    weights : ndarray, optional
        Non-negative weight of each sample's squared relative error (default all 1).

    Returns
    -------
    list of FormFit
        The local optima found (unfiltered by the guards), best first (by :func:`sse` with ``weights``).
    """
    if isinstance(family, str):
        if family not in FAMILIES:
            raise invalid("family", family, f"one of {sorted(FAMILIES)}", cls=UnknownNameError)
        family = FAMILIES[family]
    fits = []
    for sign in family.signs:
        for theta0 in family.starts(V, r, sign, n_best=n_starts):
            fit = _solve((family,), theta0, V, r, weights)
            if fit is not None:
                fits.append(fit)
    return sorted(fits, key=lambda f: sse(f, V, r, weights))


def sse(fit, V, r, weights=None):
    """Sum over samples of ``weights`` x the squared relative error of ``fit`` against rates ``r`` (1/ms) at
    ``V`` (mV); ``inf`` if not finite."""
    with np.errstate(all="ignore"):
        e = fit.evaluate(V) / r - 1.0
    s = float(np.sum(e * e if weights is None else np.asarray(weights, dtype=float) * e * e))
    return s if math.isfinite(s) else math.inf


class SideFits:
    """Single-family fits to one side of the voltage range, cached per call."""

    QUANTILES = (0.3, 0.5, 0.7)

    def __init__(self, V, r):
        self.V, self.r = V, r
        self._cache = {}

    def get(self, family, q, side):
        key = (family.name, q, side)
        if key not in self._cache:
            Vq = float(np.quantile(self.V, q))
            mask = self.V <= Vq if side == "left" else self.V >= Vq
            fits = []
            if mask.sum() >= 3:
                fits = fit_family(family, self.V[mask], self.r[mask], n_starts=1)
            self._cache[key] = fits[0].theta.copy() if fits else None
        return self._cache[key]


def _sum_starts(fa, fb, V, r, sides):
    """Starting theta for fa + fb: each term fitted to one side of the range."""
    starts = []
    if fa.name == "constant":
        for frac in (0.3, 0.8):
            c = frac * float(r.min())
            rest = np.maximum(r - c, 1e-3 * r)
            fits = fit_family(fb, V, rest, n_starts=1)
            if fits:
                starts.append(np.concatenate([[math.log(c)], fits[0].theta]))
        return starts
    orders = [(fa, fb)] if fa is fb else [(fa, fb), (fb, fa)]
    for q in sides.QUANTILES:
        for f_left, f_right in orders:
            tl, tr = sides.get(f_left, q, "left"), sides.get(f_right, q, "right")
            if tl is None or tr is None:
                continue
            # each term carries about half of the rate where the sides meet
            tl, tr = tl.copy(), tr.copy()
            tl[0] -= math.log(2.0)
            tr[0] -= math.log(2.0)
            starts.append(np.concatenate([tl, tr] if f_left is fa else [tr, tl]))
    return starts


def fit_sum(fa, fb, V, r, sides, n_starts=2):
    """Fit fa + fb from the ``n_starts`` data-derived starts with the lowest error."""
    starts = _sum_starts(fa, fb, V, r, sides)
    starts.sort(key=lambda t: sse(FormFit((fa, fb), t), V, r))
    out = []
    for theta0 in starts[:n_starts]:
        fit = _solve((fa, fb), theta0, V, r)
        if fit is not None:
            out.append(fit)
    return out
