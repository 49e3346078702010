r"""Multi-start search in the Boltzmann gate family (the generic start of a fit).

Every gate is described by a Boltzmann steady state (half-activation
:math:`V_{1/2}`, slope :math:`k`) with a log-quadratic time constant
(bell-shaped, monotone or flat) — the generic two-state gating shape, nothing
specific to one model — in :class:`hhsym.estimate.rates.curves.GateFamily` with
degrees (1, 2).  :func:`family_search` draws random members, refines them by
successive halving of Levenberg–Marquardt runs on the estimator's stage-1
charge balance, and returns the best.

*Role hypotheses.*  The charge balance alone separates the right basin only
weakly from ones where gates swap roles (an activation gate fitted as an
inactivation gate and vice versa).  The sign of :math:`dx_\infty/dV` of each
gate is therefore a discrete hypothesis: with ``signs`` given, the slope of
the Boltzmann family is ``signs[j] * exp(p)``, so a search stays inside one
sign pattern; the estimator settles the patterns on all the data with a
richer family (:meth:`hhsym.estimate.RateEstimator.fit`).
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.rates.curves import GateFamily
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.losses.charge_balance import DV_SCALE, ChargeBalance
from hhsym.estimate.search.halving import successive_halving, thirds_schedule

__all__ = ["family_search"]


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


def _successive_halving(loss, starts, n_refine, max_iter, label, kw):
    """Refine the first ``n_refine`` of the ``(cost, params)`` starts by successive halving.

    Many short Levenberg–Marquardt runs first (``max_iter // 6``, at least 3); the best third
    continues with twice the iterations, until two or fewer remain
    (:func:`~hhsym.estimate.search.halving.thirds_schedule`).  Falls back to the first start if
    every run fails.

    Returns
    -------
    (params, cost)
    """

    def refine(p, n_iter, r, k):
        try:
            q, c = levenberg_marquardt(loss.lm_fun(), p, 0.0, np.zeros(p.size), max_iter=n_iter, mu0=1e-2,
                                       label=f"{label}{r}.{k}", **kw)
        except FloatingPointError:
            return None
        return c, q

    def progress(r, n_iter, ranked):
        if kw.get("verbose", 0) > 1:
            print(f"[hhsym.fit] {label} round {r}: {n_iter} iter, costs",
                  " ".join(f"{c:.3g}" for c, _ in ranked[:12]))

    schedule = thirds_schedule(max(1, int(n_refine)), max(3, int(max_iter) // 6))
    ranked, _ = successive_halving(starts, refine, schedule, on_round=progress)
    return ranked[0][1], ranked[0][0]


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
    fam = GateFamily(len(model.gates), center, scale, deg=(1, 2), signs=signs, tau_min=tau_min)
    loss = ChargeBalance(fam, model, data, window=window, dv_scale=dv_scale, substeps=substeps)
    starts = []
    for _ in range(int(n_starts)):  # the cost of a raw start says nothing of where LM takes it: keep draw order
        p = fam.random_start(rng, *v_lim)
        c = loss.cost(p)
        if np.isfinite(c):
            starts.append((c, p))
    if not starts:
        raise FloatingPointError("no random start of the gate family gives finite residuals")
    kw = dict(verbose=verbose, history=history)
    best, cost = _successive_halving(loss, starts, n_refine, max_iter, label, kw)
    return fam, best, cost
