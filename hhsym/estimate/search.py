r"""Global search in a low-dimensional generic gate family (the start of a fit).

Before any network is trained, every gate is described by its steady state
and time constant in a smooth, generic family of the normalised potential
:math:`u = (V - c)/s` (the data's range mapped to :math:`[-1, 1]`):

.. math::

    x_\infty(V) = \sigma\Big(\sum_{i \le d_x} a_i u^i\Big), \qquad
    \log (\tau(V) - \tau_\min) = \sum_{i \le d_\tau} b_i u^i ,

so :math:`\alpha = x_\infty/\tau` and :math:`\beta = (1 - x_\infty)/\tau` are
positive and the gate stays in (0, 1) by construction.  With
:math:`d_x = 1, d_\tau = 2` this is a Boltzmann steady state (half-activation
:math:`V_{1/2}`, slope :math:`k` of either sign) with a log-quadratic time
constant (bell-shaped, monotone or flat) — the generic two-state gating shape,
nothing specific to one model.

The cost is the estimator's stage-1 charge balance (gates driven by the
measured V, weighted windows, sub-steps), evaluated by the same table kernel
(:mod:`hhsym.estimate.tables`) with the family's curves tabulated over the
voltage nodes, so Jacobians are exact and cost one pass.  :func:`global_search` screens many random
starts on a stretch of the data, refines the best few with
Levenberg–Marquardt, then refines the winner with cubic polynomials.

*Role hypotheses.*  The charge balance alone separates the right basin only
weakly from ones where gates swap roles (an activation gate fitted as an
inactivation gate and vice versa).  The sign of :math:`dx_\infty/dV` of each
gate is therefore a discrete hypothesis: with ``signs`` given, the slope
:math:`a_1` of a Boltzmann family is ``signs[j] * exp(p)``, so a search stays
inside one sign pattern (:func:`family_search`); the estimator compares the
patterns after a short network stage, not by the family cost.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.optimize import levenberg_marquardt
from hhsym.estimate.problem import DV_SCALE, ShootingProblem

__all__ = ["GateFamily", "global_search"]


class GateFamily:
    """Stage-1 cost of a polynomial (logit x_inf, log tau) family on recordings.

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, conductances, reversal potentials, powers).
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²).
    center, scale : float
        Normalisation of V (mV).
    deg : (int, int)
        Polynomial degrees of logit x_inf and of log tau.
    window, burn_in : float
        Charge-balance window and leading time left out (ms).
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate (only with ``deg[0] == 1``); the slope
        parameter is then the log of the slope's magnitude.
    tau_min : float
        Time-constant floor (ms).
    dv_scale : float or None
        Window weights as in the estimator (:func:`hhsym.estimate.problem.window_weights`).
    substeps : int, optional
        Sub-steps per sample (:func:`hhsym.estimate.tables.refine`); default as in the estimator.
    """

    def __init__(self, model, data, center, scale, deg=(1, 2), window=0.25, burn_in=0.0, signs=None,
                 tau_min=0.0, dv_scale=DV_SCALE, substeps=None):
        self.signs = None if signs is None else np.asarray(signs, dtype=float)
        self.tau_min = float(tau_min)
        if self.signs is not None and int(deg[0]) != 1:
            raise ValueError("signs need a Boltzmann (degree-1) steady state")
        self.c, self.s = float(center), float(scale)
        self.deg = tuple(int(d) for d in deg)
        ng = len(model.gates)
        self.problem = ShootingProblem(model, data, np.array([1, 1], dtype=np.int64), np.zeros((2 * ng, 3)),
                                       window=window, burn_in=burn_in, n_shooting=0, parametrisation="gate",
                                       tau_min=tau_min, dv_scale=dv_scale, substeps=substeps)
        self.ng = ng
        u = (self.problem.table.nodes - self.c) / self.s
        self._powers = np.array([u ** i for i in range(max(self.deg) + 1)])  # (deg + 1, K)

    @property
    def n_per_gate(self):
        """int: parameters per gate."""
        return self.deg[0] + self.deg[1] + 2

    def curves(self, p, V):
        """logit x_inf and log tau (log ms), each (n_gates, len(V))."""
        u = (np.asarray(V, dtype=float) - self.c) / self.s
        p = np.asarray(p, dtype=float).reshape(self.ng, self.n_per_gate)
        if self.signs is not None:
            p = p.copy()
            p[:, 1] = self.signs * np.exp(np.clip(p[:, 1], -30.0, 30.0))
        dz = self.deg[0] + 1
        z = sum(p[:, i:i + 1] * u ** i for i in range(dz))
        lt = sum(p[:, dz + i:dz + i + 1] * u ** i for i in range(self.deg[1] + 1))
        return np.clip(z, -40.0, 40.0), np.clip(lt, -25.0, 25.0)

    def rates(self, p, V):
        """alpha, beta (1/ms), each (n_gates, len(V))."""
        z, lt = self.curves(p, V)
        lt = np.logaddexp(np.log(self.tau_min), lt) if self.tau_min > 0 else lt
        return np.exp(-np.logaddexp(0.0, -z) - lt), np.exp(-np.logaddexp(0.0, z) - lt)

    def tables(self, p, jac):
        """Node tables of the family (:func:`hhsym.estimate.tables.node_tables` layout)."""
        p = np.asarray(p, dtype=float).reshape(self.ng, self.n_per_gate)
        dz = self.deg[0] + 1
        U = self._powers
        z = p[:, :dz] @ U[:dz]
        if self.signs is not None:  # slope = sign * exp(p1)
            slope = self.signs * np.exp(np.clip(p[:, 1], -30.0, 30.0))
            z = z + (slope - p[:, 1])[:, None] * U[1]
        lt = p[:, dz:] @ U[:self.deg[1] + 1]
        zc, ltc = np.clip(z, -40.0, 40.0), np.clip(lt, -25.0, 25.0)
        xinf = 1.0 / (1.0 + np.exp(-zc))
        et = np.exp(ltc)
        lam = 1.0 / (self.tau_min + et)
        K = U.shape[1]
        DX = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        DL = np.zeros((self.ng, K if jac else 0, self.n_per_gate))
        if jac:
            q = xinf * (1.0 - xinf) * (zc == z)
            cl = -lam * lam * et * (ltc == lt)
            for i in range(dz):
                DX[:, :, i] = q * U[i]
            if self.signs is not None:
                DX[:, :, 1] *= slope[:, None]
            for i in range(self.deg[1] + 1):
                DL[:, :, dz + i] = cl * U[i]
        return np.ascontiguousarray(xinf), np.ascontiguousarray(lam), DX, DL

    def residuals(self, p):
        """Scaled stage-1 residuals (mV / sqrt(count)); ``None`` if non-finite."""
        return self.problem.evaluate_tables(self.tables(p, False), False)

    def cost(self, p):
        """Half the sum of squared residuals (``inf`` if non-finite)."""
        r = self.residuals(p)
        return np.inf if r is None else 0.5 * float(r @ r)

    def lm_fun(self):
        """``fun(p, jac)`` for :func:`levenberg_marquardt` (exact Jacobian of the discrete map)."""
        def fun(p, jac):
            return self.problem.evaluate_tables(self.tables(p, jac), jac)
        return fun

    def random_start(self, rng, v_lo, v_hi):
        """Random generic parameters: Boltzmann x_inf, log-quadratic tau.

        V_1/2 uniform over the data's range, slope |k| log-uniform in [2, 30] mV
        of either sign, tau at the centre log-uniform in [0.05, 20] ms, mild
        random tilt and curvature of log tau.
        """
        p = np.zeros((self.ng, self.n_per_gate))
        dz = self.deg[0] + 1
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
        p = np.asarray(p, dtype=float).reshape(other.ng, other.n_per_gate)
        q = np.zeros((self.ng, self.n_per_gate))
        if other.signs is not None:
            p = p.copy()
            p[:, 1] = other.signs * np.exp(p[:, 1])
        dz_o, dz = other.deg[0] + 1, self.deg[0] + 1
        q[:, :dz_o] = p[:, :dz_o]
        q[:, dz:dz + other.deg[1] + 1] = p[:, dz_o:]
        return q.ravel()


def _stretch(data, length):
    """The ``length`` ms of each trace with the most upward mid-range crossings."""
    out = []
    for dt, V, I in data:
        n = int(round(length / dt)) + 1
        if n >= len(V):
            out.append((dt, V, I))
            continue
        mid = 0.5 * (V.min() + V.max())
        up = np.zeros(len(V))
        up[1:] = (V[:-1] < mid) & (V[1:] >= mid)
        cs = np.concatenate([[0.0], np.cumsum(up)])
        counts = cs[n:] - cs[:-n]
        s = int(np.argmax(counts))
        out.append((dt, np.ascontiguousarray(V[s:s + n]), np.ascontiguousarray(I[s:s + n])))
    return out


def _successive_halving(fam, starts, n_refine, max_iter, label, kw):
    """Refine the first ``n_refine`` of the ``(cost, params)`` starts by successive halving.

    Many short Levenberg–Marquardt runs first; the best third continues with twice the
    iterations, until two or fewer remain.  Falls back to the first start if every run fails.

    Returns
    -------
    (params, cost)
    """
    pool = [p for _, p in starts[:max(1, int(n_refine))]]
    iters = max(3, int(max_iter) // 6)
    done = [(c, p) for c, p in starts[:1]]
    rnd = 0
    while pool:
        out = []
        for k, p in enumerate(pool):
            try:
                q, c = levenberg_marquardt(fam.lm_fun(), p, 0.0, np.zeros(p.size), max_iter=iters, mu0=1e-2,
                                           label=f"{label}{rnd}.{k}", **kw)
            except FloatingPointError:
                continue
            out.append((c, q))
        if not out:
            break
        done = sorted(out, key=lambda t: t[0])
        if kw.get("verbose", 0) > 1:
            print(f"[hhsym.fit] {label} round {rnd}: {iters} iter, costs",
                  " ".join(f"{c:.3g}" for c, _ in done[:12]))
        if len(done) <= 1 or len(pool) <= 2:
            break
        pool = [q for _, q in done[:max(1, (len(done) + 2) // 3)]]
        iters *= 2
        rnd += 1
    return done[0][1], done[0][0]


def family_search(model, data, center, scale, rng, signs=None, n_starts=300, n_refine=32, window=0.25,
                  max_iter=40, tau_min=0.0, v_lim=None, verbose=0, history=None, label="search",
                  dv_scale=DV_SCALE, substeps=None):
    """Multi-start search of the Boltzmann / log-quadratic family (optionally sign-constrained).

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, conductances, reversal potentials, powers).
    data : list of (dt, V, I)
        The recordings to fit (e.g. a stretch of each trace).
    center, scale : float
        V normalisation (mV).
    rng : numpy.random.Generator
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate (``None``: free).
    n_starts, n_refine : int
        Random starts drawn; the first ``n_refine`` with finite cost are
        refined by successive halving (a raw start's cost does not predict
        where Levenberg–Marquardt takes it, so none is preferred by it).
    window : float
        Charge-balance window (ms).
    max_iter : int
        Levenberg–Marquardt iterations of the longest refinement.
    tau_min : float
        Time-constant floor (ms).
    v_lim : (float, float), optional
        Range (mV) of the random half-activation potentials (default: the data's).
    dv_scale, substeps :
        Window weights and sub-steps (:class:`GateFamily`).

    Returns
    -------
    fam : GateFamily
    p : ndarray
        Best parameters.
    cost : float
        Its cost.
    """
    if v_lim is None:
        v_lim = (min(float(d[1].min()) for d in data), max(float(d[1].max()) for d in data))
    fam = GateFamily(model, data, center, scale, deg=(1, 2), window=window, signs=signs, tau_min=tau_min,
                     dv_scale=dv_scale, substeps=substeps)
    starts = []
    for _ in range(int(n_starts)):  # the cost of a raw start says nothing of where LM takes it: keep draw order
        p = fam.random_start(rng, *v_lim)
        c = fam.cost(p)
        if np.isfinite(c):
            starts.append((c, p))
    if not starts:
        raise FloatingPointError("no random start of the gate family gives finite residuals")
    kw = dict(verbose=verbose, history=history)
    best, cost = _successive_halving(fam, starts, n_refine, max_iter, label, kw)
    return fam, best, cost


def global_search(model, data, center, scale, rng, n_starts=300, n_refine=32, stretch=60.0, window=0.25,
                  max_iter=40, verbose=0, history=None):
    """Multi-start search of the generic gate family; returns a rate function.

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, conductances, reversal potentials, powers).
    data : list of (dt, V, I)
    center, scale : float
        V normalisation (mV).
    rng : numpy.random.Generator
    n_starts : int
        Random starts screened (cost only) on a ``stretch`` ms stretch of each trace.
    n_refine : int
        Best starts refined by Levenberg–Marquardt.
    stretch : float
        Length (ms) of the screening stretch (the most active part of each trace).
    window : float
        Charge-balance window (ms).
    max_iter : int
        Levenberg–Marquardt iterations per refinement.

    Returns
    -------
    rates : callable
        ``rates(V)`` -> (alpha, beta), each (n_gates, len(V)) in 1/ms.
    cost : float
        Stage-1 cost of the result on the screening stretch.
    """
    lo = min(float(d[1].min()) for d in data)
    hi = max(float(d[1].max()) for d in data)
    short = _stretch(data, stretch)
    fam = GateFamily(model, short, center, scale, deg=(1, 2), window=window)
    starts = []
    for _ in range(int(n_starts)):
        p = fam.random_start(rng, lo, hi)
        starts.append((fam.cost(p), p))
    starts.sort(key=lambda t: t[0])
    kw = dict(verbose=verbose, history=history)
    best, _ = _successive_halving(fam, starts, n_refine, max_iter, "search", kw)
    fam3 = GateFamily(model, short, center, scale, deg=(3, 3), window=window)
    p3, c3 = levenberg_marquardt(fam3.lm_fun(), fam3.lift(best, fam), 0.0, np.zeros(fam3.ng * fam3.n_per_gate),
                                 max_iter=max_iter, mu0=1e-2, label="search+", **kw)
    return (lambda V: fam3.rates(p3, V)), c3
