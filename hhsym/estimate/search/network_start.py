"""The generic start of :class:`~hhsym.estimate.RateEstimator`: gate-role hypotheses, spline stage, pretraining.

* :func:`role_search` — every sign pattern of dx_inf/dV is searched in a
  Boltzmann family on the most active stretch of the data; the close
  contenders are refitted on all the data in a richer family and the lowest
  cost wins;
* :func:`spline_stage` — the start curves refined as cubic B-splines, coarse to fine;
* :func:`pretrain` — each network fitted to its target curve.

The functions take the estimator (its parameters: ``model``, ``stretch``,
``n_starts``, ``window``, ``tau_min``, ``burn_in``, ``verbose``) and record
``hypotheses_``/``roles_`` on it.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from hhsym.errors import SimulationError
from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.rates.curves import GateFamily, SplineFamily
from hhsym.estimate.rates.network import RateNetwork
from hhsym.estimate.search.roles import _stretch, family_search

__all__ = ["role_search", "spline_stage", "pretrain"]

#: Role patterns whose family cost is within this factor of the best are refitted on all the data
#: (the Boltzmann family can rank them wrong, so by default the best ``MAX_PATTERNS`` all are).
ROLE_MARGIN = np.inf
#: At most this many role patterns are refitted on all the data.
MAX_PATTERNS = 3
#: Polynomial degrees (logit x_inf, log tau) of the family that settles the role hypotheses.
RICH_DEGREES = (3, 3)
#: Levenberg–Marquardt iterations per level of the spline stage.
SPLINE_ITER = 100
#: Weight of the spline stage's second-difference penalty (per unit of the mean-square residual, mV²).
#: Started at the true rates, the unpenalised spline fit drifts 2-5 % along the loss's flat directions
#: to fit the discretisation error; 1e-9 keeps it within ~1-2 % (demo data), 1e-8 slows convergence.
SPLINE_SMOOTH = 1e-9


def role_search(est, data, center, scale, grid, gate_names, rng, max_iter, opts, kw):
    """Generic start: role hypotheses searched in a Boltzmann family, settled by a cubic one (module docstring).

    1. every sign pattern of dx_inf/dV: a family search constrained to
       it on the most active ``stretch`` ms of each trace;
    2. patterns within ``ROLE_MARGIN`` of the best family cost (at most
       ``MAX_PATTERNS``) are refitted on all the data, then lifted to
       the richer ``RICH_DEGREES`` family (free signs) and refitted
       again; the lowest cost wins (on HH the right roles win by 5-10x
       there, while the Boltzmann family alone can rank them wrong);

    Returns the winner's curves on ``grid``: ``[logit x_inf, log(tau - tau_min)]`` per gate.
    """
    ng = len(gate_names)
    short = _stretch(data, float(est.stretch))
    patterns = [np.array(sg, dtype=float) for sg in product((1.0, -1.0), repeat=ng)]
    seeds = rng.integers(0, 2**63 - 1, size=len(patterns))
    label = lambda sg: "".join("+" if v > 0 else "-" for v in sg)  # noqa: E731
    tau_min = float(est.tau_min)
    fopts = dict(window=est.window, tau_min=tau_min, dv_scale=opts["dv_scale"], substeps=opts["substeps"])
    lopts = dict(window=est.window, dv_scale=opts["dv_scale"], substeps=opts["substeps"])
    found = []
    for k, sg in enumerate(patterns):
        # the screening runs on the raw sampling grid: at family-level costs the discretisation
        # bias is negligible, and it is four times cheaper
        try:
            fam, p, c = family_search(est.model, short, center, scale, np.random.default_rng(int(seeds[k])),
                                      signs=sg, n_starts=3 * int(est.n_starts),
                                      n_refine=3 * int(est.n_starts), max_iter=max_iter[0],
                                      history=kw["history"], label=f"roles{label(sg)}.",
                                      **dict(fopts, substeps=1))
        except FloatingPointError:  # no start of this pattern gives finite residuals
            p, c = None, np.inf
        if est.verbose:
            print(f"[hhsym.fit] role hypothesis {label(sg)} ({k + 1}/{len(patterns)}): family cost {c:.3g}",
                  flush=True)
        found.append([c, k, p, None])
        est.hypotheses_.append({"signs": dict(zip(gate_names, sg.tolist())), "family_cost": float(c),
                                 "full_cost": None})
    found.sort(key=lambda t: t[0])
    contenders = [f for f in found if np.isfinite(f[0]) and f[0] <= ROLE_MARGIN * found[0][0]]
    contenders = contenders[:MAX_PATTERNS]
    if est.verbose:
        print("[hhsym.fit] role hypotheses (family cost):",
              " ".join(f"{label(patterns[k])} {c:.3g}" for c, k, _, _ in found), flush=True)
    best = None
    for c, k, p, _ in contenders:
        fam = GateFamily(ng, center, scale, deg=(1, 2), signs=patterns[k], tau_min=tau_min)
        rich = GateFamily(ng, center, scale, deg=RICH_DEGREES, tau_min=tau_min)
        try:
            p, c = levenberg_marquardt(ChargeBalance(fam, est.model, data, **lopts).lm_fun(), p, 0.0,
                                       np.zeros(p.size), max_iter=max(2, max_iter[0] // 2), mu0=1e-2,
                                       label=f"roles{label(patterns[k])}*", **kw)
            q, c = levenberg_marquardt(ChargeBalance(rich, est.model, data, **lopts).lm_fun(),
                                       rich.lift(p, fam), 0.0, np.zeros(rich.n_params), max_iter=max_iter[0],
                                       mu0=1e-2, label=f"roles{label(patterns[k])}**", **kw)
        except FloatingPointError:  # non-finite on all the data: not a contender
            continue
        est.hypotheses_[k]["full_cost"] = float(c)
        if best is None or c < best[0]:
            best = (c, k, q, rich)
    if best is None:
        raise SimulationError("no gate-role hypothesis gives finite gate trajectories on these traces; "
                              "check the template's conductances and reversal potentials, or pass a prior")
    _, k, q, rich = best
    if est.verbose:
        print("[hhsym.fit] role hypotheses (all data, richer family):",
              " ".join(f"{label(patterns[h])} {est.hypotheses_[h]['full_cost']}" for _, h, _, _ in contenders),
              flush=True)
    z, lt = rich.curves(q, grid)
    est.roles_ = dict(zip(gate_names, patterns[k].tolist()))
    return [cc for j in range(ng) for cc in (z[j], lt[j])]

def spline_stage(est, data, center, scale, grid, curves, knots, opts, kw, t_start):
    """Refine start curves in spline families, coarse to fine (:class:`~hhsym.estimate.rates.curves.SplineFamily`).

    Each level projects the current curves on its B-splines and runs
    ``SPLINE_ITER`` Levenberg–Marquardt iterations (geodesic) on all the
    data; returns the finest level's curves on ``grid`` (same layout as
    ``curves``).  Stops early when the stage-1 share of the time budget
    is spent; a level whose start is non-finite keeps the curves it got.
    """
    ng = len(curves) // 2
    lopts = dict(window=est.window, burn_in=est.burn_in, dv_scale=opts["dv_scale"], substeps=opts["substeps"])
    for nk in knots:
        left = est._left(t_start, 0.85)
        if left is not None and left <= 0:
            break
        fam = SplineFamily(ng, center, scale, knots=nk, tau_min=float(est.tau_min))
        p0 = fam.project(np.clip(curves[0::2], -30.0, 30.0), np.clip(curves[1::2], -30.0, 30.0), grid)
        try:
            loss = ChargeBalance(fam, est.model, data, **lopts)
            p, _ = levenberg_marquardt(loss.lm_fun(SPLINE_SMOOTH), p0, 0.0, np.zeros(p0.size),
                                       max_iter=SPLINE_ITER, mu0=1e-2, geodesic=True,
                                       label=f"spline{nk}", time_limit=left, **kw)
        except FloatingPointError:
            continue
        z, lt = fam.curves(p, grid)
        curves = [cc for j in range(ng) for cc in (z[j], lt[j])]
    return curves

def pretrain(hidden, center, scale, grid, curves, theta0):
    """Fit each network's output to a target curve on ``grid`` (mV); returns all parameters."""
    out = []
    P = len(theta0) // len(curves)
    for i, y in enumerate(curves):
        net = RateNetwork(hidden, center, scale, theta0[i * P:(i + 1) * P])
        y = np.clip(np.asarray(y, dtype=float), -30.0, 30.0)

        def fun(th, jac, net=net, y=y):
            net.theta[:] = th
            f, _, G = net.log_rate(grid, grad=True)
            return (f - y, G) if jac else f - y

        th, _ = levenberg_marquardt(fun, net.theta.copy(), 1e-10, net.penalised(), max_iter=100, mu0=1.0)
        out.append(th)
    return np.concatenate(out)

