r"""Gate families linear in their coefficients: the stage-1 cost of curves, not networks.

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
  two-state gating shape (the role search of :mod:`hhsym.estimate.search.roles`
  draws its random starts there); degrees (3, 3) settle the role hypotheses.
* :class:`SplineFamily` — uniform cubic B-splines with linear tails (a free
  curve, nothing model-shaped), which the estimator refines coarse to fine
  before it trains the networks (:class:`~hhsym.estimate.RateEstimator`).

The cost is the estimator's stage-1 charge balance (gates driven by the
measured V, weighted windows, sub-steps), evaluated by the same table kernel
(:mod:`hhsym.estimate.losses.tables`) with the family's curves tabulated over the
voltage nodes, so Jacobians are exact and cost one pass.  Because the curves
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

from hhsym.estimate.losses.charge_balance import DV_SCALE, ShootingProblem

__all__ = ["CurveFamily", "GateFamily", "SplineFamily", "TableFamily", "curves_from_rates"]

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


class TableFamily:
    r"""Stage-1 cost of gate curves given as node tables (abstract base of every family).

    A family maps a parameter vector ``p`` (``n_per_gate`` parameters per
    gate, gates in the model's order) to the steady state :math:`x_\infty`
    and rate :math:`\lambda = 1/\tau` of each gate on the voltage nodes of
    the stage-1 problem (:meth:`tables`), with their derivatives with
    respect to the gate's own parameters.  This class builds the problem and
    evaluates the charge balance and its exact Jacobian from those tables;
    :class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` evaluates the
    output error from the same tables.

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, conductances, reversal potentials, powers).
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace.
    window, burn_in : float
        Charge-balance window and leading time left out (ms).
    tau_min : float
        Time-constant floor (ms).
    dv_scale : float or None
        Window weights as in the estimator (:func:`hhsym.estimate.losses.charge_balance.window_weights`).
    substeps : int, optional
        Sub-steps per sample (:func:`hhsym.estimate.losses.tables.refine`); default as in the estimator.
    """

    def __init__(self, model, data, window=0.25, burn_in=0.0, tau_min=0.0, dv_scale=DV_SCALE, substeps=None):
        self.tau_min = float(tau_min)
        self.ng = len(model.gates)
        self.problem = ShootingProblem(model, data, np.array([1, 1], dtype=np.int64), np.zeros((2 * self.ng, 3)),
                                       window=window, burn_in=burn_in, n_shooting=0, tau_min=tau_min,
                                       dv_scale=dv_scale, substeps=substeps)

    # ------------------------------------------------------------------ contract
    @property
    def n_per_gate(self):
        """int: parameters per gate."""
        raise NotImplementedError

    def rates(self, p, V):
        """alpha, beta (1/ms) at ``V`` (mV), each (n_gates, len(V))."""
        raise NotImplementedError

    def tables(self, p, jac):
        """Node tables ``(x_inf (ng, K), lambda (ng, K) in 1/ms, dx_inf/dp, dlambda/dp (ng, K, n_per_gate))``.

        The derivatives are empty ``(ng, 0, n_per_gate)`` arrays unless ``jac``
        (:func:`hhsym.estimate.losses.tables.node_tables` layout).
        """
        raise NotImplementedError

    def penalty_rows(self):
        """Rows ``D`` of a roughness penalty ``|D p|²`` (none unless a family defines one)."""
        return np.zeros((0, self.ng * self.n_per_gate))

    # ------------------------------------------------------------------ cost
    def residuals(self, p):
        """Scaled stage-1 residuals (mV / sqrt(count)); ``None`` if non-finite."""
        return self.problem.evaluate_tables(self.tables(p, False), False)

    def cost(self, p):
        """Half the sum of squared residuals (``inf`` if non-finite)."""
        r = self.residuals(p)
        return np.inf if r is None else 0.5 * float(r @ r)

    def lm_fun(self, smooth=0.0):
        """``fun(p, jac)`` for :func:`~hhsym.estimate.optimise.lm.levenberg_marquardt` (exact Jacobian).

        Parameters
        ----------
        smooth : float
            Weight of the roughness penalty (:meth:`penalty_rows`), appended
            to the residuals as ``sqrt(smooth) * D p``.
        """
        D = np.sqrt(float(smooth)) * self.penalty_rows() if smooth > 0 else None

        def fun(p, jac):
            out = self.problem.evaluate_tables(self.tables(p, jac), jac)
            if D is None:
                return out
            if not jac:
                return None if out is None else np.concatenate([out, D @ p])
            if out[0] is None:
                return None, None
            return np.concatenate([out[0], D @ p]), np.vstack([out[1], D])
        return fun


class CurveFamily(TableFamily):
    """Per-gate curves linear in their coefficients (abstract base).

    Subclasses define the basis (:meth:`basis`) and may map free parameters
    to coefficients (:meth:`coefficients`); this class tabulates the curves on
    the problem's voltage nodes with their exact derivatives, and fits curves
    given on a grid.  The parameters of gate ``j`` are
    ``[a_j (n_z), b_j (n_t)]``, gates in the model's order.

    Parameters
    ----------
    model, data :
        As for :class:`TableFamily`.
    center, scale : float
        Normalisation of V (mV): ``u = (V - center) / scale``.
    **kw :
        ``window``, ``burn_in``, ``tau_min``, ``dv_scale``, ``substeps`` (:class:`TableFamily`).
    """

    def __init__(self, model, data, center, scale, **kw):
        self.c, self.s = float(center), float(scale)
        super().__init__(model, data, **kw)
        self._Bz, self._Bt = self.basis(self.problem.table.nodes)

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

    def tables(self, p, jac):
        """Node tables of the family (:meth:`TableFamily.tables`)."""
        a, b, da = self.coefficients(p)
        z, lt = a @ self._Bz.T, b @ self._Bt.T
        zc, ltc = np.clip(z, -Z_CLIP, Z_CLIP), np.clip(lt, -LT_CLIP, LT_CLIP)
        xinf = 1.0 / (1.0 + np.exp(-zc))
        et = np.exp(ltc)
        lam = 1.0 / (self.tau_min + et)
        K = self._Bz.shape[0]
        DX = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        DL = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        if jac:
            q = xinf * (1.0 - xinf) * (zc == z)
            cl = -lam * lam * et * (ltc == lt)
            DX[:, :, :self.n_z] = q[:, :, None] * self._Bz[None, :, :] * da[:, None, :]
            DL[:, :, self.n_z:] = cl[:, :, None] * self._Bt[None, :, :]
        return np.ascontiguousarray(xinf), np.ascontiguousarray(lam), DX, DL


class GateFamily(CurveFamily):
    """Polynomial (logit x_inf, log tau) family.

    Parameters
    ----------
    model, data, center, scale :
        As for :class:`CurveFamily`.
    deg : (int, int)
        Polynomial degrees of logit x_inf and of log(tau - tau_min).
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate (only with ``deg[0] == 1``); the slope
        parameter is then the log of the slope's magnitude.
    **kw :
        ``window``, ``burn_in``, ``tau_min``, ``dv_scale``, ``substeps`` (:class:`CurveFamily`).
    """

    def __init__(self, model, data, center, scale, deg=(1, 2), signs=None, **kw):
        self.deg = tuple(int(d) for d in deg)
        self.signs = None if signs is None else np.asarray(signs, dtype=float)
        if self.signs is not None and self.deg[0] != 1:
            raise ValueError("signs need a Boltzmann (degree-1) steady state")
        super().__init__(model, data, center, scale, **kw)

    n_z = property(lambda self: self.deg[0] + 1)
    n_t = property(lambda self: self.deg[1] + 1)

    def basis(self, V):
        u = (np.asarray(V, dtype=float) - self.c) / self.s
        powers = u[:, None] ** np.arange(max(self.deg) + 1)[None, :]
        return powers[:, :self.n_z], powers[:, :self.n_t]

    def coefficients(self, p):
        a, b, da = super().coefficients(p)
        if self.signs is not None:  # slope = sign * exp(p1)
            a = a.copy()
            a[:, 1] = self.signs * np.exp(np.clip(a[:, 1], -30.0, 30.0))
            da = da.copy()
            da[:, 1] = a[:, 1]
        return a, b, da

    def random_start(self, rng, v_lo, v_hi):
        """Random generic parameters: Boltzmann x_inf, log-quadratic tau.

        V_1/2 uniform over [v_lo, v_hi] (mV), slope |k| log-uniform in
        [2, 30] mV of either sign (or of the family's sign), tau at the
        centre log-uniform in [0.05, 20] ms, mild random tilt and curvature
        of log tau.
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
        return p.ravel()

    def lift(self, p, other):
        """Parameters ``p`` of family ``other`` (lower degrees) in this family."""
        a, b, _ = other.coefficients(p)
        q = np.zeros((self.ng, self.n_per_gate))
        q[:, :other.n_z] = a
        q[:, self.n_z:self.n_z + other.n_t] = b
        return q.ravel()


class SplineFamily(CurveFamily):
    """Cubic B-spline (logit x_inf, log tau) family with linear tails.

    ``knots`` uniform knots span the normalised range ``u`` in [-1, 1]
    (``knots + 2`` coefficients per curve); beyond it each curve continues
    along its end tangent, so rates extrapolate exponentially.

    Parameters
    ----------
    model, data, center, scale :
        As for :class:`CurveFamily`.
    knots : int
        Number of knots (at least 2).
    **kw :
        ``window``, ``burn_in``, ``tau_min``, ``dv_scale``, ``substeps`` (:class:`CurveFamily`).
    """

    #: Degree of the B-splines.
    K = 3

    def __init__(self, model, data, center, scale, knots=16, **kw):
        self.knots = int(knots)
        if self.knots < 2:
            raise ValueError(f"knots must be at least 2, got {knots!r}")
        k = self.K
        self._t = np.r_[[-1.0] * k, np.linspace(-1.0, 1.0, self.knots), [1.0] * k]
        self._nb = self._t.size - k - 1
        unit = np.eye(self._nb)
        self._spline = BSpline(self._t, unit, k, extrapolate=False)
        self._ends = BSpline(self._t, unit, k).derivative()(np.array([-1.0, 1.0]))  # (2, nb)
        super().__init__(model, data, center, scale, **kw)

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
