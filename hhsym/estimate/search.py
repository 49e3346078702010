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

The cost is the stage-1 charge balance of :mod:`hhsym.estimate.kernels`
(gates driven by the measured V), evaluated here from the rates at the step
midpoints by a small numba recursion; Jacobians are by forward differences
(a dozen or two parameters).  :func:`global_search` screens many random
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
from numba import njit

from hhsym.estimate.optimize import levenberg_marquardt

__all__ = ["GateFamily", "global_search"]


@njit(cache=True)
def _charge_residuals(V, I, dt, C, ch_g, ch_E, gate_ch, gate_pow, x0, xinf, E, L, b0, out):
    """Charge-balance residuals (mV) over windows of L steps from sample b0.

    Gates start at ``x0`` and follow ``x_{k+1} = xinf_k + (x_k - xinf_k) E_k``
    (exponential midpoint rule); returns the number of residuals written.
    """
    n = V.shape[0]
    ng = xinf.shape[0]
    x = x0.copy()
    Q = 0.0
    r = 0
    F_prev = 0.0
    Qa = 0.0
    Va = 0.0
    for k in range(n):
        I_ion = 0.0
        for c in range(ch_g.shape[0]):
            cond = ch_g[c]
            for j in range(ng):
                if gate_ch[j] == c:
                    cond *= x[j] ** gate_pow[j]
            I_ion += cond * (V[k] - ch_E[c])
        F = (I[k] - I_ion) / C
        if k > 0:
            Q += 0.5 * dt * (F + F_prev)
        F_prev = F
        if k >= b0 and (k - b0) % L == 0:
            if k > b0 and r < out.shape[0]:
                out[r] = (V[k] - Va) - (Q - Qa)
                r += 1
            Qa = Q
            Va = V[k]
        if k == n - 1:
            break
        for j in range(ng):
            x[j] = xinf[j, k] + (x[j] - xinf[j, k]) * E[j, k]
    return r


class GateFamily:
    """Stage-1 cost of a polynomial (logit x_inf, log tau) family on recordings.

    Parameters
    ----------
    arrays : dict
        Model structure from :func:`hhsym.estimate.problem.model_arrays`.
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
    """

    def __init__(self, arrays, data, center, scale, deg=(1, 2), window=0.25, burn_in=0.0, signs=None,
                 tau_min=0.0):
        self.a = arrays
        self.signs = None if signs is None else np.asarray(signs, dtype=float)
        self.tau_min = float(tau_min)
        if self.signs is not None and int(deg[0]) != 1:
            raise ValueError("signs need a Boltzmann (degree-1) steady state")
        self.ng = len(arrays["gate_names"])
        self.c, self.s = float(center), float(scale)
        self.deg = tuple(int(d) for d in deg)
        self.traces = []
        for dt, V, I in data:
            L = max(1, int(round(window / dt)))
            b0 = min(int(round(burn_in / dt)), len(V) - 1)
            nres = (len(V) - 1 - b0) // L
            if nres > 0:
                self.traces.append((dt, V, I, 0.5 * (V[1:] + V[:-1]), L, b0, nres))
        self.n_res = sum(t[-1] for t in self.traces)

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

    def residuals(self, p):
        """Scaled residuals (mV / sqrt(count)); large finite values if non-finite."""
        a = self.a
        out = []
        for dt, V, I, Vm, L, b0, nres in self.traces:
            z, lt = self.curves(p, Vm)
            xinf = np.ascontiguousarray(1.0 / (1.0 + np.exp(-z)))
            E = np.ascontiguousarray(np.exp(-dt / (self.tau_min + np.exp(lt))))
            z0, _ = self.curves(p, V[:1])
            x0 = np.ascontiguousarray(1.0 / (1.0 + np.exp(-z0[:, 0])))
            o = np.zeros(nres)
            _charge_residuals(V, I, dt, a["C"], a["ch_g"], a["ch_E"], a["gate_ch"], a["gate_pow"],
                              x0, xinf, E, L, b0, o)
            out.append(o)
        r = np.concatenate(out) / np.sqrt(max(self.n_res, 1))
        return np.where(np.isfinite(r), r, 1e6)

    def cost(self, p):
        r = self.residuals(p)
        return 0.5 * float(r @ r)

    def lm_fun(self):
        """``fun(p, jac)`` for :func:`levenberg_marquardt` (forward-difference Jacobian)."""
        def fun(p, jac):
            r = self.residuals(p)
            if not jac:
                return r
            J = np.empty((r.size, p.size))
            for i in range(p.size):
                h = 1e-6 * max(1.0, abs(p[i]))
                q = p.copy()
                q[i] += h
                J[:, i] = (self.residuals(q) - r) / h
            return r, J
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
    """Refine the best ``n_refine`` of the sorted ``(cost, params)`` starts by successive halving.

    Many short Levenberg–Marquardt runs first; the best quarter continues with twice the
    iterations, until two or fewer remain.  Falls back to the best start if every run fails.

    Returns
    -------
    (params, cost)
    """
    pool = [p for _, p in starts[:max(1, int(n_refine))]]
    iters = max(2, int(max_iter) // 8)
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
        pool = [q for _, q in done[:max(1, len(done) // 4)]]
        iters *= 2
        rnd += 1
    return done[0][1], done[0][0]


def family_search(arrays, data, center, scale, rng, signs=None, n_starts=300, n_refine=32, window=0.25,
                  max_iter=40, tau_min=0.0, v_lim=None, verbose=0, history=None, label="search"):
    """Multi-start search of the Boltzmann / log-quadratic family (optionally sign-constrained).

    Parameters
    ----------
    arrays : dict
        Model structure (:func:`hhsym.estimate.problem.model_arrays`).
    data : list of (dt, V, I)
        The recordings to fit (e.g. a stretch of each trace).
    center, scale : float
        V normalisation (mV).
    rng : numpy.random.Generator
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate (``None``: free).
    n_starts, n_refine : int
        Random starts screened; best ones refined by successive halving.
    window : float
        Charge-balance window (ms).
    max_iter : int
        Levenberg–Marquardt iterations of the longest refinement.
    tau_min : float
        Time-constant floor (ms).
    v_lim : (float, float), optional
        Range (mV) of the random half-activation potentials (default: the data's).

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
    fam = GateFamily(arrays, data, center, scale, deg=(1, 2), window=window, signs=signs, tau_min=tau_min)
    starts = []
    for _ in range(int(n_starts)):
        p = fam.random_start(rng, *v_lim)
        starts.append((fam.cost(p), p))
    starts.sort(key=lambda t: t[0])
    kw = dict(verbose=verbose, history=history)
    best, cost = _successive_halving(fam, starts, n_refine, max_iter, label, kw)
    return fam, best, cost


def global_search(arrays, data, center, scale, rng, n_starts=300, n_refine=32, stretch=60.0, window=0.25,
                  max_iter=40, verbose=0, history=None):
    """Multi-start search of the generic gate family; returns a rate function.

    Parameters
    ----------
    arrays : dict
        Model structure (:func:`hhsym.estimate.problem.model_arrays`).
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
    fam = GateFamily(arrays, short, center, scale, deg=(1, 2), window=window)
    starts = []
    for _ in range(int(n_starts)):
        p = fam.random_start(rng, lo, hi)
        starts.append((fam.cost(p), p))
    starts.sort(key=lambda t: t[0])
    kw = dict(verbose=verbose, history=history)
    best, _ = _successive_halving(fam, starts, n_refine, max_iter, "search", kw)
    fam3 = GateFamily(arrays, short, center, scale, deg=(3, 3), window=window)
    p3, c3 = levenberg_marquardt(fam3.lm_fun(), fam3.lift(best, fam), 0.0, np.zeros(fam3.ng * fam3.n_per_gate),
                                 max_iter=max_iter, mu0=1e-2, label="search+", **kw)
    return (lambda V: fam3.rates(p3, V)), c3
