r"""Gate families linear in their coefficients: rate parametrisations by curves, not networks.

Before any network is trained, every gate is described by its steady state
and time constant as curves of the normalised potential
:math:`u = (V - c)/s` (the data's range mapped to :math:`[-1, 1]`),

.. math::

    \operatorname{logit} x_\infty(V) = \sum_i a_i\,B_i(u), \qquad
    \log\big(\tau(V) - \tau_\min\big) = \sum_i b_i\,B_i(u),

so :math:`\alpha = x_\infty/\tau` and :math:`\beta = (1 - x_\infty)/\tau` are
positive and every gate stays in (0, 1) by construction.  Two bases:

* :class:`GateFamily` — polynomials :math:`u^i`.  Degrees (1, 2) are a
  Boltzmann steady state with a log-quadratic time constant, the generic
  two-state gating shape (the role search of :mod:`hhsym.estimate.search.network_start`
  draws its random starts there and screens the role patterns in degrees (2, 2),
  whose logit x_inf can bend as HH's do, each x_inf kept monotone with its
  pattern's sign: ``monotone=True``); degrees (3, 3) refit the close contenders.
* :class:`SplineFamily` — uniform cubic B-splines with linear tails (a free
  curve, nothing model-shaped), which the estimator refines coarse to fine
  before it trains the networks (:class:`~hhsym.estimate.RateEstimator`).

Both are :class:`~hhsym.estimate.rates.base.GateParametrisation`\ s: they hold
no recordings.  Their usual cost is the estimator's stage-1 charge balance
(:class:`hhsym.estimate.losses.charge_balance.ChargeBalance`: gates driven by the
measured V, weighted windows, sub-steps), evaluated by the same table kernel
(:mod:`hhsym.estimate.losses.tables`) with the family's curves tabulated over the
loss's voltage nodes, so Jacobians are exact and cost one pass.  Because the curves
are linear in their coefficients, a few dozen coefficients per gate describe
the whole voltage dependence and Levenberg–Marquardt is far better
conditioned than on network weights: on 600 ms of HH recordings a 16-knot
spline family lands within ~1–8 % of the true rates (where they matter) in
~4 s, where the networks needed ~200 iterations (~20 s) from the role
search's cubic curves to get there.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

from hhsym.estimate.rates.base import GateParametrisation

__all__ = ["CurveFamily", "GateFamily", "SplineFamily", "curves_from_rates"]

#: Clip of logit x_inf (a gate never closer to 0 or 1 than ~4e-18) and of log(tau - tau_min) (log ms).
Z_CLIP = 40.0
LT_CLIP = 25.0


def curves_from_rates(rates, names, tau_min):
    """The families' curves of given rates: logit x_inf = log(alpha/beta) and log(tau - tau_min).

    Parameters
    ----------
    rates : dict
        ``alpha_<gate>``, ``beta_<gate>`` -> arrays of rates (1/ms), e.g. from
        :meth:`hhsym.ConductanceModel.evaluate_rates`.
    names : sequence of str
        Gate names, in the order of the result's rows.
    tau_min : float
        Time-constant floor (ms); tau = 1/(alpha + beta) is kept above it by
        at least ``1e-3 * tau_min``.

    Returns
    -------
    z, lt : ndarray (len(names), n)
        logit x_inf and log(tau - tau_min) (log ms).
    """
    z, lt = [], []
    for g in names:
        a, b = np.asarray(rates[f"alpha_{g}"], dtype=float), np.asarray(rates[f"beta_{g}"], dtype=float)
        z.append(np.log(a) - np.log(b))
        lt.append(np.log(np.maximum(1.0 / (a + b) - tau_min, 1e-3 * tau_min)))
    return np.array(z), np.array(lt)


class CurveFamily(GateParametrisation):
    """Per-gate curves linear in their coefficients (abstract base).

    Subclasses define the basis (:meth:`basis`) and may map free parameters
    to coefficients (:meth:`coefficients`); this class tabulates the curves on
    given voltage nodes with their exact derivatives
    (:meth:`~hhsym.estimate.rates.base.GateParametrisation.tables`), and fits
    curves given on a grid.  The parameters of gate ``j`` are
    ``[a_j (n_z), b_j (n_t)]``, gates in the model's order.  The tables clip
    logit x_inf to ±:data:`Z_CLIP` and log(tau - tau_min) to ±:data:`LT_CLIP`
    (derivatives 0 where clipped), as :meth:`rates` does.

    Parameters
    ----------
    n_gates : int
        Number of gates.
    center, scale : float
        Normalisation of V (mV): ``u = (V - center) / scale``.
    tau_min : float
        Time-constant floor (ms): tau = tau_min + exp(log-tau curve).
    """

    def __init__(self, n_gates, center, scale, tau_min=0.0):
        self._ng = int(n_gates)
        self.c, self.s = float(center), float(scale)
        self.tau_min = float(tau_min)
        self._basis_cache = None

    n_gates = property(lambda self: self._ng, doc="int: number of gates.")

    # ------------------------------------------------------------------ contract
    def basis(self, V):
        """Basis functions at potentials ``V`` (mV): ``(B_z (n, n_z), B_t (n, n_t))``."""
        raise NotImplementedError

    @property
    def n_z(self):
        """int: coefficients of logit x_inf per gate."""
        raise NotImplementedError

    @property
    def n_t(self):
        """int: coefficients of log(tau - tau_min) per gate."""
        raise NotImplementedError

    def coefficients(self, p):
        """Coefficients from parameters: ``(a (ng, n_z), b (ng, n_t), da_dp (ng, n_z))``.

        The base family's parameters are its coefficients (``da_dp = 1``).
        """
        p = np.asarray(p, dtype=float).reshape(self.ng, self.n_per_gate)
        return p[:, :self.n_z], p[:, self.n_z:], np.ones((self.ng, self.n_z))

    # ------------------------------------------------------------------ curves
    @property
    def n_per_gate(self):
        """int: parameters per gate."""
        return self.n_z + self.n_t

    def curves(self, p, V):
        """logit x_inf and log(tau - tau_min) (log ms) at ``V`` (mV), each (n_gates, len(V))."""
        a, b, _ = self.coefficients(p)
        Bz, Bt = self.basis(np.atleast_1d(np.asarray(V, dtype=float)))
        return np.clip(a @ Bz.T, -Z_CLIP, Z_CLIP), np.clip(b @ Bt.T, -LT_CLIP, LT_CLIP)

    def rates(self, p, V):
        """alpha, beta (1/ms) at ``V`` (mV), each (n_gates, len(V))."""
        z, lt = self.curves(p, V)
        lt = np.logaddexp(np.log(self.tau_min), lt) if self.tau_min > 0 else lt
        return np.exp(-np.logaddexp(0.0, -z) - lt), np.exp(-np.logaddexp(0.0, z) - lt)

    def _node_basis(self, nodes):
        """The basis on ``nodes``, kept while the same nodes come back (a loss's nodes never change)."""
        c = self._basis_cache
        if c is None or not (c[0] is nodes or (c[0].shape == nodes.shape and np.array_equal(c[0], nodes))):
            c = self._basis_cache = (nodes, *self.basis(nodes))
        return c[1], c[2]

    def tables(self, p, nodes, jac):
        """Node tables of the family (:meth:`~hhsym.estimate.rates.base.GateParametrisation.tables`)."""
        Bz, Bt = self._node_basis(np.asarray(nodes, dtype=float))
        a, b, da = self.coefficients(p)
        z, lt = a @ Bz.T, b @ Bt.T
        zc, ltc = np.clip(z, -Z_CLIP, Z_CLIP), np.clip(lt, -LT_CLIP, LT_CLIP)
        xinf = 1.0 / (1.0 + np.exp(-zc))
        et = np.exp(ltc)
        lam = 1.0 / (self.tau_min + et)
        K = Bz.shape[0]
        DX = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        DL = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        if jac:
            q = xinf * (1.0 - xinf) * (zc == z)
            cl = -lam * lam * et * (ltc == lt)
            DX[:, :, :self.n_z] = q[:, :, None] * Bz[None, :, :] * da[:, None, :]
            DL[:, :, self.n_z:] = cl[:, :, None] * Bt[None, :, :]
        return np.ascontiguousarray(xinf), np.ascontiguousarray(lam), DX, DL


def _integrated_bernstein(d):
    """``(d + 1, d + 1)``: column 0 the constant 1, column k + 1 the power coefficients of
    ``int_0^u b_{k,d-1}(t) dt``, with ``b_{k,n}(t) = C(n, k) ((1 - t)/2)^(n - k) ((1 + t)/2)^k``."""
    from math import comb

    from numpy.polynomial import polynomial as P

    M = np.zeros((d + 1, d + 1))
    M[0, 0] = 1.0
    n = d - 1
    for k in range(d):
        b = comb(n, k) * P.polymul(P.polypow([0.5, -0.5], n - k), P.polypow([0.5, 0.5], k))
        M[:, k + 1] = np.pad(P.polyint(b), (0, d + 1))[:d + 1]
    return M


class GateFamily(CurveFamily):
    r"""Polynomial (logit x_inf, log tau) family.

    Parameters
    ----------
    n_gates, center, scale :
        As for :class:`CurveFamily`.
    deg : (int, int)
        Polynomial degrees of logit x_inf and of log(tau - tau_min).
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate at the centre of the V range (``u = 0``:
        the linear coefficient; everywhere when ``deg[0] == 1``); the slope
        parameter is then the log of the slope's magnitude.
    monotone : bool
        With ``signs``: x_inf is monotone over the whole range ``u`` in [-1, 1], with
        the sign of ``signs`` (see Notes).
    tau_min : float
        Time-constant floor (ms).

    Notes
    -----
    :meth:`to_sympy` gives the rates with the polynomials written out (without the
    clipping of :data:`Z_CLIP`, :data:`LT_CLIP`, which only guards extreme values).

    *Monotone steady states.*  With ``monotone=True`` the logit of gate ``j`` is

    .. math::

        z_j(u) = a_{j0} + s_j \sum_{k=0}^{d-1} e^{p_{jk}} \int_0^u b_{k,d-1}(t)\,dt,

    with :math:`b_{k,d-1}` the Bernstein polynomials of degree :math:`d - 1` on [-1, 1]
    (nonnegative there, summing to one), so :math:`s_j z_j'(u) > 0` on the whole range:
    a two-state gate's steady state, monotone as every literature gate's is.  A
    Boltzmann curve has all :math:`p_{jk}` equal.  Without it a cubic logit can rise and
    fall, and the role search found fits where n, its slope positive at the centre,
    also inactivated at depolarised potentials in place of h (notes/issue16.md, session 10).
    """

    def __init__(self, n_gates, center, scale, deg=(1, 2), signs=None, monotone=False, tau_min=0.0):
        self.deg = tuple(int(d) for d in deg)
        self.signs = None if signs is None else np.asarray(signs, dtype=float)
        if self.signs is not None and self.deg[0] < 1:
            raise ValueError("signs need a steady state of degree >= 1")
        if monotone and self.signs is None:
            raise ValueError("a monotone family needs signs")
        self.monotone = bool(monotone)
        # column k: power coefficients (u^0 .. u^d) of the k-th logit basis function
        self._M = _integrated_bernstein(self.deg[0]) if self.monotone else np.eye(self.deg[0] + 1)
        super().__init__(n_gates, center, scale, tau_min)

    n_z = property(lambda self: self.deg[0] + 1)
    n_t = property(lambda self: self.deg[1] + 1)

    def basis(self, V):
        u = (np.asarray(V, dtype=float) - self.c) / self.s
        powers = u[:, None] ** np.arange(max(self.deg) + 1)[None, :]
        return powers[:, :self.n_z] @ self._M, powers[:, :self.n_t]

    def coefficients(self, p):
        a, b, da = super().coefficients(p)
        if self.signs is not None:
            cols = self._signed_columns
            a = a.copy()
            a[:, cols] = self.signs[:, None] * np.exp(np.clip(a[:, cols], -30.0, 30.0))
            da = da.copy()
            da[:, cols] = a[:, cols]
        return a, b, da

    @property
    def _signed_columns(self):
        """Logit coefficients stored as ``log(sign * coefficient)`` with ``signs``: the slope at the centre,
        or (monotone) every Bernstein weight."""
        return slice(1, None) if self.monotone else slice(1, 2)

    def power_coefficients(self, p):
        """Coefficients of ``u**i`` of logit x_inf ``(ng, deg[0] + 1)`` and of log tau ``(ng, deg[1] + 1)``."""
        a, b, _ = self.coefficients(p)
        return a @ self._M.T, b

    def random_start(self, rng, v_lo, v_hi):
        """Random generic parameters: Boltzmann x_inf, log-quadratic tau.

        V_1/2 uniform over [v_lo, v_hi] (mV), slope |k| log-uniform in
        [2, 30] mV of either sign (or of the family's sign), tau at the
        centre log-uniform in [0.05, 20] ms, mild random tilt and curvature
        of log tau; higher coefficients zero.
        """
        p = np.zeros((self.ng, self.n_per_gate))
        dz = self.n_z
        for j in range(self.ng):
            Vh = rng.uniform(v_lo, v_hi)
            sign = rng.choice([-1.0, 1.0])
            k = np.exp(rng.uniform(np.log(2.0), np.log(30.0)))
            if self.signs is not None:
                sign = self.signs[j]
            k *= sign
            p[j, 0] = (self.c - Vh) / k
            p[j, 1] = self.s / k if self.signs is None else np.log(self.s / abs(k))
            p[j, dz] = rng.uniform(np.log(0.05), np.log(20.0))
            if self.deg[1] >= 1:
                p[j, dz + 1] = rng.uniform(-1.5, 1.5)
            if self.deg[1] >= 2:
                p[j, dz + 2] = rng.uniform(-1.5, 0.5)
            if self.monotone:  # Bernstein weights all equal: the same Boltzmann curve
                p[j, 1:dz] = p[j, 1]
        return p.ravel()

    def to_sympy(self, p):
        """``[(alpha_j, beta_j)]`` per gate: sympy expressions in :data:`hhsym.symbolic.V` (see Notes)."""
        import sympy

        from hhsym.symbolic import V as V_SYMBOL

        a, b = self.power_coefficients(p)
        F = sympy.Float
        u = (V_SYMBOL - F(self.c)) / F(self.s)
        out = []
        for j in range(self.ng):
            z = sympy.Add(*[F(a[j, i]) * u ** i for i in range(self.n_z)])
            tau = F(self.tau_min) + sympy.exp(sympy.Add(*[F(b[j, i]) * u ** i for i in range(self.n_t)]))
            out.append((1 / ((1 + sympy.exp(-z)) * tau), 1 / ((1 + sympy.exp(z)) * tau)))
        return out

    def lift(self, p, other):
        """Parameters ``p`` of family ``other`` (lower degrees) in this family.

        With ``signs`` (this family's) the slope coefficient is stored as ``log(sign * slope)``; a slope of
        the other sign (or zero) becomes ``sign * 1e-6`` in normalised units (flat at the centre).  Into a
        monotone family the same holds for each Bernstein weight (exact for a curve of ``other`` that
        is monotone with Bernstein weights of the right sign, e.g. one of a monotone family).
        """
        c, b = other.power_coefficients(p)
        a = np.zeros((self.ng, self.n_z))
        a[:, :c.shape[1]] = c
        a = np.linalg.solve(self._M, a.T).T
        if self.signs is not None:
            cols = self._signed_columns
            a[:, cols] = np.log(np.maximum(self.signs[:, None] * a[:, cols], 1e-6))
        q = np.zeros((self.ng, self.n_per_gate))
        q[:, :self.n_z] = a
        q[:, self.n_z:self.n_z + other.n_t] = b
        return q.ravel()


class SplineFamily(CurveFamily):
    """Cubic B-spline (logit x_inf, log tau) family with linear tails.

    ``knots`` uniform knots span the normalised range ``u`` in [-1, 1]
    (``knots + 2`` coefficients per curve); beyond it each curve continues
    along its end tangent, so rates extrapolate exponentially.

    Parameters
    ----------
    n_gates, center, scale :
        As for :class:`CurveFamily`.
    knots : int
        Number of knots (at least 2).
    tau_min : float
        Time-constant floor (ms).

    Notes
    -----
    No sympy form (:meth:`~hhsym.estimate.rates.base.GateParametrisation.to_sympy`
    raises NotImplementedError) and no public constants: a free curve.
    """

    #: Degree of the B-splines.
    K = 3

    def __init__(self, n_gates, center, scale, knots=16, tau_min=0.0):
        self.knots = int(knots)
        if self.knots < 2:
            raise ValueError(f"knots must be at least 2, got {knots!r}")
        k = self.K
        self._t = np.r_[[-1.0] * k, np.linspace(-1.0, 1.0, self.knots), [1.0] * k]
        self._nb = self._t.size - k - 1
        unit = np.eye(self._nb)
        self._spline = BSpline(self._t, unit, k, extrapolate=False)
        self._ends = BSpline(self._t, unit, k).derivative()(np.array([-1.0, 1.0]))  # (2, nb)
        super().__init__(n_gates, center, scale, tau_min)

    n_z = property(lambda self: self._nb)
    n_t = property(lambda self: self._nb)

    def basis(self, V):
        u = (np.asarray(V, dtype=float) - self.c) / self.s
        uc = np.clip(u, -1.0, 1.0)
        B = self._spline(uc)
        B = B + np.where(u < -1.0, u + 1.0, 0.0)[:, None] * self._ends[0] \
            + np.where(u > 1.0, u - 1.0, 0.0)[:, None] * self._ends[1]
        return B, B

    def penalty_rows(self):
        """Second differences of every curve's coefficients (a P-spline penalty)."""
        D = np.diff(np.eye(self._nb), 2, axis=0)
        return np.kron(np.eye(2 * self.ng), D)

    def project(self, z, lt, V):
        """Parameters whose curves best match given curves (least squares).

        Parameters
        ----------
        z, lt : array (n_gates, len(V))
            logit x_inf and log(tau - tau_min) (log ms) per gate.
        V : array
            Potentials (mV) of the curves' samples.

        Returns
        -------
        ndarray
        """
        B, _ = self.basis(np.asarray(V, dtype=float))
        rhs = np.concatenate([np.asarray(z, dtype=float), np.asarray(lt, dtype=float)], axis=0).T
        coef = np.linalg.lstsq(B, rhs, rcond=None)[0].T  # (2 ng, nb)
        return np.concatenate([np.concatenate([coef[j], coef[self.ng + j]]) for j in range(self.ng)])
